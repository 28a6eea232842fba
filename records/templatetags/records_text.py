"""Texts of the record stored in one language and shown in the reader's."""

from functools import cache

from django import template
from django.utils import translation
from django.utils.translation import gettext

from records import charts, display, files
from records.services import SOFTWARE_REASONS

register = template.Library()


@cache
def _software_reasons() -> dict[str, str]:
    """Each software reason by its stored forms: the English, and the French that rows
    written before the English was kept still hold."""
    known = {}
    for msgid in SOFTWARE_REASONS:
        known[msgid] = msgid
        with translation.override("fr"):
            known[gettext(msgid)] = msgid
    return known


@register.filter
def reason(text):
    """A correction's reason as the reader reads: software's in their language, a person's
    as they wrote it."""
    msgid = _software_reasons().get(text or "")
    return gettext(msgid) if msgid else text


register.filter("measured", display.measured)  # a lab value with its own decimals, none added or cut
register.filter("size", files.human_size)  # "22 Ko", not "22,0 Ko"


@register.simple_tag
def trend_chart(chart, chart_id, title):
    """A trend chart's figure (``records.charts.figure_html``), nothing without a chart."""
    return charts.figure_html(chart, chart_id, title)

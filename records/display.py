"""What the records tables show of each row, worked out once per page in Python rather
than per row in the template: a link per row costs a ``reverse``, a number a
``floatformat``, a label a translation lookup, and a template pays for each again on every
row. The strings are those the template filters make (the same functions), so the page
reads the same in French and in English."""

import re
import uuid

from django.middleware.csrf import get_token
from django.template import Context
from django.template.defaultfilters import floatformat
from django.template.loader import get_template
from django.utils.html import format_html

from portal.idempotency import FIELD
from portal.rows import date_formatter, labels_of, url_by_pk
from records.models import Document, Observation, Prescription


class _Numbers:
    """``floatformat:"-2"`` of each distinct value once (reference limits repeat on every
    row of a test)."""

    def __init__(self):
        self.seen = {}

    def __call__(self, value):
        if value is None:
            return ""
        found = self.seen.get(value)
        if found is None:
            found = self.seen[value] = floatformat(value, "-2")
        return found


def prepare_observations(observations, *, history_links=True, correct_links=False, dates=False):
    """Set on each of ``observations`` what ``records/observation_table.html`` and the
    history table show: ``flag_class``, ``flag_label``, ``value_text``, ``low_text`` and
    ``high_text`` ("…" for no limit), ``has_range``, ``value_unit`` (the value and its unit)
    and ``range_text`` (the range and its unit, "—" for none); ``history_url``
    (``history_links``), ``correct_url`` (``correct_links``) and ``date_text`` (``dates``: the
    report's date, the sample date it carries). Returns them, as a list."""
    observations = list(observations)
    number, flags = _Numbers(), labels_of(Observation.Flag.choices)
    day = date_formatter("SHORT_DATE_FORMAT") if dates else None
    history_url = url_by_pk("records:observation_history") if history_links else None
    correct_url = url_by_pk("records:correct_observation") if correct_links else None
    for observation in observations:
        flag = observation.flag
        observation.flag_class, observation.flag_label = flag.value, flags[flag]
        observation.value_text = number(observation.value)
        observation.low_text = number(observation.low) or "…"
        observation.high_text = number(observation.high) or "…"
        observation.has_range = observation.low is not None or observation.high is not None
        # The value and range cells' text, for a table that shows them in one piece each.
        observation.value_unit = f"{observation.value_text} {observation.unit}"
        observation.range_text = (
            f"{observation.low_text} – {observation.high_text} {observation.unit}" if observation.has_range else "—"
        )
        if history_url:
            observation.history_url = history_url(observation.pk)
        if correct_url:
            observation.correct_url = correct_url(observation.pk)
        if day:
            observation.date_text = day(observation.collected_on)
    return observations


def prepare_documents(documents):
    """Set on each of ``documents`` what ``records/document_table.html`` shows: ``url`` (its
    page), ``category_label`` and ``care_date_text``. Returns them, as a list."""
    documents = list(documents)
    url, day = url_by_pk("records:document"), date_formatter("SHORT_DATE_FORMAT")
    categories = labels_of(Document._meta.get_field("category").choices)
    for document in documents:
        document.url = url(document.pk)
        document.category_label = categories.get(document.category, document.category)
        document.care_date_text = day(document.care_date)
    return documents


def prepare_prescriptions(prescriptions, *, correctable_teams=(), confidential_form=None):
    """Set on each of ``prescriptions`` what ``records/prescription_table.html`` shows:
    ``route_text``, ``start_text``, ``end_text`` ("—" for none); for a care team, on those
    its teams published (``correctable_teams``), ``confidential_form`` (from
    ``confidential_forms``) and, while it may still be corrected, ``stop_url`` and
    ``replace_url``. Returns them, as a list."""
    prescriptions = list(prescriptions)
    day, routes = date_formatter("SHORT_DATE_FORMAT"), labels_of(Prescription.Route.choices)
    stop_url = url_by_pk("records:stop_prescription") if correctable_teams else None
    replace_url = url_by_pk("records:replace_prescription") if correctable_teams else None
    for prescription in prescriptions:
        prescription.route_text = routes.get(prescription.route, prescription.route)
        prescription.start_text = day(prescription.start_date)
        prescription.end_text = day(prescription.end_date) or "—"
        prescription.stop_url = prescription.replace_url = prescription.confidential_form = ""
        if prescription.team_id in correctable_teams:
            prescription.confidential_form = confidential_form("prescription", prescription, prescription.medication)
            if prescription.is_correctable:
                prescription.stop_url = stop_url(prescription.pk)
                prescription.replace_url = replace_url(prescription.pk)
    return prescriptions


# Stand-ins for the kind, the id, the label and the form token in the confidentiality form
# rendered once per page.
_KIND, _PK, _LABEL, _TOKEN = "KIND-STAND-IN", 987654321, "LABEL-STAND-IN", "TOKEN-STAND-IN"


def confidential_forms(request):
    """A function of an item's kind ("document", "prescription", "lab_report"), the item
    and its label giving the care team's confidentiality form for it, as
    ``records/confidential_toggle.html`` renders it (the form, its link and its strings are
    the template's): the template is rendered once per page for each state instead of once
    per row; each form still has its own token (one form, one action)."""
    template = get_template("records/confidential_toggle.html").template
    context = {"kind": _KIND, "label": _LABEL, "csrf_token": get_token(request)}
    patterns = {}
    for confidential in (False, True):
        html = template.render(Context({**context, "item": {"pk": _PK, "confidential": confidential}}))
        html = re.sub(f'(name="{FIELD}" value=")[^"]*', rf"\g<1>{_TOKEN}", html).replace("{", "{{").replace("}", "}}")
        for stand_in, name in ((_KIND, "{kind}"), (str(_PK), "{pk}"), (_LABEL, "{label}"), (_TOKEN, "{token}")):
            html = html.replace(stand_in, name)
        patterns[confidential] = html

    def form(kind, item, label):
        return format_html(
            patterns[bool(item.confidential)], kind=kind, pk=int(item.pk), label=label, token=uuid.uuid4()
        )

    return form

"""What a list page shows on each of its rows, worked out once per page rather than once
per row by the template: a ``{% url %}`` resolves its route again on every row, a choice's
``get_FOO_display`` rebuilds the choices and translates its label, a date filter looks up
the language's format. The rows then render from plain values (the HTML is the same)."""

import datetime
import html
import re
from functools import cache, lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.translation import get_language

# An id no row has, reversed once in place of each row's own.
_MARKER = 987654321


def url_by_pk(viewname, *, as_html=False):
    """A function of a primary key giving ``reverse(viewname, args=[pk])``, for routes
    whose only argument is an integer id: the route is reversed once per URLconf and
    script prefix (as the layout's ``{% route %}``), not once per page. ``as_html``: the
    link as an autoescaped ``{{ url }}`` writes it, the route's text escaped once (an
    id's digits need no escaping)."""
    head, tail = _route_around_pk(viewname, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    if as_html:
        head, tail = html.escape(head), html.escape(tail)
    return lambda pk: f"{head}{int(pk)}{tail}"


@cache
def _route_around_pk(viewname, urlconf, prefix):
    head, _marker, tail = reverse(viewname, args=[_MARKER], urlconf=urlconf).rpartition(str(_MARKER))
    return head, tail


def labels_of(choices) -> dict:
    """A field's choices as {value: label}, the labels translated once (in the language
    of the request)."""
    return {value: str(label) for value, label in choices}


# Format characters that are plain numbers of the (local) date and time, as fields of one
# ``str.format`` template: the digits ``django.utils.dateformat`` writes for them.
_NUMBERS = {
    "d": "{0.day:02d}",
    "m": "{0.month:02d}",
    "n": "{0.month}",
    "Y": "{0.year:04d}",
    "H": "{0.hour:02d}",
    "G": "{0.hour}",
    "i": "{0.minute:02d}",
    "s": "{0.second:02d}",
}
# Format characters written from a table of what ``DateFormat`` writes for each month, day
# of the week or day of the month, made once per language: the names, and the day without
# a leading zero (« 1er » for the first in French: portal.apps.first_of_the_month).
_LOOKED_UP = {
    "F": "month",
    "E": "month",
    "N": "month",
    "b": "month",
    "M": "month",
    "l": "weekday",
    "D": "weekday",
    "j": "day",
}
_SAMPLES = {  # each key and a day it is the key of (1 January 2001 was a Monday)
    "month": {month: datetime.date(2001, month, 1) for month in range(1, 13)},
    "weekday": {weekday: datetime.date(2001, 1, 1 + weekday) for weekday in range(7)},
    "day": {day: datetime.date(2001, 1, day) for day in range(1, 32)},
}
# What a date (no time) has of them.
_OF_A_DAY = set("dmnY") | set(_LOOKED_UP)


def date_formatter(format_name, *, as_html=False):
    """A function of a date or datetime giving what ``|date:format_name`` shows (local
    time, the language's format; held equal by tests/portal/test_rows.py), for a page of
    many values: the format is split once into its pieces, the request's time zone looked
    up once, and a format of numbers and names only (``d/m/Y H:i``, ``j F Y``; for a date,
    one without the time) written by one ``str.format``, the language's names of the
    months and days looked up once. ``"c"`` is ISO 8601. ``as_html``: the text as an
    autoescaped ``{{ value|date }}`` writes it (``escaped``), such a format with its
    literal text and names escaped once, not each value. Made once per format, language
    and time zone (forgotten when a setting changes)."""
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    return _date_formatter(format_name, as_html, get_language(), zone)


@receiver(setting_changed)
def _forget_formatters(**kwargs):
    _date_formatter.cache_clear()


@lru_cache(maxsize=256)
def _date_formatter(format_name, as_html, language, zone):
    fmt = str(get_format(format_name))  # the active language's: ``language``
    pieces = []  # (text, None) for a literal, (None, character) for a format character
    for index, piece in enumerate(dateformat.re_formatchars.split(fmt)):
        if index % 2:
            pieces.append((None, piece))
        elif piece:
            pieces.append((dateformat.re_escaped.sub(r"\1", piece), None))
    numbers = names = None
    if all(text is not None or char in _NUMBERS or char in _LOOKED_UP for text, char in pieces):
        # One template: the literal text (escaped once for HTML), each number a field of
        # the value, each name a positional field after it, from its table.
        names, template = [], []
        for text, char in pieces:
            if text is not None:
                template.append((html.escape(text) if as_html else text).replace("{", "{{").replace("}", "}}"))
            elif char in _NUMBERS:
                template.append(_NUMBERS[char])
            else:
                key = _LOOKED_UP[char]
                words = {n: str(getattr(dateformat.DateFormat(day), char)()) for n, day in _SAMPLES[key].items()}
                names.append((key, {n: html.escape(word) for n, word in words.items()} if as_html else words))
                template.append(f"{{{len(names)}}}")
        numbers = "".join(template)
    if as_html and numbers is None:
        plain = _date_formatter(format_name, False, language, zone)
        return lambda value: escaped(plain(value))
    # A date (no time) in a format of its day, month, year and names only: the same template.
    date_numbers = numbers if numbers is not None and all(char in _OF_A_DAY for _, char in pieces if char) else None

    def formatted(value):
        if not value:
            return ""
        if not isinstance(value, datetime.datetime):
            if date_numbers is not None:
                if names:
                    return date_numbers.format(value, *_names_of(value, names))
                return date_numbers.format(value)
            text = dateformat.format(value, fmt)  # a date: Django's own checks and errors
            return escaped(text) if as_html else text
        if zone is not None and value.utcoffset() is not None:
            value = value.astimezone(zone)
        if numbers is not None:
            return numbers.format(value, *_names_of(value, names)) if names else numbers.format(value)
        if fmt == "c":
            return value.isoformat()
        by_django = dateformat.DateFormat(value)
        return "".join([text if text is not None else str(getattr(by_django, char)()) for text, char in pieces])

    return formatted


def _names_of(value, names) -> list[str]:
    """What each table of ``names`` (``_LOOKED_UP``) holds for ``value``."""
    return [
        words[value.month if key == "month" else value.day if key == "day" else value.weekday()] for key, words in names
    ]


def escaped(value) -> str:
    """What an autoescaped ``{{ value }}`` writes of a string: Django's ``escape``
    (``html.escape``, five replacements in C), safe strings left as they are, without its
    lazy-string wrapper and ``SafeString``: for a row written once per row in Python,
    ``format_html`` costing a dozen calls per value. (Not ``str.translate``: one call,
    but with a table of several-character replacements it looks up each character, ten
    times slower.) Numbers and dates are not strings: the template localizes them
    (``django.utils.formats.localize``)."""
    return str(value) if hasattr(value, "__html__") else html.escape(str(value))


_NEWLINES, _PARAGRAPH_BREAKS = re.compile(r"\r\n|\r"), re.compile(r"\n{2,}")


def paragraphs(text: str) -> str:
    """What an autoescaped ``{{ text|linebreaks }}`` writes of a plain string (a message's
    body): its paragraphs, its other line breaks as ``<br>``, each value escaped. Without
    the filter's three lazy-text wrappers and lazily compiled patterns: about 5 µs a
    message, 20 on a thread's page."""
    return "\n\n".join(
        [
            "<p>" + html.escape(part).replace("\n", "<br>") + "</p>"
            for part in _PARAGRAPH_BREAKS.split(_NEWLINES.sub("\n", str(text)))
        ]
    )

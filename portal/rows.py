"""What a list page shows on each of its rows, worked out once per page rather than once
per row by the template: a ``{% url %}`` resolves its route again on every row, a choice's
``get_FOO_display`` rebuilds the choices and translates its label, a date filter looks up
the language's format. The rows then render from plain values (the HTML is the same)."""

from django.urls import reverse
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.timezone import template_localtime

# An id no row has, reversed once in place of each row's own.
_MARKER = 987654321


def url_by_pk(viewname):
    """A function of a primary key giving ``reverse(viewname, args=[pk])``, for routes
    whose only argument is an integer id: the route is reversed once."""
    head, _marker, tail = reverse(viewname, args=[_MARKER]).rpartition(str(_MARKER))
    return lambda pk: f"{head}{int(pk)}{tail}"


def labels_of(choices) -> dict:
    """A field's choices as {value: label}, the labels translated once (in the language
    of the request)."""
    return {value: str(label) for value, label in choices}


def date_formatter(format_name):
    """A function of a date or datetime giving what ``|date:format_name`` shows (local
    time, the language's format): the format is looked up once."""
    fmt = get_format(format_name)

    def formatted(value):
        return dateformat.format(template_localtime(value), fmt) if value else ""

    return formatted

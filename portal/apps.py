import datetime
import unicodedata

from django.apps import AppConfig
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

EARLIEST_DATE, LATEST_DATE = datetime.date(1900, 1, 1), datetime.date(2199, 12, 31)


def plausible_date(value):
    """A date a person or a record can have: Django takes years 1 to 9999, and a page's
    arithmetic on them (a week's first day, a day's bounds in Paris time) overflows at
    both ends, an error 500 for a date put in a URL."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(_("Enter a date between 1900 and 2199."), code="implausible_date")


def decimal_comma(to_python):
    """``DecimalField.to_python`` reading one comma, with no point, as the decimal point:
    what a French keyboard types (health values have no thousands separator)."""

    def wrapped(self, value):
        if isinstance(value, str) and value.count(",") == 1 and "." not in value:
            value = value.replace(",", ".")
        return to_python(self, value)

    return wrapped


# Characters that turn the direction of the text around them (embeddings, overrides,
# isolates): in a title or a name they disguise it (« \u202egpj.exe » shows « exe.jpg »).
DIRECTION_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def plain_text(value: str) -> str:
    """``value`` without direction controls, and "" when nothing visible is left (only
    zero-width or other invisible characters): what a form or the API keeps of a text."""
    value = value.translate(DIRECTION_CONTROLS).strip()
    if all(char.isspace() or unicodedata.category(char) == "Cf" for char in value):
        return ""
    return value


def without_direction_controls(to_python):
    """``CharField.to_python`` keeping ``plain_text`` of what is typed, in every field that
    strips its value (a password, ``strip=False``, is kept as typed)."""

    def wrapped(self, value):
        value = to_python(self, value)
        if self.strip and isinstance(value, str) and value:
            value = plain_text(value)
        return value

    wrapped.plain_text = True
    return wrapped


def first_of_the_month(day_of_month):
    """``DateFormat.j`` (the day without a leading zero, as « j F Y » writes it) giving
    « 1er » for the first of a month in French: « le 1er septembre », never « le 1
    septembre ». Other days and languages, and formats of numbers only (« d/m/Y »), are
    unchanged."""

    def wrapped(self):
        day = day_of_month(self)
        if day == 1 and (get_language() or "").startswith("fr"):
            return "1er"
        return day

    wrapped.first_of_the_month = True
    return wrapped


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self):
        from django import forms

        from portal import checks  # noqa: F401 (registers Carnet's system checks)

        # Every date field of every form, read when the field is made (forms are imported
        # after the apps are ready: tests/portal/test_dates.py checks one of each app's).
        if plausible_date not in forms.DateField.default_validators:
            forms.DateField.default_validators = [*forms.DateField.default_validators, plausible_date]
        # Every decimal field of every form (a lab value, its limits, a measurement): typed
        # in a text box with the decimal keypad, "5,4" read as 5.4 in either language
        # (tests/portal/test_decimals.py checks every form's).
        if not getattr(forms.DecimalField, "takes_a_comma", False):
            from portal.widgets import DecimalInput

            forms.DecimalField.widget = DecimalInput
            forms.DecimalField.to_python = decimal_comma(forms.DecimalField.to_python)
            forms.DecimalField.takes_a_comma = True
        # Every text field of every form: a title, a subject, a name (tests/portal/test_hostile_text.py).
        if not getattr(forms.CharField.to_python, "plain_text", False):
            forms.CharField.to_python = without_direction_controls(forms.CharField.to_python)
        # The first option of every select of a model's choices (a measurement's kind...),
        # worded as Carnet's own selects are: « Choisissez… », not « - Choisir une option - ».
        from django.db.models import fields

        fields.BLANK_CHOICE_LABEL = _("Choose…")
        # Every date written with its month's name, by the |date filter, the PDFs and the
        # rows written in Python (portal.rows.date_formatter): tests/portal/test_dates.py.
        from django.utils import dateformat

        if not getattr(dateformat.DateFormat.j, "first_of_the_month", False):
            dateformat.DateFormat.j = first_of_the_month(dateformat.DateFormat.j)

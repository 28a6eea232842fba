import datetime

from django.apps import AppConfig
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

EARLIEST_DATE, LATEST_DATE = datetime.date(1900, 1, 1), datetime.date(2199, 12, 31)


def plausible_date(value):
    """A date a person or a record can have: Django takes years 1 to 9999, and a page's
    arithmetic on them (a week's first day, a day's bounds in Paris time) overflows at
    both ends, an error 500 for a date put in a URL."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(_("Enter a date between 1900 and 2199."), code="implausible_date")


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self):
        from django import forms

        from portal import checks  # noqa: F401 (registers Carnet's system checks)

        # Every date field of every form, read when the field is made (forms are imported
        # after the apps are ready: tests/portal/test_dates.py checks one of each app's).
        if plausible_date not in forms.DateField.default_validators:
            forms.DateField.default_validators = [*forms.DateField.default_validators, plausible_date]

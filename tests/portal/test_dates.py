"""Dates from people and from URLs: between 1900 and 2199 in every form of Carnet
(portal.apps.plausible_date), so that no page's arithmetic on a date (a week's first
day, a day's bounds in Paris time) meets Python's limits: an error said, never a 500."""

import importlib
import inspect

import pytest
from django import forms
from django.urls import reverse

from portal.apps import plausible_date

FORM_MODULES = [
    "records.forms",
    "records.export_forms",
    "agenda.forms",
    "messaging.forms",
    "portal.accounts.forms",
    "portal.careteams.forms",
    "portal.representation.forms",
    "portal.support.forms",
]


def fields_of(kind):
    """Every field of class ``kind`` in every form Carnet defines, as ("module.Form.field", field)."""
    for name in FORM_MODULES:
        module = importlib.import_module(name)
        for _name, form in inspect.getmembers(module, inspect.isclass):
            if issubclass(form, forms.BaseForm) and form.__module__ == name:
                for field_name, field in form.base_fields.items():
                    if isinstance(field, kind):
                        yield f"{name}.{form.__name__}.{field_name}", field


def test_every_date_field_of_every_form_is_bounded():
    checked = 0
    for where, field in fields_of(forms.DateField):
        assert plausible_date in field.validators, where
        checked += 1
    assert checked > 15


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["agenda:team_day", "agenda:team_week"])
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "2026-02-31"])
def test_an_impossible_day_in_the_agenda_url_is_said_not_a_500(client, login, clinician, team, route, day):
    login(clinician)
    response = client.get(reverse(route), {"team": team.pk, "day": day})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="alert alert-error error-summary"' in page and 'href="#id_day"' in page
    assert 'aria-invalid="true"' in page


@pytest.mark.django_db
def test_a_plausible_day_shows_that_day(client, login, clinician, team):
    login(clinician)
    page = client.get(reverse("agenda:team_day"), {"team": team.pk, "day": "2199-12-31"}).content.decode()
    assert "31 décembre 2199" in page and "error-summary" not in page


@pytest.mark.parametrize(
    ("language", "day", "format_name", "written"),
    [
        ("fr", 1, "DATE_FORMAT", "1er septembre 2026"),
        ("fr", 2, "DATE_FORMAT", "2 septembre 2026"),
        ("fr", 1, "l j F Y", "mardi 1er septembre 2026"),
        ("fr", 1, "SHORT_DATE_FORMAT", "01/09/2026"),
        ("en", 1, "DATE_FORMAT", "1 September 2026"),
    ],
)
def test_the_first_of_a_month_is_the_1er_in_french(language, day, format_name, written):
    """By the |date filter and by the rows written in Python, for a date and a date-time
    (in Paris time): « le 1er septembre », numbers-only formats unchanged."""
    import datetime

    from django.template import Context, Template
    from django.utils import timezone, translation

    from portal.rows import date_formatter

    date = datetime.date(2026, 9, day)
    moment = timezone.make_aware(datetime.datetime(2026, 9, day, 10, 0))
    with translation.override(language):
        assert Template("{{ d|date:f }}").render(Context({"d": date, "f": format_name})) == written
        assert date_formatter(format_name)(moment) == written

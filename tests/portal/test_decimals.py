"""Decimal values typed by people (a lab value and its limits, a corrected value, a
measurement): a text box with the decimal keypad, never the browser's number box (which
reads "5,4" as 54 in some languages, silently), and "5,4" read as 5.4 in French and English."""

from decimal import Decimal

import pytest
from django import forms
from django.urls import reverse
from django.utils import translation

from records.models import Measurement, Observation
from tests.portal.test_dates import fields_of


def test_every_decimal_field_of_every_form_is_a_text_box_that_takes_a_comma():
    found = dict(fields_of(forms.DecimalField))
    assert len(found) >= 6, sorted(found)
    for where, field in found.items():
        html = field.widget.render("value", None)
        assert 'type="text"' in html and 'inputmode="decimal"' in html, where
        assert "step=" not in html, where
        for language in ("fr", "en"):
            with translation.override(language):
                assert field.to_python("5,4") == Decimal("5.4"), (where, language)
                assert field.to_python("5.4") == Decimal("5.4"), (where, language)
                with pytest.raises(forms.ValidationError):
                    field.to_python("5,4,1")


@pytest.mark.django_db
def test_a_lab_value_and_a_measurement_typed_with_commas_are_stored_as_typed(client, login, clinician, patient):
    login(clinician)
    client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Bilan", "collected_on": "2026-11-01", "obs-TOTAL_FORMS": "1", "obs-INITIAL_FORMS": "0",
         "obs-0-loinc": "718-7", "obs-0-name": "Hémoglobine", "obs-0-value": "5,4", "obs-0-unit": "g/dL",
         "obs-0-low": "12", "obs-0-high": "16,5"},
    )  # fmt: skip
    observation = Observation.objects.get()
    assert (observation.value, observation.high) == (Decimal("5.4"), Decimal("16.5"))
    client.post(
        reverse("records:clinician_add_profile_entry", args=[patient.pk, "measurement"]),
        {"kind": "weight", "value": "71,5", "measured_on": "2026-11-01"},
    )
    assert Measurement.objects.get().value == Decimal("71.5")

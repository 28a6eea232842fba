"""The records access matrix: each URL × each kind of person."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from portal.careteams.models import CareLink
from records import services
from records.models import Allergy, Measurement, Prescription
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

PEOPLE = ["patient", "other_patient", "clinician", "other_clinician", "blocked_clinician", "support", None]


@pytest.fixture
def blocked_clinician(patient):
    team = CareTeamFactory(name="Pharmacie bloquée")
    CareLinkFactory(patient=patient, team=team, status=CareLink.Status.BLOCKED)
    return ClinicianFactory(teams=[team])


# method, url name, argument, expected status for each of PEOPLE
MATRIX = [
    ("get", "records:documents", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:upload", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:care_teams", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:access_history", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:document", "document", [200, 404, 200, 404, 404, 404, 302]),
    ("get", "records:download", "document", [200, 404, 200, 404, 404, 404, 302]),
    ("get", "records:preview", "document", [200, 404, 200, 404, 404, 404, 302]),
    ("post", "records:set_hidden", "document", [302, 404, 404, 404, 404, 404, 302]),
    ("post", "records:delete", "document", [302, 404, 404, 404, 404, 404, 302]),
    ("get", "records:delete", "document", [302, 404, 404, 404, 404, 404, 302]),
    ("get", "records:clinician_upload", "patient", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:block_team", "link", [302, 404, 404, 404, 404, 404, 302]),
    ("post", "records:block_clinician", "clinician", [302, 404, 404, 404, 404, 404, 302]),
    ("get", "records:prescriptions", None, [200, 200, 404, 404, 404, 404, 302]),
    ("post", "records:request_renewal", "prescription", [302, 404, 404, 404, 404, 404, 302]),
    ("get", "records:add_prescription", "patient", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:stop_prescription", "prescription", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:stop_prescription", "prescription", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:replace_prescription", "prescription", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:replace_prescription", "prescription", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:record_history", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:results", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "records:observation_history", "observation", [200, 404, 200, 404, 404, 404, 302]),
    ("get", "records:measurement_history", "measurement", [200, 404, 200, 404, 404, 404, 302]),
    ("get", "records:add_lab_report", "patient", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:profile", None, [200, 200, 404, 404, 404, 404, 302]),
    ("post", "records:add_profile_entry", "allergy_kind", [200, 200, 404, 404, 404, 404, 302]),
    ("post", "records:delete_profile_entry", "allergy", [302, 404, 404, 404, 404, 404, 302]),
    ("get", "records:delete_profile_entry", "allergy", [200, 404, 404, 404, 404, 404, 302]),
    ("get", "records:withdraw_document", "document", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:withdraw_document", "document", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:replace_document", "document", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:replace_document", "document", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:correct_observation", "observation", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:correct_observation", "observation", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:clinician_add_profile_entry", "patient_allergy", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:clinician_add_profile_entry", "patient_allergy", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "records:comment_profile_entry", "clinician_allergy", [200, 404, 404, 404, 404, 404, 302]),
    ("post", "records:comment_profile_entry", "clinician_allergy", [200, 404, 404, 404, 404, 404, 302]),
    # A patient comments on a professional's entry; their own they change or remove.
    ("get", "records:comment_profile_entry", "allergy", [404, 404, 404, 404, 404, 404, 302]),
]


@pytest.fixture
def clinical(patient, clinician, team):
    """A prescription, an observation and an allergy of the patient."""
    prescription = Prescription.objects.create(
        patient=patient, medication="Compte rendu de consultation", dosage="1", frequency="1/j",
        start_date=datetime.date(2026, 1, 1), renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip
    report = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=datetime.date(2026, 1, 1),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
    )  # fmt: skip
    allergy = Allergy.objects.create(patient=patient, author=patient.user, substance="Arachide")
    by_team = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")
    weight = Measurement.objects.create(
        patient=patient, author=clinician, team=team, kind="weight", value=70, measured_on=datetime.date(2026, 1, 1)
    )
    return {
        "measurement": weight,
        "prescription": prescription,
        "observation": report.observations.get(),
        "allergy": allergy,
        "clinician_allergy": by_team,
    }


@pytest.mark.parametrize(("method", "name", "arg", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_records_access_matrix(
    request, client, login, patient, clinician, clinician_document, clinical, method, name, arg, expected, who_index
):
    who = PEOPLE[who_index]
    if who is not None:
        login(request.getfixturevalue(who))
    args = {
        None: [],
        "document": [clinician_document.pk],
        "patient": [patient.pk],
        "link": [patient.care_links.first().pk],
        "clinician": [clinician.pk],
        "prescription": [clinical["prescription"].pk],
        "observation": [clinical["observation"].pk],
        "measurement": [clinical["measurement"].pk],
        "allergy_kind": ["allergy"],
        "allergy": ["allergy", clinical["allergy"].pk],
        "clinician_allergy": ["allergy", clinical["clinician_allergy"].pk],
        "patient_allergy": [patient.pk, "allergy"],
    }[arg]
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == expected[who_index], (name, who)
    if who is None:
        assert response["Location"].startswith(reverse("account_login"))
    if response.status_code != 200 or who in ("other_patient", "other_clinician", "blocked_clinician", "support"):
        body = response.content
        assert b"Compte rendu de consultation" not in body
        assert patient.last_name.encode() not in body

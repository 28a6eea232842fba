"""The records access matrix: each URL × each kind of person."""

import pytest
from django.urls import reverse

from portal.careteams.models import CareLink
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
    ("get", "records:clinician_upload", "patient", [404, 404, 200, 404, 404, 404, 302]),
    ("post", "records:block_team", "link", [302, 404, 404, 404, 404, 404, 302]),
    ("post", "records:block_clinician", "clinician", [302, 404, 404, 404, 404, 404, 302]),
]


@pytest.mark.parametrize(("method", "name", "arg", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_records_access_matrix(
    request, client, login, patient, clinician, clinician_document, method, name, arg, expected, who_index
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
    }[arg]
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == expected[who_index], (name, who)
    if who is None:
        assert response["Location"].startswith(reverse("account_login"))
    if response.status_code != 200 or who in ("other_patient", "other_clinician", "blocked_clinician", "support"):
        body = response.content
        assert b"Compte rendu de consultation" not in body
        assert patient.last_name.encode() not in body

"""Who reaches which messaging URL: the access matrix."""

import pytest
from django.urls import reverse

from portal.careteams.models import CareLink
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

PEOPLE = ["patient", "other_patient", "clinician", "other_clinician", "blocked_clinician", "support", None]


@pytest.fixture
def blocked_clinician(patient, conversation):
    """A clinician of a team the patient has blocked, which the conversation's team also is."""
    team = CareTeamFactory(name="Pharmacie bloquée")
    CareLinkFactory(patient=patient, team=team, status=CareLink.Status.BLOCKED)
    return ClinicianFactory(teams=[team])


# (method, url name, takes the conversation / the patient, expected status for each of PEOPLE)
MATRIX = [
    ("get", "messaging:inbox", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "messaging:new", None, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "messaging:preferences", None, [302, 302, 404, 404, 404, 404, 302]),  # to the account page
    ("get", "messaging:conversation", "conversation", [200, 404, 200, 404, 404, 404, 302]),
    ("get", "messaging:thread", "conversation", [200, 404, 200, 404, 404, 404, 302]),
    ("post", "messaging:assign", "conversation", [404, 404, 302, 404, 404, 404, 302]),
    ("post", "messaging:status", "conversation", [404, 404, 302, 404, 404, 404, 302]),
    ("get", "messaging:team_inbox", None, [404, 404, 200, 200, 200, 404, 302]),
    ("get", "messaging:team_new", "patient", [404, 404, 200, 404, 404, 404, 302]),
    ("get", "messaging:reply_templates", None, [404, 404, 200, 200, 200, 404, 302]),
]


@pytest.mark.parametrize(("method", "name", "arg", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_messaging_access_matrix(request, client, login, patient, conversation, method, name, arg, expected, who_index):
    who = PEOPLE[who_index]
    if who is not None:
        login(request.getfixturevalue(who))
    args = {None: [], "conversation": [conversation.pk], "patient": [patient.pk]}[arg]
    response = getattr(client, method)(reverse(name, args=args), {"status": "closed"} if method == "post" else {})
    assert response.status_code == expected[who_index], (name, who)
    if response.status_code == 302 and who is None:
        assert response["Location"].startswith(reverse("account_login"))
    if response.status_code != 200 or who in ("other_patient", "other_clinician", "blocked_clinician", "support"):
        body = response.content.decode()
        assert conversation.subject not in body
        assert "genou" not in body


def test_support_cannot_read_any_conversation(client, login, support, conversation):
    login(support)
    for name in ("messaging:conversation", "messaging:thread"):
        assert client.get(reverse(name, args=[conversation.pk])).status_code == 404


def test_a_clinician_of_the_team_loses_access_when_the_patient_blocks_the_team(client, login, clinician, conversation):
    conversation.patient.care_links.update(status=CareLink.Status.BLOCKED)
    login(clinician)
    assert client.get(reverse("messaging:conversation", args=[conversation.pk])).status_code == 404


def test_a_clinician_of_another_team_of_the_patient_cannot_read_this_teams_conversation(
    client, login, patient, conversation, other_team
):
    CareLinkFactory(patient=patient, team=other_team)
    colleague_elsewhere = ClinicianFactory(teams=[other_team])
    login(colleague_elsewhere)
    assert client.get(reverse("messaging:conversation", args=[conversation.pk])).status_code == 404

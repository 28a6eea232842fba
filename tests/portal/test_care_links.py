"""Care links end on a date, the team loses access, the patient sees it; and the access
matrix of every care-team page this work added."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AccessLog
from portal.careteams.models import CareLink
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

PEOPLE = [
    "patient",
    "other_patient",
    "clinician",
    "other_clinician",
    "blocked_clinician",
    "ended_clinician",
    "support",
    None,
]


@pytest.fixture
def blocked_clinician(patient):
    """A clinician whose team the patient has blocked."""
    team = CareTeamFactory(name="Pharmacie bloquée")
    CareLinkFactory(patient=patient, team=team, status=CareLink.Status.BLOCKED)
    return ClinicianFactory(teams=[team])


@pytest.fixture
def ended_clinician(patient):
    """A clinician whose team's link with the patient has ended."""
    team = CareTeamFactory(name="Service de chirurgie")
    CareLinkFactory(patient=patient, team=team, status=CareLink.Status.ENDED, ended_on=datetime.date(2026, 1, 1))
    return ClinicianFactory(teams=[team])


# method, url name, argument, expected status for each of PEOPLE
MATRIX = [
    ("get", "careteams:register_patient", None, [404, 404, 200, 200, 200, 200, 404, 302]),
    ("post", "careteams:register_patient", None, [404, 404, 200, 200, 200, 200, 404, 302]),
    ("get", "careteams:end_link", "link", [404, 404, 200, 404, 404, 404, 404, 302]),
    ("post", "careteams:end_link", "link", [404, 404, 302, 404, 404, 404, 404, 302]),
    ("get", "careteams:end_link", "blocked_link", [404, 404, 404, 404, 404, 404, 404, 302]),
    ("get", "careteams:end_link", "ended_link", [404, 404, 404, 404, 404, 404, 404, 302]),
    *(
        ("get", f"careteams:patient_{page}", "patient", [404, 404, 200, 404, 404, 404, 404, 302])
        for page in ("detail", "documents", "prescriptions", "results")
    ),
    ("get", "careteams:patient_list", None, [404, 404, 200, 200, 200, 200, 404, 302]),
    ("post", "careteams:patient_list", None, [404, 404, 302, 302, 302, 302, 404, 302]),
]


@pytest.mark.parametrize(("method", "name", "arg", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_care_pages_access_matrix(
    request, client, login, patient, team, blocked_clinician, ended_clinician, method, name, arg, expected, who_index
):
    who = PEOPLE[who_index]
    if who is not None:
        login(request.getfixturevalue(who))
    links = {link.status: link for link in patient.care_links.all()}
    args = {
        None: [],
        "patient": [patient.pk],
        "link": [links["active"].pk],
        "blocked_link": [links["blocked"].pk],
        "ended_link": [links["ended"].pk],
    }[arg]
    data = {"ended_on": timezone.localdate().isoformat(), "name": "dur"} if method == "post" else None
    response = getattr(client, method)(reverse(name, args=args), data)
    assert response.status_code == expected[who_index], (name, arg, who)
    if who is None:
        assert response["Location"].startswith(reverse("account_login"))
    if response.status_code == 404 or who in ("other_clinician", "blocked_clinician", "ended_clinician"):
        assert patient.last_name not in response.content.decode()
    if name == "careteams:end_link" and method == "post" and response.status_code == 404:
        assert links["active"].__class__.objects.get(pk=links["active"].pk).status == "active"


def test_ending_a_link_takes_the_teams_access_away(client, login, clinician, patient, team):
    link = patient.care_links.get(team=team)
    link.started_on = datetime.date(2024, 3, 1)
    link.save(update_fields=["started_on"])
    login(clinician)
    response = client.post(reverse("careteams:end_link", args=[link.pk]), {"ended_on": "2026-01-31"})
    assert response["Location"] == reverse("careteams:patient_list")
    link.refresh_from_db()
    assert (link.status, link.ended_on) == ("ended", datetime.date(2026, 1, 31))
    assert client.get(reverse("careteams:patient_detail", args=[patient.pk])).status_code == 404
    assert "DURAND" not in client.get(reverse("careteams:patient_list")).content.decode()
    log = AccessLog.objects.get(action="link_ended")
    assert (log.patient, log.actor, log.team) == (patient, clinician, team)


def test_the_patient_sees_the_ended_link_and_its_date(client, login, clinician, patient, team):
    link = patient.care_links.get(team=team)
    login(clinician)
    client.post(reverse("careteams:end_link", args=[link.pk]), {"ended_on": timezone.localdate().isoformat()})
    login(patient)
    page = client.get(reverse("records:care_teams")).content.decode()
    assert team.name in page
    assert "terminé le" in page
    assert "n’a plus accès à votre dossier" in page
    history = client.get(reverse("records:access_history")).content.decode()
    assert "lien" in history.lower()


@pytest.mark.parametrize(("days", "error"), [(1, "future"), (-4000, "before")])
def test_an_end_date_in_the_future_or_before_the_start_is_refused(client, login, clinician, patient, team, days, error):
    link = patient.care_links.get(team=team)
    login(clinician)
    ended_on = timezone.localdate() + datetime.timedelta(days=days)
    response = client.post(reverse("careteams:end_link", args=[link.pk]), {"ended_on": ended_on.isoformat()})
    assert response.status_code == 200
    assert "ended_on" in response.context["form"].errors
    assert 'href="#id_ended_on"' in response.content.decode()
    link.refresh_from_db()
    assert link.status == "active"


def test_ending_twice_changes_nothing_the_second_time(client, login, clinician, patient, team):
    """A double submit: the second finds no link the clinician may end (404), and the
    end date and history stay as the first wrote them."""
    link = patient.care_links.get(team=team)
    login(clinician)
    client.post(reverse("careteams:end_link", args=[link.pk]), {"ended_on": timezone.localdate().isoformat()})
    second = client.post(reverse("careteams:end_link", args=[link.pk]), {"ended_on": "2025-01-01"})
    assert second.status_code == 404
    link.refresh_from_db()
    assert link.ended_on == timezone.localdate()
    assert AccessLog.objects.filter(action="link_ended").count() == 1


def test_a_clinician_ends_only_their_own_teams_link(client, login, clinician, patient, team, other_team):
    """A patient cared for by two teams: a clinician of one cannot end the other's link."""
    other_link = CareLinkFactory(patient=patient, team=other_team)
    login(clinician)
    assert (
        client.post(reverse("careteams:end_link", args=[other_link.pk]), {"ended_on": "2026-01-01"}).status_code == 404
    )
    page = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    assert reverse("careteams:end_link", args=[other_link.pk]) not in page
    assert reverse("careteams:end_link", args=[patient.care_links.get(team=team).pk]) in page

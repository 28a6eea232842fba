"""A team's reply time is a number of working days (0: the same day), worded in the
reader's language on each conversation and on the team's settings; a manager sets it.
The free texts teams wrote before are read as days by the migration."""

import importlib

import pytest
from django.urls import reverse

from portal.careteams.models import Membership
from tests.factories import ClinicianFactory

migration = importlib.import_module("portal.careteams.migrations.0006_reply_time_in_working_days")


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("sous 2 jours ouvrés", 2),
        ("Sous 5 jours ouvrés", 5),
        ("sous 1 jour ouvré", 1),
        ("dans la journée", 0),
        ("Réponse le jour même", 0),
        ("within 3 working days", 3),
        ("sous deux jours ouvrés", 2),
        ("sous 48 h", None),
        ("quand nous pouvons", None),
        ("", None),
        ("sous 90 jours ouvrés", None),
    ],
)
def test_the_old_texts_are_read_as_working_days(text, days):
    assert migration.days_from_text(text) == days


# (working days, French, English)
WORDING = [
    (0, "dans la journée", "the same day"),
    (1, "sous 1 jour ouvré", "within 1 working day"),
    (2, "sous 2 jours ouvrés", "within 2 working days"),
    (5, "sous 5 jours ouvrés", "within 5 working days"),
]


def test_a_team_that_stated_no_reply_time_promises_nothing(client, login, patient, clinician, team, conversation):
    team.reply_days = None
    team.save(update_fields=["reply_days"])
    login(patient)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert "Délai de réponse" not in page and "jours ouvrés" not in page
    login(clinician)
    settings_page = client.get(reverse("careteams:team_settings", args=[team.pk])).content.decode()
    assert "Non indiqué" in settings_page


@pytest.mark.parametrize(("days", "french", "english"), WORDING)
def test_the_patient_reads_the_reply_time_in_their_language(
    days, french, english, client, login, patient, team, conversation, settings
):
    team.reply_days = days
    team.save(update_fields=["reply_days"])
    login(patient)
    url = reverse("messaging:conversation", args=[conversation.pk])
    assert f"<dd>{french}</dd>" in client.get(url).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert f"<dd>{english}</dd>" in client.get(url).content.decode()


@pytest.mark.parametrize(("days", "french", "english"), WORDING[:3])
def test_a_member_reads_it_on_the_teams_settings(days, french, english, client, login, clinician, team, settings):
    team.reply_days = days
    team.save(update_fields=["reply_days"])
    login(clinician)
    url = reverse("careteams:team_settings", args=[team.pk])
    assert f"<dd>{french}</dd>" in client.get(url).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert f"<dd>{english}</dd>" in client.get(url).content.decode()


def test_a_manager_sets_it_within_bounds(client, login, team):
    manager = ClinicianFactory()
    Membership.objects.create(team=team, user=manager, is_manager=True)
    login(manager)
    url = reverse("careteams:team_settings", args=[team.pk])
    for value, saved in (("0", 0), ("", None), ("3", 3)):
        answer = client.post(url, {"cancellation_notice_hours": "24", "reply_days": value})
        assert answer.status_code == 302
        team.refresh_from_db()
        assert team.reply_days == saved
    for wrong in ("31", "-1", "deux"):
        answer = client.post(url, {"cancellation_notice_hours": "24", "reply_days": wrong})
        assert answer.status_code == 200 and 'class="errorlist"' in answer.content.decode()
    team.refresh_from_db()
    assert team.reply_days == 3

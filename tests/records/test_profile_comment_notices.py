"""A patient comments on an entry of their medical profile a professional wrote: the
members of that professional's team who care for them are told once, by a content-free
email in French and English, and read the comment beside the entry on the patient's
page. Another team, and a clinician the patient blocked, are told nothing."""

import pytest
from django.core import mail
from django.urls import reverse

from messaging import tasks
from messaging.models import Notification
from portal.careteams.models import ClinicianBlock
from records import services
from records.models import Allergy
from tests.factories import CareLinkFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

COMMENT = "Je n’y suis pas allergique, c’était une erreur"
FRENCH = "Un patient a commenté son profil médical – ouvrez Carnet"
ENGLISH = "A patient commented on their medical profile – open Carnet"


@pytest.fixture
def allergy(patient, team, clinician):
    return Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Pénicilline")


def test_the_comment_tells_the_writers_team_once_and_content_free(
    client, login, patient, team, other_team, clinician, other_clinician, allergy, django_capture_on_commit_callbacks
):
    CareLinkFactory(patient=patient, team=other_team)  # cares for her too, but did not write the entry
    colleague = ClinicianFactory(first_name="Paul", last_name="Petit", teams=[team])
    blocked = ClinicianFactory(teams=[team])
    ClinicianBlock.objects.create(patient=patient, clinician=blocked)
    login(patient)
    url = reverse("records:comment_profile_entry", args=["allergy", allergy.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"body": COMMENT}).status_code == 302

    assert sorted(email.to[0] for email in mail.outbox) == sorted([clinician.email, colleague.email])
    for email in mail.outbox:
        assert FRENCH in email.subject and ENGLISH in email.subject
        assert "Un patient a commenté une information de son profil médical" in email.body
        assert "A patient commented on an entry your care team wrote" in email.body
        text = email.subject + email.body
        for secret in (COMMENT, "allergique", "Pénicilline", patient.last_name, patient.first_name, team.name):
            assert secret not in text
    page_url = reverse("careteams:patient_detail", args=[patient.pk])
    assert page_url in mail.outbox[0].body

    for notification in Notification.objects.all():  # a retried task sends nothing more
        tasks.deliver_notification(notification.pk)
    assert len(mail.outbox) == 2

    login(clinician)  # where the email leads: the comment beside the entry
    page = client.get(page_url).content.decode()
    assert "Pénicilline" in page and COMMENT in page and "Commentaire du patient du" in page


def test_a_comment_on_another_teams_entry_tells_that_team_only(
    patient, team, other_team, clinician, other_clinician, django_capture_on_commit_callbacks
):
    CareLinkFactory(patient=patient, team=other_team)
    entry = Allergy.objects.create(patient=patient, author=other_clinician, team=other_team, substance="Iode")
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_profile_entry(author=patient.user, entry=entry, body="Faux")
    assert [email.to for email in mail.outbox] == [[other_clinician.email]]


def test_each_comment_is_told_once(patient, clinician, allergy, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_profile_entry(author=patient.user, entry=allergy, body="Faux")
        services.comment_profile_entry(author=patient.user, entry=allergy, body="Vraiment faux")
    assert [email.to for email in mail.outbox] == [[clinician.email], [clinician.email]]
    assert Notification.objects.filter(recipient=clinician, kind="profile_comment").count() == 2

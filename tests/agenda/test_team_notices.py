"""A patient (or whoever looks after their record) cancels an appointment: the members of
the appointment's team who care for them are told once, by a content-free email in French
and English (the new-message outbox: ``messaging.Notification``), and read what happened on
their agenda. Another team, a clinician the patient blocked, and a team's own cancellation
tell nobody on the team."""

import pytest
from django.core import mail
from django.urls import reverse

from agenda import services
from agenda.models import Appointment
from messaging import services as messaging
from messaging import tasks
from messaging.models import Notification
from portal.careteams.models import ClinicianBlock
from tests.conftest import switch
from tests.factories import AppointmentFactory, CareLinkFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

REASON = "Je suis hospitalisée à Lyon cette semaine"
FRENCH = "Un patient a annulé un rendez-vous – ouvrez Carnet"
ENGLISH = "A patient cancelled an appointment – open Carnet"


@pytest.fixture
def colleague(team):
    return ClinicianFactory(first_name="Paul", last_name="Petit", teams=[team])


@pytest.fixture
def blocked(team, patient):
    """A member of the team the patient blocked: they see nothing of the patient, so are told nothing."""
    user = ClinicianFactory(first_name="Denis", last_name="Bloqué", teams=[team])
    ClinicianBlock.objects.create(patient=patient, clinician=user)
    return user


@pytest.fixture
def appointment(patient, team, clinician):
    return AppointmentFactory(patient=patient, team=team, created_by=clinician, with_whom="Dr Claire Martin")


def cancel(client, appointment, capture, reason=REASON):
    with capture(execute=True):
        return client.post(reverse("agenda:patient_cancel", args=[appointment.pk]), {"reason": reason})


def test_the_patients_cancellation_tells_the_appointments_team_once_and_content_free(
    client, login, patient, team, other_team, clinician, colleague, blocked, other_clinician, appointment,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    CareLinkFactory(patient=patient, team=other_team)  # another team caring for her: not its appointment
    ClinicianFactory(teams=[team], is_active=False)  # a former member: nobody reads their mail
    login(patient)
    assert cancel(client, appointment, django_capture_on_commit_callbacks).status_code == 302

    assert sorted(email.to[0] for email in mail.outbox) == sorted([clinician.email, colleague.email])
    for email in mail.outbox:
        assert FRENCH in email.subject and ENGLISH in email.subject
        assert "Un patient a annulé un rendez-vous avec votre équipe de soins" in email.body
        assert "A patient cancelled an appointment with your care team" in email.body
        text = email.subject + email.body
        for secret in (REASON, "hospitalisée", patient.last_name, patient.first_name, team.name, "Lilas", "Claire"):
            assert secret not in text
    day = appointment.local_start.date().isoformat()
    link = f"{reverse('agenda:team_day')}?team={team.pk}&day={day}"
    assert link in mail.outbox[0].body

    # Once: a retried task, the relay, the same form again: no second email.
    for notification in Notification.objects.filter(kind="appt_cancelled"):
        tasks.deliver_notification(notification.pk)
    assert messaging.relay_pending_notifications(older_than_seconds=0) == 0
    again = cancel(client, appointment, django_capture_on_commit_callbacks)  # already cancelled: said so
    assert again.status_code == 302 and again["Location"] == reverse("agenda:mine")
    assert "Ce rendez-vous est déjà annulé." in client.get(again["Location"]).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_by_patient(user=patient.user, appointment=appointment, reason="encore")
    assert len(mail.outbox) == 2
    assert Notification.objects.filter(kind="appt_cancelled").count() == 2

    # In Carnet, the team reads it on the agenda the email links to: struck, with her reason.
    login(clinician)
    page = client.get(link).content.decode()
    assert 'class="is-cancelled"' in page and REASON in page and "Annulé" in page
    assert "<small>par le patient</small>" in page  # who cancelled


def test_the_parents_cancellation_for_a_minor_tells_the_team(
    client, login, parent, minor, team, clinician, django_capture_on_commit_callbacks
):
    appointment = AppointmentFactory(patient=minor, team=team, created_by=clinician)
    login(parent)
    switch(client, minor)
    assert cancel(client, appointment, django_capture_on_commit_callbacks).status_code == 302
    assert Appointment.objects.get(pk=appointment.pk).cancelled_by == parent.user
    (email,) = mail.outbox
    assert email.to == [clinician.email] and FRENCH in email.subject
    assert minor.first_name not in email.subject + email.body
    login(clinician)
    page = client.get(reverse("agenda:team_day"), {"team": team.pk, "day": appointment.local_start.date()})
    assert "<small>par un représentant du patient</small>" in page.content.decode()


def test_the_teams_own_cancellation_tells_no_member(
    client, login, patient, team, clinician, colleague, appointment, django_capture_on_commit_callbacks
):
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("agenda:cancel", args=[appointment.pk]), {"reason": "Médecin absent"})
    assert Appointment.objects.get(pk=appointment.pk).is_cancelled
    assert not Notification.objects.exists()
    assert [email.to for email in mail.outbox] == [[patient.user.email]]  # the patient's digest only
    page = client.get(reverse("agenda:team_day"), {"team": team.pk, "day": appointment.local_start.date()})
    assert f"<small>par {clinician.get_full_name()}</small>" in page.content.decode()


def test_nobody_is_told_once_the_link_is_ended(patient, team, clinician, appointment):
    from portal.careteams.models import CareLink

    CareLink.objects.filter(patient=patient, team=team).update(status=CareLink.Status.ENDED)
    services.cancel_by_patient(user=patient.user, appointment=appointment, reason="")
    assert not Notification.objects.exists()


def test_a_notice_kept_while_the_broker_was_down_is_relayed_once(
    patient, team, clinician, appointment, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.deliver_notification, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_by_patient(user=patient.user, appointment=appointment, reason="")
    assert mail.outbox == [] and Notification.objects.get().status == "pending"
    monkeypatch.undo()
    assert messaging.relay_pending_notifications(older_than_seconds=0) == 1
    assert messaging.relay_pending_notifications(older_than_seconds=0) == 0
    assert [email.to for email in mail.outbox] == [[clinician.email]]

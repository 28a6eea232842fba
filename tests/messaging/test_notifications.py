"""New-message emails: written to an outbox with the message, relayed after commit,
sent exactly once, never with health content, never lost when the broker is down."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from messaging import services, tasks
from messaging.models import Notification
from portal.accounts.models import NoticePreference
from portal.celery import app as celery_app
from tests.conftest import forget_broker_connections, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {"socket_connect_timeout": 0.5})
    # The app caches its connections, bound to the old URL: dropped for this test and after.
    forget_broker_connections()
    yield
    forget_broker_connections()


def send_reply(clinician, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.send_message(author=clinician, conversation=conversation, body="Vos résultats sont normaux.")


def test_a_reply_notifies_the_patient_once_without_health_content(
    clinician, conversation, django_capture_on_commit_callbacks
):
    send_reply(clinician, conversation, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [conversation.patient.user.email]
    text = email.subject + email.body
    assert email.subject == "Nouveau message sur Carnet / New message on Carnet"
    french, english = email.body.split("\n\n---\n\n")  # as every email to a person (portal.mail)
    assert "Vous avez un nouveau message sur Carnet" in french and "You have a new message on Carnet" in english
    for secret in ("résultats", "genou", conversation.subject, conversation.team.name, clinician.last_name):
        assert secret not in text
    assert Notification.objects.get(recipient=conversation.patient.user).status == "sent"


def test_the_patients_message_notifies_the_team_or_the_assignee(
    patient, clinician, team, conversation, django_capture_on_commit_callbacks
):
    assert [n.recipient for n in Notification.objects.all()] == [clinician]
    services.assign_conversation(actor=clinician, conversation=conversation, assignee=clinician)
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(author=patient.user, conversation=conversation, body="Merci !")
    assert Notification.objects.filter(recipient=clinician).count() == 2


def test_nothing_is_enqueued_before_commit(clinician, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.send_message(author=clinician, conversation=conversation, body="Réponse")
    assert mail.outbox == []
    assert len(callbacks) == 1
    assert Notification.objects.filter(status="pending").count() == 2  # the first message's, and this one's


def test_a_task_delivered_twice_sends_one_email(clinician, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.send_message(author=clinician, conversation=conversation, body="Réponse")
    notification = Notification.objects.get(recipient=conversation.patient.user)
    tasks.deliver_notification(notification.pk)
    tasks.deliver_notification(notification.pk)
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_patients_can_turn_emails_off(clinician, conversation, django_capture_on_commit_callbacks):
    NoticePreference.objects.create(user=conversation.patient.user, kind="messages", enabled=False)
    send_reply(clinician, conversation, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert Notification.objects.get(recipient=conversation.patient.user).status == "skipped"


def test_preferences_page_saves_the_choice(client, login, patient):
    """The inbox's link leads to the account page, where every kind of news is chosen."""
    login(patient)
    assert client.get(reverse("messaging:preferences"))["Location"].startswith(reverse("accounts:security"))
    response = client.post(reverse("accounts:notice_preferences"), {"documents-email": "on"})
    assert response.status_code == 302
    assert NoticePreference.objects.get(user=patient.user, kind="messages").enabled is False
    assert NoticePreference.objects.get(user=patient.user, kind="documents").enabled is True


def test_message_sent_while_the_broker_is_down_is_saved_and_relayed_later(
    client, login, clinician, conversation, broker_down, django_capture_on_commit_callbacks, monkeypatch
):
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Réponse."})
    assert response.status_code == 302
    assert conversation.messages.count() == 2
    from portal import jobs

    assert jobs._broker_failed_at is not None  # the broker was really out of reach
    notification = Notification.objects.get(recipient=conversation.patient.user)
    assert notification.status == "pending"
    assert mail.outbox == []

    # The broker is back, and the web process's rest after the failure is over (portal.jobs.send):
    # the periodic relay hands the notification over, once.
    monkeypatch.setattr(jobs, "_broker_failed_at", None)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    assert services.relay_pending_notifications(older_than_seconds=0) == 2  # the patient's first message too
    assert services.relay_pending_notifications(older_than_seconds=0) == 0
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert [m.to for m in mail.outbox].count([conversation.patient.user.email]) == 1


def test_notification_goes_through_a_real_worker(celery_worker, clinician, conversation):
    services.send_message(author=clinician, conversation=conversation, body="Réponse")  # commits: transactional db
    notification = Notification.objects.get(recipient=conversation.patient.user)
    assert wait_for(lambda: Notification.objects.get(pk=notification.pk).status == "sent")


@pytest.mark.parametrize(
    "case",
    ["plain", "assignee blocked", "colleague blocked", "colleague inactive", "link ended", "assignee left the team"],
)
def test_a_patients_message_reaches_only_clinicians_who_may_read_it(
    case, patient, clinician, team, conversation, django_capture_on_commit_callbacks
):
    """A message tells (content-free) only the team's clinicians who may open it: an active
    link through that team, not blocked by the patient, still in the team and active; the
    assignee when they may, else the others who may."""
    from portal.careteams.models import ClinicianBlock, Membership
    from tests.factories import ClinicianFactory

    colleague = ClinicianFactory(teams=[team])
    services.assign_conversation(actor=clinician, conversation=conversation, assignee=clinician)
    expected = {clinician}
    if case == "assignee blocked":
        ClinicianBlock.objects.create(patient=patient, clinician=clinician)
        expected = {colleague}
    elif case == "colleague blocked":
        ClinicianBlock.objects.create(patient=patient, clinician=colleague)
        conversation.assigned_to = None
        conversation.save(update_fields=["assigned_to"])
    elif case == "colleague inactive":
        colleague.is_active = False
        colleague.save(update_fields=["is_active"])
        conversation.assigned_to = None
        conversation.save(update_fields=["assigned_to"])
    elif case == "link ended":
        patient.care_links.update(status="ended")
        expected = set()
    elif case == "assignee left the team":
        Membership.objects.filter(user=clinician, team=team).delete()
        expected = {colleague}
    elif case == "plain":
        conversation.assigned_to = None
        conversation.save(update_fields=["assigned_to"])
        expected = {clinician, colleague}
    Notification.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        if expected:
            services.send_message(author=patient.user, conversation=conversation, body="Merci !")
        else:  # nobody may read it: not sent at all (tests/messaging/test_nobody_to_read.py)
            with pytest.raises(ValidationError):
                services.send_message(author=patient.user, conversation=conversation, body="Merci !")
    assert {n.recipient for n in Notification.objects.all()} == expected, case


@pytest.mark.parametrize("confidential", [True, False])
def test_a_conversation_a_care_team_starts_confidential_never_reaches_the_parents(
    client, login, clinician, team, minor, parent, confidential, django_capture_on_commit_callbacks
):
    """The box is on the care team's new-conversation form (not the patient's): ticked,
    the parent is neither shown the conversation nor told of it, from the first message.
    (Léa has a login of her own here, to read it: without one, nobody could, and it is
    refused, see tests/messaging/test_nobody_to_read.py.)"""
    from messaging.models import Conversation
    from tests.conftest import switch
    from tests.factories import UserFactory

    minor.user = UserFactory(first_name="Léa", last_name="Durand")
    minor.save(update_fields=["user"])
    login(clinician)
    url = reverse("messaging:team_new", args=[minor.pk])
    assert 'name="confidential"' in client.get(url).content.decode()
    data = {"team": team.pk, "kind": "question", "subject": "Consultation du 3", "body": "Bonjour Léa"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {**data, **({"confidential": "on"} if confidential else {})})
    conversation = Conversation.objects.get()
    assert conversation.confidential is confidential
    told = {address for email in mail.outbox for address in email.to}
    assert (parent.user.email in told) is not confidential
    login(parent)
    switch(client, minor)
    inbox = client.get(reverse("messaging:inbox"))
    assert ("Consultation du 3" in inbox.content.decode()) is not confidential
    assert 'name="confidential"' not in client.get(reverse("messaging:new")).content.decode()


def test_the_link_in_each_email_opens_its_recipients_inbox(
    client, login, settings, patient, clinician, conversation, django_capture_on_commit_callbacks
):
    """A clinician's link leads to the team inbox and a patient's to theirs: neither to a 404."""
    import re

    send_reply(clinician, conversation, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(author=patient.user, conversation=conversation, body="Merci !")
    emails = {email.to[0]: email for email in mail.outbox}
    for user, inbox in ((patient.user, "messaging:inbox"), (clinician, "messaging:team_inbox")):
        url = re.search(re.escape(settings.SITE_URL) + r"(/\S*)", emails[user.email].body).group(1)
        assert url == reverse(inbox)
        login(user)
        assert client.get(url).status_code == 200

"""Patients are told what is new: a content-free email through an outbox, at most one
per 15 minutes (a digest), per their preferences; a "new" marker until they open it."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import NoticePreference
from records import services, tasks
from records.models import Digest, News, Prescription

pytestmark = pytest.mark.django_db

GLUCOSE = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.42"), "unit": "g/L", "high": Decimal("1.1")}]


def publish_report(clinician, team, patient, title="Bilan sanguin"):
    return services.add_lab_report(
        author=clinician, team=team, patient=patient, title=title, collected_on=datetime.date(2026, 11, 2),
        observations=GLUCOSE,
    )  # fmt: skip


def publish_prescription(clinician, team, patient):
    return services.add_prescription(
        prescription=Prescription(
            patient=patient, medication="Metformine 500 mg", dosage="1", frequency="2/j",
            start_date=datetime.date(2026, 11, 2), prescriber=clinician, team=team,
        )
    )  # fmt: skip


def test_a_published_document_sends_one_content_free_email(clinician_document, patient):
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [patient.user.email]
    assert "Un nouveau document est disponible dans Carnet." in email.body
    assert "A new document is available in Carnet." in email.body
    # No health content: not the title, not the team, not the category.
    for secret in ("Compte rendu", "consultation", "Tilleuls", "report"):
        assert secret not in email.body and secret not in email.subject
    news = News.objects.get()
    assert (news.kind, news.document, news.digest.status) == ("document", clinician_document, "sent")


def test_the_patients_own_upload_is_no_news(patient_document):
    assert not News.objects.exists()
    assert mail.outbox == []


def test_news_arriving_within_15_minutes_goes_out_as_one_digest(
    clinician, team, patient, django_capture_on_commit_callbacks
):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            publish_report(clinician, team, patient)
        assert len(mail.outbox) == 1  # the first news goes at once
    with time_machine.travel(start + datetime.timedelta(minutes=2), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            publish_report(clinician, team, patient, title="Contrôle")
        with django_capture_on_commit_callbacks(execute=True):
            publish_prescription(clinician, team, patient)
        pending = Digest.objects.get(status="pending")
        assert pending.due_at == start + datetime.timedelta(minutes=15)
        assert len(mail.outbox) == 1  # not yet: 15 minutes have not passed
    with time_machine.travel(start + datetime.timedelta(minutes=10), tick=False):
        assert services.relay_due_digests() == 0
        tasks.deliver_digest(pending.pk)  # a task delivered early sends nothing
        assert len(mail.outbox) == 1
    with time_machine.travel(start + datetime.timedelta(minutes=15, seconds=1), tick=False):
        assert services.relay_due_digests() == 1
    assert len(mail.outbox) == 2
    digest = mail.outbox[1].body
    assert "Un nouveau résultat d’analyse est disponible dans Carnet." in digest
    assert "Une nouvelle ordonnance est disponible dans Carnet." in digest
    assert "Contrôle" not in digest and "Metformine" not in digest
    assert Digest.objects.filter(status="sent").count() == 2
    assert not News.objects.filter(digest__isnull=True).exists()


def test_what_the_patient_opened_before_the_digest_is_not_counted_in_it(
    client, login, clinician, team, patient, django_capture_on_commit_callbacks
):
    """The digest goes 15 minutes after the first email: what the patient read in Carnet
    meanwhile is no news to tell (it counted 23 results already read)."""
    start = timezone.now()
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        publish_report(clinician, team, patient)
    with time_machine.travel(start + datetime.timedelta(minutes=2), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            publish_report(clinician, team, patient, title="Contrôle")
            publish_prescription(clinician, team, patient)
        login(patient)
        client.get(reverse("records:results"))  # the new report read; the prescription not
    with time_machine.travel(start + datetime.timedelta(minutes=15, seconds=1), tick=False):
        services.relay_due_digests()
    digest = mail.outbox[-1].body
    assert "Une nouvelle ordonnance est disponible dans Carnet." in digest
    assert "résultat" not in digest
    # Everything read before the digest: no email at all.
    sent = len(mail.outbox)
    # Published 5 minutes after the last digest: due 10 minutes later.
    with (
        time_machine.travel(start + datetime.timedelta(minutes=20), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        publish_report(clinician, team, patient, title="Troisième")
    with time_machine.travel(start + datetime.timedelta(minutes=22), tick=False):
        client.get(reverse("records:results"))
    with time_machine.travel(start + datetime.timedelta(minutes=31), tick=False):
        services.relay_due_digests()
    assert len(mail.outbox) == sent
    assert Digest.objects.order_by("-pk").first().status == "skipped"


def test_a_digest_task_run_twice_sends_once(clinician, team, patient, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        publish_report(clinician, team, patient)
    digest = Digest.objects.get()
    tasks.deliver_digest(digest.pk)
    tasks.deliver_digest(digest.pk)
    assert len(mail.outbox) == 1
    digest.refresh_from_db()
    assert (digest.status, digest.attempts) == ("sent", 1)


def test_news_published_while_the_broker_is_down_is_relayed_later(
    clinician, team, patient, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.deliver_digest, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        publish_report(clinician, team, patient)  # the publication itself succeeds
    assert mail.outbox == []
    assert Digest.objects.get().status == "pending"
    monkeypatch.undo()
    assert services.relay_due_digests() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(("turned_off", "emailed"), [("results", False), ("documents", True), ("prescriptions", True)])
def test_preferences_per_kind_decide_what_is_emailed(
    client, login, clinician, team, patient, django_capture_on_commit_callbacks, turned_off, emailed
):
    login(patient)
    choices = {f"{kind}-email": "on" for kind in NoticePreference.Kind.values if kind != turned_off}
    assert client.post(reverse("accounts:notice_preferences"), choices).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        publish_report(clinician, team, patient)
    assert len(mail.outbox) == int(emailed)
    assert Digest.objects.get().status == ("sent" if emailed else "skipped")
    # The news is still new in the portal, whatever the emails.
    assert News.objects.unseen().count() == 1


def test_the_account_page_offers_each_kind_per_channel(client, login, patient, clinician):
    login(patient)
    page = client.get(reverse("accounts:security")).content.decode()
    for kind in NoticePreference.Kind.values:
        assert f'name="{kind}-email"' in page
    assert 'for="notice-results-email"' in page
    login(clinician)
    assert 'name="results-email"' not in client.get(reverse("accounts:security")).content.decode()


def test_only_patients_set_news_preferences(client, login, clinician, support):
    for who in (clinician, support):
        login(who)
        assert client.post(reverse("accounts:notice_preferences"), {}).status_code == 404
    assert not NoticePreference.objects.exists()


def test_a_patient_without_login_gets_no_email_and_no_backlog_later(
    clinician, team, django_capture_on_commit_callbacks
):
    from tests.factories import CareLinkFactory, PatientFactory, UserFactory

    patient = PatientFactory(user=None)
    CareLinkFactory(patient=patient, team=team)
    with django_capture_on_commit_callbacks(execute=True):
        publish_report(clinician, team, patient)
    assert not Digest.objects.exists()
    with time_machine.travel(timezone.now() + datetime.timedelta(days=1)):
        patient.user = UserFactory()  # they accept an invitation
        patient.save(update_fields=["user"])
        with django_capture_on_commit_callbacks(execute=True):
            publish_prescription(clinician, team, patient)
    assert len(mail.outbox) == 1
    assert "ordonnance" in mail.outbox[0].body and "résultat" not in mail.outbox[0].body


# --- The "new" marker -----------------------------------------------------------------


def test_a_new_document_is_marked_until_the_patient_opens_it(client, login, patient, clinician, clinician_document):
    login(patient)
    listing = client.get(reverse("records:documents")).content.decode()
    assert 'class="badge-new"' in listing
    assert 'class="badge-new"' in client.get(reverse("patient_home")).content.decode()
    # A professional opening it is no news to the patient.
    login(clinician)
    client.get(reverse("records:document", args=[clinician_document.pk]))
    assert News.objects.unseen().count() == 1
    login(patient)
    client.get(reverse("records:document", args=[clinician_document.pk]))
    assert 'class="badge-new"' not in client.get(reverse("records:documents")).content.decode()
    assert 'class="badge-new"' not in client.get(reverse("patient_home")).content.decode()


@pytest.mark.parametrize(
    ("publish", "page"), [(publish_report, "records:results"), (publish_prescription, "records:prescriptions")]
)
def test_new_results_and_prescriptions_are_marked_once_shown(client, login, patient, clinician, team, publish, page):
    publish(clinician, team, patient)
    login(patient)
    # On the dashboard, its card's line and the feed's.
    assert client.get(reverse("patient_home")).content.decode().count('class="badge-new"') == 2
    assert 'class="badge-new"' in client.get(reverse(page)).content.decode()
    assert 'class="badge-new"' not in client.get(reverse(page)).content.decode()
    assert not News.objects.unseen().exists()
    assert 'class="badge-new"' not in client.get(reverse("patient_home")).content.decode()

"""The patient's dashboard is a feed of what is new and what to do: each line a link,
newest first, with empty states that say what will appear; its queries do not grow
with the record."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging import services as messaging
from portal.views import FEED_SIZE
from records import services
from records.models import Prescription

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def report(clinician, team, patient, value, title="Bilan"):
    return services.add_lab_report(
        author=clinician, team=team, patient=patient, title=title, collected_on=TODAY,
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal(value), "unit": "g/L",
                       "low": Decimal("0.7"), "high": Decimal("1.1")}],
    )  # fmt: skip


def prescription(clinician, team, patient, **fields):
    values = {"medication": "Ramipril 5 mg", "dosage": "1", "frequency": "le matin", "start_date": TODAY}
    return services.add_prescription(
        prescription=Prescription(patient=patient, prescriber=clinician, team=team, **(values | fields))
    )


def test_an_empty_dashboard_says_what_will_appear(client, login, patient):
    login(patient)
    page = client.get(reverse("patient_home")).content.decode()
    assert "Rien de nouveau. Les documents, résultats et prescriptions" in page
    assert "Rien à faire. Les prescriptions à renouveler" in page


def test_the_feed_links_to_what_arrived_newest_first_and_flags_abnormal_results(
    client, login, patient, clinician, team, clinician_document
):
    high = report(clinician, team, patient, "1.6", title="Bilan du matin")
    normal = report(clinician, team, patient, "0.9", title="Bilan du soir")
    treatment = prescription(clinician, team, patient)
    conversation = messaging.start_conversation(
        author=clinician, patient=patient, team=team, subject="Vos résultats", kind="question", body="Bonjour"
    )
    login(patient)
    response = client.get(reverse("patient_home"))
    feed = response.context["feed"]
    day = TODAY.strftime("%d/%m/%Y")  # a report is named with its sampling day: reports are often named alike
    assert [line.title for line in feed] == [
        "Vos résultats", "Ramipril 5 mg", f"Bilan du soir du {day}", f"Bilan du matin du {day}",
        "Compte rendu de consultation",
    ]  # fmt: skip
    assert [line.at for line in feed] == sorted((line.at for line in feed), reverse=True)
    assert [line.abnormal for line in feed] == [False, False, False, True, False]
    assert feed[0].unread == 1 and all(line.new for line in feed)
    html = response.content.decode()
    for url in (
        reverse("messaging:conversation", args=[conversation.pk]),
        f"{reverse('records:prescriptions')}#prescription-{treatment.pk}",
        f"{reverse('records:results')}#report-{normal.pk}",
        f"{reverse('records:results')}#report-{high.pk}",
        reverse("records:document", args=[clinician_document.pk]),
    ):
        assert f'href="{url}"' in html
    assert html.count("Valeurs anormales") == 1
    # Opened, the item stays in the feed without its marker.
    client.get(reverse("records:document", args=[clinician_document.pk]))
    feed = client.get(reverse("patient_home")).context["feed"]
    assert [line.new for line in feed if line.title == "Compte rendu de consultation"] == [False]


def test_a_withdrawal_replaces_the_document_in_the_feed(client, login, patient, clinician, team, clinician_document):
    services.withdraw_document(actor=clinician, team=team, document=clinician_document, reason="Mauvais dossier")
    login(patient)
    response = client.get(reverse("patient_home"))
    assert [(line.label, line.title) for line in response.context["feed"]] == [
        ("Document retiré", "Compte rendu de consultation")
    ]
    assert response.context["documents"] == []


def test_a_stopped_prescription_reads_as_stopped_in_the_feed_and_the_email(
    client, login, patient, clinician, team, django_capture_on_commit_callbacks
):
    """Not « Correction du dossier »: what happened, in words."""
    from django.core import mail

    from records.models import Digest, News

    ramipril = prescription(clinician, team, patient)
    News.objects.update(seen_at=timezone.now())
    Digest.objects.update(status="sent", sent_at=timezone.now() - datetime.timedelta(hours=1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.stop_prescription(actor=clinician, team=team, prescription=ramipril, stopped_on=TODAY, reason="Toux")
    login(patient)
    feed = client.get(reverse("patient_home")).context["feed"]
    assert [(line.label, line.title) for line in feed if line.new] == [("Ordonnance arrêtée", "Ramipril 5 mg")]
    (email,) = mail.outbox
    assert "Une équipe de soins a arrêté une ordonnance." in email.body
    assert "A care team has stopped a prescription." in email.body and "Ramipril" not in email.body


def test_renewals_due_wait_for_the_patient_until_asked(client, login, patient, clinician, team):
    due = prescription(clinician, team, patient, renewable=True, end_date=TODAY + datetime.timedelta(days=10))
    prescription(clinician, team, patient, medication="Later", renewable=True,
                 end_date=TODAY + datetime.timedelta(days=40))  # fmt: skip
    prescription(clinician, team, patient, medication="Not renewable", end_date=TODAY + datetime.timedelta(days=3))
    login(patient)
    page = client.get(reverse("patient_home"))
    assert [row["pk"] for row in page.context["renewals"]] == [due.pk]
    assert "Renouvellement à demander" in page.content.decode()
    services.request_renewal(user=patient.user, prescription=due)
    assert client.get(reverse("patient_home")).context["renewals"] == []


def test_other_patients_items_never_reach_the_feed(client, login, patient, other_patient, other_clinician, other_team):
    report(other_clinician, other_team, other_patient, "1.6")
    prescription(other_clinician, other_team, other_patient, renewable=True, end_date=TODAY)
    messaging.start_conversation(
        author=other_clinician, patient=other_patient, team=other_team, subject="Autre", kind="question", body="x"
    )
    login(patient)
    page = client.get(reverse("patient_home"))
    assert page.context["feed"] == [] and page.context["renewals"] == []


def test_the_dashboard_queries_do_not_grow_with_the_record(client, login, patient, clinician, team):
    def fill(count):
        for n in range(count):
            report(clinician, team, patient, "1.6")
            prescription(clinician, team, patient, renewable=True, end_date=TODAY + datetime.timedelta(days=5))
            messaging.start_conversation(
                author=clinician, patient=patient, team=team, subject=f"Sujet {n}", kind="question", body="x"
            )

    def count():
        client.get(reverse("patient_home"))  # warm the session
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("patient_home"))
        assert len(response.context["feed"]) <= FEED_SIZE
        return len(queries)

    login(patient)
    fill(1)
    few = count()
    fill(FEED_SIZE + 2)
    assert count() == few


def test_the_feed_reads_in_english_too(client, login, patient, clinician, team, settings):
    prescription(clinician, team, patient, renewable=True, end_date=TODAY + datetime.timedelta(days=3))
    login(patient)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("patient_home")).content.decode()
    assert "What is new" in html and "<strong>New prescription</strong>: Ramipril 5 mg" in html
    assert "<strong>Renewal to ask for</strong>: Ramipril 5 mg" in html

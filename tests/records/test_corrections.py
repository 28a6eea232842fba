"""Clinicians correct prescriptions, with a history the patient reads: stop one (date,
reason), or replace it with a new version; the old one stays visible."""

import datetime

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AppendOnlyError
from records.models import News, Prescription, RecordEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def prescription(patient, clinician, team):
    return Prescription.objects.create(
        patient=patient, medication="Ramipril 5 mg", dosage="1 comprimé", frequency="le matin",
        start_date=datetime.date(2026, 1, 5), prescriber=clinician, team=team,
    )  # fmt: skip


def test_a_clinician_stops_a_prescription_and_the_patient_sees_why(
    client, login, clinician, team, patient, prescription, django_capture_on_commit_callbacks
):
    login(clinician)
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("records:stop_prescription", args=[prescription.pk]),
            {"stopped_on": today.isoformat(), "reason": "Toux sous traitement"},
        )
    assert response["Location"] == reverse("careteams:patient_prescriptions", args=[patient.pk])
    prescription.refresh_from_db()
    assert (prescription.stopped_on, prescription.stop_reason) == (today, "Toux sous traitement")
    assert not prescription.is_active()
    event = RecordEvent.objects.get()
    assert (event.kind, event.actor, event.team, event.target) == (
        "prescription_stopped",
        clinician,
        team,
        "Ramipril 5 mg",
    )
    # The patient is told (without content), sees it among past treatments, and reads the history.
    assert "Une équipe de soins a arrêté une ordonnance." in mail.outbox[-1].body
    assert "Ramipril" not in mail.outbox[-1].body
    login(patient)
    page = client.get(reverse("records:prescriptions"))
    assert page.context["past"].object_list == [prescription]
    assert "Toux sous traitement" in page.content.decode()
    history = client.get(reverse("records:record_history")).content.decode()
    assert "Ramipril 5 mg" in history and "Toux sous traitement" in history and "Claire Martin" in history


def test_a_new_version_replaces_the_old_which_stays_visible_as_replaced(
    client, login, clinician, patient, prescription
):
    login(clinician)
    data = {
        "medication": "Ramipril 10 mg", "dosage": "1 comprimé", "frequency": "le matin", "route": "oral",
        "start_date": timezone.localdate().isoformat(), "reason": "Tension insuffisamment contrôlée",
    }  # fmt: skip
    client.post(reverse("records:replace_prescription", args=[prescription.pk]), data)
    new = Prescription.objects.get(replaces=prescription)
    assert (new.medication, new.prescriber, new.patient) == ("Ramipril 10 mg", clinician, patient)
    assert RecordEvent.objects.get().kind == "prescription_replaced"
    assert News.objects.get(kind="correction").prescription == new
    login(patient)
    page = client.get(reverse("records:prescriptions"))
    assert page.context["active"] == [new]
    assert page.context["past"].object_list == [prescription]
    assert "Remplacée par une nouvelle version" in page.content.decode()


def test_correcting_twice_corrects_once(client, login, clinician, prescription):
    """A double submit: the second finds the prescription no longer current."""
    login(clinician)
    url = reverse("records:stop_prescription", args=[prescription.pk])
    client.post(url, {"stopped_on": timezone.localdate().isoformat(), "reason": "Arrêt"})
    client.post(url, {"stopped_on": "2026-02-01", "reason": "Autre"})
    replace = reverse("records:replace_prescription", args=[prescription.pk])
    client.post(replace, {"medication": "X", "dosage": "1", "frequency": "1", "route": "oral",
                          "start_date": "2026-02-01", "reason": "Y"})  # fmt: skip
    assert RecordEvent.objects.count() == 1
    assert not Prescription.objects.filter(replaces=prescription).exists()
    prescription.refresh_from_db()
    assert prescription.stop_reason == "Arrêt"


def test_the_reason_is_required(client, login, clinician, prescription):
    login(clinician)
    response = client.post(
        reverse("records:stop_prescription", args=[prescription.pk]), {"stopped_on": "2026-02-01", "reason": ""}
    )
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not RecordEvent.objects.exists()


def test_the_record_history_is_append_only(clinician, team, patient, prescription):
    event = RecordEvent.objects.create(
        patient=patient, actor=clinician, team=team, kind="prescription_stopped", target="Ramipril"
    )
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        RecordEvent.objects.all().delete()


def test_the_database_refuses_to_alter_the_record_history(postgres, clinician, team, patient):
    from django.db import DatabaseError, transaction

    event = RecordEvent.objects.create(patient=patient, actor=clinician, team=team, kind="x", target="Ramipril")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM records_recordevent WHERE id = %s", [event.pk])


def test_prescription_lists_do_not_query_per_row(client, login, clinician, patient, team):
    from django.test.utils import CaptureQueriesContext

    login(patient)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            client.get(reverse("records:prescriptions"))
        return len(ctx)

    for n in range(2):
        Prescription.objects.create(patient=patient, medication=f"M{n}", dosage="1", frequency="1",
                                    start_date=datetime.date(2026, 1, 1), prescriber=clinician, team=team)  # fmt: skip
    client.get(reverse("records:prescriptions"))
    few = count()
    for n in range(10):
        Prescription.objects.create(patient=patient, medication=f"N{n}", dosage="1", frequency="1",
                                    start_date=datetime.date(2026, 1, 1), prescriber=clinician, team=team)  # fmt: skip
    assert count() == few


def test_a_stopped_prescription_leaves_the_dashboard_and_the_summarys_current_treatments(
    client, login, clinician, team, patient, prescription
):
    from records import export_builders, services

    services.stop_prescription(
        actor=clinician, team=team, prescription=prescription, stopped_on=timezone.localdate(), reason="Arrêt"
    )
    login(patient)
    assert list(client.get(reverse("patient_home")).context["prescriptions"]) == []
    assert export_builders.prescriptions_section(user=patient.user, patient=patient)["rows"] == []

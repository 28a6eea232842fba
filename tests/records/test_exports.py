"""Exports: request, run once, email once, content, archive, FHIR, purge."""

import datetime
import io
import json
import zipfile

import pytest
import time_machine
from django.core import mail
from django.core.files.storage import default_storage
from django.urls import reverse
from pypdf import PdfReader

from messaging import services as messaging
from portal.audit.models import AccessLog
from portal.celery import app as celery_app
from records import export_builders, exports, files
from records.models import Export

pytestmark = pytest.mark.django_db


def text_of(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def conversation(patient, team, clinician):
    conversation = messaging.start_conversation(
        author=patient.user,
        patient=patient,
        team=team,
        subject="Douleur au genou",
        kind="question",
        body="Bonjour docteur, j'ai mal au genou depuis une semaine.",
    )
    messaging.send_message(author=clinician, conversation=conversation, body="Venez me voir jeudi à 10 h.")
    return conversation


@pytest.fixture
def other_conversation(other_patient, other_team):
    return messaging.start_conversation(
        author=other_patient.user,
        patient=other_patient,
        team=other_team,
        subject="Essoufflement",
        kind="question",
        body="Je suis essoufflé en montant les escaliers.",
    )


@pytest.fixture
def other_document(other_patient, upload, django_capture_on_commit_callbacks):
    from records import services

    with django_capture_on_commit_callbacks(execute=True):
        return services.upload_document(
            author=other_patient.user,
            patient=other_patient,
            upload=upload(),
            title="Scanner thoracique",
            category="imaging",
            care_date=datetime.date(2026, 8, 1),
        )


def request(patient, kind, options, capture):
    with capture(execute=True):
        export, created = exports.request_export(user=patient.user, patient=patient, kind=kind, options=options)
    export.refresh_from_db()
    return export, created


def test_export_tasks_are_registered():
    celery_app.loader.import_default_modules()
    assert "records.export_tasks.run_export" in celery_app.tasks
    assert "records.export_tasks.sweep_exports" in celery_app.tasks
    assert "records.export_tasks.email_export_ready" in celery_app.tasks


def test_summary_is_built_sealed_emailed_and_traced(
    patient, clinician_document, patient_document, other_document, django_capture_on_commit_callbacks
):
    export, created = request(
        patient, Export.Kind.SUMMARY, {"sections": ["identity", "care_teams", "documents"]},
        django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert created
    assert export.state == Export.State.READY and export.progress == 100
    raw = default_storage.open(export.file_name).read()
    assert b"%PDF" not in raw  # sealed at rest
    text = text_of(exports.read_export(export=export))
    for expected in ["Camille Durand", "Cabinet médical des Tilleuls", "Compte rendu de consultation",
                     "Ordonnance dermatologue", "15 juin 1985"]:  # fmt: skip
        assert expected in text
    for foreign in ["Lucas", "Bernard", "Scanner thoracique", "pneumologie"]:
        assert foreign not in text
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [patient.user.email]
    assert "/my/exports/" in email.body
    for health in ["Compte rendu", "Ordonnance", "Tilleuls", "Camille"]:
        assert health not in email.body and health not in email.subject
    log = AccessLog.objects.get(patient=patient)
    assert log.action == AccessLog.Action.EXPORT and log.actor == patient.user


def test_patient_picks_sections(patient, clinician_document, django_capture_on_commit_callbacks):
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    text = text_of(exports.read_export(export=export))
    assert "Camille Durand" in text and "15 juin 1985" in text
    assert "Compte rendu de consultation" not in text
    assert "Cabinet médical des Tilleuls" not in text


def test_conversation_transcript(patient, conversation, other_conversation, django_capture_on_commit_callbacks):
    export, _ = request(
        patient, Export.Kind.CONVERSATION, {"conversation": conversation.pk}, django_capture_on_commit_callbacks
    )
    text = text_of(exports.read_export(export=export))
    assert "Douleur au genou" in text
    assert "j'ai mal au genou depuis une semaine" in text
    assert "Venez me voir jeudi à 10 h." in text
    assert "Claire Martin" in text
    assert "Essoufflement" not in text and "Lucas" not in text


def test_another_patients_conversation_fails_as_gone(patient, other_conversation, django_capture_on_commit_callbacks):
    export, _ = request(
        patient, Export.Kind.CONVERSATION, {"conversation": other_conversation.pk}, django_capture_on_commit_callbacks
    )
    assert export.state == Export.State.FAILED
    assert export.failure == Export.Failure.GONE
    assert not export.file_name
    assert mail.outbox == []


def test_identical_pending_export_is_reused(patient):
    first, created = exports.request_export(user=patient.user, patient=patient, kind="archive", options={})
    again, created_again = exports.request_export(user=patient.user, patient=patient, kind="archive", options={})
    assert created and not created_again
    assert again.pk == first.pk
    assert Export.objects.count() == 1
    other, created_other = exports.request_export(
        user=patient.user, patient=patient, kind="summary", options={"sections": ["identity"]}
    )
    assert created_other and other.pk != first.pk


def test_a_second_delivery_makes_no_second_file_or_email(patient, django_capture_on_commit_callbacks):
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    name = export.file_name
    with django_capture_on_commit_callbacks(execute=True):
        exports.run_export(export_id=export.pk)
        exports.email_export_ready(export_id=export.pk)
    export.refresh_from_db()
    assert export.file_name == name and export.attempts == 1
    assert len(mail.outbox) == 1
    assert len(default_storage.listdir("exports")[1]) == 1


def test_a_live_run_makes_a_duplicate_wait(patient):
    export = Export.objects.create(
        patient=patient, requested_by=patient.user, kind="summary", options={"sections": ["identity"]}, fingerprint="x"
    )
    assert exports._claim(export.pk, "first-run") is not None
    with pytest.raises(exports.ExportBusy):
        exports.run_export(export_id=export.pk)


def test_a_dead_runs_lease_expires_and_the_export_completes_once(patient, django_capture_on_commit_callbacks):
    export = Export.objects.create(
        patient=patient, requested_by=patient.user, kind="summary", options={"sections": ["identity"]}, fingerprint="x"
    )
    exports._claim(export.pk, "dead-run")  # a worker took it, then was killed
    with time_machine.travel(datetime.timedelta(minutes=6)), django_capture_on_commit_callbacks(execute=True):
        exports.run_export(export_id=export.pk)
    export.refresh_from_db()
    assert export.state == Export.State.READY and export.attempts == 2
    # The dead run, had it come back, could not overwrite the finished row.
    assert not exports._finish(export.pk, "dead-run", state=Export.State.FAILED)
    assert len(mail.outbox) == 1


def test_sweep_purges_after_seven_days(patient, django_capture_on_commit_callbacks):
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    name = export.file_name
    with time_machine.travel(datetime.timedelta(days=6)), django_capture_on_commit_callbacks(execute=True):
        assert exports.sweep_exports()["purged"] == 0
    assert default_storage.exists(name)
    with time_machine.travel(datetime.timedelta(days=7, minutes=1)), django_capture_on_commit_callbacks(execute=True):
        assert exports.sweep_exports()["purged"] == 1
    assert not Export.objects.exists()
    assert not default_storage.exists(name)


def test_sweep_enqueues_an_export_left_queued(patient, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(exports, "enqueue_export", lambda export_id: None)  # the broker was down
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    assert export.state == Export.State.QUEUED
    monkeypatch.undo()
    with time_machine.travel(datetime.timedelta(minutes=3)), django_capture_on_commit_callbacks(execute=True):
        assert exports.sweep_exports()["enqueued"] == 1
    export.refresh_from_db()
    assert export.state == Export.State.READY


def test_archive_contents_and_fhir_bundle(
    patient, clinician_document, patient_document, conversation, other_document, other_conversation,
    django_capture_on_commit_callbacks, pdf_bytes,
):  # fmt: skip
    export, _ = request(patient, Export.Kind.ARCHIVE, {}, django_capture_on_commit_callbacks)
    assert export.state == Export.State.READY
    archive = zipfile.ZipFile(io.BytesIO(exports.read_export(export=export)))
    names = archive.namelist()
    assert "health-summary.pdf" in names and "README.txt" in names and "fhir-r4-bundle.json" in names
    document_names = sorted(name for name in names if name.startswith("documents/"))
    assert document_names == [
        f"documents/2026-09-01-ordonnance-dermatologue-{patient_document.pk}.pdf",
        f"documents/2026-10-02-compte-rendu-de-consultation-{clinician_document.pk}.pdf",
    ]
    assert archive.read(document_names[0]) == pdf_bytes
    conversation_names = [name for name in names if name.startswith("conversations/")]
    assert len(conversation_names) == 1 and "-douleur-au-genou-" in conversation_names[0]  # by its subject
    assert "Venez me voir jeudi" in text_of(archive.read(conversation_names[0]))
    assert "Compte rendu de consultation" in text_of(archive.read("health-summary.pdf"))
    readme = archive.read("README.txt").decode()
    assert "Camille Durand" in readme and "FHIR" in readme
    everything = b"".join(archive.read(name) for name in names if not name.endswith(".pdf"))
    assert b"Scanner thoracique" not in everything and b"Essoufflement" not in everything

    from fhir.resources.R4B.bundle import Bundle

    bundle = Bundle.model_validate_json(archive.read("fhir-r4-bundle.json"))
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Patient") == 1
    assert kinds.count("DocumentReference") == 2
    assert kinds.count("Communication") == 2
    data = json.loads(archive.read("fhir-r4-bundle.json"))
    patient_resource = data["entry"][0]["resource"]
    assert patient_resource["name"][0]["family"] == "Durand"
    urls = {e["resource"]["content"][0]["attachment"].get("url") for e in data["entry"] if "content" in e["resource"]}
    assert urls == set(document_names)


def test_archive_lists_a_tampered_document_as_unavailable(
    patient, clinician_document, patient_document, django_capture_on_commit_callbacks
):
    with default_storage.open(clinician_document.file_name, "wb") as handle:
        handle.write(b"tampered")
    export, _ = request(patient, Export.Kind.ARCHIVE, {}, django_capture_on_commit_callbacks)
    assert export.state == Export.State.READY
    archive = zipfile.ZipFile(io.BytesIO(exports.read_export(export=export)))
    assert [n for n in archive.namelist() if n.startswith("documents/")] == [
        f"documents/2026-09-01-ordonnance-dermatologue-{patient_document.pk}.pdf"
    ]
    readme = archive.read("README.txt").decode()
    assert "Compte rendu de consultation" in readme
    assert "indisponible" in readme.lower()


def test_fhir_bundle_validates(patient, clinician_document, conversation):
    from fhir.resources.R4B.bundle import Bundle

    bundle = export_builders.fhir_bundle(
        user=patient.user,
        patient=patient,
        documents=[clinician_document],
        conversations=[conversation],
        document_paths={clinician_document.pk: "documents/x.pdf"},
    )
    assert Bundle.model_validate(bundle).type == "collection"


def test_a_tampered_export_file_is_not_served(client, login, patient, django_capture_on_commit_callbacks):
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    with default_storage.open(export.file_name, "wb") as handle:
        handle.write(b"tampered")
    with pytest.raises(files.IntegrityError):
        exports.read_export(export=export)
    login(patient)
    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response.status_code == 302


def test_summary_lists_the_latest_documents_and_counts_the_rest(patient, clinician, team, monkeypatch):
    from records.models import Document

    monkeypatch.setattr(export_builders, "SUMMARY_DOCUMENTS", 3)
    Document.objects.bulk_create(
        [
            Document(
                patient=patient,
                title=f"Examen {n}",
                category="report",
                care_date=datetime.date(2026, 1, n),
                author=clinician,
                author_team=team,
                content_type="application/pdf",
                size=1,
                sha256="x",
                key_id="dev",
                file_name=f"documents/{n}.bin",
                status="ready",
            )
            for n in range(1, 6)
        ]
    )
    text = text_of(export_builders.build_summary(user=patient.user, patient=patient, sections=["documents"]))
    assert "Examen 5" in text and "Examen 3" in text and "Examen 2" not in text
    assert "Et 2 documents plus anciens" in text


def test_fhir_bundle_stays_valid_with_a_nameless_author(patient, team):
    from fhir.resources.R4B.bundle import Bundle

    from tests.factories import ClinicianFactory

    nameless = ClinicianFactory(first_name="", last_name="", teams=[team])
    conversation = messaging.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Question", kind="question", body="Bonjour"
    )
    messaging.send_message(author=nameless, conversation=conversation, body="Réponse")
    bundle = export_builders.fhir_bundle(
        user=patient.user, patient=patient, documents=[], conversations=[conversation], document_paths={}
    )
    Bundle.model_validate(bundle)
    senders = [e["resource"].get("sender") for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"]
    assert {"display": "Camille Durand"} in senders


def test_a_failing_export_is_marked_failed_and_logs_no_health_data(
    patient, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise ValueError("Camille Durand: allergie à la pénicilline")

    monkeypatch.setattr(export_builders, "build_summary", broken)
    export, _ = request(patient, Export.Kind.SUMMARY, {"sections": ["identity"]}, django_capture_on_commit_callbacks)
    assert export.state == Export.State.FAILED and export.failure == Export.Failure.ERROR
    assert "pénicilline" not in caplog.text and "Camille" not in caplog.text
    assert f"export {export.pk} failed: ValueError" in caplog.text
    assert mail.outbox == []


def test_summary_has_the_clinical_sections_and_nothing_of_another_patient(patient, other_patient, clinician, team):
    from decimal import Decimal

    from records import services as records
    from records.models import Allergy, Measurement, Prescription, Vaccination

    today = datetime.date.today()
    Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Pénicilline", severity="severe")
    Allergy.objects.create(patient=other_patient, author=other_patient.user, substance="Latex")
    Prescription.objects.create(
        patient=patient, medication="Ramipril 5 mg", dosage="1 comprimé", frequency="le matin",
        start_date=today - datetime.timedelta(days=10), prescriber=clinician, team=team,
    )  # fmt: skip
    Vaccination.objects.create(patient=patient, author=clinician, team=team, vaccine="Grippe", date=today, lot="G-1")
    Measurement.objects.create(
        patient=patient, author=patient.user, kind="weight", value=Decimal("70.5"), measured_on=today
    )
    for days, value in [(200, "0.9"), (10, "1.32")]:
        records.add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan", collected_on=today - datetime.timedelta(days=days),
            observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal(value), "unit": "g/L",
                           "low": Decimal("0.7"), "high": Decimal("1.1")}],
        )  # fmt: skip
    text = text_of(
        export_builders.build_summary(user=patient.user, patient=patient, sections=list(export_builders.SECTIONS))
    )
    for expected in ["Pénicilline", "Sévère", "Ramipril 5 mg", "Grippe", "70,5", "Glucose", "1,32", "Élevé"]:
        assert expected in text, expected
    assert "0,9" not in text  # only the latest value of each test
    assert "Latex" not in text

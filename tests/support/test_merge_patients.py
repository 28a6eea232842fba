"""Support merges two records of the same person: everything moves to the record kept
(found from the model graph, so a new model cannot be forgotten), the audit trails stay
and show on the kept record's history, refusals change nothing, one audit row."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import models
from django.urls import reverse

from messaging import services as messaging
from portal import access
from portal.accounts import merge
from portal.accounts.models import Patient
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, ClinicianBlock
from portal.support.models import SupportAction
from records import services as records
from records.models import Allergy, Document, LabReport, Observation, RecordEvent
from tests.factories import CareLinkFactory, PatientFactory
from tests.records.conftest import make_pdf

pytestmark = pytest.mark.django_db


def test_every_relation_to_a_patient_moves_stays_or_is_combined():
    """A model that points at a patient must be thought about here: moved as it is,
    combined (it has a uniqueness on the patient), or left with the audit trails."""
    found = {label for label, _model, _field in merge.relations()}
    assert set(merge.STAY) <= found and found >= merge.COMBINED
    for label, model, field in merge.relations():
        if label in merge.STAY or label in merge.COMBINED:
            continue
        unique_on_patient = (
            model._meta.get_field(field).one_to_one
            or any(
                field in constraint.fields
                for constraint in model._meta.constraints
                if isinstance(constraint, models.UniqueConstraint)
            )
            or any(field in together for together in model._meta.unique_together)
        )
        assert not unique_on_patient, f"{label}.{field} is unique per patient: add it to merge.COMBINED"


@pytest.fixture
def duplicate(team, other_team, clinician):
    """The same Camille Durand, registered again without a login, with a record of her own."""
    duplicate = PatientFactory(user=None, first_name="Camille", last_name="Durand", ins="285067512345639")
    CareLinkFactory(patient=duplicate, team=other_team)  # only the duplicate knows this team
    CareLinkFactory(patient=duplicate, team=team, status=CareLink.Status.BLOCKED)
    records.upload_document(
        author=clinician, patient=duplicate, upload=SimpleUploadedFile("cr.pdf", make_pdf()),
        title="Compte rendu de pneumologie", category="report", care_date=datetime.date(2026, 3, 2), team=team,
    )  # fmt: skip
    records.add_lab_report(
        author=clinician, team=team, patient=duplicate, title="Bilan", collected_on=datetime.date(2026, 3, 1),
        observations=[{"loinc": "718-7", "name": "Hémoglobine", "unit": "g/dL", "low": Decimal("12"),
                       "high": Decimal("16"), "value": Decimal("13.1")}],
    )  # fmt: skip
    Allergy.objects.create(patient=duplicate, author=clinician, team=team, substance="Pénicilline")
    ClinicianBlock.objects.create(patient=duplicate, clinician=clinician)
    messaging.start_conversation(
        author=clinician, patient=duplicate, team=team, subject="Suivi", kind="question", body="Bonjour"
    )
    access.trace_read(clinician, duplicate, AccessLog.Action.VIEW_DOCUMENT, "Compte rendu de pneumologie")
    return duplicate


def confirm(client, keep, duplicate, key=None, reason="Doublon créé à l'accueil, identité vérifiée"):
    return client.post(
        reverse("support:confirm_merge", args=[keep.pk, duplicate.pk]),
        {"reason": reason, "request_key": str(key or uuid.uuid4())},
    )


def test_support_sees_the_duplicate_and_what_moves_then_merges(client, login, support, patient, duplicate, team):
    login(support)
    page = client.get(reverse("support:merge_patient", args=[patient.pk])).content.decode()
    assert reverse("support:confirm_merge", args=[patient.pk, duplicate.pk]) in page
    preview = client.get(reverse("support:confirm_merge", args=[patient.pk, duplicate.pk])).content.decode()
    assert "Compte rendu de pneumologie" not in preview and "Pénicilline" not in preview  # counts, never content
    assert "documents : 1" in preview.lower()

    key = uuid.uuid4()
    assert confirm(client, patient, duplicate, key).status_code == 302
    assert confirm(client, patient, duplicate, key).status_code == 302  # sent twice: merged once

    duplicate = Patient.all_records.get(pk=duplicate.pk)
    assert (duplicate.merged_into, duplicate.ins, duplicate.user) == (patient, None, None)
    assert not Patient.objects.filter(pk=duplicate.pk).exists()
    patient.refresh_from_db()
    assert patient.ins == "285067512345639"  # the kept record had none: the INS came with its identity
    assert Document.objects.get().patient == patient
    assert LabReport.objects.get().patient == patient and Observation.objects.get().patient == patient
    assert Allergy.objects.get().patient == patient
    assert patient.conversations.count() == 1
    links = dict(CareLink.objects.filter(patient=patient).values_list("team__name", "status"))
    assert links == {"Cabinet médical des Tilleuls": "blocked", "Service de pneumologie": "active"}  # a block wins
    assert ClinicianBlock.objects.get().patient == patient
    row = SupportAction.objects.get(action="merge_patients")
    assert row.patient == patient and f"#{duplicate.pk} → #{patient.pk}" in row.detail
    call_command("verify_audit_chain")  # the trails stayed whole

    login(patient)
    history = client.get(reverse("records:access_history")).content.decode()
    assert "Compte rendu de pneumologie" in history  # read on the duplicate, shown on the record kept
    assert "Compte rendu de pneumologie" in client.get(reverse("records:documents")).content.decode()


def test_a_login_on_the_duplicate_moves_to_the_record_kept(client, login, support, patient):
    keep = PatientFactory(user=None, first_name="Camille", last_name="Durand")
    login(support)
    confirm(client, keep, patient)

    keep.refresh_from_db()
    assert keep.user == Patient.all_records.get(pk=patient.pk).merged_into.user
    assert access.records_of(keep.user)[0].patient == keep


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"birth_date": datetime.date(1990, 1, 1)}, "dates de naissance"),
        ({"ins": "185067512345612"}, "identifiants nationaux de santé"),
        ({"login": True}, "Les deux dossiers ont un identifiant"),
    ],
)
def test_what_cannot_be_one_person_is_refused_and_nothing_moves(
    client, login, support, patient, duplicate, change, says
):
    patient.ins = "285067512345639" if "ins" in change else None
    if "ins" in change:
        duplicate.ins = change["ins"]
    if "birth_date" in change:
        duplicate.birth_date = change["birth_date"]
    if change.get("login"):
        duplicate.user = PatientFactory().user
        Patient.objects.filter(user=duplicate.user).exclude(pk=duplicate.pk).update(user=None)
    duplicate.save()
    patient.save()
    login(support)

    preview = client.get(reverse("support:confirm_merge", args=[patient.pk, duplicate.pk])).content.decode()
    assert says in preview and "Fusionner les dossiers" not in preview
    confirm(client, patient, duplicate)
    assert Patient.objects.filter(pk=duplicate.pk).exists()
    assert Document.objects.get().patient == duplicate
    assert not SupportAction.objects.filter(action="merge_patients").exists()


@pytest.mark.parametrize("who", ["patient", "clinician", None])
def test_only_support_merges(client, login, who, patient, duplicate, clinician):
    if who:
        login({"patient": patient, "clinician": clinician}[who])
    assert client.get(reverse("support:merge_patient", args=[patient.pk])).status_code in (302, 404)
    assert confirm(client, patient, duplicate).status_code in (302, 404)
    assert Patient.objects.filter(pk=duplicate.pk).exists()


def test_a_merged_record_is_found_nowhere(client, login, support, patient, duplicate):
    login(support)
    confirm(client, patient, duplicate)
    assert client.get(reverse("support:merge_patient", args=[duplicate.pk])).status_code == 404
    assert client.get(reverse("support:invite_patient", args=[duplicate.pk])).status_code == 404


def test_the_record_history_stays_with_its_record_and_shows_on_the_kept_one(
    client, login, postgres, patient, duplicate, clinician, team
):
    """The record's history is append-only (the database refuses to change it): its rows
    stay on the duplicate and the kept record's history shows them."""
    document = Document.objects.get(patient=duplicate)
    records.withdraw_document(actor=clinician, team=team, document=document, reason="Mauvais dossier")
    merge.merge(keep=patient, duplicate=duplicate)
    assert RecordEvent.objects.get().patient_id == duplicate.pk
    login(patient)
    history = client.get(reverse("records:record_history")).content.decode()
    assert "Retrait d’un document" in history and "Mauvais dossier" in history

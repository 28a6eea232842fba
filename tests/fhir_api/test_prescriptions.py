"""Prescriptions over FHIR: MedicationRequest (+ Medication), active, stopped, completed, replaced."""

import datetime
import uuid

import pytest

from records.models import Prescription
from tests.fhir_api.conftest import NIR

pytestmark = pytest.mark.django_db(transaction=True)


def medication_bundle(*, source_id="RX-1", status="active", prior=None, start="2026-11-20", end=None):
    patient_url, medication_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    request = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.2", "value": source_id}],
        "status": status,
        "intent": "order",
        "medicationReference": {"reference": medication_url},
        "subject": {"reference": patient_url},
        "authoredOn": start,
        "dosageInstruction": [
            {
                "text": "1 comprimé",
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
            }
        ],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 2,
            "validityPeriod": {"start": start, **({"end": end} if end else {})},
        },
    }
    if prior:
        request["priorPrescription"] = {"identifier": {"value": prior}}
    medication = {"resourceType": "Medication", "code": {"text": "Amoxicilline 500 mg"}}
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": NIR}],
        "name": [{"family": "Durand"}],
        "birthDate": "1985-06-15",
    }
    entries = [(f"urn:uuid:{uuid.uuid4()}", request), (medication_url, medication), (patient_url, patient)]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in entries
        ],
    }


def test_prescription_reaches_the_patient(http, token, ins_patient, login):
    status, _h, answer = http.json("POST", "/fhir", body=medication_bundle(), token=token)

    assert status == 200, answer
    prescription = Prescription.objects.get()
    assert answer["entry"][0]["response"]["location"] == f"MedicationRequest/{prescription.pk}"
    assert (prescription.medication, prescription.route, prescription.renewable) == (
        "Amoxicilline 500 mg",
        "oral",
        True,
    )
    assert prescription.end_date is None
    assert "Amoxicilline 500 mg" in login(ins_patient).get("/my/prescriptions/").content.decode()


def test_a_prescription_sent_without_frequency_stores_none_and_reads_without_one(http, token, ins_patient, login):
    bundle = medication_bundle()
    del bundle["entry"][0]["resource"]["dosageInstruction"][0]["timing"]
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 200, answer
    prescription = Prescription.objects.get()
    assert (prescription.dosage, prescription.frequency, prescription.posology) == ("1 comprimé", "", "1 comprimé")
    page = login(ins_patient).get("/my/prescriptions/").content.decode()
    assert '<td data-label="Fréquence">—</td>' in page  # shown as none, stored as nothing


def test_stopped_ends_the_known_prescription_and_a_retry_changes_nothing(http, token, ins_patient):
    http.json("POST", "/fhir", body=medication_bundle(), token=token)
    http.json("POST", "/fhir", body=medication_bundle(), token=token)
    assert Prescription.objects.count() == 1

    http.json("POST", "/fhir", body=medication_bundle(status="stopped"), token=token)
    stopped = Prescription.objects.get()
    assert stopped.stopped_on is not None  # a correction, as a clinician's: in the record's history
    assert stopped.patient.record_events.filter(kind="prescription_stopped").exists()


def test_replacement_stops_the_earlier_one(http, token, ins_patient):
    http.json("POST", "/fhir", body=medication_bundle(source_id="RX-1", start="2026-11-01"), token=token)
    status, _h, answer = http.json(
        "POST", "/fhir", body=medication_bundle(source_id="RX-2", prior="RX-1", start="2026-11-20"), token=token
    )

    assert status == 200, answer
    new = Prescription.objects.get(source_id="RX-2")
    assert new.replaces == Prescription.objects.get(source_id="RX-1") and new.end_date is None
    assert new.start_date == datetime.date(2026, 11, 20)


def test_other_statuses_and_unknown_replacements_are_refused(http, token, ins_patient):
    assert http.json("POST", "/fhir", body=medication_bundle(status="draft"), token=token)[0] == 400
    assert http.json("POST", "/fhir", body=medication_bundle(prior="RX-0"), token=token)[0] == 400
    assert not Prescription.objects.exists()


def test_stopped_with_an_end_still_to_come_stops_today(http, token, ins_patient):
    """The validity period's end is when it was meant to end, not when it was stopped."""
    import datetime

    from django.utils import timezone

    later = (timezone.localdate() + datetime.timedelta(days=30)).isoformat()
    http.json("POST", "/fhir", body=medication_bundle(end=later), token=token)
    assert http.json("POST", "/fhir", body=medication_bundle(end=later, status="stopped"), token=token)[0] == 200
    assert Prescription.objects.get().stopped_on == timezone.localdate()


def test_the_same_prescription_id_sent_at_once_with_other_content_is_a_conflict(postgres, http, token, ins_patient):
    import threading

    starts = ["2026-11-20", "2026-11-20", "2026-11-21", "2026-11-22"]
    barrier, answers = threading.Barrier(len(starts)), {}

    def send(index, start):
        barrier.wait()
        answers[index] = http.json("POST", "/fhir", body=medication_bundle(start=start), token=token)

    threads = [threading.Thread(target=send, args=item) for item in enumerate(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = Prescription.objects.get().start_date.isoformat()
    for index, start in enumerate(starts):
        assert answers[index][0] == (200 if start == kept else 409), (start, kept, answers[index])

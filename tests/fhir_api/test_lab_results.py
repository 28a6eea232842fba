"""Lab results over FHIR: a DiagnosticReport with its Observations, LOINC checked,
UCUM units, ranges kept, amended values with their history."""

import uuid
from decimal import Decimal

import pytest
from django.utils import translation

from records.fhir_codes import loinc_is_valid
from records.models import LabReport, Observation
from tests.fhir_api.conftest import NIR

pytestmark = pytest.mark.django_db(transaction=True)


def observation(code="718-7", value=13.2, unit="g/dL", low=12, high=16, system="http://loinc.org", status="final"):
    resource = {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": system, "code": code, "display": "Hémoglobine"}], "text": "Hémoglobine"},
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    if low is not None or high is not None:
        resource["referenceRange"] = [
            {
                "low": {"value": low, "system": "http://unitsofmeasure.org", "code": unit},
                "high": {"value": high, "system": "http://unitsofmeasure.org", "code": unit},
            }
        ]
    return resource


def lab_bundle(*observations, report_id="LAB-2026-0001", status="final"):
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    urls = [f"urn:uuid:{uuid.uuid4()}" for _ in observations]
    report = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": report_id}],
        "status": status,
        "code": {"text": "Numération formule sanguine"},
        "subject": {"reference": patient_url},
        "effectiveDateTime": "2026-11-25T08:30:00+01:00",
        "result": [{"reference": url} for url in urls],
    }
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": NIR}],
        "name": [{"family": "DURAND"}],
        "birthDate": "1985-06-15",
    }
    resources = [(f"urn:uuid:{uuid.uuid4()}", report), *zip(urls, observations, strict=True), (patient_url, patient)]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in resources
        ],
    }


@pytest.mark.parametrize(("code", "valid"), [("718-7", True), ("2345-7", True), ("718-8", False), ("7187", False)])
def test_loinc_check_digit(code, valid):
    assert loinc_is_valid(code) is valid


def test_lab_results_reach_the_patient(http, token, ins_patient, login):
    status, _h, answer = http.json(
        "POST", "/fhir", body=lab_bundle(observation(), observation("2345-7", 5.4, "mmol/L", 3.9, 5.5)), token=token
    )

    assert status == 200, answer
    report = LabReport.objects.get()
    assert answer["entry"][0]["response"] == {"status": "201 Created", "location": f"DiagnosticReport/{report.pk}"}
    glucose = report.observations.get(loinc="2345-7")
    assert (glucose.value, glucose.unit, glucose.low, glucose.high) == (
        Decimal("5.4"),
        "mmol/L",
        Decimal("3.9"),
        Decimal("5.5"),
    )
    assert "Hémoglobine" in login(ins_patient).get("/my/results/").content.decode()


def test_bad_loinc_and_missing_ucum_are_refused(http, token, ins_patient):
    status, _h, answer = http.json("POST", "/fhir", body=lab_bundle(observation("718-8")), token=token)
    assert status == 400 and "718-8" in answer["issue"][0]["diagnostics"]

    bad_unit = observation()
    bad_unit["valueQuantity"].pop("system")
    assert http.json("POST", "/fhir", body=lab_bundle(bad_unit), token=token)[0] == 400
    for unit in ("<b>g</b>", "=1+1", "µg/L", "g dL"):  # not UCUM's syntax
        assert http.json("POST", "/fhir", body=lab_bundle(observation(unit=unit)), token=token)[0] == 400, unit
    assert not LabReport.objects.exists()
    for number, unit in enumerate(("10*9/L", "mL/min/{1.73_m2}", "mm[Hg]")):
        bundle = lab_bundle(observation(unit=unit), report_id=f"LAB-UNIT-{number}")
        assert http.json("POST", "/fhir", body=bundle, token=token)[0] == 200, unit


def test_local_codes_are_kept_under_their_own_system(http, token, ins_patient):
    local = observation("HB-01", system="urn:oid:1.2.250.1.999.7")
    assert http.json("POST", "/fhir", body=lab_bundle(local), token=token)[0] == 200

    row = Observation.objects.get()
    assert (row.code_system, row.loinc) == ("urn:oid:1.2.250.1.999.7", "HB-01")


def test_amended_result_updates_the_value_and_keeps_the_earlier_one(http, token, ins_patient):
    http.json("POST", "/fhir", body=lab_bundle(observation(value=13.2)), token=token)
    again = http.json("POST", "/fhir", body=lab_bundle(observation(value=13.2)), token=token)
    assert again[0] == 200 and LabReport.objects.count() == 1

    status, _h, answer = http.json(
        "POST", "/fhir", body=lab_bundle(observation(value=11.1, status="amended"), status="amended"), token=token
    )

    assert status == 200, answer
    row = Observation.objects.get()
    assert (row.value, row.status) == (Decimal("11.1"), "amended")
    assert [(r.value, r.status) for r in row.revisions.all()] == [(Decimal("13.2"), "final")]


def test_amending_an_unknown_report_is_refused(http, token, ins_patient):
    status, _h, _answer = http.json(
        "POST", "/fhir", body=lab_bundle(observation(status="corrected"), status="corrected"), token=token
    )

    assert status == 400 and not LabReport.objects.exists()


def test_lab_results_need_the_observation_scope(http, registered, ins_patient):
    client, secret = registered
    token = http.token(client.client_id, secret, scope="system/DocumentReference.c")[1]["access_token"]

    assert http.json("POST", "/fhir", body=lab_bundle(observation()), token=token)[0] == 403


def test_round_trip_published_results_come_back_in_the_archive(http, token, ins_patient):
    """Publish through the API, export the archive, re-validate its bundle: the same
    LOINC codes, UCUM units and ranges come back."""
    import io
    import json
    import zipfile

    from fhir.resources.R4B.bundle import Bundle

    from records.export_builders import build_archive

    http.json(
        "POST", "/fhir", body=lab_bundle(observation(), observation("2345-7", 5.4, "mmol/L", 3.9, 5.5)), token=token
    )
    archive = zipfile.ZipFile(io.BytesIO(build_archive(user=ins_patient.user, patient=ins_patient)))
    raw = archive.read("fhir-r4-bundle.json")
    Bundle.model_validate_json(raw)

    values = [e["resource"] for e in json.loads(raw)["entry"] if e["resource"]["resourceType"] == "Observation"]
    back = {(v["code"]["coding"][0]["system"], v["code"]["coding"][0]["code"]): v for v in values}
    assert set(back) == {("http://loinc.org", "718-7"), ("http://loinc.org", "2345-7")}
    glucose = back["http://loinc.org", "2345-7"]
    assert glucose["valueQuantity"] == {
        "value": 5.4,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert glucose["referenceRange"][0]["high"]["value"] == 5.5


# --- What the laboratory says is kept as it says it, or refused -----------------------


def with_interpretation(resource, code):
    resource["interpretation"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": code}]}
    ]
    return resource


@pytest.mark.parametrize(
    ("low", "high", "interpretation", "shown"),
    [
        (None, None, None, None),  # no range, no interpretation: nothing said, never "Normal"
        (None, None, "HH", "Critically high"),  # the laboratory's word, with no range
        (3.9, 5.5, "LL", "Critically low"),
        (3.9, 5.5, "A", "Abnormal"),
        (3.9, 5.5, None, "High"),  # 25 against 3.9–5.5
        (3.9, 5.5, "N", "Normal"),  # the laboratory's word wins over the range
    ],
)
def test_the_flag_is_the_laboratorys_interpretation_else_the_range_else_none(
    http, token, ins_patient, login, low, high, interpretation, shown
):
    glucose = observation("2345-7", 25, "mmol/L", low, high)
    if interpretation:
        with_interpretation(glucose, interpretation)
    assert http.json("POST", "/fhir", body=lab_bundle(glucose), token=token)[0] == 200
    row = Observation.objects.get()
    with translation.override("en"):
        assert row.get_flag_display() == (shown or "")
    page = login(ins_patient).get("/my/results/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    cell = page.split('data-label="Flag"><span class="flag">', 1)[1].split("</span>", 1)[0]
    assert cell == (shown or "")
    # The dashboard's feed flags what the table flags.
    feed = login(ins_patient).get("/my/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ("Abnormal values" in feed) is (shown not in (None, "Normal"))


def test_an_interpretation_carnet_cannot_show_is_refused(http, token, ins_patient):
    status, _h, answer = http.json(
        "POST", "/fhir", body=lab_bundle(with_interpretation(observation(), "POS")), token=token
    )
    assert status == 400 and "POS" in answer["issue"][0]["diagnostics"]
    assert not LabReport.objects.exists()


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (99999999.99999, "4 décimales"),  # 10^8 once rounded: a 400, not a 500
        (100000000, "hors limites"),
        (0.00001, "4 décimales"),  # kept as 0 would be silently wrong
        (0.004, None),  # kept, and shown as sent
    ],
)
def test_a_value_is_kept_exactly_or_refused(http, token, ins_patient, login, value, refused):
    status, _h, answer = http.json("POST", "/fhir", body=lab_bundle(observation(value=value)), token=token)
    if refused:
        assert status == 400 and refused in answer["issue"][0]["diagnostics"]
        assert not LabReport.objects.exists()
    else:
        assert status == 200 and Observation.objects.get().value == Decimal("0.004")
        assert "0,004 g/dL" in login(ins_patient).get("/my/results/").content.decode()


def test_a_value_with_a_comparator_is_refused_not_kept_as_measured(http, token, ins_patient):
    crp = observation("1988-5", 5, "mg/L", None, None)
    crp["valueQuantity"]["comparator"] = "<"
    status, _h, answer = http.json("POST", "/fhir", body=lab_bundle(crp), token=token)
    assert status == 400 and "comparateur" in answer["issue"][0]["diagnostics"]
    assert not LabReport.objects.exists()


def test_an_observation_about_someone_else_or_left_out_of_the_report_is_refused(http, token, ins_patient):
    # An Observation whose subject is another patient of the Bundle.
    bundle = lab_bundle(observation())
    other_url = f"urn:uuid:{uuid.uuid4()}"
    other = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "157046912300703"}],
        "name": [{"family": "DUBOIS"}],
        "birthDate": "1957-04-01",
    }
    bundle["entry"].append({"fullUrl": other_url, "resource": other, "request": {"method": "POST", "url": "Patient"}})
    bundle["entry"][1]["resource"]["subject"] = {"reference": other_url}
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and "autre patient" in answer["issue"][0]["diagnostics"]
    # The same, about the report's own patient: published.
    bundle = lab_bundle(observation())
    bundle["entry"][1]["resource"]["subject"] = {"reference": bundle["entry"][0]["resource"]["subject"]["reference"]}
    assert http.json("POST", "/fhir", body=bundle, token=token)[0] == 200
    # An Observation of the Bundle that the report does not list: refused, not dropped.
    bundle = lab_bundle(observation(), report_id="LAB-2026-0002")
    leftover = observation("2345-7", 8, "g/dL", None, None)
    bundle["entry"].append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": leftover,
                            "request": {"method": "POST", "url": "Observation"}})  # fmt: skip
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and "pas dans les résultats" in answer["issue"][0]["diagnostics"]
    assert LabReport.objects.count() == 1


def test_the_same_report_id_sent_at_once_with_other_values_is_a_conflict_not_a_success(
    postgres, http, token, ins_patient
):
    """Concurrent sendings of one identifier: the first is created, one with the same values
    is a retry (200), any with other values a 409 (it was "200 OK" while losing them)."""
    import threading

    values = [5, 5, 6, 7]
    barrier, answers = threading.Barrier(len(values)), {}

    def send(index, value):
        barrier.wait()
        answers[index] = http.json(
            "POST", "/fhir", body=lab_bundle(observation("2345-7", value, "mmol/L", 3.9, 5.5)), token=token
        )

    threads = [threading.Thread(target=send, args=item) for item in enumerate(values)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = Observation.objects.get().value
    for index, value in enumerate(values):
        status = answers[index][0]
        assert status == (200 if Decimal(value) == kept else 409), (value, kept, answers[index])
    assert LabReport.objects.count() == 1

"""Confidential from the representatives, over FHIR: the DMP's visibility code
INVISIBLE_REPRESENTANTS_LEGAUX (ANS TRE_A07) on a document, a lab report or a
prescription keeps it from the patient's parents, legal representatives and helpers,
as the box a clinician ticks does; the codes Carnet cannot honour are refused, never
dropped; software never lifts the label, a correction included."""

import copy
import itertools

import pytest
from django.urls import reverse

from fhir_api.resources import VISIBILITY_SYSTEMS, FhirError, hidden_from_representatives
from portal.accounts.models import Representation
from records.models import Digest, Document, LabReport, Prescription
from tests.conftest import switch
from tests.factories import PatientFactory
from tests.fhir_api.conftest import PDF, provide_bundle
from tests.fhir_api.test_lab_results import lab_bundle, observation
from tests.fhir_api.test_prescriptions import medication_bundle

FHIR_SYSTEM, OID_SYSTEM = VISIBILITY_SYSTEMS
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def label(code="INVISIBLE_REPRESENTANTS_LEGAUX", system=FHIR_SYSTEM):
    return {"system": system, "code": code}


# --- Reading the labels: every place and system, against a plain statement of the rule ---

PLACES = ["meta.security", "securityLabel"]
CODES = [None, "INVISIBLE_REPRESENTANTS_LEGAUX", "INVISIBLE_PATIENT", "MASQUE_PS", "R"]
SYSTEMS = [FHIR_SYSTEM, OID_SYSTEM, V3_CONFIDENTIALITY]


def labelled(place, code, system):
    resource = {"resourceType": "DocumentReference"}
    if code is not None:
        coding = label(code, system)
        if place == "meta.security":
            resource["meta"] = {"security": [coding]}
        else:
            resource["securityLabel"] = [{"coding": [coding]}]
    return resource


@pytest.mark.parametrize(("place", "code", "system"), list(itertools.product(PLACES, CODES, SYSTEMS)))
def test_the_visibility_codes_are_kept_or_refused_never_dropped(place, code, system):
    resource = labelled(place, code, system)
    ours = system in VISIBILITY_SYSTEMS and code is not None
    if ours and code != "INVISIBLE_REPRESENTANTS_LEGAUX":  # asks what Carnet does not do
        with pytest.raises(FhirError) as refusal:
            hidden_from_representatives(resource)
        assert refusal.value.status == 422 and code in str(refusal.value.params["code"])
    else:
        assert hidden_from_representatives(resource) is (ours and code == "INVISIBLE_REPRESENTANTS_LEGAUX")


def test_one_refused_code_beside_the_kept_one_refuses_the_whole_resource():
    resource = {"meta": {"security": [label(), label("INVISIBLE_PATIENT", OID_SYSTEM)]}}
    with pytest.raises(FhirError):
        hidden_from_representatives(resource)


# --- Over the API, read by the patient and a representative ---------------------------------

live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def guardian(ins_patient):
    """Camille's legal representative (a guardianship), with her own record."""
    guardian = PatientFactory(first_name="Hélène", last_name="Roux")
    Representation.objects.create(
        patient=ins_patient, representative=guardian.user, kind="legal", proof="court_decision"
    )
    return guardian


def labelled_document(**kwargs):
    bundle = provide_bundle(**kwargs)
    bundle["entry"][1]["resource"]["securityLabel"] = [{"coding": [label()]}]
    return bundle


def sees(client, login, who, record, url):
    """What ``who`` gets at ``url`` in ``record`` (the switcher set to it)."""
    login(who)
    switch(client, record)
    response = client.get(url)
    assert response.status_code == 200 and response.context["current_record"].patient == record
    return response


@live
def test_a_labelled_document_reaches_the_patient_and_never_the_representative(
    http, token, ins_patient, guardian, client, login
):
    status, _h, answer = http.json("POST", "/fhir", body=labelled_document(), token=token)

    assert status == 200, answer
    document = Document.objects.get()
    assert document.confidential
    mine = sees(client, login, ins_patient, ins_patient, reverse("records:documents"))
    assert list(mine.context["page"].object_list) == [document]
    listed = sees(client, login, guardian, ins_patient, reverse("records:documents"))
    assert listed.status_code == 200 and list(listed.context["page"].object_list) == []
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 404
    # Told: the patient; not the representative.
    assert set(Digest.objects.values_list("user", flat=True)) == {ins_patient.user_id}
    # It reads back with its label.
    status, _h, found = http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}", token=token)
    assert status == 200
    assert found["entry"][0]["resource"]["securityLabel"][0]["coding"][0]["code"] == "INVISIBLE_REPRESENTANTS_LEGAUX"


@live
def test_an_unlabelled_document_stays_visible_to_the_representative(http, token, ins_patient, guardian, client, login):
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(), token=token)

    assert status == 200, answer
    document = Document.objects.get()
    assert not document.confidential
    status, _h, found = http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}", token=token)
    assert "securityLabel" not in found["entry"][0]["resource"]
    listed = sees(client, login, guardian, ins_patient, reverse("records:documents"))
    assert list(listed.context["page"].object_list) == [document]


@live
@pytest.mark.parametrize("code", ["INVISIBLE_PATIENT", "MASQUE_PS"])
def test_a_code_carnet_cannot_honour_publishes_nothing(http, token, ins_patient, code):
    bundle = provide_bundle()
    bundle["entry"][1]["resource"]["meta"] = {"security": [label(code, OID_SYSTEM)]}

    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 422
    assert answer["resourceType"] == "OperationOutcome" and answer["issue"][0]["code"] == "not-supported"
    assert code in answer["issue"][0]["diagnostics"]
    assert not Document.objects.exists()


@live
def test_a_replacement_without_the_label_stays_confidential(http, token, ins_patient, guardian):
    first = labelled_document(master="urn:oid:1.2.250.1.999.1")
    assert http.json("POST", "/fhir", body=first, token=token)[0] == 200
    replacement = provide_bundle(
        data=PDF.replace(b"Catalog", b"Catalog/Lang(fr)"), relates={"identifier": {"value": "urn:oid:1.2.250.1.999.1"}}
    )

    status, _h, answer = http.json("POST", "/fhir", body=replacement, token=token)

    assert status == 200, answer
    old, new = Document.objects.order_by("pk")
    assert old.replaced_by == new and new.confidential


@live
def test_a_later_sending_with_the_label_makes_the_document_confidential(http, token, ins_patient):
    bundle = provide_bundle(master="urn:oid:1.2.250.1.999.7")
    assert http.json("POST", "/fhir", body=bundle, token=token)[0] == 200
    again = copy.deepcopy(bundle)
    again["entry"][1]["resource"]["securityLabel"] = [{"coding": [label()]}]

    assert http.json("POST", "/fhir", body=again, token=token)[0] == 200

    assert Document.objects.get().confidential
    # And one without it never lifts it.
    assert http.json("POST", "/fhir", body=bundle, token=token)[0] == 200
    assert Document.objects.get().confidential


@live
def test_a_report_labelled_on_one_observation_is_confidential_and_stays_so(
    http, token, ins_patient, guardian, client, login
):
    glucose = observation("2345-7", 5.4, "mmol/L", 3.9, 5.5)
    glucose["meta"] = {"security": [label(system=OID_SYSTEM)]}
    status, _h, answer = http.json("POST", "/fhir", body=lab_bundle(observation(), glucose), token=token)

    assert status == 200, answer
    assert LabReport.objects.get().confidential
    listed = sees(client, login, guardian, ins_patient, reverse("records:results"))
    assert listed.status_code == 200 and "Hémoglobine" not in listed.content.decode()
    assert "Hémoglobine" in sees(client, login, ins_patient, ins_patient, reverse("records:results")).content.decode()
    # An amendment without the label keeps it.
    amended = lab_bundle(observation(value=12.1, status="amended"), status="amended")
    assert http.json("POST", "/fhir", body=amended, token=token)[0] == 200
    assert LabReport.objects.get().confidential


@live
def test_a_final_report_sent_again_with_the_label_becomes_confidential(http, token, ins_patient):
    assert http.json("POST", "/fhir", body=lab_bundle(observation()), token=token)[0] == 200
    assert not LabReport.objects.get().confidential
    again = lab_bundle(observation())
    again["entry"][0]["resource"]["meta"] = {"security": [label()]}

    status, _h, answer = http.json("POST", "/fhir", body=again, token=token)

    assert status == 200, answer
    assert LabReport.objects.get().confidential


@live
def test_a_labelled_prescription_and_its_replacement_are_confidential(
    http, token, ins_patient, guardian, client, login
):
    bundle = medication_bundle(source_id="RX-1")
    bundle["entry"][0]["resource"]["meta"] = {"security": [label()]}
    assert http.json("POST", "/fhir", body=bundle, token=token)[0] == 200
    assert Prescription.objects.get().confidential

    status, _h, answer = http.json("POST", "/fhir", body=medication_bundle(source_id="RX-2", prior="RX-1"), token=token)

    assert status == 200, answer
    old, new = Prescription.objects.order_by("pk")
    assert new.replaces == old and new.confidential
    page = sees(client, login, guardian, ins_patient, reverse("records:prescriptions")).content.decode()
    assert "Amoxicilline" not in page
    assert (
        "Amoxicilline"
        in sees(client, login, ins_patient, ins_patient, reverse("records:prescriptions")).content.decode()
    )

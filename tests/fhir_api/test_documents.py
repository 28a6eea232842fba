"""ITI-65 over real HTTP with a real token: publish, find, retrieve, and every refusal."""

import hashlib

import pytest

from fhir_api.models import ApiCall
from records.models import Document
from tests.fhir_api.conftest import PDF, provide_bundle

pytestmark = pytest.mark.django_db(transaction=True)


def test_published_document_reaches_the_patients_record(http, token, ins_patient, team, login, client):
    status, _headers, answer = http.json("POST", "/fhir", body=provide_bundle(), token=token)

    assert status == 200, answer
    assert answer["type"] == "transaction-response"
    location = answer["entry"][1]["response"]["location"]
    document = Document.objects.get(pk=int(location.split("/")[1]))
    assert (document.patient, document.author_team, document.category) == (ins_patient, team, "report")
    assert document.title == "Compte rendu de consultation"
    assert answer["entry"][2]["response"]["location"] == f"Binary/{document.pk}"
    page = login(ins_patient).get("/my/documents/")
    assert "Compte rendu de consultation" in page.content.decode()
    call = ApiCall.objects.get()
    assert (call.interaction, call.status, call.patient, call.team) == ("ITI-65", 200, ins_patient, team)


def test_retry_with_same_master_identifier_returns_the_first(http, token, ins_patient):
    bundle = provide_bundle(master="urn:oid:1.2.3.4.5")
    first = http.json("POST", "/fhir/", body=bundle, token=token)[2]
    second = http.json("POST", "/fhir/", body=bundle, token=token)[2]

    assert second["entry"][1]["response"]["location"] == first["entry"][1]["response"]["location"]
    assert second["entry"][1]["response"]["status"] == "200 OK"
    assert Document.objects.count() == 1


def test_replaces_supersedes_the_earlier_document(http, token, ins_patient):
    first = http.json("POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.1"), token=token)[2]
    earlier = first["entry"][1]["response"]["location"]
    status, _h, answer = http.json(
        "POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.2", relates={"reference": earlier}), token=token
    )

    assert status == 200, answer
    old = Document.objects.get(master_identifier="urn:oid:1.2.3.1")
    assert old.replaced_by == Document.objects.get(master_identifier="urn:oid:1.2.3.2")
    found = http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}&status=current", token=token)[2]
    assert [entry["resource"]["id"] for entry in found["entry"]] == [str(old.replaced_by.pk)]


def test_a_replacement_by_software_is_a_correction_of_the_record_and_only_once(http, token, ins_patient):
    from records.models import News, RecordEvent

    first = http.json("POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.1"), token=token)[2]
    earlier = first["entry"][1]["response"]["location"]
    http.json(
        "POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.2", relates={"reference": earlier}), token=token
    )
    old = Document.objects.get(master_identifier="urn:oid:1.2.3.1")
    event = RecordEvent.objects.get()
    assert (event.kind, event.document, event.patient) == ("document_replaced", old, ins_patient)
    assert News.objects.filter(kind="correction", document=old.replaced_by).exists()
    status, _h, answer = http.json(
        "POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.3", relates={"reference": earlier}), token=token
    )
    assert status == 400, answer
    assert not Document.objects.filter(master_identifier="urn:oid:1.2.3.3").exists()


def test_a_withdrawn_document_reads_as_entered_in_error(http, token, ins_patient):
    from records import services

    http.json("POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.1"), token=token)
    document = Document.objects.get()
    services.withdraw_document(actor=document.author, team=document.author_team, document=document, reason="Erreur")
    url = f"/fhir/DocumentReference?patient={ins_patient.pk}"
    assert http.json("GET", f"{url}&status=current", token=token)[2]["total"] == 0
    found = http.json("GET", f"{url}&status=entered-in-error", token=token)[2]
    assert [entry["resource"]["status"] for entry in found["entry"]] == ["entered-in-error"]
    # Its file (perhaps another person's) is served to no one, its own team's software included.
    status, _h, answer = http.json("GET", f"/fhir/Binary/{document.pk}", token=token)
    assert status == 410 and answer["issue"][0]["code"] == "deleted"


def test_search_and_retrieve_own_documents(http, token, ins_patient):
    http.json("POST", "/fhir", body=provide_bundle(), token=token)
    status, _h, found = http.json(
        "GET", "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.10|285067512345639", token=token
    )

    assert status == 200 and found["total"] == 1
    url = found["entry"][0]["resource"]["content"][0]["attachment"]["url"]
    status, _headers, data = http.request("GET", "/fhir" + url.split("/fhir", 1)[1], token=token)
    assert (status, data) == (200, PDF)
    read = ins_patient.access_logs.get(action="download_document")
    assert read.actor_role == "software" and str(read.role_label) == "Logiciel de l’équipe de soins"
    assert ins_patient.access_logs.get(action="list_documents").actor_role == "software"


def test_search_by_post_keeps_the_identity_out_of_the_url(http, token, ins_patient):
    """FHIR's POST _search, form-encoded: the same answers as GET, the INS and the identity
    in the body only (request logs hold URLs)."""
    http.json("POST", "/fhir", body=provide_bundle(), token=token)
    form = "application/x-www-form-urlencoded"
    body = b"patient.identifier=urn:oid:1.2.250.1.213.1.4.10|285067512345639"
    status, _h, found = http.json("POST", "/fhir/DocumentReference/_search", body=body, token=token, content_type=form)
    assert status == 200 and found["total"] == 1
    body = b"identifier=urn:oid:1.2.250.1.213.1.4.8|285067512345639&family=durand&birthdate=1985-06-15"
    status, _h, found = http.json("POST", "/fhir/Patient/_search", body=body, token=token, content_type=form)
    assert status == 200 and found["entry"][0]["resource"]["id"] == str(ins_patient.pk)
    assert http.json("GET", "/fhir/Patient/_search", token=token)[0] == 405


@pytest.mark.parametrize(
    "path", ["/fhir/Foo", "/fhir/Observation/1", "/fhir/Binary/99999", "/fhir/DocumentReference/x"]
)
def test_an_unknown_address_or_resource_is_a_fhir_404(http, token, path):
    status, headers, answer = http.json("GET", path, token=token)
    assert status == 404 and headers["Content-Type"].startswith("application/fhir+json")
    assert answer["resourceType"] == "OperationOutcome" and answer["issue"][0]["code"] == "not-found"


def _outcome(answer):
    issue = answer["issue"][0]
    english = issue["_diagnostics"]["extension"][0]["extension"][1]["valueString"]
    return issue["code"], issue["diagnostics"], english


def test_unlinked_team_gets_403(http, token, ins_patient, team):
    ins_patient.care_links.filter(team=team).update(status="blocked")
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(), token=token)

    assert status == 403
    code, french, english = _outcome(answer)
    assert code == "forbidden" and "active link" in english and french != english
    assert not Document.objects.exists()


def test_wrong_patient_identity_gets_the_same_403(http, token, ins_patient):
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(family="Martin"), token=token)

    assert status == 403 and _outcome(answer)[0] == "forbidden"


@pytest.mark.parametrize(("family", "status"), [("MARTIN", 200), ("Durand", 200), ("Bernard", 403)])
def test_the_patient_is_matched_by_birth_name_or_used_name(http, token, ins_patient, family, status):
    """The INS identity carries the birth name: a patient who uses another name (Camille
    Durand, born Martin) is found by either, and by no other."""
    ins_patient.set_identity(birth_name="Martin", first_names="Camille", used_name="Durand")
    ins_patient.save()
    answer = http.json("POST", "/fhir", body=provide_bundle(family=family), token=token)
    assert answer[0] == status, answer
    assert Document.objects.filter(patient=ins_patient).exists() is (status == 200)


def test_a_submission_set_about_another_patient_than_its_document_is_refused(http, token, ins_patient):
    """MHD: the SubmissionSet and its DocumentReferences are about one patient. A List
    naming another (both Patients in the Bundle) publishes nothing."""
    bundle = provide_bundle()
    other = {**bundle["entry"][3]["resource"], "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.10",
                                                               "value": "185057512345673"}]}  # fmt: skip
    bundle["entry"].append({"fullUrl": "urn:uuid:other-patient", "resource": other, "request": {"method": "POST",
                                                                                                 "url": "Patient"}})  # fmt: skip
    bundle["entry"][0]["resource"]["subject"] = {"reference": "urn:uuid:other-patient"}
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and "SubmissionSet" in answer["issue"][0]["diagnostics"], answer
    assert not Document.objects.exists()


def test_a_title_is_kept_as_a_web_form_keeps_it(http, token, ins_patient):
    """Direction controls dropped (« \u202efdp.exe » would show « exe.pdf »), as from a form."""
    bundle = provide_bundle()
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["title"] = " \u202eCompte rendu\u202c "
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 200, answer
    assert Document.objects.get().title == "Compte rendu"


def test_wrong_hash_is_refused(http, token, ins_patient):
    bundle = provide_bundle()
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["hash"] = provide_bundle(data=b"%PDF-other")["entry"][1][
        "resource"
    ]["content"][0]["attachment"]["hash"]
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 400 and "hash" in _outcome(answer)[2]
    assert not Document.objects.exists()


def test_sha256_hash_is_accepted(http, token, ins_patient):
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(hash_of=hashlib.sha256), token=token)

    assert status == 200, answer


def test_base64_broken_into_lines_is_received_whole(http, token, ins_patient):
    """FHIR's base64Binary allows whitespace: software that wraps its base64 at 76
    characters (as MIME does) publishes the same file, whose hash still matches."""
    import textwrap

    from records import services as records

    data = PDF + b"0" * 500
    bundle = provide_bundle(data=data)
    wrapped = "\r\n".join(textwrap.wrap(bundle["entry"][2]["resource"]["data"], 76))
    bundle["entry"][2]["resource"]["data"] = wrapped
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 200, answer
    assert records.read_document(document=Document.objects.get()) == data


def test_invalid_bundle_is_refused(http, token, ins_patient):
    bundle = provide_bundle()
    bundle["entry"][1]["resource"]["status"] = "nonsense"
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 400 and _outcome(answer)[0] == "invalid"


def test_oversized_binary_is_refused(http, token, ins_patient, settings):
    settings.DOCUMENT_MAX_BYTES = 1000
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(data=PDF + b"0" * 2000), token=token)

    assert status == 413 and _outcome(answer)[0] == "too-costly"


def test_a_two_megabyte_document_is_received(http, token, ins_patient):
    """Larger than any form's body: the request-size limit of the FHIR routes is the API's."""
    pdf = PDF + b"%" * (2 * 1024 * 1024)
    status, _h, answer = http.json("POST", "/fhir", body=provide_bundle(data=pdf), token=token)

    assert status == 200, answer
    assert Document.objects.get().size == len(pdf)


@pytest.mark.parametrize("path", ["/fhir", "/fhir/", "/fhir/DocumentReference"])
def test_a_body_over_the_api_limit_is_refused_as_an_operation_outcome(http, token, ins_patient, settings, path):
    """Refused from its declared length, before it is read, by the request-size
    middleware: the answer is still FHIR, not the site's HTML page."""
    settings.FHIR_MAX_BODY_BYTES = 1000
    body = provide_bundle(data=PDF + b"%" * (settings.REQUEST_BODY_MAX_BYTES + 2000))
    status, headers, answer = http.json("POST", path, body=body, token=token)

    assert status == 413
    assert headers["Content-Type"].startswith("application/fhir+json")
    assert answer["resourceType"] == "OperationOutcome" and answer["issue"][0]["code"] == "too-costly"
    assert not Document.objects.exists()


def test_not_fhir_json_is_415(http, token, ins_patient):
    status, _h, answer = http.json("POST", "/fhir", body=b"<Bundle/>", content_type="application/xml", token=token)

    assert status == 415 and answer["resourceType"] == "OperationOutcome"


def test_no_token_expired_token_and_missing_scope(http, registered, ins_patient):
    client, secret = registered
    assert http.json("POST", "/fhir", body=provide_bundle())[0] == 401
    status, answer = http.token(client.client_id, secret, scope="system/Patient.rs")
    assert status == 200
    status, _h, outcome = http.json("POST", "/fhir", body=provide_bundle(), token=answer["access_token"])
    assert status == 403 and "system/DocumentReference.c" in _outcome(outcome)[2]

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    AccessToken.objects.update(expires=timezone.now())
    status, headers, _answer = http.json("POST", "/fhir", body=provide_bundle(), token=answer["access_token"])
    assert status == 401 and "invalid_token" in headers["WWW-Authenticate"]
    assert list(ApiCall.objects.order_by("pk").values_list("status", flat=True)) == [401, 403, 401]


def test_patient_matching_finds_only_linked_patients(http, token, ins_patient, team):
    query = "/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|285067512345639&family=durand&birthdate=1985-06-15"
    status, _h, found = http.json("GET", query, token=token)
    assert status == 200 and found["entry"][0]["resource"]["id"] == str(ins_patient.pk)
    # The person reads in their history that the team's software found them (and only that).
    from portal.audit.models import AccessLog

    (log,) = AccessLog.objects.filter(patient=ins_patient)
    assert (log.action, log.actor_role, log.team) == ("identity_search", AccessLog.SOFTWARE, team)

    ins_patient.care_links.filter(team=team).update(status="ended")
    assert http.json("GET", query, token=token)[2]["total"] == 0
    assert AccessLog.objects.filter(patient=ins_patient).count() == 1  # nothing found, nothing read
    assert http.json("GET", "/fhir/Patient?identifier=x|1", token=token)[0] == 400


def test_other_teams_documents_are_not_found(http, token, ins_patient, other_team, support):
    from fhir_api import services

    other, secret = services.register_client(
        team=other_team, name="Autre", scopes=["system/DocumentReference.rs"], created_by=support
    )
    other_token = http.token(other.client_id, secret)[1]["access_token"]
    location = http.json("POST", "/fhir", body=provide_bundle(), token=token)[2]["entry"][1]["response"]["location"]

    assert http.json("GET", f"/fhir/{location}", token=other_token)[0] == 404
    assert http.json("GET", f"/fhir/Binary/{location.split('/')[1]}", token=other_token)[0] == 404
    assert http.json("GET", f"/fhir/{location}", token=token)[0] == 200


def test_hide_and_block_rules_apply_to_the_api(http, token, ins_patient, team):
    """A document the patient hid stays visible to the team that published it; once the
    patient blocks the team, its software finds and retrieves nothing."""
    location = http.json("POST", "/fhir", body=provide_bundle(), token=token)[2]["entry"][1]["response"]["location"]
    Document.objects.update(hidden=True)
    search = f"/fhir/DocumentReference?patient={ins_patient.pk}"
    assert http.json("GET", search, token=token)[2]["total"] == 1

    ins_patient.care_links.filter(team=team).update(status="blocked")
    assert http.json("GET", search, token=token)[2]["total"] == 0
    assert http.json("GET", f"/fhir/{location}", token=token)[0] == 404
    assert http.request("GET", f"/fhir/Binary/{location.split('/')[1]}", token=token)[0] == 404


@pytest.mark.parametrize(
    "breakage",
    [
        lambda b: b.update(entry="not a list"),
        lambda b: b["entry"][3]["resource"].update(identifier=["not an identifier"]),
        lambda b: b["entry"][1]["resource"].update(subject="Patient/1"),
        lambda b: b["entry"][2]["resource"].update(data="%%% not base64"),
        lambda b: b["entry"][1]["resource"].pop("masterIdentifier"),
        lambda b: b["entry"].pop(0),  # no SubmissionSet
        lambda b: b["entry"][3]["resource"].update(birthDate="15/06/1985"),
        lambda b: b["entry"][3]["resource"]["identifier"][0].update(value="285067512345638"),  # wrong NIR key
        # A NUL character, which no FHIR string allows and no database column keeps.
        lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(title="Compte\x00rendu"),
        lambda b: b["entry"][1]["resource"]["masterIdentifier"].update(value="urn:oid:1.2\x00"),
        lambda b: b["entry"][1]["resource"].update(description="\x00"),
        lambda b: b.update(meta={"tag": [{"code": "x" * 10, "extension": [{"url": "\x00"}]}]}),
    ],
)
def test_malformed_bundles_get_400_never_500(http, token, ins_patient, breakage):
    bundle = provide_bundle()
    breakage(bundle)
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)

    assert status == 400, answer
    assert answer["resourceType"] == "OperationOutcome" and answer["issue"][0]["code"] == "invalid"
    assert not Document.objects.exists()


def test_a_body_nested_deeper_than_any_resource_is_a_400(http, token, ins_patient):
    """Arrays nested a hundred thousand deep (which would exhaust the parser's recursion)
    and objects nested a hundred deep are refused as OperationOutcomes, not 500s."""
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100 + b"1" + b"}" * 100):
        status, _h, answer = http.json("POST", "/fhir", body=body, token=token)
        assert status == 400 and answer["resourceType"] == "OperationOutcome", answer


@pytest.mark.parametrize("query", ["patient.identifier=%00", "patient.identifier%00=1", "_count=1%00"])
def test_a_search_parameter_with_a_nul_is_a_400(http, token, ins_patient, query):
    status, _h, answer = http.json("GET", f"/fhir/DocumentReference?{query}", token=token)
    assert status == 400 and answer["issue"][0]["code"] == "invalid", answer
    form = query.encode()
    status, _h, answer = http.json(
        "POST", "/fhir/DocumentReference/_search", body=form, token=token,
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    assert status == 400 and answer["issue"][0]["code"] == "invalid", answer


def test_search_pages_through_every_document_once(http, token, ins_patient):
    published = []
    for _ in range(5):
        answer = http.json("POST", "/fhir", body=provide_bundle(), token=token)[2]
        published.append(answer["entry"][1]["response"]["location"].split("/")[1])

    seen, url, pages = [], f"/fhir/DocumentReference?patient={ins_patient.pk}&_count=2", 0
    while url:
        status, _h, page = http.json("GET", url, token=token)
        assert status == 200, page
        assert len(page["entry"]) <= 2
        seen += [entry["resource"]["id"] for entry in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = following[0].removeprefix(http.base) if following else None
        pages += 1
    assert pages == 3
    assert seen == published[::-1]  # newest first, each once


def test_the_pages_of_a_search_by_post_keep_the_ins_out_of_their_links(http, token, ins_patient):
    published = []
    for _ in range(5):
        answer = http.json("POST", "/fhir", body=provide_bundle(), token=token)[2]
        published.append(answer["entry"][1]["response"]["location"].split("/")[1])
    body = b"patient.identifier=urn:oid:1.2.250.1.213.1.4.10|285067512345639&_count=2&status=current"
    form = "application/x-www-form-urlencoded"
    status, _h, page = http.json("POST", "/fhir/DocumentReference/_search", body=body, token=token, content_type=form)
    seen, links = [], []
    while True:
        assert status == 200, page
        seen += [entry["resource"]["id"] for entry in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        links.append(following[0])
        status, _h, page = http.json("GET", following[0].removeprefix(http.base), token=token)
    assert seen == published[::-1] and len(links) == 2  # three pages, each document once
    assert all("285067512345639" not in link and f"patient=Patient%2F{ins_patient.pk}" in link for link in links)
    assert all("status=current" in link and "_count=2" in link for link in links)  # the rest of the search kept


@pytest.mark.parametrize("query", ["_count=0", "_count=201", "_count=two", "_after=x", "_after=999999"])
def test_search_refuses_a_bad_page_request(http, token, ins_patient, query):
    status, _h, answer = http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}&{query}", token=token)

    assert status == 400 and answer["issue"][0]["code"] == "invalid"


def test_search_is_traced_once_per_patient(http, token, ins_patient):
    for _ in range(3):
        http.json("POST", "/fhir", body=provide_bundle(), token=token)
    http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}", token=token)

    assert ins_patient.access_logs.filter(action="list_documents").count() == 1


def test_simplified_publish_iti105(http, token, ins_patient):
    bundle = provide_bundle(master="urn:oid:1.2.3.105")
    reference = bundle["entry"][1]["resource"]
    patient = bundle["entry"][3]["resource"]
    reference["contained"] = [{**patient, "id": "p"}]
    reference["subject"] = {"reference": "#p"}
    attachment = reference["content"][0]["attachment"]
    attachment["data"] = bundle["entry"][2]["resource"]["data"]
    del attachment["url"]

    status, headers, answer = http.json("POST", "/fhir/DocumentReference", body=reference, token=token)
    assert status == 201, answer
    document = Document.objects.get()
    assert headers["Location"].endswith(f"/fhir/DocumentReference/{document.pk}")
    assert answer["masterIdentifier"]["value"] == "urn:oid:1.2.3.105" and document.patient == ins_patient
    assert http.json("POST", "/fhir/DocumentReference", body=reference, token=token)[0] == 200
    assert Document.objects.count() == 1


def test_capability_statement_is_valid_fhir(http):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    status, _h, statement = http.json("GET", "/fhir/metadata")
    assert status == 200
    assert CapabilityStatement.model_validate(statement).fhirVersion == "4.0.1"


def test_an_identifier_sent_again_with_other_content_is_a_conflict_never_dropped(http, token, ins_patient):
    """The same masterIdentifier with other bytes: 409 saying how to correct (a replacement),
    the first document untouched. Three kinds of resource, one rule."""
    from tests.fhir_api.test_lab_results import lab_bundle, observation
    from tests.fhir_api.test_prescriptions import medication_bundle

    http.json("POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.9"), token=token)
    status, _h, answer = http.json(
        "POST", "/fhir", body=provide_bundle(master="urn:oid:1.2.3.9", data=PDF + b"\n% v2"), token=token
    )
    assert status == 409 and answer["issue"][0]["code"] == "conflict" and "relatesTo" in _outcome(answer)[2]
    assert Document.objects.count() == 1

    from records.models import Observation, Prescription

    first = http.json("POST", "/fhir", body=lab_bundle(observation(value=6.1)), token=token)[2]
    again = http.json("POST", "/fhir", body=lab_bundle(observation(value=6.1)), token=token)[2]  # a retry
    assert [a["entry"][0]["response"]["status"] for a in (first, again)] == ["201 Created", "200 OK"]
    status, _h, answer = http.json("POST", "/fhir", body=lab_bundle(observation(value=5.5)), token=token)
    assert status == 409 and "amended" in _outcome(answer)[2]
    assert [str(o.value.normalize()) for o in Observation.objects.all()] == ["6.1"]

    assert http.json("POST", "/fhir", body=medication_bundle(), token=token)[0] == 200
    other = medication_bundle()
    other["entry"][1]["resource"]["code"]["text"] = "Ibuprofène 400 mg"
    status, _h, answer = http.json("POST", "/fhir", body=other, token=token)
    assert status == 409 and "priorPrescription" in _outcome(answer)[2]
    assert list(Prescription.objects.values_list("medication", flat=True)) == ["Amoxicilline 500 mg"]


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2030-01-01", "dans le futur"),
        ("1950-01-01", "antérieure à la naissance"),
        ("2999-01-01", "entre 1900 et 2199"),
    ],
)
def test_publishing_keeps_the_web_forms_date_rules_and_names_the_element(http, token, ins_patient, date, expected):
    """A document dated in the future or before the patient's birth (1985): refused as the
    web form refuses it, the OperationOutcome naming the element, nothing published."""
    bundle = provide_bundle()
    reference = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference")
    reference["context"] = {"period": {"start": date}}
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and expected in answer["issue"][0]["diagnostics"]
    assert answer["issue"][0]["expression"] == ["DocumentReference.context.period.start"]
    assert not Document.objects.exists()


def test_a_text_longer_than_the_web_form_allows_is_refused_not_cut(http, token, ins_patient):
    from tests.fhir_api.test_lab_results import lab_bundle, observation

    bundle = lab_bundle(observation())
    bundle["entry"][0]["resource"]["code"]["text"] = "Numération " * 50
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and answer["issue"][0]["expression"] == ["DiagnosticReport.code.text"]
    assert "200" in answer["issue"][0]["diagnostics"]
    from records.models import LabReport

    assert not LabReport.objects.exists()


@pytest.mark.parametrize("kind", ["document", "report", "prescription"])
def test_an_identifier_longer_than_carnet_keeps_is_refused_by_name(http, token, ins_patient, kind):
    """An identifier over 200 characters is refused as too long, the element named (not as
    missing), and nothing is published."""
    from records.models import LabReport, Prescription
    from tests.fhir_api.test_lab_results import lab_bundle, observation
    from tests.fhir_api.test_prescriptions import medication_bundle

    long = "urn:oid:1.2.250." + "1" * 200
    bundle, expression = {
        "document": (provide_bundle(master=long), "DocumentReference.masterIdentifier.value"),
        "report": (lab_bundle(observation(), report_id=long), "DiagnosticReport.identifier.value"),
        "prescription": (medication_bundle(source_id=long), "MedicationRequest.identifier.value"),
    }[kind]
    status, _h, answer = http.json("POST", "/fhir", body=bundle, token=token)
    assert status == 400 and answer["issue"][0]["expression"] == [expression], answer
    assert "200" in answer["issue"][0]["diagnostics"]
    assert not (Document.objects.exists() or LabReport.objects.exists() or Prescription.objects.exists())


@pytest.mark.parametrize("debug", [False, True])
def test_a_fhir_404_stays_an_operation_outcome_under_make_runs_debug(client, settings, debug):
    """``make run`` runs with DEBUG: its own 404 page replaces Django's technical one for
    web pages only."""
    settings.DEBUG = debug
    response = client.get("/fhir/Foo")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/fhir+json")
    assert client.get("/no-such-page/").status_code == 404

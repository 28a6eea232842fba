"""API clients: tokens, scopes, rotation, revocation, rate limits, the call log,
and that FHIR calls are not session pages."""

import threading

import pytest
from django.test import Client

from fhir_api import services
from fhir_api.models import ApiCall, AppendOnlyError
from records.models import Document
from tests.fhir_api.conftest import provide_bundle

pytestmark = pytest.mark.django_db(transaction=True)


def test_secret_is_kept_hashed_and_token_carries_only_granted_scopes(http, team, support):
    client, secret = services.register_client(
        team=team, name="Labo", scopes=["system/Observation.c"], created_by=support
    )
    assert secret not in client.application.client_secret

    status, answer = http.token(client.client_id, secret)
    assert status == 200 and answer["scope"] == "system/Observation.c"
    status, answer = http.token(client.client_id, secret, scope="system/DocumentReference.c")
    assert status == 400 and answer["error"] == "invalid_scope"
    assert http.token(client.client_id, "wrong")[0] == 401


def test_rotation_ends_the_old_secret_and_its_tokens(http, registered, token, ins_patient):
    client, old_secret = registered
    new_secret = services.rotate_secret(client=client, by=client.created_by)

    assert http.token(client.client_id, old_secret)[0] == 401
    assert http.json("POST", "/fhir", body=provide_bundle(), token=token)[0] == 401
    status, answer = http.token(client.client_id, new_secret)
    assert status == 200
    assert http.json("POST", "/fhir", body=provide_bundle(), token=answer["access_token"])[0] == 200


def test_revoked_client_gets_no_token_and_its_tokens_stop(http, registered, token, ins_patient):
    client, secret = registered
    assert services.revoke_client(client=client, by=client.created_by)

    assert http.token(client.client_id, secret)[0] == 401
    assert http.json("POST", "/fhir", body=provide_bundle(), token=token)[0] == 401
    assert not services.revoke_client(client=client, by=client.created_by)


def test_rate_limit_answers_429_with_retry_after(http, token, ins_patient, settings, start_of_minute):
    settings.FHIR_RATE_LIMIT_PER_MINUTE = 2
    path = f"/fhir/DocumentReference?patient={ins_patient.pk}"
    assert [http.json("GET", path, token=token)[0] for _ in range(2)] == [200, 200]

    status, headers, answer = http.json("GET", path, token=token)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 61
    assert answer["issue"][0]["code"] == "throttled"


def test_token_requests_are_limited_per_client_id_wrong_secret_or_not(http, registered, settings, start_of_minute):
    """Guessing a secret is slowed down: past the limit the right secret waits too."""
    client, secret = registered
    settings.FHIR_TOKEN_RATE_LIMIT_PER_MINUTE = 3
    assert [http.token(client.client_id, "guess")[0] for _ in range(3)] == [401, 401, 401]

    status, answer = http.token(client.client_id, secret)
    assert status == 429 and answer["error"] == "slow_down"
    other, other_secret = services.register_client(
        team=client.team, name="Autre logiciel", scopes=["system/Patient.rs"], created_by=client.created_by
    )
    assert http.token(other.client_id, other_secret)[0] == 200


def test_token_limit_answers_retry_after(http, registered, settings, start_of_minute):
    client, secret = registered
    settings.FHIR_TOKEN_RATE_LIMIT_PER_MINUTE = 1
    http.token(client.client_id, secret)
    status, headers, _raw = http.request(
        "POST",
        "/fhir/token",
        body=f"grant_type=client_credentials&client_id={client.client_id}&client_secret={secret}".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 61


def test_last_used_time_is_kept(http, registered, token, ins_patient):
    client, _secret = registered
    assert client.last_used_at is None
    http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}", token=token)

    client.refresh_from_db()
    assert client.last_used_at is not None


def test_call_log_is_append_only(http, token, ins_patient):
    http.json("GET", f"/fhir/DocumentReference?patient={ins_patient.pk}", token=token)
    call = ApiCall.objects.get()

    with pytest.raises(AppendOnlyError):
        call.save()
    with pytest.raises(AppendOnlyError):
        ApiCall.objects.all().delete()


def test_two_identical_publications_at_once_make_one_document(http, token, ins_patient, postgres):
    bundle = provide_bundle(master="urn:oid:1.2.250.1.999.42")
    barrier = threading.Barrier(2)
    answers = []

    def publish():
        barrier.wait()
        answers.append(http.json("POST", "/fhir", body=bundle, token=token))

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(status for status, _h, _a in answers) == [200, 200]
    locations = {answer["entry"][1]["response"]["location"] for _s, _h, answer in answers}
    assert len(locations) == 1
    assert Document.objects.count() == 1


def test_fhir_calls_are_not_session_pages(token, ins_patient, password_only_login):
    """A browser signed in with its password only (second factor still to pass), CSRF
    enforced: the API neither redirects it to the second factor nor asks for a CSRF token."""
    browser = password_only_login(ins_patient, on=Client(enforce_csrf_checks=True))
    response = browser.post(
        "/fhir", data=provide_bundle(), content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 200, response.content
    assert browser.get("/fhir/metadata").json()["fhirVersion"] == "4.0.1"

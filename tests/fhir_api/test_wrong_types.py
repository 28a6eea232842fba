"""Every element of a valid bundle (documents, lab results, prescriptions) replaced in
turn by a value of another JSON type: the answer is a refusal or a success, never a
500; a date given as anything but a date string is refused."""

import base64
import copy

import pytest

from tests.fhir_api.conftest import provide_bundle
from tests.fhir_api.test_lab_results import lab_bundle, observation
from tests.fhir_api.test_prescriptions import medication_bundle

pytestmark = pytest.mark.django_db

OTHERS = (12345, "texte", [], {"a": 1}, True)
DATES = {"date", "start", "end", "birthDate", "effectiveDateTime", "authoredOn", "issued"}


def paths(value, path=()):
    """Every element under ``value`` (not the Bundle's own envelope)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from paths(item, (*path, index))


def replaced(bundle, path, value):
    changed = copy.deepcopy(bundle)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


@pytest.fixture
def api(client, registered, ins_patient, settings):
    settings.FHIR_RATE_LIMIT_PER_MINUTE = 10_000  # hundreds of calls in a minute, from one test
    api_client, secret = registered
    basic = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    answer = client.post("/fhir/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    token = answer.json()["access_token"]

    def post(body):
        return client.post("/fhir", body, content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {token}")

    return post


BUNDLES = {
    "documents": lambda: provide_bundle(),
    "lab results": lambda: lab_bundle(observation()),
    "prescriptions": lambda: medication_bundle(start="2026-11-20", end="2026-12-20"),
}


@pytest.mark.parametrize("kind", BUNDLES)
def test_no_element_of_another_type_is_a_500(api, kind):
    bundle = BUNDLES[kind]()
    assert api(bundle).status_code in (200, 201), "the bundle itself must be valid: the test proves nothing"
    tried = 0
    for path in paths(bundle["entry"], ("entry",)):
        if path[-1] in ("resourceType", "fullUrl", "request") or "request" in path:
            continue  # what the server dispatches on, checked elsewhere
        original = replaced(bundle, path, None)
        for value in OTHERS:
            if type(value) is type(_at(bundle, path)):
                continue
            tried += 1
            status = api(replaced(original, path, value)).status_code
            assert status in (200, 201, 400, 404, 409, 422), (path, value, status)
            if path[-1] in DATES:
                assert status == 400, (path, value, status)
    assert tried > 50


def _at(bundle, path):
    value = bundle
    for step in path:
        value = value[step]
    return value

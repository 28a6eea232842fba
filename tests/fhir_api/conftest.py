"""A care team's software, registered as an API client, and a small HTTP client
that talks to the live server as that software would: a token from the client
credentials grant, then FHIR JSON calls."""

import base64
import datetime
import hashlib
import json
import urllib.error
import urllib.request
import uuid

import pytest
import time_machine

from fhir_api import services
from fhir_api.models import SCOPES

NIR = "285067512345639"  # fictitious, with its key
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def start_of_minute():
    """The clock at the start of a minute, then running: per-minute rate limits counted
    by a test do not straddle two windows, however slow the machine."""
    now = datetime.datetime.now(datetime.UTC).replace(second=1, microsecond=0)
    with time_machine.travel(now, tick=True):
        yield


@pytest.fixture
def registered(team, support):
    """The team's software with every scope; returns (ApiClient, secret)."""
    return services.register_client(team=team, name="Logiciel du cabinet", scopes=list(SCOPES), created_by=support)


@pytest.fixture
def ins_patient(patient):
    patient.ins = NIR
    patient.save(update_fields=["ins"])
    return patient


class Http:
    def __init__(self, base):
        self.base = base

    def request(self, method, path, *, body=None, token=None, content_type="application/fhir+json", headers=None):
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310 (http to the live server)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, method, path, **kwargs):
        status, headers, raw = self.request(method, path, **kwargs)
        return status, headers, json.loads(raw) if raw else None

    def token(self, client_id, secret, scope=None):
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        body = urllib.parse.urlencode(form).encode()
        status, _headers, raw = self.request(
            "POST",
            "/fhir/token",
            body=body,
            content_type="application/x-www-form-urlencoded",
            headers={"Authorization": f"Basic {basic}"},
        )
        return status, json.loads(raw)


@pytest.fixture
def http(live_server):
    return Http(live_server.url)


@pytest.fixture
def token(http, registered):
    client, secret = registered
    status, answer = http.token(client.client_id, secret)
    assert status == 200, answer
    return answer["access_token"]


def provide_bundle(
    *, data=PDF, master=None, nir=NIR, family="Durand", birth_date="1985-06-15", hash_of=hashlib.sha1, relates=None
):
    """An ITI-65 Provide Document Bundle as ANS PDSm has it: SubmissionSet List,
    DocumentReference, Binary, and the Patient (INS, birth date, family name)."""
    master = master or f"urn:oid:1.2.250.1.999.{uuid.uuid4().int % 10**12}"
    ids = {name: f"urn:uuid:{uuid.uuid4()}" for name in ("list", "doc", "bin", "patient")}
    attachment = {"contentType": "application/pdf", "url": ids["bin"], "title": "Compte rendu de consultation"}
    attachment["size"] = len(data)
    if hash_of is not None:
        attachment["hash"] = base64.b64encode(hash_of(data).digest()).decode()
    document = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": master},
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}]},
        "subject": {"reference": ids["patient"]},
        "date": "2026-11-20T10:00:00+01:00",
        "content": [{"attachment": attachment}],
        "context": {"period": {"start": "2026-11-20"}},
    }
    if relates:
        document["relatesTo"] = [{"code": "replaces", "target": relates}]
    entries = [
        (
            ids["list"],
            {
                "resourceType": "List",
                "status": "current",
                "mode": "working",
                "code": {
                    "coding": [
                        {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}
                    ]
                },
                "subject": {"reference": ids["patient"]},
                "entry": [{"item": {"reference": ids["doc"]}}],
            },
        ),
        (ids["doc"], document),
        (
            ids["bin"],
            {"resourceType": "Binary", "contentType": "application/pdf", "data": base64.b64encode(data).decode()},
        ),
        (
            ids["patient"],
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": nir}],
                "name": [{"use": "official", "family": family, "given": ["Camille"]}],
                "birthDate": birth_date,
            },
        ),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
            for url, resource in entries
        ],
    }

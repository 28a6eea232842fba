"""The FHIR API's publishing speed: an ITI-65 with a 2 MB PDF (answer before the
Celery step: preview processing is not enqueued here) and a lab Bundle of 100
Observations, each sent new (no idempotent short cut), through the whole stack
(middleware, token check, rate limit, validation, sealing, call log)."""

import base64
import datetime
import json
import os
import uuid
from unittest import mock

from django.test import Client

from benchmarks.harness import analyze, measure, report
from fhir_api import services
from fhir_api.management.commands.fhir_publish import document_bundle, lab_bundle, patient_resource
from fhir_api.models import SCOPES
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam
from records.models import Document, LabReport

NIR = "285067512345639"


def _loinc(number: int) -> str:
    total = 0
    for position, char in enumerate(reversed(str(number))):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return f"{number}-{(10 - total % 10) % 10}"


def run():
    team = CareTeam.objects.create(name="Laboratoire du bench", kind=CareTeam.Kind.PRACTICE)
    user = User.objects.create_user("bench.patient@example.org", "bench-password-123")
    patient = Patient.objects.create(
        user=user, first_name="Camille", last_name="Durand", birth_date=datetime.date(1985, 6, 15), ins=NIR
    )
    CareLink.objects.create(patient=patient, team=team)
    agent = User.objects.create_user("bench.agent@example.org", "bench-password-123", role=User.Role.SUPPORT)
    client, secret = services.register_client(team=team, name="Bench", scopes=list(SCOPES), created_by=agent)
    analyze()
    http = Client()
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    token = http.post("/fhir/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}").json()[
        "access_token"
    ]
    who = patient_resource(ins=NIR, family="Durand", birth_date="1985-06-15")
    pdf = b"%PDF-1.7\n" + os.urandom(2 * 1024 * 1024 - 9)
    rows = [
        {"loinc": _loinc(10_000 + n), "name": f"Test {n}", "value": 1 + n / 100, "unit": "mmol/L", "low": 1, "high": 3}
        for n in range(100)
    ]

    def post(bundle):
        body = json.dumps(bundle)
        response = http.post("/fhir", body, content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 200:
            raise RuntimeError(f"the API answered {response.status_code}: {response.content[:300]!r}")
        return response

    def iti65():
        post(
            document_bundle(
                data=pdf,
                title="Compte rendu",
                category="report",
                patient=who,
                care_date="2026-11-20",
                master_identifier=f"urn:uuid:{uuid.uuid4()}",
            )
        )

    def labs():
        post(lab_bundle(observations=rows, patient=who, report_id=str(uuid.uuid4()), title="Bilan", date="2026-11-25"))

    with (
        mock.patch("records.services._enqueue_processing"),
        mock.patch.object(services.settings, "FHIR_RATE_LIMIT_PER_MINUTE", 10_000),
    ):
        figures = [
            ("ITI-65, one 2 MB PDF (before the Celery step)", measure(iti65, repeat=9)),
            ("lab Bundle, 100 Observations", measure(labs, repeat=9)),
        ]
    report("FHIR API publishing", figures)
    print(f"(each call new: {Document.objects.count()} documents, {LabReport.objects.count()} reports made)")

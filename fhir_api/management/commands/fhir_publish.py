"""A small FHIR client to try the API as a care team's software would: it takes a
token with the client credentials, then publishes a PDF (ITI-65) or a lab CSV
(DiagnosticReport + Observations) to a Carnet server.

    manage.py fhir_publish --url https://carnet.example/fhir --client-id ID \\
        --ins 285067512345639 --family Durand --birth-date 1985-06-15 \\
        pdf compte-rendu.pdf --title "Compte rendu de consultation"
    manage.py fhir_publish ... labs resultats.csv --report-id LAB-1 --date 2026-11-25

The secret is read from FHIR_CLIENT_SECRET (not a command-line argument: it would
show in the process list and the shell history)."""

import base64
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from fhir_api.resources import CATEGORY_TYPES, INS_SYSTEMS, LOINC, UCUM, visibility_label
from records.services import parse_observations_csv


def _entry(resource, full_url=None):
    full_url = full_url or f"urn:uuid:{uuid.uuid4()}"
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def patient_resource(*, ins, family, birth_date) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": INS_SYSTEMS[0], "value": ins}],
        "name": [{"use": "official", "family": family}],
        "birthDate": birth_date,
    }


def document_bundle(
    *, data, title, category, patient, care_date, master_identifier, replaces="", confidential=False
) -> dict:
    """An ITI-65 Provide Document Bundle: SubmissionSet, DocumentReference, Binary, Patient."""
    patient_url, binary_url, reference_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    code, display = CATEGORY_TYPES[category]
    reference = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": master_identifier},
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": patient_url},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": binary_url,
                    "title": title,
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),  # noqa: S324 (FHIR's hash)
                }
            }
        ],
        "context": {"period": {"start": care_date}},
    }
    if replaces:
        reference["relatesTo"] = [{"code": "replaces", "target": {"identifier": {"value": replaces}}}]
    if confidential:
        reference["securityLabel"] = [{"coding": [visibility_label()]}]
    submission_set = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "code": {
            "coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}]
        },
        "subject": {"reference": patient_url},
        "entry": [{"item": {"reference": reference_url}}],
    }
    binary = {"resourceType": "Binary", "contentType": "application/pdf", "data": base64.b64encode(data).decode()}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(submission_set),
            _entry(reference, reference_url),
            _entry(binary, binary_url),
            _entry(patient, patient_url),
        ],
    }


def lab_bundle(*, observations, patient, report_id, title, date, status="final", confidential=False) -> dict:
    """A DiagnosticReport and its Observations, from rows as records' CSV import reads them."""
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries = []
    for row in observations:
        quantity = {"value": float(row["value"]), "unit": row["unit"], "system": UCUM, "code": row["unit"]}
        observation = {
            "resourceType": "Observation",
            "status": status,
            "code": {"coding": [{"system": LOINC, "code": row["loinc"], "display": row["name"]}], "text": row["name"]},
            "subject": {"reference": patient_url},
            "valueQuantity": quantity,
        }
        bounds = {
            side: {"value": float(row[key]), "system": UCUM, "code": row["unit"]}
            for side, key in (("low", "low"), ("high", "high"))
            if row[key] is not None
        }
        if bounds:
            observation["referenceRange"] = [bounds]
        entries.append(_entry(observation))
    report = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"value": report_id}],
        "status": status,
        "code": {"text": title},
        "subject": {"reference": patient_url},
        "effectiveDateTime": date,
        "result": [{"reference": entry["fullUrl"]} for entry in entries],
    }
    if confidential:
        report["meta"] = {"security": [visibility_label()]}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(report), *entries, _entry(patient, patient_url)],
    }


class Command(BaseCommand):
    help = "Publish a PDF (ITI-65) or a lab CSV to a Carnet FHIR API with OAuth 2.0 client credentials."

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True, help="The FHIR base URL, e.g. https://carnet.example/fhir")
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--ins", required=True, help="The patient's INS (NIR and key, 15 characters)")
        parser.add_argument("--family", required=True, help="The patient's family name")
        parser.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
        parser.add_argument(
            "--confidential", action="store_true",
            help="Hidden from the patient's legal representatives (INVISIBLE_REPRESENTANTS_LEGAUX)",
        )  # fmt: skip
        kinds = parser.add_subparsers(dest="kind", required=True)
        pdf = kinds.add_parser("pdf")
        pdf.add_argument("file", type=Path)
        pdf.add_argument("--title", required=True)
        pdf.add_argument("--category", default="report", choices=sorted(CATEGORY_TYPES))
        pdf.add_argument("--date", required=True, help="Date of care, YYYY-MM-DD")
        pdf.add_argument("--master-identifier", help="The document's unique id (a new urn:uuid by default)")
        pdf.add_argument("--replaces", default="", help="The masterIdentifier of the document it replaces")
        labs = kinds.add_parser("labs")
        labs.add_argument("file", type=Path, help="CSV: loinc, name, value, unit, low, high")
        labs.add_argument("--report-id", required=True)
        labs.add_argument("--title", default="Résultats d’analyses")
        labs.add_argument("--date", required=True, help="Sample date, YYYY-MM-DD")
        labs.add_argument("--status", default="final", choices=["final", "amended", "corrected"])

    def handle(self, *args, **options):
        secret = os.environ.get("FHIR_CLIENT_SECRET")
        if not secret:
            raise CommandError("Set FHIR_CLIENT_SECRET to the client's secret.")
        base = options["url"].rstrip("/")
        patient = patient_resource(ins=options["ins"], family=options["family"], birth_date=options["birth_date"])
        data = options["file"].read_bytes()
        if options["kind"] == "pdf":
            bundle = document_bundle(
                data=data,
                title=options["title"],
                category=options["category"],
                patient=patient,
                care_date=options["date"],
                master_identifier=options["master_identifier"] or f"urn:uuid:{uuid.uuid4()}",
                replaces=options["replaces"],
                confidential=options["confidential"],
            )
        else:
            try:
                observations = parse_observations_csv(data)
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None
            bundle = lab_bundle(
                observations=observations,
                patient=patient,
                report_id=options["report_id"],
                title=options["title"],
                date=options["date"],
                status=options["status"],
                confidential=options["confidential"],
            )
        token = self._token(base, options["client_id"], secret)
        status, answer = _call(
            f"{base}/",
            json.dumps(bundle).encode(),
            {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"},
        )
        self.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False))
        if status >= 400:
            raise CommandError(f"The server answered {status}.")

    def _token(self, base, client_id, secret):
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        status, answer = _call(
            f"{base}/token",
            urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
        )
        if status != 200:
            raise CommandError(f"No token ({status}): {answer}")
        return answer["access_token"]


def _call(url, body, headers):
    if not url.startswith(("http://", "https://")):
        raise CommandError("The URL must start with http:// or https://")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")

"""What goes into each export: the PDFs, the FHIR bundle and the archive.

Each builder reads through ``portal.access`` as the user who asked for the
export, so an export never holds more than that user may see. A summary section
is one small function from a patient to template context, listed in ``SECTIONS``.
"""

import base64
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Callable

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy

from messaging import services as messaging
from messaging.models import Message
from portal import access
from portal.accounts.models import Patient
from portal.careteams.models import CareLink
from records import files, pdf
from records.fhir_codes import INTERPRETATION_SYSTEM, LOINC, UCUM, ins_identifier, loinc_is_valid, ucum_is_well_formed
from records.models import Allergy, Condition, LabReport, Measurement, Observation, Prescription, Vaccination
from records.services import read_document


class Gone(Exception):
    """What the export was about no longer exists or is no longer visible."""


def _noop(_percent):
    pass


# --- Health summary sections: one function each, from a patient to context ---


def identity_section(*, user, patient: Patient) -> dict:
    return {"patient": patient}


def care_teams_section(*, user, patient: Patient) -> dict:
    links = CareLink.objects.filter(patient=patient, status=CareLink.Status.ACTIVE).select_related("team")
    return {"care_links": list(links.order_by("team__name"))}


# A summary is one to a few pages: the latest documents, the rest in the archive.
SUMMARY_DOCUMENTS = 25


def documents_section(*, user, patient: Patient) -> dict:
    # The summary lists the documents in force; withdrawn and replaced ones are in the archive.
    documents = access.documents_visible_to(user).filter(patient=patient).current()
    latest = list(documents.select_related("author_team")[:SUMMARY_DOCUMENTS])
    total = len(latest) if len(latest) < SUMMARY_DOCUMENTS else documents.count()
    return {"documents": latest, "more": total - len(latest)}


def allergies_section(*, user, patient: Patient) -> dict:
    return {"rows": list(access.items_visible_to(user, Allergy).filter(patient=patient))}


def conditions_section(*, user, patient: Patient) -> dict:
    return {"rows": list(access.items_visible_to(user, Condition).filter(patient=patient))}


def prescriptions_section(*, user, patient: Patient) -> dict:
    today = timezone.localdate()
    rows = (
        access.items_visible_to(user, Prescription)
        .filter(patient=patient, start_date__lte=today)
        .exclude(end_date__lt=today)
        .current(today)
        .select_related("prescriber", "team")
    )
    return {"rows": list(rows)}


def vaccinations_section(*, user, patient: Patient) -> dict:
    return {"rows": list(access.items_visible_to(user, Vaccination).filter(patient=patient))}


def measurements_section(*, user, patient: Patient) -> dict:
    """The latest value of each kind of measurement."""
    latest = {}
    for row in access.items_visible_to(user, Measurement).filter(patient=patient).order_by("-measured_on", "-pk"):
        latest.setdefault(row.kind, row)
    return {"rows": [latest[kind] for kind in Measurement.Kind.values if kind in latest]}


def lab_results_section(*, user, patient: Patient) -> dict:
    """The latest value of each lab test, with its range and flag."""
    newest_first = [F("report__collected_on").desc(), F("pk").desc()]
    rows = (
        access.items_visible_to(user, Observation)
        .filter(patient=patient)
        .annotate(rank=Window(RowNumber(), partition_by=F("loinc"), order_by=newest_first))
        .filter(rank=1)  # the database keeps one row per test: not 2,000 objects for 20
        .select_related("report")
    )
    return {"rows": sorted(rows, key=lambda row: row.name)}


# key → (label, function, template), in the order of the PDF.
SECTIONS = {
    "identity": (gettext_lazy("Identity"), identity_section, "pdf/sections/identity.html"),
    "allergies": (gettext_lazy("Allergies"), allergies_section, "pdf/sections/allergies.html"),
    "conditions": (gettext_lazy("Conditions and history"), conditions_section, "pdf/sections/conditions.html"),
    "prescriptions": (gettext_lazy("Current treatments"), prescriptions_section, "pdf/sections/prescriptions.html"),
    "vaccinations": (gettext_lazy("Vaccinations"), vaccinations_section, "pdf/sections/vaccinations.html"),
    "measurements": (gettext_lazy("Latest measurements"), measurements_section, "pdf/sections/measurements.html"),
    "lab_results": (gettext_lazy("Latest lab results"), lab_results_section, "pdf/sections/lab_results.html"),
    "care_teams": (gettext_lazy("Care teams"), care_teams_section, "pdf/sections/care_teams.html"),
    "documents": (gettext_lazy("Documents"), documents_section, "pdf/sections/documents.html"),
}


def summary_sections(*, user, patient: Patient, chosen) -> list[dict]:
    """The chosen sections, in the registry's order, each with its context."""
    return [
        {"key": key, "label": label, "template": template, **function(user=user, patient=patient)}
        for key, (label, function, template) in SECTIONS.items()
        if key in chosen
    ]


def _common(patient):
    return {"patient": patient, "generated_at": timezone.localtime()}


def summary_html(*, user, patient: Patient, sections) -> str:
    chosen = summary_sections(user=user, patient=patient, chosen=sections)
    return render_to_string("pdf/summary.html", {**_common(patient), "sections": chosen})


def build_summary(*, user, patient: Patient, sections, progress: Callable = _noop) -> bytes:
    html = summary_html(user=user, patient=patient, sections=sections)
    progress(40)
    return pdf.write_pdf(html)


# --- Lab results PDF ---

# Rows per trend table: many short tables keep WeasyPrint's layout cost linear
# (one table of 500 rows costs several times five of 100).
TREND_ROWS_PER_TABLE = 50


def observations_between(observations, start=None, end=None):
    """``observations`` whose report was collected within [start, end] (either may be open)."""
    if start:
        observations = observations.filter(report__collected_on__gte=start)
    if end:
        observations = observations.filter(report__collected_on__lte=end)
    return observations


def lab_results_context(*, user, patient: Patient, start=None, end=None) -> dict:
    """Values grouped by report (newest first), and each test's values over time."""
    observations = observations_between(access.items_visible_to(user, Observation).filter(patient=patient), start, end)
    observations = observations.select_related("report__team").order_by(
        "-report__collected_on", "-report_id", "name", "pk"
    )
    reports, by_test = [], {}
    for row in observations.iterator(chunk_size=2000):
        if not reports or reports[-1]["report"].pk != row.report_id:
            reports.append({"report": row.report, "rows": []})
        reports[-1]["rows"].append(row)
        by_test.setdefault((row.name, row.loinc, row.unit), []).append(row)
    trends = []
    for (name, loinc, unit), rows in sorted(by_test.items()):
        rows.reverse()  # oldest first, as a trend reads
        chunks = [rows[i : i + TREND_ROWS_PER_TABLE] for i in range(0, len(rows), TREND_ROWS_PER_TABLE)]
        trends.append({"name": name, "loinc": loinc, "unit": unit, "chunks": chunks})
    count = sum(len(group["rows"]) for group in reports)
    return {"start": start, "end": end, "reports": reports, "trends": trends, "count": count}


def lab_results_html(*, user, patient: Patient, start=None, end=None) -> str:
    context = lab_results_context(user=user, patient=patient, start=start, end=end)
    return render_to_string("pdf/lab_results.html", {**_common(patient), **context})


def build_lab_results(*, user, patient: Patient, start=None, end=None, progress: Callable = _noop) -> bytes:
    html = lab_results_html(user=user, patient=patient, start=start, end=end)
    progress(30)
    return pdf.write_pdf(html)


def _conversation(user, patient, conversation_id):
    conversation = access.conversations_for(user).filter(patient=patient, pk=conversation_id).select_related("team")
    conversation = conversation.first()
    if conversation is None:
        raise Gone
    return conversation


def conversation_html(*, patient: Patient, conversation) -> str:
    messages = Message.objects.filter(conversation=conversation).select_related("author", "author_team")
    return render_to_string(
        "pdf/conversation.html", {**_common(patient), "conversation": conversation, "messages": list(messages)}
    )


def build_conversation(*, user, patient: Patient, conversation_id: int, progress: Callable = _noop) -> bytes:
    conversation = _conversation(user, patient, conversation_id)
    progress(30)
    return pdf.write_pdf(conversation_html(patient=patient, conversation=conversation))


# --- FHIR R4 (validated with the R4B models of fhir.resources) ---

GENDERS = {"female": "female", "male": "male", "other": "other"}
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
PROFILES = {
    "Patient": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient",
    "DocumentReference": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.DocumentReference",
    "vital-signs": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
    "laboratory": "http://hl7.org/fhir/StructureDefinition/Observation",
}
# Stable ids for the bundle's urn:uuid fullUrls: the same record exports the same uuids.
UUID_NAMESPACE = uuid.UUID("6f1c1a52-8b0e-4d0e-9d3e-6a1f5c2b7e10")
# Each flag as the v3 code the model first gives it (L, not LU): what comes in and what
# goes out read from one table.
INTERPRETATIONS = {}
for _code, _flag in Observation.INTERPRETATIONS.items():
    INTERPRETATIONS.setdefault(_flag, _code)
# Measurement kinds as LOINC vital signs: code, display, UCUM unit.
VITAL_SIGNS = {
    "weight": ("29463-7", "Body weight", "kg"),
    "height": ("8302-2", "Body height", "cm"),
    "glucose": ("2339-0", "Glucose [Mass/volume] in Blood", "g/L"),
    "blood_pressure": ("85354-9", "Blood pressure panel", "mm[Hg]"),
}


def _coded(system, code, display=None):
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _number(value):
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity(value, unit):
    """A Quantity; coded in UCUM when the unit is a UCUM code."""
    if value is None:
        return None
    quantity = {"value": _number(value), "unit": unit}
    if ucum_is_well_formed(unit):
        quantity.update(system=UCUM, code=unit)
    return quantity


def _lab_code(row):
    """LOINC only for a valid LOINC code; a local code under its own system; else text."""
    if row.code_system:
        return {**_coded(row.code_system, row.loinc, row.name), "text": row.name}
    if loinc_is_valid(row.loinc):
        return {**_coded(LOINC, row.loinc, row.name), "text": row.name}
    return {"text": f"{row.name} ({row.loinc})" if row.loinc else row.name}


def _medication_requests(prescriptions, subject):
    today = timezone.localdate()
    for row in prescriptions:
        end = row.end_date and row.end_date.isoformat()
        yield {
            "resourceType": "MedicationRequest",
            "id": f"rx-{row.pk}",
            "status": "active" if row.is_active(today) else "completed",
            "intent": "order",
            "medicationCodeableConcept": {"text": row.medication},
            "subject": subject,
            "authoredOn": row.start_date.isoformat(),
            "requester": {"display": row.prescriber.get_full_name() or row.team.name},
            "dosageInstruction": [{"text": row.posology, "route": {"text": str(row.get_route_display())}}],
            "dispenseRequest": {"validityPeriod": {"start": row.start_date.isoformat(), "end": end}},
        }


def _lab_resources(reports, observations, subject):
    """One Observation per lab value, one DiagnosticReport per report that lists them."""
    results = {}
    for row in observations:
        day = row.report.collected_on.isoformat()
        results.setdefault(row.report_id, []).append({"reference": f"Observation/lab-{row.pk}"})
        yield {
            "resourceType": "Observation",
            "id": f"lab-{row.pk}",
            "meta": {"profile": [PROFILES["laboratory"]]},
            "status": row.status,
            "category": [_coded(TERMINOLOGY + "observation-category", "laboratory")],
            "code": _lab_code(row),
            "subject": subject,
            "effectiveDateTime": day,
            "valueQuantity": _quantity(row.value, row.unit),
            "referenceRange": [{"low": _quantity(row.low, row.unit), "high": _quantity(row.high, row.unit)}],
            # The laboratory's, else computed against a range; none with neither ("normal"
            # would be a guess).
            "interpretation": [
                {**_coded(INTERPRETATION_SYSTEM, INTERPRETATIONS[row.flag]),
                 "text": str(row.get_flag_display())}
            ] if row.flag else [],
        }  # fmt: skip
    for report in reports:
        yield {
            "resourceType": "DiagnosticReport",
            "id": str(report.pk),
            "status": "final",
            "category": [_coded(TERMINOLOGY + "v2-0074", "LAB")],
            "code": {"text": report.title},
            "subject": subject,
            "effectiveDateTime": report.collected_on.isoformat(),
            "performer": [{"display": report.team.name}],
            "result": results.get(report.pk, []),
        }


def _vital_signs(measurements, subject):
    for row in measurements:
        code, display, unit = VITAL_SIGNS[row.kind]
        resource = {
            "resourceType": "Observation",
            "id": f"vital-{row.pk}",
            "meta": {"profile": [PROFILES["vital-signs"]]},
            "status": "final",
            "category": [_coded(TERMINOLOGY + "observation-category", "vital-signs")],
            "code": {**_coded(LOINC, code, display), "text": str(row.get_kind_display())},
            "subject": subject,
            "effectiveDateTime": row.measured_on.isoformat(),
        }
        if row.kind == Measurement.Kind.BLOOD_PRESSURE:
            resource["component"] = [
                {"code": _coded(LOINC, code, name), "valueQuantity": _quantity(value, unit)}
                for code, name, value in [
                    ("8480-6", "Systolic blood pressure", row.value),
                    ("8462-4", "Diastolic blood pressure", row.value2),
                ]
            ]
        else:
            resource["valueQuantity"] = _quantity(row.value, unit)
        yield resource


def _profile_resources(allergies, conditions, vaccinations, subject):
    active = "active"
    for row in allergies:
        yield {
            "resourceType": "AllergyIntolerance",
            "id": str(row.pk),
            "clinicalStatus": _coded(TERMINOLOGY + "allergyintolerance-clinical", active),
            "code": {"text": row.substance},
            "patient": subject,
            "recordedDate": timezone.localtime(row.created_at).isoformat(),
            "reaction": [
                {"manifestation": [{"text": row.reaction}], **({"severity": row.severity} if row.severity else {})}
            ]
            if row.reaction
            else [],
        }
    for row in conditions:
        yield {
            "resourceType": "Condition",
            "id": str(row.pk),
            "clinicalStatus": _coded(TERMINOLOGY + "condition-clinical", active),
            "code": {"text": row.name},
            "subject": subject,
            "onsetDateTime": row.since and row.since.isoformat(),
            "note": [{"text": row.notes}] if row.notes else [],
        }
    for row in vaccinations:
        yield {
            "resourceType": "Immunization",
            "id": str(row.pk),
            "status": "completed",
            "vaccineCode": {"text": row.vaccine},
            "patient": subject,
            "occurrenceDateTime": row.date.isoformat(),
            "lotNumber": row.lot,
        }


def clinical_resources(*, user, patient: Patient, subject: dict) -> list[dict]:
    """Treatments, lab results, vital signs, allergies, conditions and vaccinations as
    FHIR resources: what ``user`` may see of ``patient``, in a fixed number of queries."""

    def visible(model):
        return access.items_visible_to(user, model).filter(patient=patient)

    observations = visible(Observation).select_related("report").order_by("report__collected_on", "report_id", "pk")
    return [
        *_medication_requests(visible(Prescription).select_related("prescriber", "team", "replaced_by"), subject),
        *_lab_resources(
            visible(LabReport).select_related("team").order_by("collected_on", "pk"), observations, subject
        ),
        *_vital_signs(visible(Measurement).order_by("measured_on", "pk"), subject),
        *_profile_resources(visible(Allergy), visible(Condition), visible(Vaccination), subject),
    ]


def fhir_bundle(
    *, user, patient: Patient, documents, conversations, document_paths, document_hashes=None, attachment_files=None
) -> dict:
    """A FHIR R4 ``collection`` Bundle of the record (what ``user`` may see of it),
    checked against the R4B models. Entries have ``urn:uuid:`` fullUrls (stable for a
    record) and reference each other by them; ``document_hashes`` are the documents'
    SHA-1 (base64), as FHIR's Attachment.hash has it; ``attachment_files`` maps a
    message attachment's pk to its (path in the archive, SHA-1) when it is included."""
    from fhir.resources.R4B.bundle import Bundle

    document_hashes = document_hashes or {}
    attachment_files = attachment_files or {}
    patient_ref = {"reference": f"Patient/{patient.pk}"}
    resource = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": {"profile": [PROFILES["Patient"]]},
        "name": [{"family": patient.last_name, "given": [patient.first_name]}],
        "birthDate": patient.birth_date.isoformat(),
        "gender": GENDERS.get(patient.sex, "unknown"),
    }
    if patient.ins:
        resource["identifier"] = [ins_identifier(patient.ins)]
    entries = [resource]
    for document in documents:
        attachment = {"contentType": document.content_type, "title": document.title, "size": document.size}
        if document.pk in document_paths:
            attachment["url"] = document_paths[document.pk]
        if document.pk in document_hashes:
            attachment["hash"] = document_hashes[document.pk]
        reference = {
            "resourceType": "DocumentReference",
            "id": str(document.pk),
            "meta": {"profile": [PROFILES["DocumentReference"]]},
            "status": document.fhir_status,
            "subject": patient_ref,
            "date": timezone.localtime(document.created_at).isoformat(),
            "description": document.title,
            "category": [{"text": str(document.get_category_display())}],
            "content": [{"attachment": attachment}],
            "context": {"period": {"start": document.care_date.isoformat()}},
        }
        if document.author_team_id:
            reference["custodian"] = {"display": document.author_team.name}
        entries.append(reference)
    for conversation in conversations:
        for message in conversation.messages.all():
            entries.append(
                {
                    "resourceType": "Communication",
                    "id": str(message.pk),
                    "status": "completed",
                    "subject": patient_ref,
                    "topic": {"text": conversation.subject},
                    "sent": timezone.localtime(message.created_at).isoformat(),
                    "sender": {"display": message.author.get_full_name().strip() or _team_name(message)},
                    "payload": [{"contentString": message.body}]
                    + [_message_attachment(a, attachment_files.get(a.pk)) for a in message.attachments.all()],
                }
            )
    entries += clinical_resources(user=user, patient=patient, subject=patient_ref)
    entries = [_without_blanks(entry) for entry in entries]
    urls = {
        f"{e['resourceType']}/{e['id']}": f"urn:uuid:{uuid.uuid5(UUID_NAMESPACE, f'{e["resourceType"]}/{e["id"]}')}"
        for e in entries
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
        "entry": [
            {"fullUrl": urls[f"{entry['resourceType']}/{entry['id']}"], "resource": _by_full_url(entry, urls)}
            for entry in entries
        ],
    }
    Bundle.model_validate(bundle)  # raises when the bundle is not valid R4
    return bundle


def _message_attachment(attachment, stored) -> dict:
    """A message's file as a Communication payload: named, typed, sized, and, when it
    is in the archive, its path there and the SHA-1 of its bytes."""
    content = {"contentType": attachment.content_type, "title": attachment.display_name, "size": attachment.size}
    if stored is not None:
        content["url"], content["hash"] = stored
    return {"contentAttachment": content}


def attachment_path(conversation, attachment) -> str:
    """Where a message's file goes in the archive: by conversation, under its own pk and
    the safe name it was sent under, with the extension of its checked content."""
    name = slugify(attachment.display_name.rsplit(".", 1)[0])[:60] or "piece-jointe"
    extension = files.EXTENSIONS.get(attachment.content_type, "bin")
    return f"conversations/attachments/{conversation.pk}-{attachment.pk}-{name}.{extension}"


def _by_full_url(value, urls):
    """``value`` with its references ("Patient/12") turned into the entries' fullUrls."""
    if isinstance(value, dict):
        return {
            key: urls.get(item, item) if key == "reference" else _by_full_url(item, urls) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_by_full_url(item, urls) for item in value]
    return value


def _team_name(message):
    return message.author_team.name if message.author_team_id else ""


def _without_blanks(value):
    """FHIR forbids empty strings and empty objects: drop them (a user without a name, say)."""
    if isinstance(value, dict):
        cleaned = {key: _without_blanks(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item not in ("", None, {}, [])}
    if isinstance(value, list):
        return [item for item in (_without_blanks(item) for item in value) if item not in ("", None, {}, [])]
    return value.strip() if isinstance(value, str) and not value.strip() else value


# --- Complete archive ---


def document_path(document) -> str:
    name = slugify(document.title)[:60] or "document"
    return f"documents/{document.care_date.isoformat()}-{name}-{document.pk}.{document.extension}"


def build_archive(*, user, patient: Patient, progress: Callable = _noop) -> bytes:
    """A ZIP of the whole record: summary PDF, original documents, conversations
    as PDFs, a FHIR bundle and a README. A document whose stored file fails its
    check is listed as unavailable; the archive is still made."""
    documents = list(access.documents_visible_to(user).filter(patient=patient).select_related("author_team"))
    conversations = list(
        access.conversations_for(user)
        .filter(patient=patient)
        .select_related("team")
        .prefetch_related("messages__author", "messages__author_team", "messages__attachments")
        .order_by("created_at", "pk")
    )
    out = io.BytesIO()
    unavailable, withdrawn, document_paths, document_hashes = [], [], {}, {}
    unavailable_attachments, attachment_files = [], {}
    steps = 2 + len(documents) + len(conversations)
    done = 0

    def step():
        nonlocal done
        done += 1
        progress(min(95, 5 + 90 * done // steps))

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("health-summary.pdf", build_summary(user=user, patient=patient, sections=list(SECTIONS)))
        step()
        for document in documents:
            if document.withdrawn_at:  # published in error (perhaps another person's): listed, never shipped
                withdrawn.append(document)
                step()
                continue
            try:
                data = read_document(document=document)
            except files.IntegrityError:
                unavailable.append(document)
            else:
                path = document_path(document)
                # Stored files are sealed already; deflating them again gains nothing.
                archive.writestr(path, data, compress_type=zipfile.ZIP_STORED)
                document_paths[document.pk] = path
                document_hashes[document.pk] = base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324
            step()
        conversation_paths = []
        for conversation in conversations:
            started = timezone.localtime(conversation.created_at)
            path = f"conversations/{started:%Y-%m-%d}-{slugify(conversation.subject)[:60]}-{conversation.pk}.pdf"
            html = render_to_string(
                "pdf/conversation.html",
                {**_common(patient), "conversation": conversation, "messages": list(conversation.messages.all())},
            )
            archive.writestr(path, pdf.write_pdf(html))
            conversation_paths.append(path)
            for message in conversation.messages.all():
                for attachment in message.attachments.all():
                    try:
                        data = messaging.read_attachment(attachment=attachment)
                    except files.IntegrityError:
                        unavailable_attachments.append(attachment)
                        continue
                    stored_at = attachment_path(conversation, attachment)
                    archive.writestr(stored_at, data, compress_type=zipfile.ZIP_STORED)
                    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324 (FHIR's Attachment.hash)
                    attachment_files[attachment.pk] = (stored_at, sha1)
            step()
        bundle = fhir_bundle(
            user=user,
            patient=patient,
            documents=documents,
            conversations=conversations,
            document_paths=document_paths,
            document_hashes=document_hashes,
            attachment_files=attachment_files,
        )
        archive.writestr("fhir-r4-bundle.json", json.dumps(bundle, ensure_ascii=False, indent=1))
        readme = render_to_string(
            "pdf/archive_readme.txt",
            {
                **_common(patient),
                "documents": len(document_paths),
                "unavailable": unavailable,
                "withdrawn": withdrawn,
                "conversations": len(conversation_paths),
                "attachments": len(attachment_files),
                "unavailable_attachments": unavailable_attachments,
            },
        )
        archive.writestr("README.txt", readme)
        step()
    return out.getvalue()

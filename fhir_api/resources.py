"""FHIR R4 in and out: reading what a client sends (checked with fhir.resources' models,
then the profile rules of ANS PDSm / IHE MHD in code) and writing what it reads back.
Pure functions over dicts: no database here (``services`` does the matching)."""

import base64
import binascii
import dataclasses
import datetime
import functools
import hashlib
import json
import re
import uuid
from decimal import Decimal, InvalidOperation

from django.http import HttpResponse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from portal.apps import plain_text
from records.fhir_codes import (
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    INTERPRETATION_SYSTEM,
    LOINC,
    UCUM,
    ins_identifier,
    loinc_is_valid,
    ucum_is_well_formed,
)
from records.models import Observation

FHIR_JSON = "application/fhir+json"
INS_SYSTEMS = (INS_NIR_OID, INS_NIR_TEST_OID)
SUBMISSION_SET = ("https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "submissionset")
PROFILE_DOCUMENT_REFERENCE = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/PDSm_SimplifiedPublish"

# Document types (LOINC, as in the French JDV_J66 value set) and the records category each maps to.
DOCUMENT_TYPES = {
    "57833-6": "prescription",
    "11502-2": "lab_report",
    "18748-4": "imaging",
    "11369-6": "vaccination",
    "11488-4": "report",
    "34133-9": "report",
    "11490-0": "report",
    "28653-4": "certificate",
}
CATEGORY_TYPES = {
    "prescription": ("57833-6", "Prescription for medication"),
    "lab_report": ("11502-2", "Laboratory report"),
    "imaging": ("18748-4", "Diagnostic imaging study"),
    "vaccination": ("11369-6", "History of Immunization"),
    "report": ("11488-4", "Consult note"),
    "certificate": ("28653-4", "Certificate"),
    "other": ("55107-7", "Addendum Document"),
}


# The DMP's visibility codes (ANS, TRE_A07 StatutVisibiliteDocument; its FHIR system, or its OID
# as IHE XDS carries it), read from a resource's meta.security and a DocumentReference's
# securityLabel. INVISIBLE_REPRESENTANTS_LEGAUX is Carnet's "confidential from the
# representatives". The other two (INVISIBLE_PATIENT, MASQUE_PS) ask for what Carnet does not
# do (every published item reaches its patient and their care teams): refused, not ignored,
# since an item published without them would show what its sender meant to keep hidden.
VISIBILITY_SYSTEMS = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
    "urn:oid:1.2.250.1.213.1.1.4.13",
)
HIDDEN_FROM_REPRESENTATIVES = "INVISIBLE_REPRESENTANTS_LEGAUX"


class FhirError(Exception):
    """A refusal, answered as an OperationOutcome with the diagnostic in French and English."""

    def __init__(self, status: int, code: str, message, *, params=None, headers=None, expression=None):
        super().__init__(str(message))
        self.status, self.code, self.message, self.params = status, code, message, params
        self.headers, self.expression = headers or {}, expression

    def response(self) -> HttpResponse:
        outcome = operation_outcome(self.code, self.message, params=self.params, expression=self.expression)
        response = fhir_response(outcome, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(message, params=None, expression=None) -> FhirError:
    """A 400 refusal; ``expression``, the FHIRPath of the element at fault, when known."""
    return FhirError(400, "invalid", message, params=params, expression=expression)


def bounded_text(value: str, limit: int, expression: str) -> str:
    """``value`` as a web form keeps it (``portal.apps.plain_text``: stripped, without
    direction controls), refused when longer than ``limit`` (what the web form allows):
    never cut in silence."""
    value = plain_text(value or "")
    if len(value) > limit:
        raise invalid(
            _("%(element)s is longer than %(limit)s characters."),
            params={"element": expression, "limit": limit},
            expression=expression,
        )
    return value


def in_both_languages(message, params=None) -> tuple[str, str]:
    """``message`` (lazy) in French and in English, ``params`` put in after translation."""
    texts = []
    for language in ("fr", "en"):
        with translation.override(language):
            texts.append(str(message) % params if params else str(message))
    return texts[0], texts[1]


def operation_outcome(code: str, message, *, params=None, severity="error", expression=None) -> dict:
    """One issue; ``diagnostics`` in French, its English with FHIR's translation extension;
    ``expression``, the element at fault, when known."""
    french, english = in_both_languages(message, params)
    translation_ext = {
        "url": "http://hl7.org/fhir/StructureDefinition/translation",
        "extension": [{"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": english}],
    }
    issue = {
        "severity": severity,
        "code": code,
        "diagnostics": french,
        "_diagnostics": {"extension": [translation_ext]},
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(resource: dict, status=200, headers=None) -> HttpResponse:
    response = HttpResponse(json.dumps(resource), status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Nesting deeper than any FHIR resource goes (a Bundle's deepest elements are some 15
# levels down): refused before anything walks it.
MAX_DEPTH = 64


def parse_json(body: bytes) -> dict:
    """The body as a JSON object, refused (400) when it is not one, nests deeper than
    ``MAX_DEPTH`` or carries a NUL character in any text (which no database column
    keeps, and no FHIR string allows)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid(_("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise invalid(_("The body is not a FHIR resource."))
    waiting = [(data, 1)]  # walked without recursion, whatever the depth
    while waiting:
        value, depth = waiting.pop()
        if depth > MAX_DEPTH:
            raise invalid(_("The body nests elements deeper than FHIR resources do."))
        if isinstance(value, dict):
            waiting.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            waiting.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            raise invalid(_("A text of the body contains a NUL character."))
    return data


def validate_model(data: dict, model_name: str):
    """Check ``data`` against fhir.resources' model (R4B, the R4 line with the same
    resources used here). The first error names the element, never its value."""
    import importlib

    from pydantic import ValidationError

    module = importlib.import_module(f"fhir.resources.R4B.{model_name.lower()}")
    try:
        getattr(module, model_name).model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
        raise invalid(
            _("Invalid FHIR %(type)s at %(where)s: %(reason)s"),
            {"type": model_name, "where": where or "-", "reason": first["type"]},
        ) from None


def transaction_entries(data: dict) -> list[dict]:
    """The entries of a transaction Bundle, each with a resource."""
    if data.get("resourceType") != "Bundle" or data.get("type") != "transaction":
        raise invalid(_("A transaction Bundle is expected."))
    validate_model(data, "Bundle")
    entries = data.get("entry") or []
    if not entries or any(not isinstance(entry.get("resource"), dict) for entry in entries):
        raise invalid(_("Every entry of the Bundle needs a resource."))
    return entries


# --- Patient identity ---


@dataclasses.dataclass(frozen=True)
class Identity:
    ins: str
    birth_date: datetime.date
    family: str


def identity_of(patient: dict) -> Identity:
    """The INS, birth date and family name of a Patient resource: all three are required."""
    ins = next(
        (
            (identifier.get("value") or "").strip()
            for identifier in patient.get("identifier") or []
            if identifier.get("system") in INS_SYSTEMS
        ),
        "",
    )
    names = patient.get("name") or []
    official = [name for name in names if name.get("use") == "official"] or names
    family = next((name.get("family") for name in official if name.get("family")), "")
    try:
        birth_date = datetime.date.fromisoformat(patient.get("birthDate") or "")
    except ValueError:
        birth_date = None
    if not nir_is_valid(ins) or not family or not birth_date:
        raise invalid(
            _(
                "The patient must be identified by their INS (system urn:oid:1.2.250.1.213.1.4.8, or "
                "urn:oid:1.2.250.1.213.1.4.10 for a test identity), birth date and family name."
            )
        )
    return Identity(ins=ins, birth_date=birth_date, family=family)


def nir_is_valid(nir: str) -> bool:
    """A NIR of 13 characters (Corsica's 2A/2B allowed) and its key, 97 - (number mod 97)."""
    match = re.fullmatch(r"([0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6})([0-9]{2})", nir or "")
    if not match:
        return False
    number = match.group(1).replace("2A", "19", 1).replace("2B", "18", 1)
    return 97 - int(number) % 97 == int(match.group(2))


def resolve_patient(reference: dict | None, *, entries_by_url: dict, contained: list) -> dict:
    """The Patient resource a subject points at: a contained one ("#id") or an entry
    of the Bundle (its fullUrl)."""
    target = (reference or {}).get("reference") or ""
    if target.startswith("#"):
        found = next((r for r in contained if r.get("resourceType") == "Patient" and r.get("id") == target[1:]), None)
    else:
        found = entries_by_url.get(target)
        if found is not None and found.get("resourceType") != "Patient":
            found = None
    if found is None:
        raise invalid(_("The subject must be a Patient in the Bundle or contained in the resource."))
    validate_model(found, "Patient")
    return found


def hidden_from_representatives(resource: dict) -> bool:
    """Whether ``resource`` is labelled INVISIBLE_REPRESENTANTS_LEGAUX (see
    VISIBILITY_SYSTEMS); 422 for a visibility code Carnet cannot honour."""
    codings = list((resource.get("meta") or {}).get("security") or [])
    for label in resource.get("securityLabel") or []:
        codings += label.get("coding") or []
    codes = {coding.get("code") or "" for coding in codings if coding.get("system") in VISIBILITY_SYSTEMS}
    refused = sorted(codes - {HIDDEN_FROM_REPRESENTATIVES})
    if refused:
        raise FhirError(
            422,
            "not-supported",
            _(
                "Carnet cannot hide an item from its patient or from the care teams (%(code)s): nothing was "
                "published. Only INVISIBLE_REPRESENTANTS_LEGAUX (hidden from the legal representatives) is kept."
            ),
            params={"code": ", ".join(refused)[:100]},
        )
    return bool(codes)


def visibility_label() -> dict:
    """INVISIBLE_REPRESENTANTS_LEGAUX as a coding: what a confidential item reads back with."""
    return {
        "system": VISIBILITY_SYSTEMS[0],
        "code": HIDDEN_FROM_REPRESENTATIVES,
        "display": "Non visible par les représentants légaux du patient",
    }


# --- Documents (ITI-65) ---


@dataclasses.dataclass
class DocumentSubmission:
    full_url: str
    master_identifier: str
    title: str
    category: str
    care_date: datetime.date
    declared_type: str
    data: bytes
    identity: Identity
    replaces_id: int | None = None
    replaces_identifier: str = ""
    confidential: bool = False  # from the representatives (INVISIBLE_REPRESENTANTS_LEGAUX)


def _decode(data: str) -> bytes:
    """FHIR's base64Binary, which may be wrapped in lines (as MIME wraps it at 76
    characters): whitespace is dropped, any other character outside base64 refused."""
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError, TypeError, AttributeError):  # AttributeError: not a string
        raise invalid(_("The binary content is not valid base64.")) from None


def check_hash(data: bytes, declared: str | None) -> None:
    """``attachment.hash``: base64 of the SHA-1 (FHIR's rule) or of the SHA-256."""
    if not declared:
        return
    digest = _decode(declared)
    expected = {20: hashlib.sha1, 32: hashlib.sha256}.get(len(digest))
    if expected is None or expected(data).digest() != digest:
        raise FhirError(
            400, "invalid", _("The attachment's hash does not match its content (SHA-1 or SHA-256, base64).")
        )


# FHIR's date and dateTime, to the day at least (a care date needs one): 2026-11-20,
# 2026-11-20T10:00:00+01:00 (the zone FHIR asks for, or none); nothing after it.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?")


def _date(value) -> datetime.date | None:
    """The day of a FHIR date or dateTime; None when absent; a 400 when it is not one
    (a number, an object, a day that does not exist, trailing text)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise invalid(_("A date is not valid."))
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        raise invalid(_("A date is not valid.")) from None


def refuses_wrong_types(parse):
    """A bundle's reader refuses, as a 400, an element of another JSON type than FHIR's
    (a number where an object is, an object where a string is): each reader walks the
    JSON as FHIR shapes it, and such an element breaks that walk as a TypeError or an
    AttributeError, which would otherwise be a 500."""

    @functools.wraps(parse)
    def wrapped(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except (TypeError, AttributeError):
            raise invalid(
                _("An element has the wrong type: an object, a list, a string or a number where FHIR has another.")
            ) from None

    return wrapped


@refuses_wrong_types
def document_submissions(data: dict, *, max_bytes: int) -> list[DocumentSubmission]:
    """The documents of a Provide Document Bundle (ITI-65, as profiled by ANS PDSm):
    a SubmissionSet List, one or more DocumentReferences, each with its Binary (or
    its data inline, as in a simplified publish). Everything is checked before
    anything is written."""
    entries = transaction_entries(data)
    by_url = {entry.get("fullUrl"): entry["resource"] for entry in entries if entry.get("fullUrl")}
    lists = [e["resource"] for e in entries if e["resource"].get("resourceType") == "List"]
    submission_sets = [
        resource
        for resource in lists
        if any(
            (coding.get("system"), coding.get("code")) == SUBMISSION_SET
            for coding in (resource.get("code") or {}).get("coding") or []
        )
    ]
    if len(submission_sets) != 1:
        raise invalid(_("A Provide Document Bundle needs exactly one SubmissionSet List."))
    references = [e for e in entries if e["resource"].get("resourceType") == "DocumentReference"]
    if not references:
        raise invalid(_("The Bundle has no DocumentReference."))
    for entry in entries:
        kind = entry["resource"].get("resourceType")
        if kind not in {"List", "DocumentReference", "Binary", "Patient"}:
            raise invalid(_("A Provide Document Bundle cannot carry a %(type)s."), {"type": kind})
        if (entry.get("request") or {}).get("method") not in {"POST", "PUT"}:
            raise invalid(_("Each entry of a transaction needs a request (POST)."))
    submissions = []
    for entry in references:
        resource = entry["resource"]
        validate_model(resource, "DocumentReference")
        if resource.get("status") != "current":
            raise invalid(_("A published DocumentReference has the status current."))
        master = bounded_text(
            (resource.get("masterIdentifier") or {}).get("value"), 200, "DocumentReference.masterIdentifier.value"
        )
        if not master:
            raise invalid(_("Each DocumentReference needs a masterIdentifier (its unique id)."))
        patient = resolve_patient(
            resource.get("subject"), entries_by_url=by_url, contained=resource.get("contained") or []
        )
        contents = resource.get("content") or []
        if len(contents) != 1:
            raise invalid(_("Each DocumentReference carries exactly one content."))
        attachment = contents[0].get("attachment") or {}
        if attachment.get("data"):
            raw = _decode(attachment["data"])
        else:
            binary = by_url.get(attachment.get("url") or "")
            if binary is None or binary.get("resourceType") != "Binary" or not binary.get("data"):
                raise invalid(_("The attachment's url must name a Binary of the Bundle, with its data."))
            raw = _decode(binary["data"])
        if len(raw) > max_bytes:
            raise FhirError(413, "too-costly", _("A document is larger than the limit."))
        if attachment.get("size") is not None and attachment["size"] != len(raw):
            raise invalid(_("The attachment's size does not match its content."))
        check_hash(raw, attachment.get("hash"))
        type_codes = [
            c.get("code") for c in (resource.get("type") or {}).get("coding") or [] if c.get("system") == LOINC
        ]
        category = next((DOCUMENT_TYPES[code] for code in type_codes if code in DOCUMENT_TYPES), "other")
        title = bounded_text(
            attachment.get("title")
            or resource.get("description")
            or (resource.get("type") or {}).get("text")
            or next(
                (c.get("display") for c in (resource.get("type") or {}).get("coding") or [] if c.get("display")), ""
            ),
            200,
            "DocumentReference.content.attachment.title",
        )
        if not title:
            raise invalid(_("The document needs a title (attachment.title or description)."))
        period = (resource.get("context") or {}).get("period") or {}
        started, dated = _date(period.get("start")), _date(resource.get("date"))  # both checked
        care_date = started or dated or datetime.date.today()
        submission = DocumentSubmission(
            full_url=entry.get("fullUrl") or "",
            master_identifier=master,
            title=title,
            category=category,
            care_date=care_date,
            declared_type=attachment.get("contentType") or "",
            data=raw,
            identity=identity_of(patient),
            confidential=hidden_from_representatives(resource),
        )
        for relation in resource.get("relatesTo") or []:
            if relation.get("code") != "replaces":
                raise invalid(_("Only the relation replaces is accepted."))
            target = relation.get("target") or {}
            match = re.fullmatch(r"DocumentReference/([0-9]{1,18})", target.get("reference") or "")
            if match:
                submission.replaces_id = int(match.group(1))
            elif (target.get("identifier") or {}).get("value"):
                submission.replaces_identifier = target["identifier"]["value"]
            else:
                raise invalid(_("relatesTo.target must be DocumentReference/<id> or the earlier masterIdentifier."))
        submissions.append(submission)
    if len({s.identity for s in submissions}) != 1:
        raise invalid(_("All the documents of a Bundle are about the same patient."))
    submission_set = submission_sets[0]
    if (
        submission_set.get("subject")
        and identity_of(
            resolve_patient(
                submission_set["subject"], entries_by_url=by_url, contained=submission_set.get("contained") or []
            )
        )
        != submissions[0].identity
    ):
        raise invalid(_("The SubmissionSet is about another patient than its documents: nothing was published."))
    return submissions


def as_provide_bundle(document_reference: dict) -> dict:
    """An ITI-105 DocumentReference as the ITI-65 Bundle it stands for (SubmissionSet
    and the document), so that both go through the same reading and checks."""
    reference_url = f"urn:uuid:{uuid.uuid4()}"
    submission_set = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": SUBMISSION_SET[0], "code": SUBMISSION_SET[1]}]},
        "entry": [{"item": {"reference": reference_url}}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": submission_set,
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": reference_url,
                "resource": document_reference,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
        ],
    }


# --- Lab results ---

RESULT_STATUSES = {"final", "amended", "corrected"}


@dataclasses.dataclass
class LabSubmission:
    identity: Identity
    source_id: str
    status: str
    title: str
    collected_on: datetime.date
    observations: list[dict]
    full_urls: list[str]  # the DiagnosticReport's, then each Observation's, in the order of ``observations``
    confidential: bool = False  # from the representatives (INVISIBLE_REPRESENTANTS_LEGAUX)


def _decimal(quantity: dict | None, what) -> Decimal | None:

    if not quantity or quantity.get("value") is None:
        return None
    try:
        value = Decimal(str(quantity["value"]))
    except InvalidOperation:
        raise invalid(_("%(what)s is not a number."), {"what": what}) from None
    if quantity.get("comparator"):  # « < 5 » kept as 5 would read as measured
        raise invalid(
            _(
                "%(what)s has a comparator (%(comparator)s): Carnet keeps measured values only; send the result "
                "as text in a document."
            ),
            {"what": what, "comparator": str(quantity["comparator"])[:2]},
        )
    if not value.is_finite() or abs(value) >= Decimal(10) ** 8:
        raise invalid(_("%(what)s is out of range."), {"what": what})
    kept = value.quantize(Decimal("0.0001"))
    if kept != value:  # 0.00001 would be kept as 0, 99999999.99999 overflow: never rounded
        raise invalid(
            _("%(what)s has more than 4 decimals: change its unit (ng/L rather than µg/L, say)."), {"what": what}
        )
    return kept


def _ucum(quantity: dict, unit: str) -> str:
    """The UCUM code of a quantity: system http://unitsofmeasure.org, a well-formed code."""
    code = quantity.get("code") or ""
    if quantity.get("system") != UCUM or not ucum_is_well_formed(code):
        raise invalid(
            _("Units are coded in UCUM (system http://unitsofmeasure.org, with a code): %(unit)s."),
            {"unit": unit or code or "-"},
        )
    return code


def _observation_code(code: dict) -> tuple[str, str, str]:
    """(code system, code, name): LOINC when given (and then well-formed with its check
    digit), else the first coding under its own system. The system is "" for LOINC."""
    codings = code.get("coding") or []
    loinc = [coding for coding in codings if coding.get("system") == LOINC]
    coding = loinc[0] if loinc else next((c for c in codings if c.get("system") and c.get("code")), None)
    if coding is None:
        raise invalid(_("Each Observation needs a coded test (a LOINC code, or a code under its own system)."))
    if loinc and not loinc_is_valid(coding.get("code") or ""):
        raise invalid(_("%(code)s is not a valid LOINC code (format or check digit)."), {"code": coding.get("code")})
    name = bounded_text(code.get("text") or coding.get("display") or coding["code"], 120, "Observation.code.text")
    system = "" if loinc else coding["system"][:200]
    if len(coding["code"]) > 16:
        raise invalid(_("A test code is longer than 16 characters."))
    return system, coding["code"], name


def _interpretation(observation: dict) -> str:
    """The laboratory's interpretation of a value (a key of Observation.INTERPRETATIONS:
    N, L, H, LL, HH, A, AA, …), which Carnet shows instead of its own reading of the
    range; "" when it gave none. A code Carnet cannot show is refused, not dropped."""
    codes = [
        coding.get("code") or ""
        for concept in observation.get("interpretation") or []
        for coding in (concept or {}).get("coding") or []
        if coding.get("system") == INTERPRETATION_SYSTEM
    ]
    if not codes:
        return ""
    if codes[0] not in Observation.INTERPRETATIONS:
        raise invalid(
            _("Carnet cannot show the interpretation %(code)s: use N, L, H, LL, HH, A or AA, or none."),
            {"code": codes[0][:10]},
        )
    return codes[0]


@refuses_wrong_types
def lab_submission(data: dict) -> LabSubmission:
    """A lab result Bundle: one DiagnosticReport, its Observations (its ``result``),
    and the Patient. Each value a UCUM quantity; reference ranges kept. The report is
    confidential from the representatives when it or any of its Observations is labelled
    so (Carnet keeps that by report)."""
    entries = transaction_entries(data)
    by_url = {entry.get("fullUrl"): entry["resource"] for entry in entries if entry.get("fullUrl")}
    reports = [e for e in entries if e["resource"].get("resourceType") == "DiagnosticReport"]
    if len(reports) != 1:
        raise invalid(_("A lab result Bundle carries exactly one DiagnosticReport."))
    for entry in entries:
        kind = entry["resource"].get("resourceType")
        if kind not in {"DiagnosticReport", "Observation", "Patient"}:
            raise invalid(_("A lab result Bundle cannot carry a %(type)s."), {"type": kind})
    report = reports[0]["resource"]
    validate_model(report, "DiagnosticReport")
    if report.get("status") not in RESULT_STATUSES:
        raise invalid(_("A published report has the status final, amended or corrected."))
    source_id = bounded_text(
        next((i.get("value") for i in report.get("identifier") or [] if i.get("value")), ""),
        200,
        "DiagnosticReport.identifier.value",
    )
    if not source_id:
        raise invalid(_("The DiagnosticReport needs an identifier (the laboratory's id for it)."))
    identity = identity_of(
        resolve_patient(report.get("subject"), entries_by_url=by_url, contained=report.get("contained") or [])
    )
    effective, period_start = (
        _date(report.get("effectiveDateTime")),
        _date((report.get("effectivePeriod") or {}).get("start")),
    )
    collected_on = effective or period_start
    if collected_on is None:
        raise invalid(_("The DiagnosticReport needs its sample date (effectiveDateTime)."))
    title = bounded_text(
        (report.get("code") or {}).get("text")
        or next((c.get("display") for c in (report.get("code") or {}).get("coding") or [] if c.get("display")), ""),
        200,
        "DiagnosticReport.code.text",
    ) or str(_("Lab results"))
    observations, urls = [], [reports[0].get("fullUrl") or ""]
    results = [(r or {}).get("reference") for r in report.get("result") or []]
    if not results:
        raise invalid(_("The DiagnosticReport has no result."))
    if any(e["resource"].get("resourceType") == "Observation" and e.get("fullUrl") not in results for e in entries):
        raise invalid(
            _("An Observation of the Bundle is not among the DiagnosticReport's results: nothing was published.")
        )
    seen, labelled = set(), hidden_from_representatives(report)
    for url in results:
        resource = by_url.get(url)
        if resource is None or resource.get("resourceType") != "Observation":
            raise invalid(_("Each result of the DiagnosticReport must be an Observation of the Bundle."))
        validate_model(resource, "Observation")
        labelled = hidden_from_representatives(resource) or labelled  # Carnet keeps it by report
        if resource.get("status") not in RESULT_STATUSES:
            raise invalid(_("A published Observation has the status final, amended or corrected."))
        if (
            resource.get("subject")
            and identity_of(
                resolve_patient(resource["subject"], entries_by_url=by_url, contained=resource.get("contained") or [])
            )
            != identity
        ):
            raise invalid(
                _("An Observation is about another patient than its DiagnosticReport: nothing was published.")
            )
        system, code, name = _observation_code(resource.get("code") or {})
        if (system, code) in seen:
            raise invalid(_("A test appears twice in the report: %(code)s."), {"code": code})
        seen.add((system, code))
        quantity = resource.get("valueQuantity")
        if not quantity or quantity.get("value") is None:
            raise invalid(_("Each Observation carries a valueQuantity."))
        unit = _ucum(quantity, quantity.get("unit") or "")
        ranges = resource.get("referenceRange") or [{}]
        low, high = (
            _decimal(ranges[0].get("low"), "referenceRange.low"),
            _decimal(ranges[0].get("high"), "referenceRange.high"),
        )
        for bound in (ranges[0].get("low"), ranges[0].get("high")):
            if bound and bound.get("value") is not None and (bound.get("code") or unit) != unit:
                raise invalid(_("A reference range is in another unit than its value."))
        if low is not None and high is not None and low > high:
            raise invalid(_("The upper limit is below the lower limit."))
        observations.append(
            {
                "code_system": system,
                "loinc": code,
                "name": name,
                "value": _decimal(quantity, "valueQuantity.value"),
                "unit": bounded_text(unit, 32, "Observation.valueQuantity.unit"),
                "low": low,
                "high": high,
                "interpretation": _interpretation(resource),
            }
        )
        urls.append(url)
    return LabSubmission(
        identity=identity,
        source_id=source_id,
        status=report["status"],
        title=title,
        collected_on=collected_on,
        observations=observations,
        full_urls=urls,
        confidential=labelled,
    )


# --- Prescriptions ---

SNOMED = "http://snomed.info/sct"
# SNOMED CT routes (EDQM's are mapped by the sender's software to these, or given as text).
ROUTES = {
    "26643006": "oral",
    "6064005": "topical",
    "78421000": "injection",
    "47625008": "injection",
    "34206005": "injection",
    "18679011000001101": "inhaled",
    "447694001": "inhaled",
}
PERIOD_UNITS = {"h": _("hour"), "d": _("day"), "wk": _("week"), "mo": _("month")}


@dataclasses.dataclass
class PrescriptionSubmission:
    full_url: str
    identity: Identity
    source_id: str
    status: str
    fields: dict
    replaces_source_id: str = ""


def _medication_name(request: dict, by_url: dict) -> str:
    concept = request.get("medicationCodeableConcept")
    if concept is None:
        target = (request.get("medicationReference") or {}).get("reference") or ""
        medication = (
            next((r for r in request.get("contained") or [] if r.get("id") == target[1:]), None)
            if target.startswith("#")
            else by_url.get(target)
        )
        if medication is None or medication.get("resourceType") != "Medication":
            raise invalid(_("The medication must be coded, or a Medication of the Bundle."))
        validate_model(medication, "Medication")
        concept = medication.get("code") or {}
    name = concept.get("text") or next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), "")
    if not name.strip():
        raise invalid(_("The medication needs a name (text or display)."))
    return bounded_text(name, 200, "Medication.code.text")


def _dosage(request: dict) -> tuple[str, str, str]:
    """(dosage, frequency, route) from the first dosageInstruction."""
    dosage = (request.get("dosageInstruction") or [{}])[0]
    dose = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
    amount = f"{dose['value']} {dose.get('unit') or dose.get('code') or ''}".strip() if "value" in dose else ""
    text = (dosage.get("text") or amount).strip()
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = ((dosage.get("timing") or {}).get("code") or {}).get("text") or ""
    if not frequency and repeat.get("frequency") and repeat.get("periodUnit") in PERIOD_UNITS:
        frequency = f"{repeat['frequency']} × / {repeat.get('period', 1)} {PERIOD_UNITS[repeat['periodUnit']]}"
    route_codes = [c.get("code") for c in (dosage.get("route") or {}).get("coding") or [] if c.get("system") == SNOMED]
    route = next((ROUTES[code] for code in route_codes if code in ROUTES), "other" if dosage.get("route") else "oral")
    if not text:
        raise invalid(_("The dosage is needed (dosageInstruction.text or doseQuantity)."))
    text = bounded_text(text, 100, "MedicationRequest.dosageInstruction.text")
    frequency = bounded_text(frequency, 100, "MedicationRequest.dosageInstruction.timing.code.text")
    # A frequency given in the text alone is not repeated as the frequency (the page said it twice).
    return text, frequency, route


@refuses_wrong_types
def prescription_submissions(data: dict) -> list[PrescriptionSubmission]:
    """MedicationRequests (with their Medication and the Patient): status active,
    stopped or completed; ``priorPrescription`` names the one a new one replaces."""
    entries = transaction_entries(data)
    by_url = {entry.get("fullUrl"): entry["resource"] for entry in entries if entry.get("fullUrl")}
    for entry in entries:
        kind = entry["resource"].get("resourceType")
        if kind not in {"MedicationRequest", "Medication", "Patient"}:
            raise invalid(_("A prescription Bundle cannot carry a %(type)s."), {"type": kind})
    submissions = []
    for entry in entries:
        request = entry["resource"]
        if request.get("resourceType") != "MedicationRequest":
            continue
        validate_model(request, "MedicationRequest")
        if request.get("status") not in {"active", "stopped", "completed"}:
            raise invalid(_("A prescription has the status active, stopped or completed."))
        if request.get("intent") not in {"order", "original-order", "plan"}:
            raise invalid(_("A prescription has the intent order."))
        source_id = bounded_text(
            next((i.get("value") for i in request.get("identifier") or [] if i.get("value")), ""),
            200,
            "MedicationRequest.identifier.value",
        )
        if not source_id:
            raise invalid(_("The MedicationRequest needs an identifier (the prescribing software's id)."))
        patient = resolve_patient(
            request.get("subject"), entries_by_url=by_url, contained=request.get("contained") or []
        )
        dispense = request.get("dispenseRequest") or {}
        validity = dispense.get("validityPeriod") or {}
        start, authored = _date(validity.get("start")), _date(request.get("authoredOn"))  # both checked
        start = start or authored
        if start is None:
            raise invalid(_("The prescription needs its start (authoredOn or validityPeriod.start)."))
        end = _date(validity.get("end"))
        if end is not None and end < start:
            raise invalid(_("The prescription ends before it starts."))
        dosage, frequency, route = _dosage(request)
        prior = request.get("priorPrescription") or {}
        replaces = (prior.get("identifier") or {}).get("value") or ""
        if prior and not replaces:
            raise invalid(_("priorPrescription names the earlier prescription by its identifier."))
        submissions.append(
            PrescriptionSubmission(
                full_url=entry.get("fullUrl") or "",
                identity=identity_of(patient),
                source_id=source_id,
                status=request["status"],
                replaces_source_id=replaces,
                fields={
                    "medication": _medication_name(request, by_url),
                    "dosage": dosage,
                    "frequency": frequency,
                    "route": route,
                    "start_date": start,
                    "end_date": end,
                    "renewable": (dispense.get("numberOfRepeatsAllowed") or 0) > 0,
                    "confidential": hidden_from_representatives(request),
                },
            )
        )
    if not submissions:
        raise invalid(_("The Bundle has no MedicationRequest."))
    if len({s.identity for s in submissions}) != 1:
        raise invalid(_("All the prescriptions of a Bundle are about the same patient."))
    return submissions


# --- Out ---


def document_reference(document, *, base: str) -> dict:
    """A published document as a DocumentReference (what ITI-67 finds)."""
    code, display = CATEGORY_TYPES.get(document.category, CATEGORY_TYPES["other"])
    resource = {
        "resourceType": "DocumentReference",
        "id": str(document.pk),
        "meta": {"profile": [PROFILE_DOCUMENT_REFERENCE]},
        "status": document.fhir_status,
        "docStatus": "final" if document.status == "ready" else "preliminary",
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{document.patient_id}"},
        "date": document.created_at.isoformat(),
        "description": document.title,
        "content": [
            {
                "attachment": {
                    "contentType": document.content_type,
                    "size": document.size,
                    "title": document.title,
                    "url": f"{base}/Binary/{document.pk}",
                }
            }
        ],
        "context": {"period": {"start": document.care_date.isoformat()}},
    }
    if document.master_identifier:
        resource["masterIdentifier"] = {"value": document.master_identifier}
    if document.author_team_id:
        resource["custodian"] = {"display": document.author_team.name}
    if document.confidential:
        resource["securityLabel"] = [{"coding": [visibility_label()]}]
    return resource


def patient_resource(patient) -> dict:
    """A patient as a matching search returns it: id, INS, name, birth date."""
    return {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "identifier": [ins_identifier(patient.ins)],
        "name": [{"use": "official", "family": patient.last_name, "given": [patient.first_name]}],
        "birthDate": patient.birth_date.isoformat(),
    }


def searchset(resources: list[dict], *, base: str, self_url: str, next_url: str | None = None) -> dict:
    """A search's answer; with ``next_url``, one page of it (and no total: counting
    every match would cost what paging saves)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    bundle = {"resourceType": "Bundle", "type": "searchset"}
    if next_url is None and "_after" not in self_url:
        bundle["total"] = len(resources)
    return {
        **bundle,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def capability_statement(*, base: str) -> dict:
    """What this server offers: ITI-65 as a transaction, ITI-67/68 for the team's own
    documents; OAuth 2.0 client credentials with SMART v2 system scopes."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "kind": "instance",
        "software": {"name": "Carnet"},
        "implementation": {"description": "Carnet FHIR API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "instantiates": [
            "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient",
            "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder",
        ],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": f"{base}/token"}],
                        }
                    ],
                    "description": "OAuth 2.0 client credentials; scopes system/DocumentReference.c, "
                    "system/DocumentReference.rs, system/Observation.c, system/MedicationRequest.c, "
                    "system/Patient.rs.",
                },
                "resource": [
                    {
                        "type": "DocumentReference",
                        "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                        "documentation": "search-type: ITI-67; create: ITI-105 Simplified Publish "
                        "(the Patient contained, the data inline); ITI-65 is a transaction on the base. "
                        "securityLabel (and meta.security of any published resource) INVISIBLE_REPRESENTANTS_LEGAUX "
                        "(ANS TRE_A07) keeps the item from the patient's representatives; INVISIBLE_PATIENT and "
                        "MASQUE_PS are refused (422).",
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "patient.identifier", "type": "token"},
                            {"name": "status", "type": "token"},
                            {"name": "date", "type": "date"},
                            {
                                "name": "_count",
                                "type": "number",
                                "documentation": "Page size, 1 to 200 (50 by default); then the next link.",
                            },
                        ],
                    },
                    {"type": "Binary", "interaction": [{"code": "read"}]},
                    {
                        "type": "Patient",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "identifier", "type": "token"},
                            {"name": "family", "type": "string"},
                            {"name": "birthdate", "type": "date"},
                        ],
                    },
                    {"type": "List", "interaction": [{"code": "create"}]},
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }

"""FHIR API workflows: API clients (register, rotate, revoke), token checks, rate
limits, the call log, and publishing into records through records' own services
(same checks, same storage, same rules as a form)."""

import datetime
import hashlib
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Application

from fhir_api.models import SCOPES, ApiCall, ApiClient, ApiClientEvent
from fhir_api.resources import FhirError, invalid
from portal import access
from portal.accounts.models import Patient, User, folded_name
from portal.apps import plausible_date
from portal.audit.models import AccessLog
from portal.cache import over_limit
from portal.pagination import older_than
from records import files
from records import services as records
from records.forms import not_before, not_in_future
from records.models import Document

logger = logging.getLogger(__name__)


# --- Clients ---


def register_client(*, team, name: str, scopes: list[str], created_by) -> tuple[ApiClient, str]:
    """A new API client for ``team``, registered by ``created_by`` (support or a
    manager of the team; kept in the client's trail). Returns it with its secret,
    which is shown once: only its hash is kept."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValidationError(_("Choose at least one of the scopes offered."), code="scopes")
    taken = ValidationError(_("This team already has a client by that name."), code="name_taken")
    if ApiClient.objects.filter(team=team, name=name, revoked_at__isnull=True).exists():
        raise taken
    secret = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            client = _create_client(team=team, name=name, scopes=scopes, created_by=created_by, secret=secret)
            ApiClientEvent.objects.create(client=client, actor=created_by, action=ApiClientEvent.Action.REGISTERED)
    except IntegrityError:  # the same form, sent twice at once
        raise taken from None
    return client, secret


def _create_client(*, team, name, scopes, created_by, secret) -> ApiClient:
    user = User.objects.create(
        email=f"api-client-{secrets.token_hex(8)}@clients.carnet.invalid",
        first_name=name[:150],
        role=User.Role.CLINICIAN,
        is_active=False,  # authors what the software publishes; never signs in
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    application = Application.objects.create(
        name=f"{team.name} — {name}"[:255],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    return ApiClient.objects.create(
        team=team, name=name, application=application, user=user, scopes=sorted(scopes), created_by=created_by
    )


def rotate_secret(*, client: ApiClient, by) -> str:
    """A new secret (shown once); the old one and the tokens issued with it stop working.
    ``by`` is kept in the client's trail."""
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=client.application_id)
        application.client_secret = secret
        application.save(update_fields=["client_secret"])
        AccessToken.objects.filter(application=application).delete()
        client.secret_rotated_at = timezone.now()
        client.save(update_fields=["secret_rotated_at"])
        ApiClientEvent.objects.create(client=client, actor=by, action=ApiClientEvent.Action.ROTATED)
    return secret


def revoke_client(*, client: ApiClient, by) -> bool:
    """Revoke for good: no new token, and the live ones stop at once; ``by`` is kept in
    the client's trail. False when already revoked (by a submit at the same time, too)."""
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        if locked.is_revoked:
            return False
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        ApiClientEvent.objects.create(client=client, actor=by, action=ApiClientEvent.Action.REVOKED)
        AccessToken.objects.filter(application_id=client.application_id).delete()
    return True


# --- Each call ---


class Call:
    """What the call log will say about the call being answered."""

    def __init__(self, interaction: str):
        self.interaction = interaction
        self.client: ApiClient | None = None
        self.patient: Patient | None = None
        self.resource = ""


def authenticate(request) -> tuple[ApiClient, set[str]]:
    """The API client behind the request's bearer token, and the token's scopes
    (those the client still holds). 401 without a live token."""
    header = request.headers.get("Authorization", "")
    kind, _space, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise FhirError(
            401, "login", _("An OAuth 2.0 bearer token is required."), headers={"WWW-Authenticate": "Bearer"}
        )
    checksum = hashlib.sha256(token.strip().encode()).hexdigest()
    found = (
        AccessToken.objects.select_related("application__api_client__team", "application__api_client__user")
        .filter(token_checksum=checksum)
        .first()
    )
    client = getattr(found.application, "api_client", None) if found and found.application else None
    if found is None or client is None or found.is_expired() or client.is_revoked:
        raise FhirError(
            401,
            "login",
            _("The access token is unknown, expired or revoked."),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return client, set(found.scope.split()) & set(client.scopes)


def require_scope(scopes: set[str], scope: str) -> None:
    """403 when the token does not carry ``scope``."""
    if scope not in scopes:
        raise FhirError(
            403,
            "forbidden",
            _("The access token does not carry the scope %(scope)s."),
            params={"scope": scope},
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )


def check_rate(*, client: ApiClient) -> None:
    """At most FHIR_RATE_LIMIT_PER_MINUTE calls a minute per client, else 429 with
    Retry-After (the seconds left in the minute)."""
    retry_after = over_limit(f"fhir-rate:{client.pk}", settings.FHIR_RATE_LIMIT_PER_MINUTE)
    if retry_after is not None:
        raise FhirError(
            429,
            "throttled",
            _("Too many requests for this client; try again later."),
            headers={"Retry-After": str(retry_after)},
        )


def token_retry_after(*, client_id: str) -> int | None:
    """The token endpoint's limit, checked before the secret: at most
    FHIR_TOKEN_RATE_LIMIT_PER_MINUTE requests a minute for one client id, so that its
    secret cannot be guessed by trying. The seconds to wait when over, else None."""
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]
    return over_limit(f"fhir-token:{digest}", settings.FHIR_TOKEN_RATE_LIMIT_PER_MINUTE)


def record_call(*, call: Call, status: int, outcome: str = "") -> None:
    """One row of the append-only call log, and the client's last-used time (written
    at most once a minute, so a busy client does not write it on every call)."""
    client = call.client
    ApiCall.objects.create(
        client=client,
        team_id=client.team_id if client else None,
        patient=call.patient,
        interaction=call.interaction,
        resource=call.resource[:120],
        status=status,
        outcome=outcome,
    )
    if client is not None:
        now = timezone.now()
        ApiClient.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - datetime.timedelta(minutes=1)), pk=client.pk
        ).update(last_used_at=now)


# --- Patients ---


def match_patient(*, client: ApiClient, identity) -> Patient:
    """The patient with this INS, birth date and family name (the birth name, which the
    INS identity carries, or the name used), linked to the client's team. An unknown
    patient, another identity and an unlinked team get the same 403: the API does not
    tell whether an INS is in Carnet."""
    candidates = Patient.objects.filter(ins=identity.ins, birth_date=identity.birth_date)
    # « N’Diaye » is N'DIAYE, as everywhere names are matched; a family name of dots or
    # hyphens folds to nothing, and matches no record (not one without a birth name).
    family = folded_name(identity.family)
    patient = next((p for p in candidates if family and family in {p.last_folded, p.birth_folded}), None)
    if patient is None or not access.patients_linked_to(client.team).filter(pk=patient.pk).exists():
        raise FhirError(
            403,
            "forbidden",
            _("No patient with this identity has an active link with your care team."),
        )
    return patient


def find_patient(*, client: ApiClient, params):
    """Patient.rs: the patient with this INS, birth date and family name, when linked
    to the client's team; None otherwise (an empty searchset, whatever the reason)."""
    from fhir_api.resources import identity_of

    system, _bar, value = (params.get("identifier") or "").rpartition("|")
    resource = {
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": params.get("family") or ""}],
        "birthDate": params.get("birthdate") or "",
    }
    try:
        return match_patient(client=client, identity=identity_of(resource))
    except FhirError as error:
        if error.status == 403:
            return None
        raise


# --- Documents ---


# records.files' refusals (their codes), as the API says them.
FILE_REFUSALS = {
    "too_large": (413, "too-costly", _("A document is larger than the limit.")),
    "empty": (400, "invalid", _("A document is empty.")),
    "type": (400, "invalid", _("Only PDF, JPEG, PNG and plain text documents are accepted.")),
}


# An identifier sent again with other content: a conflict, said with what to send instead
# (a retry of the same content is answered as the first sending was).
CONFLICT = {
    "DocumentReference": _(
        "This masterIdentifier was already published with other content. To correct the document, send the new "
        "version with relatesTo (code replaces) naming it, under a new masterIdentifier."
    ),
    "DiagnosticReport": _(
        "This report identifier was already published with other values. To change them, send the report with "
        "status amended or corrected."
    ),
    "MedicationRequest": _(
        "This prescription identifier was already published with other content. To change it, send a new "
        "prescription that replaces it (priorPrescription), under a new identifier."
    ),
}


def check_dates(patient, dates, *, past=True) -> None:
    """The web forms' rules for the dates of what is published, said with the element at
    fault (``dates``: (FHIRPath, date) pairs): between 1900 and 2199, not before the
    patient's birth, and, for what has happened (care, samples), not in the future."""
    rules = [plausible_date, not_before(patient.birth_date)] + ([not_in_future] if past else [])
    for expression, day in dates:
        if day is None:
            continue
        for rule in rules:
            try:
                rule(day)
            except ValidationError as error:
                raise invalid(error.messages[0], expression=expression) from None


def publish_documents(*, client: ApiClient, submissions, call: Call) -> list[tuple[Document, bool]]:
    """Publish an ITI-65 Bundle's documents, all or none. Each goes through
    ``records.services.publish_document``: sniffed type, size, sealing, processing.
    Returns (document, created) in order."""
    for submission in submissions:  # every file checked before anything is written
        try:
            content_type = files.check(submission.data)
        except ValidationError as error:
            raise FhirError(*FILE_REFUSALS.get(error.code, FILE_REFUSALS["type"])) from None
        if submission.declared_type and submission.declared_type.split(";")[0].strip() != content_type:
            raise invalid(_("The content is not of the type given in contentType."))
    patient = match_patient(client=client, identity=submissions[0].identity)
    call.patient = patient
    for submission in submissions:
        check_dates(patient, [("DocumentReference.context.period.start", submission.care_date)])
    published = []
    with transaction.atomic():
        for submission in submissions:
            replaces = None
            if submission.replaces_id or submission.replaces_identifier:
                earlier = access.documents_published_by(client.team).filter(patient=patient)
                if submission.replaces_id:
                    earlier = earlier.filter(pk=submission.replaces_id)
                else:
                    earlier = earlier.filter(master_identifier=submission.replaces_identifier)
                replaces = earlier.select_for_update().first()
                if replaces is None:
                    raise invalid(_("The document to replace is not among your team’s documents for this patient."))
            try:
                document, created = records.publish_document(
                    author=client.user,
                    team=client.team,
                    patient=patient,
                    data=submission.data,
                    title=submission.title,
                    category=submission.category,
                    care_date=submission.care_date,
                    master_identifier=submission.master_identifier,
                    replaces=replaces,
                    confidential=submission.confidential,
                )
            except records.AlreadyCorrected:
                raise invalid(_("The document to replace was already withdrawn or replaced.")) from None
            except ValidationError as error:
                if error.code != "conflict":
                    raise
                raise FhirError(409, "conflict", CONFLICT["DocumentReference"]) from None
            if document.patient_id != patient.pk:
                raise FhirError(409, "conflict", _("This masterIdentifier was already used for another patient."))
            published.append((document, created))
    call.resource = ",".join(f"DocumentReference/{d.pk}" for d, _created in published)
    return published


def publish_lab_results(*, client: ApiClient, submission, call: Call):
    """A DiagnosticReport and its Observations into the patient's results, through
    ``records.services.publish_lab_report`` (idempotent on the report's identifier;
    amended and corrected reports keep the earlier values in history)."""
    patient = match_patient(client=client, identity=submission.identity)
    call.patient = patient
    check_dates(patient, [("DiagnosticReport.effectiveDateTime", submission.collected_on)])
    try:
        report, outcome = records.publish_lab_report(
            author=client.user,
            team=client.team,
            patient=patient,
            source_id=submission.source_id,
            title=submission.title,
            collected_on=submission.collected_on,
            observations=submission.observations,
            status=submission.status,
            confidential=submission.confidential,
        )
    except ValidationError as error:
        if error.code == "unknown_report":
            raise invalid(_("There is no earlier report with this identifier to amend.")) from None
        if error.code == "conflict":
            raise FhirError(409, "conflict", CONFLICT["DiagnosticReport"]) from None
        raise FhirError(409, "conflict", _("This report identifier was already used for another patient.")) from None
    call.resource = f"DiagnosticReport/{report.pk}"
    rows = {(row.code_system, row.loinc): row.pk for row in report.observations.all()}
    return report, outcome, [rows.get((o["code_system"], o["loinc"])) for o in submission.observations]


def publish_prescriptions(*, client: ApiClient, submissions, call: Call) -> list[tuple]:
    """MedicationRequests into the patient's prescriptions, all or none, through
    ``records.services.publish_prescription``."""
    patient = match_patient(client=client, identity=submissions[0].identity)
    call.patient = patient
    for submission in submissions:
        check_dates(
            patient,
            [
                ("MedicationRequest.dispenseRequest.validityPeriod.start", submission.fields.get("start_date")),
                ("MedicationRequest.dispenseRequest.validityPeriod.end", submission.fields.get("end_date")),
            ],
            past=False,
        )
    published = []
    with transaction.atomic():
        for submission in submissions:
            try:
                published.append(
                    records.publish_prescription(
                        prescriber=client.user,
                        team=client.team,
                        patient=patient,
                        source_id=submission.source_id,
                        status=submission.status,
                        replaces_source_id=submission.replaces_source_id,
                        **submission.fields,
                    )
                )
            except ValidationError as error:
                if error.code == "unknown_prescription":
                    raise invalid(_("There is no earlier prescription with this identifier to replace.")) from None
                if error.code == "conflict":
                    raise FhirError(409, "conflict", CONFLICT["MedicationRequest"]) from None
                if error.code == "already_corrected":
                    raise FhirError(
                        409, "conflict", _("The earlier prescription was already stopped or replaced.")
                    ) from None
                raise FhirError(
                    409, "conflict", _("This prescription identifier was already used for another patient.")
                ) from None
    call.resource = ",".join(f"MedicationRequest/{p.pk}" for p, _outcome in published)
    return published


def find_documents(*, client: ApiClient, params) -> tuple[list[Document], int | None]:
    """ITI-67: the client's team's documents, by patient (id or INS), status, date range;
    newest first, ``_count`` a page (at most FHIR_SEARCH_MAX_COUNT), the next page from
    the ``_after`` cursor. Returns the page and the cursor of the next one, if any."""
    documents = access.documents_published_by(client.team).select_related("author_team", "patient")
    patient = params.get("patient") or ""
    identifier = params.get("patient.identifier") or ""
    if not patient and not identifier:
        raise invalid(_("Search by patient or patient.identifier."))
    if patient:
        if not patient.removeprefix("Patient/").isdecimal():
            raise invalid(_("patient must be a Patient id."))
        documents = documents.filter(patient_id=int(patient.removeprefix("Patient/")))
    if identifier:
        system, _bar, value = identifier.rpartition("|")
        if system and system not in ("urn:oid:1.2.250.1.213.1.4.8", "urn:oid:1.2.250.1.213.1.4.10"):
            raise invalid(_("patient.identifier must be an INS."))
        documents = documents.filter(patient__ins=value)
    status = params.get("status")
    if status == "current":
        documents = documents.current()
    elif status == "superseded":
        documents = documents.filter(replaced_by__isnull=False, withdrawn_at__isnull=True)
    elif status == "entered-in-error":  # withdrawn by the team
        documents = documents.filter(withdrawn_at__isnull=False)
    elif status:
        raise invalid(_("status is current, superseded or entered-in-error."))
    for raw in params.getlist("date"):
        prefix, value = (raw[:2], raw[2:]) if raw[:2] in {"ge", "le", "gt", "lt", "eq"} else ("eq", raw)
        try:
            day = datetime.date.fromisoformat(value[:10])
        except ValueError:
            raise invalid(_("A date is not valid.")) from None
        lookup = {"ge": "gte", "le": "lte", "gt": "gt", "lt": "lt", "eq": ""}[prefix]
        documents = documents.filter(**{f"created_at__date__{lookup}" if lookup else "created_at__date": day})
    try:
        count = int(params.get("_count") or settings.FHIR_SEARCH_DEFAULT_COUNT)
    except ValueError:
        raise invalid(_("_count must be a whole number.")) from None
    if not 1 <= count <= settings.FHIR_SEARCH_MAX_COUNT:
        raise invalid(_("_count must be between 1 and %(max)s."), params={"max": settings.FHIR_SEARCH_MAX_COUNT})
    found = older_than(documents, params.get("_after") or "", field="created_at", size=count)
    if found is None:
        raise invalid(_("_after must be the cursor given in the link to the next page."))
    return found


def get_document(*, client: ApiClient, pk) -> Document:
    """One of the client's team's documents; 404 for any other, as for none."""
    try:
        return access.documents_published_by(client.team).select_related("author_team", "patient").get(pk=int(pk))
    except (Document.DoesNotExist, ValueError):
        raise FhirError(404, "not-found", _("No such document among your team’s documents.")) from None


def trace_document_read(*, client: ApiClient, document: Document, action) -> None:
    """A read through the API shows in the patient's access history, as the team's software."""
    trace_patient_read(client=client, patient=document.patient, action=action, target=document.title)


def trace_patient_read(*, client: ApiClient, patient, action, target: str = "") -> None:
    """What the team's software read of ``patient``, in their access history."""
    access.trace_read(client.user, patient, action, target, team=client.team, role=AccessLog.SOFTWARE)


def trace_search(*, client: ApiClient, documents) -> None:
    """A search through the API shows once in each patient's access history (not once
    per document found)."""
    for patient in {document.patient_id: document.patient for document in documents}.values():
        access.trace_read(
            client.user, patient, AccessLog.Action.LIST_DOCUMENTS, team=client.team, role=AccessLog.SOFTWARE
        )

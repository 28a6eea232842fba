"""The FHIR R4 endpoints. Not session views: no cookie, no CSRF, no second-factor
page (the middleware lets the ``fhir`` namespace through); a bearer token from the
client credentials grant, checked on every call, is the only way in. Each call is
written to the API call log, refusals included."""

import base64
import logging
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import TokenView

from fhir_api import resources, services
from fhir_api.resources import FhirError, fhir_response
from portal.audit.models import AccessLog
from records import services as records

logger = logging.getLogger(__name__)
ACCEPTED_TYPES = {"application/fhir+json", "application/json"}


def _base(request) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


def api_view(interaction: str, methods=("GET",)):
    """A FHIR endpoint: token first, then the rate limit, then the view; a FhirError
    becomes its OperationOutcome; every call ends in the call log."""

    def decorator(view):
        @csrf_exempt
        @transaction.non_atomic_requests
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            call = services.Call(interaction)
            outcome = ""
            try:
                if request.method not in methods:
                    raise FhirError(405, "not-supported", _("This method is not supported here."))
                call.client, scopes = services.authenticate(request)
                services.check_rate(client=call.client)
                _refuse_nul(request)
                response = view(request, call, scopes, *args, **kwargs)
            except FhirError as error:
                response, outcome = error.response(), error.code
            except Exception:
                # Logged without the request (it carries health data); the caller gets an
                # OperationOutcome and the call log a 500, as for any other answer.
                logger.exception("FHIR %s failed", interaction)
                response = FhirError(500, "exception", _("An unexpected error stopped the request.")).response()
                outcome = "exception"
            services.record_call(call=call, status=response.status_code, outcome=outcome)
            return response

        wrapped.fhir_api = True
        if "POST" in methods:
            # Bundles carry documents: the request-size middleware lets them through
            # up to the API's own limit, and refuses larger ones as an OperationOutcome.
            wrapped.upload_limit_setting = "FHIR_MAX_BODY_BYTES"
            wrapped.refuse_body = _refuse_body
        return wrapped

    return decorator


def _refuse_nul(request) -> None:
    """A search parameter with a NUL character (which no FHIR string allows) is a 400."""
    sources = [request.GET]
    if request.content_type == "application/x-www-form-urlencoded":  # a search by POST
        sources.append(request.POST)
    for params in sources:
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                raise FhirError(400, "invalid", _("A search parameter contains a NUL character."))


def _refuse_body(status: int, limit: int | None) -> HttpResponse:
    """The request-size middleware's refusal, for a FHIR client: an OperationOutcome."""
    if status == 411:
        return FhirError(411, "too-costly", _("Send the body with its Content-Length.")).response()
    return FhirError(413, "too-costly", _("The request is larger than the limit.")).response()


def _read_body(request) -> dict:
    """The request's FHIR JSON: 415 for another type, 413 over the size limit, 400
    when it does not parse. Read from the stream: the body may be larger than
    Django's in-memory limit for forms."""
    if request.content_type not in ACCEPTED_TYPES:
        raise FhirError(415, "not-supported", _("Send FHIR JSON (Content-Type: application/fhir+json)."))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.FHIR_MAX_BODY_BYTES:
        raise FhirError(413, "too-costly", _("The request is larger than the limit."))
    body = request.read(settings.FHIR_MAX_BODY_BYTES + 1)
    if len(body) > settings.FHIR_MAX_BODY_BYTES:
        raise FhirError(413, "too-costly", _("The request is larger than the limit."))
    return resources.parse_json(body)


@api_view("transaction", methods=("POST",))
def transaction_bundle(request, call, scopes):
    """POST to the base: a transaction Bundle. ITI-65 (documents) is read from it."""
    data = _read_body(request)
    entries = data.get("entry") if isinstance(data.get("entry"), list) else []
    kinds = {
        e["resource"].get("resourceType")
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    }
    if "DocumentReference" in kinds:
        call.interaction = "ITI-65"
        services.require_scope(scopes, "system/DocumentReference.c")
        submissions = resources.document_submissions(data, max_bytes=settings.DOCUMENT_MAX_BYTES)
        published = services.publish_documents(client=call.client, submissions=submissions, call=call)
        return fhir_response(_document_response(data, published, base=_base(request)))
    if "DiagnosticReport" in kinds:
        call.interaction = "lab results"
        services.require_scope(scopes, "system/Observation.c")
        submission = resources.lab_submission(data)
        report, outcome, observation_ids = services.publish_lab_results(
            client=call.client, submission=submission, call=call
        )
        status = {"created": "201 Created", "updated": "200 OK", "unchanged": "200 OK"}[outcome]
        locations = {submission.full_urls[0]: f"DiagnosticReport/{report.pk}"}
        locations.update(
            {url: f"Observation/{pk}" for url, pk in zip(submission.full_urls[1:], observation_ids, strict=True)}
        )
        return fhir_response(_transaction_response(data, locations, status))
    if "MedicationRequest" in kinds:
        call.interaction = "prescriptions"
        services.require_scope(scopes, "system/MedicationRequest.c")
        submissions = resources.prescription_submissions(data)
        published = services.publish_prescriptions(client=call.client, submissions=submissions, call=call)
        created = any(outcome == "created" for _p, outcome in published)
        locations = {s.full_url: f"MedicationRequest/{p.pk}" for s, (p, _o) in zip(submissions, published, strict=True)}
        return fhir_response(_transaction_response(data, locations, "201 Created" if created else "200 OK"))
    raise resources.invalid(_("This Bundle carries nothing this server accepts."))


def _transaction_response(data, locations: dict, status: str) -> dict:
    entries = []
    for entry in data["entry"]:
        location = locations.get(entry.get("fullUrl"))
        entries.append({"response": {"status": status, "location": location} if location else {"status": "200 OK"}})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _document_response(data, published, *, base) -> dict:
    """The transaction-response: one entry per entry sent, in order."""
    by_url = {}
    binaries = {}
    for (document, created), entry in zip(
        published, [e for e in data["entry"] if e["resource"].get("resourceType") == "DocumentReference"], strict=True
    ):
        status = "201 Created" if created else "200 OK"
        by_url[entry.get("fullUrl")] = {"status": status, "location": f"DocumentReference/{document.pk}"}
        if document.status != "ready":
            by_url[entry.get("fullUrl")]["outcome"] = resources.operation_outcome(
                "informational",
                _(
                    "Received; the document is being processed. Read DocumentReference/%(id)s: "
                    "its docStatus becomes final when it is ready."
                ),
                params={"id": document.pk},
                severity="information",
            )
        url = (entry["resource"].get("content") or [{}])[0].get("attachment", {}).get("url")
        if url:
            binaries[url] = {"status": status, "location": f"Binary/{document.pk}"}
    entries = []
    for entry in data["entry"]:
        url = entry.get("fullUrl")
        response = by_url.get(url) or binaries.get(url) or {"status": "200 OK"}
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


@api_view("search DocumentReference", methods=("GET", "POST"))
def document_references(request, call, scopes):
    """ITI-67 Find Document References (GET): the team's own documents. ITI-105
    Simplified Publish (POST): one DocumentReference, its data inline."""
    if request.method == "POST":
        return _simplified_publish(request, call, scopes)
    return _find_documents(request, call, scopes, params=request.GET)


@api_view("search DocumentReference", methods=("POST",))
def document_reference_search(request, call, scopes):
    """FHIR's search by POST (``DocumentReference/_search``, the parameters form-encoded in
    the body): the same search, with the patient's INS out of the URL, and so out of every
    proxy's and server's request log."""
    return _find_documents(request, call, scopes, params=request.POST)


def _find_documents(request, call, scopes, *, params):
    services.require_scope(scopes, "system/DocumentReference.rs")
    documents, after = services.find_documents(client=call.client, params=params)
    base = _base(request)
    services.trace_search(client=call.client, documents=documents)
    call.patient = documents[0].patient if len({d.patient_id for d in documents}) == 1 else None
    next_url = None
    if after is not None:
        following = params.copy()
        following["_after"] = str(after)
        if "patient.identifier" in following:
            # The next page is a GET: the patient by their id in Carnet, as in every FHIR
            # resource's URL, never by their INS (one INS is one patient: the page's).
            del following["patient.identifier"]
            following["patient"] = f"Patient/{documents[0].patient_id}"
        next_url = f"{base}/DocumentReference?{following.urlencode()}"
    return fhir_response(
        resources.searchset(
            [resources.document_reference(d, base=base) for d in documents],
            base=base,
            self_url=request.build_absolute_uri(),
            next_url=next_url,
        )
    )


def _simplified_publish(request, call, scopes):
    """ITI-105: the DocumentReference (Patient contained, attachment.data inline) goes
    the way of an ITI-65 Bundle of one document, with the same checks."""
    call.interaction = "ITI-105"
    services.require_scope(scopes, "system/DocumentReference.c")
    data = _read_body(request)
    if data.get("resourceType") != "DocumentReference":
        raise resources.invalid(_("ITI-105 takes one DocumentReference."))
    submissions = resources.document_submissions(
        resources.as_provide_bundle(data), max_bytes=settings.DOCUMENT_MAX_BYTES
    )
    [(document, created)] = services.publish_documents(client=call.client, submissions=submissions, call=call)
    return fhir_response(
        resources.document_reference(document, base=_base(request)),
        status=201 if created else 200,
        headers={"Location": f"{_base(request)}/DocumentReference/{document.pk}"},
    )


@api_view("read DocumentReference")
def document_reference(request, call, scopes, pk):
    services.require_scope(scopes, "system/DocumentReference.rs")
    document = services.get_document(client=call.client, pk=pk)
    call.patient, call.resource = document.patient, f"DocumentReference/{document.pk}"
    services.trace_document_read(client=call.client, document=document, action=AccessLog.Action.VIEW_DOCUMENT)
    return fhir_response(resources.document_reference(document, base=_base(request)))


@api_view("ITI-68")
def binary(request, call, scopes, pk):
    """ITI-68 Retrieve Document: the bytes, verified against their hash."""
    services.require_scope(scopes, "system/DocumentReference.rs")
    document = services.get_document(client=call.client, pk=pk)
    call.patient, call.resource = document.patient, f"Binary/{document.pk}"
    try:
        data = records.read_document(document=document)
    except records.FileWithdrawn:  # its DocumentReference says entered-in-error
        raise FhirError(410, "deleted", _("This document was withdrawn: its file is served to no one.")) from None
    services.trace_document_read(client=call.client, document=document, action=AccessLog.Action.DOWNLOAD_DOCUMENT)
    response = HttpResponse(data, content_type=document.content_type)
    response["Content-Disposition"] = f'attachment; filename="document-{document.pk}.{document.extension}"'
    response["Cache-Control"] = "no-store"
    return response


@api_view("search Patient")
def patients(request, call, scopes):
    """Patient matching by INS, birth date and family name (all three required)."""
    return _match_patient(request, call, scopes, params=request.GET)


@api_view("search Patient", methods=("POST",))
def patient_search(request, call, scopes):
    """The same matching by POST (``Patient/_search``, form-encoded): the identity out of the URL."""
    return _match_patient(request, call, scopes, params=request.POST)


def _match_patient(request, call, scopes, *, params):
    services.require_scope(scopes, "system/Patient.rs")
    patient = services.find_patient(client=call.client, params=params)
    call.patient = patient
    if patient is not None:  # the person reads in their history which software found them
        services.trace_patient_read(client=call.client, patient=patient, action=AccessLog.Action.IDENTITY_SEARCH)
    base = _base(request)
    found = [resources.patient_resource(patient)] if patient else []
    return fhir_response(resources.searchset(found, base=base, self_url=request.build_absolute_uri()))


@csrf_exempt
def metadata(request):
    """The CapabilityStatement: what this server does, for anyone to read."""
    return fhir_response(resources.capability_statement(base=_base(request)))


_token_view = TokenView.as_view()


def _client_id_of(request) -> str:
    """The client id a token request names: in its Basic credentials or its form."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        try:
            return base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.POST.get("client_id", "")


@csrf_exempt
def token(request):
    """The client credentials grant (django-oauth-toolkit), behind a rate limit per
    client id: 429 with Retry-After, in OAuth's error format."""
    if request.method == "POST":
        retry_after = services.token_retry_after(client_id=_client_id_of(request))
        if retry_after is not None:
            answer = {"error": "slow_down", "error_description": "Too many token requests; try again later."}
            response = JsonResponse(answer, status=429)
            response["Retry-After"] = str(retry_after)
            response["Cache-Control"] = "no-store"
            return response
    return _token_view(request)


@csrf_exempt
def not_found(request, path=""):
    """Any other address under /fhir: FHIR's own 404, an OperationOutcome, not a web page."""
    return FhirError(404, "not-found", _("There is no such resource or interaction here.")).response()

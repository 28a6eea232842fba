import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal import access
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, ClinicianBlock
from records import files, services
from records.forms import DocumentFilterForm, DocumentUploadForm

PAGE_SIZE = 25
FILTERS_SESSION_KEY = "document_filters"


def _bound(request):
    return request.POST if request.method == "POST" else None


def _saved_filters(request):
    """Filters live in the session, not in the URL: titles and categories are health data."""
    return request.session.get(FILTERS_SESSION_KEY, {})


@access.role_required(User.Role.PATIENT)
def documents(request):
    """The patient's documents, filtered and paginated."""
    patient = access.get_own_patient(request.user)
    teams = CareTeam.objects.filter(care_links__patient=patient).order_by("name")
    if request.method == "POST":
        if "reset" in request.POST:
            request.session.pop(FILTERS_SESSION_KEY, None)
            return redirect("records:documents")
        form = DocumentFilterForm(request.POST, teams=teams)
        if form.is_valid():
            data = form.cleaned_data
            request.session[FILTERS_SESSION_KEY] = {
                "category": data["category"],
                "date_from": data["date_from"].isoformat() if data["date_from"] else "",
                "date_to": data["date_to"].isoformat() if data["date_to"] else "",
                "team": data["team"].pk if data["team"] else "",
                "title": data["title"],
            }
            return redirect("records:documents")
    else:
        form = DocumentFilterForm(initial=_saved_filters(request), teams=teams)
    saved = _saved_filters(request)
    documents = (
        access.documents_visible_to(request.user)
        .filter(patient=patient)
        .filtered(
            category=saved.get("category", ""),
            date_from=datetime.date.fromisoformat(saved["date_from"]) if saved.get("date_from") else None,
            date_to=datetime.date.fromisoformat(saved["date_to"]) if saved.get("date_to") else None,
            team=saved.get("team") or None,
            title=saved.get("title", ""),
        )
        .select_related("author_team")
    )
    page = Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "records/documents.html", {"page": page, "form": form, "filtering": bool(saved)})


@access.role_required(User.Role.PATIENT)
def upload(request):
    patient = access.get_own_patient(request.user)
    return _upload(request, patient=patient, team=None, back="records:documents")


@access.role_required(User.Role.CLINICIAN)
def clinician_upload(request, patient_pk):
    """A clinician publishes a document for a patient of their team."""
    patient = access.get_cared_patient(request.user, patient_pk)
    team = (
        access.teams_of(request.user)
        .filter(care_links__patient=patient, care_links__status=CareLink.Status.ACTIVE)
        .first()
    )
    return _upload(request, patient=patient, team=team, back="careteams:patient_detail")


def _upload(request, *, patient, team, back):
    form = DocumentUploadForm(_bound(request), request.FILES if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            document = services.upload_document(
                author=request.user,
                patient=patient,
                upload=data["file"],
                title=data["title"],
                category=data["category"],
                care_date=data["care_date"],
                team=team,
            )
        except ValidationError as error:
            form.add_error("file", error)
        else:
            messages.success(request, _("The document has been added. It is being processed."))
            return redirect("records:document", document.pk)
    back_url_args = [patient.pk] if back == "careteams:patient_detail" else []
    return render(
        request, "records/upload.html", {"form": form, "patient": patient, "back": back, "back_args": back_url_args}
    )


def _trace(request, document, action):
    access.trace_read(request.user, document.patient, action, document.title)


@login_required
def document(request, pk):
    document = access.get_document_for(request.user, pk)
    _trace(request, document, AccessLog.Action.VIEW_DOCUMENT)
    return render(request, "records/document.html", {"document": document})


@require_GET
@login_required
def download(request, pk):
    """The original file, verified against its hash; never served when altered."""
    document = access.get_document_for(request.user, pk)
    try:
        data = services.read_document(document=document)
    except files.IntegrityError:
        return render(request, "records/integrity_error.html", {"document": document}, status=409)
    _trace(request, document, AccessLog.Action.DOWNLOAD_DOCUMENT)
    response = HttpResponse(data, content_type=document.content_type)
    response["Content-Disposition"] = f'attachment; filename="carnet-document-{document.pk}.{document.extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store, private"
    return response


@require_GET
@login_required
def preview(request, pk):
    """The first-page image of a PDF, or the image itself, for the document page."""
    document = access.get_document_for(request.user, pk)
    try:
        if document.preview_name:
            data, content_type = services.read_preview(document=document), "image/png"
        elif document.content_type in {"image/jpeg", "image/png"}:
            data, content_type = services.read_document(document=document), document.content_type
        else:
            raise Http404
    except files.IntegrityError:
        raise Http404 from None
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "no-store, private"
    return response


@require_POST
@access.role_required(User.Role.PATIENT)
def set_hidden(request, pk):
    document = access.get_document_for(request.user, pk)
    hidden = request.POST.get("hidden") == "1"
    services.set_document_hidden(document=document, hidden=hidden)
    if hidden:
        messages.success(request, _("This document is now hidden from professionals, except the team that added it."))
    else:
        messages.success(request, _("This document is visible again to your care teams."))
    return redirect("records:document", document.pk)


@require_POST
@access.role_required(User.Role.PATIENT)
def delete(request, pk):
    document = access.get_document_for(request.user, pk)
    if not (document.uploaded_by_patient and document.author_id == request.user.pk):
        messages.error(request, _("You can only delete the documents you added yourself."))
        return redirect("records:document", document.pk)
    services.delete_document(document=document)
    messages.success(request, _("The document has been deleted."))
    return redirect("records:documents")


@access.role_required(User.Role.PATIENT)
def care_teams(request):
    """The patient's care teams, with the means to block a team or one clinician."""
    patient = access.get_own_patient(request.user)
    links = patient.care_links.select_related("team").prefetch_related("team__members").order_by("team__name")
    blocked = set(ClinicianBlock.objects.filter(patient=patient).values_list("clinician_id", flat=True))
    return render(request, "records/care_teams.html", {"links": links, "blocked": blocked})


@require_POST
@access.role_required(User.Role.PATIENT)
def block_team(request, link_pk):
    patient = access.get_own_patient(request.user)
    link = get_object_or_404(CareLink, pk=link_pk, patient=patient)
    blocked = request.POST.get("blocked") == "1"
    services.set_team_blocked(patient=patient, link=link, blocked=blocked)
    if blocked:
        messages.success(request, _("%(team)s no longer has access to your record.") % {"team": link.team.name})
    else:
        messages.success(request, _("%(team)s has access to your record again.") % {"team": link.team.name})
    return redirect("records:care_teams")


@require_POST
@access.role_required(User.Role.PATIENT)
def block_clinician(request, user_pk):
    patient = access.get_own_patient(request.user)
    # Only clinicians of the patient's own care teams can be named here.
    clinician = get_object_or_404(
        User, pk=user_pk, role=User.Role.CLINICIAN, memberships__team__care_links__patient=patient
    )
    blocked = request.POST.get("blocked") == "1"
    services.set_clinician_blocked(patient=patient, clinician=clinician, blocked=blocked)
    name = clinician.get_full_name()
    if blocked:
        messages.success(request, _("%(name)s no longer has access to your record.") % {"name": name})
    else:
        messages.success(request, _("%(name)s has access to your record again.") % {"name": name})
    return redirect("records:care_teams")


@access.role_required(User.Role.PATIENT)
def access_history(request):
    """Every read of the patient's record by someone else, newest first."""
    patient = access.get_own_patient(request.user)
    logs = AccessLog.objects.filter(patient=patient).select_related("actor", "team")
    page = Paginator(logs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "records/access_history.html", {"page": page})

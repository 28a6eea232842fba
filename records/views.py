import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from portal import access, widgets
from portal.accounts.models import User
from portal.audit import services as audit
from portal.audit.models import AccessLog, AccessReport
from portal.careteams.models import CareLink, CareTeam, ClinicianBlock
from portal.idempotency import idempotent
from portal.middleware import allows_upload
from portal.pagination import KeysetPage, Rows, keyset_page
from portal.prepared import prepared
from portal.redirects import back_or
from portal.templatetags.french import elide
from portal.union import union_all
from records import charts, display, files, services
from records.forms import (
    PROFILE_FORMS,
    AccessReportForm,
    CorrectObservationForm,
    DocumentFilterForm,
    DocumentUploadForm,
    LabReportForm,
    ObservationFormSet,
    PrescriptionForm,
    ProfileCommentForm,
    ReplaceDocumentForm,
    ReplacePrescriptionForm,
    StopPrescriptionForm,
    WithdrawForm,
)
from records.models import (
    Allergy,
    Condition,
    Document,
    LabReport,
    Measurement,
    News,
    Observation,
    ObservationRevision,
    Prescription,
    ProfileComment,
    RecordEvent,
    Vaccination,
)

PAGE_SIZE = 25
RESULTS_PAGE_SIZE = 10
HISTORY_PAGE_SIZE = 50
CHART_POINTS = 100
FILTERS_SESSION_KEY = "document_filters"
FILTER_FIELDS = "records/document_filter_fields.html"


def _bound(request):
    return request.POST if request.method == "POST" else None


def _saved_filters(request):
    """Filters live in the session, not in the URL: titles and categories are health data."""
    return request.session.get(FILTERS_SESSION_KEY, {})


def _documents_with_news(patient_id, *, rows):
    """The record's current documents (``rows``: access.rows_shape's), each with whether
    it is news (``is_new``): the whole list is read in the index's order, a page's rows at
    a time, and whether each is news is read with it (a filtered list may be sorted after
    the filter, and would look for news of every matching row: a query of its own then).
    A builder of prepared queries (``portal.prepared``)."""
    unseen = News.objects.unseen().filter(document=OuterRef("pk"), patient=patient_id)
    documents = access.rows_of_shape(patient_id, rows).current().select_related("author_team")
    return documents.annotate(is_new=Exists(unseen))


@prepared  # asked at every visit of the documents (the filter's choices)
def _record_teams(patient_id):
    """(pk, name) of the care teams linked to the record, in any state, by name."""
    return CareTeam.objects.filter(care_links__patient=patient_id).order_by("name").values_list("pk", "name")


@access.role_required(User.Role.PATIENT)
@idempotent
def documents(request):
    """The documents of the record one is in, filtered and paginated."""
    record = access.record_for(request, access.DOCUMENTS)
    patient = record.patient
    teams = _record_teams(patient.pk)
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
                "team": data["team"] or "",
                "title": data["title"],
            }
            return redirect("records:documents")
    saved = _saved_filters(request)
    # The filters' fields: refused (as sent, with the errors) or chosen, written anew; none
    # chosen, written once per set of the record's teams (portal.widgets.empty_form_html).
    if request.method == "POST":
        filters_html = render_to_string(FILTER_FIELDS, {"form": form})
    elif saved:
        form = DocumentFilterForm(initial=saved, teams=teams)
        filters_html = render_to_string(FILTER_FIELDS, {"form": form})
    else:
        form, filters_html = None, widgets.empty_form_html(FILTER_FIELDS, DocumentFilterForm, teams=tuple(teams))
    if saved:
        documents = (
            access.rows_in_record(record, Document)
            .current()
            .filtered(
                category=saved.get("category", ""),
                date_from=datetime.date.fromisoformat(saved["date_from"]) if saved.get("date_from") else None,
                date_to=datetime.date.fromisoformat(saved["date_to"]) if saved.get("date_to") else None,
                team=saved.get("team") or None,
                title=saved.get("title", ""),
            )
            .select_related("author_team")
        )
    else:
        documents = Rows.of(_documents_with_news, patient.pk, rows=access.rows_shape(record, Document))
    page = keyset_page(documents, request.GET, field="care_date", size=PAGE_SIZE)
    display.prepare_documents(page.object_list, reader=request.user)
    if saved:
        new = services.unseen_news_ids(patient=patient, field="document_id", items=page.object_list)
    else:
        new = {document.pk for document in page.object_list if document.is_new}
    table_html = display.document_table_html(page.object_list, new=new, user=request.user)
    context = {
        "page": page,
        "form": form,
        "filters_html": filters_html,
        "filtering": bool(saved),
        "table_html": table_html,
    }
    return access.render_record(
        request, "records/documents.html", context, patient=patient, action=AccessLog.Action.LIST_DOCUMENTS
    )


@allows_upload("DOCUMENT_MAX_BYTES")
@access.role_required(User.Role.PATIENT)
@idempotent
def upload(request):
    patient = access.record_for(request, access.DOCUMENTS).patient
    return _upload(request, patient=patient, team=None, back="records:documents")


@allows_upload("DOCUMENT_MAX_BYTES")
@access.role_required(User.Role.CLINICIAN)
@idempotent
def clinician_upload(request, patient_pk):
    """A clinician publishes a document for a patient of their team."""
    patient = access.get_cared_patient(request.user, patient_pk)
    team = access.team_caring_for(request.user, patient)
    return _upload(request, patient=patient, team=team, back="careteams:patient_documents")


def _upload(request, *, patient, team, back):
    form = DocumentUploadForm(
        _bound(request),
        request.FILES if request.method == "POST" else None,
        by_care_team=team is not None,
        born=patient.birth_date,
    )
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
                confidential=data.get("confidential", False),
            )
        except ValidationError as error:
            form.add_error("file", error)
        else:
            messages.success(request, _("The document has been added. It is being processed."))
            return redirect("records:document", document.pk)
    back_url_args = [patient.pk] if back == "careteams:patient_documents" else []
    context = {"form": form, "patient": patient, "back": back, "back_args": back_url_args}
    return access.render_record(
        request, "records/upload.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


def _render_document(request, template, document, status=200, **context):
    return access.render_record(
        request, template, {"document": document, **context}, status=status,
        patient=document.patient, action=AccessLog.Action.VIEW_DOCUMENT, target=document.title,
    )  # fmt: skip


@login_required
@require_safe
def document(request, pk):
    """A document, and what became of it: withdrawn (by whom, when, why), replaced by a
    corrected version, or replacing an earlier one (each a link the reader may follow)."""
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.DOCUMENTS)
    services.mark_news_seen(user=request.user, patient=document.patient, documents=[document])
    visible = access.documents_visible_to(request.user)
    context = {
        "replacement": visible.filter(pk=document.replaced_by_id).first() if document.replaced_by_id else None,
        "earlier": list(visible.filter(replaced_by=document).only("pk", "title", "created_at")),
        "can_correct": document.is_correctable
        and access.items_correctable_by(request.user, Document).filter(pk=document.pk).exists(),
        "deletable": _deletable(request, document),
    }
    if document.withdrawn_at:
        context["withdrawn_by"] = User.objects.filter(pk=document.withdrawn_by_id).first()
    return _render_document(request, "records/document.html", document, **context)


# How long the document page waits for processing by itself (htmx polls every few
# seconds): then it stops asking, and the page says to reload it later.
PROCESSING_WAIT = datetime.timedelta(minutes=10)


@require_GET
@login_required
def document_status(request, pk):
    """Asked by the page of a document being processed (a background request, not
    activity): 204 while it is, nothing of the record and not logged; once it is
    ready, an empty answer telling htmx to reload the page, whose read is logged as
    any other. After ``PROCESSING_WAIT``, 286: htmx stops asking."""
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.DOCUMENTS)
    if document.status != Document.Status.PROCESSING:
        return HttpResponse(headers={"HX-Refresh": "true"})
    if timezone.now() - document.created_at > PROCESSING_WAIT:
        return HttpResponse(status=286)
    return HttpResponse(status=204)


@require_GET
@login_required
def download(request, pk):
    """The original file, verified against its hash; never served when altered."""
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.DOCUMENTS)
    try:
        data = services.read_document(document=document)
    except files.IntegrityError:
        return _render_document(request, "records/integrity_error.html", document, status=409)
    except services.FileWithdrawn:
        raise Http404 from None
    return access.send_record_file(
        request, patient=document.patient, action=AccessLog.Action.DOWNLOAD_DOCUMENT, target=document.title,
        data=data, content_type=document.content_type,
        filename=f"carnet-document-{document.pk}.{document.extension}",
    )  # fmt: skip


@require_GET
@login_required
def preview(request, pk):
    """The preview image drawn at processing (a PDF's first page, an image without its
    metadata), for the document page. Never the original: a photo's EXIF stays in it."""
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.DOCUMENTS)
    if not document.preview_name:
        raise Http404
    try:
        data = services.read_preview(document=document)
    except (files.IntegrityError, services.FileWithdrawn):
        raise Http404 from None
    return access.send_record_file(
        request, patient=document.patient, action=AccessLog.Action.PREVIEW_DOCUMENT, target=document.title,
        data=data, content_type=document.preview_content_type,
    )  # fmt: skip


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def set_hidden(request, pk):
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.MANAGE)
    hidden = request.POST.get("hidden") == "1"
    services.set_document_hidden(document=document, hidden=hidden)
    if hidden:
        messages.success(request, _("This document is now hidden from professionals, except the team that added it."))
    elif access.current_record(request).is_own:
        messages.success(request, _("This document is visible again to your care teams."))
    else:
        messages.success(request, _("This document is visible again to the care teams."))
    return redirect("records:document", document.pk)


def _deletable(request, document) -> bool:
    """Whether the patient-side reader may delete ``document``: one added on the patient's
    side (never a care team's), by the reader, or in their own record (a trusted helper's
    upload included: it is their record)."""
    if not (request.user.is_patient and document.uploaded_by_patient):
        return False
    return document.author_id == request.user.pk or access.current_record(request).is_own


def _confirm_delete(request, *, what, back):
    """The page that asks before deleting: nothing can bring it back."""
    return render(request, "records/confirm_delete.html", {"what": what, "back": back})


@require_http_methods(["GET", "POST"])
@access.role_required(User.Role.PATIENT)
@idempotent
def delete(request, pk):
    """GET asks for confirmation; POST deletes."""
    document = access.get_document_for(request.user, pk)
    access.check_in_record(request, document.patient, access.DOCUMENTS)
    if not _deletable(request, document):
        messages.error(request, _("You can only delete the documents you added yourself."))
        return redirect("records:document", document.pk)
    if request.method == "GET":
        return _confirm_delete(request, what=document.title, back=reverse("records:document", args=[document.pk]))
    services.delete_document(document=document)
    messages.success(request, _("The document has been deleted."))
    return redirect("records:documents")


@access.role_required(User.Role.PATIENT)
@require_safe
def care_teams(request):
    """The record's care teams, with the means to block a team or one clinician."""
    patient = access.record_for(request, access.MANAGE).patient
    links = patient.care_links.select_related("team").prefetch_related("team__members").order_by("team__name")
    blocked = set(ClinicianBlock.objects.filter(patient=patient).values_list("clinician_id", flat=True))
    # Active links whose every professional is blocked: nobody there reads a message.
    writable = set(access.teams_patient_can_write_to(patient).values_list("pk", flat=True))
    context = {"links": links, "blocked": blocked, "writable_teams": writable}
    return access.render_record(
        request, "records/care_teams.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def block_team(request, link_pk):
    record = access.record_for(request, access.MANAGE)
    patient = record.patient
    link = get_object_or_404(CareLink, pk=link_pk, patient=patient)
    blocked = request.POST.get("blocked") == "1"
    services.set_team_blocked(patient=patient, link=link, blocked=blocked)
    messages.success(request, _access_changed(record, link.team.name, blocked))
    return redirect("records:care_teams")


def _access_changed(record, name, blocked) -> str:
    """What blocking or unblocking ``name`` (a team, a professional) did, said to the
    patient of their record or to whoever acts for it of that record."""
    if record.is_own:
        text = (
            _("%(name)s no longer has access to your record.")
            if blocked
            else _("%(name)s has access to your record again.")
        )
    else:
        text = (
            _("%(name)s no longer has access to the record.")
            if blocked
            else _("%(name)s has access to the record again.")
        )
    return text % {"name": name}


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def block_clinician(request, user_pk):
    record = access.record_for(request, access.MANAGE)
    patient = record.patient
    # Only clinicians of the patient's own care teams can be named here.
    clinician = get_object_or_404(
        User, pk=user_pk, role=User.Role.CLINICIAN, memberships__team__care_links__patient=patient
    )
    blocked = request.POST.get("blocked") == "1"
    services.set_clinician_blocked(patient=patient, clinician=clinician, blocked=blocked)
    messages.success(request, _access_changed(record, clinician.get_full_name(), blocked))
    if blocked:
        readable = access.teams_patient_can_write_to(patient)
        for team in CareTeam.objects.filter(care_links__patient=patient, care_links__status=CareLink.Status.ACTIVE,
                                            memberships__user=clinician).exclude(pk__in=readable):  # fmt: skip
            messages.warning(
                request,
                (
                    _(
                        "Nobody at “%(team)s” can read your messages or see your appointments with them now: you "
                        "have blocked all its professionals."
                    )
                    if record.is_own
                    else _(
                        "Nobody at “%(team)s” can read a message from this record or see its appointments with them "
                        "now: all its professionals are blocked."
                    )
                )
                % {"team": team.name},
            )
    return redirect("records:care_teams")


@access.role_required(User.Role.PATIENT)
@require_safe
def access_history(request):
    """Every read of the patient's record by someone else, newest first: for the
    record's holder only."""
    record = access.record_for(request, access.HISTORY)
    patient = record.patient
    # (a duplicate merged into this record keeps its access history: shown here)
    logs = access.rows_in_record(record, AccessLog).select_related("actor", "team", "report")
    page = keyset_page(logs, request.GET, field="at", size=PAGE_SIZE)
    reports = access.rows_in_record(record, AccessReport).select_related("access_log__actor", "access_log__team")
    context = {
        "patient": patient,
        "page": page,
        "visits": _visits(page.object_list),
        "reports": reports[:REPORTS_SHOWN],
        "report_form": AccessReportForm(),
    }
    return render(request, "records/access_history.html", context)


REPORTS_SHOWN = 20


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def report_access(request, pk):
    """ "I don't recognise this" on one line of the access history: a case for support
    (a second press, or a second tab, opens no second case)."""
    patient = access.record_for(request, access.HISTORY).patient
    log = access.get_own_access_log(request.user, pk)
    if log.actor_id == request.user.pk:  # one's own export, say: nothing to report
        return redirect("records:access_history")
    form = AccessReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The comment can be 200 characters at most."))
        return redirect("records:access_history")
    report, opened = audit.report_access(patient=patient, access_log=log, comment=form.cleaned_data["comment"])
    if opened:
        messages.success(
            request,
            _("Thank you. Support will look into it (case #%(number)s); their answer will appear here.")
            % {"number": report.pk},
        )
    else:
        messages.info(request, _("You have already reported this access (case #%(number)s).") % {"number": report.pk})
    return redirect("records:access_history")


REPEAT_WINDOW = datetime.timedelta(minutes=15)


# Reads of a list (the team inbox, the team agenda) log one row per item shown: a run of
# them is one line, whatever the items, which it names.
LISTINGS = {AccessLog.Action.LIST_CONVERSATIONS, AccessLog.Action.LIST_AGENDA}
TARGETS_NAMED = 3


def _visits(logs):
    """One line for a run of the same read by the same person (a page reloaded, a
    record browsed back and forth, a team inbox listing several conversations): the
    newest, how many times, since when, and for a listing the items it showed (``targets``,
    the first TARGETS_NAMED, ``more``: how many others). Every read stays in the log;
    only the display is grouped."""
    visits = []
    for log in logs:  # newest first
        last = visits[-1] if visits else None
        listing = log.action in LISTINGS
        same = last and (last["log"].actor_id, last["log"].team_id, last["log"].action) == (
            log.actor_id, log.team_id, log.action
        ) and (listing or last["log"].target == log.target)  # fmt: skip
        if same and last["since"] - log.at <= REPEAT_WINDOW:
            last["count"] += 1
            last["since"] = log.at
            if listing and log.target not in last["seen"]:
                last["seen"].add(log.target)
                if len(last["targets"]) < TARGETS_NAMED:
                    last["targets"].append(log.target)
                else:
                    last["more"] += 1
        else:
            visits.append({"log": log, "count": 1, "since": log.at, "targets": [log.target], "seen": {log.target},
                           "more": 0})  # fmt: skip
    return visits


# --- Prescriptions -------------------------------------------------------------------


@access.role_required(User.Role.PATIENT)
@require_safe
def prescriptions(request):
    """The prescriptions in force, with renewal requests for renewable ones; those still
    to begin, soonest first; then the others (ended, stopped, replaced), newest first, a
    page at a time from a cursor: the 100th page costs what the first does."""
    record = access.record_for(request, access.PRESCRIPTIONS)
    patient = record.patient
    rows = access.rows_in_record(record, Prescription).select_related("team", "prescriber", "replaced_by")
    today = timezone.localdate()
    in_force, upcoming = rows.in_force(today), rows.current(today).filter(start_date__gt=today)
    active = display.prepare_prescriptions(in_force.order_by("-start_date", "-pk"))
    coming = display.prepare_prescriptions(upcoming.order_by("start_date", "pk"))
    others = rows.exclude(pk__in=in_force.values("pk")).exclude(pk__in=upcoming.values("pk"))
    past = keyset_page(others, request.GET, field="start_date", size=PAGE_SIZE)
    past.object_list = display.prepare_prescriptions(past.object_list)
    shown = active + coming + past.object_list
    # Shown here is opened: marked new this once.
    new = services.unseen_news_ids(patient=patient, field="prescription_id", items=shown)
    services.mark_news_seen(user=request.user, patient=patient, prescriptions=[p for p in shown if p.pk in new])
    # A renewal is asked of a team someone there can read (not every professional blocked).
    writable = set(access.teams_patient_can_write_to(patient).values_list("pk", flat=True)) if active else set()
    context = {"active": active, "upcoming": coming, "past": past, "new": new, "writable_teams": writable}
    return access.render_record(
        request, "records/prescriptions.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def request_renewal(request, pk):
    prescription = access.get_item_for(request.user, Prescription, pk)
    access.check_in_record(request, prescription.patient, access.PRESCRIPTIONS)
    access.check_in_record(request, prescription.patient, access.MESSAGES)
    if not access.patient_can_write_to(prescription.patient, prescription.team_id):
        messages.error(
            request,
            _(
                "Nobody at %(team)s can read a renewal request now: its link is not active, or its "
                "professionals are blocked (see the care teams page)."
            )
            % {"team": prescription.team},
        )
        return redirect("records:prescriptions")
    try:
        conversation, created = services.request_renewal(user=request.user, prescription=prescription)
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("records:prescriptions")
    if created:
        messages.success(request, _("Your renewal request has been sent to %(team)s.") % {"team": prescription.team})
    else:
        messages.info(request, _("A renewal request for this prescription is already open."))
    return redirect("messaging:conversation", conversation.pk)


@access.role_required(User.Role.CLINICIAN)
@idempotent
def add_prescription(request, patient_pk):
    patient = access.get_cared_patient(request.user, patient_pk)
    form = PrescriptionForm(_bound(request), born=patient.birth_date)
    if request.method == "POST" and form.is_valid():
        prescription = form.save(commit=False)
        prescription.patient, prescription.prescriber = patient, request.user
        prescription.team = access.team_caring_for(request.user, patient)
        services.add_prescription(prescription=prescription)
        messages.success(request, _("The prescription has been added."))
        return redirect(_record_page_url(Prescription, patient.pk))
    context = {"form": form, "patient": patient, "title": _("New prescription")}
    context["back_url"] = _record_page_url(Prescription, patient.pk)
    return access.render_record(
        request, "records/item_form.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


# --- Lab results ---------------------------------------------------------------------


def _reports_with_news(patient_id, *, rows):
    """The record's lab reports (``rows``: access.rows_shape's), each with whether it is
    news to the patient (``is_new``), read with it: a builder of prepared queries."""
    unseen = News.objects.unseen().filter(lab_report=OuterRef("pk"), patient=patient_id)
    return access.rows_of_shape(patient_id, rows).select_related("team").annotate(is_new=Exists(unseen))


@access.role_required(User.Role.PATIENT)
@require_safe
def results(request):
    """Lab reports, newest first, each with its values, units, ranges and flags."""
    record = access.record_for(request, access.RESULTS)
    patient = record.patient
    reports = Rows.of(_reports_with_news, patient.pk, rows=access.rows_shape(record, LabReport))
    # From a cursor, newest first: the 300th page costs what the first does (no OFFSET, no COUNT).
    page = keyset_page(reports, request.GET, field="collected_on", size=RESULTS_PAGE_SIZE)
    # The page's values in one query, as a prefetch would read them (in the model's
    # order); each report's table rows written from them.
    by_report = services.observations_by_report(report.pk for report in page.object_list)
    # Shown here is opened: marked new this once.
    new = {report.pk for report in page.object_list if report.is_new}
    write = display.report_writer(request, new=new)
    for report in page.object_list:
        report.html = write(report, by_report[report.pk], level=2)
    if new:
        services.mark_news_seen(
            user=request.user, patient=patient, lab_reports=[r for r in page.object_list if r.pk in new]
        )
    return access.render_record(
        request, "records/results.html", {"page": page, "new": new},
        patient=patient, action=AccessLog.Action.VIEW_RESULTS,
    )  # fmt: skip


@prepared
def _row_in_record(patient_id, pk, *, rows):
    return access.rows_of_shape(patient_id, rows).filter(pk=pk)


def _item_and_its_patients_rows(request, model, part, pk):
    """The row ``pk`` of ``model``, and a function giving the rows of ``model`` of the same
    patient that the reader may see (a queryset, built only when asked: a test's first
    page is read by a prepared query), for a page about one item and its kin (a test's
    values, a measurement's kind). A patient-side reader gets those of the record they are
    in, as the lists read them (the policy's rows narrowed to that record): an item outside
    it, or in a part (``part``) they may not act on, is a 404, as get_item_for and
    check_in_record make it. A care team gets ``get_item_for`` and the policy's rows
    narrowed to the item's patient."""
    if request.user.is_patient:
        record = access.record_for(request, part)
        rows = access.rows_shape(record, model)
        try:
            found = _row_in_record(record.patient.pk, pk, rows=rows)
        except (ValueError, TypeError):
            raise Http404 from None
        if not found:
            raise Http404
        item = found[0]
        item.patient = record.patient  # the row's own (it is filtered by it)
        return item, lambda: access.rows_of_shape(record.patient.pk, rows)
    item = access.get_item_for(request.user, model, pk)
    return item, lambda: access.items_visible_to(request.user, model).filter(patient=item.patient)


# What a test's history reads of each value: its chart and its table (records.display's
# history_rows_html), as named tuples rather than observations.
HISTORY_FIELDS = ("pk", "collected_on", "value", "unit", "low", "high", "interpretation", "revised")


def _with_revised(values):
    """Each value's ``HISTORY_FIELDS``, with whether it was corrected (``revised``), newest first."""
    revised = Exists(ObservationRevision.objects.filter(observation=OuterRef("pk")))
    return values.annotate(revised=revised).order_by("-collected_on", "-pk").values_list(*HISTORY_FIELDS, named=True)


@prepared
def _test_history(patient_id, loinc, *, rows, size):
    return _with_revised(access.rows_of_shape(patient_id, rows).filter(loinc=loinc))[:size]


@login_required
@require_safe
def observation_history(request, pk):
    """Every value of one test (same LOINC code) for the patient, as a trend chart
    and an accessible table."""
    observation, visible = _item_and_its_patients_rows(request, Observation, access.RESULTS, pk)
    # The chart shows the latest values; the table pages through all of them from a
    # cursor, newest first: both from the index on the value's own sample date
    # (observation_history), a page at a time. The first page is among the chart's
    # values: one query reads both.
    if request.GET.get("older") or request.GET.get("newer"):
        history = _with_revised(visible().filter(loinc=observation.loinc))
        latest = list(history.values_list("collected_on", "value")[:CHART_POINTS])
        page = keyset_page(history, request.GET, field="collected_on", size=HISTORY_PAGE_SIZE)
    else:
        size = max(CHART_POINTS, HISTORY_PAGE_SIZE + 1)
        if request.user.is_patient:  # in the record one is in: what most visits ask, prepared
            shape = access.rows_shape(access.current_record(request), Observation)
            rows = _test_history(observation.patient.pk, observation.loinc, rows=shape, size=size)
        else:
            rows = list(_with_revised(visible().filter(loinc=observation.loinc))[:size])
        latest = [(row.collected_on, row.value) for row in rows[:CHART_POINTS]]
        more = len(rows) > HISTORY_PAGE_SIZE
        page = KeysetPage(rows[:HISTORY_PAGE_SIZE], rows[HISTORY_PAGE_SIZE - 1].pk if more else None, None)
    chart = charts.trend(latest[::-1], low=observation.low, high=observation.high)
    # The earlier values of the corrected ones only (most have none): one query, if any.
    revisions = {}
    corrected = [row.pk for row in page.object_list if row.revised]
    if corrected:
        for revision in ObservationRevision.objects.filter(observation__in=corrected):
            revisions.setdefault(revision.observation_id, []).append(revision)
    rows_html = display.history_rows_html(page.object_list, [revisions.get(row.pk, ()) for row in page.object_list])
    context = {"observation": observation, "page": page, "chart": chart, "rows_html": rows_html}
    return access.render_record(
        request, "records/observation_history.html", context,
        patient=observation.patient, action=AccessLog.Action.VIEW_RESULTS, target=observation.name,
    )  # fmt: skip


@allows_upload("DOCUMENT_MAX_BYTES")  # a CSV over its own limit gets the form's message up to this
@access.role_required(User.Role.CLINICIAN)
@idempotent
def add_lab_report(request, patient_pk):
    """A lab report with its observations, from the form rows or a CSV file."""
    patient = access.get_cared_patient(request.user, patient_pk)
    form = LabReportForm(_bound(request), request.FILES if request.method == "POST" else None, born=patient.birth_date)
    formset = ObservationFormSet(_bound(request), prefix="obs")
    if request.method == "POST" and form.is_valid():
        observations = None
        if form.cleaned_data["csv_file"]:
            try:
                observations = services.parse_observations_csv(
                    form.cleaned_data["csv_file"].read(settings.LAB_CSV_MAX_BYTES + 1)
                )
            except ValidationError as error:
                form.add_error("csv_file", error)
        elif formset.is_valid():
            observations = [row for row in formset.cleaned_data if row]
            if not observations:
                form.add_error(None, _("Add at least one result."))
        if observations:
            services.add_lab_report(
                author=request.user,
                team=access.team_caring_for(request.user, patient),
                patient=patient,
                title=form.cleaned_data["title"],
                collected_on=form.cleaned_data["collected_on"],
                observations=observations,
                confidential=form.cleaned_data["confidential"],
            )
            messages.success(request, _("The lab report has been added."))
            return redirect(_record_page_url(LabReport, patient.pk))
    context = {"form": form, "formset": formset, "patient": patient}
    return access.render_record(
        request, "records/lab_report_form.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


# --- Medical profile -----------------------------------------------------------------

PROFILE_MODELS = {"allergy": Allergy, "condition": Condition, "vaccination": Vaccination, "measurement": Measurement}


def profile_for(user, patient):
    """The medical profile sections of ``patient`` as ``user`` may see them; each entry
    with the patient's comments on it (``comment_list``), read in one query for all."""

    def entries(model):
        return access.list_items_of_patient(user, patient, model, related=("team", "author"))

    sections = {"allergies": entries(Allergy), "conditions": entries(Condition), "vaccinations": entries(Vaccination)}
    measurements = _latest_measurements(user, patient)
    _attach_comments({"allergy": sections["allergies"], "condition": sections["conditions"],
                      "vaccination": sections["vaccinations"], "measurement": measurements})  # fmt: skip
    return {**sections, "measurements": _measurement_trends(measurements)}


# The profile shows each kind's latest measurements; the measurement's history page, all.
MEASUREMENTS_SHOWN = 20


def _latest_of_each_kind(visible, size) -> list[QuerySet]:
    return [
        visible.filter(kind=kind).order_by("-measured_on", "-pk").values_list("pk", "measured_on")[:size]
        for kind in Measurement.Kind.values
    ]


@prepared  # a care team's summary of a record, at every visit
def _latest_measurement_ids(patient_id, user_id, *, size):
    first, *rest = _latest_of_each_kind(access.cared_patients_rows(patient_id, user_id, model=Measurement), size)
    return first.union(*rest, all=True)


def _latest_measurements(user, patient) -> list:
    """Of each kind, the latest ``MEASUREMENTS_SHOWN`` of what ``user`` may see of
    ``patient``'s measurements and one more (to know there are more), oldest first: one
    index range per kind, whatever the length of the history; their ids in one query (one
    per kind where the database takes no limit on a part of a UNION: portal.union;
    prepared on a care team's page), then the rows."""
    visible = access.items_of_patient(user, patient, Measurement).select_related("team", "author")
    size = MEASUREMENTS_SHOWN + 1
    if access.checked_for(user, patient) and connections[visible.db].features.supports_slicing_ordering_in_compound:
        latest = [pk for pk, _day in _latest_measurement_ids(patient.pk, user.pk, size=size)]
    else:
        latest = [pk for pk, _day in union_all(*_latest_of_each_kind(visible, size))]
    return list(visible.filter(pk__in=latest).order_by("measured_on", "pk")) if latest else []


def _attach_comments(entries_by_field):
    """Set ``comment_list`` on each entry (by ProfileComment's field naming its kind): the
    comments on them, oldest first, in one query (none when there is no entry)."""
    named = Q()
    for field, entries in entries_by_field.items():
        for entry in entries:
            entry.comment_list = []
        if entries:
            named |= Q(**{f"{field}__in": [entry.pk for entry in entries]})
    if not named:
        return
    by_key = {(field, entry.pk): entry for field, entries in entries_by_field.items() for entry in entries}
    for comment in ProfileComment.objects.filter(named):
        for field in entries_by_field:
            entry = by_key.get((field, getattr(comment, f"{field}_id")))
            if entry is not None:
                entry.comment_list.append(comment)


def _measurement_trends(measurements):
    """Per kind: its latest values (``MEASUREMENTS_SHOWN``) and their trend chart, from
    ``measurements`` oldest first; ``history_url``, the page of every value, when there
    are more."""
    by_kind = {}
    for measurement in measurements:
        by_kind.setdefault(measurement.kind, []).append(measurement)
    trends = []
    for kind, label in Measurement.Kind.choices:
        rows = by_kind.get(kind)
        if rows:
            more, rows = len(rows) > MEASUREMENTS_SHOWN, rows[-MEASUREMENTS_SHOWN:]
            chart = charts.trend([(m.measured_on, m.value) for m in rows])
            history_url = reverse("records:measurement_history", args=[rows[-1].pk]) if more else ""
            trends.append(
                {"kind": kind, "label": label, "rows": rows[::-1], "chart": chart, "history_url": history_url}
            )
    return trends


@login_required
@require_safe
def measurement_history(request, pk):
    """Every measurement of one kind (that of measurement ``pk``) in the patient's profile:
    a trend chart of the latest and the values newest first, a page at a time from a
    cursor; for the patient-side reader of the record and for its care teams."""
    measurement, visible = _item_and_its_patients_rows(request, Measurement, access.PROFILE, pk)
    same_kind = visible().filter(kind=measurement.kind).select_related("team", "author")
    latest = list(same_kind.order_by("-measured_on", "-pk").values_list("measured_on", "value")[:CHART_POINTS])
    page = keyset_page(same_kind, request.GET, field="measured_on", size=HISTORY_PAGE_SIZE)
    label = measurement.get_kind_display()
    context = {
        "measurement": measurement, "label": label, "page": page, "chart": charts.trend(latest[::-1]),
        "correctable_teams": access.correctable_teams(request.user, measurement.patient),
    }  # fmt: skip
    return access.render_record(
        request, "records/measurement_history.html", context,
        patient=measurement.patient, action=AccessLog.Action.VIEW_RECORD, target=str(label),
    )  # fmt: skip


@access.role_required(User.Role.PATIENT)
@require_safe
def profile(request):
    patient = access.record_for(request, access.PROFILE).patient
    forms = {kind: form_class(prefix=kind, born=patient.birth_date) for kind, form_class in PROFILE_FORMS.items()}
    return access.render_record(
        request, "records/profile.html", {**profile_for(request.user, patient), "forms": forms},
        patient=patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def add_profile_entry(request, kind):
    if kind not in PROFILE_FORMS:
        raise Http404
    patient = access.record_for(request, access.PROFILE).patient
    form = PROFILE_FORMS[kind](request.POST, prefix=kind, born=patient.birth_date)
    if form.is_valid():
        entry = form.save(commit=False)
        entry.patient, entry.author = patient, request.user
        entry.save()
        messages.success(request, _("Saved in your medical profile."))
        return redirect("records:profile")
    born = patient.birth_date
    forms = {k: form if k == kind else form_class(prefix=k, born=born) for k, form_class in PROFILE_FORMS.items()}
    context = {**profile_for(request.user, patient), "forms": forms}
    return access.render_record(
        request, "records/profile.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


@require_http_methods(["GET", "POST"])
@access.role_required(User.Role.PATIENT)
@idempotent
def delete_profile_entry(request, kind, pk):
    """GET asks for confirmation; POST removes the entry."""
    if kind not in PROFILE_MODELS:
        raise Http404
    entry = access.get_item_for(request.user, PROFILE_MODELS[kind], pk)
    access.check_in_record(request, entry.patient, access.PROFILE)
    if not (entry.by_patient and entry.author_id == request.user.pk):
        messages.error(request, _("This entry was written by a professional: only they can change it."))
    elif request.method == "GET":
        return _confirm_delete(request, what=entry.describe(), back=reverse("records:profile"))
    else:
        entry.delete()
        messages.success(request, _("Removed from your medical profile."))
    return redirect("records:profile")


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def withdraw_profile_entry(request, kind, pk):
    """Withdraw an entry of the medical profile the clinician's team wrote (entered in
    error): it leaves the profile; the history keeps it, with who, when and why."""
    if kind not in PROFILE_MODELS:
        raise Http404
    entry = access.get_correctable_for(request.user, PROFILE_MODELS[kind], pk)
    team = entry.team
    return _correction(
        request, item=entry, team=team, form=WithdrawForm(_bound(request)),
        title=_("Withdraw from the medical profile: %(entry)s") % {"entry": entry.describe()},
        correct=lambda data: services.withdraw_profile_entry(
            actor=request.user, team=team, entry=entry, reason=data["reason"]
        ),
        done=_("Withdrawn from the medical profile. The patient reads why in the record's history."),
        stale=_("This entry was already withdrawn."),
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def clinician_add_profile_entry(request, patient_pk, kind):
    """A clinician writes an allergy, a condition, a vaccination or a measurement into
    a patient's profile, in their team's name: shown with author and team, read-only to
    the patient (who may comment on it), and an event of the record's history."""
    if kind not in PROFILE_FORMS:
        raise Http404
    patient = access.get_cared_patient(request.user, patient_pk)
    form = PROFILE_FORMS[kind](_bound(request), by_care_team=True, born=patient.birth_date)
    if request.method == "POST" and form.is_valid():
        entry = form.save(commit=False)
        entry.patient = patient
        services.add_profile_entry(entry=entry, author=request.user, team=access.team_caring_for(request.user, patient))
        messages.success(request, _("Saved in the patient's medical profile."))
        return redirect(_record_page_url(PROFILE_MODELS[kind], patient.pk))
    title = _("Add to the medical profile: %(section)s") % {"section": PROFILE_HEADINGS[kind]}
    context = {"form": form, "patient": patient, "title": title}
    context["back_url"] = _record_page_url(PROFILE_MODELS[kind], patient.pk)
    return access.render_record(
        request, "records/item_form.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


PROFILE_HEADINGS = {
    "allergy": _lazy("Allergy"),
    "condition": _lazy("Condition"),
    "vaccination": _lazy("Vaccination"),
    "measurement": _lazy("Measurement"),
}


@access.role_required(User.Role.PATIENT)
@require_http_methods(["GET", "POST"])
@idempotent
def comment_profile_entry(request, kind, pk):
    """The patient comments on an entry a professional wrote ("this allergy is wrong"):
    they cannot change or remove it; their care teams read the comment."""
    if kind not in PROFILE_MODELS:
        raise Http404
    record = access.record_for(request, access.PROFILE)
    patient = record.patient
    entry = access.get_item_for(request.user, PROFILE_MODELS[kind], pk)
    access.check_in_record(request, entry.patient, access.PROFILE)
    if entry.by_patient:  # their own entries they change or remove themselves
        raise Http404
    form = ProfileCommentForm(_bound(request))
    if request.method == "POST" and form.is_valid():
        services.comment_profile_entry(author=request.user, entry=entry, body=form.cleaned_data["body"])
        if record.is_own:
            messages.success(request, _("Your comment has been saved. Your care teams will read it."))
        else:
            messages.success(request, _("Your comment has been saved. The care teams will read it."))
        return redirect("records:profile")
    context = {"form": form, "entry": entry, "comments": entry.comments.all(), "patient": patient}
    return access.render_record(
        request, "records/profile_comment.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


# --- Corrections by the care team that published the item ------------------------------

# The page of a patient's record where the care team finds an item of each kind (the
# summary for the medical profile's entries).
RECORD_PAGES = {
    Document: "careteams:patient_documents",
    Prescription: "careteams:patient_prescriptions",
    LabReport: "careteams:patient_results",
    Observation: "careteams:patient_results",
}


def _record_page_url(model, patient_id) -> str:
    """The page of a patient's record (for their care team) that lists items of ``model``."""
    return reverse(RECORD_PAGES.get(model, "careteams:patient_detail"), args=[patient_id])


def _to_record_page(item):
    """Back to the page of the patient's record (for their care team) that lists ``item``."""
    return redirect(_record_page_url(type(item), item.patient_id))


def _correction(request, *, item, team, form, title, correct, done, stale, error_field=None):
    """One correction of an item of a record by the care team that published it
    (``access.get_correctable_for`` found it): the form, then ``correct(cleaned_data)``
    (a service going through ``services._correct_item``; a ValidationError it raises
    goes to the form's ``error_field``). An item already corrected, or corrected
    meanwhile by a colleague or a second tab, is said (``stale``), not changed."""
    patient = item.patient
    if not getattr(item, "is_correctable", True):
        messages.info(request, stale)
        return _to_record_page(item)
    if request.method == "POST" and form.is_valid():
        try:
            correct(form.cleaned_data)
        except services.AlreadyCorrected:
            messages.info(request, stale)
        except ValidationError as error:
            form.add_error(error_field, error)
        else:
            messages.success(request, done)
            return _to_record_page(item)
        if not form.errors:
            return _to_record_page(item)
    target = item.describe() if hasattr(item, "describe") else str(item)  # a profile entry in words, not codes
    context = {"form": form, "patient": patient, "title": title, "item": item, "team": team}
    context["back_url"] = _record_page_url(type(item), patient.pk)
    return access.render_record(
        request, "records/item_form.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD, target=target
    )


PRESCRIPTION_STALE = _lazy("This prescription is no longer current.")
DOCUMENT_STALE = _lazy("This document was already withdrawn or replaced.")


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def stop_prescription(request, pk):
    """Stop a prescription from a date, with a reason the patient reads."""
    prescription = access.get_correctable_for(request.user, Prescription, pk)
    team = prescription.team
    return _correction(
        request, item=prescription, team=team,
        form=StopPrescriptionForm(_bound(request), prescription=prescription),
        title=_("Stop %(medication)s") % {"medication": prescription.medication},
        correct=lambda data: services.stop_prescription(
            actor=request.user, team=team, prescription=prescription,
            stopped_on=data["stopped_on"], reason=data["reason"],
        ),
        done=_("The prescription has been stopped."), stale=PRESCRIPTION_STALE,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def replace_prescription(request, pk):
    """Write a new version of a prescription; the old one stays, shown as replaced."""
    prescription = access.get_correctable_for(request.user, Prescription, pk)
    team = prescription.team
    fields = ["medication", "dosage", "frequency", "route", "start_date", "end_date", "renewable", "confidential"]
    initial = {name: getattr(prescription, name) for name in fields} | {"start_date": timezone.localdate()}
    form = ReplacePrescriptionForm(_bound(request), initial=initial, born=prescription.patient.birth_date)
    return _correction(
        request, item=prescription, team=team, form=form,
        title=elide(_("New version of %(medication)s") % {"medication": prescription.medication}),
        correct=lambda data: services.replace_prescription(
            actor=request.user, team=team, prescription=prescription, new=form.save(commit=False),
            reason=data["reason"],
        ),
        done=_("The new version of the prescription has been saved."), stale=PRESCRIPTION_STALE,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def withdraw_document(request, pk):
    """Withdraw a document the clinician's team published: it leaves the patient's
    lists; the history keeps it, with who, when and why."""
    document = access.get_correctable_for(request.user, Document, pk)
    team = document.author_team
    return _correction(
        request, item=document, team=team, form=WithdrawForm(_bound(request)),
        title=_("Withdraw %(title)s") % {"title": document.title},
        correct=lambda data: services.withdraw_document(
            actor=request.user, team=team, document=document, reason=data["reason"]
        ),
        done=_("The document has been withdrawn. The patient is told."), stale=DOCUMENT_STALE,
    )  # fmt: skip


@allows_upload("DOCUMENT_MAX_BYTES")
@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def replace_document(request, pk):
    """Publish a corrected version of a document the clinician's team published."""
    document = access.get_correctable_for(request.user, Document, pk)
    team = document.author_team
    initial = {"title": document.title, "category": document.category, "care_date": document.care_date,
               "confidential": document.confidential}  # fmt: skip
    form = ReplaceDocumentForm(
        _bound(request),
        request.FILES if request.method == "POST" else None,
        initial=initial,
        by_care_team=True,
        born=document.patient.birth_date,
    )

    def correct(data):
        content, content_type = files.read_upload(data["file"])
        return services.replace_document(
            actor=request.user, team=team, document=document, data=content, content_type=content_type,
            title=data["title"], category=data["category"], care_date=data["care_date"], reason=data["reason"],
            confidential=data["confidential"],
        )  # fmt: skip

    return _correction(
        request, item=document, team=team, form=form, correct=correct, error_field="file",
        title=elide(_("Corrected version of %(title)s") % {"title": document.title}),
        done=_("The corrected version has been published. The patient is told."), stale=DOCUMENT_STALE,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def correct_observation(request, pk):
    """Correct a lab value the clinician's team published, with a reason: it shows as
    corrected, and the earlier value stays in the test's history."""
    observation = access.get_correctable_for(request.user, Observation, pk)
    team = observation.report.team
    return _correction(
        request, item=observation, team=team,
        form=CorrectObservationForm(_bound(request), observation=observation),
        title=_("Correct %(test)s (%(value)s %(unit)s)") % {
            "test": observation.name, "value": number_format(observation.value.normalize()), "unit": observation.unit
        },
        correct=lambda data: services.correct_observation(
            actor=request.user, team=team, observation=observation, value=data["value"], reason=data["reason"]
        ),
        done=_("The value has been corrected. The patient is told."), stale="",
    )  # fmt: skip


@access.role_required(User.Role.PATIENT)
@require_safe
def record_history(request):
    """Every correction of the patient's record by a care team, newest first."""
    record = access.record_for(request, access.MANAGE)
    patient = record.patient
    # A duplicate merged into one's own record keeps its history (append-only), shown here;
    # a representative sees what the policy lets them (never about a confidential item).
    events = access.rows_in_record(record, RecordEvent)
    page = keyset_page(events.select_related("actor", "team"), request.GET, field="at", size=PAGE_SIZE)
    return access.render_record(
        request, "records/record_history.html", {"page": page}, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


CONFIDENTIAL_MODELS = {"document": Document, "prescription": Prescription, "lab_report": LabReport, **PROFILE_MODELS}


@require_POST
@access.role_required(User.Role.CLINICIAN)
@idempotent
def set_confidential(request, kind, pk):
    """The care team that published an item marks it confidential from the patient's
    representatives (a minor's secret care), or lifts it; representatives never see a
    confidential item. Another team caring for the patient may read the item, not
    decide this for it (404, as for a correction)."""
    if kind not in CONFIDENTIAL_MODELS:
        raise Http404
    item = access.get_correctable_for(request.user, CONFIDENTIAL_MODELS[kind], pk)
    confidential = request.POST.get("confidential") == "1"
    services.set_confidential(item=item, confidential=confidential)
    if confidential:
        messages.success(request, _("Marked confidential: the representatives no longer see it."))
    else:
        messages.success(request, _("No longer confidential: the representatives see it."))
    # Back to the page the form was on, at the same place in its list.
    return back_or(request, request.POST.get("back", ""), _record_page_url(type(item), item.patient_id))

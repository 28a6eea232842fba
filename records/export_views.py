from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from portal import access
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.idempotency import idempotent
from records import exports, files
from records.export_forms import ExportRequestForm
from records.models import Export, Observation

PAGE = "records/exports/exports.html"


def _context(request, patient, form):
    items = list(access.exports_for(request.user).filter(patient=patient)[:30])
    return {"form": form, "exports": items, "polling": any(item.is_pending for item in items)}


@access.role_required(User.Role.PATIENT)
@idempotent
def export_page(request):
    """Request an export and follow the state of each one."""
    patient = access.record_for(request, access.MANAGE).patient
    conversations = access.conversations_for(request.user).filter(patient=patient).select_related("team")
    form = ExportRequestForm(
        request.POST if request.method == "POST" else None,
        conversations=conversations,
        observations=access.items_visible_to(request.user, Observation).filter(patient=patient),
    )
    if request.method == "POST":
        if form.is_valid():
            _export, created = exports.request_export(
                user=request.user,
                patient=patient,
                kind=form.cleaned_data["kind"],
                options=form.options(),
                language=request.LANGUAGE_CODE,
            )
            if created:
                messages.success(request, _("Your export is being prepared. You will get an email when it is ready."))
            else:
                messages.info(request, _("The same export is already being prepared; follow it below."))
            return redirect("exports:page")
        return _render(request, PAGE, _context(request, patient, form), patient=patient, status=400)
    return _render(request, PAGE, _context(request, patient, form), patient=patient)


def _render(request, template, context, *, patient, status=200):
    return access.render_record(
        request, template, context, patient=patient, action=AccessLog.Action.VIEW_RECORD, status=status
    )


@require_GET
@access.role_required(User.Role.PATIENT)
def export_list(request):
    """The list of exports alone, polled by htmx while one is pending."""
    patient = access.record_for(request, access.MANAGE).patient
    return render(request, f"{PAGE}#export-list", _context(request, patient, None))


@require_GET
@access.role_required(User.Role.PATIENT)
def download(request, pk):
    """A ready export's file, opened and verified; only for the patient who asked."""
    export = access.get_export_for(request.user, pk)
    access.check_in_record(request, export.patient, access.MANAGE)
    if export.state != Export.State.READY:
        return redirect("exports:page")
    try:
        data = exports.read_export(export=export)
    except files.IntegrityError:
        messages.error(request, _("This export can no longer be read. Please request it again."))
        return redirect("exports:page")
    return access.send_record_file(
        request, patient=export.patient, action=AccessLog.Action.EXPORT, target=export.get_kind_display(),
        data=data, content_type=export.content_type, filename=export.download_name(),
    )  # fmt: skip

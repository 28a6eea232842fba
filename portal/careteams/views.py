from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from portal import access
from portal.accounts import services as account_services
from portal.accounts.forms import InvitePatientForm
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink
from portal.idempotency import idempotent
from records import views as record_views
from records.models import LabReport, Prescription

PAGE_SIZE = 25


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_list(request):
    """The patients of the clinician's care teams, with the teams they are linked through."""
    teams = access.teams_of(request.user)
    links = CareLink.objects.filter(status=CareLink.Status.ACTIVE, team__in=teams).select_related("team")
    patients = access.patients_cared_for(request.user).prefetch_related(
        Prefetch("care_links", queryset=links, to_attr="shared_links")
    )
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "careteams/patient_list.html", {"page": page, "teams": teams})


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_detail(request, pk):
    patient = access.get_cared_patient(request.user, pk)
    links = patient.care_links.filter(status=CareLink.Status.ACTIVE).select_related("team")
    documents = access.documents_visible_to(request.user).filter(patient=patient).select_related("author_team")
    page = Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page"))
    prescriptions = (
        access.items_visible_to(request.user, Prescription).filter(patient=patient).select_related("prescriber", "team")
    )
    reports = (
        access.items_visible_to(request.user, LabReport)
        .filter(patient=patient)
        .select_related("team")
        .prefetch_related("observations")[:3]
    )
    profile = record_views.profile_for(request.user, patient)
    context = {
        "patient": patient,
        "links": links,
        "page": page,
        "prescriptions": prescriptions,
        "reports": reports,
        **profile,
    }
    return access.render_record(
        request, "careteams/patient_detail.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def invite_patient(request, pk):
    """Invite a patient of one's care teams, who has no login yet, to create one."""
    patient = access.get_cared_patient(request.user, pk)
    if patient.user_id is not None:
        raise Http404
    form = InvitePatientForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            account_services.invite_patient(invited_by=request.user, patient=patient, email=form.cleaned_data["email"])
        except account_services.TooManyWrongProofs as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _("The invitation has been sent. The link is valid for 72 hours."))
            return redirect("careteams:patient_detail", pk=patient.pk)
    return access.render_record(
        request, "careteams/invite_patient.html", {"patient": patient, "form": form},
        patient=patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip

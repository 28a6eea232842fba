from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal import access
from portal.accounts.backends import MODEL_BACKEND
from portal.accounts.models import Representation, User
from portal.idempotency import idempotent
from portal.redirects import back_or
from portal.representation import forms, services
from portal.templatetags.french import elide


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def switch(request):
    """The record switcher: the chosen record (an opaque id in the POST body, never in a
    URL) becomes the one every patient-side page is about."""
    record = access.choose_record(request, request.POST.get("record", ""))
    if record.is_own:
        messages.info(request, _("You are in your own record."))
    else:
        # Said to a screen reader as the page changes; the banner above every page of that
        # record already shows it (a second line saying the same would only push the page down).
        messages.info(
            request,
            elide(_("You are in the record of %(name)s.") % {"name": record.patient.full_name}),
            extra_tags="visually-hidden",
        )
    # Back to the page that asked (the 404 page of an item of that record), on this site only.
    return back_or(request, request.POST.get("next", ""), "patient_home")


@access.role_required(User.Role.PATIENT)
@require_http_methods(["GET", "POST"])
@idempotent
def helpers(request):
    """The holder's trusted helpers: who acts for them, on what, until when; invite one,
    end one at any time."""
    patient = access.record_for(request, access.HISTORY).patient
    form = forms.HelperInvitationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.invite_helper(
                patient=patient, invited_by=request.user, email=data["email"], parts=data["parts"],
                ends_on=data["ends_on"],
            )  # fmt: skip
        except services.RepresentationError as error:
            form.add_error(error.field, str(error))
        else:
            messages.success(request, _("The invitation has been sent. The link is valid for 7 days."))
            return redirect("representation:helpers")
    context = {
        "form": form,
        "representations": patient.representations.active().select_related("representative"),
        "invitations": patient.helper_invitations.filter(used_at__isnull=True, cancelled_at__isnull=True),
    }
    return render(request, "representation/helpers.html", context)


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def end_helper(request, pk):
    """The holder ends a representation of their record (a helper's, any time); one that
    has already ended says so. Another record's, or not a helper's: 404."""
    patient = access.record_for(request, access.HISTORY).patient
    representation = get_object_or_404(patient.representations.filter(kind=Representation.Kind.HELPER), pk=pk)
    if not representation.is_active():
        messages.info(request, _("This helper no longer acts for your record."))
    elif services.end_representation(representation=representation, ended_by=request.user, reason="by the patient"):
        messages.success(request, _("This helper no longer acts for your record."))
    return redirect("representation:helpers")


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def cancel_invitation(request, pk):
    """The holder takes back an invitation not yet accepted: its link stops at once. Another
    record's invitation, or one already used: 404."""
    patient = access.record_for(request, access.HISTORY).patient
    invitation = get_object_or_404(patient.helper_invitations.filter(used_at__isnull=True), pk=pk)
    if services.cancel_helper_invitation(invitation=invitation):
        messages.success(request, _("The invitation is cancelled: its link no longer works."))
    else:
        messages.info(request, _("This invitation was already cancelled."))
    return redirect("representation:helpers")


@require_http_methods(["GET", "POST"])
@idempotent
def accept(request, token):
    """A helper, signed in with their own account and second factor, accepts an invitation.
    Not signed in: they sign in (and come back here), or, with no Carnet account, make one
    from the link, which accepts it; their second factor is enrolled next."""
    try:
        invitation = services.get_helper_invitation(token=token)
    except services.RepresentationError as error:
        return render(request, "representation/accept.html", {"error": str(error)}, status=404)
    if not request.user.is_authenticated:
        return _accept_with_a_new_account(request, token, invitation)
    if request.method == "POST":
        try:
            record = services.accept_helper_invitation(token=token, helper=request.user)
        except services.RepresentationError as error:
            return render(request, "representation/accept.html", {"error": str(error)}, status=400)
        access.choose_record(request, record.patient_id)
        messages.success(request, _("You now act for this record."))
        return redirect("patient_home")
    return render(request, "representation/accept.html", {"invitation": invitation})


def _accept_with_a_new_account(request, token, invitation):
    form = forms.HelperAccountForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            helper = services.create_helper_account(
                token=token, first_name=data["first_name"], last_name=data["last_name"], password=data["password1"]
            )
        except services.RepresentationError as error:
            form.add_error(None, str(error))
        else:
            login(request, helper, backend=MODEL_BACKEND)
            return redirect("accounts:enrol")
    sign_in = f"{reverse('account_login')}?{urlencode({'next': request.path})}"
    context = {"invitation": invitation, "account_form": form, "sign_in_url": sign_in}
    return render(request, "representation/accept.html", context)

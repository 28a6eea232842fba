import functools
import uuid

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_safe
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from fhir_api import services as api
from fhir_api.models import ApiClient
from portal import access, rows
from portal.accounts import merge
from portal.accounts import services as accounts
from portal.accounts.models import Patient, Representation, User
from portal.audit.models import AccessLog
from portal.idempotency import idempotent
from portal.pagination import Rows, keyset_page
from portal.prepared import prepared
from portal.secret_once import secret_page, show_secret_once
from portal.support import forms, services
from portal.support.models import SupportAction, SupportRequest

PAGE_SIZE = 25
Action = SupportAction.Action
# A verification code for an invitee, kept in the agent's session until shown once.
CODE_SESSION_KEY = "support_verification_code"
# The search, kept in the session: names and health identifiers stay out of URLs
# (browser history, proxy and server logs).
SEARCH_SESSION_KEY = "support_search"


def _accounts_listed(*values, **shape):
    """The accounts a search finds (``services.accounts_found``), with what the list shows
    and the id of a patient's current record (``record_id``: whose access history has the
    account shown), read by the same query."""
    # A subquery, not a join: PostgreSQL runs it for the rows listed only, after the sort.
    current_record = Subquery(Patient.objects.filter(user=OuterRef("pk")).order_by().values("pk")[:1])
    return (
        services.accounts_found(*values, **shape)
        .only("email", "first_name", "last_name", "role", "is_active", "is_staff", "is_superuser")
        .annotate(record_id=current_record)
    )


@prepared
def _patients_listed(*values, size, **shape):
    """The first ``size`` records without a login a search finds (``services.patients_found``)."""
    return services.patients_found(*values, **shape).only("first_name", "last_name", "ins")[:size]


@prepared
def _count_of_requests(status):
    """How many messages to support are in ``status``: one count, or none when there are none."""
    return (
        SupportRequest.objects.filter(status=status)
        .order_by()
        .values("status")
        .annotate(count=Count("pk"))
        .values_list("count", flat=True)
    )


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def home(request):
    """Account search: names, emails, identifiers and states only, never medical content.
    Patient records without a login are listed apart, to invite them."""
    if request.method == "POST":
        request.session[SEARCH_SESSION_KEY] = request.POST.get("q", "").strip()[:200]
        return redirect("support:home")
    query = request.session.get(SEARCH_SESSION_KEY, "")
    values, shape = services.search_terms(query)
    # By name, from a cursor: a deep page costs what the first does (no OFFSET, no COUNT of
    # every account found); by prepared queries (portal.prepared), as the other lists.
    page = keyset_page(
        Rows.of(_accounts_listed, *values, **shape),
        request.GET,
        fields=("last_name", "first_name"),
        size=PAGE_SIZE,
        descending=False,
    )
    patients = _patients_listed(*values, size=PAGE_SIZE, **shape)
    open_requests = sum(_count_of_requests(SupportRequest.Status.OPEN.value))
    # Each identity shown is in that person's access history, as support's.
    with_login = [account.record_id for account in page.object_list if account.is_patient and account.record_id]
    shown = [*with_login, *(patient.pk for patient in patients)]
    access.trace_listed_people(request.user, shown, AccessLog.Action.SUPPORT_VIEW)
    context = {
        "page": page,
        "query": query,
        "patients": patients,
        "open_requests": open_requests,
        "accounts_html": _account_rows(page.object_list, agent_is_superuser=request.user.is_superuser),
        "patients_html": _patient_rows(patients),
    }
    return render(request, "support/home.html", context)


# The search's rows, written in Python with each value escaped as the template escapes it
# (portal.rows.escaped): as a template, 50 rows of 8 values each cost more than the page's
# queries. The column names, the same on every row, are escaped and put in once per page.
ACCOUNT_ROW = """
            <tr>
              <th scope="row">{name}</th>
              <td data-label="{email_label}">{email}</td>
              <td data-label="{role_label}">{role}</td>
              <td data-label="{state_label}">{state}</td>
            </tr>"""
PATIENT_ROW = """
            <tr>
              <th scope="row"><a href="{invite_url}">{name}</a></th>
              <td data-label="{ins_label}">{ins}</td>
              <td data-label="{representatives_label}"><a href="{representations_url}">{representatives_label}\
<span class="visually-hidden"> : {name}</span></a></td>
            </tr>"""


def _account_rows(accounts, *, agent_is_superuser) -> str:
    """The accounts found: each one's name (a link to the account, but for superusers and
    staff, never acted on here, and support agents but by a superuser), email, role and
    state (see ``portal.rows``)."""
    escaped = rows.escaped
    roles, account_url = rows.labels_of(User.Role.choices), rows.url_by_pk("support:account", as_html=True)
    row = functools.partial(
        ACCOUNT_ROW.format,
        email_label=escaped(_("Email")),
        role_label=escaped(_("Role")),
        state_label=escaped(_("State")),
    )
    active, deactivated = escaped(_("Active")), escaped(_("Deactivated"))
    written = []
    for account in accounts:
        name = escaped(account.get_full_name() or "—")
        if not (account.is_superuser or account.is_staff or (account.is_support and not agent_is_superuser)):
            name = f'<a href="{account_url(account.pk)}">{name}</a>'
        written.append(
            row(
                name=name,
                email=escaped(account.email),
                role=escaped(roles.get(account.role, account.role)),
                state=active if account.is_active else deactivated,
            )
        )
    return mark_safe("".join(written))  # noqa: S308 (every value escaped)


def _patient_rows(patients) -> str:
    """The records without a login found: each one's name (a link to invite them), INS
    and a link to their representatives (see ``portal.rows``)."""
    escaped = rows.escaped
    invite_url, representations_url = (
        rows.url_by_pk("support:invite_patient", as_html=True),
        rows.url_by_pk("support:representations", as_html=True),
    )
    row = functools.partial(
        PATIENT_ROW.format,
        ins_label=escaped(_("National health identifier (INS)")),
        representatives_label=escaped(_("Representatives")),
    )
    return mark_safe(  # noqa: S308 (every value escaped)
        "".join(
            row(
                name=escaped(patient.full_name),
                ins=escaped(patient.ins or "—"),
                invite_url=invite_url(patient.pk),
                representations_url=representations_url(patient.pk),
            )
            for patient in patients
        )
    )


def _account(request, pk):
    return get_object_or_404(
        User.objects.select_related("patient"), pk=pk, pk__in=services.accounts_support_may_act_on(request.user)
    )


def _device_kind(device):
    if isinstance(device, TOTPDevice):
        return _("Authenticator app")
    return _("Codes by email") if isinstance(device, EmailDevice) else _("Passkey")


@access.role_required(User.Role.SUPPORT)
def account(request, pk):
    """An account's state: what support needs to help, nothing medical."""
    user = _account(request, pk)
    devices = accounts.second_factor_devices(user=user)
    locked_until = services.lockout(user=user)
    invitation = accounts.pending_invitation(user=user)
    awaiting_set_up = not user.has_usable_password()
    code = request.session.get(CODE_SESSION_KEY)
    if code and code["account"] == user.pk:
        del request.session[CODE_SESSION_KEY]  # shown once
    else:
        code = None
    addresses = list(EmailAddress.objects.filter(user=user))
    current = [a for a in addresses if a.email.lower() == user.email.lower()]
    actions = services.available_actions(account=user, locked_until=locked_until, awaiting_set_up=awaiting_set_up)
    context = {
        "account": user,
        "email_verified": any(a.verified for a in current),
        "pending_email": next((a for a in addresses if not a.verified and a not in current), None),
        "device_kinds": sorted({_device_kind(device) for device in devices}),
        "device_count": len(devices),
        "backup_codes": accounts.backup_codes_left(user=user),
        "locked_until": locked_until,
        "session_count": len(accounts.signed_in_sessions(user=user)),
        "awaiting_set_up": awaiting_set_up,
        "invitation": invitation,
        "code": code and code["code"],
        "memberships": user.memberships.select_related("team") if user.is_clinician else [],
        "actions": [a for a in actions if a[0] not in services.DESTRUCTIVE_ACTIONS],
        "danger_actions": [a for a in actions if a[0] in services.DESTRUCTIVE_ACTIONS],
        "held": list(
            Representation.objects.filter(representative=user, ended_at__isnull=True).select_related("patient")
        ),
        "history": SupportAction.objects.filter(account=user).select_related("agent")[:10],
    }
    # The person reads in their history that support opened their account; a record they
    # act for, named here, reads it too.
    patient = getattr(user, "patient", None)
    _trace_shown(request, [patient.pk] if patient else [], context["held"])
    return render(request, "support/account.html", context)


def _trace_shown(request, patient_ids, representations=()):
    """Every person whose identity a support page shows, in their record's access history:
    the page's own, and both sides of the representations it lists (the record acted
    for, and the representative's own record when they have one)."""
    ids = [*patient_ids, *(representation.patient_id for representation in representations)]
    representatives = {representation.representative_id for representation in representations}
    if representatives:
        ids += Patient.objects.filter(user_id__in=representatives).values_list("pk", flat=True)
    access.trace_listed_people(request.user, ids, AccessLog.Action.SUPPORT_VIEW)


def _form_for(action, data, account):
    initial = {"request_key": uuid.uuid4()}
    if action == Action.CHANGE_EMAIL:
        return forms.ChangeEmailForm(data, initial=initial, account=account)
    if action in services.TEAM_ACTIONS:
        teams = services.teams_for(action, account=account)
        return forms.TeamForm(data, initial=initial, account=account, teams=teams)
    return forms.ActionForm(data, initial=initial, account=account)


def _carry_out(request, call, success: str) -> services.Done | None:
    """Run a support service ``call`` and tell the agent how it went: ``success``, or why
    nothing happened (a double submit, an action that no longer applies). A verification
    code is kept to be shown once on the account page."""
    try:
        done = call()
    except services.AlreadyDone:
        messages.info(request, _("This action was already carried out."))
    except services.NotApplicable as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, success)
        if done.code and done.row.account_id:
            request.session[CODE_SESSION_KEY] = {"account": done.row.account_id, "code": done.code}
        return done
    return None


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def act(request, pk, action):
    """Confirm an action with a reason (GET shows the form, POST carries it out)."""
    if action not in services.ACCOUNT_ACTIONS:
        raise Http404
    if request.method == "POST" and not User.objects.filter(pk=pk).exists():
        messages.error(request, _("This account no longer exists."))
        return redirect("support:home")
    user = _account(request, pk)
    label = services.COMMANDS[action]
    form = _form_for(action, request.POST if request.method == "POST" else None, user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _carry_out(
            request,
            lambda: services.act_on_account(
                agent=request.user,
                account=user,
                action=action,
                reason=data["reason"],
                request_key=data["request_key"],
                request=request,
                team=data.get("team"),
                email=data.get("email"),
            ),
            _("%(action)s: done.") % {"action": label},
        )
        return redirect("support:account", user.pk)
    context = {"account": user, "form": form, "label": label, "danger": action in services.DESTRUCTIVE_ACTIONS}
    return render(request, "support/act.html", context)


@access.role_required(User.Role.SUPPORT)
@require_GET
def merge_patient(request, pk):
    """Records that may be duplicates of this one (same birth date, same first or last
    name), to merge into it: identities only."""
    keep = get_object_or_404(Patient.objects.select_related("user"), pk=pk)
    context = {"keep": keep, "candidates": list(services.merge_candidates(keep))}
    for patient in (keep, *context["candidates"]):  # each identity shown, in its own history
        access.trace_read(request.user, patient, AccessLog.Action.SUPPORT_VIEW)
    return render(request, "support/merge_patient.html", context)


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def confirm_merge(request, pk, duplicate_pk):
    """Both identities side by side, what will move (counts by kind, never the items),
    a reason, and the merge itself (audited, once however often it is sent)."""
    keep = get_object_or_404(Patient.objects.select_related("user"), pk=pk)
    merged = Patient.all_records.filter(pk=duplicate_pk, merged_into=keep).exists()
    if merged:  # the confirmation sent again, or a stale page
        messages.info(request, _("This record was already merged into this one."))
        return redirect("support:account", keep.user_id) if keep.user_id else redirect("support:merge_patient", keep.pk)
    duplicate = get_object_or_404(Patient.objects.select_related("user"), pk=duplicate_pk)
    refusal = None
    try:
        merge.check(keep, duplicate)
    except merge.MergeRefused as error:
        refusal = str(error)
    form = forms.ActionForm(request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()})
    if request.method == "POST" and refusal is None and form.is_valid():
        done = _carry_out(
            request,
            lambda: services.merge_patients(
                agent=request.user,
                keep=keep,
                duplicate=duplicate,
                reason=form.cleaned_data["reason"],
                request_key=form.cleaned_data["request_key"],
            ),
            _("The records are merged."),
        )
        if done is not None and done.row.account_id:
            return redirect("support:account", done.row.account_id)
        return redirect("support:merge_patient", keep.pk)
    context = {
        "keep": keep,
        "duplicate": duplicate,
        "refusal": refusal,
        "moves": merge.what_moves(duplicate),
        "form": form,
    }
    for patient in (keep, duplicate):
        access.trace_read(request.user, patient, AccessLog.Action.SUPPORT_VIEW)
    return render(request, "support/confirm_merge.html", context)


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def invite_patient(request, pk):
    """Invite a patient who has no login yet (found by name or identifier), or send them a
    new link: the earlier one stops working."""
    patient = get_object_or_404(Patient.objects.filter(user__isnull=True), pk=pk)
    invitation = accounts.pending_invitation(patient=patient)
    form = forms.InvitePatientForm(
        request.POST if request.method == "POST" else None,
        initial={"request_key": uuid.uuid4(), "email": invitation.email if invitation else ""},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _carry_out(
            request,
            lambda: services.invite_patient(
                agent=request.user,
                patient=patient,
                email=data["email"],
                reason=data["reason"],
                request_key=data["request_key"],
            ),
            _("The invitation has been sent. The link is valid for 72 hours."),
        )
        return redirect("support:invite_patient", patient.pk)
    history = SupportAction.objects.filter(patient=patient).select_related("agent")[:10]
    context = {"patient": patient, "invitation": invitation, "form": form, "history": history}
    _trace_shown(request, [patient.pk])
    return render(request, "support/invite_patient.html", context)


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def create_account(request, role):
    """A clinician's account with its care teams, or (superusers only) a support agent's.
    Its holder gets an emailed link; the agent reads them the verification code."""
    if role not in (User.Role.CLINICIAN, User.Role.SUPPORT) or (
        role == User.Role.SUPPORT and not request.user.is_superuser
    ):
        raise Http404
    form = forms.CreateAccountForm(
        request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()}, role=role
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = _carry_out(
            request,
            lambda: services.create_account(
                agent=request.user,
                role=role,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                teams=data.get("teams", ()),
                reason=data["reason"],
                request_key=data["request_key"],
            ),
            _("The account has been created."),
        )
        return redirect("support:account", done.row.account_id) if done else redirect("support:home")
    title = _("New clinician account") if role == User.Role.CLINICIAN else _("New support agent account")
    return render(request, "support/create_account.html", {"form": form, "title": title})


@access.role_required(User.Role.SUPPORT)
def audit(request):
    """The support audit trail, filterable by agent and by account."""
    rows = SupportAction.objects.select_related("agent", "account", "patient")
    agent, account_id = request.GET.get("agent", ""), request.GET.get("account", "")
    if agent.isdecimal():
        rows = rows.filter(agent_id=agent)
    if account_id.isdecimal():
        rows = rows.filter(account_id=account_id)
    agents = User.objects.filter(role=User.Role.SUPPORT).order_by("last_name")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/audit.html", {"page": page, "agents": agents, "agent": agent})


@access.role_required(User.Role.SUPPORT)
def reports(request):
    """Patients' reports of an access they do not recognise: open cases first."""
    page = Paginator(services.access_reports(), PAGE_SIZE).get_page(request.GET.get("page"))
    _trace_shown(request, [case.patient_id for case in page.object_list])
    return render(request, "support/reports.html", {"page": page})


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def report(request, pk):
    """One case: who accessed the record, as what, for which team, when, and the kind of
    access (never what was read); answered with a note the patient reads."""
    case = get_object_or_404(services.access_reports(), pk=pk)
    form = forms.AnswerReportForm(
        request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()}
    )
    if request.method == "POST" and form.is_valid():
        _carry_out(
            request,
            lambda: services.answer_access_report(
                agent=request.user,
                report=case,
                answer=form.cleaned_data["answer"],
                request_key=form.cleaned_data["request_key"],
            ),
            _("The answer has been sent to the patient."),
        )
        return redirect("support:report", case.pk)
    _trace_shown(request, [case.patient_id])
    return render(request, "support/report.html", {"case": case, "form": form})


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def register_patient(request):
    """Register a patient for a care team, or link the existing record of the same person;
    with a reason, audited like every support action."""
    from portal.careteams import services as careteams

    form = forms.RegisterPatientForm(
        request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()}
    )
    candidates, same_ins = [], False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        common = {
            "agent": request.user,
            "team": data["team"],
            "identity": form.identity(),
            "started_on": data["started_on"],
            "invite_email": data["email"],
            "reason": data["reason"],
            "request_key": data["request_key"],
        }
        link = request.POST.get("link", "")
        try:
            if link.isdecimal():
                call = lambda: services.link_patient(patient_pk=int(link), **common)  # noqa: E731
            else:
                call = lambda: services.register_patient(none_of=form.set_aside(), **common)  # noqa: E731
            _carry_out(request, call, _("Done: the patient is linked to the care team."))
        except careteams.PatientExists as exists:
            candidates, same_ins = [exists.patient], True
        except careteams.PossibleDuplicates as duplicates:
            candidates = duplicates.candidates
        except careteams.NotAMatch:
            form.add_error(None, _("This record does not match the identity given: check it and search again."))
        except careteams.LinkBlocked as refusal:
            form.add_error(None, str(refusal))
        else:
            return redirect("support:home")
    context = {
        "form": form,
        "candidates": careteams.with_link_status(form.cleaned_data["team"], candidates) if candidates else [],
        "candidate_ids": ",".join(str(candidate.pk) for candidate in candidates),
        "same_ins": same_ins,
        "for_support": True,
    }
    for candidate in candidates:  # the person learns who found their record, and when
        access.trace_read(request.user, candidate, AccessLog.Action.IDENTITY_MATCH)
    return render(request, "careteams/register_patient.html", context)


@access.role_required(User.Role.SUPPORT)
def support_requests(request):
    """Contact-form cases: open ones first, oldest first."""
    page = Paginator(services.support_requests(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/requests.html", {"page": page})


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def support_request(request, pk):
    """One contact-form case, the accounts it may be about, and the answer (emailed)."""
    case = get_object_or_404(services.support_requests(), pk=pk)
    form = forms.AnswerRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and (case.status != case.Status.OPEN or form.is_valid()):
        if case.status == case.Status.OPEN and services.answer_request(
            agent=request.user, case=case, answer=form.cleaned_data["answer"]
        ):
            messages.success(request, _("The answer is on its way to %(email)s.") % {"email": case.email})
        else:  # a double submit, or another agent first
            messages.info(request, _("This case has already been answered."))
        return redirect("support:support_request", case.pk)
    context = {"case": case, "form": form, "accounts": services.accounts_matching(case)}
    return render(request, "support/request.html", context)


@access.role_required(User.Role.SUPPORT)
def api_clients(request):
    """Care teams' software allowed on the FHIR API: who, what it may do, when last used."""
    clients = ApiClient.objects.select_related("team", "application", "created_by")
    return render(request, "support/api_clients.html", {"clients": clients})


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
@idempotent
def new_api_client(request):
    form = forms.ApiClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            client, secret = api.register_client(
                team=form.cleaned_data["team"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error("name" if error.code == "name_taken" else "scopes", error)
        else:
            return show_secret_once(request, client, secret, page="support:api_client_secret")
    return render(request, "support/api_client_new.html", {"form": form})


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
@idempotent
def change_api_client(request, pk, action):
    """Rotate the secret (the new one shown once) or revoke the client for good."""
    client = get_object_or_404(ApiClient.objects.select_related("team", "application"), pk=pk)
    if action not in ("rotate", "revoke"):
        raise Http404
    if request.method == "GET":  # asked first: the software stops at once
        back_url = reverse("support:api_clients")
        if client.is_revoked:
            return redirect(back_url)
        return render(request, "api_client_confirm.html", {"client": client, "action": action, "back_url": back_url})
    if action == "rotate" and not client.is_revoked:
        secret = api.rotate_secret(client=client, by=request.user)
        return show_secret_once(request, client, secret, page="support:api_client_secret")
    if action == "revoke":
        if api.revoke_client(client=client, by=request.user):
            messages.success(request, _("The client is revoked: its tokens no longer work."))
        return redirect("support:api_clients")
    raise Http404


@access.role_required(User.Role.SUPPORT)
@require_safe
def api_client_secret(request, pk):
    """The secret just made, shown on this page once; afterwards, that it was shown."""
    client = get_object_or_404(ApiClient.objects.select_related("team"), pk=pk)
    return secret_page(request, client, done_url=reverse("support:api_clients"))


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def representations(request, pk):
    """Who represents this patient, and whom their login represents: names, kinds,
    dates and proofs, never medical content. Add a parent or a legal representative."""
    patient = get_object_or_404(Patient.objects.select_related("user"), pk=pk)
    form = forms.AddRepresentativeForm(
        request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _carry_out(
            request,
            lambda: services.add_representative(
                agent=request.user,
                patient=patient,
                email=data["email"],
                kind=data["kind"],
                proof=data["proof"],
                reason=data["reason"],
                request_key=data["request_key"],
            ),
            _("The representative has been added, and told so by email."),
        )
        return redirect("support:representations", patient.pk)
    context = {
        "patient": patient,
        "form": form,
        "representations": list(Representation.objects.filter(patient=patient).select_related("representative")),
        "held": list(Representation.objects.filter(representative=patient.user).select_related("patient"))
        if patient.user_id
        else [],
        "history": SupportAction.objects.filter(patient=patient).select_related("agent")[:10],
    }
    _trace_shown(request, [patient.pk], [*context["representations"], *context["held"]])
    return render(request, "support/representations.html", context)


@access.role_required(User.Role.SUPPORT)
@require_http_methods(["GET", "POST"])
def end_representation(request, pk):
    """End a representation with a reason (GET confirms, POST ends it)."""
    representation = get_object_or_404(Representation.objects.select_related("patient", "representative"), pk=pk)
    form = forms.ActionForm(request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _carry_out(
            request,
            lambda: services.end_representation(
                agent=request.user,
                representation=representation,
                reason=data["reason"],
                request_key=data["request_key"],
            ),
            _("The representation has ended. Both sides have been told."),
        )
        return redirect("support:representations", representation.patient_id)
    _trace_shown(request, [], [representation])
    return render(request, "support/end_representation.html", {"representation": representation, "form": form})

import uuid

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from portal import access
from portal.accounts import services as accounts
from portal.accounts.models import Invitation, User
from portal.support import services
from portal.support.forms import ActionForm
from portal.support.models import SupportAction

PAGE_SIZE = 25


@access.role_required(User.Role.SUPPORT)
def home(request):
    """Account search: names, emails, identifiers and states only, never medical content."""
    query = request.GET.get("q", "").strip()[:200]
    users = services.search_accounts(query).only(
        "email", "first_name", "last_name", "role", "is_active", "is_staff", "is_superuser"
    )
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/home.html", {"page": page, "query": query})


def _account(pk):
    return get_object_or_404(
        User.objects.select_related("patient"), pk=pk, pk__in=services.accounts_support_may_act_on()
    )


@access.role_required(User.Role.SUPPORT)
def account(request, pk):
    """An account's state: what support needs to help, nothing medical."""
    user = _account(pk)
    devices = accounts.second_factor_devices(user=user)
    patient = getattr(user, "patient", None)
    context = {
        "account": user,
        "email_verified": EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists(),
        "device_kinds": sorted({type(device)._meta.verbose_name for device in devices}),
        "device_count": len(devices),
        "backup_codes": accounts.backup_codes_left(user=user),
        "locked_until": services.lockout(user=user),
        "session_count": UserSession.objects.filter(user=user).count(),
        "pending_invitation": Invitation.objects.filter(email__iexact=user.email, used_at__isnull=True).exists(),
        "care_teams": patient.care_links.select_related("team") if patient else [],
        "memberships": user.memberships.select_related("team") if user.is_clinician else [],
        "actions": SupportAction.Action.choices,
        "history": SupportAction.objects.filter(account=user).select_related("agent")[:10],
    }
    return render(request, "support/account.html", context)


@access.role_required(User.Role.SUPPORT)
def act(request, pk, action):
    """Confirm an action with a reason (GET shows the form, POST carries it out)."""
    if action not in SupportAction.Action.values:
        raise Http404
    user = _account(pk)
    label = SupportAction.Action(action).label
    form = ActionForm(request.POST if request.method == "POST" else None, initial={"request_key": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        try:
            services.act_on_account(
                agent=request.user,
                account=user,
                action=action,
                reason=form.cleaned_data["reason"],
                request_key=form.cleaned_data["request_key"],
            )
        except services.AlreadyDone:
            messages.info(request, _("This action was already carried out."))
        else:
            messages.success(request, _("Done: %(action)s.") % {"action": label})
        return redirect("support:account", user.pk)
    return render(request, "support/act.html", {"account": user, "form": form, "label": label})


@access.role_required(User.Role.SUPPORT)
def audit(request):
    """The support audit trail, filterable by agent and by account."""
    rows = SupportAction.objects.select_related("agent", "account")
    agent, account_id = request.GET.get("agent", ""), request.GET.get("account", "")
    if agent.isdigit():
        rows = rows.filter(agent_id=agent)
    if account_id.isdigit():
        rows = rows.filter(account_id=account_id)
    agents = User.objects.filter(role=User.Role.SUPPORT).order_by("last_name")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/audit.html", {"page": page, "agents": agents, "agent": agent})

"""Support actions on accounts. Each one needs a reason, writes one audit row (one
only, even when the form is sent twice), and shows in the patient's access history
as an account action, without the reason."""

from django.db import IntegrityError, transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from portal.accounts import services as accounts
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.support.models import SupportAction

Action = SupportAction.Action


class AlreadyDone(Exception):
    """The same confirmation was already carried out (a double submit)."""


def accounts_support_may_act_on():
    """Support agents act on patients and clinicians, never on their peers or superusers."""
    return User.objects.exclude(role=User.Role.SUPPORT).exclude(is_superuser=True).exclude(is_staff=True)


def search_accounts(query: str):
    """Accounts for the console's search, by name. A query of digits is a national health
    identifier (spaces ignored), matched exactly. Otherwise each word must start the
    first or the last name, or the whole query must start the email address: prefix
    matches that the indexes of migration accounts 0004 answer on PostgreSQL."""
    users = User.objects.order_by("last_name", "first_name", "pk")
    query = " ".join(query.replace("\x00", "").lower().split())
    if not query:
        return users
    digits = query.replace(" ", "")
    if digits.isdigit():
        return users.filter(patient__ins=digits)
    users = users.alias(email_key=Lower("email"), first_key=Lower("first_name"), last_key=Lower("last_name"))
    by_name = Q()
    for word in query.split(" "):
        by_name &= Q(first_key__startswith=word) | Q(last_key__startswith=word)
    return users.filter(by_name | Q(email_key__startswith=query))


def lockout(*, user: User):
    """When the account's sign-in lockout ends, or None when it is not locked."""
    from axes.models import AccessAttempt
    from django.conf import settings

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = AccessAttempt.objects.filter(username=user.email.lower(), attempt_time__gte=since).aggregate(
        count=Sum("failures_since_start"), last=Max("attempt_time")
    )
    if not failures["count"] or failures["count"] < settings.AXES_FAILURE_LIMIT:
        return None
    return failures["last"] + settings.AXES_COOLOFF_TIME


def _apply(action: str, user: User) -> None:
    if action == Action.DEACTIVATE:
        accounts.deactivate_user(user=user)
    elif action == Action.REACTIVATE:
        user.is_active = True
        user.save(update_fields=["is_active"])
    elif action == Action.UNLOCK:
        accounts.unlock_account(email=user.email)
    elif action == Action.RESET_SECOND_FACTOR:
        for device in accounts.second_factor_devices(user=user):
            device.delete()
        from django_otp.plugins.otp_static.models import StaticDevice

        StaticDevice.objects.filter(user=user).delete()
        accounts.end_other_sessions(user=user, current_key=None)
        accounts.notify_security_event(user=user, kind="second_factor_reset")
    elif action == Action.END_SESSIONS:
        accounts.end_other_sessions(user=user, current_key=None)
    else:
        raise ValueError(action)


def act_on_account(*, agent: User, account: User, action: str, reason: str, request_key) -> SupportAction:
    """Carry out ``action`` on ``account`` for ``agent``, with the agent's ``reason``.
    Raises AlreadyDone when this confirmation (``request_key``) was already used."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required")
    if SupportAction.objects.filter(request_key=request_key).exists():
        raise AlreadyDone
    try:
        with transaction.atomic():
            row = SupportAction.objects.create(
                agent=agent, account=account, action=action, reason=reason, request_key=request_key
            )
            _apply(action, account)
            patient = getattr(account, "patient", None)
            if patient is not None:
                AccessLog.objects.create(
                    patient=patient,
                    actor=agent,
                    actor_role=agent.role,
                    action=AccessLog.Action.ACCOUNT_ACTION,
                    target=str(Action(action).label),
                )
    except IntegrityError:  # a concurrent double submit won the race
        raise AlreadyDone from None
    return row

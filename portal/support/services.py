"""Support actions on accounts. Each one needs a reason, writes one audit row (one
only, even when the form is sent twice), and shows in the patient's access history
as an account action, without the reason."""

from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from portal.accounts import services as accounts
from portal.accounts.models import Patient, User, folded, like_prefix, name_prefix_patterns, prefixes_condition
from portal.audit.models import AccessLog, AccessReport
from portal.careteams.models import CareTeam, Membership
from portal.support.models import SupportAction, SupportRequest

Action = SupportAction.Action


class AlreadyDone(Exception):
    """The same confirmation was already carried out (a double submit)."""


class NotApplicable(Exception):
    """The action does not apply to the account as it is now; the message says why."""


class Done(NamedTuple):
    row: SupportAction
    # A verification code to give the invitee by phone or in person, shown to the agent once.
    code: str | None = None


def accounts_support_may_act_on(agent: User):
    """Support agents act on patients and clinicians, never on their peers or superusers.
    A superuser also manages support agents (never other superusers or staff)."""
    users = User.objects.exclude(is_superuser=True).exclude(is_staff=True)
    return users if agent.is_superuser else users.exclude(role=User.Role.SUPPORT)


def _clean_query(query: str) -> str:
    return " ".join(folded(query.replace("\x00", "")).split())


def search_terms(query: str) -> tuple[tuple, dict]:
    """A search of the console as the values and the shape (by keyword) that
    ``accounts_found`` and ``patients_found`` take: nothing (an empty query), an
    identifier (a query of digits, spaces ignored), or the LIKE patterns of each word's
    name prefixes (``name_prefix_patterns``) and of the whole query as an email's start."""
    query = _clean_query(query)
    if not query:
        return (), {"kind": "none"}
    digits = query.replace(" ", "")
    if digits.isdecimal():
        return (digits,), {"kind": "ins"}
    patterns = name_prefix_patterns(query)
    return (*(pattern for word in patterns for pattern in word), like_prefix(query)), {
        "kind": "name",
        "words": tuple(map(len, patterns)),
    }


def _name_condition(values, words, fields):
    """The name prefixes' condition from ``values``, the patterns of ``words`` words (their
    counts), and the values left (the email's pattern)."""
    patterns, start = [], 0
    for count in words:
        patterns.append(values[start : start + count])
        start += count
    return prefixes_condition(patterns, fields), values[start:]


def accounts_found(*values, kind, words=()):
    """Accounts for the console's search (``search_terms``), by name. A query of digits is
    a national health identifier, matched exactly. Otherwise each word must start the
    first or the last name (case, accents, apostrophes, hyphens, spaces and dots aside:
    "lea" finds Léa, "ndiaye" N’Diaye; see ``name_prefixes``), or the whole query must
    start the email address: prefix matches that indexes answer on PostgreSQL
    (migrations accounts 0004 and 0006). Every account for an empty query."""
    # Not the accounts that author what API clients publish: they never sign in.
    users = User.objects.filter(api_client__isnull=True).order_by("last_name", "first_name", "pk")
    if kind == "none":
        return users
    if kind == "ins":
        return users.filter(patient__ins=values[0])
    names, (email,) = _name_condition(values, words, ("first_folded", "last_folded"))
    return users.alias(email_key=Lower("email")).filter(names | Q(email_key__like_prefix=email))


def patients_found(*values, kind, words=()):
    """Patient records that have no login yet (to invite them), found as ``accounts_found``
    finds accounts (but by email); none for an empty query."""
    patients = Patient.objects.filter(user__isnull=True).order_by("last_name", "first_name", "pk")
    if kind == "none":
        return patients.none()
    if kind == "ins":
        return patients.filter(ins=values[0])
    names, _email = _name_condition(values, words, ("first_folded", "last_folded"))
    return patients.filter(names)


def search_accounts(query: str):
    """``accounts_found`` for ``query``, a queryset (the support bench's)."""
    values, shape = search_terms(query)
    return accounts_found(*values, **shape)


def lockout(*, user: User):
    """When the account's sign-in lockout ends (from the last address it is locked from),
    or None when it is locked from none (lockouts are per account and address)."""
    from axes.models import AccessAttempt
    from django.conf import settings

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    by_address = (
        AccessAttempt.objects.filter(username=user.email.lower(), attempt_time__gte=since)
        .values("ip_address")
        .annotate(count=Sum("failures_since_start"), last=Max("attempt_time"))
    )
    locked = [row["last"] for row in by_address if row["count"] >= settings.AXES_FAILURE_LIMIT]
    return max(locked) + settings.AXES_COOLOFF_TIME if locked else None


# The actions on an existing account, as the console offers them. The audit trail
# names what was done with Action's labels ("Deactivated the account").
COMMANDS = {
    Action.DEACTIVATE: gettext_lazy("Deactivate the account"),
    Action.REACTIVATE: gettext_lazy("Reactivate the account"),
    Action.UNLOCK: gettext_lazy("Lift the sign-in lockout"),
    Action.RESET_SECOND_FACTOR: pgettext_lazy("support command", "Reset the second factor"),
    Action.END_SESSIONS: gettext_lazy("End all sessions"),
    Action.RESEND_INVITATION: gettext_lazy("Send a new invitation link"),
    Action.CHANGE_EMAIL: gettext_lazy("Change the email address"),
    Action.ADD_MEMBERSHIP: gettext_lazy("Add to a care team"),
    Action.REMOVE_MEMBERSHIP: gettext_lazy("Remove from a care team"),
    Action.MAKE_MANAGER: gettext_lazy("Make a manager of a care team"),
    Action.REMOVE_MANAGER: gettext_lazy("Remove as a manager of a care team"),
}
# The actions choosing one of the clinician's teams (or, to add them, another team).
TEAM_ACTIONS = frozenset({Action.ADD_MEMBERSHIP, Action.REMOVE_MEMBERSHIP, Action.MAKE_MANAGER, Action.REMOVE_MANAGER})
ACCOUNT_ACTIONS = frozenset(COMMANDS)
# What takes something away from the account holder: shown apart, as a danger zone.
DESTRUCTIVE_ACTIONS = frozenset(
    {
        Action.DEACTIVATE,
        Action.RESET_SECOND_FACTOR,
        Action.END_SESSIONS,
        Action.REMOVE_MEMBERSHIP,
        Action.REMOVE_MANAGER,
    }
)


def available_actions(*, account: User, locked_until, awaiting_set_up: bool) -> list[tuple[str, str]]:
    """The actions that apply to ``account`` as it is now, for the account page."""
    skip = set()
    skip.add(Action.REACTIVATE if account.is_active else Action.DEACTIVATE)
    if locked_until is None:
        skip.add(Action.UNLOCK)
    if not awaiting_set_up:
        skip.add(Action.RESEND_INVITATION)
    if not account.is_clinician:
        skip |= TEAM_ACTIONS
    else:  # offer only what has a team to choose from
        skip |= {action for action in TEAM_ACTIONS if not teams_for(action, account=account).exists()}
    return [(value, command) for value, command in COMMANDS.items() if value not in skip]


def teams_for(action: str, *, account: User):
    """The care teams a team action may choose for the clinician ``account``: another
    team to join, one of theirs to leave, one they do not manage yet, one they manage."""
    if action == Action.ADD_MEMBERSHIP:
        return CareTeam.objects.exclude(memberships__user=account)
    managing = {Action.REMOVE_MEMBERSHIP: None, Action.MAKE_MANAGER: False, Action.REMOVE_MANAGER: True}[action]
    memberships = Membership.objects.filter(user=account)
    if managing is not None:
        memberships = memberships.filter(is_manager=managing)
    return CareTeam.objects.filter(memberships__in=memberships)


def _apply(action: str, user: User, *, agent: User, request=None, team=None, email=None) -> tuple[str, str | None]:
    """Carry out ``action`` on ``user``; returns the audit detail and any verification code."""
    if action == Action.DEACTIVATE:
        if not user.is_active:
            raise NotApplicable(_("This account is already deactivated."))
        accounts.deactivate_user(user=user)
    elif action == Action.REACTIVATE:
        if user.is_active:
            raise NotApplicable(_("This account is already active."))
        user.is_active = True
        user.save(update_fields=["is_active"])
    elif action == Action.UNLOCK:
        if lockout(user=user) is None:
            raise NotApplicable(_("This account is not locked."))
        accounts.unlock_account(email=user.email)
    elif action == Action.RESET_SECOND_FACTOR:
        from django_otp.plugins.otp_static.models import StaticDevice

        devices = accounts.second_factor_devices(user=user)
        if not devices:
            raise NotApplicable(_("This account has no second factor yet."))
        for device in devices:
            device.delete()
        StaticDevice.objects.filter(user=user).delete()
        accounts.end_other_sessions(user=user, current_key=None)
        accounts.email_security_notice(user=user, kind="second_factor_reset")
    elif action == Action.END_SESSIONS:
        accounts.end_other_sessions(user=user, current_key=None)
    elif action == Action.RESEND_INVITATION:
        if not user.is_active:
            raise NotApplicable(_("This account is deactivated: reactivate it first."))
        try:
            return user.email, accounts.invite_account(invited_by=agent, user=user)
        except accounts.InvitationError:
            raise NotApplicable(_("This account is already set up: there is no invitation to send.")) from None
    elif action == Action.CHANGE_EMAIL:
        accounts.start_email_change(request=request, user=user, email=email)
        return email, None
    elif action == Action.ADD_MEMBERSHIP:
        if not user.is_clinician:
            raise NotApplicable(_("Only clinicians belong to care teams."))
        _membership, created = Membership.objects.get_or_create(team=team, user=user)
        if not created:
            raise NotApplicable(_("This clinician is already a member of this team."))
        return team.name, None
    elif action == Action.REMOVE_MEMBERSHIP:
        if not Membership.objects.filter(team=team, user=user).delete()[0]:
            raise NotApplicable(_("This clinician is not a member of this team."))
        return team.name, None
    elif action in (Action.MAKE_MANAGER, Action.REMOVE_MANAGER):
        manager = action == Action.MAKE_MANAGER
        if not Membership.objects.filter(team=team, user=user, is_manager=not manager).update(is_manager=manager):
            if manager:
                raise NotApplicable(_("This clinician already manages this team, or is not a member of it."))
            raise NotApplicable(_("This clinician does not manage this team."))
        return team.name, None
    else:
        raise ValueError(action)
    return "", None


def _audited(*, agent: User, action: str, reason: str, request_key, apply: Callable) -> Done:
    """Run ``apply`` and write its one audit row in one transaction; the patient concerned
    sees an account action in their access history (without the reason). ``apply``
    returns (account, patient, detail, code). Raises AlreadyDone when this confirmation
    (``request_key``) was already used, and lets NotApplicable through, changing nothing."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required")
    if SupportAction.objects.filter(request_key=request_key).exists():
        raise AlreadyDone
    try:
        with transaction.atomic():
            account, patient, detail, code = apply()
            row = SupportAction.objects.create(
                agent=agent,
                account=account,
                patient=patient,
                action=action,
                detail=detail,
                reason=reason,
                request_key=request_key,
            )
            patient = patient or getattr(account, "patient", None)
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
    return Done(row, code)


def act_on_account(
    *, agent: User, account: User, action: str, reason: str, request_key, request=None, team=None, email=None
) -> Done:
    """Carry out ``action`` on ``account`` for ``agent``, with the agent's ``reason``."""

    def apply():
        detail, code = _apply(action, account, agent=agent, request=request, team=team, email=email)
        return account, None, detail, code

    return _audited(agent=agent, action=action, reason=reason, request_key=request_key, apply=apply)


def invite_patient(*, agent: User, patient: Patient, email: str, reason: str, request_key) -> Done:
    """Invite a patient who has no login yet (a new link replaces an earlier one)."""

    def apply():
        try:
            accounts.invite_patient(invited_by=agent, patient=patient, email=email)
        except accounts.TooManyWrongProofs as refusal:
            raise NotApplicable(str(refusal)) from None
        except accounts.InvitationError:
            raise NotApplicable(_("This patient already has an account.")) from None
        return None, patient, email.strip().lower(), None

    return _audited(agent=agent, action=Action.INVITE, reason=reason, request_key=request_key, apply=apply)


def create_account(
    *, agent: User, role: str, email: str, first_name: str, last_name: str, teams=(), reason: str, request_key
) -> Done:
    """Make a clinician's account (with its team memberships), or, for a superuser, a
    support agent's, and invite its holder; the returned code is their second fact."""
    if role == User.Role.SUPPORT and not agent.is_superuser:
        raise PermissionError("only a superuser creates support agents")
    if role not in (User.Role.CLINICIAN, User.Role.SUPPORT):
        raise ValueError(role)

    def apply():
        user = User.objects.create_user(email, None, role=role, first_name=first_name, last_name=last_name)
        Membership.objects.bulk_create(Membership(team=team, user=user) for team in teams)
        code = accounts.invite_account(invited_by=agent, user=user)
        return user, None, ", ".join(team.name for team in teams), code

    return _audited(agent=agent, action=Action.CREATE_ACCOUNT, reason=reason, request_key=request_key, apply=apply)


def access_reports():
    """The cases patients opened about an access they do not recognise, open first.
    What support may see of them: who accessed, as what, for which team, when, and the
    kind of access; never the line's target (a document's title is health content)."""
    return (
        AccessReport.objects.select_related("patient", "access_log__actor", "access_log__team", "resolved_by")
        .defer("access_log__target")
        .order_by("status", "created_at")
    )


def answer_access_report(*, agent: User, report: AccessReport, answer: str, request_key) -> Done:
    """Close a case with ``answer``, which the patient reads; the answer is also the
    reason in the support trail (one audit row, a double submit acts once)."""

    from portal import jobs
    from portal.support import tasks

    def apply():
        locked = AccessReport.objects.select_for_update().get(pk=report.pk)
        if locked.status == AccessReport.Status.RESOLVED:
            raise NotApplicable(_("This case has already been answered."))
        locked.status = AccessReport.Status.RESOLVED
        locked.answer = answer.strip()
        locked.resolved_by = agent
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "answer", "resolved_by", "resolved_at"])
        jobs.enqueue_on_commit(tasks.tell_report_answered, locked.pk)
        return locked.patient.user, locked.patient, f"#{locked.pk}", None

    return _audited(agent=agent, action=Action.ANSWER_REPORT, reason=answer, request_key=request_key, apply=apply)


def tell_report_answered(*, report_id: int) -> bool:
    """Tell the patient, once and without the answer (it may name who read what), that
    support answered their report: they read it on their access history. The row is
    locked and marked in the same transaction as the send."""
    from django.urls import reverse

    from portal.mail import send_bilingual

    with transaction.atomic():
        reports = AccessReport.objects.select_for_update(of=("self",)).select_related("patient__user")
        report = reports.filter(pk=report_id).first()
        user = report.patient.user if report is not None else None
        if report is None or report.answer_emailed_at is not None or user is None or not user.is_active:
            return False
        send_bilingual(
            user.email, gettext_lazy("Support answered your report"), "support/email/report_answered.txt",
            {"url": f"{settings.SITE_URL}{reverse('records:access_history')}"},
        )  # fmt: skip
        report.answer_emailed_at = timezone.now()
        report.save(update_fields=["answer_emailed_at"])
    return True


def merge_candidates(patient: Patient):
    """Records that may be the same person as ``patient``: born the same day, with the
    same first name or the same last name (as ``folded_name`` compares them: case,
    accents, apostrophes, hyphens, spaces and dots aside). One indexed query."""
    return (
        Patient.objects.filter(birth_date=patient.birth_date)
        .filter(Q(first_folded=patient.first_folded) | Q(last_folded=patient.last_folded))
        .exclude(pk=patient.pk)
        .select_related("user")
        .order_by("last_name", "first_name", "pk")[:20]
    )


def merge_patients(*, agent: User, keep: Patient, duplicate: Patient, reason: str, request_key) -> Done:
    """Merge ``duplicate`` into ``keep`` (see ``portal.accounts.merge``): one audit row
    naming both records and what moved; the person sees a support action in their
    history. Refusals (``merge.MergeRefused``) change nothing."""
    from portal.accounts import merge

    def apply():
        try:
            moved = merge.merge(keep=keep, duplicate=duplicate)
        except merge.MergeRefused as refusal:
            raise NotApplicable(str(refusal)) from None
        what = ", ".join(f"{kind}: {count}" for kind, count in moved) or _("nothing")
        return keep.user, keep, f"#{duplicate.pk} → #{keep.pk} ({what})"[:254], None

    return _audited(agent=agent, action=Action.MERGE_PATIENTS, reason=reason, request_key=request_key, apply=apply)


def _registration_detail(team, registered) -> str:
    return f"{team.name} — {_('invited')}" if registered.invited else team.name


def register_patient(
    *, agent: User, team, identity, started_on, invite_email: str, none_of, reason: str, request_key
) -> Done:
    """Register a patient for ``team`` on a care team's behalf (see
    ``careteams.services.register_patient``: duplicates are refused the same way)."""
    from portal.careteams import services as careteams

    def apply():
        registered = careteams.register_patient(
            by=agent, team=team, identity=identity, started_on=started_on, invite_email=invite_email, none_of=none_of
        )
        return None, registered.patient, _registration_detail(team, registered), None

    return _audited(agent=agent, action=Action.REGISTER_PATIENT, reason=reason, request_key=request_key, apply=apply)


def link_patient(
    *, agent: User, team, identity, patient_pk: int, started_on, invite_email: str, reason: str, request_key
) -> Done:
    """Link to ``team`` the existing record the identity given matches."""
    from portal.careteams import services as careteams

    def apply():
        try:
            registered = careteams.link_existing_patient(
                by=agent, team=team, identity=identity, patient_pk=patient_pk, started_on=started_on,
                invite_email=invite_email,
            )  # fmt: skip
        except careteams.LinkBlocked as refusal:
            raise NotApplicable(str(refusal)) from None
        return None, registered.patient, _registration_detail(team, registered), None

    return _audited(agent=agent, action=Action.LINK_PATIENT, reason=reason, request_key=request_key, apply=apply)


# --- Contact requests ---


class TooManyRequests(Exception):
    """Too many contact requests from one address lately; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def submit_request(*, fields: dict, user: User | None, address: str, language: str, request_key) -> SupportRequest:
    """A contact request becomes a case (one per form, however often it is sent) and the
    person gets a receipt by email. At most SUPPORT_REQUESTS_PER_HOUR from one address."""
    from portal import jobs
    from portal.cache import over_limit
    from portal.support import tasks

    earlier = SupportRequest.objects.filter(request_key=request_key).first()
    if earlier is not None:
        return earlier
    retry_after = over_limit(f"support-request:{address}", settings.SUPPORT_REQUESTS_PER_HOUR, window=3600)
    if retry_after is not None:
        raise TooManyRequests(retry_after)
    try:
        with transaction.atomic():
            case = SupportRequest.objects.create(
                **fields,
                user=user if user and user.is_authenticated else None,
                language=language,
                request_key=request_key,
            )
            jobs.enqueue_on_commit(tasks.send_request_receipt, case.pk)
    except IntegrityError:  # the same form, sent at the same instant
        return SupportRequest.objects.get(request_key=request_key)
    return case


def support_requests():
    """The console's list: open cases first, oldest first within each."""
    return SupportRequest.objects.select_related("answered_by").order_by("status", "created_at", "pk")


def accounts_matching(case: SupportRequest):
    """Accounts the case may be about: the one it was sent from, and the one with its address."""
    return User.objects.filter(Q(pk=case.user_id) | Q(email__iexact=case.email)).order_by("pk")


def answer_request(*, agent: User, case: SupportRequest, answer: str) -> bool:
    """Answer a case: kept with it, emailed to the person. False when it was answered
    already (a double submit, or another agent first)."""
    from portal import jobs
    from portal.support import tasks

    with transaction.atomic():
        locked = SupportRequest.objects.select_for_update().get(pk=case.pk)
        if locked.status == SupportRequest.Status.ANSWERED:
            return False
        locked.status = SupportRequest.Status.ANSWERED
        locked.answer, locked.answered_by, locked.answered_at = answer, agent, timezone.now()
        locked.save(update_fields=["status", "answer", "answered_by", "answered_at"])
        jobs.enqueue_on_commit(tasks.send_request_answer, locked.pk)
    return True


def _send_once(case_id: int, sent_field: str, template: str, subject) -> bool:
    """Email the person once: the row is locked and marked in the same transaction as the
    send, so a retried task or a second worker sends nothing more."""
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import translation

    with transaction.atomic():
        case = SupportRequest.objects.select_for_update().filter(pk=case_id).first()
        if case is None or getattr(case, sent_field) is not None:
            return False
        with translation.override(case.language):
            body = render_to_string(template, {"case": case, "operator": settings.OPERATOR})
            send_mail(str(subject), body, None, [case.email])
        setattr(case, sent_field, timezone.now())
        case.save(update_fields=[sent_field])
    return True


def send_request_receipt(*, case_id: int) -> bool:
    return _send_once(
        case_id,
        "receipt_sent_at",
        "support/email/request_receipt.txt",
        gettext_lazy("Carnet support: we received your message"),
    )


def send_request_answer(*, case_id: int) -> bool:
    return _send_once(
        case_id, "answer_sent_at", "support/email/request_answer.txt", gettext_lazy("Carnet support: our answer")
    )


def add_representative(
    *, agent: User, patient: Patient, email: str, kind: str, proof: str, reason: str, request_key
) -> Done:
    """Add a parent or a legal representative to ``patient``'s record, with the kind of
    proof seen and the agent's reason (audited; the representative is told)."""
    from portal.representation import services as representation

    def apply():
        try:
            added = representation.add_representative(
                patient=patient, email=email, kind=kind, created_by=agent, proof=proof, reason=reason
            )
        except representation.RepresentationError as refusal:
            raise NotApplicable(str(refusal)) from None
        return added.representative, patient, f"{added.get_kind_display()} — {added.get_proof_display()}", None

    return _audited(agent=agent, action=Action.ADD_REPRESENTATIVE, reason=reason, request_key=request_key, apply=apply)


def end_representation(*, agent: User, representation, reason: str, request_key) -> Done:
    """End a representation, with the agent's reason (audited; both sides are told)."""
    from portal.representation import services as representation_services

    def apply():
        if not representation_services.end_representation(representation=representation, ended_by=agent, reason=reason):
            raise NotApplicable(_("This representation has already ended."))
        return representation.representative, representation.patient, representation.get_kind_display(), None

    return _audited(agent=agent, action=Action.END_REPRESENTATION, reason=reason, request_key=request_key, apply=apply)

"""Second-factor workflows: enrolment, verification, backup codes."""

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

import segno
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from portal import jobs
from portal.accounts.models import Invitation, Patient, SecurityEvent, User
from portal.mail import send_bilingual

logger = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
BACKUP_DEVICE_NAME = "backup"


def has_second_factor(*, user: User) -> bool:
    """Whether ``user`` can pass the second step: a confirmed passkey, app or email
    device, or backup codes left (a backup device whose codes are all used does not count)."""
    return bool(second_factor_kinds(user=user))


def start_totp_enrolment(*, user: User) -> TOTPDevice:
    """The pending (unconfirmed) authenticator-app device of ``user``, created on first call."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def start_email_enrolment(*, user: User) -> str:
    """Email a code to ``user``'s pending email device (created on first call). Returns
    "sent", or "wait" when a code went out moments ago (django-otp's cool-down)."""
    device = EmailDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = EmailDevice.objects.create(user=user, name="Email", confirmed=False)
    if not device.generate_is_allowed()[0]:
        return "wait"
    device.generate_challenge()
    return "sent"


def totp_qr_svg(*, device: TOTPDevice) -> str:
    """The provisioning URL of ``device`` as an inline SVG QR code (no external resource)."""
    # A viewBox and no fixed size: the stylesheet scales the whole code (a fixed width
    # would crop it, and a cropped code cannot be scanned).
    return segno.make(device.config_url, error="m").svg_inline(scale=5, title="QR code", omitsize=True)


def totp_secret_text(*, device: TOTPDevice) -> str:
    """The base32 secret of ``device``, in groups of four for typing by hand."""
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@transaction.atomic
def confirm_device(*, device: Device, token: str) -> bool:
    """Confirm a pending device when ``token`` is a valid code from it."""
    if not device.verify_token(token.strip().replace(" ", "")):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


@transaction.atomic
def generate_backup_codes(*, user: User) -> list[str]:
    """Replace ``user``'s backup codes with ten fresh single-use ones and return them."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


# The kinds of second factor checked with a typed code (a passkey signs a challenge instead:
# portal/accounts/passkeys.py).
SECOND_FACTOR_KINDS = {"app": TOTPDevice, "email": EmailDevice, "backup": StaticDevice}


def second_factor_kinds(*, user: User) -> list[str]:
    """The kinds of second factor ``user`` can sign in with now, in the page's order:
    passkey, app, email, backup codes (only while some are left)."""
    confirmed = {"user": user, "confirmed": True}
    kinds = ["passkey"] if WebAuthnCredential.objects.filter(**confirmed).exists() else []
    kinds += [kind for kind in ("app", "email") if SECOND_FACTOR_KINDS[kind].objects.filter(**confirmed).exists()]
    if StaticToken.objects.filter(device__user=user, device__confirmed=True).exists():
        kinds.append("backup")
    return kinds


def verify_second_factor(*, user: User, kind: str, token: str) -> Device | None:
    """The confirmed device of the ``kind`` ``user`` chose ("app", "email" or "backup")
    that accepts ``token``, if any. Only devices of that kind are tried, so a wrong
    backup code counts against the backup codes (django-otp's per-device throttle)
    and never locks the authenticator app or the email codes.
    A TOTP code is accepted once only; a backup code is consumed."""
    token = (token or "").strip().replace(" ", "")
    model = SECOND_FACTOR_KINDS.get(kind)
    if not token or model is None:
        return None
    for device in model.objects.filter(user=user, confirmed=True).order_by("pk"):
        if device.verify_token(token):
            return device
    return None


def send_email_code(*, user: User) -> str:
    """Email a one-time code to each confirmed email device of ``user`` that may send
    one now. Returns "sent", "wait" (a code went out moments ago: django-otp's
    cool-down), "failed" (the mail server did not take it) or "none" (no email device)."""
    devices = list(EmailDevice.objects.filter(user=user, confirmed=True))
    ready = [device for device in devices if device.generate_is_allowed()[0]]
    sent = False
    for device in ready:
        try:
            device.generate_challenge()  # sent at once: the person waits for it
        except OSError:  # the mail server refused or did not answer (smtplib's errors are OSErrors)
            logger.warning("a second-factor code could not be emailed to user %s", user.pk, exc_info=True)
        else:
            sent = True
    if ready:
        return "sent" if sent else "failed"
    return "wait" if devices else "none"


class LastDeviceError(Exception):
    """Removing this device would leave the account without a second factor."""


class DeviceNotFound(Exception):
    """No such device among the user's own."""


# Removed from the account page's list by their persistent id; passkeys have pages of their own.
REMOVABLE_DEVICE_MODELS = {model.model_label(): model for model in (TOTPDevice, EmailDevice)}


def second_factor_devices(*, user: User) -> list[Device]:
    """The confirmed passkeys, authenticator-app and email devices of ``user`` (backup codes apart)."""
    return [
        *passkeys_of(user=user),
        *TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
        *EmailDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
    ]


def passkeys_of(*, user: User):
    """``user``'s confirmed passkeys, oldest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def _remove_second_factor(user: User, devices, pk) -> Device:
    # One removal at a time per account: two at once (two tabs) must not both see
    # two second factors left and leave none.
    User.objects.select_for_update().filter(pk=user.pk).first()
    device = devices.filter(user=user, pk=pk).first() if str(pk).isdecimal() else None
    if device is None:
        raise DeviceNotFound
    if len(second_factor_devices(user=user)) <= 1:
        raise LastDeviceError
    device.delete()
    return device


@transaction.atomic
def remove_device(*, user: User, persistent_id: str) -> Device:
    """Remove one of ``user``'s app or email devices; never the last second factor (raises
    ``LastDeviceError``). A device that is not ``user``'s raises ``DeviceNotFound``, as one
    that does not exist."""
    label, _, pk = (persistent_id or "").rpartition("/")
    model = REMOVABLE_DEVICE_MODELS.get(label)
    if model is None:
        raise DeviceNotFound
    return _remove_second_factor(user, model.objects.all(), pk)


def get_passkey_for(*, user: User, pk: int) -> WebAuthnCredential:
    """``user``'s own passkey ``pk``; ``DeviceNotFound`` for another's, as for none."""
    device = passkeys_of(user=user).filter(pk=pk).first()
    if device is None:
        raise DeviceNotFound
    return device


@transaction.atomic
def remove_passkey(*, user: User, pk: int) -> WebAuthnCredential:
    """Remove ``user``'s passkey ``pk`` (its attestation goes with it); never the last
    second factor (``LastDeviceError``); another's or none: ``DeviceNotFound``."""
    return _remove_second_factor(user, passkeys_of(user=user), pk)


def rename_passkey(*, user: User, pk: int, name: str) -> WebAuthnCredential:
    """Give ``user``'s passkey ``pk`` the name ``name`` (shown on their account page only)."""
    device = get_passkey_for(user=user, pk=pk)
    device.name = name
    device.save(update_fields=["name"])
    return device


def backup_codes_left(*, user: User) -> int:
    """How many unused backup codes ``user`` has."""
    return StaticToken.objects.filter(device__user=user).count()


def signed_in_sessions(*, user: User) -> list:
    """``user``'s sessions still signed in, most recently seen first, in two queries
    whatever their number (allauth's ``purge_and_list`` reads each session and its user
    again: three queries per session). A session that expired, ended, or whose sign-in a
    password change made void is not listed, and its allauth row goes, as allauth's own
    purge does."""
    from allauth.usersessions.models import UserSession
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils.crypto import constant_time_compare

    rows = list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))
    live = Session.objects.filter(
        session_key__in=[row.session_key for row in rows], expire_date__gt=timezone.now()
    ).values_list("session_key", "session_data")
    current_hash, store = user.get_session_auth_hash(), SessionStore()
    signed_in = set()
    for key, data in live:
        decoded = store.decode(data)
        if decoded.get(SESSION_KEY) == str(user.pk) and constant_time_compare(
            decoded.get(HASH_SESSION_KEY, ""), current_hash
        ):
            signed_in.add(key)
    gone = [row.pk for row in rows if row.session_key not in signed_in]
    if gone:  # nothing written in steady state
        UserSession.objects.filter(pk__in=gone).delete()
    return [row for row in rows if row.session_key in signed_in]


DEVICE_KEY = "carnet_device"


def _device_of(user_agent: str) -> dict:
    """The browser and system a user-agent string names ("Other" when unknown), by
    ua-parser (its native resolver, ua-parser-rs). The rules load on the first call
    in a process; each session is parsed once (see ``name_session_devices``)."""
    import ua_parser

    result = ua_parser.parse(user_agent or "")
    browser = result.user_agent.family if result.user_agent else "Other"
    system = result.os.family if result.os else "Other"
    return {"browser": browser, "os": system}


def device_name(device: dict) -> str:
    """« Chrome sur Linux », in the reader's language; what is unknown is said so."""
    browser = device.get("browser") if device.get("browser") != "Other" else None
    system = device.get("os") if device.get("os") != "Other" else None
    if browser and system:
        return _("%(browser)s on %(os)s") % {"browser": browser, "os": system}
    return browser or system or str(_("Unknown device"))


def name_session_device(session) -> None:
    """Parse the session's user-agent into its device, once: kept in the row's data with
    a short hash of the user-agent it came from (a new browser string is parsed again)."""
    ua = hashlib.sha256(session.user_agent.encode()).hexdigest()[:16]
    if session.data.get(DEVICE_KEY, {}).get("ua") != ua:
        session.data = {**session.data, DEVICE_KEY: {**_device_of(session.user_agent), "ua": ua}}
        session.save(update_fields=["data"])


def name_session_devices(sessions) -> list:
    """``sessions`` (allauth's rows), each with ``device_name`` set. Sessions are named
    when their activity is noted (see SessionLifetimeMiddleware); a row from before that,
    or whose browser changed, is named here, once."""
    for session in sessions:
        name_session_device(session)
        session.device_name = device_name(session.data[DEVICE_KEY])
    return sessions


def clear_expired_sessions() -> int:
    """Retention: delete expired sessions (Django keeps them until told) and allauth's
    rows for every session that no longer exists. Returns how many sessions went."""
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session

    expired, _by_model = Session.objects.filter(expire_date__lte=timezone.now()).delete()
    UserSession.objects.exclude(session_key__in=Session.objects.values("session_key")).delete()
    return expired


def end_session(*, user: User, pk: int) -> bool:
    """End one of ``user``'s sessions (any device). False when it is not theirs or gone."""
    from allauth.usersessions.models import UserSession

    session = UserSession.objects.filter(user=user, pk=pk).first()
    if session is None:
        return False
    session.end()
    return True


def end_other_sessions(*, user: User, current_key: str | None) -> int:
    """End every session of ``user`` except ``current_key`` (all of them when it is None)."""
    from allauth.usersessions.models import UserSession

    sessions = UserSession.objects.filter(user=user).exclude(session_key=current_key or "")
    count = 0
    for session in sessions:
        session.end()
        count += 1
    return count


def unlock_account(*, email: str) -> int:
    """Lift the sign-in lockout of the account ``email`` (support staff); returns the
    number of failure records removed, from every address."""
    from axes.utils import reset

    return reset(username=email.strip().lower())


@transaction.atomic
def deactivate_user(*, user: User) -> None:
    """Deactivate ``user``: sign-in refused from now on, every session ended at once."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    end_other_sessions(user=user, current_key=None)


# Security notices: what changed, never any health content.
SECURITY_NOTICE_SUBJECTS = {
    "password_changed": _("Your Carnet password has been changed"),
    "password_set": _("Your Carnet password has been changed"),
    "password_reset": _("Your Carnet password has been reset"),
    "email_changed": _("The email address of your Carnet account has been changed"),
    "device_added": _("A second factor has been added to your Carnet account"),
    "device_removed": _("A second factor has been removed from your Carnet account"),
    "passkey_added": _("A passkey has been added to your Carnet account"),
    "passkey_removed": _("A passkey has been removed from your Carnet account"),
    "new_sign_in": _("New sign-in to your Carnet account"),
    "second_factor_reset": _("The second factor of your Carnet account has been reset"),
    "email_change_started": _("A change of the email address of your Carnet account has been requested"),
}


def record_security_event(*, user: User, kind: str, ip: str | None = None) -> SecurityEvent:
    """Note ``kind`` in the account's recent security events (its holder's account page)."""
    return SecurityEvent.objects.create(user=user, kind=SecurityEvent.Kind(kind), ip=ip)


def email_security_notice(*, user: User, kind: str, email: str | None = None) -> None:
    """Email ``user`` (or ``email``, e.g. the old address) the notice ``kind``, through
    Celery once the current transaction commits. Alone, for what support does: the
    support trail already lists it on the account page."""
    from portal.accounts.tasks import send_security_notice as task

    if kind not in SECURITY_NOTICE_SUBJECTS:
        raise ValueError(kind)
    jobs.enqueue_on_commit(task, user.pk, kind, email)


def notify_security_event(*, user: User, kind: str, email: str | None = None, ip: str | None = None) -> None:
    """Record that ``kind`` happened to the account and email its holder about it."""
    email_security_notice(user=user, kind=kind, email=email)
    record_security_event(user=user, kind=kind, ip=ip)


class AccountEvent(NamedTuple):
    at: datetime
    label: str
    ip: str | None


def recent_security_events(*, user: User, limit: int = 10) -> list[AccountEvent]:
    """The latest ``limit`` security events of ``user``, support actions on the account
    included (by label, never with the agent's reason), newest first."""
    from portal.support.models import SupportAction

    events = [AccountEvent(e.at, e.get_kind_display(), e.ip) for e in SecurityEvent.objects.filter(user=user)[:limit]]
    actions = SupportAction.objects.filter(account=user).only("at", "action").order_by("-at")[:limit]
    events += [AccountEvent(a.at, _("Support: %(action)s") % {"action": a.get_action_display()}, None) for a in actions]
    return sorted(events, key=lambda event: event.at, reverse=True)[:limit]


def send_security_notice(*, user: User, kind: str, email: str | None = None) -> None:
    """Send the security notice ``kind`` to ``user`` now, in French and English."""
    send_bilingual(
        email or user.email,
        SECURITY_NOTICE_SUBJECTS[kind],
        "accounts/email/security_notice.txt",
        {"kind": kind, "site_url": settings.SITE_URL, "user": user},
    )


INVITATION_LIFETIME = timedelta(hours=72)


def address_in_use(email: str, account: User | None = None) -> bool:
    """Whether another account than ``account`` signs in with, or has verified, ``email``."""
    from allauth.account.models import EmailAddress

    users = User.objects.filter(email__iexact=email)
    addresses = EmailAddress.objects.filter(email__iexact=email, verified=True)
    if account is not None:
        users, addresses = users.exclude(pk=account.pk), addresses.exclude(user=account)
    return users.exists() or addresses.exists()


class InvitationError(Exception):
    """The invitation cannot be used: unknown, expired, already used or worn out."""


class AddressTaken(InvitationError):
    """Since the invitation was sent, its address has become another account's."""


class TooManyWrongProofs(InvitationError):
    """This patient's links have had too many wrong birth dates lately: no new link yet."""

    def __str__(self):
        return str(
            _(
                "Too many wrong birth dates were given for this patient in the last 24 hours: "
                "a new invitation can be sent tomorrow."
            )
        )


# Wrong birth dates count per patient over a day, whatever the link: sending a new
# link does not buy five more guesses (a birth date has few possible values).
PROOF_WINDOW = timedelta(hours=24)


def _recent_wrong_proofs(patient: Patient) -> int:
    """Wrong birth dates on this patient's links of the last day. A new link starts
    with the count of the one it replaces, so the newest holds the running total."""
    since = timezone.now() - PROOF_WINDOW
    return patient.invitations.filter(created_at__gte=since).aggregate(n=Max("failed_attempts"))["n"] or 0


class WrongProof(InvitationError):
    """The birth date or the code does not match; ``attempts_left`` more may be tried."""

    def __init__(self, attempts_left: int):
        super().__init__(attempts_left)
        self.attempts_left = attempts_left


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _revoke_pending(invitations) -> None:
    """End the links that are still usable: a new invitation replaces them."""
    invitations.usable().update(expires_at=timezone.now())


@transaction.atomic
def invite_patient(*, invited_by: User, patient: Patient, email: str) -> Invitation:
    """Invite ``patient`` (who has no login yet) to create one; the link is emailed after
    commit and an earlier link of theirs stops working. The caller has checked that
    ``invited_by`` may: a clinician through ``portal.access``, or support staff."""
    from portal.accounts.tasks import send_invitation

    if patient.user_id is not None:
        raise InvitationError
    Patient.objects.select_for_update().get(pk=patient.pk)  # one new link at a time per patient
    wrong = _recent_wrong_proofs(patient)
    if wrong >= Invitation.MAX_PROOF_ATTEMPTS:
        raise TooManyWrongProofs
    _revoke_pending(patient.invitations.all())
    invitation = Invitation.objects.create(
        email=email.strip().lower(),
        role=User.Role.PATIENT,
        patient=patient,
        invited_by=invited_by,
        expires_at=timezone.now() + INVITATION_LIFETIME,
        failed_attempts=wrong,
    )
    jobs.enqueue_on_commit(send_invitation, invitation.pk)
    return invitation


def new_verification_code() -> str:
    """Eight digits, in two groups, read out to the invitee by support staff."""
    code = f"{secrets.randbelow(10**8):08d}"
    return f"{code[:4]} {code[4:]}"


def _normalized_code(code: str) -> str:
    return "".join(ch for ch in code or "" if ch.isdecimal())


@transaction.atomic
def invite_account(*, invited_by: User, user: User) -> str:
    """Invite the holder of ``user``, an account made ahead that has no password yet, to
    set one. The link goes by email after commit; the returned code is for support staff
    to give by another channel (phone, in person). An earlier link stops working."""
    from portal.accounts.tasks import send_invitation

    if user.has_usable_password() or not user.is_active:
        raise InvitationError
    _revoke_pending(user.invitations.all())
    code = new_verification_code()
    invitation = Invitation.objects.create(
        email=user.email,
        role=user.role,
        user=user,
        invited_by=invited_by,
        code_hash=make_password(_normalized_code(code)),
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    jobs.enqueue_on_commit(send_invitation, invitation.pk)
    return code


def pending_invitation(*, user: User | None = None, patient: Patient | None = None) -> Invitation | None:
    """The invitation of an account made ahead, or of a patient without login, that can still be used."""
    invitations = user.invitations if user is not None else patient.invitations
    return invitations.usable().order_by("-created_at").first()


def send_invitation_email(*, invitation: Invitation) -> None:
    """Issue a fresh link token for ``invitation`` (an older link stops working) and email it."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _token_hash(token)
    invitation.save(update_fields=["token_hash"])
    url = settings.SITE_URL + reverse("accounts:accept_invitation", args=[token])
    send_bilingual(
        invitation.email, _("Your invitation to Carnet"), "accounts/email/invitation.txt",
        {"url": url, "invitation": invitation},
    )  # fmt: skip


def get_usable_invitation(*, token: str) -> Invitation:
    """The invitation behind a link token; ``InvitationError`` when unknown, used, expired or worn out."""
    invitation = Invitation.objects.filter(token_hash=_token_hash(token or "")).first()
    if invitation is None or not invitation.is_usable():
        raise InvitationError
    return invitation


def _proof_matches(invitation: Invitation, proof) -> bool:
    if invitation.needs_code:
        code = _normalized_code(str(proof or ""))
        return bool(code) and check_password(code, invitation.code_hash)
    patient = invitation.patient
    return patient is not None and patient.birth_date == proof


def accept_invitation(*, token: str, proof, password: str) -> User:
    """Give the invitee their login: a new one for a patient, the one made ahead otherwise.
    ``proof`` is the patient's birth date, or the code support staff gave. A wrong proof
    changes nothing but the count of attempts (``WrongProof``); anything else wrong
    raises ``InvitationError``."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token_hash=_token_hash(token or "")).first()
        if invitation is None or not invitation.is_usable():
            raise InvitationError
        if _proof_matches(invitation, proof):
            return _give_login(invitation, password)
        invitation.failed_attempts += 1
        invitation.save(update_fields=["failed_attempts"])
    raise WrongProof(Invitation.MAX_PROOF_ATTEMPTS - invitation.failed_attempts)


def _give_login(invitation: Invitation, password: str) -> User:
    from allauth.account.models import EmailAddress

    user, patient = invitation.user, invitation.patient
    if user is not None:
        if not user.is_active or user.has_usable_password():
            raise InvitationError
        user.set_password(password)
        user.save(update_fields=["password"])
    else:
        if patient is None or patient.user_id is not None:
            raise InvitationError
        if address_in_use(invitation.email):
            raise AddressTaken
        user = User.objects.create_user(
            invitation.email, password, role=invitation.role, first_name=patient.first_name, last_name=patient.last_name
        )
        patient.user = user
        patient.save(update_fields=["user"])
    # The link reached this address: it is verified.
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    return user


def start_email_change(*, request, user: User, email: str) -> None:
    """Support staff, at the holder's request: send a confirmation link to ``email``. Once
    it is followed the address replaces the current one (``finish_email_change``) and the
    old address gets a notice; until then the holder signs in with the current one."""
    from allauth.account.models import EmailAddress
    from allauth.core.context import request_context

    EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"primary": True})
    EmailAddress.objects.filter(user=user, verified=False).exclude(email__iexact=user.email).delete()
    address = EmailAddress.objects.create(user=user, email=email.lower())
    # Codes by email keep going to the current address: a change asked over the phone
    # must not also hand over the second factor (password reset + codes = the account).
    EmailDevice.objects.filter(Q(email__isnull=True) | Q(email=""), user=user).update(email=user.email)

    def send_link():
        with request_context(request):  # allauth builds the link from the request
            address.send_confirmation(request)

    transaction.on_commit(send_link)
    email_security_notice(user=user, kind="email_change_started")


def finish_email_change(*, email_address) -> bool:
    """Called when ``email_address`` has just been confirmed. When it is now the sign-in
    address (allauth makes it so for an account with no main address), or a support agent
    set it at the holder's request, it becomes the account's address and the other
    addresses are told; a support change also drops them. Otherwise it stays an extra
    address until the holder makes it the main one (allauth then sends the notice)."""
    from allauth.account.models import EmailAddress

    from portal.support.models import SupportAction

    user = User.objects.get(pk=email_address.user_id)
    email = email_address.email.lower()
    asked = SupportAction.objects.filter(account=user, action=SupportAction.Action.CHANGE_EMAIL).first()
    by_support = asked is not None and asked.detail == email
    if not by_support and user.email.lower() != email:
        return False
    others = list(EmailAddress.objects.filter(user=user).exclude(pk=email_address.pk))
    email_address.set_as_primary()
    if by_support:
        EmailAddress.objects.filter(pk__in=[a.pk for a in others]).delete()
    for old in others:
        notify_security_event(user=user, kind="email_changed", email=old.email)
    return True


def wants_notice(*, user: User, kind: str, channel: str = "email") -> bool:
    """Whether ``user`` wants to be told of ``kind`` news on ``channel`` (yes unless turned off)."""
    from portal.accounts.models import NoticePreference

    return not NoticePreference.objects.filter(user=user, kind=kind, channel=channel, enabled=False).exists()


def notice_preferences(*, user: User) -> dict[tuple[str, str], bool]:
    """Every (kind, channel) with whether ``user`` wants it, in one query."""
    from portal.accounts.models import NoticePreference

    chosen = dict(
        ((kind, channel), enabled)
        for kind, channel, enabled in NoticePreference.objects.filter(user=user).values_list(
            "kind", "channel", "enabled"
        )
    )
    return {(kind, channel): chosen.get((kind, channel), True) for kind, channel in NoticePreference.offered()}


@transaction.atomic
def set_notice_preferences(*, user: User, wanted: dict[tuple[str, str], bool]) -> None:
    """Record ``user``'s choices, per kind and channel."""
    from portal.accounts.models import NoticePreference

    for (kind, channel), enabled in wanted.items():
        NoticePreference.objects.update_or_create(
            user=user, kind=kind, channel=channel, defaults={"enabled": bool(enabled)}
        )

from urllib.parse import urlencode

import django_otp
from allauth.account.decorators import reauthentication_required
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token, rotate_token
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from portal import access
from portal.accounts import backends, services
from portal.accounts.forms import AcceptInvitationForm, CodeForm, EnrolCodeForm, PasskeyNameForm
from portal.accounts.models import NoticePreference, User
from portal.idempotency import idempotent
from portal.redirects import safe_next

# Backup codes are kept in the session only until the user has seen them.
BACKUP_CODES_SESSION_KEY = "carnet_new_backup_codes"


def _next_url(request) -> str:
    return safe_next(request, request.POST.get("next") or request.GET.get("next") or "")


def _may_enrol(request) -> bool:
    """A new device may be added by a verified session, or by a first-time user who has none:
    never by a password-only session of someone who already has a second factor."""
    return request.user.is_verified() or not services.has_second_factor(user=request.user)


def _pass_second_factor(request, device):
    """Mark the session as verified by ``device``, under a new session key: a key
    seen before the second factor (by someone looking over a shoulder, or planted
    by an attacker) must not become a fully signed-in session."""
    django_otp.login(request, device)
    request.session.cycle_key()
    rotate_token(request)  # as Django's login() does for the first step


def finish_enrolment(request, device, kind="device_added") -> str:
    """The new ``device`` is confirmed: the session passes the second factor with it, the
    holder is told, and the URL to go to next is returned (the backup codes, the first time)."""
    _pass_second_factor(request, device)
    services.notify_security_event(user=request.user, kind=kind)
    # The first second factor comes with backup codes; a later one keeps the existing codes.
    if not StaticToken.objects.filter(device__user=request.user).exists():
        request.session[BACKUP_CODES_SESSION_KEY] = services.generate_backup_codes(user=request.user)
        return f"{resolve_url('accounts:backup_codes')}?{urlencode({'next': _next_url(request)})}"
    messages.success(request, _("Your new second factor is ready."))
    return _next_url(request)


def _finish_enrolment(request, device):
    return redirect(finish_enrolment(request, device))


def _here(request) -> str:
    """This page again, keeping where to go afterwards: the answer to a form that only
    sends something (an email code), so that sending the same form twice sends once."""
    return f"{request.path}?{urlencode({'next': _next_url(request)})}"


def passkey_config(request) -> dict:
    """What django-otp-webauthn's script reads (from a JSON block, no inline script):
    where the ceremonies are, the CSRF token, where the page's ``next`` field is."""
    return {
        "beginRegistrationUrl": reverse("accounts:passkey_register_begin"),
        "completeRegistrationUrl": f"{reverse('accounts:passkey_register_complete')}?"
        + urlencode({"next": _next_url(request)}),
        "beginAuthenticationUrl": reverse("accounts:passkey_verify_begin"),
        "completeAuthenticationUrl": reverse("accounts:passkey_verify_complete"),
        "autocompleteLoginFieldSelector": None,
        "nextFieldSelector": "input[name='next']",
        "csrfToken": get_token(request),
    }


KNOWN_BROWSER_COOKIE = "carnet_known_browser"
KNOWN_BROWSER_SALT = "carnet.known-browser"


def _remember_browser(request, response):
    """A full sign-in from a browser this account never used sends a notice; the browser
    is then remembered by a signed cookie holding account ids (no personal data)."""
    known = request.get_signed_cookie(KNOWN_BROWSER_COOKIE, default="", salt=KNOWN_BROWSER_SALT)
    ids = [i for i in known.split(",") if i]
    ip = get_client_ip_address(request)
    if str(request.user.pk) in ids:
        services.record_security_event(user=request.user, kind="signed_in", ip=ip)
    else:
        services.notify_security_event(user=request.user, kind="new_sign_in", ip=ip)
        ids = [*ids[-4:], str(request.user.pk)]
        response.set_signed_cookie(
            KNOWN_BROWSER_COOKIE,
            ",".join(ids),
            salt=KNOWN_BROWSER_SALT,
            max_age=365 * 24 * 3600,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def verify(request):
    """Second step of sign-in: the person chooses a kind (a passkey, a code from the app,
    from an email, or a backup code), and only devices of that kind check the code."""
    if request.user.is_verified():
        return redirect(_next_url(request))
    kinds = services.second_factor_kinds(user=request.user)
    if not kinds:
        return redirect(f"{resolve_url('accounts:enrol')}?{urlencode({'next': _next_url(request)})}")
    forms = {kind: CodeForm(kind=kind) for kind in kinds if kind != "passkey"}
    if request.method == "POST" and request.POST.get("action") == "send-email" and "email" in kinds:
        sent = services.send_email_code(user=request.user)
        if sent == "sent":
            messages.info(request, _("A code has been sent to your email address. It is valid for 10 minutes."))
        elif sent == "failed":
            messages.error(
                request,
                _(
                    "The code could not be emailed just now: our email service is not answering. "
                    "Ask again in a few minutes, or use another second factor if you have one."
                ),
            )
        elif sent == "wait":
            messages.warning(
                request, _("A code was sent less than a minute ago: check your inbox, or ask again in a moment.")
            )
        return redirect(_here(request))
    elif request.method == "POST" and request.POST.get("kind") in forms:
        kind = request.POST["kind"]
        form = forms[kind] = CodeForm(request.POST, kind=kind)
        if form.is_valid():
            device = services.verify_second_factor(user=request.user, kind=kind, token=form.cleaned_data["code"])
            if device is not None:
                _pass_second_factor(request, device)
                return _remember_browser(request, redirect(_next_url(request)))
            form.add_error(
                "code",
                _(
                    "This code is not valid: it may be wrong, expired or already used. "
                    "After several attempts, wait a few seconds before trying again."
                ),
            )
    context = {
        "forms": forms,
        "next": _next_url(request),
        "passkey": passkey_config(request) if "passkey" in kinds else None,
    }
    return render(request, "accounts/verify.html", context)


@login_required
@require_GET
def enrol(request):
    """Choose a second factor: an authenticator app or codes by email."""
    if not _may_enrol(request):
        return redirect(f"{resolve_url('accounts:verify')}?{urlencode({'next': _next_url(request)})}")
    return render(request, "accounts/enrol.html", {"next": _next_url(request)})


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def enrol_totp(request):
    """Authenticator app: show the QR code and the secret, confirm with a first code."""
    if not _may_enrol(request):
        return redirect(f"{resolve_url('accounts:verify')}?{urlencode({'next': _next_url(request)})}")
    device = services.start_totp_enrolment(user=request.user)
    form = EnrolCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.confirm_device(device=device, token=form.cleaned_data["code"]):
            return _finish_enrolment(request, device)
        form.add_error(
            "code",
            _(
                "This code is not valid. Check the time on your phone and try the next code; "
                "after a wrong code, wait a few seconds."
            ),
        )
    context = {
        "form": form,
        "qr_svg": services.totp_qr_svg(device=device),
        "secret": services.totp_secret_text(device=device),
        "next": _next_url(request),
    }
    return render(request, "accounts/enrol_totp.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def enrol_email(request):
    """Codes by email: send a first code to the account's address, confirm with it."""
    if not _may_enrol(request):
        return redirect(f"{resolve_url('accounts:verify')}?{urlencode({'next': _next_url(request)})}")
    form = EnrolCodeForm()
    if request.method == "POST" and request.POST.get("action") == "send-email":
        if services.start_email_enrolment(user=request.user) == "sent":
            messages.info(request, _("A code has been sent to your email address. It is valid for 10 minutes."))
        else:
            messages.warning(
                request, _("A code was sent less than a minute ago: check your inbox, or ask again in a moment.")
            )
        return redirect(_here(request))
    elif request.method == "POST":
        form = EnrolCodeForm(request.POST)
        device = request.user.emaildevice_set.filter(confirmed=False).order_by("pk").first()
        if form.is_valid():
            if device is not None and services.confirm_device(device=device, token=form.cleaned_data["code"]):
                return _finish_enrolment(request, device)
            form.add_error("code", _("This code is not valid: it may be wrong or expired. Ask for a new one."))
    return render(request, "accounts/enrol_email.html", {"form": form, "next": _next_url(request)})


@login_required
@require_GET
def enrol_passkey(request):
    """A passkey: the browser (or phone, or security key) makes one when the button is
    pressed (django-otp-webauthn's script, then portal/accounts/passkeys.py)."""
    if not _may_enrol(request):
        return redirect(f"{resolve_url('accounts:verify')}?{urlencode({'next': _next_url(request)})}")
    return render(
        request, "accounts/enrol_passkey.html", {"next": _next_url(request), "passkey": passkey_config(request)}
    )


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def backup_codes(request):
    """The new backup codes, shown once: leaving the page forgets them."""
    codes = request.session.get(BACKUP_CODES_SESSION_KEY)
    if request.method == "POST":
        request.session.pop(BACKUP_CODES_SESSION_KEY, None)
        return redirect(_next_url(request))
    return render(request, "accounts/backup_codes.html", {"codes": codes, "next": _next_url(request)})


@login_required
@require_GET
def backup_codes_download(request):
    """The backup codes being shown, as a text file."""
    codes = request.session.get(BACKUP_CODES_SESSION_KEY)
    if not codes:
        raise Http404
    text = _("Carnet backup codes for %(email)s. Each code works once.") % {"email": request.user.email}
    response = HttpResponse("\n".join([text, "", *codes, ""]), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="carnet-backup-codes.txt"'
    return response


def _notice_rows(user):
    chosen = services.notice_preferences(user=user)
    # A cell is None where the channel is not offered for that kind.
    return [
        (
            kind,
            label,
            [(channel, name, chosen.get((kind, channel))) for channel, name in NoticePreference.Channel.choices],
        )
        for kind, label in NoticePreference.Kind.choices
    ]


@login_required
@require_GET
def security(request):
    """The account page: password, second factors, backup codes, sessions, recent security events."""
    sessions = services.name_session_devices(services.signed_in_sessions(user=request.user))
    devices = services.second_factor_devices(user=request.user)
    passkeys = [d for d in devices if isinstance(d, WebAuthnCredential)]
    others = [d for d in devices if not isinstance(d, WebAuthnCredential)]
    context = {
        "devices": [(d, isinstance(d, TOTPDevice)) for d in others],
        "passkeys": passkeys,
        "factor_count": len(devices),
        "has_email_codes": any(isinstance(d, EmailDevice) for d in others),
        "backup_codes_left": services.backup_codes_left(user=request.user),
        "sessions": sessions,
        "current_key": request.session.session_key,
        "events": services.recent_security_events(user=request.user),
        "notices": _notice_rows(request.user) if request.user.is_patient else [],
        "channels": NoticePreference.Channel.choices,
    }
    return render(request, "accounts/security.html", context)


@login_required
@require_POST
@reauthentication_required
@idempotent
def remove_device(request):
    """Remove a second factor (never the last one), after a fresh password check."""
    try:
        services.remove_device(user=request.user, persistent_id=request.POST.get("device", ""))
    except services.DeviceNotFound:
        raise Http404 from None
    except services.LastDeviceError:
        messages.error(request, _("This is your only second factor: add another one before removing it."))
    else:
        services.notify_security_event(user=request.user, kind="device_removed")
        messages.success(request, _("The second factor has been removed."))
    return redirect("accounts:security")


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def rename_passkey(request, pk):
    """Name one of the holder's passkeys (another's: 404)."""
    try:
        device = services.get_passkey_for(user=request.user, pk=pk)
    except services.DeviceNotFound:
        raise Http404 from None
    form = PasskeyNameForm(request.POST or None, initial={"name": device.name})
    if request.method == "POST" and form.is_valid():
        services.rename_passkey(user=request.user, pk=device.pk, name=form.cleaned_data["name"])
        messages.success(request, _("The passkey has been renamed."))
        return redirect(reverse("accounts:security") + "#passkeys-title")
    return render(request, "accounts/rename_passkey.html", {"form": form, "device": device})


@login_required
@require_POST
@reauthentication_required
@idempotent
def remove_passkey(request, pk):
    """Remove one of the holder's passkeys (never their last second factor), after a fresh
    password check; another's: 404."""
    try:
        services.remove_passkey(user=request.user, pk=pk)
    except services.DeviceNotFound:
        raise Http404 from None
    except services.LastDeviceError:
        messages.error(request, _("This is your only second factor: add another one before removing it."))
    else:
        services.notify_security_event(user=request.user, kind="passkey_removed")
        messages.success(request, _("The passkey has been removed."))
    return redirect(reverse("accounts:security") + "#passkeys-title")


@login_required
@require_POST
@idempotent
def regenerate_backup_codes(request):
    request.session[BACKUP_CODES_SESSION_KEY] = services.generate_backup_codes(user=request.user)
    return redirect(f"{resolve_url('accounts:backup_codes')}?next={resolve_url('accounts:security')}")


@login_required
@require_POST
@idempotent
def end_session(request, pk):
    if not services.end_session(user=request.user, pk=pk):
        raise Http404
    messages.success(request, _("The session has been ended."))
    return redirect("accounts:security")


@login_required
@require_POST
@idempotent
def end_other_sessions(request):
    services.end_other_sessions(user=request.user, current_key=request.session.session_key)
    messages.success(request, _("All your other sessions have been ended."))
    return redirect("accounts:security")


@require_http_methods(["GET", "POST"])
@idempotent
def accept_invitation(request, token):
    """The emailed link: prove who you are (birth date, or the code support staff gave),
    choose a password, then enrol a second factor. A few wrong proofs end the link."""
    try:
        invitation = services.get_usable_invitation(token=token)
    except services.InvitationError:
        return render(request, "accounts/invitation_invalid.html", status=410)
    form = AcceptInvitationForm(request.POST or None, email=invitation.email, needs_code=invitation.needs_code)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.accept_invitation(
                token=token, proof=form.cleaned_data[form.proof_field], password=form.cleaned_data["password1"]
            )
        except services.WrongProof as wrong:
            if not wrong.attempts_left:
                return render(request, "accounts/invitation_invalid.html", {"worn_out": True}, status=410)
            mismatch = (
                _("This code is not the one we gave you.")
                if invitation.needs_code
                else _("This birth date does not match our records.")
            )
            left = ngettext("%(count)d attempt left.", "%(count)d attempts left.", wrong.attempts_left) % {
                "count": wrong.attempts_left
            }
            form.add_error(form.proof_field, f"{mismatch} {left}")
        except services.AddressTaken:
            return render(request, "accounts/invitation_invalid.html", {"address_taken": True}, status=410)
        except services.InvitationError:
            return render(request, "accounts/invitation_invalid.html", status=410)
        else:
            login(request, user, backend=backends.MODEL_BACKEND)
            return redirect("accounts:enrol")
    return render(request, "accounts/accept_invitation.html", {"form": form, "invitation": invitation})


@access.role_required(User.Role.PATIENT)
@require_POST
@idempotent
def notice_preferences(request):
    """Which news the patient is told of, per kind and channel (on the account page)."""
    wanted = {(kind, channel): f"{kind}-{channel}" in request.POST for kind, channel in NoticePreference.offered()}
    services.set_notice_preferences(user=request.user, wanted=wanted)
    messages.success(request, _("Your preferences have been saved."))
    return redirect(reverse("accounts:security") + "#notices-title")

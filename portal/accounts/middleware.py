from urllib.parse import urlencode

from allauth.usersessions.models import UserSession
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.middleware import get_user
from django.http import HttpResponse
from django.shortcuts import redirect, resolve_url
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.middleware import OTPMiddleware
from django_otp.models import Device

from portal.accounts.services import has_second_factor, name_session_device
from portal.keyed_rows import KeyedRow

# The only pages a signed-in session that has not passed the second factor may reach.
PUBLIC_URL_NAMES = frozenset(
    {
        "account_login",
        "account_logout",
        "account_reset_password",
        "account_reset_password_done",
        "account_reset_password_from_key",
        "account_reset_password_from_key_done",
        "healthz",
        "help",
        "privacy",
        "terms",
        "accessibility",
        "set_language",
        "accounts:verify",
        "accounts:enrol",
        "accounts:enrol_totp",
        "accounts:enrol_email",
        "accounts:enrol_passkey",
        "accounts:passkey_register_begin",
        "accounts:passkey_register_complete",
        "accounts:passkey_verify_begin",
        "accounts:passkey_verify_complete",
        "accounts:passkey_jsi18n",
        "accounts:accept_invitation",
    }
)


def is_public(path: str, names=PUBLIC_URL_NAMES) -> bool:
    """Whether ``path`` is on the allow-list ``names`` (by default, the pages reachable
    before the second factor). The FHIR API is on every allow-list: it is not a session page at all
    (bearer tokens only, no sign-in)."""
    if path.startswith(settings.STATIC_URL):
        return True
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.view_name in names or match.namespace == "fhir" or getattr(match.func, "fhir_api", False)


class SecondFactorDeviceMiddleware(OTPMiddleware):
    """django-otp's: ``request.user.is_verified()`` and ``otp_device``, from the device
    the session's second factor was passed with, read at every request (removing a
    device takes effect at once) by ``portal.keyed_rows`` instead of a query built anew.
    django-otp then checks, as always, that it is the user's and confirmed.

    ``request.user`` is the user itself, not django-otp's lazy wrapper around Django's:
    the session-lifetime check below reads it on every request anyway, and a page's
    hundreds of reads through both wrappers cost about 460 Python calls on the dashboard."""

    _rows = {}

    def _install_lazy_accessors(self, request):
        super()._install_lazy_accessors(request)  # request.auser, and the lazy user replaced below
        if hasattr(request, "user"):
            request.user = self._verify_user_sync(request, get_user(request))

    def _device_from_persistent_id(self, persistent_id):
        label, _slash, pk = self._normalize_persistent_id(persistent_id).rpartition("/")
        try:
            model = apps.get_model(label)
            pk = int(pk)
        except (ValueError, LookupError):
            return None
        if not issubclass(model, Device):
            return None
        rows = self._rows.get(model) or self._rows.setdefault(model, KeyedRow(model))
        return rows.get(pk)


class SecondFactorRequiredMiddleware:
    """Every page but the allow-list refuses a session that has not passed the second
    factor: it is sent to the verify page, or to enrolment when it has no device yet."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not user.is_verified() and not is_public(request.path_info):
            target = "accounts:verify" if has_second_factor(user=user) else "accounts:enrol"
            response = redirect(target)
            if request.method == "GET":
                response["Location"] += "?" + urlencode({"next": request.get_full_path()})
            return response
        return self.get_response(request)


TERMS_SESSION_KEY = "carnet_terms_version"
# Reachable before the terms are accepted: the terms themselves, what a person may
# need to decide (the other public pages, signing out, the language), and the backup
# codes shown once right after enrolling a second factor.
BEFORE_TERMS_URL_NAMES = PUBLIC_URL_NAMES | {"terms_accept", "accounts:backup_codes", "accounts:backup_codes_download"}


class TermsAcceptedMiddleware:
    """Past the second factor, a person who has not accepted the terms of use in force
    is sent to accept them first (once per version; recorded)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and user.is_verified()
            and request.session.get(TERMS_SESSION_KEY) != settings.TERMS_VERSION
            and not is_public(request.path_info, BEFORE_TERMS_URL_NAMES)
        ):
            from portal.models import TermsAcceptance

            if TermsAcceptance.objects.filter(user=user, version=settings.TERMS_VERSION).exists():
                request.session[TERMS_SESSION_KEY] = settings.TERMS_VERSION
            elif is_background(request):
                return HttpResponse(status=204)
            else:
                response = redirect("terms_accept")
                if request.method == "GET":
                    response["Location"] += "?" + urlencode({"next": request.get_full_path()})
                return response
        return self.get_response(request)


SIGNED_IN_AT_SESSION_KEY = "carnet_signed_in_at"
ACTIVE_AT_SESSION_KEY = "carnet_active_at"


def is_background(request) -> bool:
    """A request the page made by itself (a conversation polling for new messages),
    not something the person did: it never counts as activity."""
    return request.headers.get("X-Carnet-Background") == "1"


class SessionLifetimeMiddleware:
    """A session ends ``SESSION_IDLE_TIMEOUT`` after the person's last own request,
    and ``SESSION_ABSOLUTE_LIFETIME`` after sign-in however active it is.

    Background refreshes are not activity, so a tab left open on a conversation
    still times out. Activity is written to the session (and to the sessions list's
    "last seen") at most once per ``SESSION_ACTIVITY_INTERVAL``: in steady state a
    signed-in request writes nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        now = timezone.now().timestamp()
        if request.user.is_authenticated:
            if self._expired(request.session, now):
                logout(request)
                messages.info(request, _("Your session has expired. Please sign in again."))
                if is_background(request):
                    # htmx follows HX-Redirect: the page leaves the screen instead of staying open.
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = resolve_url(settings.LOGIN_URL)
                    return response
                return redirect(settings.LOGIN_URL)
            self._note_activity(request, now)
        response = self.get_response(request)
        if request.user.is_authenticated and SIGNED_IN_AT_SESSION_KEY not in request.session:
            self._note_activity(request, now)  # signed in by this very request
        return response

    @staticmethod
    def _note_activity(request, now):
        session = request.session
        first = SIGNED_IN_AT_SESSION_KEY not in session
        if first:
            session[SIGNED_IN_AT_SESSION_KEY] = now
        interval = settings.SESSION_ACTIVITY_INTERVAL.total_seconds()
        if first or (not is_background(request) and now - session.get(ACTIVE_AT_SESSION_KEY, 0) >= interval):
            session[ACTIVE_AT_SESSION_KEY] = now
            UserSession.objects.create_from_request(request)  # last seen, address, browser
            if first:  # the device's name for the sessions list, parsed once per session
                row = UserSession.objects.filter(session_key=session.session_key).first()
                if row is not None:
                    name_session_device(row)

    @staticmethod
    def _expired(session, now) -> bool:
        signed_in_at = session.get(SIGNED_IN_AT_SESSION_KEY)
        if signed_in_at is None:
            return False
        active_at = session.get(ACTIVE_AT_SESSION_KEY, signed_in_at)
        return (
            now - signed_in_at > settings.SESSION_ABSOLUTE_LIFETIME.total_seconds()
            or now - active_at > settings.SESSION_IDLE_TIMEOUT.total_seconds()
        )

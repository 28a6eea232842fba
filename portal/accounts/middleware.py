from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.services import has_second_factor

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
        "set_language",
        "accounts:verify",
        "accounts:enrol",
        "accounts:enrol_totp",
        "accounts:enrol_email",
        "accounts:accept_invitation",
    }
)


def is_public(path: str) -> bool:
    """Whether ``path`` is on the allow-list of pages reachable before the second factor."""
    if path.startswith(settings.STATIC_URL):
        return True
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.view_name in PUBLIC_URL_NAMES


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


SIGNED_IN_AT_SESSION_KEY = "carnet_signed_in_at"


class SessionLifetimeMiddleware:
    """A session lasts at most ``SESSION_ABSOLUTE_LIFETIME`` after sign-in, however
    active it is (the idle timeout is the session cookie age)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            signed_in_at = request.session.get(SIGNED_IN_AT_SESSION_KEY)
            now = timezone.now().timestamp()
            if signed_in_at is not None and now - signed_in_at > settings.SESSION_ABSOLUTE_LIFETIME.total_seconds():
                logout(request)
                messages.info(request, _("Your session has expired. Please sign in again."))
                return redirect(settings.LOGIN_URL)
        response = self.get_response(request)
        # Set on the first response of a signed-in session (the sign-in itself, or force_login).
        if request.user.is_authenticated and SIGNED_IN_AT_SESSION_KEY not in request.session:
            request.session[SIGNED_IN_AT_SESSION_KEY] = timezone.now().timestamp()
        return response

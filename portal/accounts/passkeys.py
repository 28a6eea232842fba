"""Passkeys (WebAuthn) as a second factor, with django-otp-webauthn.

A passkey is one more kind of django-otp device: it is listed, counted and removed
with the others (portal/accounts/services.py), and never replaces the password
(``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False``). Its two ceremonies (make one,
sign with one) are JSON calls made by the library's script; the views below are the
library's, with Carnet's rules around them:

- user verification (the device's PIN, fingerprint or face) is required both when the
  passkey is made and at each sign-in: a passkey then stands for two factors by itself
  (something one has, and something one knows or is), which is what the README's
  assurance-level section relies on;
- a passkey is added by a session that has passed the second factor, or by a person
  who has none yet (the same rule as the app and the email codes);
- passing the second factor with a passkey does what a code does: a new session key
  and CSRF token, a notice from a new browser, the page asked for next.

Each challenge lives in the session and is taken out before it is checked, so a
ceremony's answer counts once; a credential is unique (its hash is), so one sent twice
makes one passkey.
"""

import logging

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.http.request import split_domain_port
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp_webauthn import exceptions
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)
from webauthn.helpers.structs import UserVerificationRequirement

from portal.accounts import services
from portal.accounts.views import _next_url, _pass_second_factor, _remember_browser, finish_enrolment

# A refused ceremony is logged (the library's reason, no personal data) under the library's name.
LOGGER = logging.getLogger("django_otp_webauthn")


class PasskeyHelper(WebAuthnHelper):
    """django-otp-webauthn's ceremonies with user verification required, origins taken
    from the request when none are configured, and a default name for a new passkey."""

    def get_generate_registration_options_kwargs(self, *, user):
        options = super().get_generate_registration_options_kwargs(user=user)
        options["authenticator_selection"].user_verification = UserVerificationRequirement.REQUIRED
        return options

    def get_generate_authentication_options_kwargs(self, *, user=None, require_user_verification):
        # The library asks for no verification when a password was given first; we always do.
        return super().get_generate_authentication_options_kwargs(user=user, require_user_verification=True)

    def get_allowed_origins(self) -> list[str]:
        """WEBAUTHN_ORIGINS when set; else the request's own origin (its host has passed
        ALLOWED_HOSTS) when that host is the RP ID or one of its subdomains; else none,
        and the ceremony fails."""
        configured = super().get_allowed_origins()
        if configured:
            return list(configured)
        host, _port = split_domain_port(self.request.get_host())
        rp_id = self.get_relying_party_domain()
        if rp_id and (host == rp_id or host.endswith("." + rp_id)):
            return [f"{self.request.scheme}://{self.request.get_host()}"]
        return []

    def create_credential(self, user, response, parsed_credential, original_data):
        device = super().create_credential(user, response, parsed_credential, original_data)
        number = services.passkeys_of(user=user).count() + 1
        device.name = _("Passkey %(number)d") % {"number": number}
        return device


class _SignedInOnly:
    """Both ceremonies are for a session that has given the password (sign-in) or more."""

    def get_user(self):
        user = self.request.user
        return user if user.is_authenticated and user.is_active else None


class _MayEnrol(_SignedInOnly):
    """The same rule as the other enrolment pages: a session that has not passed the
    second factor may add one only when the person has none yet."""

    messages = {"user_not_verified": gettext_lazy("Sign in with your current second factor first.")}

    def user_is_mfa_enrolled(self, user) -> bool:
        return services.has_second_factor(user=user)


class RegisterBegin(_MayEnrol, BeginCredentialRegistrationView):
    pass


class RegisterComplete(_MayEnrol, CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        user = self.get_user()
        state = self.get_state()
        with rewrite_exceptions(logger=LOGGER):
            try:
                with transaction.atomic():
                    device = self.get_helper().register_complete(user=user, state=state, data=self.request.data)
            except IntegrityError:  # the same credential again (sent twice): it is already saved
                raise exceptions.InvalidState(detail=_("This passkey is already registered.")) from None
        next_url = finish_enrolment(self.request, device, kind="passkey_added")
        return JsonResponse({"id": device.pk, "redirect_url": next_url})


class _SignInWithPasskey(_SignedInOnly):
    def check_can_authenticate(self):
        user = self.get_user()
        if user is None:
            raise exceptions.NotAuthenticated(detail=_("Sign in with your password first."))
        if not services.passkeys_of(user=user).exists():
            raise exceptions.CredentialNotFound(detail=_("There is no passkey on this account."))


class VerifyBegin(_SignInWithPasskey, BeginCredentialAuthenticationView):
    pass


class VerifyComplete(_SignInWithPasskey, CompleteCredentialAuthenticationView):
    def post(self, *args, **kwargs):
        user = self.get_user()
        state = self.get_state()
        with rewrite_exceptions(logger=LOGGER):
            device = self.get_helper().authenticate_complete(user=user, state=state, data=self.request.data)
        self.check_device_usable(device)
        _pass_second_factor(self.request, device)
        response = JsonResponse({"id": device.pk, "redirect_url": _next_url(self.request)})
        return _remember_browser(self.request, response)

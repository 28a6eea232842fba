"""A passkey made and used in Chromium, with its virtual authenticator (DevTools'
WebAuthn domain): the library's script, our static files, the strict CSP, the real
ceremonies end to end."""

import pytest
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, sign_out
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def virtual_authenticator(page):
    """A platform authenticator that keeps passkeys and checks its user (as a phone's
    fingerprint would), answering at once."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools


def test_a_passkey_is_made_then_signs_in(page, patient):
    user = patient.user
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, user)
    virtual_authenticator(page)

    page.goto("/accounts/security/")
    page.get_by_role("link", name="Ajouter une clé d’accès").click()
    page.get_by_role("button", name="Créer une clé d’accès").click()
    # The first passkey of someone without backup codes leads to their new codes.
    expect(page.get_by_role("heading", name="Codes de secours", exact=True)).to_be_visible()
    device = WebAuthnCredential.objects.get(user=user)
    assert device.last_used_at is None
    page.goto("/accounts/security/")
    row = page.locator("#passkeys-title ~ .table-wrap tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Clé d’accès 1")
    expect(row).to_contain_text("Jamais")

    sign_out(page)
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Deuxième étape de la connexion")).to_be_visible()
    page.get_by_role("button", name="Utiliser ma clé d’accès").click()
    expect(page.get_by_role("heading", name="Bonjour Camille")).to_be_visible()
    device.refresh_from_db()
    assert device.last_used_at is not None and device.sign_count >= 1
    assert list(user.security_events.values_list("kind", flat=True))[:2] == ["signed_in", "passkey_added"]
    assert csp_errors == []

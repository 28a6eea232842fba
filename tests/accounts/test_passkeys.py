"""Passkeys as a second factor: enrol one, sign in with it, list, rename and remove
them; every ceremony answered by a software passkey (tests/accounts/authenticator.py)."""

import json
import re

import pytest
from django.core import mail
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp_webauthn.models import WebAuthnCredential

from portal.accounts.models import SecurityEvent
from portal.accounts.services import generate_backup_codes
from tests.accounts.authenticator import SoftPasskey, b64url
from tests.conftest import reauthenticate, second_factor_of
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db

ORIGIN = "http://testserver"


@pytest.fixture(autouse=True)
def relying_party(settings):
    """The test client's host is the relying party (in the browser test, "localhost")."""
    settings.OTP_WEBAUTHN_RP_ID = "testserver"


def post_json(client, name, data=None, query=""):
    return client.post(reverse(name) + query, json.dumps(data or {}), content_type="application/json")


def enrol(client, passkey, next_url="/accounts/security/"):
    """Run the registration ceremony as the enrolment page's script does."""
    options = post_json(client, "accounts:passkey_register_begin").json()
    return post_json(client, "accounts:passkey_register_complete", passkey.create(options), f"?next={next_url}")


def sign_in_with(client, passkey, next_url="/my/"):
    """Run the sign-in ceremony as the second-step page's script does."""
    options = post_json(client, "accounts:passkey_verify_begin").json()
    return post_json(client, "accounts:passkey_verify_complete", passkey.get(options), f"?next={next_url}")


def is_verified(client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def passkey_of(user, client, login) -> tuple[SoftPasskey, WebAuthnCredential]:
    """``user`` enrols a passkey from a signed-in session (then signs out)."""
    passkey = SoftPasskey(ORIGIN)
    login(user)
    assert enrol(client, passkey).status_code == 200
    client.logout()
    return passkey, WebAuthnCredential.objects.filter(user=user).latest("pk")


def test_enrol_a_passkey_then_sign_in_with_it(client, login, patient, django_capture_on_commit_callbacks):
    user = patient.user
    login(user)
    generate_backup_codes(user=user)  # kept: a second factor added later shows none
    passkey = SoftPasskey(ORIGIN)
    options = post_json(client, "accounts:passkey_register_begin").json()
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["rp"] == {"id": "testserver", "name": "Carnet"}
    with django_capture_on_commit_callbacks(execute=True):
        answer = post_json(client, "accounts:passkey_register_complete", passkey.create(options), "?next=/my/")
    assert answer.status_code == 200, answer.content
    device = WebAuthnCredential.objects.get(user=user)
    assert device.name == "Clé d’accès 1" and device.confirmed
    assert answer.json()["redirect_url"] == "/my/"
    assert list(user.security_events.values_list("kind", flat=True)) == ["passkey_added"]
    notice = mail.outbox[-1]
    assert notice.to == [user.email] and "clé d’accès" in notice.subject.lower()
    assert "Camille" not in notice.body and "Durand" not in notice.body  # content-free

    client.logout()
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    page = client.get(reverse("accounts:verify") + "?next=/my/").content.decode()
    assert 'id="passkey-verification-button"' in page and 'id="otp_webauthn_config"' in page
    # The library's script comes from our static files, as a file: nothing inline runs.
    assert re.search(r'<script src="/static/django_otp_webauthn/otp_webauthn_auth\.js" type="module"', page)
    assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>", page)
    before = client.session.session_key
    options = post_json(client, "accounts:passkey_verify_begin").json()
    assert options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(passkey.credential_id)]
    answer = post_json(client, "accounts:passkey_verify_complete", passkey.get(options), "?next=/my/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["redirect_url"] == "/my/"
    assert is_verified(client) and client.session.session_key != before
    assert client.get("/my/").status_code == 200
    device.refresh_from_db()
    assert device.last_used_at is not None


def test_the_first_second_factor_can_be_a_passkey(client, password_only_login):
    user = PatientFactory().user
    password_only_login(user)
    page = client.get(reverse("accounts:enrol")).content.decode()
    assert reverse("accounts:enrol_passkey") in page
    assert client.get(reverse("accounts:enrol_passkey")).status_code == 200
    answer = enrol(client, SoftPasskey(ORIGIN), next_url="/my/")
    assert answer.status_code == 200
    assert answer.json()["redirect_url"].startswith(reverse("accounts:backup_codes"))
    assert is_verified(client)
    assert StaticToken.objects.filter(device__user=user).count() == 10


def test_a_password_only_session_cannot_add_a_passkey_to_an_account_that_has_a_factor(
    client, password_only_login, patient
):
    second_factor_of(patient.user)
    password_only_login(patient)
    assert client.get(reverse("accounts:enrol_passkey"))["Location"].startswith(reverse("accounts:verify"))
    answer = post_json(client, "accounts:passkey_register_begin")
    assert answer.status_code == 403
    assert not WebAuthnCredential.objects.exists()


def test_a_passkey_that_does_not_verify_its_user_is_refused(client, login, password_only_login, patient):
    login(patient)
    unverified = SoftPasskey(ORIGIN, verifies_user=False)
    assert enrol(client, unverified).status_code == 422
    assert not WebAuthnCredential.objects.exists()

    passkey, _device = passkey_of(patient.user, client, login)
    password_only_login(patient)
    passkey.verifies_user = False  # the same passkey, its PIN or fingerprint skipped
    assert sign_in_with(client, passkey).status_code == 422
    assert not is_verified(client)


def test_a_passkey_from_another_site_is_refused(client, login, password_only_login, patient):
    passkey, _device = passkey_of(patient.user, client, login)
    password_only_login(patient)
    passkey.origin = "https://carnet-connexion.example"  # a look-alike site relaying the ceremony
    assert sign_in_with(client, passkey).status_code == 422
    assert not is_verified(client)


def test_another_persons_passkey_does_not_pass_my_second_factor(
    client, login, password_only_login, patient, other_patient
):
    mine, _ = passkey_of(patient.user, client, login)
    theirs, _ = passkey_of(other_patient.user, client, login)
    password_only_login(patient)
    assert sign_in_with(client, theirs).status_code == 403
    assert not is_verified(client)
    assert sign_in_with(client, mine).status_code == 200


def test_a_signed_answer_counts_once(client, login, password_only_login, patient):
    passkey, _device = passkey_of(patient.user, client, login)
    password_only_login(patient)
    options = post_json(client, "accounts:passkey_verify_begin").json()
    answer = passkey.get(options)
    client.post(reverse("account_logout"))
    password_only_login(patient)
    assert post_json(client, "accounts:passkey_verify_complete", answer).status_code == 400  # no challenge pending
    assert not is_verified(client)


def test_the_ceremonies_need_a_signed_in_person_with_a_passkey(client, password_only_login, patient):
    assert post_json(client, "accounts:passkey_verify_begin").status_code == 403  # no password given
    second_factor_of(patient.user)
    password_only_login(patient)
    assert post_json(client, "accounts:passkey_verify_begin").status_code == 404  # no passkey
    assert 'id="passkey-verification-button"' not in client.get(reverse("accounts:verify")).content.decode()


def test_the_account_page_lists_passkeys_with_their_dates(client, login, patient):
    _passkey, device = passkey_of(patient.user, client, login)
    login(patient)
    html = client.get(reverse("accounts:security")).content.decode()
    passkeys = html.split('id="passkeys-title"')[1].split("</section>")[0]
    assert "Clé d’accès 1" in passkeys and "Jamais" in passkeys  # never used to sign in yet
    assert 'data-label="Ajoutée le"' in passkeys and 'class="table-stack"' in passkeys
    assert reverse("accounts:rename_passkey", args=[device.pk]) in passkeys
    assert reverse("accounts:remove_passkey", args=[device.pk]) in passkeys  # the email codes remain


def test_a_passkey_is_renamed(client, login, patient):
    _passkey, device = passkey_of(patient.user, client, login)
    login(patient)
    url = reverse("accounts:rename_passkey", args=[device.pk])
    assert 'value="Clé d’accès 1"' in client.get(url).content.decode()
    empty = client.post(url, {"name": "  "})
    assert empty.status_code == 200 and "error-summary" in empty.content.decode()
    assert client.post(url, {"name": "Téléphone"})["Location"].startswith(reverse("accounts:security"))
    device.refresh_from_db()
    assert device.name == "Téléphone"


def test_a_passkey_is_removed_after_a_fresh_password(client, login, patient, django_capture_on_commit_callbacks):
    _passkey, device = passkey_of(patient.user, client, login)
    login(patient)
    url = reverse("accounts:remove_passkey", args=[device.pk])
    assert client.post(url)["Location"].startswith(reverse("account_reauthenticate"))
    assert WebAuthnCredential.objects.exists()
    reauthenticate(client)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, follow=True)
    assert "La clé d’accès a été supprimée." in response.content.decode()
    assert not WebAuthnCredential.objects.exists()
    assert patient.user.security_events.first().kind == SecurityEvent.Kind.PASSKEY_REMOVED
    assert [m.to for m in mail.outbox] == [[patient.user.email]]


def test_the_last_second_factor_is_never_removed_even_a_passkey(client, login, patient):
    _passkey, device = passkey_of(patient.user, client, login)
    patient.user.emaildevice_set.all().delete()  # the passkey is all that is left
    login_device = device
    client.force_login(patient.user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = login_device.persistent_id
    session.save()
    reauthenticate(client)
    html = client.get(reverse("accounts:security")).content.decode()
    assert reverse("accounts:remove_passkey", args=[device.pk]) not in html and "votre seul second facteur" in html
    response = client.post(reverse("accounts:remove_passkey", args=[device.pk]), follow=True)
    assert "votre seul second facteur" in response.content.decode()
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()


@pytest.mark.parametrize(
    ("method", "route", "data"),
    [("get", "accounts:rename_passkey", {}), ("post", "accounts:rename_passkey", {"name": "À moi"}),
     ("post", "accounts:remove_passkey", {})],
)  # fmt: skip
def test_someone_elses_passkey_is_404(client, login, patient, other_patient, method, route, data):
    _passkey, theirs = passkey_of(other_patient.user, client, login)
    passkey_of(patient.user, client, login)
    login(patient)
    reauthenticate(client)
    response = getattr(client, method)(reverse(route, args=[theirs.pk]), data)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Clé d’accès 1"


def test_support_reset_removes_passkeys_too(client, login, support, patient):
    from tests.support.test_console import act

    passkey_of(patient.user, client, login)
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    assert "Clé d’accès" in page
    act(client, patient.user, "reset_second_factor")
    assert not WebAuthnCredential.objects.filter(user=patient.user).exists()
    assert not patient.user.emaildevice_set.exists()

"""Second factor for every role: enrolment, verification, backup codes, the URL walk."""

import base64
import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.middleware import PUBLIC_URL_NAMES, is_public
from portal.accounts.models import User
from tests.conftest import second_factor_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def is_verified(client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


# --- the URL walk ----------------------------------------------------------------

SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000000", "path": "x"}


def _sample_regex(regex: str) -> str:
    def group(match):
        body = match.group(2)
        words = body.split("|")
        return words[0] if all(re.fullmatch(r"[\w-]+", w) for w in words) else "1"

    text = re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", group, regex)
    return text.replace("^", "").replace("$", "").replace("\\", "")


def _sample_route(route: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), route)


def _sample(pattern) -> str:
    text = str(pattern.pattern)
    return _sample_regex(text) if text.startswith("^") or "(?P<" in text else _sample_route(text)


def walk(patterns=None, prefix="/"):
    """Every URL pattern of the project, with its parameters filled with dummy values."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        url = prefix + _sample(pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, url)
        elif isinstance(pattern, URLPattern):
            yield url


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@example.org", "a long enough password 42")


@pytest.mark.parametrize("who", ["patient", "clinician", "support", "superuser"])
def test_password_only_session_reaches_nothing_but_the_allow_list(request, client, password_only_login, who):
    user = request.getfixturevalue(who)
    user = getattr(user, "user", user)
    second_factor_of(user)
    if who == "patient":  # an unread message, which the badge would count
        from messaging.services import start_conversation

        start_conversation(
            author=request.getfixturevalue("clinician"), patient=request.getfixturevalue("patient"),
            team=request.getfixturevalue("team"), subject="Résultats", body="Bonjour", kind="question",
        )  # fmt: skip
    password_only_login(user)
    urls = sorted(set(walk()))
    assert len(urls) > 40  # the walk really walks: allauth, admin, our apps
    for expected in ["/my/", "/care/patients/1/", "/support/", "/admin/"]:
        assert expected in urls
    public, refused = [], []
    for url in urls:
        try:
            name = resolve(url).view_name
        except Exception:  # a dummy value that no route accepts: still must not answer 200
            name = None
        response = client.get(url)
        # The security headers are on every answer, refused or not.
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert "no-store" in response["Cache-Control"], url
        if name in PUBLIC_URL_NAMES:
            # Before the second factor a page says nothing of whose account it is:
            # no name, no navigation, no unread badge (a password alone tells nothing more).
            body = response.content.decode(errors="replace")
            assert not [part for part in (user.first_name, user.last_name) if part and part in body], url
            assert 'class="main-nav"' not in body and 'class="badge"' not in body, url
            public.append(url)
            continue
        if is_public(url):  # the FHIR API: no session page, a bearer token or nothing
            assert url.startswith("/fhir") and response.status_code in {200, 401, 404, 405}, url  # 404: no such address
            assert url == "/fhir/metadata" or response.status_code != 200, url
            continue
        assert response.status_code != 200, url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("accounts:verify")), url
        refused.append(url)
    assert len(refused) > 30 and public


def test_unverified_session_is_sent_to_verify_with_next(client, password_only_login, patient):
    second_factor_of(patient.user)
    password_only_login(patient)
    response = client.get(reverse("patient_home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify") + "?next=%2Fmy%2F"


def test_user_without_device_is_sent_to_enrolment(client, password_only_login, patient):
    password_only_login(patient)
    response = client.get("/", follow=True)
    assert response.request["PATH_INFO"] == reverse("accounts:enrol")
    assert response.status_code == 200


def test_real_sign_in_then_second_factor(client, patient):
    from tests.factories import PASSWORD

    second_factor_of(patient.user)
    response = client.post(reverse("account_login"), {"login": patient.user.email, "password": PASSWORD}, follow=True)
    assert response.request["PATH_INFO"] == reverse("accounts:verify")
    assert not is_verified(client)
    # Not "signed in successfully": the sign-in is not complete yet.
    assert "réussie" not in response.content.decode() and not list(response.context["messages"])
    # No "remember me": the session cookie ends with the browser (and after 30 idle minutes).
    assert 'name="remember"' not in client.get(reverse("account_login")).content.decode()
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""
    assert client.session.get_expire_at_browser_close()


# --- TOTP enrolment --------------------------------------------------------------


def test_totp_enrolment_shows_qr_and_secret_then_backup_codes(client, password_only_login, patient):
    password_only_login(patient)
    page = client.get(reverse("accounts:enrol_totp"))
    html = page.content.decode()
    assert "<svg" in html and "<img" not in html.split('id="main"')[1]
    svg = html.split("<svg", 1)[1].split(">", 1)[0]
    assert "viewBox=" in svg and "width=" not in svg  # scaled by the stylesheet as a whole, never cropped
    device = TOTPDevice.objects.get(user=patient.user, confirmed=False)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key

    response = client.post(reverse("accounts:enrol_totp"), {"code": code_for(device), "next": "/my/"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:backup_codes"))
    device.refresh_from_db()
    assert device.confirmed and is_verified(client)

    codes_page = client.get(response["Location"]).content.decode()
    codes = list(StaticToken.objects.filter(device__user=patient.user).values_list("token", flat=True))
    assert len(codes) == 10
    assert all(code in codes_page for code in codes)
    download = client.get(reverse("accounts:backup_codes_download"))
    assert download["Content-Disposition"].startswith("attachment")
    assert all(code in download.content.decode() for code in codes)
    # Shown once: after "continue", neither the page nor the download has them.
    done = client.post(reverse("accounts:backup_codes"), {"next": "/my/"})
    assert done["Location"] == "/my/"
    assert not any(code in client.get(reverse("accounts:backup_codes")).content.decode() for code in codes)
    assert client.get(reverse("accounts:backup_codes_download")).status_code == 404
    assert client.get("/my/").status_code == 200


def test_wrong_enrolment_code_is_refused_on_the_same_page(client, password_only_login, patient):
    password_only_login(patient)
    client.get(reverse("accounts:enrol_totp"))
    response = client.post(reverse("accounts:enrol_totp"), {"code": "000000"})
    assert response.status_code == 200
    assert "Ce code n’est pas valide" in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert not is_verified(client)


def test_password_only_session_cannot_add_a_device(client, password_only_login, patient):
    second_factor_of(patient.user)
    password_only_login(patient)
    for name in ["accounts:enrol", "accounts:enrol_totp", "accounts:enrol_email"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:verify"))
    assert not TOTPDevice.objects.exists()


# --- verification ----------------------------------------------------------------


@pytest.fixture
def totp_device(patient):
    return TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)


@time_machine.travel("2026-03-01 10:00:00 +0000", tick=False)
def test_totp_code_signs_in_once_and_a_replay_is_refused(client, password_only_login, patient, totp_device):
    password_only_login(patient)
    code = code_for(totp_device)
    response = client.post(reverse("accounts:verify"), {"kind": "app", "code": code, "next": "/my/"})
    assert response["Location"] == "/my/"
    assert is_verified(client)

    client.logout()
    password_only_login(patient)
    replay = client.post(reverse("accounts:verify"), {"kind": "app", "code": code})
    assert replay.status_code == 200
    assert "Ce code n’est pas valide" in replay.content.decode()
    assert not is_verified(client)


def test_wrong_code_message_in_english(client, password_only_login, patient, totp_device):
    password_only_login(patient)
    response = client.post(reverse("accounts:verify"), {"kind": "app", "code": "12"}, headers={"accept-language": "en"})
    assert response.status_code == 200
    assert "This code is not valid" in response.content.decode()


def test_empty_code_is_a_field_error_not_a_500(client, password_only_login, patient, totp_device):
    password_only_login(patient)
    response = client.post(reverse("accounts:verify"), {"kind": "app", "code": ""})
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()


def test_email_code_signs_in(client, password_only_login, patient):
    second_factor_of(patient.user)
    password_only_login(patient)
    page = client.post(reverse("accounts:verify"), {"action": "send-email"}, follow=True)
    assert "Un code a été envoyé" in page.content.decode()
    message = mail.outbox[-1]
    assert message.to == [patient.user.email]
    assert "Camille" not in message.body  # no personal or health content
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    response = client.post(reverse("accounts:verify"), {"kind": "email", "code": code, "next": "/my/"})
    assert response["Location"] == "/my/"
    assert client.get("/my/").status_code == 200


def test_asking_again_within_the_cool_down_says_so_and_sends_nothing(client, password_only_login, patient):
    second_factor_of(patient.user)
    password_only_login(patient)
    client.post(reverse("accounts:verify"), {"action": "send-email"}, follow=True)
    again = client.post(reverse("accounts:verify"), {"action": "send-email"}, follow=True).content.decode()
    assert "Il est valable 10 minutes." not in again
    assert "moins d’une minute" in again
    assert len(mail.outbox) == 1


def test_email_enrolment(client, password_only_login):
    user = UserFactory(role=User.Role.SUPPORT)
    password_only_login(user)
    client.post(reverse("accounts:enrol_email"), {"action": "send-email"})
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    wrong = client.post(reverse("accounts:enrol_email"), {"code": "999999" if code != "999999" else "111111"})
    assert "Ce code n’est pas valide" in wrong.content.decode()
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):  # past the throttle after the wrong try
        response = client.post(reverse("accounts:enrol_email"), {"code": code})
    assert response["Location"].startswith(reverse("accounts:backup_codes"))
    assert user.emaildevice_set.get().confirmed
    assert StaticToken.objects.filter(device__user=user).count() == 10


def test_backup_code_works_once(client, password_only_login, patient, totp_device):
    from portal.accounts.services import generate_backup_codes

    code = generate_backup_codes(user=patient.user)[0]
    password_only_login(patient)
    assert client.post(reverse("accounts:verify"), {"kind": "backup", "code": code})["Location"] == "/"
    client.logout()
    password_only_login(patient)
    assert client.post(reverse("accounts:verify"), {"kind": "backup", "code": code}).status_code == 200
    assert not is_verified(client)
    assert StaticToken.objects.filter(device__user=patient.user).count() == 9


def test_verified_session_is_not_asked_again(client, login, patient):
    login(patient)
    assert client.get(reverse("accounts:verify"))["Location"] == "/"
    assert client.get("/my/").status_code == 200


def test_next_must_stay_on_the_site(client, password_only_login, patient, totp_device):
    password_only_login(patient)
    response = client.post(
        reverse("accounts:verify"), {"kind": "app", "code": code_for(totp_device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


@time_machine.travel("2026-03-01 10:00:00 +0000", tick=True)
def test_wrong_backup_codes_do_not_lock_the_authenticator_app(client, password_only_login, patient, totp_device):
    """Each kind is checked alone: failures with backup codes count against the backup
    codes only, so the app (and the email codes) still work right after them."""
    from portal.accounts.services import generate_backup_codes

    email_device = second_factor_of(patient.user)
    generate_backup_codes(user=patient.user)
    password_only_login(patient)
    for attempt in range(6):
        with time_machine.travel(timezone.now() + timedelta(minutes=attempt * 5)):  # past each throttle delay
            client.post(reverse("accounts:verify"), {"kind": "backup", "code": f"wrong{attempt}"})
    assert not is_verified(client)
    totp_device.refresh_from_db()
    email_device.refresh_from_db()
    assert totp_device.throttling_failure_count == email_device.throttling_failure_count == 0
    response = client.post(reverse("accounts:verify"), {"kind": "app", "code": code_for(totp_device)})
    assert response.status_code == 302 and is_verified(client)


def test_a_code_is_checked_only_against_the_kind_chosen(client, password_only_login, patient, totp_device):
    """A valid app code sent as a backup code is refused, and counts nowhere else."""
    password_only_login(patient)
    with time_machine.travel("2026-03-01 10:00:00 +0000", tick=False):
        response = client.post(reverse("accounts:verify"), {"kind": "email", "code": code_for(totp_device)})
    assert response.status_code == 200 and not is_verified(client)
    totp_device.refresh_from_db()
    assert totp_device.throttling_failure_count == 0


def test_the_page_offers_a_form_per_kind_the_person_has(client, password_only_login, patient, totp_device):
    from portal.accounts.services import generate_backup_codes

    password_only_login(patient)
    html = client.get(reverse("accounts:verify")).content.decode()
    assert 'name="kind" value="app"' in html and 'name="kind" value="email"' not in html
    assert 'for="id_app_code"' in html and 'name="kind" value="backup"' not in html
    generate_backup_codes(user=patient.user)
    second_factor_of(patient.user)
    html = client.get(reverse("accounts:verify")).content.decode()
    for kind in ["app", "email", "backup"]:
        assert f'name="kind" value="{kind}"' in html and f'id="id_{kind}_code"' in html


@time_machine.travel("2026-03-01 10:00:00 +0000", tick=False)
def test_passing_the_second_factor_gives_a_new_session_key(client, password_only_login, patient, totp_device):
    """The key the browser had before the second factor no longer opens anything after it."""
    from django.test import Client

    password_only_login(patient)
    before = client.session.session_key
    response = client.post(reverse("accounts:verify"), {"kind": "app", "code": code_for(totp_device), "next": "/my/"})
    assert response["Location"] == "/my/"
    assert client.session.session_key != before
    assert client.get("/my/").status_code == 200  # the new key is signed in and verified
    old = Client()
    old.cookies[settings.SESSION_COOKIE_NAME] = before
    assert old.get("/my/")["Location"].startswith(reverse("account_login"))


def test_a_code_the_mail_server_did_not_take_is_said_not_a_500(client, password_only_login, patient, settings):
    from tests.accounts.test_password_reset import mailers

    second_factor_of(patient.user)
    password_only_login(patient)
    settings.MAILERS = mailers("tests.accounts.test_password_reset.MailServerDown")
    page = client.post(reverse("accounts:verify"), {"action": "send-email"}, follow=True)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Le code n’a pas pu être envoyé par e-mail pour l’instant" in text and "Un code a été envoyé" not in text


@pytest.mark.parametrize(
    ("language", "subject", "body"),
    [
        ("fr", "Votre code de connexion Carnet", "Il est valable 10 minutes."),
        ("en", "Your Carnet sign-in code", "It is valid for 10 minutes."),
    ],
)
def test_the_sign_in_code_email_is_in_the_language_of_the_page_that_asked(
    client, password_only_login, patient, language, subject, body
):
    second_factor_of(patient.user)
    password_only_login(patient)
    client.post(reverse("accounts:verify"), {"action": "send-email"}, headers={"accept-language": language})
    message = mail.outbox[-1]
    assert message.subject == subject and body in message.body

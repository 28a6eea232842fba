"""The account page: password, second factors, backup codes, sessions."""

import re
import uuid

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.services import generate_backup_codes
from tests.conftest import reauthenticate, second_factor_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_account_page_lists_devices_codes_and_sessions(client, login, patient):
    login(patient)
    generate_backup_codes(user=patient.user)
    page = client.get(reverse("accounts:security"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Codes par e-mail" in html
    assert "10 codes de secours inutilisés restants" in html
    assert "Cette session" in html
    assert reverse("account_change_password") in html


def test_account_page_needs_the_second_factor(client, password_only_login, patient):
    second_factor_of(patient.user)
    password_only_login(patient)
    assert client.get(reverse("accounts:security"))["Location"].startswith(reverse("accounts:verify"))


def test_the_page_offers_only_what_can_be_done(client, login, patient):
    login(patient)  # codes by email, nothing else
    html = client.get(reverse("accounts:security")).content.decode()
    assert reverse("accounts:remove_device") not in html and "votre seul second facteur" in html
    assert reverse("accounts:enrol_email") not in html and reverse("accounts:enrol_totp") in html
    TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)
    html = client.get(reverse("accounts:security")).content.decode()
    assert html.count('name="device"') == 2 and "votre seul second facteur" not in html


def test_the_last_second_factor_cannot_be_removed(client, login, patient):
    login(patient)
    reauthenticate(client)
    device = second_factor_of(patient.user)
    response = client.post(reverse("accounts:remove_device"), {"device": device.persistent_id}, follow=True)
    assert "votre seul second facteur" in response.content.decode()
    assert patient.user.emaildevice_set.filter(confirmed=True).exists()


def test_a_second_factor_is_removed_when_another_remains(client, login, patient):
    login(patient)
    reauthenticate(client)
    app = TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)
    response = client.post(reverse("accounts:remove_device"), {"device": app.persistent_id}, follow=True)
    assert "a été supprimé" in response.content.decode()
    assert not TOTPDevice.objects.exists()


def test_someone_elses_device_is_404(client, login, patient, other_patient):
    login(patient)
    reauthenticate(client)
    TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)
    theirs = second_factor_of(other_patient.user)
    TOTPDevice.objects.create(user=other_patient.user, name="app", confirmed=True)
    assert client.post(reverse("accounts:remove_device"), {"device": theirs.persistent_id}).status_code == 404
    assert client.post(reverse("accounts:remove_device"), {"device": "garbage"}).status_code == 404
    assert other_patient.user.emaildevice_set.exists()


def test_backup_codes_are_regenerated(client, login, patient):
    login(patient)
    old = set(generate_backup_codes(user=patient.user))
    response = client.post(reverse("accounts:regenerate_backup_codes"), follow=True)
    new = set(StaticToken.objects.filter(device__user=patient.user).values_list("token", flat=True))
    assert len(new) == 10 and not old & new
    assert all(code in response.content.decode() for code in new)


def test_one_other_session_or_all_of_them_can_be_ended(client, login, patient):
    login(patient)
    phone, tablet = Client(), Client()
    login(patient, on=phone)
    login(patient, on=tablet)
    for c in (client, phone, tablet):
        assert c.get("/my/").status_code == 200
    assert UserSession.objects.filter(user=patient.user).count() == 3
    phone_session = UserSession.objects.get(session_key=phone.session.session_key)
    client.post(reverse("accounts:end_session", args=[phone_session.pk]))
    assert phone.get("/my/").status_code == 302
    assert tablet.get("/my/").status_code == 200
    client.post(reverse("accounts:end_other_sessions"))
    assert tablet.get("/my/").status_code == 302
    assert client.get("/my/").status_code == 200


CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_sessions_are_named_by_browser_and_system_parsed_once(client, login, patient, django_assert_num_queries):
    phone, robot = Client(HTTP_USER_AGENT=SAFARI_IPHONE), Client(HTTP_USER_AGENT="")
    for other in (phone, robot):
        login(patient, on=other)
        other.get("/my/")
    login(patient)
    client.get("/my/", HTTP_USER_AGENT=CHROME_LINUX)

    page = client.get(reverse("accounts:security"), HTTP_USER_AGENT=CHROME_LINUX).content.decode()
    rows = re.findall(r"<td data-label=\"Appareil\">([^<]*)<", page)
    assert sorted(rows) == ["Appareil inconnu", "Chrome sur Linux", "Mobile Safari sur iOS"]
    assert "AppleWebKit" not in page  # no raw user-agent string
    english = client.get(reverse("accounts:security"), HTTP_USER_AGENT=CHROME_LINUX, HTTP_ACCEPT_LANGUAGE="en")
    assert "Chrome on Linux" in english.content.decode()

    stored = {s.user_agent: s.data["carnet_device"] for s in UserSession.objects.filter(user=patient.user)}
    assert stored[CHROME_LINUX]["browser"] == "Chrome" and stored[CHROME_LINUX]["os"] == "Linux"
    saved = UserSession.save
    try:  # a page seen again parses and writes nothing more
        UserSession.save = lambda *a, **k: pytest.fail("a session was parsed again")
        assert client.get(reverse("accounts:security"), HTTP_USER_AGENT=CHROME_LINUX).status_code == 200
    finally:
        UserSession.save = saved


def test_someone_elses_session_is_404(client, login, patient, other_patient):
    other = Client()
    login(other_patient, on=other)
    other.get("/my/")
    login(patient)
    theirs = UserSession.objects.get(user=other_patient.user)
    assert client.post(reverse("accounts:end_session", args=[theirs.pk])).status_code == 404
    assert other.get("/my/").status_code == 200


def test_password_change_asks_the_current_password_and_signs_out_other_clients(client, login, patient):
    other = Client()
    login(patient)
    login(patient, on=other)
    assert other.get("/my/").status_code == 200
    new = "a brand new long passphrase 2026"
    wrong = client.post(reverse("account_change_password"), {"oldpassword": "nope", "password1": new, "password2": new})
    assert wrong.status_code == 200
    response = client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302
    assert client.get("/my/").status_code == 200
    assert other.get("/my/")["Location"].startswith(reverse("account_login"))


def test_changing_the_email_asks_for_the_password_then_a_verification(
    client, login, patient, django_capture_on_commit_callbacks
):
    from allauth.account.models import EmailAddress
    from django.core import mail

    login(patient)
    response = client.post(reverse("account_email"), {"action_add": "", "email": "camille.nouvelle@example.org"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not EmailAddress.objects.filter(email="camille.nouvelle@example.org").exists()

    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_email"), {"action_add": "", "email": "camille.nouvelle@example.org"})
    address = EmailAddress.objects.get(email="camille.nouvelle@example.org")
    assert address.user == patient.user and not address.verified
    (link,) = [m for m in mail.outbox if "camille.nouvelle@example.org" in m.to]  # the verification link
    old = patient.user.email
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(re.search(r"https?://\S+(/accounts/confirm-email/\S+/)", link.body).group(1))
    patient.user.refresh_from_db()
    assert patient.user.email == "camille.nouvelle@example.org"
    assert [m.to for m in mail.outbox] == [[old]]  # the old address is told


def test_removing_a_second_factor_asks_for_the_password_again(client, login, patient):
    login(patient)
    app = TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)
    response = client.post(reverse("accounts:remove_device"), {"device": app.persistent_id})
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert TOTPDevice.objects.exists()
    wrong = client.post(reverse("account_reauthenticate"), {"password": "not the password"})
    assert wrong.status_code == 200 and TOTPDevice.objects.exists()
    client.post(response["Location"], {"password": PASSWORD})  # the form carries ?next= back
    assert not TOTPDevice.objects.exists()  # the suspended removal went on


# --- recent security events ------------------------------------------------------


def test_sign_ins_and_second_factor_changes_show_as_recent_events(client, patient, other_patient):
    from django_otp.oath import totp

    user = patient.user
    app = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    second_factor_of(other_patient.user)
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    code = f"{totp(app.bin_key, step=app.step, t0=app.t0, digits=app.digits):06d}"
    assert client.post(reverse("accounts:verify"), {"kind": "app", "code": code}).status_code == 302
    reauthenticate(client)
    client.post(reverse("accounts:remove_device"), {"device": app.persistent_id})  # the last one stays
    second_factor_of(user)
    client.post(reverse("accounts:remove_device"), {"device": app.persistent_id})

    # The browser is now known: the next full sign-in is an ordinary one.
    client.post(reverse("account_logout"))
    device = user.emaildevice_set.get()
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    device.generate_challenge()
    device.refresh_from_db()
    assert client.post(reverse("accounts:verify"), {"kind": "email", "code": device.token}).status_code == 302

    html = client.get(reverse("accounts:security")).content.decode()
    events = html.split('id="events-title"')[1]
    assert events.index("Connexion") < events.index("Second facteur supprimé")
    assert events.index("Second facteur supprimé") < events.index("Connexion depuis un nouveau navigateur")
    assert "127.0.0.1" in events
    assert list(user.security_events.values_list("kind", flat=True)) == ["signed_in", "device_removed", "new_sign_in"]
    assert not other_patient.user.security_events.exists()


def test_support_actions_show_without_the_agents_reason(client, login, support, patient):
    from portal.support.services import act_on_account

    act_on_account(
        agent=support,
        account=patient.user,
        action="end_sessions",
        reason="Ticket 4711 note interne",
        request_key=uuid.uuid4(),
    )
    login(patient)
    events = client.get(reverse("accounts:security")).content.decode().split('id="events-title"')[1]
    assert "Support" in events and "sessions" in events
    assert "4711" not in events
    assert support.last_name not in events


def test_account_page_query_count_does_not_grow_with_events(client, login, patient):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.accounts.services import record_security_event

    login(patient)
    url = reverse("accounts:security")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(30):
        record_security_event(user=patient.user, kind="signed_in", ip="192.0.2.1")
    with CaptureQueriesContext(connection) as many:
        html = client.get(url).content.decode()
    assert len(many) == len(few)
    assert html.count("192.0.2.1") == 10


def test_allauth_pages_lay_out_their_fields_and_errors_as_ours(client, login, patient):
    login(patient)
    response = client.post(
        reverse("account_change_password"), {"oldpassword": "wrong", "password1": "", "password2": ""}
    )
    html = response.content.decode()
    assert html.count('<div class="field field-error">') == 3  # the wrong one and the two empty ones
    assert '<form method="post" class="stack" novalidate' in html and "<p><label" not in html
    assert "Ce n’est pas votre mot de passe actuel." in html
    assert 'id="id_oldpassword_error"' in html and '<span class="required" aria-hidden="true">*</span>' in html
    assert "<p><label" not in client.get(reverse("account_reauthenticate")).content.decode()


def test_the_sessions_list_costs_the_same_whatever_the_number_of_sessions(client, login, patient):
    """Three queries for the list, not three per session (allauth's purge_and_list)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(patient)

    def queries():
        client.get(reverse("accounts:security"))  # names the new sessions once
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("accounts:security")).status_code == 200
        return len(ctx)

    for _ in range(2):
        login(patient, on=Client()).get("/my/")  # the request notes the session (allauth's row)
    few = queries()
    for _ in range(10):
        login(patient, on=Client()).get("/my/")
    assert UserSession.objects.filter(user=patient.user).count() == 13
    assert queries() == few


def test_sessions_voided_expired_or_ended_are_not_listed_and_their_rows_go(client, login, patient):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from portal.accounts.services import signed_in_sessions

    login(patient).get("/my/")
    expired, voided, kept = Client(), Client(), Client()
    for other in (expired, voided, kept):
        login(patient, on=other).get("/my/")
    assert UserSession.objects.filter(user=patient.user).count() == 4
    Session.objects.filter(session_key=expired.session.session_key).update(expire_date=timezone.now())
    session = voided.session
    session["_auth_user_hash"] = "not-the-current-hash"  # as after a password change elsewhere
    session.save()
    listed = {s.session_key for s in signed_in_sessions(user=patient.user)}
    assert listed == {client.session.session_key, kept.session.session_key}
    assert set(UserSession.objects.filter(user=patient.user).values_list("session_key", flat=True)) == listed
    page = client.get(reverse("accounts:security")).content.decode()
    assert page.count('<td data-label="Appareil">') == 2

"""Session lifetime, logout, deactivation, lockout per account and per IP."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.accounts.services import deactivate_user, unlock_account
from tests.conftest import second_factor_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in_with_password(client, email, password, ip="10.0.0.1"):
    return client.post(reverse("account_login"), {"login": email, "password": password}, REMOTE_ADDR=ip)


def test_an_active_session_still_ends_after_12_hours(client, login, patient):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        login(patient)
        assert client.get("/my/").status_code == 200
        for _ in range(28):  # active every 25 minutes: the idle timeout never fires
            traveller.shift(timedelta(minutes=25))
            assert client.get("/my/").status_code == 200
        traveller.shift(timedelta(minutes=25))  # now 12 h 05 after sign-in
        response = client.get("/my/")
        assert response.status_code == 302
        assert response["Location"] == reverse("account_login")
        assert client.get("/my/")["Location"].startswith(reverse("account_login"))


def test_an_idle_session_ends_after_30_minutes(client, login, patient):
    login(patient)
    assert client.get("/my/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert client.get("/my/")["Location"].startswith(reverse("account_login"))


def test_a_stolen_session_cookie_is_dead_after_logout(client, login, patient):
    login(patient)
    assert client.get("/my/").status_code == 200
    thief = Client()
    thief.cookies = client.cookies.__class__(client.cookies)
    assert thief.get("/my/").status_code == 200
    client.post(reverse("account_logout"))
    assert thief.get("/my/")["Location"].startswith(reverse("account_login"))


def test_a_deactivated_user_loses_every_session(client, login, patient):
    phone = Client()
    login(patient)
    login(patient, on=phone)
    assert client.get("/my/").status_code == 200 and phone.get("/my/").status_code == 200
    deactivate_user(user=patient.user)
    for c in (client, phone):
        assert c.get("/my/")["Location"].startswith(reverse("account_login"))
    again = Client()
    assert sign_in_with_password(again, patient.user.email, PASSWORD)["Location"] == reverse("account_inactive")
    assert "contactez l’assistance Carnet" in again.get(reverse("account_inactive")).content.decode()  # a next step
    assert again.get("/my/")["Location"].startswith(reverse("account_login"))


def test_five_failures_lock_the_account_until_the_cool_off(client, patient):
    second_factor_of(patient.user)
    email = patient.user.email
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(4):
            assert sign_in_with_password(client, email, "wrong password!").status_code == 200
        locked = sign_in_with_password(client, email, "wrong password!")
        assert locked.status_code == 429
        assert "bloquée pendant 15 minutes" in locked.content.decode()
        # Even the right password is refused from that address during the lockout...
        assert sign_in_with_password(Client(), email, PASSWORD).status_code == 429
        # ...but not from another one: failing on purpose never locks the owner out.
        assert sign_in_with_password(Client(), email, PASSWORD, ip="10.9.9.9").status_code == 302
        # A failure during the lockout does not extend it.
        traveller.shift(timedelta(minutes=10))
        assert sign_in_with_password(client, email, "wrong password!").status_code == 429
        traveller.shift(timedelta(minutes=6))
        response = sign_in_with_password(client, email, PASSWORD)
        assert response.status_code == 302
        assert client.get("/", follow=True).request["PATH_INFO"] == reverse("accounts:verify")


def test_a_stranger_failing_on_purpose_cannot_keep_the_owner_out(client, patient):
    """Five failures every quarter of an hour, for ever, from the stranger's address: the
    owner, from theirs, signs in throughout."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(4):
            for _ in range(6):
                sign_in_with_password(client, patient.user.email, "wrong password!", ip="10.6.6.6")
            owner = Client()
            assert sign_in_with_password(owner, patient.user.email, PASSWORD, ip="10.1.1.1").status_code == 302
            traveller.shift(timedelta(minutes=15))


def test_colleagues_behind_one_address_do_not_lock_each_other_out(client, patient, other_patient):
    """A hospital's staff share one address: one person's failures lock only their own account."""
    for _ in range(5):
        sign_in_with_password(client, patient.user.email, "wrong password!", ip="10.6.6.6")
    for n in range(5):
        sign_in_with_password(client, f"nobody{n}@example.org", "wrong password!", ip="10.6.6.6")
    assert sign_in_with_password(Client(), other_patient.user.email, PASSWORD, ip="10.6.6.6").status_code == 302
    assert sign_in_with_password(Client(), patient.user.email, PASSWORD, ip="10.6.6.6").status_code == 429


def test_lockout_message_in_english(client, patient):
    for _ in range(5):
        response = client.post(
            reverse("account_login"),
            {"login": patient.user.email, "password": "nope nope nope"},
            headers={"accept-language": "en"},
        )
    assert response.status_code == 429
    assert "blocked for 15 minutes" in response.content.decode()


def test_support_can_unlock_an_account(client, patient):
    for _ in range(5):
        sign_in_with_password(client, patient.user.email, "wrong password!", ip="10.2.2.2")
    assert sign_in_with_password(client, patient.user.email, PASSWORD, ip="10.2.2.2").status_code == 429
    assert unlock_account(email=patient.user.email.upper()) > 0
    assert sign_in_with_password(client, patient.user.email, PASSWORD, ip="10.2.2.2").status_code == 302


def test_successful_sign_in_resets_the_failure_count(client, patient):
    for _ in range(4):
        sign_in_with_password(client, patient.user.email, "wrong password!")
    assert sign_in_with_password(client, patient.user.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in_with_password(client, patient.user.email, "wrong password!")
    assert sign_in_with_password(client, patient.user.email, PASSWORD).status_code == 302


def test_behind_a_proxy_each_client_is_locked_by_its_own_address(client, patient, settings):
    """Behind the reverse proxy every request comes from the proxy's address: the
    client's own is the X-Forwarded-For entry the proxy added (the rightmost)."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1

    def attempt(c, email, password, forwarded):
        return c.post(
            reverse("account_login"),
            {"login": email, "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    for n in range(5):  # an attacker spoofs a first entry; the proxy appends the real address
        attempt(client, patient.user.email, "wrong password!", f"1.2.3.{n}, 198.51.100.7")
    assert attempt(client, patient.user.email, PASSWORD, "198.51.100.7").status_code == 429
    # Another client behind the same proxy is not locked out.
    assert attempt(Client(), patient.user.email, PASSWORD, "203.0.113.5").status_code == 302


def test_expired_sessions_are_cleared_and_not_counted_as_active(client, login, patient, support):
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session

    from portal import tasks

    phone, laptop = Client(), Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        login(patient, on=phone)
        assert phone.get("/my/").status_code == 200
        traveller.shift(timedelta(minutes=20))
        login(patient, on=laptop)
        assert laptop.get("/my/").status_code == 200
        traveller.shift(timedelta(minutes=15))  # the phone has been idle 35 minutes
        assert UserSession.objects.filter(user=patient.user).count() == 2
        login(support)
        page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
        assert "<dt>Sessions actives</dt><dd>1</dd>" in page
        tasks.clear_expired_sessions.delay()
        assert [s.session_key for s in UserSession.objects.filter(user=patient.user)] == [laptop.session.session_key]
        assert not Session.objects.filter(expire_date__lte=timezone.now()).exists()
        assert laptop.get("/my/").status_code == 200
        assert phone.get("/my/")["Location"].startswith(reverse("account_login"))


BACKGROUND = {"HTTP_X_CARNET_BACKGROUND": "1", "HTTP_HX_REQUEST": "true"}


def test_a_conversation_left_open_still_times_out(client, login, patient, team):
    """The page polls every 10 seconds; those refreshes are not activity, so 30
    minutes after the person's last own request the session ends and the poll
    sends the page to the sign-in form."""
    from messaging.services import start_conversation

    conversation = start_conversation(
        author=patient.user, patient=patient, team=team, subject="Question", body="?", kind="question"
    )
    page = reverse("messaging:conversation", args=[conversation.pk])
    poll = reverse("messaging:thread", args=[conversation.pk])
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        login(patient)
        assert client.get(page).status_code == 200
        for _ in range(29 * 6):  # 29 minutes of polls, every 10 seconds
            traveller.shift(timedelta(seconds=10))
            assert client.get(poll, **BACKGROUND).status_code == 200
        traveller.shift(timedelta(minutes=1, seconds=10))  # 30 min 10 s since the page was opened
        response = client.get(poll, **BACKGROUND)
        assert response.status_code == 204
        assert response["HX-Redirect"] == reverse("account_login")
        assert client.get(page)["Location"].startswith(reverse("account_login"))


def test_reading_and_clicking_keeps_the_session_alive(client, login, patient):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        login(patient)
        for _ in range(4):  # a request every 20 minutes: 80 minutes in all
            traveller.shift(timedelta(minutes=20))
            assert client.get("/my/").status_code == 200


def test_a_signed_in_request_writes_nothing_in_steady_state(client, login, patient):
    """Activity is saved at most once a minute: no session or last-seen write on every request."""
    from allauth.usersessions.models import UserSession
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def writes():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("accounts:security")).status_code == 200
        return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        login(patient)
        client.get("/my/")
        traveller.shift(timedelta(seconds=30))
        assert writes() == []
        seen = UserSession.objects.get(user=patient.user).last_seen_at
        traveller.shift(timedelta(seconds=31))  # over a minute since the last write
        assert len(writes()) >= 1
        assert UserSession.objects.get(user=patient.user).last_seen_at > seen
        traveller.shift(timedelta(seconds=10))
        assert writes() == []

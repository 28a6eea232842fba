"""Password reset: same answer for any address, single-use link, second factor still asked."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import second_factor_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
NEW = "a completely new passphrase 77"


def test_same_answer_whether_or_not_the_address_exists(client, patient):
    known = client.post(reverse("account_reset_password"), {"email": patient.user.email})
    unknown = Client().post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]


def test_reset_link_works_once_and_sign_in_still_asks_the_second_factor(client, patient):
    second_factor_of(patient.user)
    client.post(reverse("account_reset_password"), {"email": patient.user.email})
    message = mail.outbox[-1]
    assert message.subject.startswith("Carnet – ")  # not "[testserver]"
    assert message.body.startswith("Bonjour,") and message.body.rstrip().endswith("L’équipe Carnet")
    assert "testserver" not in message.body  # the link is built from SITE_URL, not from the request
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", message.body).group(1)
    form_url = client.get(link, follow=True).request["PATH_INFO"]
    done = client.post(form_url, {"password1": NEW, "password2": NEW})
    assert done.status_code == 302
    assert f'href="{reverse("account_login")}"' in client.get(done["Location"]).content.decode()  # a way on
    assert not client.get("/my/").wsgi_request.user.is_authenticated  # reset does not sign in
    # The link is dead now.
    again = Client().get(link, follow=True)
    assert "password1" not in again.content.decode()
    # Signing in with the new password still asks the second factor.
    client.post(reverse("account_login"), {"login": patient.user.email, "password": NEW})
    assert client.get("/my/")["Location"].startswith(reverse("accounts:verify"))


def test_emailed_links_come_from_site_url_not_from_the_request_host(
    client, settings, login, patient, django_capture_on_commit_callbacks
):
    """ALLOWED_HOSTS ignores ports: a spoofed ``Host: 127.0.0.1:6666`` passes it, and
    must not reach the links in the emails (reset link, address confirmation)."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SITE_URL = "https://carnet.example"
    spoofed = {"host": "127.0.0.1:6666"}
    client.post(reverse("account_reset_password"), {"email": patient.user.email}, headers=spoofed)
    body = mail.outbox[-1].body
    assert re.search(r"https://carnet\.example/accounts/password/reset/key/\S+/", body)
    assert "6666" not in body and "127.0.0.1" not in body

    # Every allauth email goes the same way: an address confirmation, asked while signed in.
    login(patient)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD}, headers=spoofed)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_email"), {"action_add": "", "email": "new@example.org"}, headers=spoofed)
    (confirmation,) = [m for m in mail.outbox if m.to == ["new@example.org"]]
    assert "https://carnet.example/accounts/confirm-email/" in confirmation.body
    assert "6666" not in confirmation.body


@pytest.mark.parametrize(
    ("language", "text"),
    [("fr", "Patientez une minute, puis réessayez"), ("en", "Wait a minute, then try again")],
)
def test_too_many_reset_requests_get_a_translated_page(client, patient, language, text):
    """allauth's rate limit (5 resets a minute per address) answers 429 with our page, in the person's language."""
    for _ in range(5):
        client.post(reverse("account_reset_password"), {"email": patient.user.email})
    response = client.post(
        reverse("account_reset_password"), {"email": patient.user.email}, headers={"accept-language": language}
    )
    assert response.status_code == 429
    assert text in response.content.decode()


def mailers(backend):
    return {"default": {"BACKEND": backend, "OPTIONS": {}}}


class MailServerDown:
    """An email backend whose server does not answer."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("the mail server does not answer")


def test_a_mail_server_down_does_not_fail_the_page_and_the_email_is_tried_again(client, patient, settings):
    """The reset email is written at once and sent by a Celery task that retries while the
    mail server does not answer: the page says what it says to anyone, never a 500."""
    from portal.accounts.tasks import send_written_email

    settings.MAILERS = mailers("tests.accounts.test_password_reset.MailServerDown")
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the task is only handed over here
    sent = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(send_written_email, "delay", lambda *args: sent.append(args))
        response = client.post(reverse("account_reset_password"), {"email": patient.user.email})
    assert response.status_code == 302 and response["Location"] == reverse("account_reset_password_done")
    [(to, subject, body, _html)] = sent
    assert to == [patient.user.email] and "/accounts/password/reset/key/" in body
    assert send_written_email.autoretry_for == (OSError,) and send_written_email.max_retries >= 5
    with pytest.raises(OSError):  # what the worker catches to try again, with backoff
        send_written_email.run(to, subject, body)
    settings.MAILERS = mailers("django.core.mail.backends.locmem.EmailBackend")
    send_written_email.run(to, subject, body)
    assert mail.outbox[-1].to == to and mail.outbox[-1].body == body

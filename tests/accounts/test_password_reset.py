"""Password reset: same answer for any address, single-use link, second factor still asked."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import second_factor_of

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
    assert message.body.count("testserver") == 1  # in the link only, not as the sender
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

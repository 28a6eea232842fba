"""A form's address opened as a page says so (not an empty 405), and a form sent once
the session has ended brings one back, after signing in, to the page that had it."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

# Addresses that take a form's POST and nothing else.
FORM_ADDRESSES = ["representation:switch", "accounts:notice_preferences", "records:set_hidden"]


@pytest.mark.parametrize("name", FORM_ADDRESSES)
def test_a_forms_address_opened_as_a_page_says_what_it_is(client, login, patient, name):
    login(patient)
    response = client.get(reverse(name, args=[1] if name == "records:set_hidden" else []))
    assert response.status_code == 405 and "POST" in response["Allow"]
    page = response.content.decode()
    assert "Cette adresse est celle d’un formulaire" in page and 'href="/"' in page
    assert "<nav" in page  # the site's layout, signed in


@pytest.mark.parametrize(
    ("referer", "back_to"),
    [("http://testserver/my/profile/", "/my/profile/"), ("https://elsewhere.example/my/", None), ("", None)],
    ids=["this site", "another site", "none"],
)
def test_a_form_sent_after_the_session_ended_leads_back_to_its_page_after_signing_in(client, referer, back_to):
    response = client.post(reverse("representation:switch"), {"record": "1"}, HTTP_REFERER=referer)
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == reverse("account_login")
    assert parse_qs(target.query).get("next") == ([back_to] if back_to else None)


def test_a_page_asked_for_after_the_session_ended_is_still_the_one_returned_to(client):
    response = client.get(reverse("records:documents"))
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == [reverse("records:documents")]

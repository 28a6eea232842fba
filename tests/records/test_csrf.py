"""One masked CSRF token per request (portal.csrf): the page's forms and the care team's
confidentiality forms carry the same one, which the CSRF check accepts."""

import re

import pytest
from django.middleware.csrf import _unmask_cipher_token, rotate_token
from django.test import Client
from django.urls import reverse

from portal.csrf import csrf_token


def test_a_request_masks_its_token_once_and_again_for_a_new_secret(rf):
    request = rf.get("/")
    first = csrf_token(request)
    assert csrf_token(request) == first
    assert _unmask_cipher_token(first) == request.META["CSRF_COOKIE"]
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"]  # the middleware sends the cookie
    rotate_token(request)  # at sign-in
    second = csrf_token(request)
    assert _unmask_cipher_token(second) == request.META["CSRF_COOKIE"] != _unmask_cipher_token(first)


@pytest.mark.django_db
def test_the_pages_forms_share_the_requests_token_and_it_is_accepted(login, clinician, patient, clinician_document):
    client = login(clinician, on=Client(enforce_csrf_checks=True))
    page = client.get(reverse("careteams:patient_documents", args=[patient.pk])).content.decode()
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
    action = reverse("records:set_confidential", args=["document", clinician_document.pk])
    assert action in page and len(tokens) == 1  # sign-out (the layout's) and the document's form
    answer = client.post(action, {"confidential": "1", "csrfmiddlewaretoken": tokens.pop()})
    assert answer.status_code == 302
    clinician_document.refresh_from_db()
    assert clinician_document.confidential
    refused = client.post(action, {"confidential": "", "csrfmiddlewaretoken": "x" * 64})
    assert refused.status_code == 403


def test_the_mask_is_djangos_and_evenly_drawn(rf):
    """portal.csrf.masked makes what Django's _mask_cipher_secret makes: a token of 64
    allowed characters that its check unmasks to the secret, with a new mask each time,
    each of the 62 characters as likely at every place."""
    import collections

    from django.middleware.csrf import CSRF_ALLOWED_CHARS, _check_token_format, _get_new_csrf_string

    from portal.csrf import masked

    secrets_and_tokens = [(secret, masked(secret)) for secret in (_get_new_csrf_string() for _ in range(3000))]
    for secret, token in secrets_and_tokens:
        _check_token_format(token)  # 64 allowed characters, or it raises
        assert _unmask_cipher_token(token) == secret
    assert len({token[:32] for _, token in secrets_and_tokens}) == 3000  # a new mask each time
    drawn = collections.Counter(char for _, token in secrets_and_tokens for char in token[:32])
    expected = 3000 * 32 / len(CSRF_ALLOWED_CHARS)  # about 1,548 of each
    assert set(drawn) == set(CSRF_ALLOWED_CHARS)
    assert all(abs(count - expected) < 6 * expected**0.5 for count in drawn.values()), drawn.most_common(3)
    first_places = collections.Counter(token[0] for _, token in secrets_and_tokens)
    assert len(first_places) == len(CSRF_ALLOWED_CHARS)
    request = rf.get("/")  # without a secret yet: Django's own token, and the cookie
    token = csrf_token(request)
    assert _unmask_cipher_token(token) == request.META["CSRF_COOKIE"] and request.META["CSRF_COOKIE_NEEDS_UPDATE"]

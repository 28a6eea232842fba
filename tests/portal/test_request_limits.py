"""Request bodies are bounded by their route, and refused from their declared length
before anything reads them; uploads never reach a temporary file on disk."""

import os
import socket
import time
import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
from django.urls import URLPattern, get_resolver, reverse

from tests.records.conftest import make_pdf

HUGE = 200 * 1024 * 1024
BOUNDARY = "carnet-test-boundary"


def raw_post(live_server, path, *, length, body=b"", cookies=None, headers=None, timeout=5.0):
    """Send a POST's headers (declaring ``length`` bytes, or none) and the first bytes of
    its body over a plain socket, then wait for the answer's status line without sending
    the rest: a server that reads the body first never answers. Returns (status, seconds)."""
    url = urlparse(live_server.url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.hostname}:{url.port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in cookies.items()))
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"no answer within {timeout} s: the server is reading the body")
        return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def multipart_start(fields: dict) -> bytes:
    return b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )


def csrf_cookie():
    token = uuid.uuid4().hex + uuid.uuid4().hex
    return {settings.CSRF_COOKIE_NAME: token}, token


@pytest.mark.parametrize("path", ["/accounts/login/", "/i18n/setlang/"])
def test_an_anonymous_huge_body_is_refused_before_it_is_read(live_server, transactional_db, path):
    cookies, token = csrf_cookie()
    status, seconds = raw_post(
        live_server, path, length=HUGE, cookies=cookies, body=multipart_start({"csrfmiddlewaretoken": token})
    )
    assert status == 413
    assert seconds < 2


def test_an_upload_larger_than_its_form_allows_is_refused_before_it_is_read(live_server, client, login, patient):
    login(patient)
    cookies, token = csrf_cookie()
    cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    status, _ = raw_post(
        live_server,
        reverse("records:upload"),
        length=HUGE,
        cookies=cookies,
        body=multipart_start({"csrfmiddlewaretoken": token, "title": "Radio"}),
    )
    assert status == 413


def test_a_body_without_a_declared_length_is_refused(live_server, transactional_db):
    cookies, _token = csrf_cookie()
    status, _ = raw_post(
        live_server, "/accounts/login/", length=None, headers={"Transfer-Encoding": "chunked"}, cookies=cookies
    )
    assert status == 411


def test_each_route_has_its_own_limit(client, settings, db):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    settings.DOCUMENT_MAX_BYTES = 5000
    settings.MESSAGE_ATTACHMENTS_MAX_BYTES = 9000

    def status(path, length):
        return client.generic("POST", path, b"x", CONTENT_LENGTH=str(length)).status_code

    assert status("/accounts/login/", 1001) == 413
    assert status("/accounts/login/", 1000) != 413
    assert status(reverse("records:upload"), 6000) != 413
    assert status(reverse("records:upload"), 6001) == 413
    assert status(reverse("messaging:conversation", args=[1]), 10_000) != 413
    assert status(reverse("messaging:conversation", args=[1]), 10_001) == 413
    assert status("/no/such/page/", 1001) == 413


def test_the_refusal_is_a_short_page_in_the_persons_language(client, db):
    response = client.generic(
        "POST", "/accounts/login/", b"x", CONTENT_LENGTH=str(HUGE), headers={"accept-language": "en"}
    )
    assert response.status_code == 413
    assert "Too large to be received" in response.content.decode()
    response = client.generic("POST", "/accounts/login/", b"x", CONTENT_LENGTH=str(HUGE))
    assert "Trop volumineux pour être reçu" in response.content.decode()
    assert len(response.content) < 2000


def upload_views():
    """Every view that takes files: the ones a multipart form posts to (the FHIR API
    reads its JSON from the stream, not through the upload handlers)."""

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                yield pattern.callback
            else:
                yield from walk(pattern.url_patterns)

    return [
        view
        for view in walk(get_resolver().url_patterns)
        if hasattr(view, "upload_limit_setting") and not getattr(view, "fhir_api", False)
    ]


def test_every_upload_stays_in_memory_within_its_limit():
    """Only the memory handler, and it takes every upload a route lets through (it
    would pass a larger one on to no one: the file would vanish, not go to disk)."""
    assert settings.FILE_UPLOAD_HANDLERS == ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
    views = upload_views()
    assert {view.__name__ for view in views} >= {"upload", "clinician_upload", "conversation", "new_conversation"}
    for view in views:
        limit = settings.REQUEST_BODY_MAX_BYTES + getattr(settings, view.upload_limit_setting)
        assert limit <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE, view.__name__


def test_an_upload_in_progress_writes_nothing_to_the_temporary_folder(
    live_server, client, login, patient, settings, tmp_path
):
    """Django spools an upload over FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file, in
    plaintext, left behind when the worker is killed mid-request. Caught here mid-request."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.MEDIA_ROOT = tmp_path / "media"
    login(patient)
    cookies, token = csrf_cookie()
    cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    fields = {"csrfmiddlewaretoken": token, "title": "Radio", "category": "imaging", "care_date": "2026-01-05"}
    pdf = make_pdf() + b"%" * (3 * 1024 * 1024)  # over Django's default 2.5 MB in memory
    body = (
        multipart_start(fields)
        + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="radio.pdf"\r\n\r\n'.encode()
        + pdf
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    url = urlparse(live_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (
            f"POST {reverse('records:upload')} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
            "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:-1000])  # most of the file: the server is reading it
        time.sleep(1)
        assert os.listdir(tmp_path) in ([], ["media"])
        sock.sendall(body[-1000:])  # then the end, so the request completes before the test does
        assert sock.recv(4096).split(b" ", 2)[1] == b"302"


def test_an_uploaded_document_is_held_in_memory(client, login, patient, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    login(patient)
    pdf = make_pdf() + b"%" * (3 * 1024 * 1024)
    response = client.post(
        reverse("records:upload"),
        {"title": "Radio", "category": "imaging", "care_date": "2026-01-05", "file": SimpleUploadedFile("r.pdf", pdf)},
    )
    assert response.status_code == 302
    assert isinstance(response.wsgi_request.FILES["file"], InMemoryUploadedFile)


def test_the_limit_of_a_route_is_the_forms_own(rf, settings):
    from portal.middleware import request_body_limit

    assert request_body_limit(rf.post(reverse("records:upload"))) == (
        settings.REQUEST_BODY_MAX_BYTES + settings.DOCUMENT_MAX_BYTES
    )
    assert request_body_limit(rf.post("/accounts/login/")) == settings.REQUEST_BODY_MAX_BYTES

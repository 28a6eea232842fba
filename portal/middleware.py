from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render, resolve_url
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.http import http_date, url_has_allowed_host_and_scheme

NEVER_STORE = "max-age=0, no-cache, no-store, must-revalidate, private"


class NoStoreForAuthenticatedMiddleware:
    """Nothing a signed-in user sees may be kept by a browser or a proxy cache: the
    headers of Django's ``never_cache`` plus ``private``, set whole (whatever a view
    said of caching before; merging them cost more than the rest of the middleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response.headers["Cache-Control"] = NEVER_STORE
            response.headers.setdefault("Expires", http_date())
        return response


class NotFoundPageMiddleware:
    """Under DEBUG (``make run``) a missing page shows Carnet's own 404 page, as in
    production, instead of Django's technical page listing every URL pattern. A 404 that
    is not a web page (the FHIR API's OperationOutcome) is left as it is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
            and not request.path.startswith(settings.STATIC_URL)
        ):
            return render(request, "404.html", status=404)
        return response


class FormAddressMiddleware:
    """A form's address (it takes POST only) opened as a page, after signing in again or
    from a bookmark, answers a page that says so and leads back, not an empty 405. And a
    form sent once the session had ended (the idle timeout) brings the person back, after
    signing in, to the page that had the form (its referer, on this site), not to the
    form's address, which no page is."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.login_url = None

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(("/fhir", settings.STATIC_URL)):
            return response
        if response.status_code == 405 and request.method in ("GET", "HEAD") and not response.content:
            page = render(request, "405.html", status=405)
            page["Allow"] = response["Allow"]
            return page
        if request.method not in ("GET", "HEAD") and response.status_code == 302:
            self.login_url = self.login_url or resolve_url(settings.LOGIN_URL)
            target = urlsplit(response["Location"])
            if target.path == self.login_url and "next" in parse_qs(target.query):
                back = request.headers.get("Referer", "")
                allowed = url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure())
                back = urlsplit(back) if allowed and back else None
                next_page = back.path + (f"?{back.query}" if back.query else "") if back else ""
                query = urlencode({"next": next_page}) if next_page else ""
                response["Location"] = self.login_url + (f"?{query}" if query else "")
        return response


class RetryReadOnLostDatabaseMiddleware:
    """A read (GET, HEAD) that failed because the database connection was lost (see
    ``portal.views.server_error``) is run once more on a new connection. Its writes, if
    any (an access-log row), were rolled back with the request's transaction, so the
    second run does everything once. Anything else keeps the 503 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "database_lost", False) and request.method in ("GET", "HEAD"):
            request.database_lost = False
            connection.close()
            response = self.get_response(request)
        return response


def allows_upload(limit_setting: str):
    """Mark a view as taking files: its requests may carry up to the setting named
    ``limit_setting`` (bytes of files) on top of ``REQUEST_BODY_MAX_BYTES``."""

    def mark(view):
        view.upload_limit_setting = limit_setting
        return view

    return mark


def _view_of(request):
    try:
        return resolve(request.path_info).func
    except Resolver404:
        return None


def request_body_limit(request) -> int:
    """The largest body ``request``'s route accepts: the small one of every form,
    plus the files an upload view allows (the same setting its form checks)."""
    name = getattr(_view_of(request), "upload_limit_setting", None)
    return settings.REQUEST_BODY_MAX_BYTES + (getattr(settings, name) if name else 0)


class RequestBodyLimitMiddleware:
    """Refuse a request body larger than its route accepts, from its declared length,
    before anything reads it (the CSRF check would parse it, files and all): 413 with
    a small page. A body without a declared length (chunked) cannot be checked before
    it is read, so it is refused too (411). A view that answers in another format than
    HTML (the FHIR API) gives its own refusal as ``view.refuse_body(status, limit)``.
    The reverse proxy should refuse the same sizes even earlier (README, Production)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH", "")
        if not declared and request.META.get("HTTP_TRANSFER_ENCODING"):
            return self.refuse(request, status=411, limit=None)
        try:
            length = int(declared or 0)
        except ValueError:
            length = 0  # Django reads nothing of a body whose length it cannot parse
        # Most requests carry less than any route accepts: no URL resolving for them.
        if length > settings.REQUEST_BODY_MAX_BYTES and length > (limit := request_body_limit(request)):
            return self.refuse(request, status=413, limit=limit)
        return self.get_response(request)

    def refuse(self, request, *, status, limit):
        refuse_body = getattr(_view_of(request), "refuse_body", None)
        if refuse_body is not None:
            return refuse_body(status, limit)
        html = render_to_string("request_too_large.html", {"limit": limit, "length_required": status == 411})
        return HttpResponse(html, status=status)

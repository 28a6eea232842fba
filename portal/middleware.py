from django.conf import settings
from django.db import connection
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_cache_control


class NoStoreForAuthenticatedMiddleware:
    """Nothing a signed-in user sees may be kept by a browser or a proxy cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, no_store=True, private=True)
        return response


class NotFoundPageMiddleware:
    """Under DEBUG (``make run``) a missing page shows Carnet's own 404 page, as in
    production, instead of Django's technical page listing every URL pattern."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and not request.path.startswith(settings.STATIC_URL):
            return render(request, "404.html", status=404)
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

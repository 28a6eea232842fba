"""One masked CSRF token per request.

Django masks the form token anew at each ``get_token`` (a random mask of 32 characters,
about 500 Python calls), and its context processor does so once per template rendered. A
page that renders more than its own template (a care team's confidentiality forms) would
mask it again; the same masked token serves the whole response, as it serves every form
of one template. A new secret (``rotate_token``, at sign-in) gets a new token."""

from django.middleware.csrf import get_token
from django.utils.functional import SimpleLazyObject


def csrf_token(request) -> str:
    """``get_token(request)``, masked once per request and secret."""
    kept = getattr(request, "_carnet_csrf", None)
    if kept is None or kept[0] != request.META.get("CSRF_COOKIE"):
        token = get_token(request)  # also tells the middleware to send the cookie
        kept = request._carnet_csrf = (request.META.get("CSRF_COOKIE"), token)
    return kept[1]


def context(request):
    """Django's ``csrf`` context processor (always on), with the request's one token."""
    return {"csrf_token": SimpleLazyObject(lambda: csrf_token(request))}

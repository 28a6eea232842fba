"""One masked CSRF token per request.

Django masks the form token anew at each ``get_token`` (a random mask of 32 characters,
about 500 Python calls), and its context processor does so once per template rendered. A
page that renders more than its own template (a care team's confidentiality forms) would
mask it again; the same masked token serves the whole response, as it serves every form
of one template. A new secret (``rotate_token``, at sign-in) gets a new token.

The mask is Django's (``_mask_cipher_secret``: 32 characters of the allowed 62, each
added to the secret's), drawn from the system's random source in one read rather than
one ``secrets.choice`` (one read) per character: every page with a form pays it."""

import secrets

from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.utils.functional import SimpleLazyObject

_COUNT = len(CSRF_ALLOWED_CHARS)
_INDEX = {char: index for index, char in enumerate(CSRF_ALLOWED_CHARS)}
# Random bytes below this (248) fall evenly on the 62 characters; those above are dropped,
# as ``secrets.choice`` drops the draws that would favour some characters.
_EVEN = 256 - 256 % _COUNT


def _mask_indexes(count: int) -> list[int]:
    """``count`` positions among the allowed characters, each uniform and independent."""
    found = []
    while len(found) < count:
        found += [byte % _COUNT for byte in secrets.token_bytes(count + 8) if byte < _EVEN]
    return found[:count]


def masked(secret: str) -> str:
    """What Django's ``_mask_cipher_secret(secret)`` makes, and its check unmasks: a random
    mask, then each character of the secret shifted by the mask's."""
    mask, chars = _mask_indexes(len(secret)), CSRF_ALLOWED_CHARS
    cipher = "".join(chars[(_INDEX[char] + shift) % _COUNT] for char, shift in zip(secret, mask, strict=True))
    return "".join(chars[shift] for shift in mask) + cipher


def csrf_token(request) -> str:
    """``get_token(request)``, masked once per request and secret."""
    kept = getattr(request, "_carnet_csrf", None)
    secret = request.META.get("CSRF_COOKIE")
    if kept is None or kept[0] != secret:
        if secret is not None and len(secret) == CSRF_SECRET_LENGTH and all(char in _INDEX for char in secret):
            request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True  # as get_token: the middleware sends the cookie
            token = masked(secret)
        else:  # no secret yet: Django's makes one (and the cookie)
            token = get_token(request)
        kept = request._carnet_csrf = (request.META.get("CSRF_COOKIE"), token)
    return kept[1]


def context(request):
    """Django's ``csrf`` context processor (always on), with the request's one token."""
    return {"csrf_token": SimpleLazyObject(lambda: csrf_token(request))}

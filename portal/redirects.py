"""Coming back to the page a form was posted from, or going on to where one was going."""

from django.shortcuts import redirect, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, url: str, fallback: str = "home") -> str:
    """``url`` when it is an address of this site (a ``next`` kept in a form or a query),
    else ``fallback`` (what ``resolve_url`` takes): never another site, nor ``javascript:``."""
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure()):
        return url
    return resolve_url(fallback)


def back_or(request, url: str, *fallback):
    """A redirect to ``url`` when it is a path of this site (the page that asked, kept in
    the form), else to ``fallback`` (what ``redirect`` takes): never to another site."""
    if url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return redirect(url)
    return redirect(*fallback)

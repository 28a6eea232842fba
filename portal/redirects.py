"""Coming back to the page a form was posted from."""

from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


def back_or(request, url: str, *fallback):
    """A redirect to ``url`` when it is a path of this site (the page that asked, kept in
    the form), else to ``fallback`` (what ``redirect`` takes): never to another site."""
    if url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return redirect(url)
    return redirect(*fallback)

"""An API client's new secret, shown once: the form that made it (register, new secret)
keeps it in the session and redirects (so ``@idempotent`` holds a double submit to one);
the page it redirects to shows it once and never again. Only the secret's hash is kept.
Support's console and a team manager's settings share it."""

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse

SESSION_KEY = "api_client_secret"


def show_secret_once(request, client, secret, *, page):
    """Keep ``secret`` for the page ``page`` (a URL name taking the client's id) and go there."""
    request.session[SESSION_KEY] = {"client": client.pk, "secret": secret}
    return redirect(page, client.pk)


def secret_page(request, client, *, done_url):
    """The secret kept for ``client``, on this answer only (not stored by the browser);
    afterwards, the page says it was shown."""
    kept = request.session.get(SESSION_KEY)
    secret = request.session.pop(SESSION_KEY)["secret"] if kept and kept["client"] == client.pk else None
    context = {
        "client": client,
        "secret": secret,
        "done_url": done_url,
        # Where the software connects, to set it up with the secret.
        "fhir_base": f"{settings.SITE_URL}{reverse('fhir_base')}",
        "token_url": f"{settings.SITE_URL}{reverse('fhir:token')}",
    }
    response = render(request, "support/api_client_secret.html", context)
    response["Cache-Control"] = "no-store"
    return response

"""Lockout (django-axes) glue: which account a sign-in attempt is for."""


def username_of(request, credentials=None) -> str:
    """The account an attempt targets: allauth authenticates with ``email``; its form
    posts ``login``; the admin posts ``username``. Lower-cased, as emails are stored."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if not value and request is not None:
        data = getattr(request, "POST", {})
        value = data.get("login") or data.get("username")
    return (value or "").strip().lower()


def client_ip(request) -> str | None:
    """The client's address, by allauth's rule (``X-Forwarded-For`` counted from the right
    when ``ALLAUTH_TRUSTED_PROXY_COUNT`` says Carnet runs behind proxies, else
    ``REMOTE_ADDR``), so lockouts, sessions and security events agree."""
    from allauth.account.adapter import get_adapter
    from django.core.exceptions import PermissionDenied

    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:
        return None

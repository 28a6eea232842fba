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

"""The authentication backends, reading the signed-in user of each request by
``portal.keyed_rows`` (the same row and checks as Django's, without building the query
anew at every request)."""

from allauth.account import auth_backends as allauth_backends
from django.contrib.auth import backends

from portal.accounts.models import User
from portal.keyed_rows import KeyedRow

_USER = KeyedRow(User)


class _GetUser:
    def get_user(self, user_id):
        user = _USER.get(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_GetUser, backends.ModelBackend):
    """Django's: a password sign-in by email."""


class AuthenticationBackend(_GetUser, allauth_backends.AuthenticationBackend):
    """allauth's: the sign-in form, login by code, password reset."""


# The backend a view names when it signs someone in itself (an accepted invitation).
MODEL_BACKEND = f"{ModelBackend.__module__}.{ModelBackend.__qualname__}"

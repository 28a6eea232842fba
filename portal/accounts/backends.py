"""The authentication backends, reading the signed-in user of each request by
``portal.keyed_rows`` (the same row and checks as Django's, without building the query
anew at every request)."""

from allauth.account import auth_backends as allauth_backends
from django.contrib.auth import backends

from portal.accounts.models import Representation, User
from portal.keyed_rows import KeyedRow

# Read at every request, with what every patient-side page asks next (portal.access's
# records_of): one's own record (``user.patient``) and whether one represents anyone
# (``user.represents``). An app may ask a question of its own in the same SELECT
# (KeyedRow.also_exists: messaging's "anything unread?", which most answer "no").
USER_ROW = KeyedRow(User, related=("patient",), exists={"represents": (Representation, "representative")})


class _GetUser:
    def get_user(self, user_id):
        user = USER_ROW.get(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_GetUser, backends.ModelBackend):
    """Django's: a password sign-in by email."""


class AuthenticationBackend(_GetUser, allauth_backends.AuthenticationBackend):
    """allauth's: the sign-in form, login by code, password reset."""


# The backend a view names when it signs someone in itself (an accepted invitation).
MODEL_BACKEND = f"{ModelBackend.__module__}.{ModelBackend.__qualname__}"

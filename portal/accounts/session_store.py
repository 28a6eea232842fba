"""Sessions in the database, as Django's ``db`` engine keeps them; only the read of a
request's session is a SELECT written once (``portal.keyed_rows``), with the same
expiry check."""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.keyed_rows import KeyedRow

_SESSION = KeyedRow(Session)


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        found = _SESSION.get(self.session_key)
        if found is None or found.expire_date <= timezone.now():
            self._session_key = None
            return None
        return found

"""The test run's environment, then the one settings.py. Not a second settings file:
only environment defaults that a developer's shell would otherwise have to set."""

import os
import uuid

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-never-used-in-production")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("STATIC_MANIFEST", "0")
os.environ.setdefault("WHITENOISE_USE_FINDERS", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("ALLOW_DEVELOPMENT_KEYS", "1")
# Every prepared query (portal.prepared) is checked against the one its values build.
os.environ.setdefault("PREPARED_QUERIES_CHECK", "1")
# Parallel test processes (and successive runs) share the cache: each gets its own keys.
os.environ.setdefault(
    "CACHE_KEY_PREFIX", f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:8]}"
)

# SQLite tests use a file, so a real Celery worker process can share the test database.
os.environ.setdefault(
    "TEST_SQLITE_NAME", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test.sqlite3")
)

from portal.settings import *  # noqa: F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns when it is missing)

"""Shared fixtures: the people of every test, and the services some tests need.

``patient`` and ``other_patient`` are ``Patient`` records (with a login in
``.user``); ``clinician``, ``other_clinician`` and ``support`` are ``User``s.
``clinician`` belongs to ``team``, which cares for ``patient``;
``other_clinician`` belongs to ``other_team``, which cares for ``other_patient``.
"""

import datetime
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection

from portal.accounts.models import User
from portal.celery import app as celery_app
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory, PatientFactory, UserFactory

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def need(available: bool, reason: str):
    """Skip with ``reason`` when a service is missing; fail instead under REQUIRE_SERVICES=1."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    need(bool(url) and reachable(url), "needs Redis: set REDIS_URL to a reachable server")
    return url


class RedisServer:
    """A redis-server of the test's own, on a free port: ``stop()`` it mid-test to see
    what Carnet does without Redis, ``start()`` it again to see it come back."""

    def __init__(self, binary, directory):
        self.binary, self.directory = binary, directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert wait_for(lambda: reachable(self.url), 10), "redis-server did not start"

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path):
    """A running redis-server that this test alone uses, and may stop."""
    binary = shutil.which("redis-server")
    need(binary is not None, "needs redis-server on PATH")
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres(settings):
    need(settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "needs PostgreSQL: set DATABASE_URL")


# Content types and permissions: what the flush's post_migrate signal would create again.
_KEPT_BY_FLUSH = {"django_content_type", "auth_permission"}
# Dead rows past which a table is truncated rather than deleted from: autovacuum is off on
# these machines, and the rows of every rolled-back test stay dead in the table; plans
# read from a table swollen with them are not those of a live database.
_SWOLLEN = 1_000


@pytest.fixture(scope="session", autouse=True)
def flush_by_delete(django_db_blocker):
    """After each transactional test Django empties every table with one TRUNCATE (and
    recreates the content types and permissions): 0.4 s on PostgreSQL, whatever the rows,
    since each of the 75 tables gets new files. As a superuser, a DELETE of the few rows
    a test wrote takes 0.02 s, with the triggers off for the transaction (foreign keys in
    any order, and the append-only tables: ``session_replication_role``); the content
    types and permissions stay, so post_migrate finds them made. The tables holding more
    than ``_SWOLLEN`` dead rows are truncated, as every table was. Otherwise, TRUNCATE."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    superuser = {}

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        with django_db_blocker.unblock(), self.connection.cursor() as cursor:
            if "is" not in superuser:
                cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                superuser["is"] = cursor.fetchone()[0]
            if reset_sequences or not superuser["is"]:
                return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
            cursor.execute("SELECT relname FROM pg_stat_user_tables WHERE n_dead_tup > %s", [_SWOLLEN])
            dead = {name for (name,) in cursor.fetchall()}
        kept = [table for table in tables if table not in _KEPT_BY_FLUSH]
        swollen = [table for table in kept if table in dead]
        # Table names from Django's introspection of its own models, quoted. CASCADE: the
        # tables that refer to a swollen one are emptied with it.
        statements = ["SET LOCAL session_replication_role = replica"]
        if swollen:
            statements.append(f"TRUNCATE {', '.join(self.quote_name(table) for table in swollen)} CASCADE")
        return [*statements, *(f"DELETE FROM {self.quote_name(t)}" for t in kept if t not in swollen)]  # noqa: S608

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


def forget_broker_connections():
    """Celery keeps its connections to the broker it first reached (the app's pool and
    the producers' pool of its ``amqp``): dropped, the next task connects to the broker
    the settings name now, a test's unreachable one say, or the real one again."""
    from portal.celery import app

    app._pool = None
    amqp = app.__dict__.get("amqp")  # not made here if it was not yet
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture(autouse=True)
def broker_not_resting(monkeypatch):
    """Each test starts with the broker not resting (``portal.jobs.send``): a test that
    stopped Redis leaves no rest to the next one."""
    from portal import jobs

    monkeypatch.setattr(jobs, "_broker_failed_at", None)


@pytest.fixture(autouse=True)
def own_cache_keys(settings):
    """Each test gets its own cache keys: allauth's rate limits (30 sign-ins a minute
    from one address) and other cached state do not leak from one test to the next."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:8]}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the default language: a request in English (the language
    middleware leaves it active in the thread) does not carry into the next test."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def team(db):
    return CareTeamFactory(name="Cabinet médical des Tilleuls")


@pytest.fixture
def other_team(db):
    return CareTeamFactory(name="Service de pneumologie")


@pytest.fixture
def patient(team):
    patient = PatientFactory(
        first_name="Camille", last_name="Durand", user__first_name="Camille", user__last_name="Durand"
    )
    CareLinkFactory(patient=patient, team=team)
    return patient


@pytest.fixture
def other_patient(other_team):
    patient = PatientFactory(
        first_name="Lucas", last_name="Bernard", user__first_name="Lucas", user__last_name="Bernard"
    )
    CareLinkFactory(patient=patient, team=other_team)
    return patient


@pytest.fixture
def clinician(team):
    return ClinicianFactory(first_name="Claire", last_name="Martin", teams=[team])


@pytest.fixture
def other_clinician(other_team):
    return ClinicianFactory(first_name="Sophie", last_name="Lefèvre", teams=[other_team])


@pytest.fixture
def minor(team):
    """Léa, 10, who has no login of her own (representation: a parent acts for her record)."""
    from portal.accounts.models import Patient

    today = datetime.date.today()
    child = Patient.objects.create(
        first_name="Léa",
        last_name="Durand",
        birth_date=today.replace(year=today.year - 10) - datetime.timedelta(days=3),
    )
    CareLinkFactory(patient=child, team=team)
    return child


@pytest.fixture
def parent(minor):
    """Marie, with her own record, holding parental authority over Léa."""
    from portal.accounts.models import Representation

    marie = PatientFactory(first_name="Marie", last_name="Durand", user__first_name="Marie", user__last_name="Durand")
    Representation.objects.create(patient=minor, representative=marie.user, kind="parent", proof="birth_certificate")
    return marie


def switch(client, patient):
    """Choose ``patient``'s record in the record switcher (representation)."""
    from django.urls import reverse

    return client.post(reverse("representation:switch"), {"record": patient.pk})


def whole_record(client, patient) -> str:
    """The pages of ``patient``'s record for their care team (the summary and each
    history), one after the other, as the signed-in clinician reads them."""
    from django.urls import reverse

    pages = ("detail", "documents", "prescriptions", "results")
    return "".join(
        client.get(reverse(f"careteams:patient_{page}", args=[patient.pk])).content.decode() for page in pages
    )


@pytest.fixture
def support(db):
    return UserFactory(first_name="Julie", last_name="Moreau", role=User.Role.SUPPORT)


def as_user(who):
    """The login of a fixture: a ``User`` as is, a ``Patient``'s own login."""
    return who if isinstance(who, User) else who.user


def terms_accepted_by(user):
    """``user`` has accepted the terms of use in force (as at a first sign-in)."""
    from django.conf import settings

    from portal.models import TermsAcceptance

    TermsAcceptance.objects.get_or_create(user=user, version=settings.TERMS_VERSION)


def second_factor_of(user):
    """The confirmed email device of ``user``, created on first use."""
    from django_otp.plugins.otp_email.models import EmailDevice

    device, _ = EmailDevice.objects.get_or_create(user=user, name="Email", defaults={"confirmed": True})
    return device


@pytest.fixture
def login(client):
    """Sign ``who`` in on the test client (the one place that knows how): password
    and second factor both passed, as after a real sign-in."""
    from django_otp import DEVICE_ID_SESSION_KEY

    def sign_in(who, on=None):
        target = on or client
        user = as_user(who)
        terms_accepted_by(user)
        target.force_login(user)
        session = target.session
        session[DEVICE_ID_SESSION_KEY] = second_factor_of(user).persistent_id
        session.save()
        return target

    return sign_in


@pytest.fixture
def password_only_login(client):
    """Sign ``who`` in with the password only: the second factor is still to pass."""

    def sign_in(who, on=None):
        target = on or client
        target.force_login(as_user(who))
        return target

    return sign_in


def database_url():
    """A URL for the test database this process is using, for a worker process to share."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(request):
    """Redis when available (and always under REQUIRE_SERVICES=1); the filesystem transport otherwise."""
    if os.environ.get("REDIS_URL") or os.environ.get("REQUIRE_SERVICES") == "1":
        return request.getfixturevalue("redis_url")
    return None


@pytest.fixture
def celery_worker(broker, transactional_db, monkeypatch):
    """A real Celery worker process on a queue of its own, sharing the test
    database; tasks this test enqueues go to that queue."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    yield queue
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    print(output)


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def reauthenticate(client):
    """Type the password again, as allauth asks before sensitive changes."""
    from django.urls import reverse

    from tests.factories import PASSWORD

    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, "re-authentication failed"

import cProfile
import os
import pstats
import statistics
import time
from contextlib import contextmanager

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext


@contextmanager
def throwaway_database():
    """A fresh, migrated database for the run, dropped afterwards."""
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def measure(fn, *, repeat=7, warmup=2):
    """Median and min wall time of ``fn()`` in milliseconds, and its query count."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        fn()
    # Statements sent, not counting the transaction's own (BEGIN, COMMIT, savepoints).
    queries = sum(not query["sql"].startswith(TRANSACTION_CONTROL) for query in ctx.captured_queries)
    reset_queries()
    return {"median_ms": statistics.median(times), "min_ms": min(times), "queries": queries}


def python_calls(fn) -> int:
    """The Python function calls of one ``fn()`` (cProfile's count): the interpreter's work,
    which, unlike CPU time, the machine's load does not move: a change's effect on it shows
    in any run, on any machine. Counted as the servers run: without the test environment's
    instrumented templates and the test suite's check of every prepared query."""
    from django.test.utils import override_settings, setup_test_environment, teardown_test_environment

    teardown_test_environment()
    try:
        with override_settings(ALLOWED_HOSTS=["testserver"], PREPARED_QUERIES_CHECK=False):
            fn()  # warm: first-use work (a prepared query's first compile) is not the page's own
            profile = cProfile.Profile()
            profile.enable()
            try:
                fn()
            finally:
                profile.disable()
    finally:
        setup_test_environment()
    return pstats.Stats(profile).total_calls


def _backend_cpu():
    """CPU seconds used so far by this connection's PostgreSQL backend (a process on
    this machine, read from /proc); 0 on SQLite, whose work is in this process."""
    if connection.vendor != "postgresql":
        return 0.0
    if getattr(connection, "_bench_pid", None) is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            connection._bench_pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{connection._bench_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(fn, *, requests=20):
    """CPU milliseconds per call of ``fn`` (this process + its database backend),
    over ``requests`` calls: clock-tick resolution needs many."""
    app, db = time.process_time(), _backend_cpu()
    for _ in range(requests):
        fn()
    return (time.process_time() - app + _backend_cpu() - db) * 1000 / requests


def against_floor(fn, floor, *, rounds=5, requests=20):
    """Page and floor alternated in the same run, ``rounds`` times: the median CPU
    per request of each and their ratio, which stays meaningful on a busy machine."""
    fn(), floor()
    pages, floors = [], []
    for _ in range(rounds):
        floors.append(cpu_per_request(floor, requests=requests))
        pages.append(cpu_per_request(fn, requests=requests))
    page_cpu, floor_cpu = statistics.median(pages), statistics.median(floors)
    return {"cpu_ms": page_cpu, "floor_cpu_ms": floor_cpu, "ratio": page_cpu / floor_cpu if floor_cpu else 0.0}


def load_average():
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def report(title, rows):
    print(f"\n## {title}  ({connection.vendor}, {os.cpu_count()} cores)")
    with_cpu = any("cpu_ms" in figures for _, figures in rows)
    extra = f" {'CPU ms':>7} {'x floor':>8}" if with_cpu else ""
    print(f"{'what':<58} {'median ms':>10} {'min ms':>9} {'queries':>8}{extra}")
    for name, figures in rows:
        extra = f" {figures['cpu_ms']:>7.2f} {figures['ratio']:>8.2f}" if "cpu_ms" in figures else ""
        print(f"{name:<58} {figures['median_ms']:>10.1f} {figures['min_ms']:>9.1f} {figures['queries']:>8}{extra}")


def analyze():
    """After bulk loading, what autovacuum would have done by then in production: the
    planner's statistics, and the tables vacuumed (visibility map, hint bits), so that
    neither happens during a measurement."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def signed_in_client(user):
    """A test client signed in as ``user`` with the second factor passed."""
    from django.conf import settings
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_email.models import EmailDevice

    from portal.models import TermsAcceptance

    TermsAcceptance.objects.get_or_create(user=user, version=settings.TERMS_VERSION)
    client = Client()
    client.force_login(user)
    device, _ = EmailDevice.objects.get_or_create(user=user, name="Email", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def check_ok(fn):
    """Fail loudly if a measured page does not answer 200: a redirect is not a figure."""

    def wrapped(*args, **kwargs):
        response = fn(*args, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"benchmark page answered {response.status_code}")
        return response

    return wrapped

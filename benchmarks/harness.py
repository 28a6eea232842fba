import os
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
    queries = len(ctx)
    reset_queries()
    return {"median_ms": statistics.median(times), "min_ms": min(times), "queries": queries}


def report(title, rows):
    print(f"\n## {title}  ({connection.vendor}, {os.cpu_count()} cores)")
    print(f"{'what':<58} {'median ms':>10} {'min ms':>9} {'queries':>8}")
    for name, figures in rows:
        print(f"{name:<58} {figures['median_ms']:>10.1f} {figures['min_ms']:>9.1f} {figures['queries']:>8}")


def analyze():
    """Refresh planner statistics after bulk loading, as autovacuum would in production."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def signed_in_client(user):
    """A test client signed in as ``user`` with the second factor passed."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_email.models import EmailDevice

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

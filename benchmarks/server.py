"""Pages measured as production serves them: gunicorn with 2 sync workers and
``DEBUG=0``, over HTTP, against the bench's database (and Redis when ``REDIS_URL`` is
set). CPU per request is read from ``/proc``: the web workers plus the database
backends serving them, so a busy machine changes the wall time but hardly the CPU.

Two servers run side by side: the site itself, and the same code with no middleware
(floor (a): one query, a tiny template). Floor (b) is that view on the site, signed
in. Pages and floors are alternated in the same run, and the ratios are what count.
"""

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url():
    """The URL of the database the bench just filled (its throwaway copy)."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def production_environment(*, hosts="127.0.0.1", bare=False) -> dict:
    """The environment of a process that serves the bench's database as production runs:
    ``DEBUG=0``, this process's secret key (its sessions valid there), no check of every
    prepared query (the test suite's settings, which this process loaded, set it)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DATABASE_URL": _database_url(),
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": hosts,
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",
        "ALLOW_DEVELOPMENT_KEYS": "1",
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        "BENCH_BARE": "1" if bare else "",
        "PREPARED_QUERIES_CHECK": "0",
    }


class Server:
    """A gunicorn serving Carnet (``bare``: with no middleware) on a free port."""

    def __init__(self, *, workers=2, bare=False):
        self.port = _free_port()
        env = production_environment(bare=bare)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "gunicorn", "benchmarks.wsgi", "--workers", str(workers),
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/bench/floor/")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the bench's gunicorn did not start") from None
                time.sleep(0.2)
        for _ in range(workers * 4):  # every worker has loaded the code and opened its connection
            self.get("/bench/floor/")

    def get(self, path, cookie=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        return response.status, body

    def worker_pids(self):
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def _cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def _backend_pids():
    """The database backends serving the servers (every client connection to the bench's
    database but this process's own: not autovacuum's workers, whose passes over the
    freshly loaded tables would be counted against whichever page they overlap); none on
    SQLite, whose work is in the workers."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def servers():
    site = Server(workers=2)
    try:
        bare = Server(workers=1, bare=True)
        try:
            yield site, bare
        finally:
            bare.stop()
    finally:
        site.stop()


class Target:
    """One page on one server, as one signed-in person (or nobody)."""

    def __init__(self, server, path, cookie=None):
        self.server, self.path, self.cookie = server, path, cookie

    def __call__(self):
        status, body = self.server.get(self.path, self.cookie)
        if status != 200:
            raise RuntimeError(f"{self.path} answered {status}")
        return body

    def cpu_ms(self, requests):
        """CPU per request of the workers and the database backends together; the
        backends' share is kept in ``database_ms``."""
        workers, backends = self.server.worker_pids(), _backend_pids()
        before = _cpu_seconds(workers), _cpu_seconds(backends)
        for _ in range(requests):
            self()
        app, database = (_cpu_seconds(workers) - before[0]) * 1000, (_cpu_seconds(backends) - before[1]) * 1000
        self.database_ms = database / requests
        return (app + database) / requests


def _requests_for(target, budget_ms=400):
    """How many requests make a round of about ``budget_ms`` of CPU: /proc counts in clock
    ticks (10 ms), so a round must be long enough to be read to a few percent."""
    per_request = max(target.cpu_ms(10), 0.5)
    return max(20, min(400, round(budget_ms / per_request)))


def against(page, floor, *, rounds=5):
    """Page and floor alternated, ``rounds`` times: median CPU per request of each (the
    page's database share, its median, in ``page.database_ms``)."""
    page(), floor()
    page_requests, floor_requests = _requests_for(page), _requests_for(floor)
    pages, floors, databases = [], [], []
    for _ in range(rounds):
        floors.append(floor.cpu_ms(floor_requests))
        pages.append(page.cpu_ms(page_requests))
        databases.append(page.database_ms)
    page_ms, floor_ms = statistics.median(pages), statistics.median(floors)
    page.database_ms = statistics.median(databases)
    return page_ms, floor_ms, (page_ms / floor_ms if floor_ms else 0.0)


def percentile_under_load(target, *, connections=8, requests=400):
    """Wall-clock latencies with ``connections`` clients at once: (median, p99) in ms."""
    latencies, lock, left = [], threading.Lock(), [requests]

    def client():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            start = time.perf_counter()
            target()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return statistics.median(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def cookie_of(client):
    """The cookies a signed-in browser sends, named as the server names them: its session,
    and the CSRF secret it was given with its first form (kept for a year: without it,
    every page with a form would make a new secret and set the cookie again)."""
    from django.middleware.csrf import _get_new_csrf_string

    if settings.CSRF_COOKIE_NAME not in client.cookies:
        client.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()  # as Django makes it
    session, secret = (client.cookies[name].value for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME))
    return f"__Host-sessionid={session}; __Host-csrftoken={secret}"

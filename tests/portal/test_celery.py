"""Tasks go through a real broker to a real worker process."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction

from portal.celery import app as celery_app
from portal.models import WorkerHeartbeat
from portal.tasks import heartbeat

ROOT = Path(__file__).resolve().parents[2]


def test_production_grade_celery_settings():
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit and conf.task_time_limit > conf.task_soft_time_limit


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
def worker(broker, transactional_db, monkeypatch):
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url()}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
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


def test_a_task_reaches_a_real_worker_through_the_broker(worker):
    name = f"probe-{uuid.uuid4().hex[:8]}"
    heartbeat.apply_async(args=[name], queue=worker)
    assert wait_for(lambda: WorkerHeartbeat.objects.filter(name=name).exists())


def test_enqueueing_waits_for_the_commit(django_capture_on_commit_callbacks, db, monkeypatch):
    sent = []
    monkeypatch.setattr(heartbeat, "apply_async", lambda *a, **kw: sent.append((a, kw)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        heartbeat.delay_on_commit("after-commit")
        assert sent == []
    assert len(callbacks) == 1
    assert sent and sent[0][0] == (("after-commit",), {})


def test_heartbeat_is_idempotent(db):
    heartbeat("twice")
    heartbeat("twice")
    assert WorkerHeartbeat.objects.filter(name="twice").count() == 1

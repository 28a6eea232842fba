"""Tasks go through a real broker to a real worker process."""

import uuid

from django.db import transaction

from portal.celery import app as celery_app
from portal.models import WorkerHeartbeat
from portal.tasks import heartbeat
from tests.conftest import wait_for


def test_production_grade_celery_settings():
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit and conf.task_time_limit > conf.task_soft_time_limit


def test_every_periodic_job_names_a_registered_task_with_time_limits(db):
    celery_app.loader.import_default_modules()  # what a worker imports at start
    schedule = celery_app.conf.beat_schedule
    assert {"sweep-exports", "clear-expired-sessions"} <= set(schedule)
    for entry in schedule.values():
        task = celery_app.tasks[entry["task"]]  # KeyError: a job beat could never run
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit, entry["task"]


def test_a_task_reaches_a_real_worker_through_the_broker(celery_worker):
    name = f"probe-{uuid.uuid4().hex[:8]}"
    heartbeat.delay(name)
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

"""The relay of kept tasks (``portal.jobs``): two relays at once (two beats, one left
behind by a killed worker) hand each kept task over once; a task this version does not
know is left, never in the way of the others; a kept task handed over twice (the
relay's commit failed after the hand-over) or delivered twice sends its email once;
a worker that ran the relay still logs its tasks and prints its emails."""

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet

from portal import jobs
from portal.celery import app
from portal.models import PendingTask
from portal.tasks import relay_pending_tasks
from tests.conftest import ROOT, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)  # two relays, two connections, real commits
TASK = "portal.accounts.tasks.send_security_notice"


@pytest.fixture
def handed_over(monkeypatch):
    """What reached the broker: each hand-over slow enough for two relays to overlap."""
    sent = []

    def apply_async(args, task_id):
        time.sleep(0.01)
        sent.append(tuple(args))

    app.autodiscover_tasks(force=True)  # as the relay does
    monkeypatch.setattr(app.tasks[TASK], "apply_async", apply_async)
    return sent


def test_two_relays_at_once_hand_each_kept_task_over_once(postgres, patient, handed_over):
    PendingTask.objects.bulk_create(
        [PendingTask(task=TASK, args=[patient.user_id, "new_sign_in", n]) for n in range(30)]
    )
    counts, start = [], threading.Barrier(2)

    def relay():
        start.wait()
        try:
            counts.append(jobs.relay_pending_tasks())
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 30 and len(handed_over) == 30
    assert sorted(args[2] for args in handed_over) == list(range(30))
    # Handed over, kept until they have run: not handed over again meanwhile.
    assert not PendingTask.objects.filter(handed_at__isnull=True).exists()
    assert jobs.relay_pending_tasks() == 0 and len(handed_over) == 30


def test_a_task_unknown_to_this_version_does_not_hold_the_others_back(patient, handed_over):
    PendingTask.objects.create(task="portal.tasks.renamed_since", args=[1])
    PendingTask.objects.create(task=TASK, args=[patient.user_id, "new_sign_in", None])
    assert jobs.relay_pending_tasks() == 1 and len(handed_over) == 1
    waiting = PendingTask.objects.filter(handed_at__isnull=True)
    assert list(waiting.values_list("task", flat=True)) == ["portal.tasks.renamed_since"]


def test_a_kept_task_handed_over_twice_sends_its_email_once(patient, monkeypatch):
    """The relay hands a row over, then its commit fails: the row stays and the next run
    hands it over again, under the same id; the worker sends the email once."""
    app.loader.import_default_modules()
    task = app.tasks[TASK]
    deliveries = []

    def apply_async(args, task_id):  # what a worker does with what reaches the broker
        deliveries.append(task_id)
        return task.apply(args, task_id=task_id)

    monkeypatch.setattr(task, "apply_async", apply_async)
    PendingTask.objects.create(task=TASK, args=[patient.user_id, "new_sign_in", None])
    update = QuerySet.update

    def commit_fails(self, **kwargs):  # marking the row handed over: the database went away
        raise ConnectionError("the database went away before the commit")

    monkeypatch.setattr(QuerySet, "update", commit_fails)
    with pytest.raises(ConnectionError):
        jobs.relay_pending_tasks()
    # Rolled back: the row, which the task's run had taken, is back, not handed over.
    assert PendingTask.objects.filter(handed_at__isnull=True).count() == 1 and len(mail.outbox) == 1

    monkeypatch.setattr(QuerySet, "update", update)
    assert jobs.relay_pending_tasks() == 1
    assert len(deliveries) == 2 and deliveries[0] == deliveries[1]  # the same delivery, twice
    assert len(mail.outbox) == 1 and not PendingTask.objects.exists()


def test_a_task_the_broker_lost_is_handed_over_again_and_sent_once(patient, monkeypatch):
    """Enqueued on commit, the task is kept until it has run: handed over, then lost by
    the broker (Redis restarted without its data), the relay hands it over again once
    ``LOST_AFTER`` has passed, under the same id; it runs, once, and its row goes."""
    import datetime

    import time_machine
    from django.utils import timezone

    from portal.accounts.tasks import send_security_notice

    handed = []
    monkeypatch.setattr(send_security_notice, "apply_async", lambda args, task_id: handed.append((args, task_id)))
    with transaction.atomic():
        jobs.enqueue_on_commit(send_security_notice, patient.user_id, "new_sign_in", None)
        assert PendingTask.objects.count() == 1 and handed == []  # kept first, in the transaction
    [(args, task_id)] = handed  # handed over once it committed...
    assert PendingTask.objects.get().handed_at is not None
    assert jobs.relay_pending_tasks() == 0  # ...and not again while it may be queued
    # The broker lost it (nothing ran). Long enough after, the relay hands it over again.
    with time_machine.travel(timezone.now() + jobs.LOST_AFTER + datetime.timedelta(minutes=1)):
        assert jobs.relay_pending_tasks() == 1
    assert handed[1] == (list(args), task_id)
    monkeypatch.undo()
    send_security_notice.apply(args, task_id=task_id)  # a worker runs it
    send_security_notice.apply(args, task_id=task_id)  # and the first copy, had it survived
    assert len(mail.outbox) == 1 and not PendingTask.objects.exists()


def test_an_email_task_runs_once_per_delivery_but_again_after_a_failure(patient, monkeypatch):
    app.loader.import_default_modules()
    task = app.tasks[TASK]
    args = [patient.user_id, "new_sign_in", None]
    task.apply(args, task_id="delivery-1")
    task.apply(args, task_id="delivery-1")  # redelivered after the worker was lost before its acknowledgement
    assert len(mail.outbox) == 1
    task.apply(args, task_id="delivery-2")  # another notice: sent
    assert len(mail.outbox) == 2

    cache.add("task-once:delivery-3", "running")  # another worker is sending it now
    task.apply(args, task_id="delivery-3")
    assert len(mail.outbox) == 2
    cache.delete("task-once:delivery-3")  # that worker was lost: its mark expires with its time limit
    task.apply(args, task_id="delivery-3")
    assert len(mail.outbox) == 3

    def mail_server_down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr("portal.accounts.services.send_bilingual", mail_server_down)
    task.apply(args, task_id="delivery-4")  # fails; a retry or a redelivery is not held back
    monkeypatch.undo()
    task.apply(args, task_id="delivery-4")
    assert len(mail.outbox) == 4


@pytest.fixture
def console_worker(broker, monkeypatch, tmp_path):
    """A real worker as ``scripts/run-dev`` starts it (a pool child, INFO, emails printed
    to the console) on a queue of its own; returns its output so far, as a function."""
    queue, output = f"test-{uuid.uuid4().hex[:12]}", tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
           "CELERY_QUEUE": queue, "CELERY_TASK_ALWAYS_EAGER": "0", "PYTHONIOENCODING": "utf-8",
           "EMAIL_BACKEND": "portal.mail.ReadableConsoleBackend"}  # fmt: skip
    with open(output, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--concurrency=1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "task_default_queue", queue)
    yield lambda: output.read_text(encoding="utf-8", errors="replace")
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    print(output.read_text(encoding="utf-8", errors="replace"))


def test_a_worker_that_ran_the_relay_still_logs_and_prints_emails(patient, console_worker):
    """The relay once re-ran Django's setup in the pool child (``import_default_modules``):
    logging configured anew, onto the stderr Celery had redirected into logging, so the
    child's every log line and console email after it went round in a loop and was lost."""
    PendingTask.objects.create(task=TASK, args=[patient.user_id, "new_sign_in", None])
    relay_pending_tasks.delay()
    assert wait_for(lambda: not PendingTask.objects.exists(), 60), console_worker()
    assert wait_for(lambda: "send_security_notice[kept-task-" in console_worker() and "succeeded" in
                    console_worker().split("send_security_notice[kept-task-")[-1], 30), console_worker()  # fmt: skip
    printed = console_worker()
    assert "relay_pending_tasks[" in printed and "succeeded" in printed.split("relay_pending_tasks[")[-1], printed
    assert f"To: {patient.user.email}" in printed, printed  # the relayed email, printed by the same child

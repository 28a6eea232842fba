"""The relay of kept tasks (``portal.jobs``): two relays at once (two beats, one left
behind by a killed worker) hand each kept task over once; a task this version does not
know is left, never in the way of the others."""

import threading
import time

import pytest
from django.db import connection

from portal import jobs
from portal.celery import app
from portal.models import PendingTask

pytestmark = pytest.mark.django_db(transaction=True)  # two relays, two connections, real commits
TASK = "portal.accounts.tasks.send_security_notice"


@pytest.fixture
def handed_over(monkeypatch):
    """What reached the broker: each hand-over slow enough for two relays to overlap."""
    sent = []

    def delay(*args):
        time.sleep(0.01)
        sent.append(args)

    app.loader.import_default_modules()  # as the relay does
    monkeypatch.setattr(app.tasks[TASK], "delay", delay)
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
    assert not PendingTask.objects.exists()


def test_a_task_unknown_to_this_version_does_not_hold_the_others_back(patient, handed_over):
    PendingTask.objects.create(task="portal.tasks.renamed_since", args=[1])
    PendingTask.objects.create(task=TASK, args=[patient.user_id, "new_sign_in", None])
    assert jobs.relay_pending_tasks() == 1 and len(handed_over) == 1
    assert list(PendingTask.objects.values_list("task", flat=True)) == ["portal.tasks.renamed_since"]

"""Enqueueing Celery tasks from a request without failing it when the broker is down,
and without losing them when the broker loses its queue.

``enqueue`` hands a task over now; what cannot be is kept in the database and relayed every
minute. ``enqueue_on_commit`` (every email a request causes) keeps the task in the database
in the request's own transaction, hands it over once that commits, and the row goes only
once the task has run (``portal.celery``): a task Redis lost (restarted without its data,
a queue flushed) is handed over again ``LOST_AFTER`` later, under the same id, so an email
task (``OnceTask``) is still sent once. (Messaging's notifications and exports have their
own rows and relays.)"""

import datetime
import logging
import time
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.models import PendingTask

logger = logging.getLogger(__name__)


# After the broker fails, a web process stops asking it for this long: a stalled Redis
# (it takes the connection, never answers) costs one request the socket's timeout, not
# every task of every request. Background relays and sweeps ask it whatever this says.
BROKER_REST_SECONDS = 10.0
# A task handed over this long ago and not run yet is taken as lost by the broker, and handed
# over again: longer than a queue waits on a busy worker, shorter than an invitation can wait.
LOST_AFTER = datetime.timedelta(minutes=30)
_broker_failed_at: float | None = None


class BrokerResting(Exception):
    """The broker failed moments ago: the task was not tried (``send``)."""


def send(task, *args, task_id=None):
    """``task.delay(*args)`` (under ``task_id`` when given), or ``BrokerResting`` at once
    while the broker failed less than ``BROKER_REST_SECONDS`` ago in this process; a
    failure starts that rest."""
    global _broker_failed_at
    if _broker_failed_at is not None and time.monotonic() - _broker_failed_at < BROKER_REST_SECONDS:
        raise BrokerResting(task.name)
    try:
        return task.apply_async(args, task_id=task_id) if task_id else task.delay(*args)
    except Exception:
        _broker_failed_at = time.monotonic()
        raise


def enqueue(task, *args, kept: int | None = None) -> bool:
    """Hand ``task(*args)`` (ids only) to Celery now. When the broker cannot be reached,
    keep it in the database for ``relay_pending_tasks`` and return False; never raise.
    ``kept``: the row already keeping it (``enqueue_on_commit``), marked handed over."""
    try:
        send(task, *args, task_id=kept_task_id(kept) if kept is not None else None)
    except Exception as error:  # kombu raises several types; all mean "not enqueued"
        logger.warning("broker unreachable (%s); %s kept for the relay", type(error).__name__, task.name)
        if kept is None:
            PendingTask.objects.create(task=task.name, args=list(args))
        return False
    if kept is not None:  # (the task may even have run and taken its row already)
        PendingTask.objects.filter(pk=kept).update(handed_at=timezone.now())
    return True


def relay_pending_tasks(*, limit: int = 500) -> int:
    """Hand the kept tasks to Celery, oldest first: those never handed over, and those
    handed over more than ``LOST_AFTER`` ago and not run since; returns how many were.
    Each row is claimed (locked; a relay running at the same time skips it) and marked in
    the transaction that hands it over: two relays never send one at once. A task this
    version does not know (renamed or removed by a deploy) is logged and left, never in the
    way of the others; the first failure to reach the broker stops the run (the rest wait)."""
    from portal.celery import app

    # Every app's tasks registered (a no-op in a worker, which did it at start), without
    # ``app.loader.import_default_modules()``: that runs Django's setup again, and its
    # logging configuration, in a worker child, printed onto the stderr Celery redirects
    # into logging: each line then goes round and is dropped, the child silent for good.
    app.autodiscover_tasks(force=True)
    relayed, now = 0, timezone.now()
    due = Q(handed_at__isnull=True) | Q(handed_at__lt=now - LOST_AFTER)
    with transaction.atomic():
        for pending in PendingTask.objects.select_for_update(skip_locked=True).filter(due).order_by("pk")[:limit]:
            task = app.tasks.get(pending.task)
            if task is None:
                logger.error("kept task %s (row %s) is unknown to this version: left in the table", pending.task,
                             pending.pk)  # fmt: skip
                continue
            try:
                # An id of its own: handed over again (lost by the broker, or this commit
                # failed after the hand-over), a ``OnceTask`` (every email) is not run twice.
                task.apply_async(pending.args, task_id=kept_task_id(pending.pk))
            except Exception as error:
                logger.warning("broker unreachable (%s); the kept tasks wait for the next run", type(error).__name__)
                break
            # (A task run at once, eagerly, has taken its row already.)
            PendingTask.objects.filter(pk=pending.pk).update(handed_at=now)
            relayed += 1
    return relayed


KEPT_TASK_PREFIX = "kept-task-"


def kept_task_id(pk) -> str:
    """The Celery task id of the kept row ``pk``: every hand-over of it is one delivery."""
    return f"{KEPT_TASK_PREFIX}{pk}"


def task_ran(task_id: str) -> None:
    """A task has run (succeeded, or failed for good): its kept row, if any, goes."""
    row = (task_id or "").removeprefix(KEPT_TASK_PREFIX)
    if row != task_id and row.isdecimal():
        PendingTask.objects.filter(pk=int(row)).delete()


def enqueue_on_commit(task, *args) -> None:
    """``task(*args)`` (ids only) kept in the database in the current transaction, and
    handed to Celery once it commits (nothing if it rolls back); its row goes once it has
    run, so that a task the broker lost is handed over again (``relay_pending_tasks``)."""
    kept = PendingTask.objects.create(task=task.name, args=list(args))
    transaction.on_commit(partial(enqueue, task, *args, kept=kept.pk))

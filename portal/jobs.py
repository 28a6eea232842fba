"""Enqueueing Celery tasks from a request without failing it when the broker is down:
what cannot be handed over is kept in the database and relayed every minute.
(Messaging's notifications and exports have their own rows and relays.)"""

import logging
import time
from functools import partial

from django.db import transaction

from portal.models import PendingTask

logger = logging.getLogger(__name__)


# After the broker fails, a web process stops asking it for this long: a stalled Redis
# (it takes the connection, never answers) costs one request the socket's timeout, not
# every task of every request. Background relays and sweeps ask it whatever this says.
BROKER_REST_SECONDS = 10.0
_broker_failed_at: float | None = None


class BrokerResting(Exception):
    """The broker failed moments ago: the task was not tried (``send``)."""


def send(task, *args):
    """``task.delay(*args)``, or ``BrokerResting`` at once while the broker failed less
    than ``BROKER_REST_SECONDS`` ago in this process; a failure starts that rest."""
    global _broker_failed_at
    if _broker_failed_at is not None and time.monotonic() - _broker_failed_at < BROKER_REST_SECONDS:
        raise BrokerResting(task.name)
    try:
        return task.delay(*args)
    except Exception:
        _broker_failed_at = time.monotonic()
        raise


def enqueue(task, *args) -> bool:
    """Hand ``task(*args)`` (ids only) to Celery now. When the broker cannot be reached,
    keep it in the database for ``relay_pending_tasks`` and return False; never raise."""
    try:
        send(task, *args)
    except Exception as error:  # kombu raises several types; all mean "not enqueued"
        logger.warning("broker unreachable (%s); %s kept for the relay", type(error).__name__, task.name)
        PendingTask.objects.create(task=task.name, args=list(args))
        return False
    return True


def relay_pending_tasks(*, limit: int = 500) -> int:
    """Hand the kept tasks to Celery, oldest first; returns how many were. Each row is
    claimed (locked; a relay running at the same time skips it) and deleted in the
    transaction that hands it over: two relays never send one twice. A task this version
    does not know (renamed or removed by a deploy) is logged and left, never in the way
    of the others; the first failure to reach the broker stops the run (the rest wait)."""
    from portal.celery import app

    # Every app's tasks registered (a no-op in a worker, which did it at start), without
    # ``app.loader.import_default_modules()``: that runs Django's setup again, and its
    # logging configuration, in a worker child, printed onto the stderr Celery redirects
    # into logging: each line then goes round and is dropped, the child silent for good.
    app.autodiscover_tasks(force=True)
    relayed = 0
    with transaction.atomic():
        for pending in PendingTask.objects.select_for_update(skip_locked=True).order_by("pk")[:limit]:
            task = app.tasks.get(pending.task)
            if task is None:
                logger.error("kept task %s (row %s) is unknown to this version: left in the table", pending.task,
                             pending.pk)  # fmt: skip
                continue
            try:
                # An id of its own: handed over again (this commit failed after the hand-over),
                # a ``OnceTask`` (every email) is not run twice.
                task.apply_async(pending.args, task_id=f"kept-task-{pending.pk}")
            except Exception as error:
                logger.warning("broker unreachable (%s); the kept tasks wait for the next run", type(error).__name__)
                break
            pending.delete()
            relayed += 1
    return relayed


def enqueue_on_commit(task, *args) -> None:
    """``enqueue`` once the current transaction commits (nothing if it rolls back)."""
    transaction.on_commit(partial(enqueue, task, *args))

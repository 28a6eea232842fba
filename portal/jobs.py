"""Enqueueing Celery tasks from a request without failing it when the broker is down."""

import logging
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task, *args) -> bool:
    """Hand ``task(*args)`` to Celery now; False (logged, never raised) when the broker
    cannot be reached. Work that must survive an outage keeps its own row and a periodic
    relay (messaging's outbox, the exports' sweep); this is for the rest."""
    try:
        task.delay(*args)
    except Exception as error:  # kombu raises several types; all mean "not enqueued"
        logger.warning("broker unreachable (%s); %s not enqueued", type(error).__name__, task.name)
        return False
    return True


def enqueue_on_commit(task, *args) -> None:
    """``enqueue`` once the current transaction commits (nothing if it rolls back)."""
    transaction.on_commit(partial(enqueue, task, *args))

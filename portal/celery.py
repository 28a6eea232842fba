"""The Celery application. Configuration lives in settings.py (``CELERY_*``)."""

import logging
import os

from celery import Celery, Task
from celery.signals import task_postrun, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _release_pdf_renderer(**_kwargs):
    """A pool child leaves with os._exit: clean up what PDF rendering left in /tmp."""
    from records import pdf

    pdf.release()


@task_postrun.connect
def _forget_kept_task(task_id=None, state=None, **_kwargs):
    """A kept task (``portal.jobs``) that succeeded, or failed for good, leaves the table;
    one that will be retried stays (the retry is in the broker, which may lose it)."""
    if state in ("SUCCESS", "FAILURE"):
        from portal import jobs

        jobs.task_ran(task_id)


logger = logging.getLogger(__name__)


class OnceTask(Task):
    """A task that one delivery runs once: the same task id handed over twice (a kept
    task relayed again when the relay's commit failed after the hand-over, see
    ``portal.jobs``) or delivered again (a worker lost after the work, before the
    acknowledgement) is not run again once it succeeded, nor while it runs. A failure
    (a retry included) lets the next delivery run it; a worker lost while running it
    holds it only until its time limit has passed. The marks live in the cache (the
    database while Redis is down: ``portal.cache``)."""

    DONE_KEPT_SECONDS = 7 * 24 * 3600  # longer than any redelivery or relay waits

    def _mark(self):
        return f"task-once:{self.request.id}"

    def __call__(self, *args, **kwargs):
        from django.core.cache import cache

        if not self.request.id:  # called as a function, not delivered
            return super().__call__(*args, **kwargs)
        key = self._mark()
        if not cache.add(key, "running", timeout=self.time_limit or 600):
            logger.warning("task %s: this delivery (%s) already ran or is running; not run again", self.name,
                           self.request.id)  # fmt: skip
            return None
        try:
            result = super().__call__(*args, **kwargs)
        except BaseException:
            cache.delete(key)
            raise
        cache.set(key, "done", timeout=self.DONE_KEPT_SECONDS)
        return result

    def retry(self, *args, **kwargs):
        """Released before the retry is sent: a worker may take it at once."""
        from django.core.cache import cache

        cache.delete(self._mark())
        return super().retry(*args, **kwargs)


# Options of a task that sends one email: run once per delivery, retried with backoff
# on mail-server errors (SMTPException is an OSError), short time limits.
EMAIL_TASK_OPTIONS = {
    "base": OnceTask,
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 10,
    "soft_time_limit": 30,
    "time_limit": 60,
}

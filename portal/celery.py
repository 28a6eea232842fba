"""The Celery application. Configuration lives in settings.py (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _release_pdf_renderer(**_kwargs):
    """A pool child leaves with os._exit: clean up what PDF rendering left in /tmp."""
    from records import pdf

    pdf.release()


# Options of a task that sends one email: retried with backoff on mail-server
# errors (SMTPException is an OSError), short time limits.
EMAIL_TASK_OPTIONS = {
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 10,
    "soft_time_limit": 30,
    "time_limit": 60,
}

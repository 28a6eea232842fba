"""The Celery application. Configuration lives in settings.py (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

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

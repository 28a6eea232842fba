from celery import shared_task
from django.utils import timezone

from portal import idempotency, jobs
from portal.accounts import services as accounts
from portal.models import WorkerHeartbeat


@shared_task(acks_late=True, soft_time_limit=10, time_limit=20)
def heartbeat(name="default"):
    """Record that a worker consumed a message now. Idempotent: one row per name."""
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": timezone.now()})


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def clear_expired_sessions():
    """Periodic retention: expired sessions go (a sign-in leaves one behind otherwise)."""
    accounts.clear_expired_sessions()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def purge_form_submissions():
    """Periodic retention: forget the form tokens of a day ago."""
    idempotency.purge_form_submissions()


@shared_task(soft_time_limit=30, time_limit=60)
def relay_pending_tasks():
    """Periodic: hand to Celery the tasks kept while the broker was down."""
    jobs.relay_pending_tasks()

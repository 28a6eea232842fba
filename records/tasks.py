from celery import shared_task

from portal.celery import EMAIL_TASK_OPTIONS
from records import services


@shared_task(soft_time_limit=60, time_limit=90, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def process_document(document_id):
    """Make the preview and mark the document ready. Safe to run twice."""
    services.process_document(document_id=document_id)


@shared_task(soft_time_limit=60, time_limit=90)
def sweep_unprocessed_documents():
    services.sweep_unprocessed_documents()


@shared_task(**EMAIL_TASK_OPTIONS)
def deliver_digest(digest_id):
    """Send one what-is-new email. Safe to run twice: only a pending, due row is sent."""
    services.deliver_digest(digest_id=digest_id)


@shared_task(soft_time_limit=30, time_limit=60)
def relay_digests():
    """Periodic: hand to Celery the digests that are due and were not (broker down)."""
    services.relay_due_digests()

from celery import shared_task

from records import services


@shared_task(soft_time_limit=60, time_limit=90, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def process_document(document_id):
    """Make the preview and mark the document ready. Safe to run twice."""
    services.process_document(document_id=document_id)


@shared_task(soft_time_limit=60, time_limit=90)
def sweep_unprocessed_documents():
    services.sweep_unprocessed_documents()

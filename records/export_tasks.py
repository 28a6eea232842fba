"""Export tasks: thin, ids only. Imported by ``RecordsConfig.ready`` so that
Celery registers them (autodiscovery only looks for ``tasks`` modules)."""

from celery import shared_task

from portal.celery import EMAIL_TASK_OPTIONS
from records import exports


@shared_task(bind=True, soft_time_limit=600, time_limit=660, max_retries=20, acks_late=True)
def run_export(self, export_id):
    """Build one export. Safe to run twice; waits out a live run's lease."""
    try:
        # In a worker, a thread keeps the lease; an eager run (tests, no broker) needs none.
        exports.run_export(export_id=export_id, keep_lease=not self.request.is_eager)
    except exports.ExportBusy as busy:
        raise self.retry(countdown=busy.retry_in) from None


@shared_task(**EMAIL_TASK_OPTIONS)
def email_export_ready(export_id):
    """Send the export-ready email, once."""
    exports.email_export_ready(export_id=export_id)


@shared_task(soft_time_limit=120, time_limit=180)
def sweep_exports():
    """Periodic: purge exports after 7 days, re-enqueue lost ones."""
    exports.sweep_exports()

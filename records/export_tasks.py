"""Export tasks: thin, ids only. Imported by ``RecordsConfig.ready`` so that
Celery registers them (autodiscovery only looks for ``tasks`` modules)."""

from smtplib import SMTPException

from celery import shared_task

from records import exports


@shared_task(bind=True, soft_time_limit=600, time_limit=660, max_retries=20, acks_late=True)
def run_export(self, export_id):
    """Build one export. Safe to run twice; waits out a live run's lease."""
    try:
        exports.run_export(export_id=export_id)
    except exports.ExportBusy as busy:
        raise self.retry(countdown=busy.retry_in) from None


@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
    soft_time_limit=30,
    time_limit=60,
)
def email_export_ready(export_id):
    """Send the export-ready email, once."""
    exports.email_export_ready(export_id=export_id)


@shared_task(soft_time_limit=120, time_limit=180)
def sweep_exports():
    """Periodic: purge exports after 7 days, re-enqueue lost ones."""
    exports.sweep_exports()

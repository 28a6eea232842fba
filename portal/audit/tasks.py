from celery import shared_task

from portal.audit import services


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def check_audit_chains():
    """Periodic: the recent part of every audit chain; the operator is mailed once per break."""
    services.check_recent_audit_chains()


@shared_task(acks_late=True, soft_time_limit=30, time_limit=60, autoretry_for=(OSError,), retry_backoff=True)
def copy_report_to_dpo(report_id):
    """Tell the data-protection contact a patient reported an access (once per case)."""
    services.copy_report_to_dpo(report_id=report_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def relay_report_copies():
    """Periodic: the copies that could not be enqueued when the patient reported."""
    services.relay_report_copies()

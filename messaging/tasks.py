from smtplib import SMTPException

from celery import shared_task

from messaging import services


@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
    soft_time_limit=30,
    time_limit=60,
)
def deliver_notification(notification_id):
    """Send one new-message email. Safe to run twice: only a pending row is sent."""
    services.deliver_notification(notification_id=notification_id)


@shared_task(soft_time_limit=30, time_limit=60)
def relay_notifications():
    """Periodic: hand to Celery the notifications that could not be enqueued."""
    services.relay_pending_notifications()

from celery import shared_task

from messaging import services
from portal.celery import EMAIL_TASK_OPTIONS


@shared_task(**EMAIL_TASK_OPTIONS)
def deliver_notification(notification_id):
    """Send one new-message email. Safe to run twice: only a pending row is sent."""
    services.deliver_notification(notification_id=notification_id)


@shared_task(soft_time_limit=30, time_limit=60)
def relay_notifications():
    """Periodic: hand to Celery the notifications that could not be enqueued."""
    services.relay_pending_notifications()

from celery import shared_task

from portal.celery import EMAIL_TASK_OPTIONS
from reminders import services


@shared_task(acks_late=True, soft_time_limit=240, time_limit=280)
def scan_reminders():
    """Periodic: write the reminders that are due and hand the due emails over. Safe to
    run twice, or from two schedulers at once: each reminder's key is unique."""
    services.scan_reminders()


@shared_task(soft_time_limit=30, time_limit=60)
def relay_due_reminders():
    """Periodic: hand to Celery the reminder emails that are due (quiet hours over, broker back)."""
    services.relay_due_reminders()


@shared_task(**EMAIL_TASK_OPTIONS)
def deliver_reminder(reminder_id):
    """Send one reminder email. Safe to run twice: only a pending, due row is sent."""
    services.deliver_reminder(reminder_id=reminder_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def purge_old_reminders():
    """Periodic retention: reminders long past their use go."""
    services.purge_old_reminders()

from celery import shared_task

from portal.celery import EMAIL_TASK_OPTIONS
from portal.support import services


@shared_task(**EMAIL_TASK_OPTIONS)
def send_request_receipt(case_id):
    """Tell the person their message reached support (once)."""
    services.send_request_receipt(case_id=case_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def tell_report_answered(report_id):
    """Tell the patient support answered their report about an access (once)."""
    services.tell_report_answered(report_id=report_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_request_answer(case_id):
    """Email support's answer to the person (once)."""
    services.send_request_answer(case_id=case_id)

from celery import shared_task

from portal.accounts.models import HelperInvitation, Patient, User
from portal.celery import EMAIL_TASK_OPTIONS
from portal.representation import services


@shared_task(**EMAIL_TASK_OPTIONS)
def send_notice(user_id, notice, patient_id):
    """Email a content-free notice about a representation."""
    user, patient = User.objects.filter(pk=user_id).first(), Patient.objects.filter(pk=patient_id).first()
    if user is None or patient is None or notice not in services.NOTICES:
        return
    services.send_notice(user=user, notice=notice, patient=patient)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_helper_invitation(invitation_id):
    """Email a helper's invitation link while it is usable."""
    invitation = HelperInvitation.objects.select_related("patient").filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_usable():
        return
    services.send_helper_invitation_email(invitation=invitation)


@shared_task(soft_time_limit=300, time_limit=600)
def end_minorities():
    """Daily: parental representations end at 18 (idempotent)."""
    return services.end_minorities()

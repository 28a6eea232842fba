from celery import shared_task

from portal.accounts import services
from portal.accounts.models import Invitation, User


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    soft_time_limit=30,
    time_limit=60,
)
def send_security_notice(user_id, kind, email=None):
    """Email a security notice (password, email, second factor, new sign-in) to a user."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    services.send_security_notice(user=user, kind=kind, email=email)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    soft_time_limit=30,
    time_limit=60,
)
def send_invitation(invitation_id):
    """Email the link of an invitation that is still usable."""
    invitation = Invitation.objects.filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_usable():
        return
    services.send_invitation_email(invitation=invitation)

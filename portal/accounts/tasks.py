from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from portal.accounts import services
from portal.accounts.models import Invitation, User
from portal.celery import EMAIL_TASK_OPTIONS


@shared_task(**EMAIL_TASK_OPTIONS)
def send_security_notice(user_id, kind, email=None):
    """Email a security notice (password, email, second factor, new sign-in) to a user."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    services.send_security_notice(user=user, kind=kind, email=email)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_invitation(invitation_id):
    """Email the link of an invitation that is still usable."""
    invitation = Invitation.objects.filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_usable():
        return
    services.send_invitation_email(invitation=invitation)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_written_email(to, subject, body, html=""):
    """An email allauth wrote (a password reset's link, an address to confirm), sent
    away from the request: retried while the mail server does not answer."""
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()

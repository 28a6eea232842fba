from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class AccountAdapter(DefaultAccountAdapter):
    # allauth says "Please type your current password." when the one typed is wrong.
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "enter_current_password": _("This is not your current password."),
    }

    def add_message(self, request, level, message_template=None, *args, **kwargs):
        # "Successfully signed in" would show on the second-factor page, before the
        # sign-in is complete.
        if message_template == "account/messages/logged_in.txt":
            return
        super().add_message(request, level, message_template, *args, **kwargs)

    def send_mail(self, template_prefix, email, context):
        # allauth builds its links (reset, address confirmation, sign-up) from the
        # request's Host, which a client chooses (ALLOWED_HOSTS ignores the port):
        # every emailed link points at SITE_URL instead, as our own emails do.
        context = {key: on_site(value) if key.endswith("_url") else value for key, value in context.items()}
        # Written here, sent by Celery: a mail server down or slow neither fails the page
        # (a 500 on "forgot my password") nor holds it, and the sending is retried with
        # backoff (portal.jobs keeps it while the broker is down). The message is whole
        # (its link in it): the task reads nothing that this request's transaction writes.
        from portal import jobs
        from portal.accounts.tasks import send_written_email

        message = self.render_mail(template_prefix, email, {"email": email, **context})
        html = next((content for content, kind in getattr(message, "alternatives", ()) if kind == "text/html"), "")
        jobs.enqueue(send_written_email, list(message.to), message.subject, message.body, html)

    def is_open_for_signup(self, request):
        # Carnet works by invitation; open sign-up only where a setting allows it.
        return settings.ACCOUNT_OPEN_SIGNUP

    def send_notification_mail(self, template_prefix, user, context=None, email=None):
        # allauth's notices (password changed or reset, email changed) go through
        # Celery after commit, with our own wording and no request details.
        from portal.accounts.services import SECURITY_NOTICE_SUBJECTS, notify_security_event

        kind = template_prefix.rsplit("/", 1)[-1]
        if kind in SECURITY_NOTICE_SUBJECTS:
            notify_security_event(user=user, kind=kind, email=email)


def on_site(url):
    """``url`` moved onto ``SITE_URL``: its path and query kept, its scheme and host replaced."""
    if not isinstance(url, str) or not url:
        return url
    parts = urlsplit(url)
    return settings.SITE_URL + parts.path + (f"?{parts.query}" if parts.query else "")

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.audit.models import AccessLogQuerySet, AppendOnlyError


class SupportAction(models.Model):
    """One action of a support agent on an account, with the agent's reason.
    Append-only, like the access log (the model refuses changes; on PostgreSQL a
    trigger does too). The reason is internal: patients never see it."""

    class Action(models.TextChoices):
        DEACTIVATE = "deactivate", _("Deactivated the account")
        REACTIVATE = "reactivate", _("Reactivated the account")
        UNLOCK = "unlock", _("Lifted the sign-in lockout")
        RESET_SECOND_FACTOR = "reset_second_factor", _("Reset the second factor")
        END_SESSIONS = "end_sessions", _("Ended all sessions")

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="support_actions")
    action = models.CharField(max_length=32, choices=Action.choices)
    reason = models.TextField(max_length=1000)
    # From the confirmation form: a double submit writes one row, not two.
    request_key = models.UUIDField(unique=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.agent} {self.action} {self.account}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the support audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the support audit trail is append-only")

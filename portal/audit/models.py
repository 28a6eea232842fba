from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    pass


class AccessLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the access log is append-only")

    def delete(self):
        raise AppendOnlyError("the access log is append-only")


class AccessLog(models.Model):
    """One read of a patient's data by someone other than that patient.

    Append-only: the model refuses updates and deletes, and on PostgreSQL a
    trigger (see the migration) refuses them too.
    """

    class Action(models.TextChoices):
        VIEW_RECORD = "view_record", _("Opened the record")
        READ_CONVERSATION = "read_conversation", _("Read a conversation")
        LIST_DOCUMENTS = "list_documents", _("Listed the documents")
        VIEW_DOCUMENT = "view_document", _("Opened a document")
        DOWNLOAD_DOCUMENT = "download_document", _("Downloaded a document")
        PREVIEW_DOCUMENT = "preview_document", _("Saw a document's preview")
        LIST_CONVERSATIONS = "list_conversations", _("Saw a conversation in the team inbox")
        DOWNLOAD_ATTACHMENT = "download_attachment", _("Downloaded a message attachment")
        VIEW_RESULTS = "view_results", _("Looked at a lab result history")
        ACCOUNT_ACTION = "account_action", _("Support acted on the account")
        EXPORT = "export", _("Exported the record")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="access_logs")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_role = models.CharField(max_length=16)
    team = models.ForeignKey("careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    # What was read, in words the patient understands (e.g. a document's title).
    target = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["patient", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_role} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the access log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the access log is append-only")

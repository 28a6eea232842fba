from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.apps import UNREAD_FLAG
from portal.models import QuickLoad
from portal.prepared import prepared


class ImmutableError(Exception):
    pass


class ConversationQuerySet(models.QuerySet):
    def with_unread_for(self, user):
        """Annotate ``unread``: messages from others since ``user`` last read, read
        from ``user``'s read marker (one row per conversation, never the messages)."""
        unread = ReadState.objects.filter(conversation=OuterRef("pk"), user=user).values("unread")[:1]
        return self.annotate(unread=Coalesce(Subquery(unread), 0))


class Conversation(QuickLoad):
    """A thread between a patient and one care team."""

    class Kind(models.TextChoices):
        QUESTION = "question", _("Question")
        RENEWAL = "renewal", _("Prescription renewal")
        RESULT = "result", _("Question about a result")
        ADMINISTRATIVE = "administrative", _("Administrative")
        RESCHEDULE = "reschedule", _("Appointment change request")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="conversations")
    team = models.ForeignKey("careteams.CareTeam", on_delete=models.PROTECT, related_name="conversations")
    subject = models.CharField(_("subject"), max_length=200)
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices, default=Kind.QUESTION)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OPEN)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The prescription a renewal request is about.
    prescription = models.ForeignKey(
        "records.Prescription", null=True, blank=True, on_delete=models.PROTECT, related_name="renewal_requests"
    )
    # Set by the care team: kept from the patient's representatives.
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    # The appointment a reschedule request is about.
    appointment = models.ForeignKey(
        "agenda.Appointment", null=True, blank=True, on_delete=models.PROTECT, related_name="reschedule_requests"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-last_message_at", "-pk"]
        indexes = [
            models.Index(fields=["team", "status", "-last_message_at"]),
            # A patient's inbox and dashboard card, newest first, without sorting them all.
            models.Index(fields=["patient", "-last_message_at", "-id"], name="conversation_patient_latest"),
        ]

    def __str__(self):
        return self.subject


class MessageQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError("messages cannot be changed once sent")

    def delete(self):
        raise ImmutableError("messages cannot be deleted")


class Message(QuickLoad):
    """One message. Immutable once sent: no edit, no delete."""

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The team the author wrote for, when the author is a clinician.
    author_team = models.ForeignKey(
        "careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    body = models.TextField(_("message"), max_length=10_000)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self):
        return f"{self.author} @ {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("messages cannot be changed once sent")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("messages cannot be deleted")


class ReadStateQuerySet(models.QuerySet):
    def unread_by(self, user) -> dict[int, int]:
        """``user``'s markers of conversations with something unread, {conversation id:
        unread}: a few rows from a partial index, whatever the history's size. Asked at
        every page (the badge): its query is prepared (``portal.prepared``)."""
        return dict(_unread_markers(user.pk))

    def nothing_unread(self, user) -> bool:
        """Whether the SELECT that read the signed-in ``user`` said nothing is unread for
        them anywhere (``messaging.apps``): then no marker need be asked for. False when
        it did not say (a user read otherwise)."""
        return getattr(user, UNREAD_FLAG, True) is False

    def unread_total(self, user, conversations) -> int:
        """How many messages ``user`` has not read in ``conversations`` (a queryset, or a
        callable giving it, built only when something is unread): nothing unread at all,
        the common case, costs no query when the user's row said so, else one small one."""
        if self.nothing_unread(user):
            return 0
        unread = self.unread_by(user)
        if not unread:
            return 0
        if callable(conversations):
            conversations = conversations()
        return sum(unread[pk] for pk in conversations.filter(pk__in=list(unread)).values_list("pk", flat=True))


@prepared
def _unread_markers(user_id):
    return ReadState.objects.filter(user=user_id, unread__gt=0).order_by().values_list("conversation_id", "unread")


class ReadState(models.Model):
    """How far one reader (the patient, a member of the team) has read one
    conversation: ``unread`` counts the messages from others since, kept in the
    transaction that adds a message (see ``messaging.services``)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_at = models.DateTimeField(null=True, blank=True)
    unread = models.PositiveIntegerField(default=0)

    objects = ReadStateQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="readstate_unique")]
        indexes = [models.Index(fields=["user"], condition=models.Q(unread__gt=0), name="readstate_unread")]

    def __str__(self):
        return f"{self.user} read {self.conversation_id} at {self.last_read_at}"


class Event(models.Model):
    """The trace of a conversation: every send, read, assignment, close and reopen."""

    class Kind(models.TextChoices):
        SENT = "sent", _("sent a message")
        READ = "read", _("read the conversation")
        ASSIGNED = "assigned", _("assigned the conversation")
        CLOSED = "closed", _("closed the conversation")
        REOPENED = "reopened", _("reopened the conversation")

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # For an assignment: who it went to.
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.actor} {self.kind} {self.conversation_id}"


class Notification(models.Model):
    """Outbox row: one content-free email to one person, written in the transaction of
    what it tells, relayed to Celery after commit, and by a periodic relay when the
    broker was down. Mostly a new message; also what a patient did that their care team
    owns (``Kind``): an appointment they cancelled, a comment on an entry of their
    medical profile a professional wrote. Exactly one item is named, the kind's own."""

    class Kind(models.TextChoices):
        MESSAGE = "message", _("New message")
        APPOINTMENT_CANCELLED = "appt_cancelled", _("Appointment cancelled by the patient")
        PROFILE_COMMENT = "profile_comment", _("Comment of the patient on their profile")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MESSAGE)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications")
    appointment = models.ForeignKey(
        "agenda.Appointment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    profile_comment = models.ForeignKey(
        "records.ProfileComment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "recipient"], name="notification_unique"),
            models.UniqueConstraint(fields=["appointment", "recipient"], name="notification_appointment_unique"),
            models.UniqueConstraint(fields=["profile_comment", "recipient"], name="notification_comment_unique"),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="message", message__isnull=False, appointment=None, profile_comment=None)
                    | models.Q(kind="appt_cancelled", message=None, appointment__isnull=False, profile_comment=None)
                    | models.Q(kind="profile_comment", message=None, appointment=None, profile_comment__isnull=False)
                ),
                name="notification_one_item_of_its_kind",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.recipient} / {self.kind} {self.message_id or self.appointment_id or self.profile_comment_id}"


class ReplyTemplate(models.Model):
    """A care team's canned reply."""

    team = models.ForeignKey("careteams.CareTeam", on_delete=models.CASCADE, related_name="reply_templates")
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"), max_length=5_000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Attachment(models.Model):
    """A file sent with a message: checked like document uploads, sealed at rest
    under a random name, hash-verified when read. Immutable like its message."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="attachments")
    display_name = models.CharField(max_length=100)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    file_name = models.CharField(max_length=200)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.display_name

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("attachments cannot be changed once sent")
        super().save(*args, **kwargs)

    @property
    def download_name(self):
        """The name it downloads under: from the type found in its content, never the
        sender's name (run.bat, page.html, a right-to-left trick), which is display text only."""
        from records.files import EXTENSIONS

        return f"carnet-attachment-{self.pk}.{EXTENSIONS.get(self.content_type, 'bin')}"

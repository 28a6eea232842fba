from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Reminder(models.Model):
    """One reminder to one login on one channel, written once: its ``key`` (kind, object,
    moment, channel) is unique, so a second scan, a retried task or a restarted worker
    finds it there and writes nothing. An email reminder is its own outbox row: pending
    until ``deliver_reminder`` sends it (the row locked) or finds it no longer useful.
    An in-app reminder is shown on the patient's home page from ``due_at`` until
    ``useful_until``. It carries no health content: the kind says which sentence is
    shown, the ids let the delivery check it is still true."""

    class Kind(models.TextChoices):
        APPOINTMENT_EVE = "appointment_eve", _("Appointment tomorrow")
        APPOINTMENT_SOON = "appointment_soon", _("Appointment in two hours")
        RENEWAL = "renewal", _("Prescription ending soon")
        VACCINATION = "vaccination", _("Vaccination due")
        UNREAD_RESULTS = "unread_results", _("Results not opened")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        IN_APP = "in_app", _("On Carnet")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")

    key = models.CharField(max_length=160, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey("accounts.Patient", on_delete=models.CASCADE, related_name="+")
    # The appointment, prescription, news item or (vaccinations) patient it is about.
    subject_id = models.BigIntegerField()
    # A vaccination's entry in the calendar (reminders.vaccines), else empty.
    code = models.CharField(max_length=32, blank=True)
    # When it was meant to go out; when it goes out (after quiet hours); when it stops being useful.
    moment = models.DateTimeField()
    due_at = models.DateTimeField()
    useful_until = models.DateTimeField()
    # The appointment's start (appointment reminders): quiet hours let a same-day one through.
    event_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="pending", channel="email"),
                name="reminder_email_pending_due",
            ),
            models.Index(
                fields=["user", "-due_at"], condition=models.Q(channel="in_app"), name="reminder_in_app_by_user"
            ),
            models.Index(fields=["useful_until"], name="reminder_useful_until"),
            models.Index(
                fields=["user", "kind", "-sent_at"],
                condition=models.Q(status="sent", channel="email"),
                name="reminder_email_sent_by_user",
            ),
        ]

    def __str__(self):
        return f"reminder {self.pk} {self.kind}/{self.channel} ({self.status})"

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext


class AppointmentQuerySet(models.QuerySet):
    def scheduled(self):
        return self.filter(status=Appointment.Status.SCHEDULED)

    def upcoming(self, now=None):
        """Appointments not yet over (cancelled ones included: the patient sees them struck)."""
        return self.filter(ends_at__gt=now or timezone.now())

    def past(self, now=None):
        return self.filter(ends_at__lte=now or timezone.now())

    def between(self, start: datetime.datetime, end: datetime.datetime):
        """Appointments starting in [start, end): a day or a week of a team's agenda."""
        return self.filter(starts_at__gte=start, starts_at__lt=end)

    def overlapping(self, *, team, start: datetime.datetime, end: datetime.datetime, exclude=None):
        """``team``'s scheduled appointments overlapping [start, end), ``exclude`` (the one
        being changed) aside, earliest first."""
        return (
            self.scheduled()
            .filter(team=team, starts_at__lt=end, ends_at__gt=start)
            .exclude(pk=exclude)
            .order_by("starts_at", "pk")
        )

    def clashing(self, *, patient, team, start: datetime.datetime, end: datetime.datetime, exclude=None):
        """The patient's scheduled appointments with ``team`` overlapping [start, end),
        ``exclude`` aside, earliest first. Only the team's own are looked at: another
        team's say too much."""
        return self.overlapping(team=team, start=start, end=end, exclude=exclude).filter(patient=patient)


class Appointment(models.Model):
    """A care team's appointment with a patient. ``starts_at`` and ``ends_at`` are
    aware datetimes stored in UTC; forms take and pages show them in
    ``settings.TIME_ZONE`` (Europe/Paris), so an appointment keeps its wall-clock
    time across daylight-saving changes. ``sequence`` grows at each change the
    patient is told of (the iCalendar SEQUENCE; reminders key on it)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        CANCELLED = "cancelled", _("Cancelled")

    class Mode(models.TextChoices):
        IN_PERSON = "in_person", _("In person")
        VIDEO = "video", _("Teleconsultation")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="appointments")
    team = models.ForeignKey("careteams.CareTeam", on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField(_("date and time"))
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), default=30, validators=[MinValueValidator(5), MaxValueValidator(8 * 60)]
    )
    # Denormalised from starts_at + duration, so "upcoming" and the agenda are index reads.
    ends_at = models.DateTimeField(editable=False)
    mode = models.CharField(_("kind"), max_length=12, choices=Mode.choices, default=Mode.IN_PERSON)
    place = models.CharField(_("place"), max_length=300, blank=True)
    video_url = models.URLField(_("teleconsultation link"), max_length=500, blank=True)
    # Whom the patient sees: a clinician's name, "the nurse", "the radiology desk".
    with_whom = models.CharField(_("with whom"), max_length=200)
    instructions = models.TextField(_("instructions to prepare"), max_length=2_000, blank=True)
    # Set by the care team: kept from the patient's representatives (a minor's secret care).
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    sequence = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancel_reason = models.CharField(_("reason"), max_length=500, blank=True)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["patient", "starts_at"]),
            # A record's upcoming appointments (not yet over) without reading its past ones.
            models.Index(fields=["patient", "ends_at"], name="appointment_patient_ends"),
            models.Index(fields=["team", "starts_at"]),
            models.Index(fields=["status", "starts_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after"
            ),
            models.CheckConstraint(
                condition=models.Q(status="scheduled", cancelled_at__isnull=True)
                | models.Q(status="cancelled", cancelled_at__isnull=False),
                name="appointment_cancelled_has_date",
            ),
        ]

    def __str__(self):
        return f"appointment {self.pk} ({self.status})"

    def set_times(self, starts_at: datetime.datetime, duration_minutes: int) -> None:
        """Set the start (aware) and duration, and the end that follows from them. The
        sum is made in UTC: Python adds a timedelta to a Europe/Paris time on the wall
        clock, which is an hour off when a daylight-saving change falls in between."""
        self.starts_at = starts_at.astimezone(datetime.UTC)
        self.duration_minutes = duration_minutes
        self.ends_at = self.starts_at + datetime.timedelta(minutes=duration_minutes)

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED

    @property
    def status_shown(self) -> str:
        """Its status as the pages say it: a scheduled appointment whose end has passed is
        « Passé », no longer « Prévu »."""
        if self.status == self.Status.SCHEDULED and self.ends_at <= timezone.now():
            return pgettext("an appointment's status", "Past")
        return self.get_status_display()

    @property
    def local_start(self) -> datetime.datetime:
        return timezone.localtime(self.starts_at)

    @property
    def local_end(self) -> datetime.datetime:
        return timezone.localtime(self.ends_at)


class CalendarFeed(models.Model):
    """A patient's private calendar subscription: the URL carries a random token of
    which only the SHA-256 is stored. Revoking deletes the row; a new token replaces
    the hash. Events say « Rendez-vous – Carnet » and nothing more unless
    ``show_details`` (the patient's opt-in)."""

    patient = models.OneToOneField("accounts.Patient", on_delete=models.CASCADE, related_name="calendar_feed")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    show_details = models.BooleanField(_("show details in my calendar"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"calendar feed of {self.patient_id}"

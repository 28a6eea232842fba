from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext

from portal.models import QuickLoad


class CareTeam(QuickLoad):
    """A practice, a hospital department or a pharmacy. Clinicians are members."""

    class Kind(models.TextChoices):
        PRACTICE = "practice", _("General practice")
        HOSPITAL = "hospital", _("Hospital department")
        PHARMACY = "pharmacy", _("Pharmacy")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # The stated reply time, in working days (0: the same day); shown to patients on each
    # conversation, worded in their language (``reply_time``). Empty: not stated.
    reply_days = models.PositiveSmallIntegerField(
        _("reply time (working days)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(30)],
        help_text=_("0 for the same day. Shown to patients on each conversation."),
    )
    # Until how long before an appointment its patient may cancel it in Carnet; later,
    # they ask the team (a reschedule request) or call.
    cancellation_notice_hours = models.PositiveSmallIntegerField(
        _("cancellation notice (hours)"),
        default=24,
        help_text=_("Patients can cancel an appointment in Carnet until this many hours before it."),
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="care_teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("care team")
        verbose_name_plural = _("care teams")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def reply_time(self) -> str:
        """The stated reply time in the current language ("within 2 working days", "the
        same day"); empty when the team stated none."""
        if self.reply_days is None:
            return ""
        if self.reply_days == 0:
            return pgettext("reply time", "the same day")
        return ngettext("within %(days)s working day", "within %(days)s working days", self.reply_days) % {
            "days": self.reply_days
        }


class Membership(models.Model):
    team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    # A manager changes the team's settings (the cancellation notice of appointments).
    is_manager = models.BooleanField(_("team manager"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} @ {self.team}"


class CareLink(models.Model):
    """A patient's link with a care team. Only an active link gives access."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")
        BLOCKED = "blocked", _("Blocked by the patient")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.CASCADE, related_name="care_links")
    team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="care_links")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # The care itself: when the patient joined the practice or the stay began, and ended.
    started_on = models.DateField(_("start date"), default=timezone.localdate)
    ended_on = models.DateField(_("end date"), null=True, blank=True)
    # Who made or last reopened the link (a clinician of the team, or support staff).
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "team"], name="carelink_unique")]
        indexes = [models.Index(fields=["team", "status"])]

    def __str__(self):
        return f"{self.patient} — {self.team} ({self.status})"


class ClinicianBlock(models.Model):
    """A patient has blocked one clinician: they lose all access at once, whatever their teams."""

    patient = models.ForeignKey("accounts.Patient", on_delete=models.CASCADE, related_name="clinician_blocks")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "clinician"], name="clinicianblock_unique")]

    def __str__(self):
        return f"{self.patient} blocks {self.clinician}"

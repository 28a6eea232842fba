from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SCOPES = {
    "system/DocumentReference.c": _("Publish documents"),
    "system/DocumentReference.rs": _("Search and read the team’s documents"),
    "system/Observation.c": _("Publish lab results"),
    "system/MedicationRequest.c": _("Publish prescriptions"),
    "system/Patient.rs": _("Match patients by INS"),
}


class ApiClient(models.Model):
    """A care team's software, allowed to publish into the records of the team's
    patients. Authenticates with OAuth 2.0 client credentials (the ``application``);
    what it publishes is authored by ``user``, an account of its own that cannot
    sign in, so records keep one author column."""

    team = models.ForeignKey("careteams.CareTeam", on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(_("name"), max_length=100)
    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.PROTECT, related_name="api_client"
    )
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team__name", "name", "pk"]
        constraints = [
            # A register form sent twice makes one client, not two with two secrets.
            models.UniqueConstraint(
                fields=["team", "name"], condition=models.Q(revoked_at__isnull=True), name="apiclient_one_live_per_name"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.team})"

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    @property
    def client_id(self):
        return self.application.client_id


class AppendOnlyError(Exception):
    pass


class ApiCallQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the API call log is append-only")

    def delete(self):
        raise AppendOnlyError("the API call log is append-only")


class ApiCall(models.Model):
    """One call to the FHIR API: who (client, team), about whom, on what, and how
    it ended. Append-only, like the access log. No health content: resource
    types and ids only."""

    client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    team = models.ForeignKey("careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("accounts.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # e.g. "ITI-65", "search DocumentReference", "read Binary".
    interaction = models.CharField(max_length=40)
    # e.g. "DocumentReference/12"; empty when nothing was reached.
    resource = models.CharField(max_length=120, blank=True)
    status = models.PositiveSmallIntegerField()
    # The OperationOutcome issue code of a refusal ("forbidden", "invalid"...), empty on success.
    outcome = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ApiCallQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["client", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.interaction} {self.status}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the API call log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the API call log is append-only")


class ApiClientEvent(models.Model):
    """Who registered an API client, gave it a new secret or revoked it, and when:
    support or a manager of the team. Append-only, like the call log."""

    class Action(models.TextChoices):
        REGISTERED = "registered", _("Registered the client")
        ROTATED = "rotated", _("Gave the client a new secret")
        REVOKED = "revoked", _("Revoked the client")

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ApiCallQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_id} {self.action} {self.client_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the API client trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the API client trail is append-only")

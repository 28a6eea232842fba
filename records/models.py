from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DocumentQuerySet(models.QuerySet):
    def filtered(self, *, category="", date_from=None, date_to=None, team=None, title=""):
        """The list filters of the documents page."""
        documents = self
        if category:
            documents = documents.filter(category=category)
        if date_from:
            documents = documents.filter(care_date__gte=date_from)
        if date_to:
            documents = documents.filter(care_date__lte=date_to)
        if team:
            documents = documents.filter(author_team=team)
        if title:
            documents = documents.filter(title__icontains=title)
        return documents


class Document(models.Model):
    """A document of a patient's record. The file is sealed (AES-GCM) under a
    random name; its SHA-256 is taken at upload and checked at every read."""

    class Category(models.TextChoices):
        PRESCRIPTION = "prescription", _("Prescription")
        LAB_REPORT = "lab_report", _("Lab report")
        IMAGING = "imaging", _("Imaging")
        REPORT = "report", _("Hospital or consultation report")
        VACCINATION = "vaccination", _("Vaccination")
        CERTIFICATE = "certificate", _("Certificate")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PROCESSING = "processing", _("Processing")
        READY = "ready", _("Ready")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="documents")
    title = models.CharField(_("title"), max_length=200)
    category = models.CharField(_("category"), max_length=16, choices=Category.choices)
    care_date = models.DateField(_("date of care"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The care team that published it; empty when the patient uploaded it.
    author_team = models.ForeignKey(
        "careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="documents"
    )
    hidden = models.BooleanField(_("hidden from professionals"), default=False)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    file_name = models.CharField(max_length=200)
    preview_name = models.CharField(max_length=200, blank=True)
    preview_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-care_date", "-pk"]
        indexes = [models.Index(fields=["patient", "-care_date"])]

    def __str__(self):
        return self.title

    @property
    def uploaded_by_patient(self):
        return self.author_team_id is None

    @property
    def previews_inline(self):
        return self.content_type in {"application/pdf", "image/jpeg", "image/png"}

    @property
    def extension(self):
        from records.files import EXTENSIONS

        return EXTENSIONS.get(self.content_type, "bin")


# --- Exports ---
# (Other records models go above this marker.)


class Export(models.Model):
    """A patient's export (PDF or archive), built by a Celery task.

    State machine: queued → running (with progress) → ready, or → failed with a
    reason. The row is locked (``select_for_update``) at each transition, so a
    duplicate delivery or a retry after a crash yields one file and one email.
    """

    class Kind(models.TextChoices):
        SUMMARY = "summary", _("Health summary (PDF)")
        CONVERSATION = "conversation", _("Conversation (PDF)")
        ARCHIVE = "archive", _("Complete archive (ZIP)")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being prepared")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    class Failure(models.TextChoices):
        ERROR = "error", _("An unexpected error stopped it. Please request it again.")
        TIMEOUT = "timeout", _("It took too long. Please request it again.")
        GONE = "gone", _("What it was about no longer exists.")

    PENDING_STATES = (State.QUEUED, State.RUNNING)

    patient = models.ForeignKey("accounts.Patient", on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # Which sections, which conversation: ids and names only, no health data.
    options = models.JSONField(default=dict, blank=True)
    # kind + options, canonical: two requests with the same fingerprint are the same export.
    fingerprint = models.CharField(max_length=200)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    failure = models.CharField(max_length=8, choices=Failure.choices, blank=True)
    # The run that owns the row while running; a crashed run's lease expires.
    run_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=32, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["patient", "-created_at"]), models.Index(fields=["state", "expires_at"])]
        constraints = [
            # At most one pending export of the same kind and options per patient.
            models.UniqueConstraint(
                fields=["patient", "fingerprint"],
                condition=models.Q(state__in=["queued", "running"]),
                name="export_one_pending_per_fingerprint",
            )
        ]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def is_pending(self):
        return self.state in self.PENDING_STATES

    @property
    def extension(self):
        return "zip" if self.kind == self.Kind.ARCHIVE else "pdf"

    @property
    def content_type(self):
        return "application/zip" if self.kind == self.Kind.ARCHIVE else "application/pdf"

    def download_name(self):
        stamp = timezone.localtime(self.created_at).strftime("%Y-%m-%d")
        return f"carnet-{self.kind}-{stamp}.{self.extension}"

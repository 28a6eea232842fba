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

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Manager
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext, pgettext_lazy

from portal.audit.models import AppendOnlyError
from portal.models import QuickLoad


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

    def current(self):
        """Neither withdrawn by its care team nor replaced by a corrected version: what
        the patient's lists show (the others stay reachable from the record's history)."""
        return self.filter(withdrawn_at__isnull=True, replaced_by__isnull=True)


class Document(QuickLoad):
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
    # Set by the care team: a minor's care kept from their representatives (never shown to them).
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    file_name = models.CharField(max_length=200)
    preview_name = models.CharField(max_length=200, blank=True)
    preview_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    # Runs that started drawing the preview; counted before drawing, so killed runs count.
    preview_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the team's software (FHIR masterIdentifier): a retried publication finds the first.
    master_identifier = models.CharField(max_length=200, blank=True)
    # A later version from the same team (FHIR relatesTo "replaces").
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces", editable=False
    )
    # Withdrawn by the team that published it (misfiled, wrong patient): it leaves the
    # lists, keeps its file, and the record's history says who, when and why.
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    withdraw_reason = models.CharField(_("reason"), max_length=300, blank=True, editable=False)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-care_date", "-pk"]
        indexes = [models.Index(fields=["patient", "-care_date"])]
        constraints = [
            models.UniqueConstraint(
                fields=["author_team", "master_identifier"],
                condition=~models.Q(master_identifier=""),
                name="document_one_per_master_identifier",
            )
        ]

    def __str__(self):
        return self.title

    @property
    def uploaded_by_patient(self):
        return self.author_team_id is None

    @property
    def previews_inline(self):
        return self.content_type in {"application/pdf", "image/jpeg", "image/png"}

    @property
    def preview_content_type(self):
        """A JPEG's preview is a JPEG; a PDF's or a PNG's is a PNG."""
        return "image/jpeg" if self.content_type == "image/jpeg" else "image/png"

    @property
    def fhir_status(self):
        """DocumentReference.status: withdrawn is "entered-in-error", replaced "superseded"."""
        if self.withdrawn_at is not None:
            return "entered-in-error"
        return "superseded" if self.replaced_by_id else "current"

    @property
    def is_correctable(self):
        """Neither withdrawn nor replaced: its team may still withdraw or replace it."""
        return self.withdrawn_at is None and self.replaced_by_id is None

    @property
    def extension(self):
        from records.files import EXTENSIONS

        return EXTENSIONS.get(self.content_type, "bin")


class PrescriptionQuerySet(models.QuerySet):
    def current(self, today):
        """Neither stopped by ``today`` nor replaced by a new version."""
        return self.filter(replaced_by__isnull=True).exclude(stopped_on__lte=today)

    def in_force(self, today):
        """Current and begun, not ended by ``today``: those ``Prescription.is_active`` on it.
        Not ended (no end date, or one from today) is two ranges of the (patient, end date)
        index: a record's ended treatments, most of its history, are not read to find these."""
        return self.filter(start_date__lte=today).exclude(end_date__lt=today).current(today)

    def ending_between(self, first, last):
        """Renewable ones, neither stopped nor replaced, whose end date is between
        ``first`` and ``last`` (a range on a partial index: the renewal reminders' scan)."""
        return self.filter(
            renewable=True, stopped_on__isnull=True, replaced_by__isnull=True, end_date__gte=first, end_date__lte=last
        )


class Prescription(QuickLoad):
    class Route(models.TextChoices):
        ORAL = "oral", _("By mouth")
        TOPICAL = "topical", _("On the skin")
        INJECTION = "injection", _("Injection")
        INHALED = "inhaled", _("Inhaled")
        OTHER = "other", _("Other")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="prescriptions")
    medication = models.CharField(_("medication"), max_length=200)
    dosage = models.CharField(_("dosage"), max_length=100)
    # Blank when the prescriber's software sent none (the dosage's text may say it).
    frequency = models.CharField(_("frequency"), max_length=100, blank=True)
    route = models.CharField(_("route"), max_length=12, choices=Route.choices, default=Route.ORAL)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"), null=True, blank=True)
    renewable = models.BooleanField(_("renewable"), default=False)
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("careteams.CareTeam", on_delete=models.PROTECT, related_name="prescriptions")
    created_at = models.DateTimeField(default=timezone.now)
    # Corrections: a clinician stops it (from a date, with a reason), or a new version
    # replaces it; either way it stays in the record, shown as stopped or replaced.
    stopped_on = models.DateField(_("stopped on"), null=True, blank=True)
    stop_reason = models.CharField(_("reason"), max_length=300, blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by", editable=False
    )

    # The prescribing software's id (FHIR MedicationRequest.identifier): a retry finds the
    # first; a later "stopped" or "completed" for the same id ends it.
    source_id = models.CharField(max_length=200, blank=True)

    objects = PrescriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-start_date", "-pk"]
        indexes = [
            models.Index(fields=["patient", "-start_date"]),
            models.Index(fields=["patient", "end_date"], name="prescription_patient_end"),
            models.Index(
                fields=["end_date"],
                condition=models.Q(renewable=True, stopped_on__isnull=True),
                name="prescription_renewable_end",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "source_id"], condition=~models.Q(source_id=""), name="prescription_one_per_source_id"
            )
        ]

    def __str__(self):
        return self.medication

    @property
    def posology(self) -> str:
        """The dosage, then the frequency when there is one: "1 comprimé, le matin"."""
        return ", ".join(part for part in (self.dosage, self.frequency) if part)

    @property
    def replacement(self):
        """The version that replaced this one, if any (select_related("replaced_by") avoids a query)."""
        try:
            return self.replaced_by
        except Prescription.DoesNotExist:
            return None

    @property
    def is_correctable(self):
        """Neither stopped, replaced nor over: a clinician may still stop or replace it."""
        over = self.end_date is not None and self.end_date < timezone.localdate()
        return self.stopped_on is None and self.replacement is None and not over

    def is_active(self, today=None):
        today = today or timezone.localdate()
        if self.replacement is not None or (self.stopped_on is not None and self.stopped_on <= today):
            return False
        return self.start_date <= today and (self.end_date is None or self.end_date >= today)


class LabReport(QuickLoad):
    """A set of lab results taken together (one blood sample, one report)."""

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="lab_reports")
    title = models.CharField(_("title"), max_length=200)
    collected_on = models.DateField(_("sample date"))
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("careteams.CareTeam", on_delete=models.PROTECT, related_name="lab_reports")
    created_at = models.DateTimeField(default=timezone.now)
    # The sending laboratory's id for the report (FHIR DiagnosticReport.identifier): a
    # retry finds the first, an amended or corrected report updates it.
    source_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-collected_on", "-pk"]
        # (patient, created_at): what arrived since a care team last looked (careteams.views);
        # (patient, team, created_at): what each of the record's other teams published since.
        indexes = [
            models.Index(fields=["patient", "-collected_on"]),
            models.Index(fields=["patient", "created_at"]),
            models.Index(fields=["patient", "team", "created_at"], name="labreport_by_team"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "source_id"], condition=~models.Q(source_id=""), name="labreport_one_per_source_id"
            )
        ]

    def __str__(self):
        return self.title


class ObservationQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for observation in objs:  # what save() does, for rows written in bulk
            observation.fill_from_report()
        return super().bulk_create(objs, *args, **kwargs)


class Observation(QuickLoad):
    """One lab value, with its LOINC code, unit and reference range."""

    class Flag(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        CRITICALLY_LOW = "critically_low", _("Critically low")
        CRITICALLY_HIGH = "critically_high", _("Critically high")
        ABNORMAL = "abnormal", _("Abnormal")
        CRITICAL = "critical", _("Critically abnormal")

    # The laboratory's own interpretation (HL7 v3 ObservationInterpretation), which wins
    # over the reference range: "HH" for a value critically high, "A" for abnormal with no
    # range, … Empty when it gave none.
    INTERPRETATIONS = {
        "N": Flag.NORMAL, "L": Flag.LOW, "H": Flag.HIGH, "LU": Flag.LOW, "HU": Flag.HIGH,
        "LL": Flag.CRITICALLY_LOW, "HH": Flag.CRITICALLY_HIGH, "A": Flag.ABNORMAL, "AA": Flag.CRITICAL,
    }  # fmt: skip
    ABNORMAL_INTERPRETATIONS = tuple(code for code in INTERPRETATIONS if code != "N")

    report = models.ForeignKey(LabReport, on_delete=models.CASCADE, related_name="observations")
    # Denormalised from the report, so a test's history is one indexed query.
    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="observations")
    loinc = models.CharField(_("LOINC code"), max_length=16)
    # The code system of ``loinc`` when it is not LOINC (a laboratory's local code); empty for LOINC.
    code_system = models.CharField(max_length=200, blank=True)
    name = models.CharField(_("test"), max_length=120)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=32, blank=True)
    low = models.DecimalField(_("lower limit"), max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(_("upper limit"), max_digits=12, decimal_places=4, null=True, blank=True)
    interpretation = models.CharField(_("interpretation"), max_length=2, blank=True)  # a key of INTERPRETATIONS
    # "final", or "amended"/"corrected" once a later report changed it (the earlier values
    # are kept in ObservationRevision).
    status = models.CharField(max_length=10, default="final")
    # When a care team last corrected the value (by form or by an amended report).
    corrected_at = models.DateTimeField(null=True, blank=True)
    # The report's sample date (it never changes), copied so that a test's history is read
    # newest first from an index, a page at a time, whatever the number of values.
    collected_on = models.DateField(editable=False)

    objects = ObservationQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["patient", "loinc", "-collected_on", "-id"], name="observation_history"),
        ]

    def __str__(self):
        """« Hémoglobine 5,4 g/dL »: the value as people write it (no trailing zeros, the
        reader's decimal mark), where it is named (the access history of a correction)."""
        value = number_format(self.value.normalize()) if self.value is not None else ""
        return f"{self.name} {value} {self.unit}".strip()

    def save(self, *args, **kwargs):
        self.fill_from_report()
        super().save(*args, **kwargs)

    def fill_from_report(self):
        if self.collected_on is None:
            self.collected_on = self.report.collected_on

    def clean(self):
        # A reversed range would flag a normal value "Low" and draw an empty band.
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValidationError({"high": _("The upper limit is below the lower limit.")}, code="reversed_range")

    @property
    def flag(self):
        """The laboratory's interpretation when it gave one, else the value against its
        reference range; None with neither: a value with no range is not "Normal"."""
        return self.flag_of(self.interpretation, self.value, self.low, self.high)

    @classmethod
    def flag_of(cls, interpretation, value, low, high):
        """``flag`` of a value read as values rather than as an instance."""
        if interpretation in cls.INTERPRETATIONS:
            return cls.INTERPRETATIONS[interpretation]
        if low is not None and value < low:
            return cls.Flag.LOW
        if high is not None and value > high:
            return cls.Flag.HIGH
        if low is None and high is None:
            return None
        return cls.Flag.NORMAL

    def get_flag_display(self):
        flag = self.flag
        return self.Flag(flag).label if flag else ""


class ObservationRevision(models.Model):
    """An earlier value of an observation, kept when an amended or corrected report changed it."""

    observation = models.ForeignKey(Observation, on_delete=models.CASCADE, related_name="revisions")
    value = models.DecimalField(max_digits=12, decimal_places=4)
    unit = models.CharField(max_length=32, blank=True)
    low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    interpretation = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=10)
    replaced_at = models.DateTimeField(default=timezone.now)
    # Why a clinician corrected it (empty for an amended report sent by software).
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-replaced_at", "-pk"]

    def __str__(self):
        return f"{self.value} {self.unit} ({self.status})"


class CurrentEntries(models.Manager):
    """The profile's entries, those their care team withdrew aside (every lookup, the
    access policy's included); ``all_entries`` sees them (the history, the lock of a
    withdrawal)."""

    def get_queryset(self):
        return super().get_queryset().filter(withdrawn_at__isnull=True)


class ProfileEntry(models.Model):
    """Common to the medical profile: who wrote it. A patient edits what they
    wrote; what a professional wrote is read-only to them, and the care team that wrote
    it may withdraw it (entered in error): it leaves the profile, and the record's history
    keeps the entry, who withdrew it, when and why."""

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Set by a care team (a minor's secret care): never shown to the representatives.
    confidential = models.BooleanField(_("confidential from the representatives"), default=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CurrentEntries()
    all_entries = Manager()  # noqa: DJ012 - a second manager (ruff takes it for a field)

    class Meta:
        abstract = True

    @property
    def by_patient(self):
        return self.team_id is None

    @property
    def is_correctable(self):
        return self.withdrawn_at is None


class Allergy(ProfileEntry):
    class Severity(models.TextChoices):
        MILD = "mild", _("Mild")
        MODERATE = "moderate", _("Moderate")
        SEVERE = "severe", _("Severe")

    substance = models.CharField(_("substance"), max_length=120)
    reaction = models.CharField(_("reaction"), max_length=200, blank=True)
    # Not known is common (a reaction in childhood, told by a parent): never a guess.
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, blank=True, default="")

    class Meta:
        ordering = ["substance"]
        verbose_name_plural = "allergies"

    def __str__(self):
        return self.substance

    def describe(self):
        parts = [self.substance, self.reaction, str(self.get_severity_display())]
        return " — ".join(part for part in parts if part)


class Condition(ProfileEntry):
    name = models.CharField(_("condition"), max_length=200)
    since = models.DateField(_("since"), null=True, blank=True)
    notes = models.CharField(_("notes"), max_length=500, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def describe(self):
        since = date_format(self.since, "SHORT_DATE_FORMAT") if self.since else ""
        return " — ".join(part for part in [self.name, since, self.notes] if part)


class Vaccination(ProfileEntry):
    vaccine = models.CharField(_("vaccine"), max_length=120)
    date = models.DateField(_("date"))
    lot = models.CharField(_("lot number"), max_length=50, blank=True)

    class Meta:
        ordering = ["-date", "-pk"]

    def __str__(self):
        return self.vaccine

    def describe(self):
        parts = [self.vaccine, date_format(self.date, "SHORT_DATE_FORMAT"), self.lot]
        return " — ".join(part for part in parts if part)


class Measurement(ProfileEntry):
    class Kind(models.TextChoices):
        WEIGHT = "weight", _("Weight (kg)")
        HEIGHT = "height", _("Height (cm)")
        BLOOD_PRESSURE = "blood_pressure", _("Blood pressure (mmHg)")
        GLUCOSE = "glucose", _("Blood glucose (g/L)")

    kind = models.CharField(_("measurement"), max_length=16, choices=Kind.choices)
    value = models.DecimalField(_("value"), max_digits=7, decimal_places=2)
    # The diastolic pressure, for blood pressure only.
    value2 = models.DecimalField(_("diastolic"), max_digits=7, decimal_places=2, null=True, blank=True)
    measured_on = models.DateField(_("date"))

    class Meta:
        ordering = ["-measured_on", "-pk"]
        indexes = [models.Index(fields=["patient", "kind", "measured_on"])]

    def __str__(self):
        return f"{self.kind} {self.value}"

    def describe(self):
        value = number_format(self.value.normalize())
        if self.value2 is not None:
            value += "/" + number_format(self.value2.normalize())
        return " — ".join([str(self.get_kind_display()), value, date_format(self.measured_on, "SHORT_DATE_FORMAT")])


PROFILE_ENTRY_FIELDS = ("allergy", "condition", "vaccination", "measurement")


class ProfileComment(models.Model):
    """The patient's comment on a profile entry a professional wrote ("this allergy is
    wrong"): the entry stays as written, the comment sits beside it, and the care teams
    read it on the patient's page. Exactly one entry is named."""

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="profile_comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.CharField(_("comment"), max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    allergy = models.ForeignKey(Allergy, null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    condition = models.ForeignKey(Condition, null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    vaccination = models.ForeignKey(
        Vaccination, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    measurement = models.ForeignKey(
        Measurement, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(allergy__isnull=False, condition=None, vaccination=None, measurement=None)
                    | models.Q(allergy=None, condition__isnull=False, vaccination=None, measurement=None)
                    | models.Q(allergy=None, condition=None, vaccination__isnull=False, measurement=None)
                    | models.Q(allergy=None, condition=None, vaccination=None, measurement__isnull=False)
                ),
                name="profilecomment_one_entry",
            )
        ]

    def __str__(self):
        return f"comment {self.pk} by {self.author_id}"


class RecordEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the record history is append-only")

    def delete(self):
        raise AppendOnlyError("the record history is append-only")


class RecordEvent(models.Model):
    """One correction of a patient's record by a care team: append-only (the model
    refuses changes; on PostgreSQL a trigger does too), and the patient reads it all."""

    class Kind(models.TextChoices):
        PRESCRIPTION_STOPPED = "prescription_stopped", _("Stopped a prescription")
        PRESCRIPTION_REPLACED = "prescription_replaced", _("Replaced a prescription with a new version")
        DOCUMENT_WITHDRAWN = "document_withdrawn", _("Withdrew a document")
        DOCUMENT_REPLACED = "document_replaced", _("Replaced a document with a corrected version")
        RESULT_CORRECTED = "result_corrected", _("Corrected a lab value")
        PROFILE_ADDED = "profile_added", _("Added to your medical profile")
        PROFILE_WITHDRAWN = "profile_withdrawn", _("Withdrew from your medical profile")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="record_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What was changed and why, in the patient's words: a medication's name, the reason.
    target = models.CharField(max_length=255)
    reason = models.CharField(max_length=300, blank=True)
    prescription = models.ForeignKey(
        Prescription, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    observation = models.ForeignKey(Observation, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    # The profile entry an addition to the profile is about (what keeps a confidential one's
    # event from the representatives too).
    allergy = models.ForeignKey("Allergy", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    condition = models.ForeignKey("Condition", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    vaccination = models.ForeignKey(
        "Vaccination", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    measurement = models.ForeignKey(
        "Measurement", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    at = models.DateTimeField(default=timezone.now)

    objects = RecordEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["patient", "-at"])]

    def __str__(self):
        return f"{self.kind} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the record history is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the record history is append-only")


class NewsQuerySet(models.QuerySet):
    def unseen(self):
        return self.filter(seen_at__isnull=True)

    def unseen_results_published_between(self, first, last):
        """Lab results not opened yet, published between ``first`` and ``last`` (a range
        on a partial index: the "results not opened" reminders' scan)."""
        return self.unseen().filter(kind=News.Kind.RESULT, created_at__gte=first, created_at__lte=last)


class News(models.Model):
    """Something a care team published for a patient: a "new" marker until the patient
    opens it, and a line of their next digest email (``Digest``)."""

    class Kind(models.TextChoices):
        DOCUMENT = "document", _("New document")
        RESULT = "result", _("New lab result")
        PRESCRIPTION = "prescription", _("New prescription")
        CORRECTION = "correction", _("Correction of the record")
        PRESCRIPTION_STOPPED = "stopped", _("Prescription stopped")
        WITHDRAWAL = "withdrawal", _("Document withdrawn")
        APPOINTMENT = "appointment", _("New appointment")
        APPOINTMENT_CHANGED = "appt_changed", _("Appointment changed")
        APPOINTMENT_CANCELLED = "appt_cancelled", _("Appointment cancelled")

    patient = models.ForeignKey("accounts.Patient", on_delete=models.CASCADE, related_name="news")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.CASCADE, related_name="news")
    lab_report = models.ForeignKey(LabReport, null=True, blank=True, on_delete=models.CASCADE, related_name="news")
    prescription = models.ForeignKey(Prescription, null=True, blank=True, on_delete=models.CASCADE, related_name="news")
    appointment = models.ForeignKey(
        "agenda.Appointment", null=True, blank=True, on_delete=models.CASCADE, related_name="news"
    )
    created_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(null=True, blank=True)
    # The email that told the patient (NULL until then, or when they asked for none).
    digest = models.ForeignKey("Digest", null=True, blank=True, on_delete=models.SET_NULL, related_name="news")

    objects = NewsQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "-created_at"]),
            models.Index(fields=["patient"], condition=models.Q(seen_at__isnull=True), name="news_unseen"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(seen_at__isnull=True, kind="result"),
                name="news_unseen_result_created",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(document__isnull=False)
                | models.Q(lab_report__isnull=False)
                | models.Q(prescription__isnull=False)
                | models.Q(appointment__isnull=False),
                name="news_has_item_or_appointment",
            )
        ]

    def __str__(self):
        return f"{self.kind} for {self.patient_id}"


class Digest(models.Model):
    """Outbox row: one content-free email telling a patient's login that something is new
    on Carnet. At most one is pending per login; it is due at once, or 15 minutes after
    the last one was sent, so news arriving meanwhile goes out together. Written with
    the news in one transaction, handed to Celery after commit, and by a periodic relay
    when the broker was down; sent exactly once (the row is locked)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], condition=models.Q(status="pending"), name="digest_pending_due"),
            models.Index(fields=["user", "-sent_at"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=models.Q(status="pending"), name="digest_one_pending")
        ]

    def __str__(self):
        return f"digest {self.pk} for {self.user_id} ({self.status})"


# --- Exports ---
# (Other records models go above this marker.)


EXPORT_FILE_NAMES = {
    "summary": pgettext_lazy("export file name", "health-summary"),
    "lab_results": pgettext_lazy("export file name", "lab-results"),
    "conversation": pgettext_lazy("export file name", "conversation"),
    "archive": pgettext_lazy("export file name", "archive"),
}


class Export(models.Model):
    """A patient's export (PDF or archive), built by a Celery task.

    State machine: queued → running (with progress) → ready, or → failed with a
    reason. The row is locked (``select_for_update``) at each transition, so a
    duplicate delivery or a retry after a crash yields one file and one email.
    """

    class Kind(models.TextChoices):
        SUMMARY = "summary", _("Health summary (PDF)")
        LAB_RESULTS = "lab_results", _("Lab results (PDF)")
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
    # The language the patient was reading in: the file and its email are in it too.
    language = models.CharField(max_length=8, default=settings.LANGUAGE_CODE)
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

    @property
    def period(self):
        """(start, end) of a lab results export limited to a period, else None."""
        if self.kind != self.Kind.LAB_RESULTS or not self.options:
            return None
        start, end = self.options.get("from"), self.options.get("to")
        return tuple(day and datetime.date.fromisoformat(day) for day in (start, end))

    def download_name(self):
        """``carnet-<kind>[-<period>]-<date>.<ext>``, in the language the export was made in
        (ASCII: every browser and file system keeps it); two lab exports of other periods
        do not download under the same name."""
        stamp = timezone.localtime(self.created_at).strftime("%Y-%m-%d")
        with translation.override(self.language):
            name = str(EXPORT_FILE_NAMES[self.kind])
            if self.period:
                start, end = (day.isoformat() if day else "" for day in self.period)
                if start and end:
                    name += "-" + pgettext("export file name", "%(start)s-to-%(end)s") % {"start": start, "end": end}
                elif start:
                    name += "-" + pgettext("export file name", "from-%(start)s") % {"start": start}
                else:
                    name += "-" + pgettext("export file name", "to-%(end)s") % {"end": end}
        return f"carnet-{name}-{stamp}.{self.extension}"

import re
import unicodedata

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connection, models
from django.db.models.functions import Lower
from django.db.models.lookups import PatternLookup, StartsWith
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import QuickLoad


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)

    def create_user(self, email, password=None, **fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True, role=User.Role.SUPPORT)
        return self.create_user(email, password, **fields)


def folded(text: str) -> str:
    """``text`` in lower case without accents ("Hélène" -> "helene"), for name searches."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


# What tells names apart no more than case and accents do: apostrophes (straight, and the
# typographic ones phones type), hyphens and dashes, dots and spaces. An identity document
# says « N'DIAYE », a phone « N’Diaye », a hurried hand « NDIAYE » or « N Diaye ».
NAME_SEPARATORS = re.compile(r"['`\u2018\u2019\u02bc\u02bb\-\u2010-\u2015.\s]")


def folded_name(text: str) -> str:
    """A name as it is matched: ``folded``, without ``NAME_SEPARATORS`` ("N’Diaye" ->
    "ndiaye", "Lefèvre-Dupont" and "LEFEVRE DUPONT" -> "lefevredupont"). What the
    ``*_folded`` columns keep, so that spellings of one name find each other."""
    return NAME_SEPARATORS.sub("", folded(text))


class LikePrefix(StartsWith):
    """``startswith`` given its LIKE pattern ready made (``like_prefix``), as
    ``field__like_prefix=pattern``: the same SQL as ``startswith`` (on PostgreSQL the cast
    to text that the prefix indexes are written for), the value sent as it is. A query of
    such values is the same text whatever they are: ``portal.prepared`` keeps it."""

    def process_rhs(self, qn, connection):
        return super(PatternLookup, self).process_rhs(qn, connection)  # not made into a pattern again


# Under its own name; the class keeps startswith's, which picks the SQL operator and cast.
models.CharField.register_lookup(LikePrefix, lookup_name="like_prefix")


def like_prefix(text: str) -> str:
    """The LIKE pattern of the values that start with ``text``, its wildcards escaped, as
    ``startswith`` writes it (the same on PostgreSQL and SQLite)."""
    return connection.ops.prep_for_like_query(text) + "%"


def name_prefix_patterns(query: str) -> tuple[tuple[str, ...], ...]:
    """For each word of ``query``, the LIKE patterns (``like_prefix``) of what ``name_prefixes``
    looks for: the word alone or run together with the one or two words around it; no
    word for a query with no letter."""
    words = [word for word in map(folded_name, query.replace("\x00", "").split()) if word]
    return tuple(
        tuple(
            like_prefix(run)
            for run in sorted(
                {
                    "".join(words[start:end])
                    for start in range(max(0, index - 2), index + 1)
                    for end in range(index + 1, min(start + 3, len(words)) + 1)
                }
            )
        )
        for index in range(len(words))
    )


def prefixes_condition(patterns, fields: tuple[str, ...]) -> models.Q:
    """Rows where, for each word's patterns (``name_prefix_patterns``), one of ``fields``
    starts with one of them; none when there are no words."""
    if not patterns:
        return models.Q(pk__in=[])
    condition = models.Q()
    for word in patterns:
        either = models.Q()
        for pattern in word:
            for field in fields:
                either |= models.Q(**{f"{field}__like_prefix": pattern})
        condition &= either
    return condition


def name_prefixes(query: str, fields: tuple[str, ...]) -> models.Q:
    """Rows where each word of ``query`` starts one of ``fields`` (folded names, matched
    from their start: "urand" does not find Durand), alone or run together with the one
    or two words around it: the names are kept without their spaces, so « n diaye » finds
    N'Diaye as "ndiaye" does, and « eloise lefevre dupont » finds Éloïse Lefèvre-Dupont.
    Prefixes, which the columns' indexes answer; a query with no letter finds nobody."""
    return prefixes_condition(name_prefix_patterns(query), fields)


def _leading_first_names(first_names: str) -> set[str]:
    """The first first name folded, and the first names run together from it ("Jean
    Pierre Marie" -> jean, jeanpierre, jeanpierremarie): one of them is a composed first
    name written with spaces, which ``folded_name`` would not tell from Jean-Pierre."""
    words = first_names.split()
    return {folded_name("".join(words[:count])) for count in range(1, len(words) + 1)} - {""}


class FoldedNames(QuickLoad):
    """First and last names kept also folded (``folded_name``), indexed for prefix
    searches: "lea" finds Léa, "ndiaye" N’Diaye. On PostgreSQL Django adds the
    pattern-operator indexes that LIKE 'prefix%' needs. Kept up to date by ``save``; code
    that writes names with ``update`` or ``bulk_create`` must fold them itself."""

    first_folded = models.CharField(max_length=300, editable=False, db_index=True, default="")
    last_folded = models.CharField(max_length=300, editable=False, db_index=True, default="")

    class Meta:
        abstract = True

    def save(self, **kwargs):
        self.first_folded, self.last_folded = folded_name(self.first_name), folded_name(self.last_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"first_name", "last_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "first_folded", "last_folded"}
        super().save(**kwargs)


class User(FoldedNames, AbstractBaseUser, PermissionsMixin):
    """A login. What it may see is decided by its role and by ``portal.access``."""

    class Role(models.TextChoices):
        PATIENT = "patient", _("Patient")
        CLINICIAN = "clinician", _("Clinician")
        SUPPORT = "support", _("Support staff")

    email = models.EmailField(_("email address"), unique=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.PATIENT)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["first_name", "last_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]
        # The support console lists accounts by name; its prefix searches have their own
        # PostgreSQL indexes (migration 0004).
        indexes = [models.Index(fields=["last_name", "first_name", "id"], name="user_name_order")]

    def __str__(self):
        return self.get_full_name() or self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self):
        return self.first_name

    @property
    def is_patient(self):
        return self.role == self.Role.PATIENT

    @property
    def is_clinician(self):
        return self.role == self.Role.CLINICIAN

    @property
    def is_support(self):
        return self.role == self.Role.SUPPORT


NIR_PATTERN = re.compile(r"^[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$")


def normalized_ins(value: str) -> str:
    """An INS as typed (spaces, dots, lower-case Corsica letters) in its stored form."""
    return re.sub(r"[\s.\-]", "", value or "").upper()


def _nir_number(body: str) -> int:
    """The 13-character NIR body as the number its key is computed on: Corsica's
    department 2A counts as 19, 2B as 18."""
    corsica = {"2A": "19", "2B": "18"}.get(body[5:7])
    return int(body[:5] + corsica + body[7:] if corsica else body)


def nir_key(body: str) -> str:
    """The 2-digit key of a 13-character NIR body: 97 minus the number modulo 97."""
    return f"{97 - _nir_number(body) % 97:02d}"


def validate_nir(value: str) -> None:
    """A 15-character NIR (or NIA): sex, year, month, department (2A/2B for Corsica),
    commune, order number, then its key."""
    if not NIR_PATTERN.match(value or ""):
        raise ValidationError(
            _("An INS has 15 characters: 13 digits (2A or 2B for a birth in Corsica) and a 2-digit key."),
            code="format",
        )
    if value[13:] != nir_key(value[:13]):
        raise ValidationError(_("The key of this INS is wrong: check every digit."), code="key")


class PatientQuerySet(models.QuerySet):
    def current(self):
        """Records in use: not merged into another record of the same person."""
        return self.filter(merged_into__isnull=True)

    def matching(self, *, name: str = "", ins: str = "", birth_date=None):
        """Patients found by a search: each word of ``name`` starts the first, the last or
        the birth name (case, accents, apostrophes, hyphens, spaces and dots aside: "lea"
        finds Léa, "ndiaye" and « n diaye » N’Diaye; see ``name_prefixes``), ``ins``
        exactly, ``birth_date`` exactly. Prefix matches on the indexed folded names."""
        patients = self
        if name.strip():
            patients = patients.filter(name_prefixes(name, ("first_folded", "last_folded", "birth_folded")))
        if ins:
            patients = patients.filter(ins=ins)
        if birth_date:
            patients = patients.filter(birth_date=birth_date)
        return patients


class CurrentPatientManager(models.Manager.from_queryset(PatientQuerySet)):
    def get_queryset(self):
        return super().get_queryset().current()


class InsKind(models.TextChoices):
    """The OID that says what kind of number an INS is."""

    NIR = "1.2.250.1.213.1.4.8", _("NIR (social security number)")
    NIA = "1.2.250.1.213.1.4.9", _("NIA (number awaiting registration)")
    TEST_NIR = "1.2.250.1.213.1.4.10", _("Test NIR (demonstration data)")


class Patient(FoldedNames):
    """The subject of a record. May have no login (a child), and later be acted
    for by someone else's login (a parent, a legal guardian)."""

    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    user = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient", verbose_name=_("login")
    )
    first_name = models.CharField(_("first name"), max_length=150)
    last_name = models.CharField(_("last name"), max_length=150)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices, default=Sex.UNKNOWN)
    # INS: the French national health identifier (the NIR, 13 digits + 2-digit key).
    ins = models.CharField(
        _("national health identifier (INS)"),
        max_length=15,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_nir],
    )
    # The identity traits the INS reference asks for, as on the identity document. The
    # ``first_name``/``last_name`` above stay what the rest of Carnet shows: the first
    # first name, and the used name or else the birth name.
    ins_oid = models.CharField(_("kind of identifier"), max_length=24, choices=InsKind.choices, blank=True)
    birth_name = models.CharField(_("birth name"), max_length=100, blank=True)
    # The birth name folded, indexed: a care team searches by it as by the used name ("martin"
    # finds Camille Durand, born Martin). Kept by ``save``.
    birth_folded = models.CharField(max_length=300, editable=False, db_index=True, default="")
    first_names = models.CharField(_("first names at birth"), max_length=200, blank=True)
    used_name = models.CharField(_("used name"), max_length=100, blank=True)
    birth_place = models.CharField(
        _("birth place code (INSEE)"),
        max_length=5,
        blank=True,
        validators=[RegexValidator(r"^(?:[0-9]{5}|2[AB][0-9]{3})$", _("An INSEE code has 5 characters."))],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A duplicate record support merged into the one kept: everything moved there but
    # the audit trails, which stay on it and show on the kept record's history.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from", editable=False
    )
    merged_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Every lookup ignores merged records; ``all_records`` sees them (the merge, audits).
    objects = CurrentPatientManager()
    all_records = PatientQuerySet.as_manager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["last_name", "first_name", "pk"]
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
            # Duplicates are looked for, and care teams search, by birth date.
            models.Index(fields=["birth_date"], name="patient_birth_date"),
        ]

    def __str__(self):
        return self.full_name

    def save(self, **kwargs):
        self.birth_folded = folded_name(self.birth_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "birth_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "birth_folded"}
        super().save(**kwargs)

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}"

    def set_identity(self, *, birth_name: str, first_names: str, used_name: str = "") -> None:
        """Record the INS name traits and derive the displayed names from them."""
        self.birth_name, self.used_name = birth_name.strip(), used_name.strip()
        self.first_names = " ".join(first_names.split())
        self.first_name = self.first_names.split(" ")[0] if self.first_names else ""
        self.last_name = self.used_name or self.birth_name

    def same_person_as(self, *, birth_name: str, first_names: str, used_name: str = "") -> bool:
        """Whether this record's names match these, as ``folded_name`` compares them (case,
        accents, apostrophes, hyphens, spaces and dots aside: « N’Diaye » is N'DIAYE and
        NDIAYE; the birth date is compared by the caller): the same first first name, and
        one of the given names among this record's birth, used or displayed last names.
        Whole names, not prefixes: Dupont is not Dupontel. First names typed apart are
        also tried run together (« Jean Pierre » is Jean-Pierre), on either side."""
        names = {folded_name(name) for name in (birth_name, used_name)} - {""}
        mine = {folded_name(name) for name in (self.birth_name, self.used_name, self.last_name)} - {""}
        mine_first = _leading_first_names(self.first_names) | _leading_first_names(self.first_name)
        return bool(_leading_first_names(first_names) & mine_first) and bool(names & mine)


class InvitationQuerySet(models.QuerySet):
    def usable(self):
        """The invitations whose link still works (as ``Invitation.is_usable``)."""
        return self.filter(
            used_at__isnull=True, expires_at__gt=timezone.now(), failed_attempts__lt=Invitation.MAX_PROOF_ATTEMPTS
        )


class Invitation(models.Model):
    """An emailed, single-use, expiring link to create an account. Only the SHA-256 of
    the link's token is stored. Opening it is not enough: the invitee proves who they
    are with a second fact, the patient's birth date or, for an account support staff
    made ahead (clinicians, support agents), a code given to them out of band. A few
    wrong proofs end the invitation."""

    MAX_PROOF_ATTEMPTS = 5

    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=16, choices=User.Role.choices, default=User.Role.PATIENT)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("patient")
    )
    # The account made ahead by support staff, which the invitee sets a password for.
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("account")
    )
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    # The out-of-band code, hashed like a password; empty for patients (birth date).
    code_hash = models.CharField(max_length=128, blank=True, editable=False)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    # NULL until the first link is issued; unique among issued ones.
    token_hash = models.CharField(max_length=64, unique=True, null=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self):
        return self.email

    def is_usable(self) -> bool:
        return (
            self.used_at is None and self.expires_at > timezone.now() and self.failed_attempts < self.MAX_PROOF_ATTEMPTS
        )

    @property
    def needs_code(self) -> bool:
        return self.user_id is not None


class SecurityEvent(models.Model):
    """Something that happened to the security of an account, shown to its holder on
    their account page: sign-ins and changes of password, email or second factors.
    Support actions are listed from the support audit trail, not copied here."""

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", _("Signed in")
        NEW_SIGN_IN = "new_sign_in", _("Signed in from a new browser")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_SET = "password_set", _("Password changed")
        PASSWORD_RESET = "password_reset", _("Password reset by email")
        EMAIL_CHANGED = "email_changed", _("Email address changed")
        DEVICE_ADDED = "device_added", _("Second factor added")
        DEVICE_REMOVED = "device_removed", _("Second factor removed")
        PASSKEY_ADDED = "passkey_added", _("Passkey added")
        PASSKEY_REMOVED = "passkey_removed", _("Passkey removed")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="security_events")
    kind = models.CharField(_("event"), max_length=32, choices=Kind.choices)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    at = models.DateTimeField(_("date"), auto_now_add=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}"


class NoticePreference(models.Model):
    """Whether a login wants to be told of one kind of news on one channel. No row means
    yes: emails are on until turned off. Channels other than email (SMS, push) add
    choices here, not columns. News is always marked "new" in the portal; reminders
    (``reminders.Reminder``) may also be turned off on the portal ("in_app")."""

    class Kind(models.TextChoices):
        MESSAGES = "messages", _("New messages")
        DOCUMENTS = "documents", _("New documents")
        RESULTS = "results", _("New lab results")
        PRESCRIPTIONS = "prescriptions", _("New prescriptions")
        APPOINTMENTS = "appointments", _("Appointments booked, changed or cancelled")
        APPOINTMENT_REMINDERS = "appt_reminders", _("Reminder: appointments")
        RENEWALS = "renewals", _("Reminder: prescription ending soon")
        VACCINATIONS = "vaccinations", _("Reminder: vaccination due")
        UNREAD_RESULTS = "unread_results", _("Reminder: results not opened")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        IN_APP = "in_app", _("On Carnet")

    REMINDER_KINDS = (Kind.APPOINTMENT_REMINDERS, Kind.RENEWALS, Kind.VACCINATIONS, Kind.UNREAD_RESULTS)

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notice_preferences")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "channel"], name="noticepreference_unique")]
        # The reminder scan asks which of a batch of logins turned something off.
        indexes = [models.Index(fields=["user"], condition=models.Q(enabled=False), name="noticepreference_off")]

    def __str__(self):
        return f"{self.user_id} {self.kind}/{self.channel}: {self.enabled}"

    @classmethod
    def offered(cls) -> list[tuple[str, str]]:
        """The (kind, channel) pairs a patient may choose: every kind by email, and the
        reminders also on the portal (news is always shown there)."""
        return [
            (kind, channel)
            for kind in cls.Kind.values
            for channel in cls.Channel.values
            if channel == cls.Channel.EMAIL or kind in cls.REMINDER_KINDS
        ]


class RepresentationQuerySet(models.QuerySet):
    def active(self, at=None):
        """Representations in force at ``at`` (now): begun, not past their end date, not ended."""
        at = at or timezone.now()
        return self.filter(ended_at__isnull=True, starts_at__lte=at).filter(
            models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=at)
        )


class Representation(models.Model):
    """Someone's login acting for a patient's record: a holder of parental authority for
    a minor, a legal representative (tutelle) for a protected adult, or a trusted helper
    an adult patient chose, for the parts they chose and until a date they chose. Ended,
    never deleted: who represented whom, and why it stopped, stay known."""

    class Kind(models.TextChoices):
        PARENT = "parent", _("Parental authority")
        LEGAL = "legal", _("Legal representative")
        HELPER = "helper", _("Trusted helper")

    class Proof(models.TextChoices):
        BIRTH_CERTIFICATE = "birth_certificate", _("Birth certificate")
        FAMILY_BOOK = "family_book", _("Family record book (livret de famille)")
        COURT_DECISION = "court_decision", _("Court decision")
        OTHER = "other", _("Other official document")

    # The parts a helper may be given; parents and legal representatives have them all.
    PARTS = ("documents", "results", "prescriptions", "messages")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="representations")
    representative = models.ForeignKey(User, on_delete=models.PROTECT, related_name="representations")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    documents = models.BooleanField(_("documents"), default=True)
    results = models.BooleanField(_("lab results"), default=True)
    prescriptions = models.BooleanField(_("prescriptions"), default=True)
    messages = models.BooleanField(_("messages"), default=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(_("end date"), null=True, blank=True)
    # Set when support or a care team saw a proof (parents, legal representatives).
    proof = models.CharField(_("proof seen"), max_length=20, choices=Proof.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    end_reason = models.CharField(_("reason for ending"), max_length=500, blank=True)

    objects = RepresentationQuerySet.as_manager()

    class Meta:
        ordering = ["patient__last_name", "patient__first_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "representative"],
                condition=models.Q(ended_at__isnull=True),
                name="representation_one_open_per_pair",
            )
        ]
        indexes = [models.Index(fields=["representative"], condition=models.Q(ended_at__isnull=True), name="repr_open")]

    def __str__(self):
        return f"{self.representative_id} for {self.patient_id} ({self.kind})"

    @property
    def is_full(self) -> bool:
        """Parents and legal representatives act for the whole record (save what a care
        team made confidential); a helper only for the parts given."""
        return self.kind != self.Kind.HELPER

    @property
    def parts(self) -> frozenset[str]:
        return frozenset(part for part in self.PARTS if self.is_full or getattr(self, part))

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.ended_at is None and self.starts_at <= at and (self.ends_at is None or self.ends_at > at)


class HelperInvitation(models.Model):
    """An adult patient's invitation to a trusted helper, by email: the parts and the end
    date are chosen now; the helper accepts with their own account and second factor.
    Only the SHA-256 of the link's token is stored; single use, expiring."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="helper_invitations")
    email = models.EmailField(_("email address"))
    documents = models.BooleanField(_("documents"), default=False)
    results = models.BooleanField(_("lab results"), default=False)
    prescriptions = models.BooleanField(_("prescriptions"), default=False)
    messages = models.BooleanField(_("messages"), default=False)
    ends_at = models.DateTimeField(_("end date"))
    invited_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # NULL until the link is emailed (the token exists only in the email).
    token_hash = models.CharField(max_length=64, unique=True, null=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    representation = models.OneToOneField(
        Representation, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitation"
    )

    def __str__(self):
        return self.email

    def is_usable(self) -> bool:
        return self.used_at is None and self.cancelled_at is None and self.expires_at > timezone.now()

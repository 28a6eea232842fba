from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.audit.chain import GENESIS, link_hash


class AppendOnlyError(Exception):
    pass


class ChainedLogQuerySet(models.QuerySet):
    """Append-only and hash-chained: every insert, one row (``create``, ``save``) or
    many (``bulk_create``), goes through ``bulk_create``, which links the new rows to
    the head of their chain while holding that chain's lock."""

    def update(self, **kwargs):
        raise AppendOnlyError("the audit log is append-only")

    def delete(self):
        raise AppendOnlyError("the audit log is append-only")

    def bulk_create(self, objs, *args, **kwargs):
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise AppendOnlyError("audit rows are inserted, never merged")
        objs = list(objs)
        if not objs:
            return objs
        with transaction.atomic(using=self.db):
            self._link(objs)
            if args or kwargs:
                return super().bulk_create(objs, *args, **kwargs)
            return self._insert(objs)

    def _insert(self, objs):
        """What ``QuerySet.bulk_create`` does for these rows (no signals, the primary keys
        set from ``RETURNING``), with an INSERT written from the model's columns: every
        clinician's read writes a row, and the team inbox 25, where the ORM's insert cost
        more Python than the page's own query."""
        model, connection = self.model, connections[self.db]
        meta, quote = model._meta, connection.ops.quote_name
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        # Quoted names from the model's own metadata; every value is a parameter.
        columns = ", ".join(quote(field.column) for field in fields)
        returning = f" RETURNING {quote(meta.pk.column)}"
        if connection.vendor == "postgresql":
            # One array per column (as Django's own bulk insert does on PostgreSQL): the
            # statement is the same whatever the number of rows, so psycopg converts it
            # once and the server parses a short one; the rows come back in their order.
            arrays = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in fields)
            sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT * FROM UNNEST({arrays}){returning}"  # noqa: S608
            values = [
                [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs] for field in fields
            ]
            self._returned_pks(connection, sql, values, objs)
            return objs
        into = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608
        row = f"({', '.join(['%s'] * len(fields))})"
        size = connection.ops.bulk_batch_size(fields, objs)
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            params = [
                field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in batch for field in fields
            ]
            self._returned_pks(connection, into + ", ".join([row] * len(batch)) + returning, params, batch)
        return objs

    def _returned_pks(self, connection, sql, params, objs):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk, obj._state.adding, obj._state.db = pk, False, self.db

    def _link(self, objs):
        model = self.model
        keys = sorted({obj.chain_key() for obj in objs})
        connection = connections[self.db]
        if connection.vendor == "postgresql":
            # One chain, one writer at a time, until the transaction commits: two
            # inserts at once cannot both link to the same head (a fork). Locks are
            # taken in key order, so two writers never wait on each other in a cycle.
            # (SQLite serialises writes anyway.)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k",
                    [model.CHAIN_LOCK, sorted({key % 2**31 for key in keys})],
                )
        heads = model.chain_heads(keys, using=self.db)
        for obj in objs:
            key = obj.chain_key()
            obj.prev_hash = heads[key] or GENESIS
            obj.hash = obj.compute_hash()
            heads[key] = obj.hash


class ChainedLog(models.Model):
    """A row of an append-only, hash-chained audit table: the model refuses updates
    and deletes, a PostgreSQL trigger refuses them too (see the migrations), and the
    hash chain shows any change made behind both (``manage.py verify_audit_chain``)."""

    prev_hash = models.CharField(max_length=64, editable=False)
    # Not indexed: rows are found by their chain and id (``rows_before``), never by hash.
    hash = models.CharField(max_length=64, editable=False)

    # Set by each table: its lock number, the fields its hash covers, and its chains.
    CHAIN_LOCK: int
    CHAIN_FIELDS: tuple[str, ...]
    # The order that walks the table chain by chain, each chain from its first row.
    CHAIN_ORDER: tuple[str, ...] = ("id",)

    objects = ChainedLogQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError(f"{self._meta.db_table} is append-only")
        type(self)._default_manager.db_manager(kwargs.get("using")).bulk_create([self])

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.db_table} is append-only")

    # The field whose value names a row's chain; None: one chain for the whole table.
    CHAIN_BY: str | None = None

    def chain_key(self) -> int:
        """Which chain this row belongs to (0 for a table with one chain)."""
        return 0 if self.CHAIN_BY is None else getattr(self, self._meta.get_field(self.CHAIN_BY).attname)

    @classmethod
    def chain_heads(cls, keys, *, using) -> dict:
        """The hash of the last row of each chain in ``keys`` (None for a chain not begun),
        in one SELECT of one index probe per chain."""
        return cls._last_of_chains(keys, using=using, column="hash")

    @classmethod
    def rows_before(cls, keys, *, before: int, using) -> dict:
        """The id of the last row before the row ``before`` of each chain in ``keys``
        (None for a chain with none): what the checks of a recent window link back to."""
        return cls._last_of_chains(keys, using=using, column=cls._meta.pk.column, before=before)

    # Chains read by one SELECT, at most this many at a time (two parameters each).
    CHAINS_PER_SELECT = 500

    @classmethod
    def _last_of_chains(cls, keys, *, using, column, before=None) -> dict:
        connection, meta = connections[using], cls._meta
        quote = connection.ops.quote_name
        chain = meta.get_field(cls.CHAIN_BY) if cls.CHAIN_BY else None
        # On PostgreSQL the chains' keys are one array: the statement is the same whatever
        # their number (psycopg converts it once, the server parses a short one).
        as_array = connection.vendor == "postgresql" and chain is not None
        # Quoted names from the model's own metadata; the chains' keys are parameters.
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        conditions = [f"{quote(chain.column)} = {'chains.chain_key' if as_array else '%s'}"] if chain else []
        if before is not None:
            conditions.append(f"{pk} < %s")
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        last = f"(SELECT {quote(column)} FROM {table} {where}ORDER BY {pk} DESC LIMIT 1)"  # noqa: S608
        keys, found = list(keys), {}
        if as_array:
            key_type = chain.db_type(connection).split("(")[0]
            sql = f"SELECT {last} FROM UNNEST(%s::{key_type}[]) WITH ORDINALITY AS chains (chain_key, n) ORDER BY n"  # noqa: S608
            params = [keys] if before is None else [before, keys]
            heads = cls._select_unprepared(connection, sql, params, rows=True)
            return dict(zip(keys, (head for (head,) in heads), strict=True))
        for start in range(0, len(keys), cls.CHAINS_PER_SELECT):
            chunk, params = keys[start : start + cls.CHAINS_PER_SELECT], []
            for key in chunk:
                params += ([key] if cls.CHAIN_BY else []) + ([] if before is None else [before])
            sql = "SELECT " + ", ".join([last] * len(chunk))
            found.update(zip(chunk, cls._select_unprepared(connection, sql, params), strict=True))
        return found

    @staticmethod
    def _select_unprepared(connection, sql, params, *, rows=False):
        """One row of ``sql`` (every row, with ``rows``), never as a prepared statement:
        its plan, kept from when the log was small (a scan of the whole table), would
        outlive the log's growth until the next ANALYZE; planned each time, it is one
        index probe per chain."""
        psycopg = connection.connection if connection.vendor == "postgresql" else None
        with connection.cursor() as cursor:
            threshold = psycopg.prepare_threshold if psycopg else None
            try:
                if psycopg:
                    psycopg.prepare_threshold = None
                cursor.execute(sql, params)
            finally:
                if psycopg:
                    psycopg.prepare_threshold = threshold
            return cursor.fetchall() if rows else cursor.fetchone()

    def compute_hash(self) -> str:
        return link_hash(self.prev_hash, [getattr(self, name) for name in self.CHAIN_FIELDS])


class AccessLog(ChainedLog):
    """One read of a patient's data by someone other than that patient.

    Append-only and chained per patient: each patient's history is one chain,
    verifiable alone, and reads of different patients are logged in parallel.
    """

    CHAIN_LOCK = 0x41636C67  # "Aclg"
    CHAIN_FIELDS = ("patient_id", "actor_id", "actor_role", "team_id", "action", "target", "at")
    CHAIN_BY = "patient"
    CHAIN_ORDER = ("patient_id", "id")

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
        LINK_STARTED = "link_started", _("Linked the record to their care team")
        LINK_ENDED = "link_ended", _("Ended their care team's link to the record")
        IDENTITY_MATCH = "identity_match", _("Found the record when registering a patient")
        LIST_AGENDA = "list_agenda", _("Saw an appointment in the team agenda")
        VIEW_APPOINTMENTS = "view_appointments", _("Looked at the appointments")
        VIEW_PRESCRIPTIONS = "view_prescriptions", _("Looked at the prescriptions")
        # A care team's page of the record's results: what makes new results seen by the team.
        LIST_RESULTS = "list_results", _("Looked at the lab results")
        # A team's software found the record by INS, family name and birth date (FHIR Patient search).
        IDENTITY_SEARCH = "identity_search", _("Found the record by the patient's identity")
        # Support opened a page about the person: their account, representatives, a merge.
        SUPPORT_VIEW = "support_view", _("Support looked at the identity and the account")

    # Indexed by the two (patient, ...) indexes below: a third on the patient alone would be
    # one more index written by every clinician's read.
    patient = models.ForeignKey(
        "accounts.Patient", on_delete=models.PROTECT, related_name="access_logs", db_index=False
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_role = models.CharField(max_length=16)
    team = models.ForeignKey("careteams.CareTeam", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    # What was read, in words the patient understands (e.g. a document's title).
    target = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "-at"]),
            models.Index(fields=["patient", "id"]),
            # A team's latest look at a record's results (careteams.services._last_look and
            # results_unseen_by): one probe, however often the team reads the record.
            # Not a partial index on that action: a prepared statement's generic plan, with
            # the action as a parameter, could not use it.
            models.Index(fields=["patient", "action", "team", "-at"], name="audit_team_looks"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_role} {self.action}"

    # A representative's reads carry their kind as role (see ``portal.access.trace_read``).
    REPRESENTATIVE_ROLES = {
        "parent": _("Parental authority"),
        "legal": _("Legal representative"),
        "helper": _("Trusted helper"),
    }

    @property
    def by_representative(self) -> bool:
        return self.actor_role in self.REPRESENTATIVE_ROLES

    # A care team's software reading through the API (see ``fhir_api.services``).
    SOFTWARE = "software"

    @property
    def role_label(self) -> str:
        if self.by_representative:
            return self.REPRESENTATIVE_ROLES[self.actor_role]
        if self.actor_role == self.SOFTWARE:
            return _("The care team's software")
        return self.actor.get_role_display()


class ChainAlert(models.Model):
    """A broken link of an audit chain that the operator was told about: one email per break."""

    table = models.CharField(max_length=64)
    row_id = models.BigIntegerField()
    problem = models.CharField(max_length=255)
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "row_id"], name="chainalert_once_per_break")]

    def __str__(self):
        return f"{self.table} row {self.row_id}"


class AccessReport(models.Model):
    """A patient's "I don't recognise this" about one line of their access history:
    a case for support, who answer it. Carries the line (who, when, what kind of
    access) and the patient's short comment; support never sees the line's target."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("access report", "Open")
        RESOLVED = "resolved", pgettext_lazy("access report", "Answered")

    access_log = models.OneToOneField(AccessLog, on_delete=models.PROTECT, related_name="report")
    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="access_reports")
    comment = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(max_length=1000, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the data-protection contact was told: set once, so a copy goes once.
    dpo_notified_at = models.DateTimeField(null=True, blank=True)
    # When the patient was told that support answered (once, content-free).
    answer_emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"#{self.pk} {self.status}"

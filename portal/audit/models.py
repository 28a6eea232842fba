import operator
from functools import cache

from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.audit.chain import GENESIS, canonical, json_text, link_hash, texts_link_hash


class AppendOnlyError(Exception):
    pass


class ChainedLogQuerySet(models.QuerySet):
    """Append-only and hash-chained: every insert, one row (``create``, ``save``) or
    many (``bulk_create``, or ``append`` for rows given as values), goes through
    ``append``, which links the new rows to the head of their chain while holding that
    chain's lock (``bulk_create`` with Django's options: through ``_link``)."""

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
        if args or kwargs:  # Django's own insert (batch size...), the rows linked first
            with transaction.atomic(using=self.db):
                self._link(objs)
                return super().bulk_create(objs, *args, **kwargs)
        fields = _chained_fields(self.model)
        written = self.append({field.attname: field.pre_save(obj, True) for field in fields} for obj in objs)
        for obj, (pk, prev_hash, link) in zip(objs, written, strict=True):
            obj.pk, obj.prev_hash, obj.hash = pk, prev_hash, link
            obj._state.adding, obj._state.db = False, self.db
        return objs

    def append(self, rows) -> list[tuple]:
        """Insert ``rows``, each a dict of column values by attribute name (``patient_id``;
        what the model's fields would hold, a field left out taking its default), linked
        to the heads of their chains while holding those chains' locks; returns each
        row's (id, prev_hash, hash). What ``bulk_create`` does without model instances:
        the team inbox and the support search log 25 rows a page, where building and
        preparing 25 models cost more than the page's own query."""
        model, connection = self.model, connections[self.db]
        fields = _chained_fields(model)
        names, defaults = [field.attname for field in fields], [field.get_default() for field in fields]
        rows = [tuple(map(row.get, names, defaults)) for row in rows]  # one moment for the batch
        if not rows:
            return []
        chain_at = model.CHAIN_FIELDS.index(model.chain_attname()) if model.CHAIN_BY else None
        keys = [0 if chain_at is None else row[chain_at] for row in rows]
        # No savepoint inside a transaction already open (a request's): a failed insert
        # fails it anyway. Outside one, the locks, the heads and the insert are one.
        # Each column's values as the hash reads them (JSON text of the canonical form),
        # worked out once per distinct value: a batch's rows share most of them.
        texts = list(zip(*(_each_once(_hashed_text, column) for column in zip(*rows, strict=True)), strict=True))
        with transaction.atomic(using=self.db, savepoint=False):
            heads = self._lock_chains(connection, sorted(set(keys)))
            links = []
            for key, row_texts in zip(keys, texts, strict=True):
                prev_hash = heads[key] or GENESIS
                heads[key] = texts_link_hash(prev_hash, row_texts)
                links.append((prev_hash, heads[key]))
            pks = self._insert(connection, rows, links, texts)
        return [(pk, prev_hash, link) for pk, (prev_hash, link) in zip(pks, links, strict=True)]

    def _insert(self, connection, rows, links, texts):
        """The rows' primary keys, in order, from an INSERT written from the table's
        columns (no signals, as ``bulk_create``). ``texts``: each row's values as the hash
        read them (``_hashed_text``)."""
        fields, into, placeholders, returning, recordset, json_keys = _insert_statements(self.model, connection.alias)
        if len(rows) > 1 and recordset:
            # Each row an object of the columns' names, its values the JSON texts the hash
            # read, which PostgreSQL reads into the columns' types as they are (a moment
            # in UTC, a UUID as its text), and the two hashes (hexadecimal: nothing to
            # escape).
            objects = ",".join(
                "{" + ",".join(map(operator.add, json_keys, (*row_texts, f'"{prev_hash}"', f'"{link}"'))) + "}"
                for row_texts, (prev_hash, link) in zip(texts, links, strict=True)
            )
            return self._returned_pks(connection, recordset, [f"[{objects}]"])
        rows = [values + link for values, link in zip(rows, links, strict=True)]
        if len(rows) == 1:  # a clinician's read: one row, plain values
            values = [field.get_db_prep_save(value, connection) for field, value in zip(fields, rows[0], strict=True)]
            return self._returned_pks(connection, into + placeholders + returning, values)
        # Each column's values as the database takes them, worked out once per distinct value.
        columns = [
            _each_once(lambda value, field=field: field.get_db_prep_save(value, connection), values)
            for field, values in zip(fields, zip(*rows, strict=True), strict=True)
        ]
        size = connection.ops.bulk_batch_size(fields, rows)
        rows, pks = list(zip(*columns, strict=True)), []
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            params = [value for values in batch for value in values]
            pks += self._returned_pks(connection, into + ", ".join([placeholders] * len(batch)) + returning, params)
        return pks

    @staticmethod
    def _returned_pks(connection, sql, params):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [pk for (pk,) in cursor.fetchall()]

    def _lock_chains(self, connection, keys):
        """Take the locks of the chains ``keys`` and return the hash of each one's last row."""
        model = self.model
        if connection.vendor != "postgresql":  # SQLite serialises writes anyway
            return model.chain_heads(keys, using=self.db)
        # One chain, one writer at a time, until the transaction commits: two inserts at
        # once cannot both link to the same head (a fork). Locks are taken in key order, so
        # two writers never wait on each other in a cycle. The locks and the heads go in one
        # round trip, as two statements of one query (psycopg's simple protocol: no
        # parameters, the keys written in: integers only): each statement reads its own
        # snapshot, so the heads are read after the locks are held, with the rows of any
        # writer waited for (test_a_writer_who_waited_for_the_lock_links_to_the_row_written_meanwhile).
        locks = _int_array(sorted({key % 2**31 for key in keys}))
        lock = f"SELECT pg_advisory_xact_lock({int(model.CHAIN_LOCK)}, k) FROM unnest('{locks}'::int[]) AS k"  # noqa: S608
        keys = list(keys)
        if model.CHAIN_BY:
            heads = model._chains_sql(connection, "hash", keys=f"'{_int_array(keys)}'")
        else:
            heads = "SELECT " + model._last_sql(connection, "hash", by_chain=False, before=False)
        heads = model._select_unprepared(connection, f"{lock}; {heads}", None, rows=True)
        return dict(zip(keys, (head for (head,) in heads), strict=True))

    def _link(self, objs):
        heads = self._lock_chains(connections[self.db], sorted({obj.chain_key() for obj in objs}))
        for obj in objs:
            key = obj.chain_key()
            obj.prev_hash = heads[key] or GENESIS
            obj.hash = obj.compute_hash()
            heads[key] = obj.hash


@cache
def _insert_statements(model, alias):
    """A chained table's columns in insert order (its chained fields, then the two
    hashes) and the pieces of its INSERT: ``INSERT INTO t (…) VALUES ``, one row's
    ``(%s, …)``, `` RETURNING id``, and on PostgreSQL the INSERT of one array per column.
    Written once per table and database: the statement is the same at every read (psycopg
    prepares it), and a foreign key's type is worked out from a new field each time."""
    connection, meta = connections[alias], model._meta
    quote = connection.ops.quote_name
    fields = [*_chained_fields(model), meta.get_field("prev_hash"), meta.get_field("hash")]
    # Quoted names from the model's own metadata; every value is a parameter.
    names = ", ".join(quote(field.column) for field in fields)
    into = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "  # noqa: S608
    returning = f" RETURNING {quote(meta.pk.column)}"
    recordset, json_keys = None, ()
    if connection.vendor == "postgresql":
        # The rows as one JSON array of objects, read by jsonb_to_recordset with the
        # columns' own types: the statement is the same whatever the number of rows (psycopg
        # converts it once, the server parses a short one), and the rows go in one
        # parameter, serialised in one call rather than adapted value by value (arrays:
        # several calls per value); the rows come back in their order.
        typed = ", ".join(f"{quote(field.column)} {field.db_type(connection)}" for field in fields)
        recordset = (
            f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT {names} "  # noqa: S608
            f"FROM jsonb_to_recordset(%s::jsonb) AS rows ({typed}){returning}"
        )
        json_keys = tuple(f"{json_text(field.column)}:" for field in fields)  # each row's '"name":'
    return fields, into, f"({', '.join(['%s'] * len(fields))})", returning, recordset, json_keys


def _each_once(function, values) -> list:
    """``[function(value) for value in values]``, worked out once per distinct value: a
    batch's rows share most of their columns' values (the reader, the action, the moment)."""
    done, results = {}, []
    for value in values:
        key = (type(value), value)
        if key not in done:
            done[key] = function(value)
        results.append(done[key])
    return results


def _hashed_text(value) -> str:
    """A value as the row's hash reads it: the JSON text of its canonical form."""
    return json_text(canonical(value))


def _int_array(keys) -> str:
    """Integers as a PostgreSQL array literal, which the statement casts (``%s::int[]``):
    one string for psycopg to send, where a list is looked at item by item."""
    return "{" + ",".join(map(str, map(int, keys))) + "}"


@cache
def _chained_fields(model) -> tuple:
    """A chained table's ``CHAIN_FIELDS`` as its fields, in that order (looked up once)."""
    return tuple(model._meta.get_field(name) for name in model.CHAIN_FIELDS)


@cache
def _array_type(model, field_name, alias):
    """The PostgreSQL type of an array of ``field_name``'s values (worked out once)."""
    return f"{model._meta.get_field(field_name).db_type(connections[alias]).split('(')[0]}[]"


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
        return 0 if self.CHAIN_BY is None else getattr(self, self.chain_attname())

    @classmethod
    def chain_attname(cls) -> str:
        """The column of ``CHAIN_BY`` (e.g. ``patient_id``): where a row's chain key is."""
        return cls._meta.get_field(cls.CHAIN_BY).attname

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
        connection = connections[using]
        keys, found = list(keys), {}
        if connection.vendor == "postgresql" and cls.CHAIN_BY:
            # The chains' keys as one array: the statement is the same whatever their
            # number (psycopg converts it once, the server parses a short one).
            sql = cls._chains_sql(connection, column, keys="%s", before=before is not None)
            params = [_int_array(keys)] if before is None else [before, _int_array(keys)]
            heads = cls._select_unprepared(connection, sql, params, rows=True)
            return dict(zip(keys, (head for (head,) in heads), strict=True))
        last = cls._last_sql(connection, column, by_chain=cls.CHAIN_BY is not None, before=before is not None)
        for start in range(0, len(keys), cls.CHAINS_PER_SELECT):
            chunk, params = keys[start : start + cls.CHAINS_PER_SELECT], []
            for key in chunk:
                params += ([key] if cls.CHAIN_BY else []) + ([] if before is None else [before])
            sql = "SELECT " + ", ".join([last] * len(chunk))
            found.update(zip(chunk, cls._select_unprepared(connection, sql, params), strict=True))
        return found

    @classmethod
    def _last_sql(cls, connection, column, *, by_chain, before, chain_key="%s") -> str:
        """The subquery of a chain's last row's ``column``: of the chain ``chain_key``
        (``by_chain``), before the id of a parameter (``before``). Quoted names from the
        model's own metadata; the values are parameters."""
        quote, meta = connection.ops.quote_name, cls._meta
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        conditions = [f"{quote(meta.get_field(cls.CHAIN_BY).column)} = {chain_key}"] if by_chain else []
        if before:
            conditions.append(f"{pk} < %s")
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        return f"(SELECT {quote(column)} FROM {table} {where}ORDER BY {pk} DESC LIMIT 1)"  # noqa: S608

    @classmethod
    def _chains_sql(cls, connection, column, *, keys, before=False) -> str:
        """PostgreSQL: the SELECT of ``_last_sql`` for each chain of the array ``keys`` (a
        parameter, or an array literal of integers), in its order."""
        last = cls._last_sql(connection, column, by_chain=True, before=before, chain_key="chains.chain_key")
        key_type = _array_type(cls, cls.CHAIN_BY, connection.alias)
        return f"SELECT {last} FROM UNNEST({keys}::{key_type}) WITH ORDINALITY AS chains (chain_key, n) ORDER BY n"  # noqa: S608

    @staticmethod
    def _select_unprepared(connection, sql, params, *, rows=False):
        """One row of ``sql`` (every row, with ``rows``), never as a prepared statement:
        its plan, kept from when the log was small (a scan of the whole table), would
        outlive the log's growth until the next ANALYZE; planned each time, it is one
        index probe per chain. ``sql`` of several statements (PostgreSQL, no ``params``):
        the rows of the last one."""
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
            while psycopg and cursor.nextset():  # psycopg keeps each statement's result: the last one's
                pass
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

    # No foreign-key constraint in the database (db_constraint=False): each row written
    # would be checked against the patient, the user and the team when the transaction
    # commits, a locking read of each: nearly half of what 25 rows (a page of the team
    # inbox or of the support search) cost the database to write. The rows come from the
    # records the request has just read, and no patient, user or team is deleted while a
    # row names them: on_delete=PROTECT is Django's check, which holds without it.
    # The patient is indexed by the two (patient, ...) indexes below: a third on the
    # patient alone would be one more index written by every clinician's read. Nothing
    # looks rows up by reader or by team but with the patient (a team's looks at a record:
    # ``audit_team_looks``), and no user or team is deleted but by hand, where PROTECT's
    # check may read the table: an index of either would only cost each row written (two
    # of the six the table had: about a tenth of writing a page of 25 rows).
    patient = models.ForeignKey(
        "accounts.Patient", on_delete=models.PROTECT, related_name="access_logs", db_index=False, db_constraint=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    actor_role = models.CharField(max_length=16)
    team = models.ForeignKey(
        "careteams.CareTeam",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
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

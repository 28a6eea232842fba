"""The access log and the support trail are hash-chained: a row changed, removed or
inserted behind the model's back (here: straight in the database, with the
append-only trigger lifted) is found by `manage.py verify_audit_chain` and by the
periodic check, which mails the operator once per break."""

import datetime
import decimal
import io
import itertools
import json
import re
import threading
import uuid

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from portal import access
from portal.audit import chain, services
from portal.audit.chain import GENESIS
from portal.audit.models import AccessLog, AppendOnlyError, ChainAlert
from portal.audit.tasks import check_audit_chains
from portal.support.models import SupportAction
from tests.factories import PatientFactory

TRIGGERS = {
    "audit_accesslog": "audit_accesslog_append_only",
    "support_supportaction": "support_supportaction_append_only",
}


def tamper(table, sql, params=()):
    """Change the table the way an intruder with database access would: around the
    model, and with the append-only trigger switched off (PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own inserts: checked now
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRIGGERS[table]}")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRIGGERS[table]}")


def verify():
    """What `manage.py verify_audit_chain` reports as broken, or None when it exits 0."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit_chain", stdout=out, stderr=err)
    except CommandError:
        return err.getvalue()
    assert "intact" in out.getvalue()
    return None


@pytest.fixture
def reads(patient, other_patient, clinician, other_clinician):
    """Some reads of two patients' records, one path each: single rows and a bulk insert."""
    rows = [access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD) for _ in range(3)]
    rows += AccessLog.objects.bulk_create(
        AccessLog(patient=p, actor=c, actor_role="clinician", action=AccessLog.Action.LIST_CONVERSATIONS, target="x")
        for p, c in [(patient, clinician), (other_patient, other_clinician), (patient, clinician)]
    )
    return rows


def support_action(agent, account, reason="asked by phone"):
    return SupportAction.objects.create(
        agent=agent, account=account, action="unlock", reason=reason, request_key=uuid.uuid4()
    )


@pytest.mark.django_db
def test_each_patient_history_is_one_chain_whatever_the_insert_path(reads, patient, other_patient):
    chain = list(AccessLog.objects.filter(patient=patient).order_by("pk"))
    assert len(chain) == 5
    assert chain[0].prev_hash == GENESIS
    for before, row in itertools.pairwise(chain):
        assert row.prev_hash == before.hash and row.hash == row.compute_hash()
    assert AccessLog.objects.get(patient=other_patient).prev_hash == GENESIS
    assert verify() is None


@pytest.mark.django_db
def test_the_append_only_rules_stay(reads):
    with pytest.raises(AppendOnlyError):
        reads[0].save()
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.bulk_create([AccessLog(**{"patient_id": 1})], ignore_conflicts=True)
    if connection.vendor == "postgresql":
        from django.db import DatabaseError

        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_accesslog SET target = 'x'")


@pytest.mark.django_db
@pytest.mark.parametrize("named", ["patient", "actor", "team"])
def test_no_patient_reader_or_team_a_row_names_can_be_deleted(clinician, team, patient, named):
    """The log's references have no constraint in the database (its checks at commit cost
    more than the rows): Django's PROTECT is what keeps them, through every path of a
    deletion, the queryset's and the instance's."""
    from django.db.models import ProtectedError

    row = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD, team=team)
    assert (row.patient, row.actor, row.team) == (patient, clinician, team)
    referenced = getattr(row, named)
    for delete in (referenced.delete, type(referenced)._base_manager.filter(pk=referenced.pk).delete):
        with pytest.raises(ProtectedError) as refused:
            delete()
        assert row in refused.value.protected_objects
    assert type(referenced)._base_manager.filter(pk=referenced.pk).exists()
    assert AccessLog.objects.get(pk=row.pk).hash == row.hash


@pytest.mark.django_db
def test_a_row_changed_in_the_database_is_named_by_the_command(reads):
    row = reads[1]
    tamper("audit_accesslog", "UPDATE audit_accesslog SET target = 'nothing to see' WHERE id = %s", [row.pk])
    report = verify()
    assert f"audit_accesslog row {row.pk}: stored hash" in report
    assert "changed after it was written" in report


@pytest.mark.django_db
def test_a_row_removed_from_the_database_is_named_by_the_command(reads, patient):
    first, removed, after = AccessLog.objects.filter(patient=patient).order_by("pk")[:3]
    tamper("audit_accesslog", "DELETE FROM audit_accesslog WHERE id = %s", [removed.pk])
    report = verify()
    assert f"audit_accesslog row {after.pk}: links to" in report
    assert f"(id {first.pk})" in report and "removed or inserted" in report


@pytest.mark.django_db
def test_a_support_action_changed_in_the_database_is_named_by_the_command(support, clinician, other_clinician):
    kept = support_action(support, clinician)
    changed = support_action(support, other_clinician)
    support_action(support, clinician)
    assert changed.prev_hash == kept.hash
    tamper("support_supportaction", "UPDATE support_supportaction SET reason = 'routine' WHERE id = %s", [changed.pk])
    assert f"support_supportaction row {changed.pk}: stored hash" in verify()


@pytest.mark.django_db
def test_the_periodic_check_finds_a_recent_break_and_mails_the_operator_once(settings, reads, patient):
    settings.AUDIT_ALERT_EMAIL = "ops@carnet.example"
    check_audit_chains.apply()
    assert mail.outbox == []
    row = reads[2]
    tamper("audit_accesslog", "UPDATE audit_accesslog SET actor_role = 'patient' WHERE id = %s", [row.pk])

    check_audit_chains.apply()
    check_audit_chains.apply()  # the same break, found again: no second email

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@carnet.example"]
    assert f"audit_accesslog is broken at row {row.pk}" in mail.outbox[0].body
    assert ChainAlert.objects.get().row_id == row.pk


@pytest.mark.django_db
def test_the_periodic_check_reads_the_link_to_the_row_before_its_window(settings, patient, clinician):
    settings.AUDIT_ALERT_EMAIL = "ops@carnet.example"
    old = timezone.now() - datetime.timedelta(days=10)
    _kept, removed = (
        AccessLog.objects.create(patient=patient, actor=clinician, actor_role="clinician", action="view_record", at=old)
        for _ in range(2)
    )
    recent = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    assert services.check_recent_audit_chains() == []

    tamper("audit_accesslog", "DELETE FROM audit_accesslog WHERE id = %s", [removed.pk])

    assert [b.row_id for b in services.check_recent_audit_chains()] == [recent.pk]
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_rows_older_than_the_window_are_left_to_the_full_check(settings, patient, clinician):
    old = timezone.now() - datetime.timedelta(days=10)
    rows = [
        AccessLog.objects.create(patient=patient, actor=clinician, actor_role="clinician", action="view_record", at=old)
        for _ in range(3)
    ]
    tamper("audit_accesslog", "UPDATE audit_accesslog SET target = 'x' WHERE id = %s", [rows[0].pk])
    assert services.check_recent_audit_chains() == []
    assert f"row {rows[0].pk}" in verify()


@pytest.mark.django_db(transaction=True)
def test_concurrent_inserts_into_one_chain_do_not_fork_it(postgres, clinician):
    """Real concurrent transactions on PostgreSQL, each adding rows to the same
    patient's chain while the others do: the chain stays one line."""
    patient = PatientFactory()
    start = threading.Barrier(4)
    errors = []

    def write():
        try:
            start.wait()
            for _ in range(10):
                with transaction.atomic():
                    AccessLog.objects.create(
                        patient=patient, actor=clinician, actor_role="clinician", action="view_record"
                    )
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = list(AccessLog.objects.filter(patient=patient).order_by("pk"))
    assert len(rows) == 40
    assert len({row.prev_hash for row in rows}) == 40  # no two rows link to the same head
    assert services.verify_chain(AccessLog) == []


@pytest.mark.django_db(transaction=True)
def test_a_writer_who_waited_for_the_lock_links_to_the_row_written_meanwhile(postgres, clinician):
    """A first writer holds a chain's lock, its row written but not committed; a second
    writer of the same chain waits for that lock in the query that then reads the heads.
    Once the first commits, the second's row links to the first's, not to the head both
    found before: the heads are read after the lock is held, with what was committed
    while waiting."""
    patient = PatientFactory()
    access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD, target="before")
    written, release, errors = threading.Event(), threading.Event(), []

    def write(target, *, hold):
        try:
            with transaction.atomic():
                AccessLog.objects.create(
                    patient=patient, actor=clinician, actor_role="clinician", action="view_record", target=target
                )
                if hold:
                    written.set()
                    assert release.wait(30)
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=write, args=("first",), kwargs={"hold": True})
    first.start()
    assert written.wait(30)
    second = threading.Thread(target=write, args=("second",), kwargs={"hold": False})
    second.start()
    waiting = 0
    for _ in range(300):  # until the second writer waits for the chain's lock
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            waiting = cursor.fetchone()[0]
        if waiting:
            break
        threading.Event().wait(0.05)
    release.set()
    first.join()
    second.join()
    assert errors == [] and waiting == 1
    rows = list(AccessLog.objects.filter(patient=patient).order_by("pk"))
    assert [row.target for row in rows] == ["before", "first", "second"]
    assert [row.prev_hash for row in rows] == [GENESIS, rows[0].hash, rows[1].hash]
    assert services.verify_chain(AccessLog) == []


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_chain_are_chained_in_order_by_the_migration(patient, other_patient, clinician):
    """Migrate back to before the chain, write rows the old way, migrate forward: each
    patient's rows form one chain in the order they were written, and so does the trail."""
    from django.db.migrations.executor import MigrationExecutor

    before = [
        ("audit", "0008_access_log_previews_lists_attachments"),
        ("support", "0003_support_action_patient_detail"),
    ]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = MigrationExecutor(connection).loader.project_state(before).apps
    OldLog, OldAction = old.get_model("audit", "AccessLog"), old.get_model("support", "SupportAction")
    for who in (patient, other_patient, patient, patient):
        OldLog.objects.create(patient_id=who.pk, actor_id=clinician.pk, actor_role="clinician", action="view_record")
    for _ in range(3):
        OldAction.objects.create(
            agent_id=clinician.pk, account_id=clinician.pk, action="unlock", reason="r", request_key=uuid.uuid4()
        )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(leaves)

    assert services.verify_chain(AccessLog) == [] and services.verify_chain(SupportAction) == []
    chain = list(AccessLog.objects.filter(patient=patient).order_by("pk"))
    assert [row.prev_hash for row in chain] == [GENESIS, chain[0].hash, chain[1].hash]
    assert AccessLog.objects.get(patient=other_patient).prev_hash == GENESIS
    trail = list(SupportAction.objects.order_by("pk"))
    assert [row.prev_hash for row in trail] == [GENESIS, trail[0].hash, trail[1].hash]
    access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)  # new rows carry on from the migrated head
    assert services.verify_chain(AccessLog) == []


def keys_out(sql):
    """``sql`` without the chains' keys written in it (an array literal of integers)."""
    return re.sub(r"'\{[0-9,]*\}'", "'{…}'", sql)


@pytest.mark.django_db
def test_a_bulk_insert_costs_the_same_queries_for_any_number_of_patients(clinician):
    from django.test.utils import CaptureQueriesContext

    def insert(patients):
        sent = []

        def statement(execute, sql, params, many, context):  # as sent, before the values go in
            sent.append(sql)
            return execute(sql, params, many, context)

        with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(statement):
            AccessLog.objects.bulk_create(
                AccessLog(patient=p, actor=clinician, actor_role="clinician", action="list_conversations")
                for p in patients
            )
        return len(queries), [sql for sql in sent if not sql.startswith(("SAVEPOINT", "RELEASE"))]

    (two, two_sent), (twelve, twelve_sent) = (
        insert(PatientFactory.create_batch(2)),
        insert(PatientFactory.create_batch(12)),
    )
    assert two == twelve
    if connection.vendor == "postgresql":
        # The locks and the heads in one query, the keys written in as an array; the rows
        # as JSON: the same statements but for the keys.
        assert [keys_out(sql) for sql in two_sent] == [keys_out(sql) for sql in twelve_sent]
        assert len(two_sent) == 2 and two_sent[0].count("; SELECT") == 1  # locks; heads, then insert
    # One row (a clinician's read): its values as plain parameters, the same statement for any.
    (one, one_sent), (other, other_sent) = (
        insert(PatientFactory.create_batch(1)),
        insert(PatientFactory.create_batch(1)),
    )
    assert one == other == two and "jsonb_to_recordset" not in one_sent[-1]
    assert [keys_out(sql) for sql in one_sent] == [keys_out(sql) for sql in other_sent]
    assert services.verify_chain(AccessLog) == []


@pytest.mark.django_db
def test_a_bulk_insert_larger_than_the_database_takes_at_once_goes_in_batches(monkeypatch, clinician):
    """Two rows per INSERT (what the database's parameter limit allows, made small): every
    row is written once, in order, chained, and given its primary key. PostgreSQL takes
    the rows as one array per column, in one INSERT: no limit is met."""
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 2)
    from django.test.utils import CaptureQueriesContext

    patients = PatientFactory.create_batch(2)
    with CaptureQueriesContext(connection) as queries:
        rows = AccessLog.objects.bulk_create(
            AccessLog(
                patient=patients[i % 2], actor=clinician, actor_role="clinician", action="view_record", target=str(i)
            )
            for i in range(5)
        )
    inserts = sum(query["sql"].startswith("INSERT") for query in queries)
    assert inserts == (1 if connection.vendor == "postgresql" else 3)
    assert all(row.pk is not None and not row._state.adding for row in rows)
    stored = AccessLog.objects.order_by("pk")
    assert [row.pk for row in rows] == [row.pk for row in stored]
    assert [row.target for row in stored] == ["0", "1", "2", "3", "4"]
    assert services.verify_chain(AccessLog) == []


@pytest.mark.django_db
def test_the_heads_of_the_chains_are_planned_each_time(postgres, clinician):
    """A prepared statement keeps the plan made when the access log was small (a scan of
    the whole table) until the next ANALYZE, however much the log has grown since: the
    query that finds each chain's last row is never prepared, whatever the setting."""
    patient = PatientFactory()
    for _ in range(8):  # more than the prepare threshold
        AccessLog.chain_heads([patient.pk], using="default")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ['%FROM "audit_accesslog" WHERE%']
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_the_periodic_check_finds_a_window_that_restarts_its_chain(patient, clinician):
    """A row written (hash and all) as if it began its patient's chain, though earlier rows
    exist: the row before the window is found by the chain and the id, not by the hash
    the row claims, so the check sees the chain restart."""
    old = timezone.now() - datetime.timedelta(days=10)
    AccessLog.objects.create(patient=patient, actor=clinician, actor_role="clinician", action="view_record", at=old)
    recent = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    assert services.check_recent_audit_chains() == []
    recent.prev_hash = GENESIS
    tamper(
        "audit_accesslog",
        "UPDATE audit_accesslog SET prev_hash = %s, hash = %s WHERE id = %s",
        [GENESIS, recent.compute_hash(), recent.pk],
    )

    assert [b.row_id for b in services.check_recent_audit_chains()] == [recent.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("per_select", [1, 2, 500])
def test_the_rows_before_a_window_are_found_for_any_number_of_chains(monkeypatch, clinician, per_select):
    """One index probe per chain, so many chains a SELECT: the row before ``before`` of
    each chain, None for a chain with none, whatever the chains per SELECT."""
    monkeypatch.setattr(AccessLog, "CHAINS_PER_SELECT", per_select)
    patients = PatientFactory.create_batch(3)
    rows = AccessLog.objects.bulk_create(
        AccessLog(patient=patients[i % 2], actor=clinician, actor_role="clinician", action="view_record")
        for i in range(6)
    )
    keys = [patient.pk for patient in patients]
    assert AccessLog.rows_before(keys, before=rows[4].pk, using="default") == {
        patients[0].pk: rows[2].pk,
        patients[1].pk: rows[3].pk,
        patients[2].pk: None,
    }
    assert AccessLog.rows_before(keys, before=rows[0].pk, using="default") == dict.fromkeys(keys)


@pytest.mark.parametrize("model", [AccessLog, SupportAction])
def test_each_chained_table_hashes_every_column_it_writes(model):
    """``append`` writes the chained fields and the two hashes, nothing else: a column
    outside ``CHAIN_FIELDS`` would be left to its default, and unprotected by the hash."""
    columns = {field.attname for field in model._meta.concrete_fields if not field.primary_key}
    assert columns == {*model.CHAIN_FIELDS, "prev_hash", "hash"}


@pytest.mark.django_db
def test_rows_appended_without_models_are_chained_like_the_others(patient, other_patient, clinician):
    """The inboxes' listings insert dicts of values: the fields left out take their
    defaults, one moment for the batch, and the chains go on from the rows before."""
    first = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    written = AccessLog.objects.append(
        {"patient_id": p.pk, "actor_id": clinician.pk, "actor_role": "clinician", "action": "list_conversations"}
        for p in (patient, other_patient, patient)
    )
    rows = list(AccessLog.objects.filter(pk__in=[pk for pk, _, _ in written]).order_by("pk"))
    assert [(row.pk, row.prev_hash, row.hash) for row in rows] == written
    assert [row.patient_id for row in rows] == [patient.pk, other_patient.pk, patient.pk]
    assert rows[0].prev_hash == first.hash and rows[1].prev_hash == GENESIS and rows[2].prev_hash == rows[0].hash
    assert {(row.target, row.team_id, row.at) for row in rows} == {("", None, rows[0].at)}
    assert first.at <= rows[0].at
    assert AccessLog.objects.append([]) == []
    assert verify() is None


HOSTILE = 'Compte rendu « \'x\' » "y" \\ \\n \n\t\u2028 🩺 {"a": [1]} %s %(x)s \x01'


@pytest.mark.django_db
def test_a_batch_stores_every_value_as_written(patient, other_patient, clinician, support):
    """Rows inserted together (as JSON on PostgreSQL) read back as written, in order:
    text with quotes, backslashes, line breaks, control characters and emoji, empty
    foreign keys, a moment to the microsecond (in UTC and in another zone), a UUID; and
    the chains verify."""
    moment = datetime.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=datetime.UTC)
    logs = AccessLog.objects.bulk_create(
        AccessLog(patient=p, actor=clinician, actor_role="clinician", team=team, action="list_conversations",
                  target=target, at=moment)
        for p, team, target in ((patient, None, HOSTILE), (other_patient, None, ""), (patient, None, HOSTILE[::-1]))
    )  # fmt: skip
    keys, paris = [uuid.uuid4(), uuid.uuid4()], datetime.timezone(datetime.timedelta(hours=1))
    actions = SupportAction.objects.bulk_create(
        [
            SupportAction(agent=support, account=clinician, action="unlock", detail=HOSTILE[:254], reason=HOSTILE,
                          request_key=keys[0], at=moment),
            SupportAction(agent=support, patient=patient, action="invite", detail="", reason="R\u00e9ponse\n\nOK",
                          request_key=keys[1], at=(moment + datetime.timedelta(microseconds=1)).astimezone(paris)),
        ]
    )  # fmt: skip
    for written in (logs, actions):
        model = type(written[0])
        stored = {row.pk: row for row in model.objects.filter(pk__in=[row.pk for row in written])}
        assert sorted(stored) == [row.pk for row in written]  # ids in the order written
        for row in written:
            for name in (*model.CHAIN_FIELDS, "prev_hash", "hash"):
                assert getattr(stored[row.pk], name) == getattr(row, name), (model.__name__, name)
    assert verify() is None and services.verify_chain(SupportAction) == []


@pytest.mark.parametrize(
    "values",
    [
        [1, -7, 2**63 - 1, 0, None, True, False, 1.5, float("inf"), -0.0],
        [HOSTILE, HOSTILE[::-1], "", "\x00\x1f\x7f\ud7ff\ue000\U0010ffff", "é" * 300],
        [AccessLog.Action.LIST_CONVERSATIONS, SupportAction.Action.UNLOCK, "list_conversations"],
        [datetime.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=datetime.UTC),
         datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
         uuid.UUID("12345678-1234-5678-1234-567812345678")],
        [[1, "a"], {"b": None}, ()],
    ],
)  # fmt: skip
def test_a_row_hashed_from_its_values_texts_is_hashed_as_link_hash_hashes_it(values):
    """A batch hashes each row from the JSON text of each of its values (``json_text``,
    worked out once per distinct value): the hash is ``link_hash``'s, the one every check
    recomputes, for numbers, booleans, null, hostile text, choices, moments in any zone, a
    UUID and nested values alike; and each text is what ``json.dumps`` writes of it."""
    prev = "f" * 64
    for row in itertools.chain([values], itertools.permutations(values, 2)):
        texts = [chain.json_text(chain.canonical(value)) for value in row]
        assert chain.texts_link_hash(prev, texts) == chain.link_hash(prev, row)
        assert texts == [json.dumps(chain.canonical(v), ensure_ascii=False, separators=(",", ":")) for v in row]


def test_a_value_json_has_no_form_for_is_refused_as_link_hash_refuses_it():
    for value in (decimal.Decimal("1.5"), object(), b"bytes"):
        with pytest.raises(TypeError):
            chain.link_hash(GENESIS, [value])
        with pytest.raises(TypeError):
            chain.json_text(value)

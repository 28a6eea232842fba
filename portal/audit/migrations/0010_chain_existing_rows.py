"""Chain the access-log rows written before the chain existed: per patient, in the
order they were written. The append-only trigger is lifted for this one update."""

from django.db import migrations

from portal.audit.chain import GENESIS, link_hash

FIELDS = ("patient_id", "actor_id", "actor_role", "team_id", "action", "target", "at")
TRIGGER = "audit_accesslog_append_only"


def chain(apps, schema_editor):
    AccessLog = apps.get_model("audit", "AccessLog")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER TABLE audit_accesslog DISABLE TRIGGER {TRIGGER}")
    patient_id, head, batch = None, GENESIS, []
    for row in AccessLog.objects.order_by("patient_id", "id").iterator(chunk_size=2000):
        if row.patient_id != patient_id:  # rows come patient by patient, one chain each
            patient_id, head = row.patient_id, GENESIS
        row.prev_hash = head
        row.hash = head = link_hash(head, [getattr(row, name) for name in FIELDS])
        batch.append(row)
        if len(batch) == 2000:
            AccessLog.objects.bulk_update(batch, ["prev_hash", "hash"])
            batch = []
    AccessLog.objects.bulk_update(batch, ["prev_hash", "hash"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE audit_accesslog ENABLE TRIGGER {TRIGGER}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_hash_chain")]
    operations = [migrations.RunPython(chain, migrations.RunPython.noop)]

"""Chain the support-trail rows written before the chain existed, in the order they
were written (one chain for the whole trail). The append-only trigger is lifted for
this one update."""

from django.db import migrations

from portal.audit.chain import GENESIS, link_hash

FIELDS = ("agent_id", "account_id", "patient_id", "action", "detail", "reason", "request_key", "at")
TRIGGER = "support_supportaction_append_only"


def chain(apps, schema_editor):
    SupportAction = apps.get_model("support", "SupportAction")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER TABLE support_supportaction DISABLE TRIGGER {TRIGGER}")
    head, batch = GENESIS, []
    for row in SupportAction.objects.order_by("id").iterator(chunk_size=2000):
        row.prev_hash = head
        row.hash = head = link_hash(head, [getattr(row, name) for name in FIELDS])
        batch.append(row)
        if len(batch) == 2000:
            SupportAction.objects.bulk_update(batch, ["prev_hash", "hash"])
            batch = []
    SupportAction.objects.bulk_update(batch, ["prev_hash", "hash"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE support_supportaction ENABLE TRIGGER {TRIGGER}")


class Migration(migrations.Migration):
    dependencies = [("support", "0004_hash_chain")]
    operations = [migrations.RunPython(chain, migrations.RunPython.noop)]

"""On PostgreSQL, the database itself refuses to change or delete a support audit row.
Reuses the function created by audit.0002."""

from django.db import migrations

CREATE = """
CREATE TRIGGER support_supportaction_append_only
    BEFORE UPDATE OR DELETE ON support_supportaction
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
"""
DROP = "DROP TRIGGER IF EXISTS support_supportaction_append_only ON support_supportaction;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("support", "0001_initial"), ("audit", "0002_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]

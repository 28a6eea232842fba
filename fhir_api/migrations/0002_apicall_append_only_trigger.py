from django.db import migrations

# The same database-side guard as the access log (audit_append_only() comes from there).
CREATE = """
CREATE TRIGGER fhir_api_apicall_append_only
    BEFORE UPDATE OR DELETE ON fhir_api_apicall
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
"""
DROP = "DROP TRIGGER IF EXISTS fhir_api_apicall_append_only ON fhir_api_apicall;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("fhir_api", "0001_api_clients_and_calls"), ("audit", "0002_append_only_trigger")]

    operations = [migrations.RunPython(forwards, backwards)]

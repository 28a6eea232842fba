"""An index of the reads of each record by action, team and time: a team's latest look at
a record's results is one probe. The access log is written by every read of a record: on
PostgreSQL the index is built without blocking those writes (CONCURRENTLY, outside a
transaction)."""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexWithoutBlockingWrites(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL; elsewhere (SQLite, for ``make run``), the
    plain index."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0016_fold_name_separators"),
        ("audit", "0018_access_report_answer_emailed"),
        ("careteams", "0006_reply_time_in_working_days"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="accesslog",
            index=models.Index(fields=["patient", "action", "team", "-at"], name="audit_team_looks"),
        ),
    ]

"""Three indexes fewer written by every read of a record: the hash's two on PostgreSQL
(it is never looked up: the chain checks find a row by its chain and id) and the
patient's alone (the (patient, at) and (patient, id) indexes serve it). The foreign key
stays as it is: only the index is dropped (Django's AlterField would drop the constraint
and validate it again, a scan of the whole log)."""

import django.db.models.deletion
from django.db import migrations, models

PATIENT_INDEX = "audit_accesslog_patient_id_bd2caa0b"  # the name Django gave it


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_notice_preferences_reminders_in_app"),
        ("audit", "0014_view_appointments_action"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesslog",
            name="hash",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="accesslog",
                    name="patient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="access_logs",
                        to="accounts.patient",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{PATIENT_INDEX}"',
                    reverse_sql=f'CREATE INDEX "{PATIENT_INDEX}" ON "audit_accesslog" ("patient_id")',
                ),
            ],
        ),
    ]

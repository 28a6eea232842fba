from django.db import migrations, models


class Migration(migrations.Migration):
    """A lab value carries its report's sample date (copied from the report: it never
    changes), so that a test's history is read newest first from an index."""

    dependencies = [
        ("accounts", "0014_notice_preferences_reminders_in_app"),
        ("records", "0013_reminder_scan_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="observation", name="records_obs_patient_41e402_idx"),
        migrations.AddField(
            model_name="observation", name="collected_on", field=models.DateField(editable=False, null=True)
        ),
        migrations.RunSQL(
            # PostgreSQL and SQLite both run it.
            "UPDATE records_observation SET collected_on = (SELECT collected_on FROM records_labreport"
            " WHERE records_labreport.id = records_observation.report_id)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(model_name="observation", name="collected_on", field=models.DateField(editable=False)),
        migrations.AddIndex(
            model_name="observation",
            index=models.Index(fields=["patient", "loinc", "-collected_on", "-id"], name="observation_history"),
        ),
    ]

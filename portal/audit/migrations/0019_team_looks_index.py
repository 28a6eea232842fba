"""An index of the reads of each record by action, team and time: a team's latest look at
a record's results is one probe. The access log is written by every read of a record: on
PostgreSQL the index is built without blocking those writes (CONCURRENTLY, outside a
transaction)."""

from django.conf import settings
from django.db import migrations, models

from portal.migration_operations import AddIndexWithoutBlockingWrites


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

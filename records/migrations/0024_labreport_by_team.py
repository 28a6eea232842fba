"""What each of a record's teams published since a time: built without blocking writes."""

from django.conf import settings
from django.db import migrations, models

from portal.migration_operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0016_fold_name_separators"),
        ("careteams", "0006_reply_time_in_working_days"),
        ("records", "0023_allergy_severity_not_guessed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="labreport",
            index=models.Index(fields=["patient", "team", "created_at"], name="labreport_by_team"),
        ),
    ]

"""The access log's references to the patient, the reader and the team without a
foreign-key constraint: each row's three checks at commit (a locking read of each row
named) were nearly half of what writing 25 rows (a page listing 25 people) cost the
database. Django's
on_delete=PROTECT keeps any of them from being deleted while a row names them.
Dropping a constraint reads nothing (putting one back would check every row)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0016_fold_name_separators"),
        ("audit", "0019_team_looks_index"),
        ("careteams", "0006_reply_time_in_working_days"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesslog",
            name="actor",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="accesslog",
            name="patient",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="access_logs",
                to="accounts.patient",
            ),
        ),
        migrations.AlterField(
            model_name="accesslog",
            name="team",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="careteams.careteam",
            ),
        ),
    ]

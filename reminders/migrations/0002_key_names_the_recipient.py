from django.db import migrations


class Migration(migrations.Migration):
    """A reminder's key now names its recipient (representatives are reminded too, each
    once): the rows already written get their login appended, so the next scan does not
    write them again under the new key."""

    dependencies = [("reminders", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "UPDATE reminders_reminder SET key = key || ':' || CAST(user_id AS TEXT)",  # PostgreSQL and SQLite
            migrations.RunSQL.noop,
        )
    ]

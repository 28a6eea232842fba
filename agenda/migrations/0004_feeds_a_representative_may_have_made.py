"""Calendar addresses a representative may have made: until now a parent could make the
private address of a minor's record (and so read its confidential appointments); now only
the holder can. Every address of a record that has, or had, a representative stops; its
holder makes a new one."""

from django.db import migrations


def stop_feeds_of_represented_records(apps, schema_editor):
    CalendarFeed = apps.get_model("agenda", "CalendarFeed")
    Representation = apps.get_model("accounts", "Representation")
    represented = Representation.objects.values("patient_id")
    CalendarFeed.objects.filter(patient_id__in=represented).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_notice_preferences_reminders_in_app"),
        ("agenda", "0003_appointment_patient_ends"),
    ]

    operations = [migrations.RunPython(stop_feeds_of_represented_records, migrations.RunPython.noop)]

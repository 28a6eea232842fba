import re

import django.core.validators
from django.db import migrations, models

# The free texts teams wrote, read as working days: "sous 2 jours ouvrés" -> 2,
# "dans la journée" -> 0. What is not understood is left empty (the team sets it again).
SAME_DAY = re.compile(r"\b(dans la journ[ée]e|le jour m[êe]me|(the )?same day|within the day)\b", re.I)
DAYS = re.compile(r"(\d{1,2})\s*(jours?\s+ouvr[ée]s?|j\.?\s*ouvr[ée]s?|working\s+days?|business\s+days?)", re.I)
WORDS = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "one": 1, "two": 2, "three": 3}
WORDED = re.compile(r"\b(" + "|".join(WORDS) + r")\s+(jours?\s+ouvr[ée]s?|working\s+days?|business\s+days?)", re.I)


def days_from_text(text: str) -> int | None:
    text = (text or "").strip()
    if SAME_DAY.search(text):
        return 0
    if match := DAYS.search(text):
        days = int(match.group(1))
        return days if days <= 30 else None
    if match := WORDED.search(text):
        return WORDS[match.group(1).lower()]
    return None


def forwards(apps, schema_editor):
    CareTeam = apps.get_model("careteams", "CareTeam")
    for team in CareTeam.objects.exclude(reply_time=""):
        team.reply_days = days_from_text(team.reply_time)
        team.save(update_fields=["reply_days"])


def backwards(apps, schema_editor):
    CareTeam = apps.get_model("careteams", "CareTeam")
    for team in CareTeam.objects.filter(reply_days__isnull=False):
        days = team.reply_days
        team.reply_time = (
            "dans la journée"
            if days == 0
            else f"sous {days} jour{'s' if days > 1 else ''} ouvré{'s' if days > 1 else ''}"
        )
        team.save(update_fields=["reply_time"])


class Migration(migrations.Migration):
    dependencies = [("careteams", "0005_appointment_notice_and_managers")]

    operations = [
        migrations.AddField(
            model_name="careteam",
            name="reply_days",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text="0 for the same day. Shown to patients on each conversation.",
                null=True,
                validators=[django.core.validators.MaxValueValidator(30)],
                verbose_name="reply time (working days)",
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="careteam", name="reply_time"),
    ]

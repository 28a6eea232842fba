"""Appointment reminders: the day before at 18:00 and 2 hours before, in Paris time
across daylight-saving changes; late only while useful, never after the appointment;
a same-day one passes quiet hours. The clock is moved with time-machine."""

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from agenda.models import Appointment
from reminders import services
from reminders.models import Reminder
from tests.factories import AppointmentFactory

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
UTC = datetime.UTC


def paris(*args):
    return datetime.datetime(*args, tzinfo=PARIS)


def utc(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def scan(moment):
    with time_machine.travel(moment, tick=False):
        return services.scan_reminders()


def relay(moment):
    with time_machine.travel(moment, tick=False):
        return services.relay_due_reminders()


def emails():
    return [email for email in mail.outbox if "Rappel" in email.subject]


def appointment(patient, team, starts_at, **fields):
    return AppointmentFactory(
        patient=patient, team=team, starts_at=starts_at.astimezone(UTC),
        ends_at=starts_at.astimezone(UTC) + datetime.timedelta(minutes=30), **fields,
    )  # fmt: skip


def test_the_day_before_at_18_then_2_hours_before_each_once(patient, team):
    appointment(patient, team, paris(2026, 11, 10, 10, 0))
    scan(paris(2026, 11, 9, 17, 55))
    assert emails() == []
    scan(paris(2026, 11, 9, 18, 0))
    (email,) = emails()
    assert "Vous avez un rendez-vous demain – ouvrez Carnet" in email.body
    assert "You have an appointment tomorrow – open Carnet" in email.body
    assert f"{reverse('agenda:mine')}\n" in email.body
    # Nothing of the appointment: not the place, the person, the instructions, the time.
    for secret in ("Lilas", "Martin", "jeûn", "10:00", "10 h", "Tilleuls"):
        assert secret not in email.body and secret not in email.subject
    for moment in (paris(2026, 11, 9, 18, 5), paris(2026, 11, 9, 23, 0), paris(2026, 11, 10, 7, 55)):
        scan(moment)
    assert len(emails()) == 1
    scan(paris(2026, 11, 10, 8, 0))
    assert len(emails()) == 2
    assert "Vous avez bientôt un rendez-vous – ouvrez Carnet" in emails()[1].body
    scan(paris(2026, 11, 10, 8, 5))
    scan(paris(2026, 11, 10, 9, 55))
    assert len(emails()) == 2
    kinds = set(Reminder.objects.filter(channel="email", status="sent").values_list("kind", flat=True))
    assert kinds == {"appointment_eve", "appointment_soon"}


@pytest.mark.parametrize(
    ("starts_at", "eve_utc"),
    [
        # The clocks go back on Sunday 25 October 2026 at 03:00: 18:00 on the Saturday is
        # 16:00 UTC (summer time), 18:00 on the Sunday is 17:00 UTC (winter time).
        (paris(2026, 10, 25, 10, 0), utc(2026, 10, 24, 16, 0)),
        (paris(2026, 10, 26, 10, 0), utc(2026, 10, 25, 17, 0)),
        # They go forward on Sunday 28 March 2027 at 02:00.
        (paris(2027, 3, 28, 10, 0), utc(2027, 3, 27, 17, 0)),
        (paris(2027, 3, 29, 10, 0), utc(2027, 3, 28, 16, 0)),
    ],
)
def test_18_00_the_day_before_is_paris_time_across_a_daylight_saving_change(patient, team, starts_at, eve_utc):
    appointment(patient, team, starts_at)
    scan(eve_utc - datetime.timedelta(minutes=1))
    assert emails() == []
    scan(eve_utc)
    assert len(emails()) == 1
    assert Reminder.objects.get(channel="email").moment == eve_utc


@pytest.mark.parametrize(
    ("starts_at", "soon_utc"),
    [
        # 2 hours before is 2 real hours, whatever the clocks do in between.
        (paris(2026, 10, 25, 4, 0), utc(2026, 10, 25, 1, 0)),  # at 04:00 winter time: 02:00 winter time, not 03:00
        (paris(2027, 3, 28, 9, 0), utc(2027, 3, 28, 5, 0)),  # 07:00 summer time, in quiet hours: same day
    ],
)
def test_2_hours_before_is_2_real_hours_across_a_daylight_saving_change(patient, team, starts_at, soon_utc):
    appointment(patient, team, starts_at)
    scan(soon_utc - datetime.timedelta(minutes=1))
    assert [r.kind for r in Reminder.objects.filter(channel="email")] == []
    scan(soon_utc)
    assert len(emails()) == 1
    assert Reminder.objects.get(kind="appointment_soon", channel="email").due_at == soon_utc


def test_a_same_day_appointment_passes_quiet_hours(patient, team):
    appointment(patient, team, paris(2026, 11, 10, 8, 30))
    scan(paris(2026, 11, 10, 6, 30))
    assert len(emails()) == 1


def test_a_reminder_for_tomorrow_missed_in_the_evening_waits_and_never_comes_on_the_day(patient, team):
    appointment(patient, team, paris(2026, 11, 10, 14, 0))
    scan(paris(2026, 11, 9, 22, 0))  # down from 18:00 to 22:00: quiet hours, it would go out tomorrow
    assert emails() == []
    relay(paris(2026, 11, 10, 8, 0))
    assert emails() == []  # "tomorrow" is today now: not sent
    assert Reminder.objects.get(kind="appointment_eve", channel="email").status == "skipped"
    scan(paris(2026, 11, 10, 12, 0))
    assert len(emails()) == 1  # the 2-hours-before one


def test_after_a_long_outage_only_what_is_still_useful_goes_out_and_never_after_the_appointment(patient, team):
    appointment(patient, team, paris(2026, 11, 10, 10, 0))
    scan(paris(2026, 11, 10, 9, 30))  # down since the day before 17:00
    assert [e.body.splitlines()[0] for e in emails()] == ["Vous avez bientôt un rendez-vous – ouvrez Carnet"]
    mail.outbox.clear()
    other = appointment(patient, team, paris(2026, 11, 10, 11, 0))
    scan(paris(2026, 11, 10, 11, 0))  # down until it started
    assert emails() == []
    assert not Reminder.objects.filter(subject_id=other.pk).exists()


def test_a_cancelled_or_moved_appointment_is_not_reminded_for_the_old_time(patient, team, clinician):
    cancelled = appointment(patient, team, paris(2026, 11, 10, 10, 0))
    moved = appointment(patient, team, paris(2026, 11, 10, 15, 0))
    scan(paris(2026, 11, 9, 20, 30))  # written; the emails went out
    assert len(emails()) == 1  # one email for both (same sentence, same evening)
    mail.outbox.clear()
    Appointment.objects.filter(pk=cancelled.pk).update(
        status="cancelled", cancelled_at=paris(2026, 11, 9, 21, 0), cancelled_by=clinician
    )
    Appointment.objects.filter(pk=moved.pk).update(
        starts_at=paris(2026, 11, 10, 17, 0), ends_at=paris(2026, 11, 10, 17, 30), sequence=1
    )
    scan(paris(2026, 11, 10, 8, 0))  # the cancelled one's 2 hours before would be now: nothing
    scan(paris(2026, 11, 10, 13, 0))  # the moved one's old 2 hours before: nothing
    assert emails() == []
    scan(paris(2026, 11, 10, 15, 0))  # its new one
    assert len(emails()) == 1
    assert Reminder.objects.filter(subject_id=cancelled.pk, kind="appointment_soon").count() == 0


def test_the_home_page_says_tomorrow_until_midnight(client, login, patient, team):
    from django.urls import reverse

    appointment(patient, team, paris(2026, 11, 10, 10, 0))
    scan(paris(2026, 11, 9, 18, 0))
    login(patient)
    with time_machine.travel(paris(2026, 11, 9, 23, 59), tick=False):
        page = client.get(reverse("patient_home")).content.decode()
        assert "Vous avez un rendez-vous demain" in page
        # It leads to the appointments page, not back to the home page.
        assert f'<a href="{reverse("agenda:mine")}">Vous avez un rendez-vous demain' in page
    with time_machine.travel(paris(2026, 11, 10, 0, 1), tick=False):
        assert "Vous avez un rendez-vous demain" not in client.get(reverse("patient_home")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_send_one_appointment_email(postgres, patient, team):
    """Two beats at 18:00 in real concurrent transactions on PostgreSQL, each writing and
    relaying: one row per channel, one email."""
    import threading

    from django.db import connections

    appointment(patient, team, paris(2026, 11, 10, 10, 0))
    start, errors = threading.Barrier(2), []

    def beat():
        try:
            start.wait()
            services.scan_reminders(now=paris(2026, 11, 9, 18, 0))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    with time_machine.travel(paris(2026, 11, 9, 18, 0), tick=False):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(emails()) == 1
    assert sorted(Reminder.objects.values_list("kind", "channel")) == [
        ("appointment_eve", "email"),
        ("appointment_eve", "in_app"),
    ]

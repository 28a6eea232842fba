"""The appointment row: aware datetimes stored in UTC, wall-clock time kept across
daylight-saving changes."""

import datetime
import zoneinfo

import pytest

from agenda.models import Appointment
from tests.factories import AppointmentFactory

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("local", "utc_hour"),
    [
        # 25 Oct 2026: clocks go back at 03:00 CEST (UTC+2 -> UTC+1).
        (datetime.datetime(2026, 10, 24, 10, 0, tzinfo=PARIS), 8),
        (datetime.datetime(2026, 10, 25, 10, 0, tzinfo=PARIS), 9),
        # 28 Mar 2027: clocks go forward at 02:00 CET (UTC+1 -> UTC+2).
        (datetime.datetime(2027, 3, 27, 10, 0, tzinfo=PARIS), 9),
        (datetime.datetime(2027, 3, 28, 10, 0, tzinfo=PARIS), 8),
    ],
)
def test_a_paris_time_is_stored_in_utc_with_the_offset_of_its_day(local, utc_hour):
    appointment = AppointmentFactory(starts_at=local)
    appointment.refresh_from_db()
    assert appointment.starts_at.utcoffset() == datetime.timedelta(0)
    assert appointment.starts_at.hour == utc_hour
    assert appointment.local_start.hour == 10
    assert appointment.local_end == datetime.datetime(local.year, local.month, local.day, 10, 30, tzinfo=PARIS)


def test_an_appointment_across_the_autumn_change_lasts_its_duration():
    appointment = Appointment(duration_minutes=120)
    appointment.set_times(datetime.datetime(2026, 10, 25, 1, 30, tzinfo=PARIS), 120)
    # 01:30 CEST + 2 h of real time = 02:30 CET (the hour 02:00-03:00 happens twice).
    assert appointment.ends_at - appointment.starts_at == datetime.timedelta(hours=2)
    assert appointment.local_start.strftime("%H:%M %Z") == "01:30 CEST"
    assert appointment.local_end.strftime("%H:%M %Z") == "02:30 CET"

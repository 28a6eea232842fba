"""Reminders: due at their moment, written once, sent once, late only while useful,
never in quiet hours (but a same-day appointment), per the patient's preferences,
and saying nothing of health. The clock is moved with time-machine; times are Paris's."""

import datetime
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.urls import reverse

from portal.accounts.models import NoticePreference
from records import services as records
from records.models import Prescription, Vaccination
from reminders import services
from reminders.models import Reminder
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
GLUCOSE = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.42"), "unit": "g/L", "high": Decimal("1.1")}]


def paris(*args):
    return datetime.datetime(*args, tzinfo=PARIS)


def at(moment):
    return time_machine.travel(moment, tick=False)


def scan(moment):
    """One beat of the scheduler at ``moment`` (deliveries run eagerly, as in tests)."""
    with at(moment):
        return services.scan_reminders()


def relay(moment):
    with at(moment):
        return services.relay_due_reminders()


def publish_results(clinician, team, patient, moment):
    """Lab results published at ``moment``; the what-is-new email it sends is not this file's concern."""
    with at(moment):
        report = records.add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan lipidique", collected_on=moment.date(),
            observations=GLUCOSE,
        )  # fmt: skip
    mail.outbox.clear()
    return report


def renewable(clinician, team, patient, end_date, **fields):
    return Prescription.objects.create(
        patient=patient, medication="Lévothyrox 75 µg", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        end_date=end_date, renewable=True, prescriber=clinician, team=team, **fields,
    )  # fmt: skip


def emails():
    return [email for email in mail.outbox if "Rappel" in email.subject]


def rows(**filters):
    return list(Reminder.objects.filter(**filters).order_by("channel"))


# --- Results not opened --------------------------------------------------------------


def test_results_not_opened_after_7_days_are_reminded_once_by_email_and_on_carnet(clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 9, 55))  # 6 days 23 hours 55 minutes: not yet
    assert emails() == [] and not Reminder.objects.exists()

    scan(paris(2026, 11, 9, 10, 0))
    assert len(emails()) == 1
    assert emails()[0].to == [patient.user.email]
    assert [(r.channel, r.status) for r in rows()] == [("email", "sent"), ("in_app", "sent")]

    # The next beats, a retried delivery: nothing more.
    for minutes in (5, 10, 60):
        scan(paris(2026, 11, 9, 10, 0) + datetime.timedelta(minutes=minutes))
    with at(paris(2026, 11, 9, 11, 0)):
        services.deliver_reminder(reminder_id=Reminder.objects.get(channel="email").pk)
    assert len(emails()) == 1 and Reminder.objects.count() == 2


def test_results_published_the_same_day_are_reminded_in_one_email(clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    publish_results(clinician, team, patient, paris(2026, 11, 2, 16, 0))
    scan(paris(2026, 11, 9, 10, 0))
    scan(paris(2026, 11, 9, 16, 0))
    assert len(emails()) == 1
    publish_results(clinician, team, patient, paris(2026, 11, 3, 12, 0))  # (empties the outbox)
    scan(paris(2026, 11, 10, 12, 0))  # the next day: a new email
    assert len(emails()) == 1
    assert Reminder.objects.filter(channel="email", status="sent").count() == 2


def test_the_email_says_nothing_of_health(clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 12, 0))
    (email,) = emails()
    assert "Des résultats vous attendent – ouvrez Carnet" in email.body
    assert "Results are waiting for you – open Carnet" in email.body
    for secret in ("Bilan", "lipidique", "Glucose", "Tilleuls", "1.42", "Camille"):
        assert secret not in email.body and secret not in email.subject


def test_results_opened_meanwhile_are_not_reminded(client, login, clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    login(patient)
    assert client.get(reverse("records:results")).status_code == 200  # opens them
    scan(paris(2026, 11, 9, 12, 0))
    assert emails() == [] and not Reminder.objects.exists()


def test_results_opened_between_the_scan_and_the_email_are_not_reminded(clinician, team, patient, monkeypatch):
    report = publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    monkeypatch.setattr(services, "relay_due_reminders", lambda **kwargs: 0)  # the broker is down
    scan(paris(2026, 11, 9, 12, 0))
    monkeypatch.undo()
    records.mark_news_seen(user=patient.user, patient=patient, lab_reports=[report])
    relay(paris(2026, 11, 9, 12, 5))
    assert emails() == []
    assert Reminder.objects.get(channel="email").status == "skipped"


def test_a_reminder_missed_while_carnet_was_down_goes_out_late_while_still_useful(clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 12, 15, 0))  # down for 3 days after its moment: still useful
    assert len(emails()) == 1


def test_a_reminder_missed_for_too_long_is_never_sent(clinician, team, other_patient, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 16, 10, 30))  # 14 days after publication: past its use
    assert emails() == [] and not Reminder.objects.exists()


# --- Quiet hours ---------------------------------------------------------------------


def test_no_email_in_quiet_hours_it_waits_until_8(clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 22, 30))
    scan(paris(2026, 11, 9, 22, 30))
    assert emails() == []
    email = Reminder.objects.get(channel="email")
    assert (email.status, email.due_at) == ("pending", paris(2026, 11, 10, 8, 0))
    # On Carnet at once: quiet hours are about emails.
    assert Reminder.objects.get(channel="in_app").due_at == paris(2026, 11, 9, 22, 30)
    relay(paris(2026, 11, 10, 7, 59))
    assert emails() == []
    relay(paris(2026, 11, 10, 8, 0))
    assert len(emails()) == 1


def test_a_relay_that_comes_late_into_quiet_hours_waits_for_the_morning(clinician, team, patient, monkeypatch):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 20, 0))
    monkeypatch.setattr(services, "relay_due_reminders", lambda **kwargs: 0)  # the broker is down
    scan(paris(2026, 11, 9, 20, 30))
    monkeypatch.undo()
    relay(paris(2026, 11, 9, 21, 15))  # back at 21:15
    assert emails() == []
    assert Reminder.objects.get(channel="email").due_at == paris(2026, 11, 10, 8, 0)
    relay(paris(2026, 11, 10, 8, 1))
    assert len(emails()) == 1


@pytest.mark.parametrize(
    ("published", "reminded_at_utc"),
    [
        # Published at 06:30 summer time: 7 days later the clocks went back (25 October
        # 2026); 06:30 is in quiet hours, the email waits until 08:00 winter time (07:00 UTC).
        (datetime.datetime(2026, 10, 18, 6, 30, tzinfo=PARIS), datetime.datetime(2026, 10, 25, 7, 0, tzinfo=datetime.UTC)),
        # Published at 06:30 winter time: on 28 March 2027 the clocks went forward; the
        # email waits until 08:00 summer time (06:00 UTC).
        (datetime.datetime(2027, 3, 21, 6, 30, tzinfo=PARIS), datetime.datetime(2027, 3, 28, 6, 0, tzinfo=datetime.UTC)),
    ],
)  # fmt: skip
def test_quiet_hours_end_at_8_local_time_across_a_daylight_saving_change(
    clinician, team, patient, published, reminded_at_utc
):
    publish_results(clinician, team, patient, published)
    # 7 days are 168 hours, whatever the clocks did (aware arithmetic in Paris would keep the wall time).
    scan(published.astimezone(datetime.UTC) + datetime.timedelta(days=7))
    assert Reminder.objects.get(channel="email").due_at == reminded_at_utc
    relay(reminded_at_utc - datetime.timedelta(minutes=1))
    assert emails() == []
    relay(reminded_at_utc)
    assert len(emails()) == 1


# --- Prescriptions ending ------------------------------------------------------------


def test_a_renewable_prescription_ending_within_7_days_suggests_a_renewal(clinician, team, patient):
    renewable(clinician, team, patient, end_date=datetime.date(2026, 12, 10))
    scan(paris(2026, 12, 2, 12, 0))  # 8 days before: not yet
    assert emails() == []
    scan(paris(2026, 12, 3, 0, 5))  # 7 days before, at night: waits until 8
    assert emails() == []
    scan(paris(2026, 12, 3, 8, 0))
    (email,) = emails()
    assert "Une ordonnance arrive bientôt à son terme" in email.body
    assert "Lévothyrox" not in email.body
    scan(paris(2026, 12, 4, 9, 0))
    assert len(emails()) == 1


@pytest.mark.parametrize("variant", ["not renewable", "stopped", "no end"])
def test_no_renewal_reminder_for_what_cannot_or_need_not_be_renewed(clinician, team, patient, variant):
    fields = {
        "not renewable": {"end_date": datetime.date(2026, 12, 10)},
        "stopped": {"end_date": datetime.date(2026, 12, 10), "stopped_on": datetime.date(2026, 12, 1)},
        "no end": {"end_date": None},
    }[variant]
    prescription = renewable(clinician, team, patient, **fields)
    if variant == "not renewable":
        Prescription.objects.filter(pk=prescription.pk).update(renewable=False)
    scan(paris(2026, 12, 5, 12, 0))
    assert emails() == [] and not Reminder.objects.exists()


def test_a_renewal_reminder_written_before_the_prescription_was_stopped_is_not_sent(
    clinician, team, patient, monkeypatch
):
    prescription = renewable(clinician, team, patient, end_date=datetime.date(2026, 12, 10))
    scan(paris(2026, 12, 3, 0, 5))  # written, due at 08:00
    Prescription.objects.filter(pk=prescription.pk).update(stopped_on=datetime.date(2026, 12, 3))
    relay(paris(2026, 12, 3, 8, 0))
    assert emails() == []
    assert Reminder.objects.get(channel="email").status == "skipped"


# --- Vaccinations --------------------------------------------------------------------


def test_a_vaccination_due_for_the_patients_age_is_reminded_on_the_day(clinician, team):
    patient = PatientFactory(birth_date=datetime.date(1981, 12, 3))  # 45 on 3 December 2026
    scan(paris(2026, 12, 2, 12, 0))
    assert emails() == []
    scan(paris(2026, 12, 3, 9, 0))
    (email,) = emails()
    assert email.to == [patient.user.email]
    assert "Un vaccin est peut-être à faire" in email.body
    for secret in ("tétanos", "diphtérie", "DTP", "45"):
        assert secret not in email.body
    assert Reminder.objects.get(channel="email").code == "dtp-45y"


def test_a_vaccination_already_recorded_is_not_reminded(clinician, team):
    patient = PatientFactory(birth_date=datetime.date(1981, 12, 3))
    Vaccination.objects.create(
        patient=patient, author=patient.user, vaccine="Revaxis (dTP)", date=datetime.date(2026, 6, 1)
    )
    scan(paris(2026, 12, 3, 9, 0))
    assert emails() == [] and not Reminder.objects.exists()


def test_an_older_vaccination_does_not_count_for_the_next_booster(clinician, team):
    patient = PatientFactory(birth_date=datetime.date(1981, 12, 3))
    Vaccination.objects.create(
        patient=patient, author=patient.user, vaccine="Rappel tétanos", date=datetime.date(2006, 12, 1)
    )
    scan(paris(2026, 12, 3, 9, 0))
    assert len(emails()) == 1


def test_a_vaccination_reminder_missed_for_more_than_30_days_is_never_sent(clinician, team):
    PatientFactory(birth_date=datetime.date(1981, 12, 3))
    scan(paris(2027, 1, 3, 9, 0))  # 31 days late
    assert emails() == [] and not Reminder.objects.exists()
    scan(paris(2026, 12, 30, 9, 0))  # 27 days late: still useful
    assert len(emails()) == 1


def test_the_calendar_names_its_source_and_year():
    from reminders import vaccines

    assert vaccines.CALENDAR_YEAR == 2025
    assert "Calendrier des vaccinations et recommandations vaccinales 2025" in vaccines.CALENDAR_SOURCE
    assert {dose.code for dose in vaccines.CALENDAR} >= {"dtp-25y", "dtp-45y", "dtp-65y", "dtp-75y", "ror-12m"}


# --- Preferences ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("turned_off", "channels"),
    [("unread_results-email", ["in_app"]), ("unread_results-in_app", ["email"]), ("vaccinations-email", ["email", "in_app"])],
)  # fmt: skip
def test_preferences_per_kind_and_channel_on_the_account_page(
    client, login, clinician, team, patient, turned_off, channels
):
    login(patient)
    choices = {
        f"{kind}-{channel}": "on" for kind, channel in NoticePreference.offered() if f"{kind}-{channel}" != turned_off
    }
    assert client.post(reverse("accounts:notice_preferences"), choices).status_code == 302
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 12, 0))
    assert [r.channel for r in rows()] == channels
    assert len(emails()) == int("email" in channels)


def test_the_account_page_offers_reminders_by_email_and_on_carnet(client, login, patient):
    login(patient)
    page = client.get(reverse("accounts:security")).content.decode()
    for kind in ("appt_reminders", "renewals", "vaccinations", "unread_results"):
        assert f'name="{kind}-email"' in page and f'name="{kind}-in_app"' in page
    assert 'name="documents-email"' in page and 'name="documents-in_app"' not in page


def test_an_email_turned_off_after_it_was_written_is_not_sent(clinician, team, patient, monkeypatch):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 22, 0))  # waits until 08:00
    NoticePreference.objects.create(user=patient.user, kind="unread_results", channel="email", enabled=False)
    relay(paris(2026, 11, 10, 8, 0))
    assert emails() == []


# --- On Carnet -----------------------------------------------------------------------


def test_the_home_page_shows_the_reminder_until_the_results_are_opened(client, login, clinician, team, patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 12, 0))
    login(patient)
    with at(paris(2026, 11, 9, 12, 5)):
        page = client.get(reverse("patient_home")).content.decode()
        assert "Des résultats vous attendent – ouvrez Carnet" in page
        client.get(reverse("records:results"))
        page = client.get(reverse("patient_home")).content.decode()
    assert "Des résultats vous attendent" not in page


def test_another_patients_reminder_is_not_shown(client, login, clinician, team, patient, other_patient):
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    scan(paris(2026, 11, 9, 12, 0))
    login(other_patient)
    with at(paris(2026, 11, 9, 12, 5)):
        page = client.get(reverse("patient_home")).content.decode()
    assert "Des résultats vous attendent" not in page


# --- Exactly once --------------------------------------------------------------------


def test_a_patient_without_login_or_inactive_gets_nothing(clinician, team, patient):
    nobody = PatientFactory(user=None)
    publish_results(clinician, team, nobody, paris(2026, 11, 2, 10, 0))
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    patient.user.is_active = False
    patient.user.save(update_fields=["is_active"])
    scan(paris(2026, 11, 9, 12, 0))
    assert emails() == [] and not Reminder.objects.exists()


def test_the_broker_down_keeps_the_email_for_the_next_relay(clinician, team, patient, monkeypatch):
    from reminders import tasks

    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.deliver_reminder, "delay", broker_down)
    scan(paris(2026, 11, 9, 12, 0))
    assert emails() == [] and Reminder.objects.get(channel="email").status == "pending"
    monkeypatch.undo()
    relay(paris(2026, 11, 9, 12, 1))
    assert len(emails()) == 1


def test_a_delivery_that_failed_mid_way_is_retried_and_sends_once(clinician, team, patient, monkeypatch):
    """The mail server fails (or the worker dies) during the send: the row stays pending,
    the retry sends it, and nothing after that sends it again."""
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    monkeypatch.setattr(services, "relay_due_reminders", lambda **kwargs: 0)
    scan(paris(2026, 11, 9, 12, 0))
    monkeypatch.undo()
    reminder = Reminder.objects.get(channel="email")

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("django.core.mail.send_mail", refused)
    with at(paris(2026, 11, 9, 12, 1)), pytest.raises(ConnectionRefusedError):
        services.deliver_reminder(reminder_id=reminder.pk)
    reminder.refresh_from_db()
    assert reminder.status == "pending" and emails() == []
    monkeypatch.undo()
    with at(paris(2026, 11, 9, 12, 2)):
        assert services.deliver_reminder(reminder_id=reminder.pk) is True
        assert services.deliver_reminder(reminder_id=reminder.pk) is False
    relay(paris(2026, 11, 9, 12, 3))
    assert len(emails()) == 1


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_send_one_email(postgres, clinician, team, patient):
    """Two beats (two schedulers, or a beat and a retried task) scanning at the same
    moment in real concurrent transactions on PostgreSQL: one row per channel, one email."""
    publish_results(clinician, team, patient, paris(2026, 11, 2, 10, 0))
    start, errors = threading.Barrier(2), []

    def beat():
        try:
            start.wait()
            services.scan_reminders(now=paris(2026, 11, 9, 12, 0))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    with at(paris(2026, 11, 9, 12, 0)):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(emails()) == 1
    assert Reminder.objects.count() == 2


def test_beat_runs_the_scan_and_the_relay_with_time_limits(settings):
    from portal.celery import app
    from reminders import tasks as _registered  # noqa: F401 (what the worker's autodiscovery imports)

    tasks = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["reminders.tasks.scan_reminders"] == 300.0
    assert tasks["reminders.tasks.relay_due_reminders"] == 60.0
    scan_task = app.tasks["reminders.tasks.scan_reminders"]
    assert scan_task.soft_time_limit < 300 and scan_task.acks_late
    assert app.tasks["reminders.tasks.deliver_reminder"].max_retries == 10

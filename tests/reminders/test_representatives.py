"""Reminders reach representatives too, as a generated table checked against a plain
statement of the rule (``reached`` below, sharing no code with the scan).

For each kind of reminder, one record per combination of representation kind (parent,
legal, helper) × the helper's parts (the kind's part given, or only others) × expiry
(in force, past its end date, ended) × confidential item (where the kind has one) ×
patient with or without a login of their own; one scan at the reminder's moment, then
a second one that sends nothing more. The clock is moved with time-machine."""

import datetime
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from portal.accounts.models import NoticePreference, Representation, User
from records import services as records
from records.models import Prescription
from reminders import services
from reminders.models import Reminder
from tests.factories import AppointmentFactory, CareLinkFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
KINDS = ("parent", "legal", "helper")
PARTS = ("documents", "results", "prescriptions", "messages")
EXPIRIES = ("in force", "past its end date", "ended")
GLUCOSE = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.42"), "unit": "g/L", "high": Decimal("1.1")}]
BORN = datetime.date(1981, 12, 3)
SINCE = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)  # a vaccination due (45 years) on 3 December 2026


def paris(*args):
    return datetime.datetime(*args, tzinfo=PARIS)


# The reminder kinds: when the scan runs, the part a helper would need (None: no helper
# part covers it), and whether the item may be confidential.
REMINDERS = {
    "appointment_eve": (paris(2026, 12, 1, 18, 0), None, False),
    "appointment_soon": (paris(2026, 12, 2, 8, 30), None, False),
    "renewal": (paris(2026, 12, 1, 10, 0), "prescriptions", True),
    "vaccination": (paris(2026, 12, 3, 9, 0), None, False),
    "unread_results": (paris(2026, 11, 27, 10, 0), "results", True),
}


def reached(*, reminder, kind, given, expiry, confidential, own_login):
    """The rule, stated once and plainly: (the patient's own login is reminded, a
    representative is). The patient's own login always, when they have one. A
    representative only while the representation is in force, never about what a care
    team made confidential; appointments and vaccinations for parents and legal
    representatives only; a prescription ending also for a helper given prescriptions;
    results not opened only when the patient has no login of their own (then also a
    helper given results)."""
    full = kind in ("parent", "legal")
    representative = expiry == "in force" and not confidential
    if reminder in ("appointment_eve", "appointment_soon", "vaccination"):
        representative = representative and full
    elif reminder == "renewal":
        representative = representative and (full or given)
    else:
        representative = representative and not own_login and (full or given)
    return own_login, representative


def test_the_rule_itself_says_what_the_issue_says():
    case = {"given": True, "expiry": "in force", "confidential": False, "own_login": True}
    assert reached(reminder="appointment_eve", kind="parent", **case) == (True, True)
    assert reached(reminder="appointment_eve", kind="helper", **case) == (True, False)
    assert reached(reminder="renewal", kind="helper", **case) == (True, True)
    assert reached(reminder="renewal", kind="parent", **{**case, "confidential": True}) == (True, False)
    assert reached(reminder="unread_results", kind="parent", **case) == (True, False)
    assert reached(reminder="unread_results", kind="legal", **{**case, "own_login": False}) == (False, True)
    assert reached(reminder="vaccination", kind="parent", **{**case, "expiry": "ended"}) == (True, False)


def cases(reminder):
    _moment, _part, may_be_confidential = REMINDERS[reminder]
    return [
        {"kind": kind, "given": given, "expiry": expiry, "confidential": confidential, "own_login": own_login}
        for kind, given, expiry, confidential, own_login in itertools.product(
            KINDS, (True, False), EXPIRIES, (False, True) if may_be_confidential else (False,), (True, False)
        )
    ]


def build(reminder, case, team, clinician, moment):
    """One record, its representative and the item the reminder is about."""
    _moment, part, _confidential = REMINDERS[reminder]
    patient = PatientFactory(birth_date=BORN) if case["own_login"] else PatientFactory(user=None, birth_date=BORN)
    CareLinkFactory(patient=patient, team=team)
    representative = UserFactory(role=User.Role.PATIENT)
    # Parents and legal representatives have every part anyway; a helper the kind's part or only the others.
    given = {name: (name == part) == case["given"] for name in PARTS}
    Representation.objects.create(
        patient=patient, representative=representative, kind=case["kind"], **given,
        ends_at=moment - datetime.timedelta(days=1) if case["expiry"] == "past its end date" else None,
        ended_at=moment - datetime.timedelta(days=2) if case["expiry"] == "ended" else None,
    )  # fmt: skip
    if reminder in ("appointment_eve", "appointment_soon"):
        starts_at = paris(2026, 12, 2, 10, 0)
        AppointmentFactory(
            patient=patient, team=team, starts_at=starts_at, ends_at=starts_at + datetime.timedelta(minutes=30)
        )
    elif reminder == "renewal":
        Prescription.objects.create(
            patient=patient, medication="Lévothyrox 75 µg", dosage="1", frequency="1/j",
            start_date=datetime.date(2026, 1, 1), end_date=datetime.date(2026, 12, 5), renewable=True,
            prescriber=clinician, team=team, confidential=case["confidential"],
        )  # fmt: skip
    elif reminder == "unread_results":
        records.add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan", collected_on=moment.date(),
            observations=GLUCOSE, confidential=case["confidential"],
        )  # fmt: skip
    return patient, representative


@pytest.mark.parametrize("reminder", list(REMINDERS))
def test_who_is_reminded_as_a_generated_table(reminder, team, clinician):
    moment = REMINDERS[reminder][0]
    with time_machine.travel(moment - datetime.timedelta(days=7, hours=1), tick=False):
        built = [(case, *build(reminder, case, team, clinician, moment)) for case in cases(reminder)]
    mail.outbox.clear()
    with time_machine.travel(moment, tick=False):
        services.scan_reminders()
    sent = {address for email in mail.outbox for address in email.to}
    failures = []
    for case, patient, representative in built:
        own, by_representative = reached(reminder=reminder, **case)
        written = set(Reminder.objects.filter(patient=patient, kind=reminder).values_list("user_id", "channel"))
        expected = set()
        if own:
            expected |= {(patient.user_id, "email"), (patient.user_id, "in_app")}
        if by_representative:
            expected.add((representative.pk, "email"))  # by email only: in-app reminders are one's own record's
        got = (patient.user is not None and patient.user.email in sent, representative.email in sent)
        if written != expected or got != (own, by_representative):
            failures.append((case, written, got))
    assert failures == []
    assert any(reached(reminder=reminder, **case)[1] for case, *_ in built)  # the table reaches someone
    # A second scan writes and sends nothing more.
    outbox = len(mail.outbox)
    with time_machine.travel(moment + datetime.timedelta(minutes=5), tick=False):
        assert services.scan_reminders() == 0
    assert len(mail.outbox) == outbox


def test_a_representative_is_told_it_is_a_record_they_act_for_and_nothing_else(team, clinician):
    child = PatientFactory(user=None, first_name="Léo", birth_date=datetime.date(2020, 5, 4))
    CareLinkFactory(patient=child, team=team)
    parent = UserFactory(role=User.Role.PATIENT, email="marie@example.org")
    Representation.objects.create(patient=child, representative=parent, kind="parent", starts_at=SINCE)
    starts_at = paris(2026, 12, 2, 10, 0)
    AppointmentFactory(
        patient=child, team=team, starts_at=starts_at, ends_at=starts_at + datetime.timedelta(minutes=30),
        with_whom="Dr Pédiatre", place="Hôpital Necker",
    )  # fmt: skip
    mail.outbox.clear()
    with time_machine.travel(paris(2026, 12, 1, 18, 0), tick=False):
        services.scan_reminders()
    (email,) = mail.outbox
    assert email.to == ["marie@example.org"]
    assert "Un rendez-vous demain dans un dossier que vous suivez – ouvrez Carnet" in email.body
    assert "An appointment tomorrow in a record you act for – open Carnet" in email.body
    assert "Vous avez" not in email.body
    for secret in ("Léo", "Pédiatre", "Necker", "10:00", "10h"):
        assert secret not in email.body + email.subject
    # Appointment reminders lead to the appointments page.
    assert f"/{reverse('agenda:mine').strip('/')}/" in email.body


def test_each_recipient_has_their_own_preferences(team, clinician, patient):
    helper = UserFactory(role=User.Role.PATIENT)
    Representation.objects.create(
        patient=patient, representative=helper, kind="helper", prescriptions=True, starts_at=SINCE
    )
    parent = UserFactory(role=User.Role.PATIENT)
    Representation.objects.create(patient=patient, representative=parent, kind="legal", starts_at=SINCE)
    NoticePreference.objects.create(user=patient.user, kind="renewals", channel="email", enabled=False)
    NoticePreference.objects.create(user=parent, kind="renewals", channel="email", enabled=False)
    Prescription.objects.create(
        patient=patient, medication="Lévothyrox 75 µg", dosage="1", frequency="1/j",
        start_date=datetime.date(2026, 1, 1), end_date=datetime.date(2026, 12, 5), renewable=True,
        prescriber=clinician, team=team,
    )  # fmt: skip
    mail.outbox.clear()
    with time_machine.travel(paris(2026, 12, 1, 10, 0), tick=False):
        services.scan_reminders()
    assert [email.to for email in mail.outbox] == [[helper.email]]
    assert set(Reminder.objects.values_list("user_id", "channel")) == {
        (patient.user_id, "in_app"),
        (helper.pk, "email"),
    }


def test_a_representation_that_ends_before_the_quiet_hours_are_over_gets_nothing(team, clinician, patient):
    """Written at 22:00 (the email waits for 08:00); the helper's end date falls in the
    night: at 08:00 the email is skipped, the patient's own goes."""
    helper = UserFactory(role=User.Role.PATIENT)
    Representation.objects.create(
        patient=patient,
        representative=helper,
        kind="helper",
        prescriptions=True,
        starts_at=SINCE,
        ends_at=paris(2026, 12, 2, 6, 0),
    )
    Prescription.objects.create(
        patient=patient, medication="Lévothyrox 75 µg", dosage="1", frequency="1/j",
        start_date=datetime.date(2026, 1, 1), end_date=datetime.date(2026, 12, 5), renewable=True,
        prescriber=clinician, team=team,
    )  # fmt: skip
    mail.outbox.clear()
    with time_machine.travel(paris(2026, 12, 1, 22, 0), tick=False):
        services.scan_reminders()
    assert mail.outbox == []
    assert Reminder.objects.filter(user=helper, status="pending").count() == 1
    with time_machine.travel(paris(2026, 12, 2, 8, 0), tick=False):
        services.relay_due_reminders()
    assert [email.to for email in mail.outbox] == [[patient.user.email]]
    assert Reminder.objects.get(user=helper).status == "skipped"


def test_a_prescription_made_confidential_after_the_scan_is_not_reminded_to_a_representative(team, clinician, patient):
    parent = UserFactory(role=User.Role.PATIENT)
    Representation.objects.create(patient=patient, representative=parent, kind="legal", starts_at=SINCE)
    prescription = Prescription.objects.create(
        patient=patient, medication="Lévothyrox 75 µg", dosage="1", frequency="1/j",
        start_date=datetime.date(2026, 1, 1), end_date=datetime.date(2026, 12, 5), renewable=True,
        prescriber=clinician, team=team,
    )  # fmt: skip
    with time_machine.travel(paris(2026, 12, 1, 22, 0), tick=False):
        services.scan_reminders()
    Prescription.objects.filter(pk=prescription.pk).update(confidential=True)
    mail.outbox.clear()
    with time_machine.travel(paris(2026, 12, 2, 8, 0), tick=False):
        services.relay_due_reminders()
    assert [email.to for email in mail.outbox] == [[patient.user.email]]
    assert Reminder.objects.get(user=parent).status == "skipped"

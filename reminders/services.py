"""Reminders: which are due, written once, sent once.

``scan_reminders`` runs from Celery beat. For each kind it asks the database, in a
few indexed queries bounded by the kind's window (never the whole history), what has
reached its moment and is still useful; it writes one ``Reminder`` per recipient
and channel that recipient wants, under a unique key (which names the recipient) (INSERT ... ON CONFLICT DO NOTHING), so
a second scan, two schedulers at once or a retried task write nothing more. Email
reminders are then their own outbox: ``relay_due_reminders`` hands the due ones to
Celery, ``deliver_reminder`` locks the row and sends it once, or skips it when it is
no longer useful. Reminders say nothing of health: « Vous avez un rendez-vous demain –
ouvrez Carnet », never what, where or with whom.

Lateness: a reminder whose moment passed while Carnet was down is still written by
the next scan while it is useful (each kind's window and ``useful_until``), never
after: not after the appointment, not on the appointment's day for the "tomorrow"
one, not once the results were opened or the vaccination recorded.

Recipients: the patient's own login, and the representatives acting for the record
(portal/access.py), each under their own preferences, with a sentence saying it is about
a record they act for, never what (``TEXT_FOR_REPRESENTATIVE``). Who, per kind:
- appointments and vaccinations: parents and legal representatives (a trusted helper's
  parts never include appointments or the profile);
- a prescription ending: also helpers given the prescriptions part; never a confidential
  prescription to a representative;
- results not opened: the patient's own login only (the results are theirs to open);
  for a patient without a login (a child, often), the parents, legal representatives
  and helpers given the results part instead; never a confidential report to a
  representative.
Representatives are reminded by email only: the in-app reminders show in one's own
record. Whether the representation still holds is checked again when the email goes.

Quiet hours: no email between 21:00 and 08:00 (Europe/Paris); it waits until 08:00,
unless it is about an appointment the same day.
"""

import datetime
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal import access
from portal.accounts.models import NoticePreference, Patient
from portal.mail import send_bilingual
from portal.prepared import prepared
from reminders import vaccines
from reminders.models import Reminder

logger = logging.getLogger(__name__)

BATCH = 2000
QUIET_START, QUIET_END = datetime.time(21, 0), datetime.time(8, 0)
EVE_AT = datetime.time(18, 0)
SOON_BEFORE = datetime.timedelta(hours=2)
RENEWAL_AHEAD = datetime.timedelta(days=7)
UNREAD_AFTER = datetime.timedelta(days=7)
# How late a reminder may still go out after its moment (Carnet was down).
UNREAD_LATE = datetime.timedelta(days=7)
VACCINATION_LATE = datetime.timedelta(days=30)
# Reminder emails of one kind to one login within this time go out as one (three results
# published the same day, three vaccines due at 12 months); not the "2 hours before" ones.
ONE_EMAIL_WITHIN = datetime.timedelta(hours=12)
# Rows are kept this long after they stopped being useful (no scan window reaches back further).
KEEP_AFTER_USE = datetime.timedelta(days=60)

PREFERENCE_OF = {
    Reminder.Kind.APPOINTMENT_EVE: NoticePreference.Kind.APPOINTMENT_REMINDERS,
    Reminder.Kind.APPOINTMENT_SOON: NoticePreference.Kind.APPOINTMENT_REMINDERS,
    Reminder.Kind.RENEWAL: NoticePreference.Kind.RENEWALS,
    Reminder.Kind.VACCINATION: NoticePreference.Kind.VACCINATIONS,
    Reminder.Kind.UNREAD_RESULTS: NoticePreference.Kind.UNREAD_RESULTS,
}
# The one sentence each kind says, by email and on the home page.
TEXT_OF = {
    Reminder.Kind.APPOINTMENT_EVE: _("You have an appointment tomorrow – open Carnet"),
    Reminder.Kind.APPOINTMENT_SOON: _("You have an appointment soon – open Carnet"),
    Reminder.Kind.RENEWAL: _("A prescription ends soon: you may ask for a renewal – open Carnet"),
    Reminder.Kind.VACCINATION: _("A vaccination may be due – open Carnet"),
    Reminder.Kind.UNREAD_RESULTS: _("Results are waiting for you – open Carnet"),
}
# What a representative is told: a record they act for, never whose or what.
TEXT_FOR_REPRESENTATIVE = {
    Reminder.Kind.APPOINTMENT_EVE: _("An appointment tomorrow in a record you act for – open Carnet"),
    Reminder.Kind.APPOINTMENT_SOON: _("An appointment soon in a record you act for – open Carnet"),
    Reminder.Kind.RENEWAL: _("A prescription ends soon in a record you act for – open Carnet"),
    Reminder.Kind.VACCINATION: _("A vaccination may be due in a record you act for – open Carnet"),
    Reminder.Kind.UNREAD_RESULTS: _("Results are waiting in a record you act for – open Carnet"),
}
# The part of the record each kind is about: which representatives it reaches (access.py).
PART_OF = {
    Reminder.Kind.APPOINTMENT_EVE: access.MANAGE,
    Reminder.Kind.APPOINTMENT_SOON: access.MANAGE,
    Reminder.Kind.RENEWAL: access.PRESCRIPTIONS,
    Reminder.Kind.VACCINATION: access.PROFILE,
    Reminder.Kind.UNREAD_RESULTS: access.RESULTS,
}
# Where the home page's reminder leads (a URL name).
PAGE_OF = {
    Reminder.Kind.APPOINTMENT_EVE: "agenda:mine",
    Reminder.Kind.APPOINTMENT_SOON: "agenda:mine",
    Reminder.Kind.RENEWAL: "records:prescriptions",
    Reminder.Kind.VACCINATION: "records:profile",
    Reminder.Kind.UNREAD_RESULTS: "records:results",
}


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_at(day: datetime.date, at: datetime.time = datetime.time(0)) -> datetime.datetime:
    """``day`` at wall-clock time ``at`` in Paris, whatever the UTC offset that day."""
    return datetime.datetime.combine(day, at, tzinfo=local_zone())


def in_quiet_hours(moment: datetime.datetime) -> bool:
    clock = moment.astimezone(local_zone()).time()
    return clock >= QUIET_START or clock < QUIET_END


def end_of_quiet_hours(moment: datetime.datetime) -> datetime.datetime:
    """The 08:00 that ends the quiet hours ``moment`` is in."""
    local = moment.astimezone(local_zone())
    day = local.date() if local.time() < QUIET_END else local.date() + datetime.timedelta(days=1)
    return local_at(day, QUIET_END)


def same_day(event_at, moment: datetime.datetime) -> bool:
    """Whether ``moment`` is on the (Paris) day of the appointment at ``event_at``."""
    zone = local_zone()
    return event_at is not None and event_at.astimezone(zone).date() == moment.astimezone(zone).date()


def email_time(*, moment: datetime.datetime, now: datetime.datetime, event_at=None) -> datetime.datetime:
    """When an email due at ``moment`` may go out: at once (or at its moment), or at
    the end of quiet hours unless it is about an appointment the same day."""
    at = max(moment, now)
    if in_quiet_hours(at) and not same_day(event_at, at):
        return end_of_quiet_hours(at)
    return at


@dataclass(frozen=True)
class Due:
    """A reminder that has reached its moment, before it is written."""

    kind: str
    user_id: int
    patient_id: int
    subject_id: int
    moment: datetime.datetime
    useful_until: datetime.datetime
    code: str = ""
    event_at: datetime.datetime | None = None
    # The recipient acts for the patient's record (a representative), not their own.
    represents: bool = False

    def key(self, channel: str) -> str:
        """Unique per reminder and recipient: each recipient is reminded once."""
        moment = self.moment.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M")
        return ":".join(filter(None, [self.kind, str(self.subject_id), self.code, moment, channel, str(self.user_id)]))


# --- What is due, per kind: set-based, within each kind's window --------------------


def _batched(rows: Iterable, size: int = BATCH) -> Iterator[list]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _recipients(rows, *, part: str, now: datetime.datetime, own_first: bool = False) -> Iterator[list[tuple]]:
    """``rows`` of (item id, patient id, time, confidential) in batches, each row repeated
    per recipient as (item id, patient id, login, time, represents): the patient's own
    active login, and the representatives in force at ``now`` covering ``part``
    (``access.representatives_reached``), never for a confidential item. ``own_first``:
    representatives only for a patient without a login (results are the patient's to
    open). A few queries per batch, by primary key or patient (joining patients and
    logins into the window's query made PostgreSQL read them all)."""
    from portal.accounts.models import User

    for batch in _batched(rows):
        patients = {patient_id for _pk, patient_id, _at, _secret in batch}
        logins = dict(Patient.objects.filter(pk__in=patients).values_list("pk", "user_id").order_by())
        active = set(
            User.objects.filter(pk__in={user for user in logins.values() if user}, is_active=True).values_list(
                "pk", flat=True
            )
        )
        represented = {pk for pk, user_id in logins.items() if not (own_first and user_id)}
        representatives: dict[int, list[int]] = {}
        if represented:
            for patient_id, user_id in access.representatives_reached(represented, part, at=now):
                representatives.setdefault(patient_id, []).append(user_id)
        found = []
        for pk, patient_id, at, confidential in batch:
            if logins.get(patient_id) in active:
                found.append((pk, patient_id, logins[patient_id], at, False))
            if not confidential:
                found += [(pk, patient_id, user_id, at, True) for user_id in representatives.get(patient_id, ())]
        yield found


def due_appointments_tomorrow(now: datetime.datetime) -> Iterator[list[Due]]:
    """From 18:00 (Paris) the day before, the scheduled appointments of tomorrow: one
    reminder each, useful until the appointment's day begins (it says "tomorrow"), and
    never after the appointment. Before 18:00 nothing of this kind is due: today's
    appointments were tomorrow's yesterday."""
    from agenda.models import Appointment

    local = now.astimezone(local_zone())
    if local.time() < EVE_AT:
        return
    tomorrow = local.date() + datetime.timedelta(days=1)
    day_starts, day_ends = local_at(tomorrow), local_at(tomorrow + datetime.timedelta(days=1))
    rows = (
        Appointment.objects.scheduled()
        .between(day_starts, day_ends)
        .values_list("pk", "patient_id", "starts_at", "confidential")
        .order_by()
    )
    moment = local_at(local.date(), EVE_AT)
    for batch in _recipients(rows, part=access.MANAGE, now=now):
        yield [
            Due(
                kind=Reminder.Kind.APPOINTMENT_EVE,
                user_id=user_id,
                patient_id=patient_id,
                subject_id=pk,
                moment=moment,
                useful_until=day_starts,  # before the appointment, and while "tomorrow" is true
                event_at=starts_at,
                represents=represents,
            )
            for pk, patient_id, user_id, starts_at, represents in batch
        ]


def due_appointments_soon(now: datetime.datetime) -> Iterator[list[Due]]:
    """The scheduled appointments starting within 2 hours: one reminder each, from 2
    hours before, useful until it starts."""
    from agenda.models import Appointment

    rows = (
        Appointment.objects.scheduled()
        .filter(starts_at__gt=now, starts_at__lte=now + SOON_BEFORE)
        .values_list("pk", "patient_id", "starts_at", "confidential")
        .order_by()
    )
    for batch in _recipients(rows, part=access.MANAGE, now=now):
        yield [
            Due(
                kind=Reminder.Kind.APPOINTMENT_SOON,
                user_id=user_id,
                patient_id=patient_id,
                subject_id=pk,
                moment=starts_at - SOON_BEFORE,
                useful_until=starts_at,
                event_at=starts_at,
                represents=represents,
            )
            for pk, patient_id, user_id, starts_at, represents in batch
        ]


def due_renewals(now: datetime.datetime) -> Iterator[list[Due]]:
    """Renewable prescriptions, neither stopped nor replaced, that end within 7 days
    (today included): one reminder from the day 7 days before their end, useful until
    that day is over."""
    from records.models import Prescription

    today = now.astimezone(local_zone()).date()
    rows = (
        Prescription.objects.ending_between(today, today + datetime.timedelta(days=7))
        .values_list("pk", "patient_id", "end_date", "confidential")
        .order_by()
    )
    for batch in _recipients(rows, part=access.PRESCRIPTIONS, now=now):
        yield [
            Due(
                kind=Reminder.Kind.RENEWAL,
                user_id=user_id,
                patient_id=patient_id,
                subject_id=pk,
                moment=local_at(end - RENEWAL_AHEAD),
                useful_until=local_at(end + datetime.timedelta(days=1)),
                represents=represents,
            )
            for pk, patient_id, user_id, end, represents in batch
        ]


def _confidential_reports(rows) -> Iterator[tuple]:
    """``rows`` of (news id, patient id, time, lab report id), the report id replaced by
    whether that report is confidential: one query per batch, by primary key (joining
    the reports into the window's query made PostgreSQL read them all)."""
    from records.models import LabReport

    for batch in _batched(rows):
        reports = {report_id for *_row, report_id in batch if report_id}
        secret = set(
            LabReport.objects.filter(pk__in=reports, confidential=True).values_list("pk", flat=True).order_by()
        )
        yield from ((pk, patient_id, at, report_id in secret) for pk, patient_id, at, report_id in batch)


def due_unread_results(now: datetime.datetime) -> Iterator[list[Due]]:
    """Lab results the patient has not opened 7 days after they were published: one
    reminder, useful while they stay unopened, and at most 7 days late."""
    from records.models import News

    rows = (
        News.objects.unseen_results_published_between(now - UNREAD_AFTER - UNREAD_LATE, now - UNREAD_AFTER)
        .values_list("pk", "patient_id", "created_at", "lab_report_id")
        .order_by()
    )
    for batch in _recipients(_confidential_reports(rows), part=access.RESULTS, now=now, own_first=True):
        yield [
            Due(
                kind=Reminder.Kind.UNREAD_RESULTS,
                user_id=user_id,
                patient_id=patient_id,
                subject_id=pk,
                moment=created + UNREAD_AFTER,
                useful_until=created + UNREAD_AFTER + UNREAD_LATE,
                represents=represents,
            )
            for pk, patient_id, user_id, created, represents in batch
        ]


def due_vaccinations(now: datetime.datetime) -> Iterator[list[Due]]:
    """Per dose of the calendar, the patients who reached its age within the last 30
    days (a birth-date range: indexed) and have no vaccination of its family recorded
    from the age it counts from. One reminder on the day it is due, up to 30 days late,
    to the patient's login and their parents or legal representatives (a child often
    has no login)."""
    from records.models import Vaccination

    today = now.astimezone(local_zone()).date()
    late_days = VACCINATION_LATE.days
    for dose in vaccines.CALENDAR:
        # Born between (today - age - 30 days) and (today - age): due within the last 30 days.
        earliest = vaccines.add_months(today - datetime.timedelta(days=late_days), -(dose.years * 12 + dose.months))
        latest = vaccines.add_months(today, -(dose.years * 12 + dose.months))
        rows = (
            Patient.objects.filter(birth_date__gte=earliest, birth_date__lte=latest)
            .values_list("pk", "pk", "birth_date", Value(False))
            .order_by()
        )
        for batch in _recipients(rows, part=access.PROFILE, now=now):
            candidates = {}
            for pk, _patient_id, user_id, birth_date, represents in batch:
                due_on = dose.due_on(birth_date)
                if today - datetime.timedelta(days=late_days) <= due_on <= today:
                    candidates[pk, user_id] = (birth_date, due_on, represents)
            given = set()
            born = {pk: birth_date for (pk, _user), (birth_date, _due, _rep) in candidates.items()}
            for patient_id, vaccine, date in (
                Vaccination.objects.filter(patient_id__in=list(born), date__gte=dose.counts_from(earliest))
                .values_list("patient_id", "vaccine", "date")
                .order_by()
            ):
                if date >= dose.counts_from(born[patient_id]) and dose.given_by(vaccine):
                    given.add(patient_id)
            yield [
                Due(
                    kind=Reminder.Kind.VACCINATION,
                    user_id=user_id,
                    patient_id=pk,
                    subject_id=pk,
                    code=dose.code,
                    moment=local_at(due_on),
                    useful_until=local_at(due_on + VACCINATION_LATE),
                    represents=represents,
                )
                for (pk, user_id), (_birth, due_on, represents) in candidates.items()
                if pk not in given
            ]


SCANS = [due_appointments_tomorrow, due_appointments_soon, due_renewals, due_unread_results, due_vaccinations]


# --- Writing them once ---------------------------------------------------------------


def _disabled(dues: list[Due]) -> set[tuple[int, str, str]]:
    """(user, preference kind, channel) turned off among the logins of ``dues``, in one query."""
    users = {due.user_id for due in dues}
    kinds = {PREFERENCE_OF[due.kind] for due in dues}
    return set(
        NoticePreference.objects.filter(user_id__in=users, kind__in=kinds, enabled=False).values_list(
            "user_id", "kind", "channel"
        )
    )


def record_reminders(dues: list[Due], *, now: datetime.datetime) -> int:
    """Write the reminders of ``dues`` the patients want, per channel, each once: keys
    already written are left alone (a read, then INSERT ... ON CONFLICT DO NOTHING for
    two scans racing). One past its use when it could go out is written as skipped,
    so it is never looked at again. Returns how many rows this call tried to add."""
    if not dues:
        return 0
    disabled = _disabled(dues)
    rows = []
    for due in dues:
        # A representative by email only: the in-app reminders show in one's own record.
        for channel in [Reminder.Channel.EMAIL] if due.represents else Reminder.Channel.values:
            if (due.user_id, PREFERENCE_OF[due.kind], channel) in disabled:
                continue
            if channel == Reminder.Channel.EMAIL:
                due_at = email_time(moment=due.moment, now=now, event_at=due.event_at)
                status = Reminder.Status.PENDING
            else:
                due_at, status = max(due.moment, now), Reminder.Status.SENT
            if due_at >= due.useful_until:
                status = Reminder.Status.SKIPPED
            rows.append(
                Reminder(
                    key=due.key(channel),
                    kind=due.kind,
                    channel=channel,
                    user_id=due.user_id,
                    patient_id=due.patient_id,
                    subject_id=due.subject_id,
                    code=due.code,
                    moment=due.moment,
                    due_at=due_at,
                    useful_until=due.useful_until,
                    event_at=due.event_at,
                    status=status,
                    sent_at=now if status == Reminder.Status.SENT else None,
                )
            )
    known = set(Reminder.objects.filter(key__in=[row.key for row in rows]).values_list("key", flat=True))
    new = [row for row in rows if row.key not in known]
    Reminder.objects.bulk_create(new, ignore_conflicts=True, batch_size=BATCH)
    return len(new)


def scan_reminders(*, now: datetime.datetime | None = None) -> int:
    """Write every reminder that is due now (idempotent), then hand the due emails to
    Celery. Returns how many rows it tried to add."""
    now = now or timezone.now()
    added = 0
    for scan in SCANS:
        for dues in scan(now):
            added += record_reminders(dues, now=now)
    relay_due_reminders(now=now)
    return added


# --- Sending them once ---------------------------------------------------------------


def enqueue_reminders(ids: list[int]) -> int:
    """Hand reminder emails to Celery; returns how many were. When the broker is down
    they stay pending for the next relay."""
    from reminders.tasks import deliver_reminder

    for count, reminder_id in enumerate(ids):
        try:
            deliver_reminder.delay(reminder_id)
        except Exception:  # any broker failure: the pending row is the safety net
            logger.warning("broker unreachable; %d reminder(s) left for the relay", len(ids) - count)
            return count
    return len(ids)


def relay_due_reminders(*, now: datetime.datetime | None = None, limit: int = 1000) -> int:
    """Periodic: enqueue the pending reminder emails that are due (indexed on due_at)."""
    now = now or timezone.now()
    ids = list(
        Reminder.objects.filter(status=Reminder.Status.PENDING, channel=Reminder.Channel.EMAIL, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    return enqueue_reminders(ids)


def still_useful(reminder: Reminder, *, now: datetime.datetime) -> bool:
    """Whether what ``reminder`` says is still true and worth saying now."""
    if now >= reminder.useful_until:
        return False
    return CHECKS[reminder.kind](reminder)


def _renewal_still_due(reminder: Reminder) -> bool:
    from records.models import Prescription

    today = reminder.moment.astimezone(local_zone()).date() + RENEWAL_AHEAD
    return Prescription.objects.ending_between(today, today).filter(pk=reminder.subject_id).exists()


def _results_still_unopened(reminder: Reminder) -> bool:
    from records.models import News

    return News.objects.unseen().filter(pk=reminder.subject_id).exists()


def _vaccination_still_due(reminder: Reminder) -> bool:
    from records.models import Vaccination

    dose = next((dose for dose in vaccines.CALENDAR if dose.code == reminder.code), None)
    patient = Patient.objects.filter(pk=reminder.patient_id).only("birth_date").first()
    if dose is None or patient is None:
        return False
    given = Vaccination.objects.filter(patient=patient, date__gte=dose.counts_from(patient.birth_date))
    return not any(dose.given_by(vaccine) for vaccine in given.values_list("vaccine", flat=True))


def _appointment_still_on(reminder: Reminder) -> bool:
    from agenda.models import Appointment

    return Appointment.objects.scheduled().filter(pk=reminder.subject_id, starts_at=reminder.event_at).exists()


CHECKS = {
    Reminder.Kind.APPOINTMENT_EVE: _appointment_still_on,
    Reminder.Kind.APPOINTMENT_SOON: _appointment_still_on,
    Reminder.Kind.RENEWAL: _renewal_still_due,
    Reminder.Kind.UNREAD_RESULTS: _results_still_unopened,
    Reminder.Kind.VACCINATION: _vaccination_still_due,
}


def _represents(reminder: Reminder) -> bool:
    """Whether ``reminder`` goes to someone other than the patient (a representative)."""
    return not Patient.objects.filter(pk=reminder.patient_id, user_id=reminder.user_id).exists()


def _recipient_still_told(reminder: Reminder, *, now: datetime.datetime) -> bool:
    """For a representative: the representation still holds at ``now`` for the kind's
    part, the item did not become confidential, and (results) the patient still has
    no login of their own. The patient's own login: always."""
    if not _represents(reminder):
        return True
    patient_id = reminder.patient_id
    reached = access.representatives_reached([patient_id], PART_OF[reminder.kind], at=now)
    if (patient_id, reminder.user_id) not in reached:
        return False
    if reminder.kind == Reminder.Kind.RENEWAL:
        from records.models import Prescription

        return Prescription.objects.filter(pk=reminder.subject_id, confidential=False).exists()
    if reminder.kind in (Reminder.Kind.APPOINTMENT_EVE, Reminder.Kind.APPOINTMENT_SOON):
        from agenda.models import Appointment

        return Appointment.objects.filter(pk=reminder.subject_id, confidential=False).exists()
    if reminder.kind == Reminder.Kind.UNREAD_RESULTS:
        from records.models import News

        return (
            Patient.objects.filter(pk=patient_id, user__isnull=True).exists()
            and not News.objects.filter(pk=reminder.subject_id, lab_report__confidential=True).exists()
        )
    return True


def deliver_reminder(*, reminder_id: int, now: datetime.datetime | None = None) -> bool:
    """Send one reminder email, exactly once: the row is locked and only a pending, due
    row is sent. One no longer useful (or no longer wanted) is skipped; one that falls
    in quiet hours waits for 08:00. Returns True when an email went out."""
    from django.urls import reverse

    from portal.accounts.services import wants_notice

    now = now or timezone.now()
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update()
            .select_related("user")
            .filter(pk=reminder_id, status=Reminder.Status.PENDING, channel=Reminder.Channel.EMAIL)
            .first()
        )
        if reminder is None or reminder.due_at > now:
            return False
        user = reminder.user
        wanted = user.is_active and wants_notice(user=user, kind=PREFERENCE_OF[reminder.kind], channel="email")
        if not wanted or not still_useful(reminder, now=now) or not _recipient_still_told(reminder, now=now):
            reminder.status = Reminder.Status.SKIPPED
            reminder.save(update_fields=["status"])
            return False
        if reminder.kind != Reminder.Kind.APPOINTMENT_SOON and (
            Reminder.objects.filter(
                user=user,
                patient_id=reminder.patient_id,
                kind=reminder.kind,
                channel=Reminder.Channel.EMAIL,
                status=Reminder.Status.SENT,
                sent_at__gt=now - ONE_EMAIL_WITHIN,
            ).exists()
        ):
            # The same sentence about the same record went to this login a few hours ago: it covers this one.
            reminder.status = Reminder.Status.SKIPPED
            reminder.save(update_fields=["status"])
            return False
        if in_quiet_hours(now) and not same_day(reminder.event_at, now):
            # The relay was late (the broker was down): wait for the morning, if still useful then.
            reminder.due_at = end_of_quiet_hours(now)
            if reminder.due_at >= reminder.useful_until:
                reminder.status = Reminder.Status.SKIPPED
            reminder.save(update_fields=["due_at", "status"])
            return False
        texts = TEXT_FOR_REPRESENTATIVE if _represents(reminder) else TEXT_OF
        # Appointments lead to the appointments page; the others to the home page.
        page = reverse(PAGE_OF[reminder.kind]) if PAGE_OF[reminder.kind] == "agenda:mine" else "/my/"
        reminder.attempts += 1
        text = texts[reminder.kind]
        send_bilingual(user.email, _("Reminder from Carnet"), lambda: f"{text}\n\n{settings.SITE_URL}{page}")
        reminder.status, reminder.sent_at = Reminder.Status.SENT, now
        reminder.save(update_fields=["status", "sent_at", "attempts"])
        return True


@prepared  # asked at every dashboard
def _in_app_reminders(user_id, patient_id, now):
    return Reminder.objects.filter(
        user=user_id,
        patient=patient_id,
        channel=Reminder.Channel.IN_APP,
        status=Reminder.Status.SENT,
        due_at__lte=now,
        useful_until__gt=now,
    ).order_by("-due_at")[:20]


def shown_reminders(*, user, patient, now: datetime.datetime | None = None) -> list[tuple[str, str]]:
    """The in-app reminders of ``user`` about ``patient`` to show now, as (sentence, URL
    name): due, not past their use, still true. A handful of rows (indexed by user)."""
    now = now or timezone.now()
    shown, seen = [], set()
    for reminder in _in_app_reminders(user.pk, patient.pk, now):
        if reminder.kind not in seen and still_useful(reminder, now=now):
            seen.add(reminder.kind)
            shown.append((str(TEXT_OF[reminder.kind]), PAGE_OF[reminder.kind]))
    return shown


def purge_old_reminders(*, now: datetime.datetime | None = None) -> int:
    """Retention: reminders past their use for ``KEEP_AFTER_USE`` go (no scan reaches back that far)."""
    now = now or timezone.now()
    deleted, _rows = Reminder.objects.filter(useful_until__lt=now - KEEP_AFTER_USE).delete()
    return deleted

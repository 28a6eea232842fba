"""Appointments: booked, changed and cancelled by a care team; cancelled or asked to be
moved by the patient; and the patient's private calendar feed."""

import datetime
import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from agenda.models import Appointment, CalendarFeed
from messaging import services as messaging
from messaging.models import Conversation
from portal.accounts.models import Patient
from records import services as records
from records.models import News

# The fields a change of which the patient is told about (and their calendar updated).
TOLD_FIELDS = ("starts_at", "duration_minutes", "mode", "place", "video_url", "with_whom", "instructions")


def _tell_patient(appointment: Appointment, kind: str) -> None:
    records.publish_news(patient=appointment.patient, kind=kind, appointment=appointment)


def clash(*, patient, team, starts_at, duration_minutes, exclude=None) -> ValidationError | None:
    """The refusal, on the form's time field, of a booking that overlaps one the patient
    already has with the team (the same slot booked twice, by two colleagues or one form
    sent again); None when there is none."""
    end = starts_at + datetime.timedelta(minutes=duration_minutes)
    found = Appointment.objects.clashing(patient=patient, team=team, start=starts_at, end=end, exclude=exclude).first()
    if found is None:
        return None
    message = _("The patient already has an appointment with this team on %(day)s from %(start)s to %(end)s.")
    return ValidationError({"time": [ValidationError(message % _span(found), code="overlap")]})


def _span(appointment) -> dict:
    """When ``appointment`` is, as the overlap messages say it: its day, start and end."""
    start, end = timezone.localtime(appointment.starts_at), timezone.localtime(appointment.ends_at)
    return {
        "day": date_format(start, "SHORT_DATE_FORMAT"),
        "start": date_format(start, "TIME_FORMAT"),
        "end": date_format(end, "TIME_FORMAT"),
    }


def busy_with_another_patient(*, team, with_whom, patient, starts_at, duration_minutes, exclude=None) -> str | None:
    """What to tell a clinician booking ``with_whom`` (as the team writes it, case and
    spaces aside) when the team's agenda has them with another patient at an overlapping
    time; None when it has not."""
    end = starts_at + datetime.timedelta(minutes=duration_minutes)
    found = (
        Appointment.objects.overlapping(team=team, start=starts_at, end=end, exclude=exclude)
        .filter(with_whom__iexact=" ".join(with_whom.split()))
        .exclude(patient=patient)
        .first()
    )
    if found is None:
        return None
    message = _("%(who)s already sees another patient on %(day)s from %(start)s to %(end)s.")
    return message % {"who": found.with_whom, **_span(found)}


def _refuse_a_clash(*, patient, team, starts_at, duration_minutes, exclude=None) -> None:
    """Inside the booking's transaction: the patient's row locked first, so that two
    bookings of the patient made at the same instant are checked one after the other
    (the second sees the first) rather than both passing the form's check."""
    Patient.all_records.select_for_update().filter(pk=patient.pk).values_list("pk").first()
    refusal = clash(patient=patient, team=team, starts_at=starts_at, duration_minutes=duration_minutes, exclude=exclude)
    if refusal is not None:
        raise refusal


@transaction.atomic
def book_appointment(*, by, team, patient, starts_at: datetime.datetime, duration_minutes: int, **details):
    """A clinician of ``team`` books an appointment with ``patient`` (the caller has
    checked both through ``portal.access``). The patient is told (content-free
    digest email, "new" marker)."""
    _refuse_a_clash(patient=patient, team=team, starts_at=starts_at, duration_minutes=duration_minutes)
    appointment = Appointment(patient=patient, team=team, created_by=by, **details)
    appointment.set_times(starts_at, duration_minutes)
    appointment.full_clean()
    appointment.save()
    _tell_patient(appointment, News.Kind.APPOINTMENT)
    return appointment


@transaction.atomic
def change_appointment(*, by, appointment: Appointment, starts_at, duration_minutes: int, **details) -> bool:
    """A clinician changes a scheduled appointment. When anything the patient sees
    changed, the sequence goes up (calendars replace the event) and the patient is
    told. Returns whether anything changed."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if appointment.is_cancelled:
        raise ValidationError(_("This appointment has been cancelled."), code="cancelled")
    marked = details.pop("confidential", appointment.confidential)
    remarked = marked != appointment.confidential  # not news to the patient: no sequence, no notice
    appointment.confidential = marked
    before = {name: getattr(appointment, name) for name in TOLD_FIELDS}
    for name, value in details.items():
        setattr(appointment, name, value)
    appointment.set_times(starts_at, duration_minutes)
    if remarked and marked:
        messaging.keep_conversations_about(appointment=appointment)
    if {name: getattr(appointment, name) for name in TOLD_FIELDS} == before:
        if remarked:
            appointment.save(update_fields=["confidential", "updated_at"])
        return remarked
    _refuse_a_clash(
        patient=appointment.patient,
        team=appointment.team,
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        exclude=appointment.pk,
    )
    appointment.full_clean()
    appointment.sequence += 1
    appointment.updated_at = timezone.now()
    appointment.save(update_fields=[*TOLD_FIELDS, "ends_at", "sequence", "updated_at", "confidential"])
    _tell_patient(appointment, News.Kind.APPOINTMENT_CHANGED)
    return True


def _cancel(appointment: Appointment, *, by, reason: str) -> Appointment:
    appointment.status = Appointment.Status.CANCELLED
    appointment.cancelled_at = appointment.updated_at = timezone.now()
    appointment.cancelled_by = by
    appointment.cancel_reason = reason
    appointment.sequence += 1
    appointment.save(
        update_fields=["status", "cancelled_at", "updated_at", "cancelled_by", "cancel_reason", "sequence"]
    )
    return appointment


@transaction.atomic
def cancel_appointment(*, by, appointment: Appointment, reason: str) -> Appointment:
    """A clinician cancels an appointment, with a reason the patient reads; the
    patient is told. Cancelling twice does nothing more."""
    appointment = Appointment.objects.select_for_update().select_related("patient").get(pk=appointment.pk)
    if appointment.is_cancelled:
        return appointment
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Give a reason: the patient reads it."), code="reason")
    _cancel(appointment, by=by, reason=reason)
    _tell_patient(appointment, News.Kind.APPOINTMENT_CANCELLED)
    return appointment


def cancellation_deadline(appointment: Appointment) -> datetime.datetime:
    """Until when the patient may cancel in Carnet: the team's notice before the start."""
    return appointment.starts_at - datetime.timedelta(hours=appointment.team.cancellation_notice_hours)


def patient_may_cancel(appointment: Appointment, now=None) -> bool:
    return not appointment.is_cancelled and (now or timezone.now()) <= cancellation_deadline(appointment)


@transaction.atomic
def cancel_by_patient(*, user, appointment: Appointment, reason: str = "") -> Appointment:
    """The patient (or whoever looks after their record) cancels, within their team's
    notice period; the team sees it struck through on its agenda, with the patient's
    reason if they gave one, and its members are told (content-free email, once)."""
    appointment = Appointment.objects.select_for_update().select_related("team", "patient").get(pk=appointment.pk)
    if appointment.is_cancelled:
        return appointment
    if not patient_may_cancel(appointment):
        raise ValidationError(
            _("This appointment is too close to cancel in Carnet: ask the care team to move it, or call them."),
            code="too_late",
        )
    _cancel(appointment, by=user, reason=reason.strip())
    messaging.notify_team(team=appointment.team, patient=appointment.patient, actor=user, appointment=appointment)
    return appointment


def request_reschedule(*, user, appointment: Appointment, message: str) -> tuple[Conversation, bool]:
    """The patient asks the team to move an appointment: a conversation of type
    "appointment change request" in the team's inbox, about this appointment. An
    open request for the same appointment gets the message instead of a second one.
    Returns the conversation and whether it was opened now."""
    message = message.strip()
    if not message:
        raise ValidationError(_("Write a message."), code="empty")
    with transaction.atomic():
        # One request at a time per appointment: a simultaneous one waits here, then finds it.
        appointment = Appointment.objects.select_for_update().select_related("team", "patient").get(pk=appointment.pk)
        if appointment.is_cancelled:
            raise ValidationError(_("This appointment has been cancelled."), code="cancelled")
        existing = Conversation.objects.filter(
            appointment=appointment, kind=Conversation.Kind.RESCHEDULE, status=Conversation.Status.OPEN
        ).first()
        if existing is not None:
            messaging.send_message(author=user, conversation=existing, body=message)
            return existing, False
        local = timezone.localtime(appointment.starts_at)
        subject = _("Move my appointment of %(date)s") % {"date": f"{local:%d/%m/%Y %H:%M}"}
        conversation = messaging.start_conversation(
            author=user,
            patient=appointment.patient,
            team=appointment.team,
            subject=subject,
            kind=Conversation.Kind.RESCHEDULE,
            body=message,
            appointment=appointment,
        )
        return conversation, True


def unseen_news_ids(*, patient, items) -> set[int]:
    """Of the appointments ``items``, those booked, changed or cancelled since the patient last looked."""
    return records.unseen_news_ids(patient=patient, field="appointment_id", items=items)


def mark_appointments_seen(*, user, patient, appointments) -> int:
    """The patient's appointments page showed these: their "new" markers go."""
    return records.mark_news_seen(user=user, patient=patient, appointments=appointments)


# --- The private calendar feed -----------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def issue_feed_token(*, patient, show_details: bool | None = None) -> str:
    """A new secret address for the patient's calendar feed; the previous one stops
    working at once. Returns the token (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed.objects.select_for_update().filter(patient=patient).first()
    if feed is None:
        CalendarFeed.objects.create(patient=patient, token_hash=token_hash(token), show_details=bool(show_details))
    else:
        feed.token_hash = token_hash(token)
        feed.created_at, feed.last_used_at = timezone.now(), None
        if show_details is not None:
            feed.show_details = show_details
        feed.save(update_fields=["token_hash", "created_at", "last_used_at", "show_details"])
    return token


def revoke_feed(*, patient) -> bool:
    """The feed's address stops working; returns whether there was one."""
    deleted, _ = CalendarFeed.objects.filter(patient=patient).delete()
    return bool(deleted)


def set_feed_details(*, patient, show_details: bool) -> None:
    CalendarFeed.objects.filter(patient=patient).update(show_details=show_details)


# Calendars poll every few minutes: note the use at most this often (one write an hour).
FEED_USE_PRECISION = datetime.timedelta(hours=1)
# What the feed carries: coming appointments and those of the last weeks.
FEED_PAST = datetime.timedelta(days=90)


def feed_appointments(*, feed: CalendarFeed):
    """The appointments a feed carries (cancelled ones too: calendars then remove
    them), with only the columns the events need, and the use noted."""
    now = timezone.now()
    if feed.last_used_at is None or feed.last_used_at < now - FEED_USE_PRECISION:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)
    fields = ["pk", "starts_at", "ends_at", "status", "sequence", "updated_at", "created_at"]
    if feed.show_details:
        fields += ["team__name", "mode", "place", "video_url", "with_whom", "instructions"]
    appointments = Appointment.objects.filter(patient_id=feed.patient_id, ends_at__gte=now - FEED_PAST)
    if feed.show_details:
        appointments = appointments.select_related("team")
    return appointments.only(*fields).order_by("starts_at", "pk")

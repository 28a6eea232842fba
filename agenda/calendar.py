"""Appointments as iCalendar (RFC 5545), written by the icalendar library: times in
Europe/Paris with the VTIMEZONE that defines it, so a calendar shows the wall-clock
time booked, whatever its own zone and whatever daylight-saving change falls between."""

import datetime
import zoneinfo
from urllib.parse import urlparse

import icalendar
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from agenda.models import Appointment

# What a calendar shows when the patient did not ask for details: nothing about health
# (in the language of the request: a download in English says it in English).
PLAIN_SUMMARY = gettext_lazy("Appointment – Carnet")
PRODID = "-//Carnet//Appointments//FR"


def _uid(appointment: Appointment) -> str:
    return f"appointment-{appointment.pk}@{urlparse(settings.SITE_URL).hostname or 'carnet'}"


def _event(appointment: Appointment, *, details: bool, zone) -> icalendar.Event:
    cancelled = appointment.status == Appointment.Status.CANCELLED
    event = icalendar.Event.new(
        uid=_uid(appointment),
        start=appointment.starts_at.astimezone(zone),
        end=appointment.ends_at.astimezone(zone),
        stamp=appointment.updated_at.astimezone(datetime.UTC),
        created=appointment.created_at.astimezone(datetime.UTC),
        sequence=appointment.sequence,
        status="CANCELLED" if cancelled else "CONFIRMED",
        summary=str(PLAIN_SUMMARY),
    )
    if details:
        event["SUMMARY"] = icalendar.vText(
            _("Appointment – %(team)s") % {"team": appointment.team.name} if not cancelled else
            _("Cancelled: appointment – %(team)s") % {"team": appointment.team.name}
        )  # fmt: skip
        if appointment.mode == Appointment.Mode.VIDEO and appointment.video_url:
            event.add("LOCATION", appointment.video_url)
            event.add("URL", appointment.video_url)
        elif appointment.place:
            event.add("LOCATION", appointment.place)
        lines = [_("With: %(whom)s") % {"whom": appointment.with_whom}]
        if appointment.mode == Appointment.Mode.VIDEO:
            lines.append(_("Teleconsultation: %(link)s") % {"link": appointment.video_url})
        if appointment.instructions:
            lines += [_("To prepare:"), appointment.instructions]
        event.add("DESCRIPTION", "\n".join(lines))
    return event


def calendar_of(appointments, *, details: bool, name: str = "Carnet") -> bytes:
    """An iCalendar file of ``appointments``: with place, team and instructions only
    when ``details``; else each event is « Rendez-vous – Carnet » and a time."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    calendar = icalendar.Calendar.new(prodid=PRODID, name=name, method="PUBLISH")
    calendar.add("REFRESH-INTERVAL", datetime.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", "PT1H")
    first, last = None, None
    for appointment in appointments:
        calendar.add_component(_event(appointment, details=details, zone=zone))
        first = min(first or appointment.starts_at, appointment.starts_at)
        last = max(last or appointment.ends_at, appointment.ends_at)
    if first is None:
        first = last = timezone.now()
    # The zone's rules around the events only (not 1970-2038): a small file.
    calendar.add_missing_timezones(
        first_date=(first - datetime.timedelta(days=366)).date(), last_date=(last + datetime.timedelta(days=366)).date()
    )
    if not calendar.timezones:  # no event: the feed still says which zone it speaks
        calendar.add_component(icalendar.Timezone.from_tzid(settings.TIME_ZONE))
    return calendar.to_ical()

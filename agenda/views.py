import datetime
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from agenda import calendar, forms, services
from agenda.models import Appointment, CalendarFeed
from portal import access
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.idempotency import idempotent
from portal.pagination import keyset_page

PAST_PAGE_SIZE = 20
# The new feed address's token, kept in the session from the POST to the page showing it once.
FEED_ADDRESS_SESSION_KEY = "calendar_feed_address"


def _bound(request):
    return request.POST if request.method == "POST" else None


# --- A care team's side --------------------------------------------------------------------


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def book(request, patient_pk):
    """Book an appointment with a patient the clinician cares for, in the name of the
    team through which they do (chosen when there are several)."""
    patient = access.get_cared_patient(request.user, patient_pk)
    form = forms.AppointmentForm(_bound(request), teams=access.teams_caring_for(request.user, patient), patient=patient)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.book_appointment(
                by=request.user,
                team=data["team"],
                patient=patient,
                starts_at=data["starts_at"],
                duration_minutes=data["duration_minutes"],
                **form.details(),
            )
        except ValidationError as refusal:  # booked by a colleague meanwhile
            form.add_error(None, refusal)
        else:
            messages.success(request, _("The appointment is booked; the patient is told."))
            return redirect("careteams:patient_detail", patient.pk)
    context = {"form": form, "patient": patient, "title": _("Book an appointment")}
    return access.render_record(
        request, "agenda/appointment_form.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


def _scheduled_for_team(request, pk) -> Appointment:
    appointment = access.get_appointment_for(request.user, pk)
    if appointment.is_cancelled:
        raise Http404
    return appointment


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def edit(request, pk):
    """Change an appointment of one's team: the patient is told, their calendar follows."""
    appointment = _scheduled_for_team(request, pk)
    form = forms.AppointmentForm(_bound(request), instance=appointment)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changed = services.change_appointment(
                by=request.user,
                appointment=appointment,
                starts_at=data["starts_at"],
                duration_minutes=data["duration_minutes"],
                **form.details(),
            )
        except ValidationError as refusal:  # booked over, or cancelled, by a colleague meanwhile
            form.add_error(None, refusal)
        else:
            messages.success(
                request, _("The appointment is changed; the patient is told.") if changed else _("Nothing changed.")
            )
            return redirect("careteams:patient_detail", appointment.patient_id)
    appointment.refresh_from_db()  # the form's validation wrote into the instance
    context = {
        "form": form,
        "patient": appointment.patient,
        "appointment": appointment,
        "title": _("Change the appointment"),
    }
    return access.render_record(
        request,
        "agenda/appointment_form.html",
        context,
        patient=appointment.patient,
        action=AccessLog.Action.VIEW_RECORD,
    )


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def cancel(request, pk):
    """Cancel an appointment of one's team, with a reason the patient reads."""
    appointment = _scheduled_for_team(request, pk)
    form = forms.CancelForm(_bound(request))
    if request.method == "POST" and form.is_valid():
        services.cancel_appointment(by=request.user, appointment=appointment, reason=form.cleaned_data["reason"])
        messages.success(request, _("The appointment is cancelled; the patient is told."))
        return redirect("careteams:patient_detail", appointment.patient_id)
    context = {"form": form, "appointment": appointment, "patient": appointment.patient}
    return access.render_record(
        request, "agenda/cancel.html", context, patient=appointment.patient, action=AccessLog.Action.VIEW_RECORD
    )


def _local_midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def _agenda(request, *, week: bool):
    teams = access.teams_of(request.user).order_by("name")
    form = forms.AgendaDayForm(request.GET or None, teams=teams)
    team, day = None, timezone.localdate()
    if form.is_bound and form.is_valid():
        team, day = form.cleaned_data["team"], form.cleaned_data["day"] or day
    team = team or teams.first()
    if team is None:
        raise Http404
    first = day - datetime.timedelta(days=day.weekday()) if week else day
    days = [first + datetime.timedelta(days=n) for n in range(7 if week else 1)]
    # Local midnights: a day of a daylight-saving change lasts 23 or 25 hours.
    appointments = list(
        access.appointments_visible_to(request.user)
        .filter(team=team)
        .between(_local_midnight(days[0]), _local_midnight(days[-1] + datetime.timedelta(days=1)))
        .select_related("patient", "cancelled_by")
        .order_by("starts_at", "pk")
    )
    access.trace_listed_appointments(request.user, appointments)
    by_day = {d: [] for d in days}
    for appointment in appointments:
        by_day[appointment.local_start.date()].append(appointment)
    step = datetime.timedelta(days=7 if week else 1)
    context = {
        "form": form,
        "team": team,
        "teams": teams,
        "week": week,
        "day": day,
        "days": list(by_day.items()),
        "count": len(appointments),
        "previous": (first - step).isoformat(),
        "next": (first + step).isoformat(),
        "today": timezone.localdate().isoformat(),
        "manages": access.teams_managed_by(request.user).filter(pk=team.pk).exists(),
    }
    return render(request, "agenda/team_agenda.html", context)


@access.role_required(User.Role.CLINICIAN)
@require_safe
def team_day(request):
    """One day of a care team's appointments (Europe/Paris day), printable."""
    return _agenda(request, week=False)


@access.role_required(User.Role.CLINICIAN)
@require_safe
def team_week(request):
    """One week, Monday to Sunday, of a care team's appointments, printable."""
    return _agenda(request, week=True)


# --- The patient's side ----------------------------------------------------------------------


@access.role_required(User.Role.PATIENT)
@require_safe
def mine(request):
    """The upcoming appointments of the record one is in, then the past ones (a page at a
    time): one's own, or a record one looks after as a parent or legal representative."""
    record = access.record_for(request, access.MANAGE)
    patient, now = record.patient, timezone.now()
    appointments = access.rows_in_record(record, Appointment).select_related("team")
    upcoming = list(appointments.upcoming(now))
    # From a cursor, newest first: the 100th page costs what the first does (no OFFSET, no COUNT).
    past = keyset_page(appointments.past(now), request.GET, field="starts_at", size=PAST_PAGE_SIZE)
    shown = upcoming + list(past.object_list)
    new = services.unseen_news_ids(patient=patient, items=shown)
    services.mark_appointments_seen(user=request.user, patient=patient, appointments=[a for a in shown if a.pk in new])
    writable = set(access.teams_patient_can_write_to(patient).values_list("pk", flat=True)) if upcoming else set()
    for appointment in upcoming:
        appointment.may_cancel = services.patient_may_cancel(appointment, now)
        appointment.cancel_until = timezone.localtime(services.cancellation_deadline(appointment))
        appointment.may_ask_to_move = appointment.team_id in writable
    feed = CalendarFeed.objects.filter(patient=patient).first() if record.is_own else None
    context = {"upcoming": upcoming, "past": past, "new": new, "feed": feed, "may_subscribe": record.is_own}
    return access.render_record(
        request, "agenda/mine.html", context, patient=patient, action=AccessLog.Action.VIEW_APPOINTMENTS
    )


def _own_appointment(request, pk) -> Appointment:
    """An appointment of the record one is in (one record per page); 404 otherwise."""
    appointment = access.get_appointment_for(request.user, pk)
    access.check_in_record(request, appointment.patient, access.MANAGE)
    return appointment


@access.role_required(User.Role.PATIENT)
@require_safe
def ics(request, pk):
    """One appointment as an .ics file, to add to a calendar: « Rendez-vous – Carnet »
    and its time, or with the details when the patient asks for them."""
    appointment = _own_appointment(request, pk)
    details = request.GET.get("details") == "1"
    data = calendar.calendar_of([appointment], details=details)
    access.trace_read(request.user, appointment.patient, AccessLog.Action.VIEW_APPOINTMENTS, appointment.team.name)
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    name = _("appointment-%(day)s.ics") % {"day": f"{appointment.local_start:%Y-%m-%d}"}
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _no_longer_changeable(request, appointment):
    """For a cancelled or past appointment (a second tab, the browser's Back), the list of
    one's appointments with what became of it, rather than a page that cannot be used."""
    if appointment.is_cancelled:
        messages.info(request, _("This appointment is already cancelled."))
    elif appointment.ends_at <= timezone.now():
        messages.info(request, _("This appointment is over: it can no longer be changed."))
    else:
        return None
    return redirect("agenda:mine")


@access.role_required(User.Role.PATIENT)
@require_http_methods(["GET", "POST"])
@idempotent
def patient_cancel(request, pk):
    """Cancel one's appointment, until the team's notice period."""
    appointment = _own_appointment(request, pk)
    if gone := _no_longer_changeable(request, appointment):
        return gone
    form = forms.PatientCancelForm(_bound(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.cancel_by_patient(user=request.user, appointment=appointment, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            messages.error(request, error.messages[0])
            return redirect("agenda:mine")
        messages.success(request, _("Your appointment is cancelled; the care team sees it."))
        return redirect("agenda:mine")
    context = {
        "form": form,
        "appointment": appointment,
        "may_cancel": services.patient_may_cancel(appointment),
        "cancel_until": timezone.localtime(services.cancellation_deadline(appointment)),
    }
    return access.render_record(
        request, "agenda/patient_cancel.html", context,
        patient=appointment.patient, action=AccessLog.Action.VIEW_APPOINTMENTS, target=appointment.team.name,
    )  # fmt: skip


@access.role_required(User.Role.PATIENT)
@require_http_methods(["GET", "POST"])
@idempotent
def reschedule(request, pk):
    """Ask the care team to move an appointment: a conversation in their inbox."""
    appointment = _own_appointment(request, pk)
    if gone := _no_longer_changeable(request, appointment):
        return gone
    form = forms.RescheduleForm(_bound(request))
    if request.method == "POST" and form.is_valid():
        try:
            conversation, created = services.request_reschedule(
                user=request.user, appointment=appointment, message=form.cleaned_data["message"]
            )
        except ValidationError as error:  # nobody left to read it (see below): said, the text kept
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("Your request has been sent to %(team)s.") % {"team": appointment.team}
                if created
                else _("Your message has been added to your open request."),
            )
            return redirect("messaging:conversation", conversation.pk)
    return access.render_record(
        request, "agenda/reschedule.html",
        # Every professional of the team blocked: said instead of a form nobody would read.
        {"form": form, "appointment": appointment,
         "readable": form.is_bound or access.patient_can_write_to(appointment.patient, appointment.team_id)},
        patient=appointment.patient, action=AccessLog.Action.VIEW_APPOINTMENTS, target=appointment.team.name,
    )  # fmt: skip


@access.role_required(User.Role.PATIENT)
@require_http_methods(["GET", "POST"])
@idempotent
def feed_settings(request):
    """The patient's private calendar address: made (shown once), made anew (the old
    one stops), revoked; details in the calendar or not. The record holder's own: it
    carries every appointment, a minor's confidential ones included, so a representative
    may neither make it (and read those) nor replace the holder's (404)."""
    record = access.current_record(request)
    if not record.is_own:
        raise Http404
    patient = record.patient
    feed = CalendarFeed.objects.filter(patient=patient).first()
    form = forms.FeedForm(_bound(request), initial={"show_details": feed.show_details if feed else False})
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "revoke":
            services.revoke_feed(patient=patient)
            messages.success(request, _("Your calendar address no longer works."))
            return redirect("agenda:feed_settings")
        if form.is_valid():
            show_details = form.cleaned_data["show_details"]
            if action == "details" and feed is not None:
                services.set_feed_details(patient=patient, show_details=show_details)
                messages.success(request, _("Your choice is saved."))
                return redirect("agenda:feed_settings")
            if action == "issue":
                token = services.issue_feed_token(patient=patient, show_details=show_details)
                # Shown once, on the next page only: the session keeps it until then, never the database.
                request.session[FEED_ADDRESS_SESSION_KEY] = token
                return redirect("agenda:feed_settings")
    token = request.session.pop(FEED_ADDRESS_SESSION_KEY, None)
    url = settings.SITE_URL + reverse("agenda:feed", args=[token]) if token and feed else None
    return render(request, "agenda/feed_settings.html", {"feed": feed, "form": form, "feed_url": url})


# --- The calendar feed: no session, the token is the credential --------------------------


@require_safe
def feed(request, token):
    """The patient's appointments for their calendar application, found by the secret
    token alone. A wrong or revoked token gets the plain 404 of any unknown address."""
    if len(token) > 100:
        raise Http404
    found = access.get_calendar_feed(services.token_hash(token))
    data = calendar.calendar_of(services.feed_appointments(feed=found), details=found.show_details)
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response

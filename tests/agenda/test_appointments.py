"""Appointments, as a care team books them and a patient lives them: Paris wall-clock
times across daylight-saving changes, the patient told (content-free), cancelled by
either side (the patient within the team's notice), moved on request, and in the
patient's calendar (.ics with its VTIMEZONE)."""

import contextlib
import datetime
import zoneinfo

import icalendar
import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agenda import services
from agenda.models import Appointment
from messaging.models import Conversation
from portal.audit.models import AccessLog
from records.models import News
from tests.factories import AppointmentFactory, CareLinkFactory, CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def paris(*args):
    return datetime.datetime(*args, tzinfo=PARIS)


# Days ahead within the booking horizon (two years), in winter time for March.
SOON = datetime.date.today() + datetime.timedelta(days=60)
NEXT_YEAR = datetime.date.today().year + 1


def booking(team, day, time="10:00", **extra):
    return {
        "team": team.pk, "day": day, "time": time, "duration_minutes": "30", "mode": "in_person",
        "place": "12 rue des Lilas, salle 2", "with_whom": "Dr Martin", "instructions": "Venir à jeun.", **extra,
    }  # fmt: skip


@contextlib.contextmanager
def reads_at_most(count):
    """The SQL statements run inside, savepoints aside (tests run requests in a transaction)."""
    with CaptureQueriesContext(connection) as context:
        yield
    statements = [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= count, statements


def parse_ics(response) -> icalendar.Calendar:
    assert response["Content-Type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(
        b"".join(response.streaming_content) if response.streaming else response.content
    )


def only_event(calendar) -> icalendar.Event:
    (event,) = calendar.walk("VEVENT")
    return event


# --- Booking, in Paris time, on the days the clocks change ---------------------------------


@time_machine.travel(paris(2026, 10, 1, 9, 0), tick=False)
@pytest.mark.parametrize(
    ("day", "utc_hour", "zone_name"),
    [("2026-10-25", 9, "CET"), ("2026-10-24", 8, "CEST"), ("2027-03-28", 8, "CEST"), ("2027-03-27", 9, "CET")],
)
def test_a_booking_on_a_clock_change_day_keeps_its_wall_clock_time(
    client, login, clinician, patient, team, day, utc_hour, zone_name, django_capture_on_commit_callbacks
):
    type(patient.user).objects.filter(pk=patient.user_id).update(date_joined=paris(2026, 1, 1, 0, 0))
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("agenda:book", args=[patient.pk]), booking(team, day))
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.starts_at.astimezone(datetime.UTC).hour == utc_hour
    assert appointment.local_start.strftime("%Y-%m-%d %H:%M %Z") == f"{day} 10:00 {zone_name}"
    assert appointment.ends_at - appointment.starts_at == datetime.timedelta(minutes=30)
    # The patient is told, without any detail, and sees it at 10:00 on their page.
    assert News.objects.get(appointment=appointment).kind == News.Kind.APPOINTMENT
    (email,) = mail.outbox
    assert "rendez-vous" in email.body.lower()
    for detail in ("Martin", "Lilas", "jeun", "10:00", "10h00", team.name):
        assert detail not in email.body and detail not in email.subject
    login(patient)
    page = client.get(reverse("agenda:mine")).content.decode()
    assert "10:00" in page and "Venir à jeun." in page
    # Its .ics says 10:00 Europe/Paris, and carries the zone's definition.
    calendar = parse_ics(client.get(reverse("agenda:ics", args=[appointment.pk])))
    (zone,) = calendar.walk("VTIMEZONE")
    assert zone["TZID"] == "Europe/Paris"
    event = only_event(calendar)
    assert event.decoded("DTSTART").tzinfo is not None
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event["DTSTART"].to_ical().decode() == f"{day.replace('-', '')}T100000"
    assert event.decoded("DTSTART").astimezone(datetime.UTC) == appointment.starts_at
    # The zone as the file defines it gives the same offset on that day as the real one.
    offsets = {
        (sub.name, sub.decoded("TZOFFSETTO")) for sub in zone.subcomponents if sub.name in ("STANDARD", "DAYLIGHT")
    }
    assert offsets == {("STANDARD", datetime.timedelta(hours=1)), ("DAYLIGHT", datetime.timedelta(hours=2))}
    assert "20261025T030000" in zone.to_ical().decode() and "20270328T030000" in zone.to_ical().decode()


@time_machine.travel(paris(2026, 10, 1, 9, 0), tick=False)
@pytest.mark.parametrize(
    ("day", "message"),
    [("2027-03-28", "n’existe pas"), ("2026-10-25", "deux fois")],
)
def test_a_time_the_clock_change_skips_or_repeats_is_refused(client, login, clinician, patient, team, day, message):
    login(clinician)
    response = client.post(reverse("agenda:book", args=[patient.pk]), booking(team, day, time="02:30"))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("minutes", ["0", "4", "481", "32768", "2147483648", "9999999999", "-5"])
def test_a_duration_out_of_bounds_is_a_form_error_never_a_500(client, login, clinician, patient, team, minutes):
    """Checked by the form's own field, before the overlap check works out when the
    appointment would end: no date out of range, whatever the number."""
    login(clinician)
    book = reverse("agenda:book", args=[patient.pk])
    response = client.post(book, booking(team, SOON.isoformat(), duration_minutes=minutes))
    assert response.status_code == 200 and 'id="id_duration_minutes_error"' in response.content.decode()
    assert not Appointment.objects.exists()


def test_an_appointment_in_the_past_or_without_place_is_refused(client, login, clinician, patient, team):
    login(clinician)
    response = client.post(reverse("agenda:book", args=[patient.pk]), booking(team, "2020-01-06"))
    assert "Cette date et cette heure sont passées." in response.content.decode()
    response = client.post(
        reverse("agenda:book", args=[patient.pk]), booking(team, SOON.isoformat(), mode="video", video_url="")
    )
    assert "Indiquez le lien de la téléconsultation." in response.content.decode()
    assert not Appointment.objects.exists()


def test_a_moved_clock_across_the_autumn_change(client, login, clinician, patient, team):
    """Booked on Saturday 24 October 2026 (summer time) for Monday 26 at 10:00 (winter
    time), with a 48-hour notice: the deadline is 48 real hours before, Saturday at
    11:00 (the night of Sunday lasts 25 hours). The patient cancels at 10:30, not at 11:30."""
    team.cancellation_notice_hours = 48
    team.save(update_fields=["cancellation_notice_hours"])
    with time_machine.travel(paris(2026, 10, 24, 9, 0), tick=False):
        login(clinician)
        client.post(reverse("agenda:book", args=[patient.pk]), booking(team, "2026-10-26"))
        appointment = Appointment.objects.get()
        assert appointment.starts_at == datetime.datetime(2026, 10, 26, 9, 0, tzinfo=datetime.UTC)
        login(patient)
        page = client.get(reverse("agenda:mine")).content.decode()
        assert "lundi 26 octobre 2026, 10:00" in page
        assert "jusqu’au samedi 24 octobre 2026, 11:00" in page
    # (Signed in again at each jump of the clock: the session's idle timeout is 30 minutes.)
    with time_machine.travel(paris(2026, 10, 24, 11, 30), tick=False):
        login(patient)
        page = client.get(reverse("agenda:mine")).content.decode()
        assert reverse("agenda:patient_cancel", args=[appointment.pk]) not in page
        assert "Trop proche pour l’annuler dans Carnet" in page
        response = client.post(reverse("agenda:patient_cancel", args=[appointment.pk]), {"reason": ""}, follow=True)
        assert "Ce rendez-vous est trop proche pour être annulé dans Carnet" in response.content.decode()
        assert Appointment.objects.get().status == Appointment.Status.SCHEDULED
    with time_machine.travel(paris(2026, 10, 24, 10, 30), tick=False):
        login(patient)
        response = client.post(reverse("agenda:patient_cancel", args=[appointment.pk]), {"reason": "Empêchement"})
        assert response["Location"] == reverse("agenda:mine")
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.CANCELLED and appointment.cancelled_by == patient.user
    # Past its end, it moves from upcoming to past, still at 10:00 winter time.
    with time_machine.travel(paris(2026, 10, 26, 10, 31), tick=False):
        login(patient)
        page = client.get(reverse("agenda:mine")).content.decode()
        upcoming, past = page.split('id="past-title"')
        assert "26 octobre" not in upcoming and "26 octobre 2026 10:00" in past


# --- Changes and cancellations by the team: the patient is told --------------------------


def test_a_change_raises_the_sequence_and_tells_the_patient(client, login, clinician, patient, team):
    appointment = AppointmentFactory(patient=patient, team=team, starts_at=paris(NEXT_YEAR, 3, 2, 10, 0))
    login(clinician)
    data = booking(
        team, f"{NEXT_YEAR}-03-02", time="10:00", place=appointment.place, instructions=appointment.instructions
    )
    data["with_whom"] = appointment.with_whom
    client.post(reverse("agenda:edit", args=[appointment.pk]), data)
    assert not News.objects.exists(), "nothing changed: nothing told"
    client.post(reverse("agenda:edit", args=[appointment.pk]), {**data, "time": "11:15"})
    appointment.refresh_from_db()
    assert appointment.local_start.strftime("%H:%M") == "11:15" and appointment.sequence == 1
    assert News.objects.get(appointment=appointment).kind == News.Kind.APPOINTMENT_CHANGED
    login(patient)
    event = only_event(parse_ics(client.get(reverse("agenda:ics", args=[appointment.pk]))))
    assert event["SEQUENCE"] == 1 and event["DTSTART"].to_ical().decode() == f"{NEXT_YEAR}0302T111500"


def test_a_cancellation_by_the_team_needs_a_reason_the_patient_reads(client, login, clinician, patient, team):
    appointment = AppointmentFactory(patient=patient, team=team)
    login(clinician)
    response = client.post(reverse("agenda:cancel", args=[appointment.pk]), {"reason": ""})
    assert response.status_code == 200 and Appointment.objects.get().status == Appointment.Status.SCHEDULED
    client.post(reverse("agenda:cancel", args=[appointment.pk]), {"reason": "Le Dr Martin est absent."})
    appointment.refresh_from_db()
    assert appointment.is_cancelled and appointment.cancelled_by == clinician
    assert News.objects.get(appointment=appointment).kind == News.Kind.APPOINTMENT_CANCELLED
    assert client.get(reverse("agenda:edit", args=[appointment.pk])).status_code == 404
    login(patient)
    page = client.get(reverse("agenda:mine")).content.decode()
    assert "Le Dr Martin est absent." in page and "Annulé" in page
    assert reverse("agenda:reschedule", args=[appointment.pk]) not in page
    assert News.objects.get(appointment=appointment).seen_at is not None, "shown: no longer new"


# --- The patient asks to move it ----------------------------------------------------------


def test_a_reschedule_request_opens_one_typed_conversation_with_the_team(client, login, patient, team, clinician):
    appointment = AppointmentFactory(patient=patient, team=team)
    login(patient)
    url = reverse("agenda:reschedule", args=[appointment.pk])
    response = client.post(url, {"message": "Pourrait-on le décaler à jeudi ?"})
    conversation = Conversation.objects.get()
    assert response["Location"] == reverse("messaging:conversation", args=[conversation.pk])
    assert (conversation.kind, conversation.team, conversation.appointment) == ("reschedule", team, appointment)
    client.post(url, {"message": "Ou vendredi matin."})
    assert Conversation.objects.count() == 1 and conversation.messages.count() == 2
    login(clinician)
    inbox = client.get(reverse("messaging:team_inbox"), {"kind": "reschedule"}).content.decode()
    assert conversation.subject in inbox and "Demande de changement de rendez-vous" in inbox
    # The team moves it from the conversation.
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert reverse("agenda:edit", args=[appointment.pk]) in page and appointment.with_whom in page


# --- The patient's calendar ----------------------------------------------------------------


def test_the_ics_is_plain_unless_the_patient_asks_for_details(client, login, patient, team):
    appointment = AppointmentFactory(patient=patient, team=team, instructions="Venir à jeun.")
    login(patient)
    plain = only_event(parse_ics(client.get(reverse("agenda:ics", args=[appointment.pk]))))
    assert str(plain["SUMMARY"]) == "Rendez-vous – Carnet"
    assert "LOCATION" not in plain and "DESCRIPTION" not in plain
    detailed = only_event(parse_ics(client.get(reverse("agenda:ics", args=[appointment.pk]), {"details": "1"})))
    assert team.name in str(detailed["SUMMARY"]) and str(detailed["LOCATION"]) == appointment.place
    assert "Venir à jeun." in str(detailed["DESCRIPTION"])


def test_the_ics_downloaded_in_english_is_named_and_titled_in_english(client, login, patient, team):
    appointment = AppointmentFactory(patient=patient, team=team)
    login(patient)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.get(reverse("agenda:ics", args=[appointment.pk]))
    assert f'filename="appointment-{appointment.local_start:%Y-%m-%d}.ics"' in response["Content-Disposition"]
    assert str(only_event(parse_ics(response))["SUMMARY"]) == "Appointment – Carnet"


def test_the_private_feed_shows_the_address_once_needs_no_login_and_can_be_revoked(client, login, patient, team):
    AppointmentFactory(patient=patient, team=team, instructions="Venir à jeun.")
    AppointmentFactory(patient=patient, team=team).delete()
    other = AppointmentFactory(team=team, with_whom="Dr Autre")
    login(patient)
    page = reverse("agenda:feed_settings")
    client.post(page, {"action": "issue"})
    shown = client.get(page).content.decode()
    address = shown.split('id="feed-url" type="text" readonly value="')[1].split('"')[0]
    token = address.rsplit("/", 1)[1].removesuffix(".ics")
    assert token not in client.get(page).content.decode(), "shown once"
    feed = patient.calendar_feed
    assert feed.token_hash == services.token_hash(token) and token not in feed.token_hash
    client.logout()
    with reads_at_most(3):  # the feed, the appointments, the use noted
        response = client.get(address.removeprefix("http://localhost:8000"))
    assert response.status_code == 200 and "sessionid" not in response.cookies
    body = response.content.decode()
    assert body.count("BEGIN:VEVENT") == 1 and "Rendez-vous – Carnet" in body and "BEGIN:VTIMEZONE" in body
    for detail in ("jeun", "Lilas", "Martin", team.name, other.with_whom):
        assert detail not in body
    # Opting in shows the details; a new address kills the old one; revoking kills all.
    login(patient)
    client.post(page, {"action": "details", "show_details": "on"})
    client.logout()
    assert "Venir à jeun." in client.get(f"/calendar/{token}.ics").content.decode().replace("\r\n ", "")
    login(patient)
    client.post(page, {"action": "issue", "show_details": "on"})
    client.logout()
    assert client.get(f"/calendar/{token}.ics").status_code == 404
    login(patient)
    client.post(page, {"action": "revoke"})
    assert not type(feed).objects.exists()


def test_a_wrong_token_gets_the_plain_404_and_reads_nothing(client, patient):
    services.issue_feed_token(patient=patient)
    with reads_at_most(1):
        response = client.get("/calendar/" + "A" * 43 + ".ics")
    assert response.status_code == 404 and b"BEGIN:VCALENDAR" not in response.content
    assert client.get("/calendar/short.ics").status_code == 404


def test_a_deactivated_account_s_feed_stops(client, patient):
    token = services.issue_feed_token(patient=patient)
    patient.user.is_active = False
    patient.user.save(update_fields=["is_active"])
    assert client.get(f"/calendar/{token}.ics").status_code == 404


# --- The team's agenda ---------------------------------------------------------------------


def test_the_day_view_follows_paris_days_on_a_25_hour_day(client, login, clinician, patient, team, other_team):
    day = [
        AppointmentFactory(patient=patient, team=team, starts_at=paris(2026, 10, 25, 0, 30), with_whom="Tôt"),
        AppointmentFactory(patient=patient, team=team, starts_at=paris(2026, 10, 25, 23, 30), with_whom="Tard"),
    ]
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2026, 10, 26, 0, 15), with_whom="Lendemain")
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2026, 10, 24, 23, 45), with_whom="Veille")
    CareLinkFactory(patient=patient, team=other_team)
    AppointmentFactory(patient=patient, team=other_team, starts_at=paris(2026, 10, 25, 12, 0), with_whom="Ailleurs")
    login(clinician)
    page = client.get(reverse("agenda:team_day"), {"team": team.pk, "day": "2026-10-25"}).content.decode()
    assert "Tôt" in page and "Tard" in page and "00:30–01:00" in page and "23:30–00:00" in page
    for absent in ("Lendemain", "Veille", "Ailleurs"):
        assert absent not in page
    assert "css/print.css" in page and 'media="print"' in page and 'class="table-stack"' in page
    logged = AccessLog.objects.filter(actor=clinician, action=AccessLog.Action.LIST_AGENDA)
    assert logged.count() == 2 and {row.team_id for row in logged} == {team.pk}
    assert {row.target for row in logged} == {f"{a.local_start:%d/%m/%Y %H:%M}" for a in day}


def test_the_week_view_runs_monday_to_sunday(client, login, clinician, patient, team):
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2027, 3, 22, 8, 0), with_whom="Lundi")
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2027, 3, 28, 23, 0), with_whom="Dimanche")
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2027, 3, 29, 0, 0), with_whom="Suivant")
    AppointmentFactory(patient=patient, team=team, starts_at=paris(2027, 3, 21, 23, 59), with_whom="Précédent")
    login(clinician)
    page = client.get(reverse("agenda:team_week"), {"team": team.pk, "day": "2027-03-25"}).content.decode()
    assert "Lundi" in page and "Dimanche" in page and "Suivant" not in page and "Précédent" not in page
    assert page.count('class="agenda-day"') == 7 and "lundi 22 mars 2027" in page and "dimanche 28 mars 2027" in page


def test_a_day_without_appointments_says_so(client, login, clinician, team):
    login(clinician)
    page = client.get(reverse("agenda:team_day"), {"team": team.pk, "day": "2026-10-25"}).content.decode()
    assert "Aucun rendez-vous. Heures de Paris." in page and "0 rendez-vous" not in page


def test_another_team_s_agenda_is_not_reachable(client, login, clinician, other_team, other_patient):
    AppointmentFactory(patient=other_patient, team=other_team, with_whom="Secret")
    login(clinician)
    page = client.get(reverse("agenda:team_day"), {"team": other_team.pk}).content.decode()
    assert "Secret" not in page and other_team.name not in page


# --- The team's notice period, set by a manager ---------------------------------------------


def test_only_a_manager_changes_the_notice(client, login, clinician, team, other_team):
    url = reverse("careteams:team_settings", args=[team.pk])
    login(clinician)
    assert "24 heures" in client.get(url).content.decode()
    assert client.post(url, {"cancellation_notice_hours": "2", "reply_days": ""}).status_code == 404
    manager = ClinicianFactory()
    manager.memberships.create(team=team, is_manager=True)
    login(manager)
    client.post(url, {"cancellation_notice_hours": "72", "reply_days": "3"})
    team.refresh_from_db()
    assert (team.cancellation_notice_hours, team.reply_days) == (72, 3)
    assert client.get(reverse("careteams:team_settings", args=[other_team.pk])).status_code == 404
    assert client.get(reverse("careteams:team_settings", args=[CareTeamFactory().pk])).status_code == 404


@pytest.mark.parametrize(
    ("time", "other_team", "booked"),
    [("10:00", False, False), ("10:20", False, False), ("09:40", False, False), ("10:30", False, True),
     ("09:30", False, True), ("10:00", True, True)],
)  # fmt: skip
def test_the_same_patient_is_not_booked_twice_at_once_with_one_team(
    client, login, clinician, patient, team, time, other_team, booked
):
    """10:00-10:30 booked: an overlapping time with the same team is refused next to the
    time, saying when; back to back, or with another team (which the clinician is not told
    of), it is booked. A change of the booked one to its own time is no clash."""
    from tests.factories import CareLinkFactory, CareTeamFactory

    login(clinician)
    client.post(reverse("agenda:book", args=[patient.pk]), booking(team, SOON.isoformat()))
    first = Appointment.objects.get()
    second_team = team
    if other_team:
        second_team = CareTeamFactory(name="Centre d'imagerie")
        CareLinkFactory(patient=patient, team=second_team)
        clinician.memberships.create(team=second_team)
    response = client.post(reverse("agenda:book", args=[patient.pk]), booking(second_team, SOON.isoformat(), time=time))
    assert Appointment.objects.count() == (2 if booked else 1)
    if not booked:
        assert (
            f"Le patient a déjà un rendez-vous avec cette équipe le {SOON:%d/%m/%Y} de 10:00 à 10:30."
            in response.content.decode()
        )
    changed = client.post(reverse("agenda:edit", args=[first.pk]), booking(team, SOON.isoformat(), time="10:00"))
    assert changed.status_code == 302


def test_only_the_holder_makes_their_calendar_address_a_minors_confidential_visit_stays_from_the_parent(
    client, login, clinician, team, minor, parent
):
    """Arthur, a minor with his own login, has a confidential appointment. His parent, in his
    record, neither sees the calendar link nor may make (or replace) the address: it would
    carry the confidential visit to them. Arthur's own address carries it, to him. His parent's
    reads of the cancel and reschedule pages are logged."""
    from portal.audit.models import AccessLog
    from tests.conftest import switch
    from tests.factories import UserFactory

    minor.user = UserFactory(first_name="Léa", last_name="Durand")
    minor.save(update_fields=["user"])
    secret = AppointmentFactory(patient=minor, team=team, place="Centre de planification", confidential=True)
    shown = AppointmentFactory(
        patient=minor, team=team, starts_at=secret.starts_at + datetime.timedelta(days=1), place="Cabinet"
    )
    page = reverse("agenda:feed_settings")
    login(parent)
    switch(client, minor)
    assert page not in client.get(reverse("agenda:mine")).content.decode()
    assert client.get(page).status_code == 404
    assert client.post(page, {"action": "issue", "show_details": "on"}).status_code == 404
    assert not minor.__class__.objects.filter(pk=minor.pk, calendar_feed__isnull=False).exists()
    for name in ("agenda:patient_cancel", "agenda:reschedule"):
        before = AccessLog.objects.filter(patient=minor, actor=parent.user).count()
        assert client.get(reverse(name, args=[shown.pk])).status_code == 200
        assert AccessLog.objects.filter(patient=minor, actor=parent.user).count() == before + 1, name
    login(minor.user)
    assert page in client.get(reverse("agenda:mine")).content.decode()
    client.post(page, {"action": "issue", "show_details": "on"})
    address = client.get(page).content.decode().split('id="feed-url" type="text" readonly value="')[1].split('"')[0]
    client.logout()
    body = client.get(address.removeprefix("http://localhost:8000")).content.decode().replace("\r\n ", "")
    assert "Centre de planification" in body and "Cabinet" in body


@pytest.mark.parametrize(("link", "error"), [("", "Indiquez le lien"), ("pas un lien", "Saisissez une URL valide")])
def test_a_missing_or_wrong_video_link_says_one_thing(client, login, clinician, patient, team, link, error):
    login(clinician)
    response = client.post(
        reverse("agenda:book", args=[patient.pk]),
        booking(team, SOON.isoformat(), mode="video", place="", video_url=link),
    )
    errors = response.context["form"].errors["video_url"]
    assert len(errors) == 1 and error in errors[0]


def test_an_appointment_is_booked_at_most_two_years_ahead(client, login, clinician, patient, team):
    login(clinician)
    far = (datetime.date.today() + datetime.timedelta(days=3 * 365)).isoformat()
    response = client.post(reverse("agenda:book", args=[patient.pk]), booking(team, far))
    assert response.context["form"].errors["day"] == ["Un rendez-vous se prend au plus deux ans à l’avance."]
    assert not Appointment.objects.exists()


def test_a_scheduled_appointment_whose_end_has_passed_says_so(client, login, clinician, patient, team):
    """« Prévu » until it ends, then « Passé », for the patient and for the care team."""
    with time_machine.travel(paris(2026, 10, 24, 9, 0), tick=False):
        login(clinician)
        client.post(reverse("agenda:book", args=[patient.pk]), booking(team, "2026-10-26"))
        login(patient)
        assert "Prévu" in client.get(reverse("agenda:mine")).content.decode()
    with time_machine.travel(paris(2026, 10, 26, 12, 0), tick=False):
        login(patient)
        page = client.get(reverse("agenda:mine")).content.decode()
        assert "Passé" in page and "Prévu" not in page
        login(clinician)
        page = client.get(reverse("agenda:team_day") + "?day=2026-10-26").content.decode()
        assert "Passé" in page and "Prévu" not in page


def test_a_professional_already_with_another_patient_is_said_before_booking(
    client, login, clinician, patient, other_patient, team
):
    """Dr Martin sees Camille at 10:00-10:30: booking him with another patient at 10:15 says
    so (without naming her) and books only once « quand même » is ticked; another
    professional of the team at the same time is booked at once."""
    CareLinkFactory(patient=other_patient, team=team)
    login(clinician)
    day = SOON.isoformat()
    assert client.post(reverse("agenda:book", args=[patient.pk]), booking(team, day)).status_code == 302
    url = reverse("agenda:book", args=[other_patient.pk])
    warned = client.post(url, booking(team, day, time="10:15", with_whom="dr  MARTIN"))
    page = warned.content.decode()
    assert warned.status_code == 200 and Appointment.objects.count() == 1
    assert "Dr Martin voit déjà un autre patient le" in page and "de 10:00 à 10:30" in page
    assert patient.full_name not in page and 'name="busy_ok"' in page
    booked = client.post(url, booking(team, day, time="10:15", with_whom="dr  MARTIN", busy_ok="on"))
    assert booked.status_code == 302, booked.context["form"].errors
    assert Appointment.objects.count() == 2
    third = CareLinkFactory(team=team).patient
    other = client.post(
        reverse("agenda:book", args=[third.pk]), booking(team, day, time="10:15", with_whom="L’infirmière")
    )
    assert other.status_code == 302 and Appointment.objects.count() == 3

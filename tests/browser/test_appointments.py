"""A clinician books an appointment from the patient's record; the patient finds it in
their appointments and downloads the .ics file, which a calendar reads at the time
booked, in Europe/Paris."""

import datetime
import zoneinfo

import icalendar
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_books_and_the_patient_downloads_the_ics(page, clinician, patient, team):
    # Ten days ahead: the .ics must say the wall-clock time booked, in that day's Paris offset.
    day = timezone.localdate() + datetime.timedelta(days=10)
    sign_in(page, clinician)
    page.get_by_role("link", name="DURAND Camille").click()
    page.get_by_role("link", name="Prendre un rendez-vous").click()
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Heure").fill("09:45")
    page.get_by_label("Durée (minutes)").fill("20")
    page.get_by_label("Sur place").check()
    page.get_by_label("Lieu").fill("12 rue des Lilas, salle 2")
    page.get_by_label("Avec qui").fill("Dr Claire Martin")
    page.get_by_label("Consignes de préparation").fill("Venir à jeun.")
    page.get_by_role("button", name="Prendre le rendez-vous").click()
    expect(page.get_by_text("Le rendez-vous est pris ; le patient est prévenu.")).to_be_visible()
    expect(page.get_by_role("cell", name="Dr Claire Martin")).to_be_visible()
    sign_out(page)

    sign_in(page, patient.user)
    page.get_by_role("link", name="Mes rendez-vous").first.click()
    expect(page.get_by_role("heading", name="Mes rendez-vous")).to_be_visible()
    expect(page.get_by_text("Venir à jeun.")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Avec les détails").click()
    download = download_info.value
    assert download.suggested_filename == f"rendez-vous-{day.isoformat()}.ics"
    calendar = icalendar.Calendar.from_ical(download.path().read_bytes())

    (zone,) = calendar.walk("VTIMEZONE")
    assert zone["TZID"] == "Europe/Paris"
    (event,) = calendar.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    start = event.decoded("DTSTART")
    assert (start.date(), start.strftime("%H:%M")) == (day, "09:45")
    assert event.decoded("DTEND") - start == datetime.timedelta(minutes=20)
    paris = datetime.datetime.combine(day, datetime.time(9, 45), tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert start.astimezone(datetime.UTC) == paris.astimezone(datetime.UTC)
    assert str(event["LOCATION"]) == "12 rue des Lilas, salle 2"
    assert "Venir à jeun." in str(event["DESCRIPTION"])

"""Appointments of a record one acts for: part of looking after it. A parent sees and
manages their minor's appointments (logged « pour Léa »); a trusted helper, whatever the
parts they were given, does not; booking tells the parent, never the helper."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from agenda.models import Appointment
from portal.accounts.models import Representation
from portal.audit.models import AccessLog
from records.models import Digest
from tests.agenda.test_appointments import booking
from tests.conftest import switch
from tests.factories import AppointmentFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()


@pytest.fixture
def helper(patient):
    paul = UserFactory(first_name="Paul", last_name="Aidant", email="paul.aidant@example.org")
    Representation.objects.create(
        patient=patient, representative=paul, kind="helper", documents=True, results=True, prescriptions=True,
        messages=True, ends_at=timezone.now() + datetime.timedelta(days=60),
    )  # fmt: skip
    return paul


def test_a_parent_sees_and_downloads_the_childs_appointment_and_it_is_logged(client, login, parent, minor, team):
    appointment = AppointmentFactory(patient=minor, team=team)
    login(parent)
    switch(client, minor)

    page = client.get(reverse("agenda:mine"))
    assert page.status_code == 200 and f"appointment-{appointment.pk}" in page.content.decode()
    assert client.get(reverse("agenda:ics", args=[appointment.pk])).status_code == 200
    actions = set(AccessLog.objects.filter(patient=minor, actor=parent.user).values_list("action", "actor_role"))
    assert actions == {("view_appointments", "parent")}

    switch(client, parent)  # back in her own record: the minor's appointment is not on this page
    assert client.get(reverse("agenda:ics", args=[appointment.pk])).status_code == 404


def test_a_helper_is_not_given_the_appointments(client, login, helper, patient, team):
    appointment = AppointmentFactory(patient=patient, team=team)
    login(helper)
    switch(client, patient)

    assert client.get(reverse("agenda:mine")).status_code == 404
    assert client.get(reverse("agenda:ics", args=[appointment.pk])).status_code == 404
    assert client.get(reverse("agenda:patient_cancel", args=[appointment.pk])).status_code == 404
    assert Appointment.objects.get(pk=appointment.pk).status == Appointment.Status.SCHEDULED


def test_booking_tells_the_parent_and_not_the_helper(client, login, clinician, parent, minor, helper, patient, team):
    login(clinician)
    for who, time in ((minor, "10:00"), (patient, "11:00")):  # Dr Martin sees one patient at a time
        client.post(
            reverse("agenda:book", args=[who.pk]),
            booking(team, (TODAY + datetime.timedelta(days=9)).isoformat(), time=time),
        )
    assert Appointment.objects.count() == 2
    assert Digest.objects.filter(user=parent.user).exists()
    assert not Digest.objects.filter(user=helper).exists()


def test_a_confidential_appointment_never_reaches_the_parents(client, login, clinician, parent, minor, team):
    """A minor's confidential care: the parent neither sees the appointment (page, .ics,
    dashboard), nor is told of its booking, nor is reminded of it; the team sees it."""
    import time_machine

    from reminders import services as reminders
    from reminders.models import Reminder

    login(clinician)
    day = TODAY + datetime.timedelta(days=9)
    client.post(reverse("agenda:book", args=[minor.pk]), booking(team, day.isoformat(), confidential="on"))
    appointment = Appointment.objects.get()
    assert appointment.confidential
    assert not Digest.objects.filter(user=parent.user).exists()

    login(parent)
    switch(client, minor)
    assert f"appointment-{appointment.pk}" not in client.get(reverse("agenda:mine")).content.decode()
    assert client.get(reverse("agenda:ics", args=[appointment.pk])).status_code == 404
    assert "appointment-" not in client.get(reverse("patient_home")).content.decode()

    eve = timezone.localtime(appointment.starts_at).replace(hour=19, minute=0) - datetime.timedelta(days=1)
    with time_machine.travel(eve, tick=False):
        reminders.scan_reminders(now=timezone.now())
    assert not Reminder.objects.filter(user=parent.user).exists()

    appointment.confidential = False  # lifted: the parent sees it again, and is reminded of it
    appointment.save(update_fields=["confidential"])
    assert f"appointment-{appointment.pk}" in client.get(reverse("agenda:mine")).content.decode()
    with time_machine.travel(eve + datetime.timedelta(minutes=5), tick=False):
        reminders.scan_reminders(now=timezone.now())
    assert Reminder.objects.filter(user=parent.user).exists()

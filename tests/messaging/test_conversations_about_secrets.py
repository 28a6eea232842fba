"""A conversation about a confidential item is confidential too: a minor asking to move a
confidential visit, or to renew a confidential prescription, is not read by her parents,
whether the item was confidential at the time or made so afterwards."""

import datetime

import pytest
from django.urls import reverse

from agenda import services as agenda
from messaging.models import Conversation
from records import services as records
from records.models import Prescription
from tests.conftest import switch
from tests.factories import AppointmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def minor_with_login(minor):
    minor.user = UserFactory(first_name="Léa", last_name="Durand")
    minor.save(update_fields=["user"])
    return minor


def parent_reads(client, login, parent, minor):
    login(parent)
    switch(client, minor)
    return (
        client.get(reverse("messaging:inbox")).content.decode() + client.get(reverse("patient_home")).content.decode()
    )


@pytest.mark.parametrize("secret", [True, False])
def test_a_request_to_move_a_confidential_visit_stays_from_the_parent(
    client, login, team, minor_with_login, parent, secret
):
    appointment = AppointmentFactory(patient=minor_with_login, team=team, confidential=secret)
    conversation, _ = agenda.request_reschedule(
        user=minor_with_login.user, appointment=appointment, message="Je ne peux pas ce jour-là, SECRET-MSG"
    )
    assert conversation.confidential == secret
    assert ("Déplacer mon rendez-vous" in parent_reads(client, login, parent, minor_with_login)) != secret


def test_a_renewal_request_of_a_confidential_prescription_stays_from_the_parent(
    client, login, clinician, team, minor_with_login, parent
):
    pill = Prescription.objects.create(
        patient=minor_with_login, medication="Pilule", dosage="1", frequency="1/j", renewable=True,
        start_date=datetime.date.today() - datetime.timedelta(days=20), prescriber=clinician, team=team,
        confidential=True,
    )  # fmt: skip
    conversation, _ = records.request_renewal(user=minor_with_login.user, prescription=pill)
    assert conversation.confidential
    assert "Pilule" not in parent_reads(client, login, parent, minor_with_login)


def test_an_item_made_confidential_afterwards_takes_its_conversations_along(
    client, login, clinician, team, minor_with_login, parent
):
    appointment = AppointmentFactory(patient=minor_with_login, team=team)
    moving, _ = agenda.request_reschedule(user=minor_with_login.user, appointment=appointment, message="Possible ?")
    pill = Prescription.objects.create(
        patient=minor_with_login, medication="Pilule", dosage="1", frequency="1/j", renewable=True,
        start_date=datetime.date.today() - datetime.timedelta(days=20), prescriber=clinician, team=team,
    )  # fmt: skip
    renewal, _ = records.request_renewal(user=minor_with_login.user, prescription=pill)
    assert not moving.confidential and not renewal.confidential
    records.set_confidential(item=pill, confidential=True)
    agenda.change_appointment(
        by=clinician, appointment=appointment, starts_at=appointment.starts_at,
        duration_minutes=appointment.duration_minutes, confidential=True,
    )  # fmt: skip
    assert set(Conversation.objects.values_list("confidential", flat=True)) == {True}
    page = parent_reads(client, login, parent, minor_with_login)
    assert "Pilule" not in page and "Déplacer mon rendez-vous" not in page

"""Support registers a patient for a care team (or links the existing record), with a
reason, audited; duplicates are refused as for clinicians."""

import uuid

import pytest
from django.urls import reverse

from portal.accounts.models import Patient
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink
from portal.support.models import SupportAction
from tests.factories import PatientFactory
from tests.portal.test_registration import INS, form_data

pytestmark = pytest.mark.django_db


def support_data(team, **changes):
    return form_data(team, reason="Demande du cabinet par téléphone", request_key=str(uuid.uuid4())) | changes


@pytest.mark.parametrize(
    ("who", "status"),
    [("patient", 404), ("clinician", 404), ("other_clinician", 404), ("support", 200), (None, 302)],
)
def test_only_support_reaches_the_registration_page(request, client, login, who, status):
    if who:
        login(request.getfixturevalue(who))
    assert client.get(reverse("support:register_patient")).status_code == status


def test_support_registers_a_patient_with_a_reason_in_the_trail(client, login, support, team):
    login(support)
    response = client.post(reverse("support:register_patient"), support_data(team))
    assert response.status_code == 302
    patient = Patient.objects.get(ins=INS)
    assert CareLink.objects.get(patient=patient).team == team
    row = SupportAction.objects.get()
    assert (row.agent, row.patient, row.action, row.detail) == (support, patient, "register_patient", team.name)
    assert row.reason == "Demande du cabinet par téléphone"
    # The patient's history shows a support action, without the reason.
    assert AccessLog.objects.filter(patient=patient, action="account_action", actor=support).exists()


def test_support_needs_a_reason(client, login, support, team):
    login(support)
    response = client.post(reverse("support:register_patient"), support_data(team, reason=" "))
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not Patient.objects.exists()


def test_support_is_offered_the_existing_record_and_links_it(client, login, support, team):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    login(support)
    data = support_data(team)
    response = client.post(reverse("support:register_patient"), data)
    assert response.status_code == 200
    assert response.context["candidates"] == [existing]
    assert not SupportAction.objects.exists()
    client.post(reverse("support:register_patient"), data | {"link": existing.pk})
    assert CareLink.objects.get(patient=existing).team == team
    assert SupportAction.objects.get().action == "link_patient"
    # The same confirmation sent again acts once.
    client.post(reverse("support:register_patient"), data | {"link": existing.pk})
    assert SupportAction.objects.count() == 1
    assert Patient.objects.count() == 1


def test_support_opening_a_persons_pages_shows_in_their_access_history(client, login, support, patient, other_patient):
    """The account, the representatives and the merge pages show an identity: each opening
    is in that person's history, as support's; nothing medical was read."""
    from django.urls import reverse as url_of

    login(support)
    for url in (
        url_of("support:account", args=[patient.user_id]),
        url_of("support:representations", args=[patient.pk]),
        url_of("support:merge_patient", args=[patient.pk]),
    ):
        assert client.get(url).status_code == 200, url
    rows = AccessLog.objects.filter(patient=patient)
    assert [(row.action, row.actor_role) for row in rows] == [("support_view", "support")] * 3
    assert not AccessLog.objects.filter(patient=other_patient).exists()
    login(patient)
    page = client.get(url_of("records:access_history")).content.decode()
    assert "Le support a consulté l’identité et le compte" in page

"""A patient who blocks every professional of a care team leaves nobody there to read
them: they are told when they block, the team is not offered for a new conversation,
a reply or a renewal request is refused with the reason, and unblocking one
professional brings it all back."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from messaging.models import Conversation, Message
from records.models import Prescription

pytestmark = pytest.mark.django_db


def notices(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_blocking_a_teams_last_professional_leaves_nobody_to_write_to(client, login, patient, clinician, team):
    conversation = Conversation.objects.create(patient=patient, team=team, subject="ECG", started_by=patient.user)
    Message.objects.create(conversation=conversation, author=patient.user, body="Bonjour")
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date.today(),
        prescriber=clinician, team=team, renewable=True,
    )  # fmt: skip
    login(patient)
    block = reverse("records:block_clinician", args=[clinician.pk])
    response = client.post(block, {"blocked": "1"})
    assert any(
        f"Plus personne dans l’équipe «\u00a0{team.name}\u00a0»" in text and "ni voir vos rendez-vous" in text
        for text in notices(response)
    )

    teams_page = client.get(reverse("records:care_teams")).content.decode()  # said again on every visit
    assert "Plus personne dans cette équipe ne peut lire vos messages" in teams_page
    prescriptions = client.get(reverse("records:prescriptions")).content.decode()
    assert "Pas de renouvellement possible" in prescriptions
    assert reverse("records:request_renewal", args=[prescription.pk]) not in prescriptions

    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert "Personne dans cette équipe de soins ne peut lire vos messages" in page and 'name="body"' not in page
    assert "Réponse impossible</h2>" in page and ">Répondre</h2>" not in page  # no heading offering a reply
    reply = client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Vous êtes là ?"})
    assert reply.status_code == 200 and conversation.messages.count() == 1
    new_form = client.get(reverse("messaging:new")).content.decode()
    assert f'value="{team.pk}"' not in new_form
    renewal = client.post(reverse("records:request_renewal", args=[prescription.pk]))
    assert any("ne peut lire une demande de renouvellement" in text for text in notices(renewal))
    assert not Conversation.objects.filter(kind=Conversation.Kind.RENEWAL).exists()

    client.post(block, {"blocked": "0"})
    assert ">Répondre</h2>" in client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert f'value="{team.pk}"' in client.get(reverse("messaging:new")).content.decode()
    assert "Plus personne" not in client.get(reverse("records:care_teams")).content.decode()
    assert (
        reverse("records:request_renewal", args=[prescription.pk])
        in client.get(reverse("records:prescriptions")).content.decode()
    )
    client.post(reverse("records:request_renewal", args=[prescription.pk]))
    assert Conversation.objects.filter(kind=Conversation.Kind.RENEWAL, team=team).exists()


def test_blocking_one_of_several_professionals_says_nothing_more(client, login, patient, clinician, team):
    from tests.factories import ClinicianFactory

    ClinicianFactory(teams=[team])
    login(patient)
    response = client.post(reverse("records:block_clinician", args=[clinician.pk]), {"blocked": "1"})
    assert not any("Plus personne" in text for text in notices(response))
    assert f'value="{team.pk}"' in client.get(reverse("messaging:new")).content.decode()


def test_a_change_request_is_not_sent_to_a_team_nobody_can_read_at(client, login, patient, clinician, team):
    """Every way of writing to a team ends in ``messaging.services.send_message``, which
    refuses when nobody there can read: an appointment's change request too."""
    from portal.careteams.models import ClinicianBlock
    from tests.factories import AppointmentFactory

    appointment = AppointmentFactory(patient=patient, team=team)
    ClinicianBlock.objects.create(patient=patient, clinician=clinician)
    login(patient)
    url = reverse("agenda:reschedule", args=[appointment.pk])
    mine = client.get(reverse("agenda:mine")).content.decode()  # not offered: said why instead
    assert url not in mine and "Pas de demande de déplacement possible\u00a0:" in mine
    form = client.get(url).content.decode()
    assert "Pas de demande possible\u00a0:" in form and 'name="message"' not in form
    # Sent anyway (blocked after the form was opened): refused with the reason, the text kept.
    response = client.post(url, {"message": "Plutôt jeudi ?"})
    page = response.content.decode()
    assert response.status_code == 200 and "Personne dans cette équipe de soins ne peut lire vos messages" in page
    assert "Plutôt jeudi ?</textarea>" in page
    assert not Conversation.objects.exists()
    ClinicianBlock.objects.all().delete()
    assert url in client.get(reverse("agenda:mine")).content.decode()


def test_a_confidential_conversation_nobody_could_read_is_refused(client, login, clinician, team, minor, parent):
    """Léa has no login and a confidential conversation is kept from her parents: nobody
    would read it. The care team is told so; nothing is sent."""
    login(clinician)
    data = {"team": team.pk, "kind": "question", "subject": "Contraception", "body": "Bonjour", "confidential": "on"}
    response = client.post(reverse("messaging:team_new", args=[minor.pk]), data)
    assert response.status_code == 200 and not Conversation.objects.exists()
    assert "Personne ne pourrait lire cette conversation : Léa Durand n’a pas d’accès à Carnet" in (
        response.content.decode()
    )
    del data["confidential"]  # not confidential: the parents read it
    assert client.post(reverse("messaging:team_new", args=[minor.pk]), data).status_code == 302
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize("link", ["active", "ended", "blocked"])
@pytest.mark.parametrize(
    "members",
    [(), ("reader",), ("inactive",), ("blocked",), ("blocked", "reader"), ("blocked", "inactive"), ("other role",)],
)
def test_the_conversation_page_says_whether_the_patient_may_write_as_the_rule_does(
    client, login, patient, team, link, members
):
    """The conversation's page reads, with the conversation, whether the patient's side
    may write to its team (access._patients_conversation's ``written_to``): the same
    answer as ``patient_can_write_to`` over the link's states and the team's members
    (none, a reader, an inactive one, one the patient blocked, a non-clinician)."""
    from portal import access
    from portal.careteams.models import ClinicianBlock, Membership
    from tests.factories import ClinicianFactory, UserFactory

    Membership.objects.filter(team=team).delete()
    for kind in members:
        member = UserFactory(role="support") if kind == "other role" else ClinicianFactory(teams=[])
        Membership.objects.create(team=team, user=member)
        if kind == "inactive":
            member.is_active = False
            member.save()
        if kind == "blocked":
            ClinicianBlock.objects.create(patient=patient, clinician=member)
    patient.care_links.update(status=link)
    conversation = Conversation.objects.create(patient=patient, team=team, subject="ECG", started_by=patient.user)
    login(patient)
    response = client.get(reverse("messaging:conversation", args=[conversation.pk]))
    # Someone reads it, or the team has no active professional yet (its messages wait for them).
    expected = link == "active" and ("reader" in members or "blocked" not in members)
    assert access.patient_can_write_to(patient, team.pk) is expected
    assert response.context["can_write"] is expected

"""Representation through the real pages: the switcher, the parts a representative may
reach, confidential items, the access log (« Marie Durand, pour Léa Durand »), messages
and content-free notifications, the helper's invitation, the support console, the care
team adding a parent, and the coming of age with a moved clock."""

import datetime
import itertools
import re
import uuid

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging import services as messaging
from messaging.models import Conversation, Notification
from portal.accounts.models import Invitation, Patient, Representation
from portal.audit.models import AccessLog
from portal.representation import services as representation
from portal.support.models import SupportAction
from records import services as records
from records.models import Digest, Measurement, Observation
from tests.conftest import switch
from tests.factories import PatientFactory, UserFactory
from tests.records.conftest import PNG

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()


@pytest.fixture
def helper_user(patient):
    """Paul, who has an account but no record, helps Camille with her documents only."""
    paul = UserFactory(first_name="Paul", last_name="Aidant", email="paul@example.org")
    Representation.objects.create(
        patient=patient, representative=paul, kind="helper", documents=True, results=False, prescriptions=False,
        messages=False, ends_at=timezone.now() + datetime.timedelta(days=60),
    )  # fmt: skip
    return paul


def publish(clinician, patient, team, title, *, confidential=False):
    return records.upload_document(
        author=clinician, patient=patient, team=team, title=title, category="report", confidential=confidential,
        upload=SimpleUploadedFile("cr.png", PNG, content_type="image/png"), care_date=TODAY,
    )  # fmt: skip


def test_a_parent_switches_between_records_and_every_page_says_whose(client, login, parent, minor):
    login(parent)
    own = client.get(reverse("patient_home")).content.decode()
    assert "Bonjour Marie" in own and "Mon dossier" in own and ">Léa<" in own
    assert switch(client, minor).status_code == 302
    page = client.get(reverse("patient_home")).content.decode()
    assert "<h1>Dossier de Léa Durand</h1>" in page
    # The banner shows whose record it is; the switch's notice is for screen readers only.
    assert page.count("Vous êtes dans le dossier de Léa Durand") == 2
    assert '<p class="message message-visually-hidden info">Vous êtes dans le dossier de Léa Durand.</p>' in page
    assert re.search(r"<title>Dossier de Léa Durand · Léa Durand · Carnet</title>", page)
    assert re.search(rf'value="{minor.pk}"[^>]*aria-current="true"', page)
    # Someone else's record is not "mine": no first person in its headings or its links.
    assert "Qui voit mon dossier" not in page and "Qui voit le dossier" in page
    assert "Exporter mon dossier" not in page
    for route, heading in [("records:documents", "Documents"), ("records:results", "Résultats d’analyses"),
                           ("records:prescriptions", "Ordonnances"), ("records:profile", "Profil médical")]:  # fmt: skip
        text = client.get(reverse(route)).content.decode()
        assert f"<h1>{heading} <span" in text and "— Léa Durand</span></h1>" in text, route
        assert "<title>Mes " not in text and "· Léa Durand · Carnet</title>" in text, route
    switch(client, parent)
    assert "Bonjour Marie" in client.get(reverse("patient_home")).content.decode()
    assert "<h1>Mes documents</h1>" in client.get(reverse("records:documents")).content.decode()


def test_switching_to_a_record_one_does_not_act_for_is_404(client, login, parent, other_patient):
    login(parent)
    assert switch(client, other_patient).status_code == 404
    assert client.post(reverse("representation:switch"), {"record": "x"}).status_code == 404


ROUTES = {
    "documents": "records:documents",
    "results": "records:results",
    "prescriptions": "records:prescriptions",
    "messages": "messaging:inbox",
    "new message": "messaging:new",
    "profile": "records:profile",
    "care teams": "records:care_teams",
    "record history": "records:record_history",
    "exports": "exports:page",
    "access history": "records:access_history",
    "helpers": "representation:helpers",
}
# What each kind reaches: the helper was given documents only; the access history and
# the choice of helpers stay the holder's own.
REACHES = {
    "parent": set(ROUTES) - {"access history", "helpers"},
    "helper": {"documents"},
    "holder": set(ROUTES),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("who", REACHES)
def test_each_page_serves_only_the_parts_one_acts_on(client, login, parent, minor, helper_user, patient, who, route):
    if who == "parent":
        login(parent)
        switch(client, minor)
    elif who == "helper":
        login(helper_user)
    else:
        login(patient)
    status = client.get(reverse(ROUTES[route])).status_code
    assert status == (200 if route in REACHES[who] else 404), (who, route)


def test_a_confidential_item_never_reaches_the_parent(client, login, clinician, team, parent, minor):
    secret = publish(clinician, minor, team, "Consultation confidentielle", confidential=True)
    shown = publish(clinician, minor, team, "Vaccins à jour")
    login(parent)
    switch(client, minor)
    listing = client.get(reverse("records:documents")).content.decode()
    assert "Vaccins à jour" in listing and "Consultation confidentielle" not in listing
    assert client.get(reverse("records:document", args=[secret.pk])).status_code == 404
    assert client.get(reverse("records:download", args=[secret.pk])).status_code == 404
    home = client.get(reverse("patient_home")).content.decode()
    assert "Consultation confidentielle" not in home and "Vaccins à jour" in home
    assert client.get(reverse("records:document", args=[shown.pk])).status_code == 200
    # The care team still sees both; lifting confidentiality gives it back to the parent.
    login(clinician)
    assert (
        "Consultation confidentielle"
        in client.get(reverse("careteams:patient_documents", args=[minor.pk])).content.decode()
    )
    client.post(reverse("records:set_confidential", args=["document", secret.pk]), {"confidential": "0"})
    login(parent)
    switch(client, minor)
    assert client.get(reverse("records:document", args=[secret.pk])).status_code == 200


def test_a_care_team_marks_an_item_confidential_and_the_parent_loses_it(client, login, clinician, team, parent, minor):
    document = publish(clinician, minor, team, "Bilan")
    login(clinician)
    response = client.post(reverse("records:set_confidential", args=["document", document.pk]), {"confidential": "1"})
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.confidential
    login(parent)
    switch(client, minor)
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 404


def test_an_item_of_another_record_than_the_current_one_is_404(client, login, clinician, team, parent, minor):
    document = publish(clinician, minor, team, "Vaccins à jour")
    login(parent)
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 404  # in her own record
    switch(client, minor)
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 200


def test_a_parents_reads_are_logged_for_the_child_as_who_acted_for_whom(client, login, clinician, team, parent, minor):
    document = publish(clinician, minor, team, "Vaccins à jour")
    login(parent)
    switch(client, minor)
    client.get(reverse("records:document", args=[document.pk]))
    row = AccessLog.objects.get(patient=minor, actor=parent.user, action=AccessLog.Action.VIEW_DOCUMENT)
    assert (row.actor_role, row.target, row.role_label) == ("parent", "Vaccins à jour", "Autorité parentale")


def test_the_holder_reads_in_their_history_who_acted_for_them(client, login, clinician, team, patient, helper_user):
    document = publish(clinician, patient, team, "Compte rendu")
    login(helper_user)
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 200
    login(patient)
    history = client.get(reverse("records:access_history")).content.decode()
    assert "Paul Aidant, pour Camille Durand" in history and "Aidant</td>" in history


def test_an_expired_helper_falls_back_and_sees_nothing_with_a_moved_clock(
    client, login, clinician, team, patient, helper_user
):
    document = publish(clinician, patient, team, "Compte rendu")
    login(helper_user)
    assert client.get(reverse("records:document", args=[document.pk])).status_code == 200
    with time_machine.travel(timezone.now() + datetime.timedelta(days=61)):
        login(helper_user)
        assert client.get(reverse("records:document", args=[document.pk])).status_code == 404
        assert client.get(reverse("patient_home")).status_code == 404


def test_an_ended_representation_falls_back_to_ones_own_record(client, login, parent, minor):
    login(parent)
    switch(client, minor)
    representation.end_representation(representation=minor.representations.get(), ended_by=None, reason="test")
    assert "Bonjour Marie" in client.get(reverse("patient_home")).content.decode()


def test_a_message_written_by_a_parent_says_so_to_the_care_team(
    client, login, parent, minor, team, clinician, django_capture_on_commit_callbacks
):
    login(parent)
    switch(client, minor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("messaging:new"), {"team": team.pk, "subject": "Fièvre", "kind": "question", "body": "Léa a 39°"}
        )
    conversation = Conversation.objects.get(patient=minor)
    assert response.status_code == 302 and conversation.started_by == parent.user
    assert Notification.objects.filter(recipient=clinician).exists()
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert "<strong>Vous, pour Léa Durand</strong>" in page
    login(clinician)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert "<strong>Marie Durand, pour Léa Durand</strong>" in page


def test_a_care_team_reply_tells_the_parent_without_content(
    parent, minor, team, clinician, django_capture_on_commit_callbacks, mailoutbox
):
    conversation = Conversation.objects.create(patient=minor, team=team, subject="Vaccins", started_by=clinician)
    secret = Conversation.objects.create(
        patient=minor, team=team, subject="Contraception", started_by=clinician, confidential=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        messaging.send_message(author=clinician, conversation=conversation, body="Rappel le 12")
        messaging.send_message(author=clinician, conversation=secret, body="Rendez-vous confidentiel")
    assert [m.to for m in mailoutbox] == [[parent.user.email]]
    body = mailoutbox[0].body
    assert "Vaccins" not in body and "Léa" not in body and "Rappel" not in body


def test_news_for_the_child_reaches_the_parent_as_a_content_free_digest(
    clinician, team, parent, minor, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(clinician, minor, team, "Consultation confidentielle", confidential=True)
    assert not Digest.objects.filter(user=parent.user).exists()
    with django_capture_on_commit_callbacks(execute=True):
        publish(clinician, minor, team, "Vaccins à jour")
    digest = Digest.objects.get(user=parent.user)
    assert digest.status == Digest.Status.SENT
    body = mailoutbox[-1].body
    assert "Il y a du nouveau dans un dossier pour lequel vous agissez." in body
    assert "Vaccins" not in body and "Léa" not in body and "document" not in body.split("---")[0].lower()


def test_exports_of_the_child_are_the_parents_own_and_logged(client, login, parent, minor, team, clinician):
    login(parent)
    switch(client, minor)
    response = client.post(reverse("exports:page"), {"kind": "summary", "sections": ["identity", "documents"]})
    assert response.status_code == 302
    export = minor.exports.get()
    assert export.requested_by == parent.user
    assert AccessLog.objects.get(patient=minor, action=AccessLog.Action.EXPORT).actor_role == "parent"


# --- Setting it up ---------------------------------------------------------------------


def test_a_care_team_adds_both_parents_from_birth(
    client, login, clinician, minor, parent, mailoutbox, django_capture_on_commit_callbacks
):
    father = PatientFactory(first_name="Jean", last_name="Durand", user__email="jean@example.org")
    login(clinician)
    url = reverse("careteams:add_parent", args=[minor.pk])
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"email": "JEAN@example.org", "proof": "family_book"})
    assert response.status_code == 302
    assert set(minor.representations.values_list("representative__email", "kind")) == {
        (parent.user.email, "parent"),
        ("jean@example.org", "parent"),
    }
    added = minor.representations.get(representative=father.user)
    assert (added.proof, added.created_by) == ("family_book", clinician)
    assert mailoutbox[-1].to == ["jean@example.org"] and "Léa" in mailoutbox[-1].body
    again = client.post(url, {"email": "jean@example.org", "proof": "family_book"})
    assert "Cette personne représente déjà ce patient." in again.content.decode()
    unknown = client.post(url, {"email": "nobody@example.org", "proof": "family_book"})
    assert "Aucun compte Carnet actif" in unknown.content.decode()


def test_a_care_team_cannot_add_a_parent_to_an_adult(client, login, clinician, patient, parent):
    login(clinician)
    response = client.post(
        reverse("careteams:add_parent", args=[patient.pk]), {"email": parent.user.email, "proof": "family_book"}
    )
    assert "L’autorité parentale prend fin à 18 ans" in response.content.decode()
    assert not patient.representations.exists()


def test_a_clinician_of_another_team_cannot_add_a_parent(client, login, other_clinician, minor, parent):
    login(other_clinician)
    assert client.get(reverse("careteams:add_parent", args=[minor.pk])).status_code == 404


def test_support_adds_and_ends_a_representation_audited_and_without_medical_content(
    client, login, support, minor, clinician, team, mailoutbox, django_capture_on_commit_callbacks
):
    publish(clinician, minor, team, "Compte rendu secret")
    mother = PatientFactory(
        first_name="Anne", last_name="Durand", user__first_name="Anne", user__last_name="Durand",
        user__email="anne@example.org",
    )  # fmt: skip
    login(support)
    url = reverse("support:representations", args=[minor.pk])
    page = client.get(url).content.decode()
    assert "Compte rendu secret" not in page
    key = re.search(r'name="request_key" value="([^"]+)"', page).group(1)
    data = {
        "email": "anne@example.org",
        "kind": "parent",
        "proof": "birth_certificate",
        "reason": "Acte vu",
        "request_key": key,
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, data)
        client.post(url, data)  # sent twice: one representation, one audit row
    added = minor.representations.get()
    assert (added.representative, added.proof, added.reason) == (mother.user, "birth_certificate", "Acte vu")
    action = SupportAction.objects.get(action=SupportAction.Action.ADD_REPRESENTATIVE)
    assert (action.patient, action.account, action.reason) == (minor, mother.user, "Acte vu")
    page = client.get(url).content.decode()
    assert "Anne Durand" in page and "Acte de naissance" in page and "Compte rendu secret" not in page
    end_url = reverse("support:end_representation", args=[added.pk])
    key = re.search(r'name="request_key" value="([^"]+)"', client.get(end_url).content.decode()).group(1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(end_url, {"reason": "Décision de justice reçue", "request_key": key})
    added.refresh_from_db()
    assert added.ended_at is not None and added.ended_by == support
    assert (
        SupportAction.objects.get(action=SupportAction.Action.END_REPRESENTATION).reason == "Décision de justice reçue"
    )
    assert [m.to for m in mail.outbox] == [["anne@example.org"]]  # the child has no login to tell


def test_support_ending_tells_both_sides(support, patient, helper_user, mailoutbox, django_capture_on_commit_callbacks):
    from portal.support import services as support_services

    with django_capture_on_commit_callbacks(execute=True):
        support_services.end_representation(
            agent=support, representation=patient.representations.get(), reason="Demande", request_key=uuid.uuid4()
        )
    assert sorted(m.to[0] for m in mailoutbox) == sorted([helper_user.email, patient.user.email])


def test_a_patient_invites_a_helper_who_accepts_with_their_own_account(
    client, login, patient, clinician, team, mailoutbox, django_capture_on_commit_callbacks
):
    paul = UserFactory(first_name="Paul", last_name="Aidant", email="paul@example.org")
    login(patient)
    ends_on = TODAY + datetime.timedelta(days=90)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("representation:helpers"),
            {"email": "paul@example.org", "parts": ["documents", "messages"], "ends_on": ends_on.isoformat()},
        )
    assert response.status_code == 302
    link = re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1)
    assert "Camille" in mailoutbox[-1].body
    # Someone else's account cannot take it.
    login(PatientFactory().user)
    assert client.post(link).status_code == 400
    login(paul)
    assert "Documents" in client.get(link).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(link).status_code == 302
    helper = patient.representations.get(representative=paul)
    assert (helper.kind, helper.parts, timezone.localdate(helper.ends_at)) == (
        "helper", frozenset({"documents", "messages"}), ends_on
    )  # fmt: skip
    assert mailoutbox[-1].to == [patient.user.email]
    assert client.get(reverse("records:documents")).status_code == 200
    assert client.get(reverse("records:results")).status_code == 404
    assert client.get(link).status_code == 404  # used
    # The patient ends it at any time.
    login(patient)
    client.post(reverse("representation:end_helper", args=[helper.pk]))
    again = client.post(reverse("representation:end_helper", args=[helper.pk]), follow=True)  # a second press
    assert "n’agit plus pour votre dossier" in again.content.decode()
    login(paul)
    assert client.get(reverse("records:documents")).status_code == 404
    # Not one's own record's helper: 404, as a helper that never existed.
    assert client.post(reverse("representation:end_helper", args=[helper.pk])).status_code == 404
    assert client.post(reverse("representation:end_helper", args=[helper.pk + 1000])).status_code == 404


def test_a_helper_with_no_carnet_account_makes_one_from_the_link_then_enrols_a_second_factor(
    client, login, patient, mailoutbox, django_capture_on_commit_callbacks
):
    """Sign-up is closed: the invitation's link is the way in. It makes a patient-side
    account with the invited address (verified: the link reached it), accepts, and goes
    to the second factor's enrolment before anything of the record. Someone with an
    account under that address is sent to sign in; the link is then used."""
    from allauth.account.models import EmailAddress

    from portal.accounts.models import User

    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("representation:helpers"),
            {"email": "nadia@exemple.org", "parts": ["documents"],
             "ends_on": (TODAY + datetime.timedelta(days=90)).isoformat()},
        )  # fmt: skip
    link = re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1)
    anonymous = Client()
    page = anonymous.get(link).content.decode()
    assert "Se connecter pour accepter" in page and "Créer mon compte et accepter" in page
    assert "nadia@exemple.org" in page
    refused = anonymous.post(link, {"first_name": "Nadia", "last_name": "Aidante", "password1": "court",
                                    "password2": "court"})  # fmt: skip
    assert refused.status_code == 200 and refused.context["account_form"].errors["password1"]
    strong = "une phrase de passe solide 2026"
    with django_capture_on_commit_callbacks(execute=True):
        made = anonymous.post(link, {"first_name": "Nadia", "last_name": "Aidante", "password1": strong,
                                     "password2": strong})  # fmt: skip
    assert made["Location"] == reverse("accounts:enrol")
    nadia = User.objects.get(email="nadia@exemple.org")
    assert nadia.role == "patient" and EmailAddress.objects.get(user=nadia).verified
    assert patient.representations.get(representative=nadia).parts == frozenset({"documents"})
    # Nothing of the record before the second factor.
    assert anonymous.get(reverse("records:documents"))["Location"].startswith(reverse("accounts:enrol"))
    assert Client().get(link).status_code == 404  # used


def test_an_address_with_an_account_is_sent_to_sign_in_from_the_invitation(
    client, login, patient, mailoutbox, django_capture_on_commit_callbacks
):
    paul = UserFactory(email="paul@exemple.org")
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("representation:helpers"),
            {"email": paul.email, "parts": ["documents"], "ends_on": (TODAY + datetime.timedelta(days=90)).isoformat()},
        )
    link = re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1)
    strong = "une phrase de passe solide 2026"
    answer = Client().post(link, {"first_name": "P", "last_name": "A", "password1": strong, "password2": strong})
    assert "Un compte Carnet utilise déjà cette adresse" in answer.content.decode()
    assert not patient.representations.filter(representative=paul).exists()
    assert f"next={link.replace('/', '%2F')}" in Client().get(link).content.decode()


@pytest.mark.parametrize("days", [10, 400])
def test_a_helper_is_chosen_for_one_month_to_one_year(client, login, patient, days):
    login(patient)
    response = client.post(
        reverse("representation:helpers"),
        {
            "email": "paul@example.org",
            "parts": ["documents"],
            "ends_on": (TODAY + datetime.timedelta(days=days)).isoformat(),
        },
    )
    assert "entre un mois et un an" in response.content.decode()
    assert response.context["form"].errors["ends_on"]  # beside the field, a link in the summary
    assert 'href="#id_ends_on"' in response.content.decode()
    assert not patient.helper_invitations.exists()


def test_one_cannot_be_ones_own_helper(client, login, patient):
    login(patient)
    response = client.post(
        reverse("representation:helpers"),
        {"email": patient.user.email.upper(), "parts": ["documents"],
         "ends_on": (TODAY + datetime.timedelta(days=90)).isoformat()},
    )  # fmt: skip
    assert response.context["form"].errors["email"] == [
        "C’est votre propre adresse : indiquez celle avec laquelle votre aidant se connecte à Carnet."
    ]
    assert not patient.helper_invitations.exists()


def test_a_pending_invitation_is_cancelled_and_its_link_stops(
    client, login, patient, other_patient, mailoutbox, django_capture_on_commit_callbacks
):
    """A mistyped address: the patient takes the invitation back; its link no longer works.
    Another patient cannot cancel it (404)."""
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("representation:helpers"),
            {"email": "paul@exemple.org", "parts": ["documents"],
             "ends_on": (TODAY + datetime.timedelta(days=90)).isoformat()},
        )  # fmt: skip
    invitation = patient.helper_invitations.get()
    link = re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1)
    cancel = reverse("representation:cancel_invitation", args=[invitation.pk])
    assert cancel in client.get(reverse("representation:helpers")).content.decode()
    login(other_patient)
    assert client.post(cancel).status_code == 404
    login(patient)
    assert client.post(cancel).status_code == 302
    invitation.refresh_from_db()
    assert invitation.cancelled_at is not None
    assert cancel not in client.get(reverse("representation:helpers")).content.decode()
    login(UserFactory(email="paul@exemple.org"))
    assert client.get(link).status_code == 404


def test_inviting_the_same_address_again_replaces_the_pending_invitation(
    client, login, patient, mailoutbox, django_capture_on_commit_callbacks
):
    """Two tabs, or the form sent again with other parts: one live link per address,
    the last one chosen."""
    login(patient)
    links = []
    for parts in (["documents"], ["documents", "results"]):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("representation:helpers"),
                {"email": "Paul@Exemple.org", "parts": parts, "ends_on": (TODAY + datetime.timedelta(days=90)).isoformat(),
                 "form_token": str(uuid.uuid4())},
            )  # fmt: skip
        links.append(re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1))
    first, last = patient.helper_invitations.order_by("pk")
    assert first.cancelled_at is not None and last.cancelled_at is None and last.results
    login(UserFactory(email="paul@exemple.org"))
    assert client.get(links[0]).status_code == 404
    assert client.get(links[1]).status_code == 200


def test_a_minor_cannot_invite_a_helper(minor, parent):
    with pytest.raises(representation.RepresentationError):
        representation.invite_helper(
            patient=minor, invited_by=parent.user, email="x@example.org", parts=["documents"],
            ends_on=TODAY + datetime.timedelta(days=60),
        )  # fmt: skip


# --- Coming of age -----------------------------------------------------------------------


def test_at_18_the_parents_representation_ends_by_itself_once(
    team, parent, mailoutbox, django_capture_on_commit_callbacks
):
    birthday = TODAY + datetime.timedelta(days=1)
    teen = Patient.objects.create(
        first_name="Léo", last_name="Durand", birth_date=birthday.replace(year=birthday.year - 18)
    )
    Invitation.objects.create(
        email="leo@example.org", patient=teen, expires_at=timezone.now()
    )  # an address given earlier
    father = PatientFactory(first_name="Jean", last_name="Durand", user__email="jean@example.org")
    for user in (parent.user, father.user):
        Representation.objects.create(patient=teen, representative=user, kind="parent")
    from portal.representation.tasks import end_minorities

    with django_capture_on_commit_callbacks(execute=True):
        assert end_minorities() == 0  # 17 today
    assert mailoutbox == []
    with time_machine.travel(timezone.now() + datetime.timedelta(days=1)):
        with django_capture_on_commit_callbacks(execute=True):
            assert end_minorities() == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert end_minorities() == 0  # the next day's run, or a retry: nothing more
    assert not teen.representations.filter(ended_at__isnull=True).exists()
    assert set(teen.representations.values_list("end_reason", flat=True)) == {"majority"}
    told = sorted(m.to[0] for m in mailoutbox)
    assert told == sorted(["jean@example.org", parent.user.email, "leo@example.org"])
    invitation = teen.invitations.usable().get()
    assert invitation.email == "leo@example.org"
    # Léa, still a minor, keeps her parent.
    assert parent.user.representations.filter(patient__first_name="Léa", ended_at__isnull=True).exists()


def test_the_daily_job_is_scheduled():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["end-minorities"]["task"] == "portal.representation.tasks.end_minorities"


def test_observation_history_of_a_helper_without_results_is_404(client, login, clinician, team, patient, helper_user):
    report = records.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=TODAY,
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": 1, "unit": "g/L"}],
    )  # fmt: skip
    login(helper_user)
    observation = Observation.objects.get(report=report)
    assert client.get(reverse("records:observation_history", args=[observation.pk])).status_code == 404


def test_a_measurements_history_follows_the_record_one_is_in(
    client, login, clinician, team, patient, parent, minor, helper_user
):
    """A parent reads the child's measurement history from the child's record (the read
    logged for the child), not from their own; a helper, who never acts on the profile,
    never; the holder reads their own."""

    def weight(who):
        return Measurement.objects.create(patient=who, author=clinician, team=team, kind="weight", value=30,
                                          measured_on=TODAY)  # fmt: skip

    childs, patients = weight(minor), weight(patient)
    login(parent)
    url = reverse("records:measurement_history", args=[childs.pk])
    assert client.get(url).status_code == 404  # in their own record
    switch(client, minor)
    assert client.get(url).status_code == 200
    assert AccessLog.objects.filter(patient=minor, actor=parent.user, actor_role="parent").exists()
    assert client.get(reverse("records:measurement_history", args=[patients.pk])).status_code == 404
    login(helper_user)
    assert client.get(reverse("records:measurement_history", args=[patients.pk])).status_code == 404
    login(patient)
    assert client.get(reverse("records:measurement_history", args=[patients.pk])).status_code == 200
    assert client.get(url).status_code == 404


def test_merging_two_records_of_a_child_keeps_one_open_representation_per_parent(minor, parent):
    from portal.accounts import merge

    duplicate = Patient.objects.create(first_name="Léa", last_name="Durand", birth_date=minor.birth_date)
    Representation.objects.create(patient=duplicate, representative=parent.user, kind="parent")
    father = PatientFactory(user__email="jean@example.org")
    Representation.objects.create(patient=duplicate, representative=father.user, kind="parent")
    merge.merge(keep=minor, duplicate=duplicate)
    open_rows = minor.representations.filter(ended_at__isnull=True)
    assert sorted(open_rows.values_list("representative__email", flat=True)) == sorted(
        [parent.user.email, "jean@example.org"]
    )
    assert minor.representations.filter(ended_at__isnull=False).count() == 1  # the parent's second, ended


def test_the_unread_badge_counts_the_record_one_is_in(client, login, parent, minor, team, clinician):
    """One record per page: a message in the child's record does not show on the
    parent's own pages, and does once they switch to the child's record."""
    messaging.start_conversation(
        author=clinician, patient=minor, team=team, subject="Vaccin", kind="question", body="Pouvez-vous passer ?"
    )
    login(parent)
    badge = re.compile(r'<span class="badge">(\d+)<span class="visually-hidden"> message non lu')
    assert not badge.search(client.get(reverse("patient_home")).content.decode())
    switch(client, minor)
    assert badge.search(client.get(reverse("patient_home")).content.decode()).group(1) == "1"


def test_a_helpers_end_date_is_at_most_one_year_ahead_the_date_picker_says_the_same(client, login, patient):
    from portal.representation.services import helper_end_bounds

    assert helper_end_bounds(datetime.date(2028, 2, 29)) == (datetime.date(2028, 3, 30), datetime.date(2029, 2, 28))
    _earliest, latest = helper_end_bounds(TODAY)
    login(patient)
    assert f'max="{latest.isoformat()}"' in client.get(reverse("representation:helpers")).content.decode()
    for ends_on, accepted in ((latest, True), (latest + datetime.timedelta(days=1), False)):
        client.post(
            reverse("representation:helpers"),
            {
                "email": f"aide-{str(accepted).lower()}@exemple.org",
                "parts": ["documents"],
                "ends_on": ends_on.isoformat(),
            },
        )
        assert patient.helper_invitations.filter(email=f"aide-{str(accepted).lower()}@exemple.org").exists() == accepted


# What "my record" says in French: never on a page of someone else's record.
FIRST_PERSON = (
    "mon dossier", "Mon dossier</h", "Mes documents", "mes documents", "Mes équipes de soins", "votre dossier",
    "Mes rendez-vous", "mon rendez-vous", "Emportez votre", "Mon profil médical", "mon profil médical",
    "Mes ordonnances", "Mes résultats", "mes équipes de soins", "bloqué par vous",
)  # fmt: skip


def test_no_page_of_someone_elses_record_speaks_of_it_as_ones_own(client, login, parent, minor, clinician, team):
    """Every page a parent reaches in their child's record, with an item of each kind in
    it (a document, a prescription, an entry a professional wrote, an appointment, a
    message with an attachment), names it "the record", never "my record"; the same
    pages in the parent's own record still say "my"."""
    from records.models import Allergy, Prescription
    from tests.factories import AppointmentFactory

    document = publish(clinician, minor, team, "Bilan")
    Prescription.objects.create(
        patient=minor, medication="Ventoline", dosage="1", frequency="1/j", start_date=TODAY, prescriber=clinician,
        team=team, renewable=True,
    )  # fmt: skip
    allergy = records.add_profile_entry(
        entry=Allergy(patient=minor, substance="Arachide"), author=clinician, team=team
    )  # fmt: skip
    appointment = AppointmentFactory(patient=minor, team=team, created_by=clinician)
    conversation = messaging.start_conversation(
        author=clinician, patient=minor, team=team, subject="Vaccins", body="Voici", kind="question",
        attachments=[SimpleUploadedFile("carnet.png", PNG, content_type="image/png")],
    )  # fmt: skip
    pages = [
        reverse(name) for name in (
            "patient_home", "records:documents", "records:results", "records:prescriptions", "records:profile",
            "records:record_history", "records:care_teams", "exports:page", "agenda:mine", "messaging:inbox",
        )
    ] + [
        reverse("records:document", args=[document.pk]),
        reverse("records:comment_profile_entry", args=["allergy", allergy.pk]),
        reverse("agenda:patient_cancel", args=[appointment.pk]),
        reverse("agenda:reschedule", args=[appointment.pk]),
        reverse("messaging:conversation", args=[conversation.pk]),
    ]  # fmt: skip
    login(parent)
    switch(client, minor)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert not [phrase for phrase in FIRST_PERSON if phrase in text], url
    # The parent's own account and help pages are theirs: not titled with the child's name.
    for name in ("accounts:security", "help"):
        assert "Léa Durand · Carnet</title>" not in client.get(reverse(name)).content.decode(), name
    # A renewal the parent asks says whose prescription it is, not "my prescription".
    prescription = Prescription.objects.get(patient=minor)
    client.post(reverse("records:request_renewal", args=[prescription.pk]))
    body = Conversation.objects.get(prescription=prescription).messages.get().body
    assert body.startswith("Merci de renouveler l’ordonnance de Léa Durand : Ventoline"), body
    switch(client, parent)
    own = [client.get(reverse(name)).content.decode() for name in ("records:documents", "records:care_teams")]
    assert "Filtrer mes documents" in own[0] and "<h1>Mes équipes de soins" in own[1]


def test_a_professionals_address_invited_as_helper_is_told_why_it_cannot_accept(
    client, login, patient, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    """The invitation is made (refusing it would tell the patient that the address is a
    professional's account); the professional opening it is told why they cannot take it."""
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("representation:helpers"),
            {"email": clinician.email, "parts": ["documents"], "ends_on": (TODAY + datetime.timedelta(days=90))},
        )
    link = re.search(r"https?://\S+(/my/representation/accept/\S+/)", mailoutbox[-1].body).group(1)
    login(clinician)
    response = client.post(link)
    assert response.status_code == 400
    assert "Un compte de professionnel ou du support ne peut pas agir pour un patient" in response.content.decode()
    assert not Representation.objects.filter(representative=clinician).exists()


@pytest.mark.parametrize(
    ("parts", "sees_prescription", "sees_appointment"),
    [
        ({"prescriptions": False}, False, False),
        ({"prescriptions": True}, True, False),
    ],
)
def test_a_conversation_shows_a_helper_only_what_it_is_about_in_their_parts(
    client, login, patient, clinician, team, parts, sees_prescription, sees_appointment
):
    """A renewal names its prescription and a change request its appointment: a helper
    given the messages but not the prescriptions (nor the appointments, which are the
    holder's own) reads the conversation without them, and is offered only the kinds of
    conversation about parts they act on."""
    from records.models import Prescription
    from tests.factories import AppointmentFactory

    paul = UserFactory(first_name="Paul", last_name="Aidant")
    Representation.objects.create(
        patient=patient, representative=paul, kind="helper", ends_at=timezone.now() + datetime.timedelta(days=60),
        documents=False, results=False, messages=True, **parts,
    )  # fmt: skip
    prescription = Prescription.objects.create(
        patient=patient, medication="Atorvastatine 10 mg", dosage="1", frequency="1/j", start_date=TODAY,
        prescriber=clinician, team=team, renewable=True,
    )  # fmt: skip
    appointment = AppointmentFactory(patient=patient, team=team, with_whom="Dr Karim Benali")
    renewal = Conversation.objects.create(
        patient=patient, team=team, subject="Renouvellement", kind="renewal", prescription=prescription,
        started_by=patient.user,
    )  # fmt: skip
    reschedule = Conversation.objects.create(
        patient=patient, team=team, subject="Déplacer", kind="reschedule", appointment=appointment,
        started_by=patient.user,
    )  # fmt: skip
    login(paul)
    switch(client, patient)
    page = client.get(reverse("messaging:conversation", args=[renewal.pk])).content.decode()
    assert ("Atorvastatine" in page) is sees_prescription, page[
        page.find("Atorvastatine") - 300 : page.find("Atorvastatine") + 100
    ]
    page = client.get(reverse("messaging:conversation", args=[reschedule.pk])).content.decode()
    assert ("Karim Benali" in page) is sees_appointment and "Mes rendez-vous" not in page
    kinds = re.findall(
        r'name="kind" value="(\w+)"|<option value="(\w+)"', client.get(reverse("messaging:new")).content.decode()
    )
    offered = {value for pair in kinds for value in pair if value}
    assert ("renewal" in offered) is sees_prescription and "reschedule" not in offered and "question" in offered

    login(patient)  # the holder sees both, and may ask for both
    switch(client, patient)
    assert "Atorvastatine" in client.get(reverse("messaging:conversation", args=[renewal.pk])).content.decode()
    page = client.get(reverse("messaging:conversation", args=[reschedule.pk])).content.decode()
    assert "Karim Benali" in page and "Mes rendez-vous" in page
    new = client.get(reverse("messaging:new")).content.decode()
    assert 'value="renewal"' in new and 'value="reschedule"' in new


HREF = re.compile(r'href="(/[^"#]*)')


@pytest.mark.parametrize(
    "parts",
    [combo for size in range(1, 5) for combo in itertools.combinations(Representation.PARTS, size)],
    ids="+".join,
)
def test_no_link_a_helper_is_shown_leads_to_a_404(client, login, patient, clinician, team, parts):
    """A helper given each set of parts: every link of the layout and of their home page
    (the menu, the cards) is to a page they may open."""
    helper = UserFactory(first_name="Paul", last_name="Aidant")
    Representation.objects.create(
        patient=patient, representative=helper, kind="helper", ends_at=timezone.now() + datetime.timedelta(days=60),
        **{part: part in parts for part in Representation.PARTS},
    )  # fmt: skip
    publish(clinician, patient, team, "Compte rendu")
    login(helper)
    home = client.get(reverse("patient_home"))
    assert home.status_code == 200
    links = {url for url in HREF.findall(home.content.decode()) if not url.startswith("/static/")}
    assert reverse("patient_home") in links
    for url in sorted(links):
        assert client.get(url).status_code != 404, (parts, url)

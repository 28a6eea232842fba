"""Invitations: a clinician invites a patient of their team; single-use, 72 h, birth date proof."""

import datetime
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import Invitation, User
from tests.factories import CareLinkFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "une phrase de passe assez longue"


@pytest.fixture
def patient_without_login(team):
    patient = PatientFactory(user=None, first_name="Léa", last_name="Martin", birth_date=datetime.date(1990, 2, 3))
    CareLinkFactory(patient=patient, team=team)
    return patient


def invite(client, login, clinician, patient, django_capture_on_commit_callbacks):
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("careteams:invite_patient", args=[patient.pk]), {"email": "Lea.Martin@example.org"}
        )
    assert response.status_code == 302
    client.post(reverse("account_logout"))
    (message,) = mail.outbox
    assert message.to == ["lea.martin@example.org"]
    assert "Martin" not in message.body  # no personal or health content in the email
    return re.search(r"https?://\S+/accounts/invitation/\S+/", message.body).group(0)


def link_path(url):
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def accept(client, path, birth="1990-02-03"):
    return client.post(path, {"birth_date": birth, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def test_invitation_end_to_end(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    page = client.get(path)
    assert page.status_code == 200 and "lea.martin@example.org" in page.content.decode()
    response = accept(client, path)
    assert response["Location"] == reverse("accounts:enrol")
    patient_without_login.refresh_from_db()
    user = patient_without_login.user
    assert (user.email, user.role, user.first_name) == ("lea.martin@example.org", User.Role.PATIENT, "Léa")
    assert user.check_password(NEW_PASSWORD)
    # Signed in with the password only: the second factor comes next, nothing else.
    assert client.get("/my/")["Location"].startswith(reverse("accounts:enrol"))
    # Single use.
    client.post(reverse("account_logout"))
    assert client.get(path).status_code == 410
    assert accept(client, path).status_code == 410


def test_wrong_birth_date_changes_nothing(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    response = accept(client, path, birth="1990-03-02")
    assert response.status_code == 200
    assert "ne correspond pas" in response.content.decode()
    patient_without_login.refresh_from_db()
    assert patient_without_login.user is None
    assert not User.objects.filter(email="lea.martin@example.org").exists()
    assert Invitation.objects.get().used_at is None


def test_weak_password_is_refused_on_the_same_page(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    response = client.post(path, {"birth_date": "1990-02-03", "password1": "court", "password2": "court"})
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()
    assert not User.objects.filter(email="lea.martin@example.org").exists()


def test_link_expires_after_72_hours(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    with time_machine.travel(timezone.now() + timedelta(hours=72, minutes=1)):
        response = accept(client, path)
        assert response.status_code == 410
        assert "a expiré ou a déjà été utilisé" in response.content.decode()
    assert not User.objects.filter(email="lea.martin@example.org").exists()


def test_unknown_token_is_refused(client):
    assert client.get(reverse("accounts:accept_invitation", args=["nope"])).status_code == 410


def test_only_a_clinician_of_the_patients_team_can_invite(client, login, other_clinician, patient_without_login):
    login(other_clinician)
    url = reverse("careteams:invite_patient", args=[patient_without_login.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "x@example.org"}).status_code == 404
    assert not Invitation.objects.exists()


def test_a_patient_who_has_a_login_cannot_be_invited(client, login, clinician, patient):
    login(clinician)
    assert client.get(reverse("careteams:invite_patient", args=[patient.pk])).status_code == 404


def test_malformed_email_is_refused_on_the_same_page(client, login, clinician, patient_without_login):
    login(clinician)
    response = client.post(
        reverse("careteams:invite_patient", args=[patient_without_login.pk]), {"email": "not-an-email"}
    )
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()
    assert not Invitation.objects.exists()


def test_five_wrong_birth_dates_end_the_link(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    for left in (4, 3, 2, 1):
        response = accept(client, path, birth="1990-03-02")
        assert response.status_code == 200
        expected = f"{left} essai restant" if left == 1 else f"{left} essais restants"
        assert expected in response.content.decode()
    last = accept(client, path, birth="1990-03-02")
    assert last.status_code == 410 and "Trop de tentatives" in last.content.decode()
    assert accept(client, path).status_code == 410  # even the right birth date, now
    patient_without_login.refresh_from_db()
    assert patient_without_login.user is None


def test_a_new_link_does_not_give_more_guesses_within_a_day(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
        for _ in range(3):
            accept(client, path, birth="1990-03-02")
        mail.outbox.clear()
        again = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
        assert "1 essai restant." in accept(client, again, birth="1990-03-02").content.decode()  # 3 + 1 wrong
        assert accept(client, again, birth="1990-03-02").status_code == 410  # five wrong in all
        login(clinician)
        refused = client.post(
            reverse("careteams:invite_patient", args=[patient_without_login.pk]), {"email": "lea@example.org"}
        )
        assert "une nouvelle invitation pourra être envoyée demain" in refused.content.decode()
    with time_machine.travel(start + timedelta(hours=25), tick=False):
        mail.outbox.clear()
        client.post(reverse("account_logout"))
        fresh = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
        assert accept(client, fresh)["Location"] == reverse("accounts:enrol")


def test_wrong_birth_dates_carried_to_a_new_link_are_not_counted_twice(clinician, patient_without_login):
    from portal.accounts import services

    first = services.invite_patient(invited_by=clinician, patient=patient_without_login, email="lea@example.org")
    Invitation.objects.filter(pk=first.pk).update(failed_attempts=3)
    second = services.invite_patient(invited_by=clinician, patient=patient_without_login, email="lea@example.org")
    assert second.failed_attempts == 3
    Invitation.objects.filter(pk=second.pk).update(failed_attempts=4)  # one more wrong: four in all
    third = services.invite_patient(invited_by=clinician, patient=patient_without_login, email="lea@example.org")
    assert third.failed_attempts == 4 and third.is_usable()


def test_an_address_another_account_uses_is_refused_when_inviting(
    client, login, clinician, patient, patient_without_login
):
    login(clinician)
    response = client.post(
        reverse("careteams:invite_patient", args=[patient_without_login.pk]), {"email": patient.user.email.upper()}
    )
    assert response.context["form"].errors == {
        "email": [
            "Cette adresse est déjà utilisée par un autre compte : chaque personne a besoin de sa propre adresse."
        ]
    }
    assert not Invitation.objects.exists()


def test_an_address_taken_after_the_invitation_gives_a_clear_page_not_an_error(
    client, login, clinician, patient_without_login, django_capture_on_commit_callbacks
):
    path = link_path(invite(client, login, clinician, patient_without_login, django_capture_on_commit_callbacks))
    UserFactory(email="lea.martin@example.org")  # meanwhile, someone else signs in with that address
    response = accept(client, path)
    assert response.status_code == 410
    assert "est maintenant utilisée par un autre compte" in response.content.decode()
    patient_without_login.refresh_from_db()
    assert patient_without_login.user is None

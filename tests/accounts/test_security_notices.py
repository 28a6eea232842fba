"""Security notices: sent through Celery after commit, without health content."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts import services
from tests.conftest import reauthenticate, second_factor_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def notices_to(email):
    return [m for m in mail.outbox if m.to == [email]]


def assert_no_health_content(message, patient):
    for word in ["Durand", "Camille", "document", "résultat", "ordonnance", patient.ins or "NIR"]:
        assert word not in message.body and word not in message.subject


def test_password_change_sends_a_notice_after_commit(client, login, patient, django_capture_on_commit_callbacks):
    login(patient)
    new = "a brand new long passphrase 2026"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert len(callbacks) == 1 and not mail.outbox  # nothing is sent before the commit
    callbacks[0]()
    (message,) = notices_to(patient.user.email)
    assert (
        message.subject
        == "Le mot de passe de votre compte Carnet a été modifié / Your Carnet password has been changed"
    )
    assert "/accounts/security/" in message.body
    assert_no_health_content(message, patient)


def test_adding_and_removing_a_device_send_notices(client, login, patient, django_capture_on_commit_callbacks):
    login(patient)
    client.get(reverse("accounts:enrol_totp"))
    device = TOTPDevice.objects.get(user=patient.user)
    code = f"{totp(device.bin_key):06d}"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:enrol_totp"), {"code": code})
    reauthenticate(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:remove_device"), {"device": device.persistent_id})
    subjects = [m.subject.split(" / ")[0] for m in notices_to(patient.user.email)]  # in French, then English
    assert subjects == [
        "Un second facteur a été ajouté à votre compte Carnet",
        "Un second facteur a été supprimé de votre compte Carnet",
    ]


def test_refused_removal_sends_nothing(client, login, patient, django_capture_on_commit_callbacks):
    login(patient)
    reauthenticate(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:remove_device"), {"device": second_factor_of(patient.user).persistent_id})
    assert mail.outbox == []


def test_sign_in_from_a_new_browser_sends_a_notice_once(
    client, password_only_login, patient, django_capture_on_commit_callbacks
):
    device = TOTPDevice.objects.create(user=patient.user, name="app", confirmed=True)

    def full_sign_in(browser, at_step):
        with time_machine.travel(timezone.now() + timedelta(seconds=30 * at_step), tick=False):
            browser.post(reverse("account_logout"))  # a real sign-out keeps the other cookies
            password_only_login(patient, on=browser)
            code = f"{totp(device.bin_key):06d}"
            with django_capture_on_commit_callbacks(execute=True):
                response = browser.post(reverse("accounts:verify"), {"kind": "app", "code": code})
            assert response["Location"] == "/"
            assert browser.get("/my/").status_code == 200

    full_sign_in(client, 0)
    full_sign_in(client, 1)  # same browser: no new notice
    full_sign_in(Client(), 2)  # another browser: a notice
    subjects = [m.subject.split(" / ")[0] for m in notices_to(patient.user.email)]  # in French, then English
    assert subjects == ["Nouvelle connexion à votre compte Carnet"] * 2


def test_the_task_takes_ids_and_tolerates_a_deleted_user(patient):
    from portal.accounts.tasks import send_security_notice

    send_security_notice.apply(args=[987654, "new_sign_in"]).get()
    assert mail.outbox == []
    send_security_notice.apply(args=[patient.user.pk, "device_added"]).get()
    assert len(mail.outbox) == 1


def test_unknown_notice_kind_is_refused(patient):
    with pytest.raises(ValueError):
        services.notify_security_event(user=patient.user, kind="your_results_are_ready")

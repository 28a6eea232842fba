"""Every email written to a person about their account, an invitation or a representation
is in French and in English: Carnet does not know which they read when it writes."""

import datetime

import pytest
from django.core import mail

from portal.accounts import services as accounts
from portal.accounts.services import SECURITY_NOTICE_SUBJECTS
from portal.representation import services as representation
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def both_languages(email, french, english):
    subject_fr, subject_en = email.subject.split(" / ")
    body_fr, body_en = email.body.split("\n\n---\n\n")
    assert french in subject_fr and english in subject_en, email.subject
    assert body_fr.strip() and body_en.strip() and body_fr != body_en


@pytest.mark.parametrize("kind", sorted(SECURITY_NOTICE_SUBJECTS))
def test_security_notices(patient, kind):
    accounts.send_security_notice(user=patient.user, kind=kind)
    both_languages(mail.outbox[-1], "Carnet", "Carnet")
    assert "compte" in mail.outbox[-1].body and "account" in mail.outbox[-1].body


def test_invitations_and_representation_notices(clinician, patient, django_capture_on_commit_callbacks):
    without_login = PatientFactory(user=None, first_name="Lina", last_name="Roux")
    with django_capture_on_commit_callbacks(execute=True):
        accounts.invite_patient(invited_by=clinician, patient=without_login, email="lina.roux@example.org")
    both_languages(mail.outbox[-1], "invitation", "invitation")
    with django_capture_on_commit_callbacks(execute=True):
        representation.invite_helper(
            patient=patient, invited_by=patient.user, email="aidant@example.org", parts={"documents"},
            ends_on=datetime.date.today() + datetime.timedelta(days=30),
        )  # fmt: skip
    both_languages(mail.outbox[-1], "Carnet", "Carnet")
    for notice in representation.NOTICES:
        representation.send_notice(user=clinician, notice=notice, patient=patient)
        both_languages(mail.outbox[-1], "Représentation", "Representation")

import base64
import datetime
import re

import pytest
from django.core import mail
from django_otp.oath import totp
from playwright.sync_api import expect

from portal.accounts import services
from tests.factories import CareLinkFactory, PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_invited_patient_creates_an_account_and_enrols_an_authenticator_app(page, team, clinician):
    patient = PatientFactory(user=None, first_name="Léa", last_name="Martin", birth_date=datetime.date(1990, 2, 3))
    CareLinkFactory(patient=patient, team=team)
    services.invite_patient(invited_by=clinician, patient=patient, email="lea@example.org")
    link = re.search(r"https?://[^/\s]+(/accounts/invitation/\S+/)", mail.outbox[-1].body).group(1)

    page.goto(link)
    expect(page.get_by_role("heading", name="Créez votre compte Carnet")).to_be_visible()
    page.get_by_label("Votre date de naissance").fill("1990-02-03")
    page.get_by_label("Choisissez un mot de passe").fill("une phrase de passe assez longue")
    page.get_by_label("Mot de passe (confirmation)").fill("une phrase de passe assez longue")
    page.get_by_role("button", name="Créer mon compte").click()

    expect(page.get_by_role("heading", name="Configurer votre second facteur")).to_be_visible()
    page.get_by_role("link", name="Utiliser une application d’authentification").click()
    expect(page.locator("figure.qr-code svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.get_by_label("Code").fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Confirmer").click()

    expect(page.get_by_role("heading", name="Codes de secours")).to_be_visible()
    expect(page.locator(".backup-codes li")).to_have_count(10)
    page.get_by_role("button", name="J’ai enregistré mes codes, continuer").click()
    expect(page.get_by_role("heading", name="Conditions d’utilisation")).to_be_visible()  # a first sign-in
    page.get_by_role("button", name="J’accepte les conditions d’utilisation").click()
    expect(page.get_by_role("heading", name="Bonjour Léa")).to_be_visible()

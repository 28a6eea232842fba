import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.conftest import second_factor_of
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_signs_in_and_sees_the_dashboard(page, patient):
    second_factor_of(patient.user)
    page.goto("/")
    expect(page.get_by_role("heading", name="Se connecter à Carnet")).to_be_visible()
    page.get_by_label("E-mail").fill(patient.user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    # Second factor: the code arrives by email (the live server runs in this process).
    expect(page.get_by_role("heading", name="Deuxième étape de la connexion")).to_be_visible()
    page.get_by_role("button", name="M’envoyer un code par e-mail").click()
    expect(page.get_by_text("Un code a été envoyé")).to_be_visible()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Vérifier").click()
    expect(page.get_by_role("heading", name="Bonjour Camille")).to_be_visible()
    for section in ["Documents", "Ordonnances", "Résultats d’analyses", "Messages"]:
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    page.set_viewport_size({"width": 360, "height": 740})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360

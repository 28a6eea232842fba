import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_signs_in_and_sees_the_dashboard(page, patient):
    page.goto("/")
    expect(page.get_by_role("heading", name="Se connecter à Carnet")).to_be_visible()
    page.get_by_label("E-mail").fill(patient.user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Bonjour Camille")).to_be_visible()
    for section in ["Documents", "Ordonnances", "Résultats d’analyses", "Messages"]:
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    page.set_viewport_size({"width": 360, "height": 740})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360

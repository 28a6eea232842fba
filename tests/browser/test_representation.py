import datetime

import pytest
from playwright.sync_api import expect

from messaging.models import Conversation
from portal.accounts.models import Patient, Representation
from records import services as records
from tests.browser.conftest import sign_in
from tests.factories import CareLinkFactory, PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_parent_switches_to_their_child_reads_a_result_and_writes_to_the_childs_team(page, team, clinician):
    marie = PatientFactory(first_name="Marie", last_name="Durand", user__first_name="Marie", user__last_name="Durand")
    lea = Patient.objects.create(first_name="Léa", last_name="Durand", birth_date=datetime.date(2016, 4, 2))
    CareLinkFactory(patient=lea, team=team)
    Representation.objects.create(patient=lea, representative=marie.user, kind="parent", proof="family_book")
    records.add_lab_report(
        author=clinician, team=team, patient=lea, title="Bilan sanguin de Léa", collected_on=datetime.date(2026, 1, 5),
        observations=[{"loinc": "718-7", "name": "Hémoglobine", "value": 12.5, "unit": "g/dL", "low": 11, "high": 15}],
    )  # fmt: skip

    sign_in(page, marie.user)
    expect(page.get_by_role("heading", name="Bonjour Marie")).to_be_visible()
    switcher = page.get_by_role("navigation", name="Dossiers")
    expect(switcher.get_by_role("button", name="Mon dossier")).to_have_attribute("aria-current", "true")
    switcher.get_by_role("button", name="Léa").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossier de Léa Durand")
    expect(page).to_have_title("Dossier de Léa Durand · Léa Durand · Carnet")
    expect(switcher.get_by_role("button", name="Léa")).to_have_attribute("aria-current", "true")

    page.get_by_role("link", name="Tous les résultats").click()  # Léa's, not "mes"
    expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Durand")
    expect(page.get_by_text("Bilan sanguin de Léa")).to_be_visible()
    expect(page.get_by_text("Hémoglobine").first).to_be_visible()

    page.get_by_role("navigation", name="Principale").get_by_role("link", name="Mon espace santé").click()
    page.get_by_role("link", name="Écrire à une équipe de soins").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Durand")
    page.get_by_label("Équipe de soins").select_option(label=team.name)
    page.get_by_label("Objet").fill("Question sur le bilan")
    page.get_by_role("textbox", name="Message").fill("Bonjour, le bilan de Léa est-il normal ?")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
    expect(page.get_by_text("Vous, pour Léa Durand")).to_be_visible()
    assert Conversation.objects.get().patient == lea

    page.get_by_role("navigation", name="Dossiers").get_by_role("button", name="Mon dossier").click()
    expect(page.get_by_role("heading", name="Bonjour Marie")).to_be_visible()
    page.get_by_role("link", name="Tous mes résultats").click()
    expect(page.get_by_text("Bilan sanguin de Léa")).to_have_count(0)

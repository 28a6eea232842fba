import re

import pytest
from playwright.sync_api import expect

from fhir_api.models import ApiClient
from tests.browser.conftest import sign_in
from tests.browser.test_phone_layout import overflowing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_registers_a_teams_software_on_a_phone(browser, live_server, support, team):
    agent = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport={"width": 390, "height": 844}
    ).new_page()
    sign_in(agent, support)
    agent.get_by_role("link", name="Clients de l’API").click()
    agent.get_by_role("link", name="Enregistrer un client").click()
    agent.get_by_label("Équipe de soins").select_option(label=team.name)
    agent.get_by_label("Nom du logiciel").fill("Logiciel du cabinet")
    agent.get_by_label(re.compile("Publier des documents")).check()
    agent.get_by_role("button", name="Enregistrer").click()

    client = ApiClient.objects.get()
    expect(agent.get_by_text(client.client_id)).to_be_visible()
    agent.get_by_role("link", name="Terminé").click()
    expect(agent.get_by_role("heading", name="Logiciel du cabinet")).to_be_visible()
    expect(agent.get_by_text(team.name)).to_be_visible()
    expect(agent.get_by_text("Jamais")).to_be_visible()
    agent.get_by_role("link", name=re.compile("Révoquer")).click()  # asked first, on a page of its own
    expect(agent.get_by_role("heading", name=re.compile("Révoquer «"))).to_be_visible()
    assert overflowing(agent) == []
    agent.get_by_role("button", name="Le révoquer").click()
    expect(agent.get_by_text(re.compile("Révoqué le"))).to_be_visible()

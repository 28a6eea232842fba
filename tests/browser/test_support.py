import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from portal.support.models import SupportAction
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_unlocks_a_locked_out_patient_who_then_signs_in(browser, live_server, page, support, patient, settings):
    agent = browser.new_context(base_url=live_server.url, locale="fr-FR").new_page()
    sign_in(agent, support)

    # The patient mistypes their password until sign-in is blocked, then even the right one is refused.
    page.goto("/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.get_by_label("E-mail").fill(patient.user.email)
        page.get_by_label("Mot de passe").fill("not my password at all")
        page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Trop de tentatives")).to_be_visible()
    page.goto("/accounts/login/")
    page.get_by_label("E-mail").fill(patient.user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Trop de tentatives")).to_be_visible()

    # The agent finds them, sees the lockout, and lifts it with a reason.
    agent.get_by_label("Nom, e-mail ou identifiant national de santé").fill("durand")
    agent.get_by_role("button", name="Rechercher").click()
    agent.get_by_role("link", name=patient.user.get_full_name()).click()
    expect(agent.get_by_text(re.compile("Verrouillé jusqu’au"))).to_be_visible()
    agent.get_by_role("link", name=re.compile("verrouillage")).click()
    agent.get_by_role("button", name="Confirmer").click()
    expect(
        agent.get_by_text("Indiquez la raison de cette action.", exact=True)
    ).to_be_visible()  # the reason is mandatory
    agent.get_by_label("Raison").fill("Appel de la patiente, identité vérifiée")
    agent.get_by_role("button", name="Confirmer").click()
    expect(agent.get_by_text("Lever le verrouillage de connexion : c’est fait.")).to_be_visible()
    expect(agent.get_by_text("Pas verrouillé")).to_be_visible()
    assert SupportAction.objects.get().reason == "Appel de la patiente, identité vérifiée"

    # The patient signs in, second factor included.
    mail.outbox.clear()
    sign_in(page, patient.user)
    expect(page.get_by_role("heading", name=re.compile("Bonjour"))).to_be_visible()
    agent.context.close()


def test_agent_creates_a_clinician_who_sets_up_with_the_code_read_by_phone(browser, live_server, page, support, team):
    import base64

    from django_otp.oath import totp

    agent = browser.new_context(base_url=live_server.url, locale="fr-FR").new_page()
    sign_in(agent, support)
    mail.outbox.clear()
    agent.get_by_role("link", name="Nouveau compte soignant").click()
    agent.get_by_label("Prénom").fill("Paul")
    agent.get_by_role("textbox", name=re.compile("^Nom")).fill("Girard")
    agent.get_by_label("Adresse e-mail").fill("paul.girard@example.org")
    agent.get_by_label(team.name).check()
    agent.get_by_label("Raison").fill("Nouveau médecin du cabinet, demande de la directrice")
    agent.get_by_role("button", name="Créer le compte").click()
    code = agent.locator(".verification-code").inner_text().strip()
    assert re.fullmatch(r"\d{4} \d{4}", code)
    expect(agent.get_by_text("Cabinet médical des Tilleuls", exact=True)).to_be_visible()  # the membership

    (invitation,) = mail.outbox
    assert code not in invitation.body
    link = re.search(r"https?://[^/\s]+(/accounts/invitation/\S+/)", invitation.body).group(1)
    page.goto(link)
    page.get_by_label("Code de vérification").fill(code)
    page.get_by_label("Choisissez un mot de passe").fill("une phrase de passe assez longue")
    page.get_by_label("Mot de passe (confirmation)").fill("une phrase de passe assez longue")
    page.get_by_role("button", name="Créer mon compte").click()
    page.get_by_role("link", name="Utiliser une application d’authentification").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(f"{totp(base64.b32decode(secret + '=' * (-len(secret) % 8))):06d}")
    page.get_by_role("button", name="Confirmer").click()
    page.get_by_role("button", name="J’ai enregistré mes codes, continuer").click()
    page.get_by_role("button", name="J’accepte les conditions d’utilisation").click()  # a first sign-in
    page.goto("/care/")
    expect(page.get_by_role("heading", name="Mes patients")).to_be_visible()  # signed in as a clinician
    assert SupportAction.objects.get().action == "create_account"
    agent.context.close()

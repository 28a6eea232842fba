import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_writes_clinician_assigns_and_replies_patient_reads(page, patient, clinician, team):
    sign_in(page, patient.user)
    page.get_by_role("navigation", name="Principale").get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Écrire à une équipe de soins").click()
    expect(page.get_by_text("Cette messagerie n’est pas faite pour les urgences.")).to_be_visible()
    page.get_by_label("Équipe de soins").select_option(label=team.name)
    page.get_by_label("Objet").fill("Renouvellement de mon traitement")
    page.get_by_role("textbox", name="Message").fill("Bonjour, mon traitement se termine vendredi.")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
    sign_out(page)

    sign_in(page, clinician)
    nav = page.get_by_role("navigation", name="Principale")
    expect(nav.get_by_role("link", name="Messages 1 message non lu")).to_be_visible()
    nav.get_by_role("link", name="Messages").click()
    row = page.get_by_role("row", name="Renouvellement de mon traitement")
    expect(row).to_contain_text("1")
    row.get_by_role("link").click()
    page.get_by_role("textbox", name="Message").fill("Bonjour, je vous fais l’ordonnance.")
    page.get_by_label("Attribuer à").select_option(label=clinician.get_full_name())
    page.get_by_role("button", name="Attribuer", exact=True).click()
    expect(page.get_by_text("Attribution enregistrée.")).to_be_visible()
    # The reply being written came back with the page (assigning sent it along).
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Bonjour, je vous fais l’ordonnance.")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
    sign_out(page)

    sign_in(page, patient.user)
    nav = page.get_by_role("navigation", name="Principale")
    expect(nav.get_by_role("link", name="Messages 1 message non lu")).to_be_visible()
    nav.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Renouvellement de mon traitement").click()
    expect(page.get_by_text("Bonjour, je vous fais l’ordonnance.")).to_be_visible()
    expect(page.get_by_text(f"{clinician.get_full_name()} — {team.name}")).to_be_visible()
    expect(nav.get_by_role("link", name="Messages", exact=True)).to_be_visible()


def test_a_new_message_is_appended_while_the_patient_types(page, patient, clinician, team):
    """The 10-second refresh appends what is new, announces it, and leaves the
    keyboard focus (and what is being typed) where it was."""
    from messaging.services import send_message, start_conversation

    conversation = start_conversation(
        author=patient.user, patient=patient, team=team, subject="Ma question", body="Bonjour", kind="question"
    )
    sign_in(page, patient.user)
    page.goto(f"/messages/{conversation.pk}/")
    box = page.get_by_role("textbox", name="Message")
    box.fill("Je vous écris")
    box.focus()
    send_message(author=clinician, conversation=conversation, body="Voici la réponse de l’équipe.")
    expect(page.locator("#thread-list li")).to_have_count(2, timeout=15_000)
    expect(page.locator("#thread-list li").last).to_contain_text("Voici la réponse de l’équipe.")
    expect(page.locator("#thread-news")).to_have_text("1 nouveau message")
    expect(box).to_be_focused()
    expect(box).to_have_value("Je vous écris")


def test_a_reply_template_is_added_to_the_draft_without_losing_it(page, patient, clinician, team):
    from messaging import services

    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Douleur au genou", kind="question", body="Bonjour."
    )
    team.reply_templates.create(title="Rendez-vous", body="Prenez rendez-vous en ligne.")
    sign_in(page, clinician)
    page.goto(f"/messages/{conversation.pk}/")
    reply = page.get_by_role("textbox", name="Message")
    reply.fill("Bonjour,")
    url = page.url
    page.get_by_label("Ajouter un modèle de réponse").select_option(label="Rendez-vous")
    page.get_by_role("button", name="Ajouter", exact=True).click()
    expect(reply).to_have_value("Bonjour,\n\nPrenez rendez-vous en ligne.")
    expect(reply).to_be_focused()
    assert page.url == url  # added in place: nothing sent, nothing reloaded
    assert conversation.messages.count() == 1

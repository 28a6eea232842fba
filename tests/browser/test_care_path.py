"""The whole path of a new patient: the care team registers, links and invites them; the
patient accepts; the team publishes a document; the patient gets one email and sees
the document marked new on their dashboard."""

import base64
import re

import pytest
from django.core import mail
from django_otp.oath import totp
from playwright.sync_api import expect

from portal.accounts.models import nir_key
from tests.browser.conftest import sign_in, sign_out
from tests.records.conftest import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY = "2900275123456"  # a woman born in February 1990


def test_register_invite_accept_publish_and_the_patient_is_told(page, clinician, team, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(make_pdf())

    # The care team registers and invites the patient.
    sign_in(page, clinician)
    page.get_by_role("link", name="Enregistrer un patient").click()
    page.get_by_label("Nom de naissance").fill("Moreau")
    page.get_by_label("Prénoms de naissance").fill("Inès Claire")
    page.get_by_label("Nom utilisé").fill("Garnier")
    page.get_by_label("Féminin").check()
    page.get_by_label("Date de naissance").fill("1990-02-03")
    page.get_by_label("Code du lieu de naissance (INSEE)").fill("75056")
    page.get_by_label("INS (identifiant national de santé)").fill(BODY + nir_key(BODY))
    page.get_by_label("Adresse e-mail du patient, pour l’inviter sur Carnet").fill("ines@example.org")
    page.get_by_role("button", name="Enregistrer le patient").click()
    expect(page.get_by_role("heading", name="GARNIER Inès")).to_be_visible()
    expect(page.get_by_text("L’invitation a été envoyée")).to_be_visible()
    sign_out(page)

    # The patient accepts the invitation.
    invitation = next(m for m in mail.outbox if m.to == ["ines@example.org"])
    page.goto(re.search(r"https?://[^/\s]+(/accounts/invitation/\S+/)", invitation.body).group(1))
    page.get_by_label("Votre date de naissance").fill("1990-02-03")
    page.get_by_label("Choisissez un mot de passe").fill("une phrase de passe assez longue")
    page.get_by_label("Mot de passe (confirmation)").fill("une phrase de passe assez longue")
    page.get_by_role("button", name="Créer mon compte").click()
    page.get_by_role("link", name="Utiliser une application d’authentification").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(f"{totp(base64.b32decode(secret + '=' * (-len(secret) % 8))):06d}")
    page.get_by_role("button", name="Confirmer").click()
    page.get_by_role("button", name="J’ai enregistré mes codes, continuer").click()
    page.get_by_role("button", name="J’accepte les conditions d’utilisation").click()
    expect(page.get_by_role("heading", name="Bonjour Inès")).to_be_visible()
    sign_out(page)

    # The team publishes a document.
    before = len(mail.outbox)
    sign_in(page, clinician)
    page.get_by_role("link", name="GARNIER Inès").click()
    page.get_by_role("navigation", name="Parties du dossier").get_by_role("link", name="Documents").click()
    page.get_by_role("link", name="Ajouter un document").click()
    page.get_by_label("Titre").fill("Compte rendu de consultation")
    page.get_by_label("Catégorie").select_option(label="Autre")
    page.get_by_label("Date des soins").fill("2026-11-02")
    page.get_by_label("Fichier").set_input_files(str(pdf))
    page.get_by_role("button", name="Ajouter").click()
    expect(page.get_by_role("heading", name="Compte rendu de consultation")).to_be_visible()
    sign_out(page)

    # One email, without the document's title; the dashboard shows it as new.
    told = [m for m in mail.outbox[before:] if m.to == ["ines@example.org"] and "Carnet" in m.subject]
    told = [m for m in told if "document" in m.body]
    assert len(told) == 1
    assert "Un nouveau document est disponible dans Carnet." in told[0].body
    assert "Compte rendu" not in told[0].body
    patient_user = invitation_user("ines@example.org")
    sign_in(page, patient_user, password="une phrase de passe assez longue")
    documents = page.locator("#documents-title").locator("..")
    expect(documents.get_by_role("link", name="Compte rendu de consultation")).to_be_visible()
    expect(documents.get_by_text("Nouveau")).to_be_visible()
    documents.get_by_role("link", name="Compte rendu de consultation").click()
    page.goto("/my/")
    expect(page.locator("#documents-title").locator("..").get_by_text("Nouveau")).to_have_count(0)


def invitation_user(email):
    from portal.accounts.models import User

    return User.objects.get(email=email)

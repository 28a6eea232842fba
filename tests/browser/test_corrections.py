"""On a phone: a clinician withdraws a misfiled document and corrects a lab value from
the patient's page; the patient's dashboard says so, the document is gone from the
list, the history and the value say who, when and why. Nothing scrolls sideways."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from records import services
from tests.browser.conftest import sign_in, sign_out
from tests.browser.test_phone_layout import overflowing
from tests.records.conftest import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_team_corrects_the_record_and_the_patient_sees_it_on_a_phone(page, patient, clinician, team, settings):
    today = datetime.date.today()
    document = services.publish_document(
        author=clinician, team=team, patient=patient, data=make_pdf(), title="Compte rendu Dupont",
        category="report", care_date=today, master_identifier="",
    )[0]  # fmt: skip
    services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan sanguin", collected_on=today,
        observations=[{"loinc": "2345-7", "name": "Glucose à jeun", "value": Decimal("1.32"), "unit": "g/L",
                       "low": Decimal("0.70"), "high": Decimal("1.10")}],
    )  # fmt: skip
    page.set_viewport_size({"width": 390, "height": 844})

    sign_in(page, clinician)
    page.goto(f"/documents/{document.pk}/")
    page.get_by_role("link", name="Retirer ce document").click()
    page.get_by_label("Motif du retrait").fill("Document d’un autre patient")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Le document a été retiré. Le patient en est informé.")).to_be_visible()
    # Back on the record's documents; its lab results are the next tab.
    page.get_by_role("navigation", name="Parties du dossier").get_by_role("link", name="Résultats d’analyses").click()
    page.get_by_role("link", name="Corriger : Glucose à jeun").click()
    page.get_by_label("Valeur corrigée").fill("0.98")
    page.get_by_label("Motif de la correction").fill("Erreur de saisie")
    assert overflowing(page) == []
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("La valeur a été corrigée. Le patient en est informé.")).to_be_visible()
    assert overflowing(page) == []
    sign_out(page)

    sign_in(page, patient.user)
    page.goto("/my/")
    feed = page.get_by_role("region", name="Quoi de neuf")
    expect(feed.get_by_role("link", name="Document retiré : Compte rendu Dupont")).to_be_visible()
    expect(feed.get_by_role("link", name="Correction du dossier : Bilan sanguin")).to_be_visible()
    assert overflowing(page) == []
    page.goto("/my/documents/")
    expect(page.get_by_text("Compte rendu Dupont")).to_have_count(0)
    page.goto("/my/results/")
    expect(page.get_by_text("Corrigé le")).to_be_visible()
    page.goto("/my/record-history/")
    expect(page.get_by_text("Document d’un autre patient")).to_be_visible()
    expect(page.get_by_text("Erreur de saisie")).to_be_visible()
    assert overflowing(page) == []
    page.get_by_role("link", name="Compte rendu Dupont").click()
    expect(page.get_by_text(f"Retiré par {team.name} le")).to_be_visible()

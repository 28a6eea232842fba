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
    page.get_by_label("Code reçu par e-mail").fill(code)
    page.get_by_role("button", name="Vérifier").click()
    expect(page.get_by_role("heading", name="Bonjour Camille")).to_be_visible()
    for section in ["Documents", "Ordonnances", "Résultats d’analyses", "Messages"]:
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    page.set_viewport_size({"width": 360, "height": 740})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360


def test_pages_with_tables_do_not_scroll_sideways_on_a_phone(page, patient, clinician, team):
    import datetime
    from decimal import Decimal

    from records import exports, services
    from records.models import Prescription
    from tests.browser.conftest import sign_in

    Prescription.objects.create(
        patient=patient, medication="Atorvastatine 10 mg, comprimé pelliculé sécable", dosage="1 comprimé",
        frequency="le soir au coucher", start_date=datetime.date(2026, 1, 1), renewable=True,
        prescriber=clinician, team=team,
    )  # fmt: skip
    services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan lipidique", collected_on=datetime.date(2026, 1, 1),
        observations=[{"loinc": "2093-3", "name": "Cholestérol total", "value": Decimal("2.4"), "unit": "g/L"}],
    )  # fmt: skip
    export, _ = exports.request_export(user=patient.user, patient=patient, kind="summary", options={})
    exports.run_export(export_id=export.pk)
    sign_in(page, patient.user)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ["/my/prescriptions/", "/my/results/", "/my/documents/", "/accounts/security/", "/my/access-history/"]:
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto("/my/exports/")
    download = page.get_by_role("link", name="Télécharger").bounding_box()
    assert download["x"] + download["width"] <= 390  # in view, not past the table's right edge

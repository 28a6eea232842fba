"""On a phone, without JavaScript: the patient reports an access they do not
recognise; support answers; the patient reads the answer."""

import re

import pytest
from playwright.sync_api import expect

from portal import access
from portal.audit.models import AccessLog
from tests.browser.conftest import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TARGET = "Échographie cardiaque"


def test_a_patient_reports_an_access_and_reads_supports_answer(browser, live_server, patient, clinician, support):
    access.trace_read(clinician, patient, AccessLog.Action.VIEW_DOCUMENT, TARGET)
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport={"width": 375, "height": 740}, java_script_enabled=False
    )
    page = context.new_page()
    sign_in(page, patient.user)
    page.goto("/my/access-history/")
    page.get_by_text("Je ne reconnais pas cet accès").first.click()
    page.get_by_label("Commentaire (facultatif)").first.fill("Je ne connais pas ce médecin")
    page.get_by_role("button", name="Signaler cet accès à l’assistance").first.click()
    expect(page.get_by_text(re.compile("Merci. L’assistance va examiner cet accès"))).to_be_visible()
    expect(page.get_by_role("heading", name="Mes signalements")).to_be_visible()
    sign_out(page)

    sign_in(page, support)
    page.goto("/support/reports/")
    page.get_by_role("link", name=re.compile(r"#\d+")).first.click()
    expect(page.get_by_text(clinician.get_full_name())).to_be_visible()
    assert TARGET not in page.content()
    page.get_by_label("Réponse au patient").fill("Le Dr remplaçait votre médecin traitant.")
    page.get_by_role("button", name="Répondre et clore le dossier").click()
    expect(page.get_by_text("La réponse a été transmise au patient.")).to_be_visible()
    sign_out(page)

    sign_in(page, patient.user)
    page.goto("/my/access-history/")
    expect(page.get_by_text("Le Dr remplaçait votre médecin traitant.")).to_be_visible()
    context.close()

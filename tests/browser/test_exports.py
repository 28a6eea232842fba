import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_requests_a_summary_watches_it_get_ready_and_downloads_it(page, patient, celery_worker):
    """A real worker builds the export; the page follows its state by htmx polling."""
    sign_in(page, patient.user)
    page.goto("/my/exports/")
    choice = page.get_by_label("Synthèse médicale (PDF)")
    box, label = choice.bounding_box(), page.locator("label", has_text="Synthèse médicale (PDF)").bounding_box()
    assert label["x"] > box["x"] and abs(label["y"] + label["height"] / 2 - (box["y"] + box["height"] / 2)) < 8
    choice.check()
    page.get_by_role("button", name="Demander l’export").click()
    expect(page.get_by_text("Votre export est en préparation.")).to_be_visible()
    download_link = page.get_by_role("link", name="Télécharger")
    expect(download_link).to_be_visible(timeout=60_000)  # no reload: htmx swaps the list in
    with page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename.startswith("carnet-synthese-medicale-")
    text = " ".join(p.extract_text() for p in PdfReader(download.path()).pages)
    assert "Camille Durand" in text

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, sign_out
from tests.records.conftest import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_uploads_hides_and_the_clinician_no_longer_sees_it(page, patient, clinician, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    pdf = tmp_path / "bilan.pdf"
    pdf.write_bytes(make_pdf())

    sign_in(page, patient.user)
    page.get_by_role("link", name="Ajouter un document").first.click()
    page.get_by_label("Titre").fill("Bilan de kinésithérapie")
    page.get_by_label("Catégorie").select_option(label="Autre")
    page.get_by_label("Date des soins").fill("2026-11-02")
    page.get_by_label("Fichier").set_input_files(str(pdf))
    page.get_by_role("button", name="Ajouter").click()
    expect(page.get_by_role("heading", name="Bilan de kinésithérapie")).to_be_visible()
    # Processed by the worker: the preview of the first page is shown.
    expect(page.get_by_role("img", name="Première page de Bilan de kinésithérapie")).to_be_visible()
    sign_out(page)

    sign_in(page, clinician)
    page.goto(f"/care/patients/{patient.pk}/documents/")
    expect(page.get_by_role("link", name="Bilan de kinésithérapie")).to_be_visible()
    sign_out(page)

    sign_in(page, patient.user)
    page.goto("/my/documents/")
    page.get_by_role("link", name="Bilan de kinésithérapie").click()
    page.get_by_role("button", name="Masquer aux professionnels").click()
    expect(page.get_by_text("Ce document est désormais masqué")).to_be_visible()
    sign_out(page)

    sign_in(page, clinician)
    page.goto(f"/care/patients/{patient.pk}/documents/")
    expect(page.get_by_role("heading", name="Documents")).to_be_visible()
    expect(page.get_by_role("link", name="Bilan de kinésithérapie")).to_have_count(0)


def test_the_page_of_a_document_being_processed_shows_it_once_ready(page, patient, tmp_path, settings, monkeypatch):
    """Uploaded while the worker is busy, the document's page says it is being
    processed; once processed, the page reloads by itself and shows the preview."""
    from records import services
    from records.models import Document

    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(services, "_enqueue_processing", lambda document_id: None)  # the worker is busy
    pdf = tmp_path / "analyse.pdf"
    pdf.write_bytes(make_pdf())
    sign_in(page, patient.user)
    page.goto("/my/documents/add/")
    page.get_by_label("Titre").fill("Analyse de sang")
    page.get_by_label("Catégorie").select_option(label="Autre")
    page.get_by_label("Date des soins").fill("2026-11-02")
    page.get_by_label("Fichier").set_input_files(str(pdf))
    page.get_by_role("button", name="Ajouter").click()
    expect(page.get_by_text("Ce document est en cours de traitement.")).to_be_visible()
    services.process_document(document_id=Document.objects.get(title="Analyse de sang").pk)
    expect(page.get_by_role("img", name="Première page de Analyse de sang")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Ce document est en cours de traitement.")).to_have_count(0)

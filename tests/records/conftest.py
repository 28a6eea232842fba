import datetime
import io

import pypdfium2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from records import services


def make_pdf() -> bytes:
    pdf = pypdfium2.PdfDocument.new()
    pdf.new_page(595, 842)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def pdf_bytes():
    return make_pdf()


@pytest.fixture
def upload(pdf_bytes):
    def make(name="compte-rendu.pdf", data=None):
        return SimpleUploadedFile(name, pdf_bytes if data is None else data, content_type="application/pdf")

    return make


@pytest.fixture
def clinician_document(clinician, patient, team, upload, django_capture_on_commit_callbacks):
    """A PDF the clinician's team published for the patient, processed."""
    with django_capture_on_commit_callbacks(execute=True):
        document = services.upload_document(
            author=clinician,
            patient=patient,
            upload=upload(),
            title="Compte rendu de consultation",
            category="report",
            care_date=datetime.date(2026, 10, 2),
            team=team,
        )
    document.refresh_from_db()
    return document


@pytest.fixture
def patient_document(patient, upload, django_capture_on_commit_callbacks):
    """A PDF the patient uploaded, processed."""
    with django_capture_on_commit_callbacks(execute=True):
        document = services.upload_document(
            author=patient.user,
            patient=patient,
            upload=upload(),
            title="Ordonnance dermatologue",
            category="prescription",
            care_date=datetime.date(2026, 9, 1),
        )
    document.refresh_from_db()
    return document


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT

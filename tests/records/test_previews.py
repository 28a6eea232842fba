"""Document previews: drawn in a child process held to a pixel, memory and time limit;
a document whose preview cannot be drawn is served without one, after a bounded number
of attempts; images are previewed without their metadata."""

import datetime
import io
import os
import subprocess
import sys
import time

import pypdfium2
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo

from records import files, services
from records.models import Document
from tests.conftest import ROOT, database_url, wait_for

from .conftest import make_pdf


def pdf_page(width, height) -> bytes:
    pdf = pypdfium2.PdfDocument.new()
    pdf.new_page(width, height)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


def slow_pdf(steps=2000) -> bytes:
    """A 50 KB PDF that pdfium draws for minutes: a shading whose colour is a long
    PostScript function, computed again for every pixel (little memory, all CPU)."""
    function = b"{ " + b"2 copy add 2 div exch pop " * steps + b"pop }"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Shading << /Sh 4 0 R >> >>"
        b" /Contents 6 0 R >>",
        b"<< /ShadingType 1 /ColorSpace /DeviceGray /Domain [0 1 0 1] /Matrix [595 0 0 842 0 0] /Function 5 0 R >>",
        b"<< /FunctionType 4 /Domain [0 1 0 1] /Range [0 1] /Length %d >>\nstream\n%s\nendstream"
        % (len(function), function),
        b"<< /Length 6 >>\nstream\n/Sh sh\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stored_document(patient, data, content_type="application/pdf", **fields) -> Document:
    name, sha256, key_id = files.store(data)
    return Document.objects.create(
        patient=patient, title="Compte rendu", category="report", care_date=datetime.date(2026, 10, 1),
        author=patient.user, content_type=content_type, size=len(data), sha256=sha256, key_id=key_id,
        file_name=name, **fields,
    )  # fmt: skip


def stored_files(media_root, folder):
    return os.listdir(media_root / folder) if (media_root / folder).exists() else []


@pytest.mark.django_db
def test_a_page_of_absurd_proportions_gets_no_preview_and_stays_downloadable(client, login, patient, media_root):
    """The review's MediaBox [0 0 1 400] drew a 600 × 240,000 PNG (949 MiB in the worker)."""
    data = pdf_page(10, 400)  # 600 × 24,000 px once drawn 600 px wide
    document = stored_document(patient, data)
    services.process_document(document_id=document.pk)
    document.refresh_from_db()
    assert (document.status, document.preview_name, document.preview_attempts) == ("ready", "", 1)
    assert stored_files(media_root, "previews") == []
    login(patient)
    page = client.get(reverse("records:document", args=[document.pk])).content.decode()
    assert "Aucun aperçu n’a pu être dessiné pour ce document : téléchargez-le pour le lire." in page
    assert client.get(reverse("records:preview", args=[document.pk])).status_code == 404
    assert client.get(reverse("records:download", args=[document.pk])).content == data


@pytest.mark.django_db
def test_a_page_within_the_pixel_limit_is_drawn_600_px_wide(patient):
    document = stored_document(patient, pdf_page(100, 400))  # 600 × 2,400: the limit itself
    services.process_document(document_id=document.pk)
    document.refresh_from_db()
    assert Image.open(io.BytesIO(services.read_preview(document=document))).size == (600, 2400)


def test_drawing_is_held_to_its_memory_limit(settings):
    pdf = make_pdf()
    assert services.render_preview(data=pdf, content_type="application/pdf").startswith(b"\x89PNG")
    settings.PREVIEW_MEMORY_BYTES = 16 * 1024 * 1024  # less than pdfium needs to start
    assert services.render_preview(data=pdf, content_type="application/pdf") is None


@pytest.mark.django_db
def test_a_pdf_that_draws_for_ever_is_stopped_at_the_time_limit(patient, settings, media_root):
    settings.PREVIEW_TIMEOUT_SECONDS = 1
    document = stored_document(patient, slow_pdf())
    started = time.monotonic()
    services.process_document(document_id=document.pk)
    assert time.monotonic() - started < 5
    document.refresh_from_db()
    assert (document.status, document.preview_name, document.preview_attempts) == ("ready", "", 1)
    assert stored_files(media_root, "previews") == []


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def kill_while_drawing(document_id, media_root):
    """Run the processing in a worker process and kill it (SIGKILL, as Celery's hard
    time limit does) while its child draws. Returns the drawing child's pid."""
    worker = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup(); from records import services; "
         f"services.process_document(document_id={document_id})"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
             "MEDIA_ROOT": str(media_root)},
    )  # fmt: skip
    try:
        assert wait_for(lambda: children(worker.pid), 30), "the drawing child never started"
        drawer = children(worker.pid)[0]
        time.sleep(0.3)
    finally:
        worker.kill()
        worker.wait(timeout=10)
    return drawer


@pytest.mark.django_db(transaction=True)
def test_runs_killed_while_drawing_are_counted_and_the_sweep_then_gives_up(patient, settings, media_root):
    """The review's slow PDF was killed at 90 s and queued again every 5 minutes, for ever."""
    settings.PREVIEW_TIMEOUT_SECONDS = 120
    document = stored_document(patient, slow_pdf(), created_at=timezone.now() - datetime.timedelta(minutes=10))
    for attempt in range(1, settings.PREVIEW_MAX_ATTEMPTS + 1):
        drawer = kill_while_drawing(document.pk, media_root)
        assert wait_for(lambda drawer=drawer: gone(drawer), 5), "the drawing outlived its worker"
        document.refresh_from_db()
        assert (document.status, document.preview_attempts, document.preview_name) == ("processing", attempt, "")
    assert services.sweep_unprocessed_documents() == 0  # nothing queued again
    document.refresh_from_db()
    assert (document.status, document.preview_name) == ("ready", "")
    assert document.preview_attempts == settings.PREVIEW_MAX_ATTEMPTS
    assert stored_files(media_root, "previews") == []


@pytest.mark.django_db
def test_the_sweep_queues_documents_below_the_limit(patient, settings, django_capture_on_commit_callbacks):
    document = stored_document(patient, make_pdf(), created_at=timezone.now() - datetime.timedelta(minutes=10))
    document.preview_attempts = settings.PREVIEW_MAX_ATTEMPTS - 1
    document.save(update_fields=["preview_attempts"])
    assert services.sweep_unprocessed_documents() == 1  # run eagerly here: the last attempt
    document.refresh_from_db()
    assert document.status == "ready" and document.preview_name


def photo_with_gps(orientation=6) -> bytes:
    """A 40 × 20 JPEG taken 'turned' (orientation 6: to be rotated 90° to be upright),
    with the GPS position of where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Model] = "Phone 12"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (2.0, 21.0, 3.0)
    out = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(out, format="JPEG", exif=exif, comment=b"Rue des Tilleuls")
    return out.getvalue()


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Location", "48.8566 N, 2.3510 E")
    out = io.BytesIO()
    Image.new("RGB", (40, 20), "blue").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "content_type", "size"),
    [(photo_with_gps(), "image/jpeg", (20, 40)), (png_with_text(), "image/png", (40, 20))],
    ids=["jpeg-exif-gps", "png-text"],
)
def test_an_image_is_previewed_without_its_metadata_and_downloaded_as_uploaded(
    client, login, patient, upload, data, content_type, size, django_capture_on_commit_callbacks
):
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("records:upload"),
            {"title": "Photo de l’ordonnance", "category": "prescription", "care_date": "2026-10-20",
             "file": upload("photo", data)},
        )  # fmt: skip
    document = Document.objects.get()
    response = client.get(reverse("records:preview", args=[document.pk]))
    assert response["Content-Type"] == content_type
    preview = Image.open(io.BytesIO(response.content))
    assert preview.size == size  # turned upright before the orientation tag went
    assert not preview.getexif() and "exif" not in preview.info and "Location" not in preview.info
    for trace in (b"Exif", b"GPS", b"Phone 12", b"Tilleuls", b"48.8566"):
        assert trace not in response.content
    assert client.get(reverse("records:download", args=[document.pk])).content == data

"""The PDF renderer: our static files only, fonts and stylesheet once, running header, escaping."""

import http.server
import io
import threading
from pathlib import Path

import pytest
from django.conf import settings
from pypdf import PdfReader

from records import pdf


def text_of(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def spy_server():
    """A local HTTP server that records every request it gets."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.css"
    path.write_text("body { color: red }")
    return path


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/whatever.css",
        "https://example.org/tracker.png",
        "ftp://example.org/file",
        "file:///etc/passwd",
        "file://otherhost/static/css/carnet.css",
        "gopher://127.0.0.1:70/",
    ],
)
def test_fetcher_refuses_anything_but_our_static_files(url):
    with pytest.raises(pdf.RefusedURL):
        pdf.url_fetcher().fetch(url)


def test_fetcher_refuses_a_path_escaping_the_static_folder():
    static = Path(settings.BASE_DIR, "static").resolve()
    with pytest.raises(pdf.RefusedURL):
        pdf.url_fetcher().fetch(static.as_uri() + "/../manage.py")
    with pytest.raises(pdf.RefusedURL):
        pdf.url_fetcher().fetch((static.parent / "portal" / "settings.py").as_uri())


def test_fetcher_serves_static_files_and_data_urls():
    css = Path(settings.BASE_DIR, "static", "pdf", "carnet-pdf.css").resolve()
    response = pdf.url_fetcher().fetch(css.as_uri())
    assert b"@font-face" in response.read()
    assert pdf.url_fetcher().fetch("data:text/plain;base64,Ym9uam91cg==").read() == b"bonjour"


def test_rendering_html_that_reaches_out_fetches_nothing(spy_server, secret_file):
    address, hits = spy_server
    html = f"""<html lang="fr"><head><title>t</title>
      <link rel="stylesheet" href="http://{address}/style.css">
      <link rel="stylesheet" href="{secret_file.as_uri()}">
      <style>@import url("http://{address}/import.css"); body {{ background: url("http://{address}/bg.png") }}</style>
      </head><body><p>Bonjour</p>
      <img src="http://{address}/pixel.png" alt="">
      <img src="https://{address}/pixel.png" alt="">
      <img src="//{address}/relative-scheme.png" alt="">
      <img src="file:///etc/hostname" alt="">
      <img src="../../../../etc/passwd" alt="">
      <iframe src="http://{address}/frame"></iframe>
      </body></html>"""
    data = pdf.write_pdf(html)
    assert data.startswith(b"%PDF-")
    assert hits == []
    assert "Bonjour" in text_of(data)


def test_stylesheet_and_fonts_are_loaded_once():
    assert pdf._stylesheet() is pdf._stylesheet()
    assert pdf._font_config() is pdf._font_config()
    pdf.write_pdf("<html lang='fr'><title>a</title><p>un</p></html>")
    stylesheet = pdf._stylesheet()
    pdf.write_pdf("<html lang='fr'><title>b</title><p>deux</p></html>")
    assert pdf._stylesheet() is stylesheet


def test_releasing_the_renderer_removes_the_fonts_temporary_folder():
    pdf.write_pdf("<html lang='fr'><title>a</title><p>un</p></html>")
    folder = pdf._font_config()._folder
    assert folder is not None and folder.is_dir()  # our @font-face fonts, copied there
    pdf.release()
    assert not folder.exists()
    pdf.write_pdf("<html lang='fr'><title>b</title><p>deux</p></html>")  # loads them again
    assert pdf._font_config()._folder.is_dir()


def test_a_pool_child_releases_the_renderer_before_it_ends():
    from celery.signals import worker_process_shutdown

    pdf.write_pdf("<html lang='fr'><title>a</title><p>un</p></html>")
    folder = pdf._font_config()._folder
    worker_process_shutdown.send(sender=None, pid=1, exitcode=0)
    assert not folder.exists()


def test_pdf_embeds_our_french_font_and_is_tagged():
    data = pdf.write_pdf("<html lang='fr'><title>Été</title><p>Œdème, fièvre à 39 °C, cœur — ça va.</p></html>")
    reader = PdfReader(io.BytesIO(data))
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert any("Carnet-Sans" in font for font in fonts), fonts  # our @font-face, DejaVu Sans
    assert "Œdème, fièvre à 39 °C, cœur" in text_of(data)
    assert "/StructTreeRoot" in reader.trailer["/Root"]
    assert reader.trailer["/Root"]["/MarkInfo"]["/Marked"]


@pytest.mark.django_db
def test_patient_name_date_and_page_number_on_every_page(patient):
    from django.template.loader import render_to_string
    from django.utils import timezone

    long_body = "".join(f"<p>Ligne {n}</p>" for n in range(150))
    page = render_to_string("pdf/base.html", {"patient": patient, "generated_at": timezone.now()})
    data = pdf.write_pdf(page.replace("<main>", "<main>" + long_body))
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 3
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert "Camille Durand" in text
        assert f"date de naissance {patient.birth_date:%d/%m/%Y}" in text  # who it is about, for a doctor
        assert "Généré par Carnet le" in text
        assert f"{number} / {len(reader.pages)}" in text


@pytest.mark.django_db
def test_patient_typed_text_is_escaped(patient, team):
    from django.utils import timezone

    from messaging import services

    conversation = services.start_conversation(
        author=patient.user,
        patient=patient,
        team=team,
        subject="<img src='http://127.0.0.1:9/x.png'>Sujet",
        kind="question",
        body="<b>gras</b> & <link rel=stylesheet href='file:///etc/passwd'>",
    )
    html = pdf.render_to_string(
        "pdf/conversation.html",
        {"patient": patient, "generated_at": timezone.now(), "conversation": conversation,
         "messages": list(conversation.messages.all())},
    )  # fmt: skip
    assert "<b>gras</b>" not in html
    assert "&lt;b&gt;gras&lt;/b&gt; &amp;" in html
    assert "<img src=" not in html
    assert "<b>gras</b> &" in text_of(pdf.write_pdf(html))


@pytest.mark.django_db
def test_a_long_unbroken_title_wraps_in_the_summary_rather_than_pushing_columns_off_the_page(patient):
    """A 200-character title with no space: every table's text stays within the page."""
    import datetime

    from weasyprint import HTML

    from records.export_builders import SECTIONS, summary_html
    from records.models import Document

    Document.objects.create(
        patient=patient, title="Compte-rendu" + "x" * 188, category="report", care_date=datetime.date(2026, 1, 2),
        author=patient.user, content_type="application/pdf", size=1, sha256="0" * 64, key_id="k", file_name="f",
        status="ready",
    )  # fmt: skip
    html = summary_html(user=patient.user, patient=patient, sections=list(SECTIONS))
    document = HTML(string=html, base_url=pdf._base_dir().as_uri() + "/", url_fetcher=pdf.url_fetcher()).render(
        stylesheets=[pdf._stylesheet()], font_config=pdf._font_config()
    )

    def boxes(box):
        yield box
        for child in getattr(box, "children", []):
            yield from boxes(child)

    for page in document.pages:
        width = page.width
        for box in boxes(page._page_box):
            if type(box).__name__ == "TextBox":
                assert box.position_x + box.width <= width + 0.5, box.text[:40]


@pytest.mark.django_db
def test_the_summarys_identity_gives_the_birth_name_and_first_names_as_the_ins_has_them(patient):
    """A doctor checks identity against the INS: the birth name when it is not the name
    used, and the first names at birth."""
    from django.template.loader import render_to_string

    patient.set_identity(birth_name="Martin", first_names="Camille Louise", used_name="Durand")
    patient.save()
    html = render_to_string("pdf/sections/identity.html", {"section": {"patient": patient}})
    assert "Nom de naissance</dt><dd>MARTIN</dd>" in html
    assert "Prénoms de naissance</dt><dd>Camille Louise</dd>" in html
    patient.set_identity(birth_name="Durand", first_names="Camille")
    patient.save()
    assert "Nom de naissance" not in render_to_string("pdf/sections/identity.html", {"section": {"patient": patient}})

"""PDF rendering with WeasyPrint, reaching nothing but our own static files.

The stylesheet and the fonts are loaded once per process (lazily, so that each
forked Celery worker child builds its own) and reused by every render.
"""

import atexit
import contextlib
import functools
import gc
import logging
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

STYLESHEET = "pdf/carnet-pdf.css"
# PDF/UA-1: tagged, with a structure tree and a title, read aloud by screen
# readers; it costs a few percent over an untagged PDF (see benchmarks/exports.py).
PDF_VARIANT = "pdf/ua-1"


class RefusedURL(ValueError):
    """A resource outside our static files was asked for; nothing was fetched."""


def static_roots() -> list[Path]:
    """The folders our static files may come from: the finders' and STATIC_ROOT."""
    roots = []
    for finder in finders.get_finders():
        for _path, storage in finder.list([]):
            location = getattr(storage, "location", None)
            if location:
                roots.append(Path(location).resolve())
    roots.append(Path(settings.STATIC_ROOT).resolve())
    return list(dict.fromkeys(roots))


def _base_dir() -> Path:
    """The folder relative URLs in our templates resolve against (``static/``)."""
    found = finders.find(STYLESHEET)
    return Path(found).resolve().parent.parent


@functools.cache
def _fetcher():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        """Serves ``data:`` URLs and files under our static roots; refuses
        anything else (http, https, ftp, other files, any network address)."""

        def __init__(self, roots):
            super().__init__(allowed_protocols={"data", "file"}, allow_redirects=False)
            self.roots = roots

        def fetch(self, url, headers=None):
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme != "file":
                raise RefusedURL(f"refused {scheme} URL")
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise RefusedURL("refused file URL on another host")
            path = Path(unquote(parts.path)).resolve()
            if not any(path.is_relative_to(root) for root in self.roots) or not path.is_file():
                raise RefusedURL("refused file outside the static files")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})

    return StaticOnlyFetcher(static_roots())


def url_fetcher():
    """The one URL fetcher every render uses."""
    return _fetcher()


@functools.cache
def _font_config():
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@functools.cache
def _stylesheet():
    from weasyprint import CSS

    path = _base_dir() / STYLESHEET
    return CSS(filename=str(path), url_fetcher=url_fetcher(), font_config=_font_config())


def release():
    """Forget the stylesheet and fonts. WeasyPrint copies our fonts into a temporary
    folder (1.5 MB) that it removes only when its font configuration is deleted:
    done here at exit, and by Celery children before they end (``portal.celery``),
    which leave without running ``atexit`` hooks."""
    _stylesheet.cache_clear()
    _font_config.cache_clear()
    gc.collect()  # the stylesheet and font configuration may sit in reference cycles


atexit.register(release)


@contextlib.contextmanager
def collector_paused():
    """No cyclic garbage collection inside the block, one collection of the young
    objects (what the block made) at its end.

    WeasyPrint makes about a million objects for 2,000 lab results (boxes linked to
    their parents: cycles), which set off a dozen full collections along the way, a
    fifth of the render time. A full collection at the end would walk every object of
    the process (Django's too: 0.13 s for a one-page summary); the young generation
    holds only what the render made. Peak memory: about the same for small documents,
    ~100 MiB more for 2,000 lab results (benchmarks/exports.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect(0)


def write_pdf(html: str, *, variant: str | None = PDF_VARIANT) -> bytes:
    """Render HTML we generated to PDF bytes with our stylesheet and fonts."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=_base_dir().as_uri() + "/", url_fetcher=url_fetcher())
    with collector_paused():
        return document.write_pdf(
            stylesheets=[_stylesheet()], font_config=_font_config(), pdf_variant=variant, uncompressed_pdf=False
        )


def render_pdf(template_name: str, context: dict, *, variant: str | None = PDF_VARIANT) -> bytes:
    """Render one of our templates (autoescaped: patient-typed text stays text) to PDF."""
    return write_pdf(render_to_string(template_name, context), variant=variant)

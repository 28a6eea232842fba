"""Draws a document's preview image in a child process, held to a memory and a CPU
limit, so a hostile file (a page of absurd size, a PDF that renders for ever, an image
bomb) costs the worker nothing but a wait. Run by ``records.services.render_preview``:

    python -I records/preview.py CONTENT_TYPE MAX_PIXELS MEMORY_BYTES CPU_SECONDS PARENT_PID

reads the file on stdin and writes the image on stdout (PNG, or JPEG for a JPEG).
Exit status 0: an image; NO_PREVIEW: the file gets no preview by rule; anything else
(killed at a limit, a file the library cannot read): no preview either.

Standalone on purpose: it imports neither Django nor the project, only pdfium and Pillow.
"""

import contextlib
import ctypes
import io
import os
import resource
import signal
import sys

NO_PREVIEW = 3
PDF_WIDTH = 600  # a PDF's first page is drawn this wide...
IMAGE_BOX = 1200  # ...and an image scaled down to fit this square


class NoPreview(Exception):
    """The file is one we draw no preview of (absurd proportions, too many pixels)."""


def hold_to_limits(memory_bytes: int, cpu_seconds: int, parent_pid: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    # Die with the worker (killed at its hard time limit) rather than run on alone.
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the CPU limit still ends it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the worker died before prctl
        sys.exit(1)


def pdf_preview(data: bytes, max_pixels: int) -> bytes:
    """The first page, PDF_WIDTH wide; none for a page taller than max_pixels allows."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    page = pdf[0]
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        raise NoPreview
    scale = PDF_WIDTH / width
    if PDF_WIDTH * max(height * scale, 1) > max_pixels:
        raise NoPreview
    image = page.render(scale=scale).to_pil()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def image_preview(data: bytes, content_type: str, max_pixels: int) -> bytes:
    """The image turned upright and scaled down, without its metadata (EXIF and its
    GPS position, XMP, comments): only the pixels and their colour profile remain."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = None  # checked below, after a JPEG's reduced decoding
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (IMAGE_BOX, IMAGE_BOX))  # a JPEG decodes at 1/2 to 1/8 scale
    # The source is held in memory whole: its size is bounded (the preview is small anyway).
    if image.width * image.height > 40 * max_pixels:
        raise NoPreview
    image = ImageOps.exif_transpose(image)
    image.thumbnail((IMAGE_BOX, IMAGE_BOX))
    if image.width * image.height > max_pixels:
        raise NoPreview
    jpeg = content_type == "image/jpeg"
    modes = ("RGB", "L") if jpeg else ("RGB", "RGBA", "L", "LA")
    if image.mode not in modes:
        image = image.convert("RGB" if jpeg else "RGBA")
    profile = image.info.get("icc_profile")
    image.info.clear()  # Pillow writes some of these back (XMP, comments) when left
    out = io.BytesIO()
    options = {"icc_profile": profile} if profile else {}
    if jpeg:
        image.save(out, format="JPEG", quality=85, **options)
    else:
        image.save(out, format="PNG", optimize=True, **options)
    return out.getvalue()


def main(argv: list[str]) -> int:
    content_type, max_pixels, memory_bytes, cpu_seconds, parent_pid = argv
    hold_to_limits(int(memory_bytes), int(cpu_seconds), int(parent_pid))
    data = sys.stdin.buffer.read()
    try:
        if content_type == "application/pdf":
            preview = pdf_preview(data, int(max_pixels))
        else:
            preview = image_preview(data, content_type, int(max_pixels))
    except NoPreview:
        return NO_PREVIEW
    sys.stdout.buffer.write(preview)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

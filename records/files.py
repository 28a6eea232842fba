"""Checks on uploaded files, by content and never by name, and their sealed storage."""

import hashlib
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from records import crypto

# Allowed types, recognised by their first bytes.
SIGNATURES = [
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
]
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "text/plain": "txt"}


class IntegrityError(Exception):
    """A stored file no longer matches the hash taken at upload."""


def sniff(data: bytes) -> str | None:
    """The content type of ``data`` if it is one we accept, else None."""
    for signature, content_type in SIGNATURES:
        if data.startswith(signature):
            return content_type
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


MEGABYTE = 1024 * 1024  # the unit our limits are set in


def human_size(size: int) -> str:
    """A file's size for people, as Django's ``filesizeformat`` writes it but without a
    decimal that says nothing: "22 Ko", "1,5 Mo", not "22,0 Ko"."""
    return re.sub(r"[.,]0(?=\s)", "", str(filesizeformat(size)))


def megabytes(size: int) -> str:
    """A size limit for people: "20 MB" ("20 Mo")."""
    count = size / MEGABYTE
    return _("%(count)s MB") % {"count": number_format(count, decimal_pos=0 if count.is_integer() else 1)}


def too_large(size: int, limit: int) -> ValidationError:
    """The refusal of a file over ``limit`` bytes. Exact byte counts: a rounded size
    would read "20 MB; the limit is 20 MB" for one byte too many."""
    return ValidationError(
        _("This file is too large: %(size)s bytes, over the limit of %(limit)s (%(limit_bytes)s bytes).")
        % {
            "size": number_format(size, force_grouping=True),
            "limit": megabytes(limit),
            "limit_bytes": number_format(limit, force_grouping=True),
        },
        code="too_large",
    )


def read_upload(upload) -> tuple[bytes, str]:
    """Read an uploaded file and check it: not empty, not too large, an allowed
    type by content. Returns the bytes and their content type."""
    if upload.size > settings.DOCUMENT_MAX_BYTES:
        raise too_large(upload.size, settings.DOCUMENT_MAX_BYTES)
    data = upload.read(settings.DOCUMENT_MAX_BYTES + 1)
    return data, check(data)


def check(data: bytes) -> str:
    """The checks of an upload on bytes already read: not empty, not too large, an
    allowed type by content. Returns the content type."""
    if len(data) > settings.DOCUMENT_MAX_BYTES:
        raise too_large(len(data), settings.DOCUMENT_MAX_BYTES)
    if not data:
        raise ValidationError(_("This file is empty."), code="empty")
    content_type = sniff(data)
    if content_type is None:
        raise ValidationError(_("Only PDF, JPEG, PNG and plain text files are accepted."), code="type")
    return content_type


def store(data: bytes, folder: str = "documents") -> tuple[str, str, str]:
    """Seal ``data`` and store it under a random name. Returns (name, sha256, key id)."""
    sealed, key_id = crypto.encrypt(data)
    name = default_storage.save(f"{folder}/{secrets.token_hex(16)}.bin", ContentFile(sealed))
    return name, hashlib.sha256(data).hexdigest(), key_id


def load(name: str, sha256: str) -> bytes:
    """Read, open and verify a stored file; raises IntegrityError when it was altered."""
    try:
        with default_storage.open(name, "rb") as handle:
            data = crypto.decrypt(handle.read())
    except (crypto.DecryptionError, OSError) as error:
        raise IntegrityError(str(error)) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityError("hash mismatch")
    return data


def remove(name: str) -> None:
    if name:
        default_storage.delete(name)

"""Encryption at rest for uploaded files: AES-256-GCM, with the key id stored so
keys can rotate (``DOCUMENT_KEYS``: the first encrypts, every listed key decrypts)."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

MAGIC = b"CRN1"


class DecryptionError(Exception):
    pass


def encrypt(data: bytes) -> tuple[bytes, str]:
    """Return the sealed bytes and the id of the key that sealed them."""
    key_id = settings.DOCUMENT_CURRENT_KEY
    nonce = os.urandom(12)
    kid = key_id.encode()
    sealed = AESGCM(settings.DOCUMENT_KEYS[key_id]).encrypt(nonce, data, MAGIC + kid)
    return MAGIC + bytes([len(kid)]) + kid + nonce + sealed, key_id


def decrypt(blob: bytes) -> bytes:
    """Open bytes sealed by ``encrypt``; raises DecryptionError when they were altered."""
    if blob[:4] != MAGIC or len(blob) < 6:
        raise DecryptionError("not a sealed file")
    kid_len = blob[4]
    kid = blob[5 : 5 + kid_len]
    nonce = blob[5 + kid_len : 17 + kid_len]
    key = settings.DOCUMENT_KEYS.get(kid.decode(errors="replace"))
    if key is None:
        raise DecryptionError("unknown key id")
    try:
        return AESGCM(key).decrypt(nonce, blob[17 + kid_len :], MAGIC + kid)
    except InvalidTag:
        raise DecryptionError("the file was altered") from None

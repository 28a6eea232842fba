"""The hash chain of the audit tables (the access log and the support trail).

Each row stores the hash of the row before it in its chain (``prev_hash``) and its
own hash: SHA-256 of that previous hash and of the row's content. Changing,
removing or inserting a row in the middle breaks every link after it. Pure
functions only: the migration that chained the rows written before this existed
uses them too, so they must never change.
"""

import datetime
import hashlib
import json
import uuid

GENESIS = "0" * 64


def canonical(value):
    """A value as the hash reads it (a moment in UTC, ISO 8601; a UUID as its text)."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def link_hash(prev_hash: str, values) -> str:
    """The hash of one row: its predecessor's hash and its content, in field order."""
    return canonical_link_hash(prev_hash, [canonical(v) for v in values])


def canonical_link_hash(prev_hash: str, canonical_values) -> str:
    """``link_hash`` of a row whose values are already in their canonical form (a batch of
    rows sharing most of their values works each one out once: ``canonical``)."""
    payload = json.dumps(canonical_values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()

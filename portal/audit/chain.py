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
    payload = json.dumps([canonical(v) for v in values], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


# What ``link_hash``'s ``json.dumps`` writes (``json.dumps`` builds this encoder at each call).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_text(value) -> str:
    """``value`` as JSON text, as ``link_hash``'s payload writes it inside its list: a
    number, a string (escaped as ``json`` escapes it) or null directly, anything else
    through the same encoder."""
    kind = type(value)
    if kind is int:  # not a bool, whose JSON is true or false
        return int.__repr__(value)
    if value is None:
        return "null"
    return _encode(value)  # a string (and a str choice) goes to the encoder's own string escape


def texts_link_hash(prev_hash: str, texts) -> str:
    """``link_hash`` of a row given as the JSON text of each canonical value (``json_text``):
    a batch works out each distinct value's text once. The payload is the list those texts
    make, written as ``json.dumps`` writes a list with these separators."""
    return hashlib.sha256(f"{prev_hash}\n[{','.join(texts)}]".encode()).hexdigest()

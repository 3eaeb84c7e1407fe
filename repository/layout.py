"""Object-store layout and record URIs (no personal data anywhere in a key).

* content-addressed blobs: ``blobs/sha256/ab/cd/<sha256>`` (same bytes => same key: idempotent)
* one immutable JSON manifest per record version: ``records/<uri>/v000001-<pdf digest prefix>.json``
  (the digest prefix keeps two concurrent writers of different content from sharing a key)
* record URI: ``{agency_code}.{doc_type}.{ULID}``; agency codes may themselves contain dots
  (``000.00.12.H29``), so the ULID is the last dot-separated part and the type the one before.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ulid import ULID

from .errors import InvalidRequest

BLOB_PREFIX = "blobs/sha256/"
MANIFEST_PREFIX = "records/"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_AGENCY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DOC_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_MANIFEST_RE = re.compile(r"^records/(?P<uri>[^/]+)/v(?P<version>\d{6})-(?P<pdf>[0-9a-f]{16})\.json$")
MANIFEST_DIGEST_CHARS = 16


@dataclass(frozen=True)
class RecordUri:
    agency_code: str
    doc_type: str
    ulid: str

    def __str__(self) -> str:
        return f"{self.agency_code}.{self.doc_type}.{self.ulid}"


def new_record_uri(agency_code: str, doc_type: str) -> str:
    """A fresh, time-ordered record URI ``{agency_code}.{doc_type}.{ULID}``."""
    _check_part("agency_code", agency_code, _AGENCY_RE)
    _check_part("doc_type", doc_type, _DOC_TYPE_RE)
    return f"{agency_code}.{doc_type}.{ULID()}"


def parse_record_uri(uri: str) -> RecordUri:
    """Split and validate a record URI; raise :class:`InvalidRequest` when malformed."""
    parts = (uri or "").rsplit(".", 2)
    if len(parts) != 3:
        raise InvalidRequest(f"record URI must look like AGENCY.DOCTYPE.ULID, got {uri!r}")
    agency, doc_type, ulid = parts
    _check_part("agency_code", agency, _AGENCY_RE)
    _check_part("doc_type", doc_type, _DOC_TYPE_RE)
    if not _ULID_RE.match(ulid):
        raise InvalidRequest(f"record URI must end with a 26-character ULID, got {uri!r}")
    return RecordUri(agency, doc_type, ulid)


def _check_part(name: str, value: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidRequest(f"{name} {value!r} is not allowed (letters, digits, '_', '-'{', .' if name == 'agency_code' else ''})")


def blob_key(sha256: str) -> str:
    if not _SHA256_RE.match(sha256):
        raise InvalidRequest(f"not a lowercase hex SHA-256: {sha256!r}")
    return f"{BLOB_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}"


def sha256_of_blob_key(key: str) -> str | None:
    """The digest a blob key claims, or ``None`` when the key is not a well-formed blob key."""
    if not key.startswith(BLOB_PREFIX):
        return None
    digest = key.rsplit("/", 1)[-1]
    return digest if _SHA256_RE.match(digest) and blob_key(digest) == key else None


def manifest_key(uri: str, version: int, pdf_sha256: str) -> str:
    parse_record_uri(uri)
    if version < 1:
        raise InvalidRequest("versions start at 1")
    if not _SHA256_RE.match(pdf_sha256):
        raise InvalidRequest(f"not a lowercase hex SHA-256: {pdf_sha256!r}")
    return f"{MANIFEST_PREFIX}{uri}/v{version:06d}-{pdf_sha256[:MANIFEST_DIGEST_CHARS]}.json"


def parse_manifest_key(key: str) -> tuple[str, int] | None:
    """(record URI, version) of a manifest key, or ``None`` when it is not one."""
    m = _MANIFEST_RE.match(key)
    return (m["uri"], int(m["version"])) if m else None


def validate_doc_type(doc_type: str) -> None:
    _check_part("doc_type", doc_type, _DOC_TYPE_RE)

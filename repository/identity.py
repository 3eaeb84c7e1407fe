"""Owner identities: opaque HMAC keys for lookup, AES-GCM for the stored ID, never plaintext.

A citizen is identified by a 12-digit personal identification number; an organization by its
10-digit enterprise/tax code, optionally with a 3-digit branch suffix (``0101234567-001``) or the
13-digit form of it. Those numbers are personal data: they never appear in object keys, URIs or
logs. Lookup uses ``owner_key = HMAC-SHA256(owner_secret, normalized_id)``; the ID itself is kept
only encrypted (AES-256-GCM, key derived from the same secret with HKDF) so an authorized
operator can recover it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import InvalidRequest

OwnerKind = Literal["citizen", "organization"]
OWNER_KINDS: tuple[str, ...] = ("citizen", "organization")

_CITIZEN_RE = re.compile(r"^\d{12}$")
_ORG_RE = re.compile(r"^\d{10}(\d{3})?$")
_NONCE_BYTES = 12
_ENC_VERSION = b"\x01"


def normalize_owner_id(owner_kind: str, owner_id: str) -> str:
    """Return the canonical form of an owner ID or raise :class:`InvalidRequest`.

    Spaces, dots and dashes are removed (``0101234567-001`` -> ``0101234567001``). The error
    message never echoes the ID.
    """
    if owner_kind not in OWNER_KINDS:
        raise InvalidRequest(f"owner_kind must be one of {OWNER_KINDS}, got {owner_kind!r}")
    canonical = re.sub(r"[\s.\-]", "", owner_id or "")
    pattern = _CITIZEN_RE if owner_kind == "citizen" else _ORG_RE
    if not pattern.match(canonical):
        expected = "12 digits" if owner_kind == "citizen" else "10 or 13 digits (tax code, optional -NNN)"
        raise InvalidRequest(f"malformed {owner_kind} ID: expected {expected}")
    return canonical


def canonical_id(owner_id: str) -> str:
    """Canonical form used for the HMAC when the kind is unknown (lookups by ID alone)."""
    return re.sub(r"[\s.\-]", "", owner_id or "")


def owner_key(secret: bytes, owner_id: str) -> str:
    """Opaque, stable owner key: hex HMAC-SHA256 of the canonical ID under the server secret."""
    return hmac.new(secret, canonical_id(owner_id).encode("ascii", "strict"), hashlib.sha256).hexdigest()


def derive_key(secret: bytes, purpose: bytes) -> bytes:
    """A 256-bit key for one ``purpose`` from the server secret (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class OwnerIdCipher:
    """Encrypts owner IDs for storage (AES-256-GCM; the owner key is the associated data)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(derive_key(secret, b"sohoa/repository/owner-id-encryption/v1"))

    def encrypt(self, owner_id: str, key: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _ENC_VERSION + nonce + self._aead.encrypt(nonce, owner_id.encode("ascii"), key.encode("ascii"))

    def decrypt(self, blob: bytes, key: str) -> str:
        if blob[:1] != _ENC_VERSION:
            raise InvalidRequest("unknown owner-ID encryption version")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        return self._aead.decrypt(nonce, sealed, key.encode("ascii")).decode("ascii")

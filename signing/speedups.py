"""Two behaviour-preserving speed-ups for hot spots of pyHanko 0.38 / asn1crypto 1.5 verification.

Both are module-level function replacements (the libraries offer no hook), installed once by
:func:`install` and only active inside :func:`fast_verification` (a context variable: other
threads and tasks, and plain pyHanko use in the same process — e.g. the benchmark's reference
path — keep the original code). Outside that block, and for any input that is not the plain
case, the original functions run. ``tests/test_sign_verify_batch.py`` checks the equivalence.

1. **Hex strings.** pyHanko 0.38 reads a hex string one byte at a time through a Python
   generator (``pyhanko.pdf_utils.generic.read_hex_string_from_stream``). A signature's
   ``/Contents`` is a hex string of 8-30 thousand digits, and pyHanko reads it several times per
   verification (the signature dictionary is re-read for each historical revision during
   difference analysis): a third of a whole verification's CPU time went there. :func:`read_hex_string` slices the
   string out of the stream in one piece; anything unusual (a ``%`` comment, a non-hex byte, no
   closing ``>``) is handed to the original function from the string's start, so results, stream
   position and errors are the original's.

2. **Directory-name comparison.** Checking a signature's ESS signing-certificate attribute
   compares the attribute's issuer name with the certificate's. pyHanko's byte-for-byte shortcut
   never matches there (the attribute's name keeps its explicit ``[4]`` tag), so asn1crypto's
   RFC 4518 string preparation runs — in pure Python, character by character, on freshly parsed
   objects — five times per time-stamped signature: a quarter of what was left. The
   preparation is a pure function of the string (it never looks at ``self``), so
   :func:`ldap_string_prep` memoises it (LRU of 4096 strings of at most 256 characters).
"""

from __future__ import annotations

import binascii
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from asn1crypto.x509 import NameTypeAndValue
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE

_ORIGINAL = generic.read_hex_string_from_stream
_ORIGINAL_PREP = NameTypeAndValue._ldap_string_prep
_ENABLED: ContextVar[bool] = ContextVar("sohoa_fast_verification", default=False)
_INSTALL_LOCK = threading.Lock()
_CHUNK = 1 << 15
_MEMO_MAX_CHARS = 256  # names longer than this (unusual, maybe hostile) are not memoised


def original_read_hex_string(stream: IO[bytes]) -> generic.PdfObject:
    """pyHanko's own implementation (for comparisons)."""
    return _ORIGINAL(stream)


def read_hex_string(stream: IO[bytes]) -> generic.PdfObject:
    """Drop-in replacement for ``generic.read_hex_string_from_stream`` (stream at the ``<``)."""
    if not _ENABLED.get():
        return _ORIGINAL(stream)
    start = stream.tell()
    parts: list[bytes] = []
    offset = 1  # skip the opening '<' (the original reads it without looking at it)
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:  # no closing '>': let the original raise its own error
            stream.seek(start)
            return _ORIGINAL(stream)
        end = chunk.find(b">", offset)
        if end >= 0:
            parts.append(chunk[offset:end])
            break
        parts.append(chunk[offset:])
        offset = 0
    body = b"".join(parts)
    digits = body.translate(None, PDF_WHITESPACE)
    if b"%" in body or digits.translate(None, generic.HEX_DIGITS):
        stream.seek(start)  # comments or bad bytes: exact original behaviour, errors included
        return _ORIGINAL(stream)
    stream.seek(start + 1 + len(body) + 1)  # '<' body '>'
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


@functools.lru_cache(maxsize=4096)
def _prepared(string: str) -> str:
    return _ORIGINAL_PREP(None, string)  # type: ignore[arg-type]  # never uses self


def original_ldap_string_prep(string: str) -> str:
    """asn1crypto's own RFC 4518 preparation (for comparisons)."""
    return _ORIGINAL_PREP(None, string)  # type: ignore[arg-type]


def ldap_string_prep(self: Any, string: str) -> str:
    """Drop-in replacement for ``NameTypeAndValue._ldap_string_prep`` (memoised)."""
    if not _ENABLED.get() or not isinstance(string, str) or len(string) > _MEMO_MAX_CHARS:
        return _ORIGINAL_PREP(self, string)
    return _prepared(string)


def install() -> None:
    """Put both replacements in place (idempotent; a function someone else already replaced is
    left alone)."""
    with _INSTALL_LOCK:
        if generic.read_hex_string_from_stream is _ORIGINAL:
            generic.read_hex_string_from_stream = read_hex_string
        if NameTypeAndValue._ldap_string_prep is _ORIGINAL_PREP:
            NameTypeAndValue._ldap_string_prep = ldap_string_prep  # type: ignore[method-assign]


@contextmanager
def fast_verification() -> Iterator[None]:
    """Use the replacements in this thread/task (and tasks started from it) for the block."""
    install()
    token = _ENABLED.set(True)
    try:
        yield
    finally:
        _ENABLED.reset(token)


__all__ = [
    "fast_verification",
    "install",
    "ldap_string_prep",
    "original_ldap_string_prep",
    "original_read_hex_string",
    "read_hex_string",
]

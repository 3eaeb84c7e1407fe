"""Vietnamese-aware text folding for diacritics-insensitive search.

``fold("Nguyễn Văn Đạt")`` -> ``"nguyen van dat"``: lower-case, ``đ`` -> ``d`` (it is a letter of
its own, not a ``d`` with a combining mark, so Unicode decomposition alone leaves it), every
combining mark removed, whitespace collapsed. The same function folds the indexed text and the
query on every database, so SQLite and PostgreSQL agree on what matches.
"""
from __future__ import annotations

import re
import unicodedata

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")
_LETTER_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})


def fold(text: str) -> str:
    """Lower-case, diacritics-free, single-spaced form of ``text``."""
    decomposed = unicodedata.normalize("NFD", (text or "").translate(_LETTER_MAP).lower())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFC", stripped)).strip()


def fold_tokens(text: str) -> list[str]:
    """Folded word tokens of ``text`` (letters/digits runs), in order."""
    return _WORD_RE.findall(fold(text))

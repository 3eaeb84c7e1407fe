"""Vietnamese-aware text folding for diacritics-insensitive search.

``fold("Nguyễn Văn Đạt")`` -> ``"nguyen van dat"``: lower-case, ``đ`` -> ``d`` (it is a letter of
its own, not a ``d`` with a combining mark, so Unicode decomposition alone leaves it), every
combining mark removed, whitespace collapsed. The same function folds the indexed text and the
query on every database, so SQLite and PostgreSQL agree on what matches.
"""
from __future__ import annotations

import functools
import re
import unicodedata

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case, diacritics-free, single-spaced form of ``text``."""
    lowered = (text or "").lower().replace("đ", "d").replace("ð", "d")  # Đ/Ð lower-case to these
    decomposed = unicodedata.normalize("NFD", lowered)
    stripped = _bmp_combining_marks().sub("", decomposed)
    if stripped and max(stripped) > "\uffff":  # marks outside the BMP (historic scripts): char by char
        stripped = "".join(ch for ch in stripped if not unicodedata.combining(ch))
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFC", stripped)).strip()


@functools.cache
def _bmp_combining_marks() -> re.Pattern[str]:
    """A character class of every combining mark of the Basic Multilingual Plane (all Vietnamese
    tone and vowel marks among them), built once: removing them is then one C-speed pass instead
    of a Python-level test per character."""
    marks = "".join(re.escape(chr(cp)) for cp in range(0x10000) if unicodedata.combining(chr(cp)))
    return re.compile(f"[{marks}]+")


def fold_tokens(text: str) -> list[str]:
    """Folded word tokens of ``text`` (letters/digits runs), in order."""
    return _WORD_RE.findall(fold(text))

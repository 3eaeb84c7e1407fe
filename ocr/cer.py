"""Character error rate (CER) on NFC text: Levenshtein distance / reference length.

Whitespace runs are collapsed to one space on both sides (layout spacing is not a reading error),
so the rate measures characters, diacritics included (NFC: "ệ" is one character).
"""
from __future__ import annotations

import unicodedata

from rapidfuzz.distance import Levenshtein


def normalize_for_cer(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def cer(reference: str, hypothesis: str) -> float:
    """Edit distance between normalized texts over the reference length (0.0 = perfect)."""
    ref, hyp = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)

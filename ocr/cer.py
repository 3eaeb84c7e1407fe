"""Character error rate (CER) on NFC text.

- :func:`cer`: Levenshtein distance / reference length over the whole page, whitespace runs
  collapsed (the standard, reading-order-sensitive rate).
- :func:`cer_flex`: the same errors counted line by line, each reference line matched to its best
  place in the OCR text wherever it is (a simplified "flexible character accuracy", Clausner et al.
  2020), so a two-column header read row-by-row instead of column-by-column is not counted as
  hundreds of character errors. Unmatched OCR characters count as insertions.
"""
from __future__ import annotations

import unicodedata

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein


def normalize_for_cer(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def cer(reference: str, hypothesis: str) -> float:
    """Edit distance between normalized texts over the reference length (0.0 = perfect)."""
    ref, hyp = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def cer_flex(reference: str, hypothesis: str) -> float:
    """Reading-order-tolerant CER: each reference line aligned to its best OCR substring."""
    lines = [normalize_for_cer(line) for line in reference.splitlines()]
    lines = sorted((line for line in lines if line), key=len, reverse=True)
    total = sum(len(line) for line in lines)
    remaining = "\n".join(normalize_for_cer(line) for line in hypothesis.splitlines() if line.strip())
    if total == 0:
        return 0.0 if not remaining.strip() else 1.0
    errors = 0
    for line in lines:
        if not remaining.strip():
            errors += len(line)
            continue
        start, end = _best_span(line, remaining)
        errors += Levenshtein.distance(line, remaining[start:end])
        remaining = remaining[:start] + "\n" + remaining[end:]
    errors += len("".join(remaining.split()))  # OCR text no reference line claimed
    return errors / total


def _best_span(line: str, text: str) -> tuple[int, int]:
    """Span of ``text`` most similar to ``line``, widened/narrowed to the best edit distance."""
    alignment = fuzz.partial_ratio_alignment(line, text)
    if alignment is None:
        return 0, 0
    start, end = alignment.dest_start, alignment.dest_end
    best = (Levenshtein.distance(line, text[start:end]), start, end)
    slack = max(2, len(line) // 5)
    for new_start in range(max(0, start - slack), min(len(text), start + slack) + 1):
        for new_end in (end - slack // 2, end, end + slack // 2):
            if new_end <= new_start or new_end > len(text):
                continue
            cost = Levenshtein.distance(line, text[new_start:new_end])
            if cost < best[0]:
                best = (cost, new_start, new_end)
    return best[1], best[2]

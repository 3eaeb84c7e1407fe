"""Document-type classification: OCR text -> :class:`ocr.types.Classification`.

Two kinds of evidence, combined in ONE calibrated model (so the confidence is a probability):

* **title similarity**: fuzzy (rapidfuzz) match of the upper-case lines near the top of the page
  against each type's ``title_patterns`` from ``ocr/catalog.yaml``, diacritics-insensitive, over
  windows of 1-3 consecutive lines (titles wrap);
* **character n-grams** (TF-IDF, 2-4 chars on diacritics-folded lower-case text), which survive
  OCR errors and missing diacritics.

A logistic regression over both, calibrated with sigmoid scaling on cross-validated predictions
(scikit-learn ``CalibratedClassifierCV``), is trained by ``scripts/train_classifier.py`` on
generated documents with simulated OCR noise plus "other" documents (notices, minutes, reports...)
labelled ``unknown``. Below :data:`CONFIDENCE_THRESHOLD` the answer is ``unknown`` (review queue).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz
from sklearn.base import BaseEstimator, TransformerMixin

from ocr.catalog import UNKNOWN, load_catalog
from ocr.types import Classification

MODEL_PATH = Path(__file__).with_name("models") / "classifier.joblib"
CONFIDENCE_THRESHOLD = 0.6  # below: "unknown" (goes to review)
HINT_PRIOR = 3.0  # odds multiplier given to the expected type (e.g. from the procedure's dossier)
TITLE_STRONG = 0.9  # title similarity above which the method is reported as "title"
_TITLE_REGION_LINES = 30
_MAX_WINDOW = 3


class ClassifierModelError(RuntimeError):
    """The trained model file is missing or unusable."""


def fold(text: str) -> str:
    """Diacritics-free text ("Giấy khai sinh" -> "Giay khai sinh"), whitespace collapsed."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return re.sub(r"[ \t]+", " ", text)


def model_text(text: str) -> str:
    """What the n-gram model sees: folded, lower case, digits collapsed to 0."""
    return re.sub(r"\d", "0", fold(text).lower())


def _is_upper_line(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) / len(letters) >= 0.7


def _title_key(text: str) -> str:
    """Upper-case ASCII key of a title line: "GIẤY  KHAI SINH:" -> "GIAY KHAI SINH"."""
    return " ".join(re.sub(r"[^A-Z0-9/ ]+", " ", fold(text).upper()).split())


def title_candidates(text: str) -> list[str]:
    """Upper-case line windows (1-3 consecutive lines) from the top of the page, as title keys."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:_TITLE_REGION_LINES]
    upper = [(i, _title_key(ln)) for i, ln in enumerate(lines) if _is_upper_line(ln)]
    windows: list[str] = []
    for start in range(len(upper)):
        parts = []
        for idx, (line_no, key) in enumerate(upper[start:start + _MAX_WINDOW]):
            if idx and line_no != upper[start + idx - 1][0] + 1:
                break
            parts.append(key)
            windows.append(" ".join(parts))
    return windows


@lru_cache(maxsize=1)
def _title_patterns() -> tuple[tuple[str, tuple[str, ...]], ...]:
    catalog = load_catalog()
    return tuple((t.code, tuple(_title_key(p) for p in t.title_patterns))
                 for t in catalog.types if t.code != UNKNOWN)


def title_scores(text: str) -> dict[str, float]:
    """Best fuzzy similarity (0..1) of any title window to each type's title patterns."""
    windows = title_candidates(text)
    scores: dict[str, float] = {}
    for code, patterns in _title_patterns():
        best = 0.0
        for pattern in patterns:
            for window in windows:
                best = max(best, fuzz.ratio(pattern, window) / 100.0)
        scores[code] = best
    return scores


class TitleFeatures(BaseEstimator, TransformerMixin):
    """scikit-learn transformer: one column per catalog type = title similarity, sharpened."""

    def fit(self, texts: Iterable[str], y: object = None) -> TitleFeatures:
        self.codes_ = [code for code, _ in _title_patterns()]
        return self

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        rows = []
        for text in texts:
            scores = title_scores(text)
            rows.append([max(0.0, scores.get(code, 0.0) - 0.6) / 0.4 for code in self.codes_])
        return np.asarray(rows, dtype=np.float64)


class NgramText(BaseEstimator, TransformerMixin):
    """Maps raw text to :func:`model_text` (so the saved pipeline takes raw OCR text)."""

    def fit(self, texts: Iterable[str], y: object = None) -> NgramText:
        return self

    def transform(self, texts: Iterable[str]) -> list[str]:
        return [model_text(t) for t in texts]


@lru_cache(maxsize=2)
def load_model(path: Path = MODEL_PATH):  # noqa: ANN201 - a fitted scikit-learn pipeline
    """Load the trained pipeline; fail clearly when it is missing or stale."""
    import joblib

    if not path.exists():
        raise ClassifierModelError(
            f"classifier model {path} is missing: run `.venv/bin/python scripts/train_classifier.py`")
    try:
        bundle = joblib.load(path)
    except Exception as exc:  # a corrupt/incompatible pickle: say which file and how to fix it
        raise ClassifierModelError(f"cannot load classifier model {path}: {exc}; retrain it with "
                                   "scripts/train_classifier.py") from exc
    model = bundle.get("model") if isinstance(bundle, dict) else None
    if model is None:
        raise ClassifierModelError(f"{path} is not a sohoa classifier bundle")
    expected = set(load_catalog().codes)
    if set(model.classes_) - expected:
        raise ClassifierModelError(f"{path} predicts codes not in the catalog: "
                                   f"{sorted(set(model.classes_) - expected)}; retrain it")
    return model


def _apply_hint(probs: dict[str, float], hint: str | None) -> dict[str, float]:
    if hint is None:
        return probs
    if hint not in probs:
        raise ValueError(f"hint {hint!r} is not a catalog document type")
    boosted = {code: p * (HINT_PRIOR if code == hint else 1.0) for code, p in probs.items()}
    total = sum(boosted.values())
    return {code: p / total for code, p in boosted.items()}


def classify(text: str, hint: str | None = None) -> Classification:
    """Classify OCR text (one document, pages joined) into a catalog type.

    ``hint`` (a catalog code, e.g. what the procedure expects) multiplies that type's odds by
    :data:`HINT_PRIOR`; it never overrides strong evidence for another type.
    """
    if hint is not None and hint not in load_catalog():
        raise ValueError(f"hint {hint!r} is not a catalog document type")
    text = unicodedata.normalize("NFC", text or "")
    if len(re.findall(r"\w", text)) < 20:
        return Classification(UNKNOWN, 0.0, (), "empty")
    model = load_model()
    raw = model.predict_proba([text])[0]
    probs = {str(code): float(p) for code, p in zip(model.classes_, raw, strict=True)}
    hinted = _apply_hint(probs, hint)
    ranked = tuple(sorted(hinted.items(), key=lambda kv: kv[1], reverse=True))
    best, confidence = ranked[0]
    method = "model"
    if hint is not None and best == hint and max(probs, key=probs.get) != hint:
        method = "hint"
    elif best != UNKNOWN and title_scores(text).get(best, 0.0) >= TITLE_STRONG:
        method = "title+model"
    candidates = tuple((code, round(p, 4)) for code, p in ranked[:5])
    if best == UNKNOWN or confidence < CONFIDENCE_THRESHOLD:
        # confidence of "unknown" = probability that it is none of the known types
        best_known = max(p for code, p in hinted.items() if code != UNKNOWN)
        return Classification(UNKNOWN, round(1.0 - best_known, 4), candidates, method)
    return Classification(best, round(confidence, 4), candidates, method)

"""Train the document-type classifier and write ``ocr/models/classifier.joblib``.

Training data: documents rendered by ``samples.generator`` (seeds from --seed-start, disjoint from
the benchmark's seeds), their ground-truth text passed through a simulated-OCR noise model (lost
diacritics, confusable letters, merged header columns, dropped lines, page cut), plus documents
outside the catalog (notices, minutes, reports...) labelled ``unknown``.

    .venv/bin/python scripts/train_classifier.py            # ~1 min on 2 cores
    .venv/bin/python scripts/train_classifier.py --per-type 60 --out /tmp/clf.joblib
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import unicodedata
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report
from sklearn.pipeline import FeatureUnion, Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr.catalog import UNKNOWN  # noqa: E402
from ocr.classify import MODEL_PATH, NgramText, TitleFeatures  # noqa: E402
from samples.generator import DOC_TYPES, OTHER_TYPES, render_document  # noqa: E402

TRAIN_SEED_START = 100_000  # benchmark and tests use seeds < 100000
_CONFUSIONS = {
    "ệ": "ê", "ộ": "ô", "ơ": "o", "ư": "u", "ă": "a", "đ": "d", "ậ": "â", "ị": "i", "ạ": "a",
    "ọ": "o", "ụ": "u", "ế": "é", "ố": "ó", "ờ": "ò", "ữ": "ũ", "Đ": "D", "Ư": "U", "Ơ": "O",
    "l": "I", "I": "l", "i": "í", "0": "O", "O": "0", "1": "l", "5": "S", "e": "c", "c": "e",
    "h": "b", "n": "u", "u": "n", "m": "rn", "g": "q", "y": "v", "t": "f", "8": "B", "6": "b",
}
_JUNK = [",", ".", "'", "‘", "-", "_", "|", "~", "ˆ", "`"]


def _strip_marks(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def ocr_noise(text: str, rng: random.Random, level: float) -> str:
    """Simulate OCR damage; ``level`` 0 (none) .. 1 (a bad phone photo)."""
    if level <= 0:
        return text
    lines = text.splitlines()
    # Header columns read side by side ("UBND XÃ ... CỘNG HÒA ...").
    if len(lines) > 6 and rng.random() < 0.5:
        lines = [f"{lines[0]} {lines[3]}", f"{lines[1]} {lines[4]}", f"{lines[2]} {lines[5]}", *lines[6:]]
    out_lines = []
    for line in lines:
        if rng.random() < 0.05 * level:
            continue  # a line lost under a seal or a fold
        words = []
        for word in line.split():
            if rng.random() < 0.35 * level:
                word = _strip_marks(word)
            chars = []
            for ch in word:
                r = rng.random()
                if r < 0.04 * level and ch in _CONFUSIONS:
                    chars.append(_CONFUSIONS[ch])
                elif r < 0.05 * level:
                    continue
                else:
                    chars.append(ch)
            if rng.random() < 0.03 * level:
                chars.append(rng.choice(_JUNK))
            words.append("".join(chars))
        out_lines.append(" ".join(w for w in words if w))
    if rng.random() < 0.1 * level:  # bottom of the page cut off
        out_lines = out_lines[: max(8, int(len(out_lines) * rng.uniform(0.6, 0.9)))]
    return "\n".join(out_lines)


def build_dataset(per_type: int, seed_start: int, noise_copies: int, rng: random.Random
                  ) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    other_per_kind = max(1, per_type * 2 // len(OTHER_TYPES))
    jobs = [(t, t, per_type) for t in DOC_TYPES] + [(t, UNKNOWN, other_per_kind) for t in OTHER_TYPES]
    for doc_type, label, count in jobs:
        for i in range(count):
            text = render_document(doc_type, seed_start + i, dpi=100).text
            texts.append(text)
            labels.append(label)
            for _ in range(noise_copies):
                texts.append(ocr_noise(text, rng, rng.uniform(0.2, 1.0)))
                labels.append(label)
    return texts, labels


def build_pipeline(c: float = 8.0) -> Pipeline:
    features = FeatureUnion([
        ("ngrams", Pipeline([
            ("text", NgramText()),
            ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3,
                                      max_features=20000, sublinear_tf=True, dtype=np.float32)),
        ])),
        ("title", TitleFeatures()),
    ])
    classifier = CalibratedClassifierCV(LogisticRegression(C=c, max_iter=3000), method="sigmoid",
                                        cv=3, ensemble=False)
    return Pipeline([("features", features), ("clf", classifier)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-type", type=int, default=120, help="clean documents per type")
    parser.add_argument("--noise-copies", type=int, default=2, help="noisy copies per document")
    parser.add_argument("--seed-start", type=int, default=TRAIN_SEED_START)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    if args.seed_start < TRAIN_SEED_START:
        parser.error(f"training seeds must start at >= {TRAIN_SEED_START} (lower seeds are for tests/bench)")
    rng = random.Random(20241023)
    t0 = time.perf_counter()
    texts, labels = build_dataset(args.per_type, args.seed_start, args.noise_copies, rng)
    val_texts, val_labels = build_dataset(max(5, args.per_type // 5), args.seed_start + 50_000, 1, rng)
    print(f"dataset: {len(texts)} train / {len(val_texts)} validation texts "
          f"({time.perf_counter() - t0:.1f} s)")
    model = build_pipeline()
    model.fit(texts, labels)
    predicted = model.predict(val_texts)
    print(f"validation accuracy (noisy generated text): {accuracy_score(val_labels, predicted):.4f}")
    print(classification_report(val_labels, predicted, digits=3, zero_division=0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bundle = {"model": model, "format": 1, "sklearn": sklearn.__version__,
              "trained": {"per_type": args.per_type, "noise_copies": args.noise_copies,
                          "seed_start": args.seed_start}}
    joblib.dump(bundle, args.out, compress=3)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

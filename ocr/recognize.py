"""Vietnamese OCR with Tesseract: ``CleanPage`` -> ``PageText`` (words, boxes, confidences, text).

Tesseract runs in-process through its C++ API (``tesserocr``, built against the system's
libtesseract, so it is the very engine the ``tesseract`` command runs): the model is loaded once
per thread and reused for every page, and the OCR image is handed over as raw pixels - no process
spawn, no model reload, no image encode/decode per page (about 0.2-0.4 CPU s per page saved, see
docs/benchmarks-ocr.md). The engine is single-threaded (``OMP_THREAD_LIMIT=1`` is set before
libtesseract loads, unless the caller set it); parallelism comes from pages side by side
(:func:`recognize_many` threads, which run Tesseract without the GIL, or
:func:`clean_and_recognize_many` processes).

Word boxes are mapped from OCR-image pixels back to archive-image pixels (``CleanPage.ocr_scale``)
and all text is NFC-normalized. Blank pages are not sent to Tesseract.

Born-digital PDF pages are OCR'd like scans (their rendered image reads near-perfectly and the
PDF/A text layer needs word boxes); their own text stays in ``CleanPage.text_layer``, and
``OcrOptions.prefer_text_layer`` makes ``PageText.text`` that exact text instead of the OCR text.
"""
from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import functools
import io
import multiprocessing
import os
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ocr.imaging import to_gray
from ocr.types import CleanPage, PageText, Word

if TYPE_CHECKING:
    from ocr.preprocess import PreprocessOptions
    from ocr.types import SourcePage

NOISE_CONF = 50.0  # symbol-only "words" below this confidence are dirt, not text
GRAPHIC_CONF = 50.0  # words below this confidence AND taller than GRAPHIC_HEIGHT x the page's
GRAPHIC_HEIGHT = 1.6  # median word height are strokes of a signature or seal, not text


class OcrError(RuntimeError):
    """Tesseract failed or cannot load its model; the message says which page and why."""


@dataclass(frozen=True)
class OcrOptions:
    lang: str = "vie"  # Tesseract language(s), e.g. "vie" or "vie+eng"
    tessdata_dir: Path | None = None  # None: the system's tessdata (Debian tesseract-ocr-vie)
    psm: int = 3  # page segmentation mode: 3 = fully automatic layout
    oem: int = 1  # LSTM engine
    timeout_s: float = 120.0
    min_word_conf: float = 0.0  # words below this confidence are dropped (0 keeps all)
    skip_blank: bool = True
    prefer_text_layer: bool = False
    drop_graphics: bool = True  # drop "words" read from signatures/seals (see drop_graphic_words)
    config: tuple[tuple[str, str], ...] = field(default=())  # Tesseract variables (name, value)


def recognize(page: CleanPage, options: OcrOptions | None = None) -> PageText:
    """OCR one cleaned page; boxes in archive-image pixels, text NFC."""
    opts = options or OcrOptions()
    height, width = page.archive_image.shape[:2]
    result = PageText(index=page.index, width=width, height=height, dpi=page.dpi, engine=engine_name(opts))
    if page.blank and opts.skip_blank:
        return result
    start = time.perf_counter()
    tsv = _run_tesseract(page.ocr_image, page.dpi * page.ocr_scale, opts, f"{page.source} page {page.index + 1}")
    words = parse_tsv(tsv, page.ocr_scale, width, height, opts.min_word_conf)
    if opts.drop_graphics:
        words = drop_graphic_words(words)
    result.words = words
    result.text = words_to_text(words)
    if opts.prefer_text_layer and page.text_layer:
        result.text = unicodedata.normalize("NFC", page.text_layer)
    confs = [w.conf for w in words]
    result.mean_conf = round(float(np.mean(confs)), 2) if confs else 0.0
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def recognize_many(pages: Sequence[CleanPage], options: OcrOptions | None = None, workers: int | None = None) -> list[PageText]:
    """OCR pages side by side, one single-threaded Tesseract engine per worker thread; input order kept.

    Threads suffice here: Tesseract runs without the GIL (and no image is pickled)."""
    workers = _worker_count(workers, len(pages))
    if workers <= 1:
        return [recognize(page, options) for page in pages]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(functools.partial(recognize, options=options), pages))


def clean_and_recognize_many(
    pages: Sequence[SourcePage],
    preprocess_options: PreprocessOptions | None = None,
    ocr_options: OcrOptions | None = None,
    workers: int | None = None,
) -> list[tuple[CleanPage, PageText]]:
    """Preprocess + OCR pages in a process pool (OpenCV clean-up is CPU-bound Python too)."""
    workers = _worker_count(workers, len(pages))
    task = functools.partial(_clean_and_recognize, preprocess_options=preprocess_options, ocr_options=ocr_options)
    if workers <= 1:
        return [task(page) for page in pages]
    # "spawn": forking a process that already runs OpenCV/BLAS threads can deadlock the children
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        return list(pool.map(task, pages))


def _clean_and_recognize(page: SourcePage, preprocess_options: PreprocessOptions | None,
                         ocr_options: OcrOptions | None) -> tuple[CleanPage, PageText]:
    from ocr.preprocess import clean_page

    clean = clean_page(page, preprocess_options)
    return clean, recognize(clean, ocr_options)


def _single_threaded_worker() -> None:
    import cv2

    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)


def _worker_count(workers: int | None, jobs: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    return max(1, min(workers, jobs))


TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
_POOL: dict[tuple, list] = {}  # idle engines: {(lang, tessdata, oem, config) or ("osd",): [PyTessBaseAPI]}
_POOL_LOCK = threading.Lock()


def _tesserocr():
    """The tesserocr module, with OpenMP limited to one thread before libtesseract first loads."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    import tesserocr

    _quiet_leptonica()
    return tesserocr


@functools.lru_cache(maxsize=1)
def _quiet_leptonica() -> None:
    """Leptonica prints diagnostics of cases Tesseract handles itself ("Error in boxClipToRectangle:
    box outside rectangle") on stderr; the real failures surface as OcrError."""
    for name in ("lept", "leptonica"):
        path = ctypes.util.find_library(name)
        if path:
            try:
                ctypes.CDLL(path).setMsgSeverity(6)  # L_SEVERITY_NONE
            except (OSError, AttributeError):
                pass
            return


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str:
    first = _tesserocr().tesseract_version().splitlines()[0]  # "tesseract 5.3.0"
    return first.split()[-1] if first else "unknown"


def engine_name(options: OcrOptions) -> str:
    models = f" ({options.tessdata_dir.name})" if options.tessdata_dir else ""
    return f"tesseract {tesseract_version()} {options.lang}{models}"


@contextlib.contextmanager
def _engine(opts: OcrOptions | None, label: str):
    """An idle Tesseract engine for ``opts`` (None: orientation detection) from the process-wide
    pool, created (model loaded) only when every existing one is busy; returned to the pool after."""
    key = ("osd",) if opts is None else (opts.lang, str(opts.tessdata_dir or ""), opts.oem, opts.config)
    with _POOL_LOCK:
        idle = _POOL.get(key)
        api = idle.pop() if idle else None
    if api is None:
        api = _new_engine(opts, label)
    try:
        yield api
    finally:
        api.Clear()
        with _POOL_LOCK:
            _POOL.setdefault(key, []).append(api)


def _new_engine(opts: OcrOptions | None, label: str):
    tesserocr = _tesserocr()
    if opts is None:
        return tesserocr.PyTessBaseAPI(lang="osd", psm=tesserocr.PSM.OSD_ONLY)
    path = str(opts.tessdata_dir) if opts.tessdata_dir else tesserocr.get_languages()[0]
    if not path.endswith(os.sep):
        path += os.sep
    try:
        return tesserocr.PyTessBaseAPI(path=path, lang=opts.lang, oem=opts.oem, psm=opts.psm,
                                       variables=dict(opts.config) or None)
    except (RuntimeError, ValueError) as exc:
        raise OcrError(f"{label}: Tesseract cannot load language {opts.lang!r} from {path} ({exc})") from None


def _reset_pool_after_fork() -> None:
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()  # a fork may have copied it held by another thread


os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _set_image(api, image: np.ndarray, dpi: float) -> None:  # noqa: ANN001 (tesserocr.PyTessBaseAPI)
    """Give the engine one gray (or BGR) page at ``dpi``; Tesseract copies the pixels."""
    image = np.ascontiguousarray(to_gray(image), dtype=np.uint8)
    height, width = image.shape
    api.SetImageBytes(image.tobytes(), width, height, 1, width)
    api.SetSourceResolution(max(1, int(round(dpi))))


def _run_tesseract(image: np.ndarray, dpi: float, opts: OcrOptions, label: str) -> str:
    """Recognize one gray (or BGR) image; Tesseract's TSV (with its header line)."""
    with _engine(opts, label) as api:
        api.SetPageSegMode(opts.psm)
        _set_image(api, image, dpi)
        if not api.Recognize(int(opts.timeout_s * 1000)):
            raise OcrError(f"{label}: Tesseract failed or took longer than {opts.timeout_s:g} s")
        tsv = api.GetTSVText(0)
    return TSV_HEADER + tsv


def osd_rotation(gray: np.ndarray, dpi: float) -> tuple[int, float] | None:
    """Tesseract's orientation detection (OSD) on a gray page: (clockwise rotation that makes the
    page upright, confidence), or None when Tesseract cannot tell (too little text)."""
    try:
        with _engine(None, "osd") as api:
            _set_image(api, gray, dpi)
            result = api.DetectOrientationScript()
    except RuntimeError:
        return None  # no osd model installed, or too little text: the caller keeps its own vote
    if not result:
        return None
    # orient_deg: how far the text is turned counter-clockwise; turning it back is clockwise
    return (360 - int(result["orient_deg"])) % 360, float(result["orient_conf"])


def parse_tsv(tsv: str, scale: float, width: int, height: int, min_conf: float = 0.0) -> list[Word]:
    """Tesseract TSV -> words in archive pixels (boxes divided by ``scale`` and clipped)."""
    words: list[Word] = []
    line_ids: dict[tuple[int, int, int], int] = {}
    for row in _tsv_rows(tsv):
        if row["level"] != "5":
            continue
        text = unicodedata.normalize("NFC", row["text"]).strip()
        conf = float(row["conf"])
        if not text or conf < min_conf or (conf < NOISE_CONF and not _has_letters(text)):
            continue  # empty, below the caller's floor, or a low-confidence speck ("ˆ", "'", "~")
        block = int(row["block_num"])
        key = (block, int(row["par_num"]), int(row["line_num"]))
        line = line_ids.setdefault(key, len(line_ids))
        left = int(int(row["left"]) / scale)
        top = int(int(row["top"]) / scale)
        right = min(width, int(np.ceil((int(row["left"]) + int(row["width"])) / scale)))
        bottom = min(height, int(np.ceil((int(row["top"]) + int(row["height"])) / scale)))
        left, top = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
        words.append(Word(text=text, left=left, top=top, width=max(1, right - left), height=max(1, bottom - top),
                          conf=round(conf, 2), line=line, block=block))
    return words


def drop_graphic_words(words: Sequence[Word], max_conf: float = GRAPHIC_CONF,
                       height_factor: float = GRAPHIC_HEIGHT) -> list[Word]:
    """Without the "words" Tesseract reads from a signature scribble or a seal's rim: much taller
    than the page's text and recognized with low confidence ("NJ\"WNJYNN", "/\"WMY®"). Real words
    read with low confidence have text height; tall titles are read confidently."""
    if len(words) < 5:
        return list(words)
    text_height = float(np.median([w.height for w in words]))
    return [w for w in words if not (w.conf < max_conf and w.height > height_factor * text_height)]


def _has_letters(text: str) -> bool:
    """Letters or digits, not modifier marks such as "ˆ" (category Lm) that specks read as."""
    return any(ch.isalnum() and unicodedata.category(ch) != "Lm" for ch in text)


def _tsv_rows(tsv: str) -> Iterable[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        if row.get("level") and row.get("text") is not None:
            yield row


def words_to_text(words: Sequence[Word]) -> str:
    """Plain text in reading order: words of a line joined by spaces, lines by "\\n", blocks by a
    blank line. Side-by-side columns that Tesseract read as one line (the agency | national-motto
    header of Decree 30 documents, "Nơi nhận" | signer) are emitted column by column."""
    lines = _group_lines(words)
    blocks: list[list[str]] = []
    previous_block: int | None = None
    index = 0
    while index < len(lines):
        if len(_split_columns(lines[index])) == 2:
            left, right, index = _two_column_run(lines, index)
            blocks += [left, right]
            previous_block = None
            continue
        line = lines[index]
        if line[0].block != previous_block:
            blocks.append([])
            previous_block = line[0].block
        blocks[-1].append(_join(line))
        index += 1
    return unicodedata.normalize("NFC", "\n\n".join("\n".join(lines) for lines in blocks if lines))


def _group_lines(words: Sequence[Word]) -> list[list[Word]]:
    lines: list[list[Word]] = []
    current: tuple[int, int] | None = None
    for word in words:
        if (word.block, word.line) != current:
            lines.append([])
            current = (word.block, word.line)
        lines[-1].append(word)
    return lines


def _join(words: Sequence[Word]) -> str:
    return " ".join(word.text for word in words)


def _split_columns(line: Sequence[Word], gap_factor: float = 2.0) -> list[list[Word]]:
    """Cut a line where the space between two words is wider than ``gap_factor`` x the text height."""
    ordered = sorted(line, key=lambda w: w.left)
    height = float(np.median([w.height for w in ordered]))
    segments = [[ordered[0]]]
    for before, word in zip(ordered, ordered[1:]):
        if word.left - (before.left + before.width) > gap_factor * height:
            segments.append([])
        segments[-1].append(word)
    return segments


def _two_column_run(lines: list[list[Word]], start: int) -> tuple[list[str], list[str], int]:
    """Lines from ``start`` on that sit left/right of one vertical gutter: (left, right, next index)."""
    first_left, first_right = _split_columns(lines[start])
    gutter = (max(w.left + w.width for w in first_left) + min(w.left for w in first_right)) / 2.0
    left: list[str] = []
    right: list[str] = []
    bottom = None
    index = start
    while index < len(lines):
        line = lines[index]
        top = min(w.top for w in line)
        height = float(np.median([w.height for w in line]))
        if bottom is not None and top - bottom > 2.5 * height:
            break  # a paragraph gap ends the columns
        segments = _split_columns(line)
        ends = [(min(w.left for w in seg), max(w.left + w.width for w in seg)) for seg in segments]
        if len(segments) == 2 and ends[0][1] < gutter < ends[1][0]:
            left.append(_join(segments[0]))
            right.append(_join(segments[1]))
        elif len(segments) == 1 and ends[0][1] < gutter:
            left.append(_join(segments[0]))
        elif len(segments) == 1 and ends[0][0] > gutter:
            right.append(_join(segments[0]))
        else:
            break  # a line across the gutter (title, body text)
        bottom = max(w.top + w.height for w in line)
        index += 1
    return left, right, index

"""Typed contracts of the OCR stages (pure data, picklable: they cross process/Celery boundaries).

Data flow (the order itself lives in ``ingest.pipeline``)::

    ingest.load.load_file      -> list[SourcePage]
    ocr.preprocess.clean_page  -> CleanPage
    ocr.recognize.recognize    -> PageText
    ocr.classify.classify      -> Classification
    ocr.extract.extract_fields -> dict[str, FieldValue]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class QualityIssue:
    """Something a reception officer can act on ("ảnh bị mờ, hãy quét lại")."""

    code: str  # stable machine code: too_blurry, too_dark, low_resolution, page_cut_off, blank_page...
    message_vi: str
    message_en: str
    severity: Severity = "warning"
    page: int | None = None  # 0-based page index in the document, when known


@dataclass
class SourcePage:
    """One decoded page of an input file, before any clean-up."""

    source: str  # the input file's name (basename; never a full path with personal data)
    index: int  # 0-based page index inside that file
    image: np.ndarray  # 8-bit BGR (3 channels) or gray (2-D); original tone/colour
    dpi: float
    dpi_estimated: bool = False
    source_sha256: str = ""  # SHA-256 of the whole input file's bytes
    text_layer: str | None = None  # born-digital PDF page text, when the page had one
    media: str = ""  # detected type: image/jpeg, image/png, image/tiff, application/pdf...

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class CleanPage:
    """A page after preprocessing: the archive image (what the PDF shows) and the OCR image."""

    source: str
    index: int
    archive_image: np.ndarray  # colour/tone kept (red seals stay red), oriented, deskewed, cropped
    ocr_image: np.ndarray  # gray or binarized, same geometry as archive_image (pixel-aligned)
    dpi: float  # resolution of archive_image (after any crop; upscaling changes ocr_image only if noted)
    ocr_scale: float = 1.0  # ocr_image pixels per archive_image pixel (word boxes are mapped back)
    rotation: int = 0  # degrees clockwise applied (0/90/180/270)
    skew_angle: float = 0.0  # degrees corrected
    blank: bool = False
    quality: list[QualityIssue] = field(default_factory=list)
    steps_ms: dict[str, float] = field(default_factory=dict)  # per preprocessing step timing
    text_layer: str | None = None  # carried from SourcePage for born-digital pages


@dataclass(frozen=True)
class Word:
    """One recognized word; box in archive_image pixel coordinates (origin top-left)."""

    text: str  # NFC-normalized
    left: int
    top: int
    width: int
    height: int
    conf: float  # 0..100 as Tesseract reports
    line: int = 0  # line number within the page (reading order)
    block: int = 0


@dataclass
class PageText:
    """OCR result of one page."""

    index: int
    width: int  # archive_image width in px
    height: int
    dpi: float
    words: list[Word] = field(default_factory=list)
    text: str = ""  # NFC plain text, lines separated by "\n", blocks by a blank line
    mean_conf: float = 0.0
    engine: str = ""  # e.g. "tesseract 5.3.0 vie"
    seconds: float = 0.0


@dataclass(frozen=True)
class Classification:
    doc_type: str  # catalog code, or "unknown" when below the confidence threshold
    confidence: float  # calibrated 0..1
    candidates: tuple[tuple[str, float], ...] = ()  # best first
    method: str = ""  # "title", "model", "hint"...


@dataclass(frozen=True)
class FieldValue:
    name: str  # ho_ten, ngay_sinh, so_dinh_danh, so_van_ban, ngay_ban_hanh, co_quan_ban_hanh...
    value: str | None  # normalized value (ISO date, digits only...), None when not found/invalid
    raw: str = ""  # as read on the page
    confidence: float = 0.0  # 0..1
    valid: bool = True
    error: str | None = None  # why invalid (English code-like sentence), when valid is False
    page: int | None = None
    bbox: tuple[int, int, int, int] | None = None  # left, top, width, height in archive px


@dataclass
class Analysis:
    """Everything the OCR side knows about one document (one or more pages)."""

    pages: list[CleanPage]
    texts: list[PageText]
    classification: Classification
    fields: dict[str, FieldValue]
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n\n".join(t.text for t in self.texts)

    @property
    def quality(self) -> list[QualityIssue]:
        return [q for p in self.pages for q in p.quality]

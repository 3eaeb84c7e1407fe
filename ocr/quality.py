"""Page quality gate and blank-page detection: reasons a reception officer can act on.

All measures work on the page's normalized analysis image at a fixed working resolution (see
``ocr.preprocess``), so thresholds do not depend on the scanner's dpi. Codes are stable:
``blank_page``, ``low_resolution``, ``too_blurry``, ``too_dark``, ``too_light``, ``page_cut_off``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.types import QualityIssue, Severity

MIN_DPI = 200.0

_MESSAGES: dict[str, tuple[str, str, Severity]] = {
    "blank_page": ("Trang trắng (không có nội dung)", "Blank page (no content)", "info"),
    "low_resolution": (
        "Độ phân giải quá thấp (dưới 200 dpi), hãy quét lại ở 300 dpi",
        "Resolution too low (below 200 dpi), rescan at 300 dpi",
        "warning",
    ),
    "too_blurry": ("Ảnh bị mờ, hãy quét lại", "The image is blurry, please rescan", "warning"),
    "too_dark": (
        "Ảnh quá tối, hãy tăng độ sáng hoặc quét lại",
        "The image is too dark, increase brightness or rescan",
        "warning",
    ),
    "too_light": (
        "Chữ quá nhạt (bản sao bị phai), hãy tăng độ đậm khi quét",
        "The text is too faint (faded copy), increase scan darkness",
        "warning",
    ),
    "page_cut_off": (
        "Trang bị cắt mất nội dung ở mép, hãy đặt lại giấy và quét lại",
        "Content is cut off at the page edge, reposition the paper and rescan",
        "warning",
    ),
}


def issue(code: str, page: int | None = None, detail: str = "") -> QualityIssue:
    """A :class:`QualityIssue` with the standard bilingual message for ``code``."""
    vi, en, severity = _MESSAGES[code]
    suffix = f" ({detail})" if detail else ""
    return QualityIssue(code=code, message_vi=vi + suffix, message_en=en + suffix, severity=severity, page=page)


@dataclass(frozen=True)
class QualityThresholds:
    min_dpi: float = MIN_DPI
    blank_max_ink_ratio: float = 0.0015  # share of ink pixels below which a page is blank
    blank_max_components: int = 12  # text-sized ink blobs below which a page is blank
    min_sharpness: float = 0.5  # edge sharpness 0..1 (see ``sharpness``)
    dark_paper_level: float = 110.0  # median paper brightness (0..255) below which: too dark
    min_ink_contrast: float = 100.0  # paper minus ink level below which: faded
    cut_off_min_components: int = 3  # text blobs touching one edge at which the page is cut off


@dataclass(frozen=True)
class PageMeasures:
    ink_ratio: float
    text_components: int
    sharpness: float
    paper_level: float
    ink_level: float
    edge_components: int


def measure(gray: np.ndarray, binary_ink: np.ndarray, work_dpi: float) -> PageMeasures:
    """Measures of one page. ``gray``: raw (un-normalized) gray at ``work_dpi``; ``binary_ink``:
    uint8 mask, 255 = ink, same size, from the normalized image."""
    ink = binary_ink > 0
    ink_ratio = float(ink.mean()) if ink.size else 0.0
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary_ink, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    min_h, max_h = 0.03 * work_dpi, 0.6 * work_dpi  # ~2 pt .. ~43 pt glyphs
    text_like = (heights >= min_h) & (heights <= max_h) & (widths <= 3 * max_h)
    text_stats = stats[1:][text_like]
    paper = ~ink
    paper_level = _percentile_u8(gray, paper if paper.any() else None, 50)
    ink_level = _percentile_u8(gray, ink, 20) if ink.sum() > 50 else paper_level
    return PageMeasures(
        ink_ratio=ink_ratio,
        text_components=int(text_like.sum()),
        sharpness=sharpness(gray, ink),
        paper_level=paper_level,
        ink_level=ink_level,
        edge_components=_max_edge_touching(text_stats, gray.shape),
    )


def sharpness(gray: np.ndarray, ink: np.ndarray) -> float:
    """Edge sharpness 0..1: the strongest gradients around ink relative to the ink contrast.

    A sharp glyph edge goes from paper to ink within ~1 px at the working resolution, so the
    gradient peaks near the full contrast; blur spreads the step and lowers the peak."""
    if ink.sum() < 200:
        return 1.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.magnitude(gx, gy) / 4.0  # Sobel 3x3 gain is 4 for a unit step
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    peak = float(np.percentile(magnitude[near_ink][::4], 90))
    contrast = _percentile_u8(gray, ~ink, 50) - _percentile_u8(gray, ink, 10) if (~ink).any() else 0.0
    if contrast < 10:
        return 0.0
    return float(min(peak / contrast, 1.0))


def _percentile_u8(gray: np.ndarray, mask: np.ndarray | None, q: float) -> float:
    """Percentile of the uint8 pixels under ``mask`` (all when None), from their histogram."""
    mask_u8 = None if mask is None else mask.astype(np.uint8)
    counts = cv2.calcHist([gray], [0], mask_u8, [256], [0, 256]).ravel()
    total = counts.sum()
    if total == 0:
        return 0.0
    return float(np.searchsorted(np.cumsum(counts), total * q / 100.0))


def _max_edge_touching(stats: np.ndarray, shape: tuple[int, ...]) -> int:
    if len(stats) == 0:
        return 0
    height, width = shape[:2]
    left = stats[:, cv2.CC_STAT_LEFT]
    top = stats[:, cv2.CC_STAT_TOP]
    right = left + stats[:, cv2.CC_STAT_WIDTH]
    bottom = top + stats[:, cv2.CC_STAT_HEIGHT]
    touching = [(left <= 0).sum(), (top <= 0).sum(), (right >= width).sum(), (bottom >= height).sum()]
    return int(max(touching))


def assess(measures: PageMeasures, dpi: float, page: int | None = None,
           thresholds: QualityThresholds | None = None) -> tuple[bool, list[QualityIssue]]:
    """(blank, issues) for one page. A blank page gets only the ``blank_page`` notice."""
    t = thresholds or QualityThresholds()
    blank = measures.ink_ratio < t.blank_max_ink_ratio or measures.text_components < t.blank_max_components
    if blank:
        return True, [issue("blank_page", page)]
    issues: list[QualityIssue] = []
    if dpi < t.min_dpi:
        issues.append(issue("low_resolution", page, f"{dpi:.0f} dpi"))
    blurry = measures.sharpness < t.min_sharpness
    if measures.paper_level < t.dark_paper_level:
        issues.append(issue("too_dark", page))
    elif not blurry and measures.paper_level - measures.ink_level < t.min_ink_contrast:
        issues.append(issue("too_light", page))  # blur also greys the ink: one reason is enough
    if blurry:
        issues.append(issue("too_blurry", page))
    if measures.edge_components >= t.cut_off_min_components:
        issues.append(issue("page_cut_off", page))
    return False, issues

"""Scan clean-up with OpenCV: ``SourcePage`` -> ``CleanPage`` (archive image + OCR image).

Steps (each switchable in :class:`PreprocessOptions`, each timed in ``CleanPage.steps_ms``):

1. ``perspective`` - phone photos: find the sheet's 4 corners against the background, warp it flat
   to its real (A4) proportions (:mod:`ocr.perspective`).
2. ``crop``        - remove dark scanner borders / background around the paper.
3. ``orientation`` - 0/90/180/270: text-line direction from projection profiles, then up/down from
   Vietnamese glyph asymmetry (diacritics and ascenders sit above the x-height band far more often
   than descenders below it). Tesseract OSD is only asked when that vote is not clear.
4. ``deskew``      - projection-profile search on ink pixel coordinates (+-15 deg).
5. ``illumination``- divide by an estimated paper background (shadows, uneven light, fading).
6. ``denoise``     - median filter, only when the paper shows speckle noise.
7. ``binarize``    - Otsu on the normalized image (OCR image only; off by default: Tesseract
   binarizes for layout itself and its LSTM recognizes the gray line images more accurately).

Geometry (warp, crop, rotation, deskew) is applied to the archive image, which keeps its colour
and tone (red seals stay red) and is what the PDF shows; a black-and-white (bitonal) scan stays
bitonal after a deskew, so the PDF keeps it as lossless CCITT G4. The OCR image is pixel-aligned with it,
or upscaled by ``CleanPage.ocr_scale`` for low-resolution scans. Coloured ink (red seals, blue
signatures) is lightened in the OCR image so it does not hide the black text under it.

Analysis runs on a copy at ``WORK_DPI`` to keep the clean-up cheap compared with OCR itself.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import cv2
import numpy as np

from ocr import quality as quality_gate
from ocr.imaging import shrink, to_gray
from ocr.perspective import find_and_warp_page
from ocr.types import CleanPage, SourcePage

WORK_DPI = 150.0
COLOURED_CHROMA = 70  # max-min channel spread above which a pixel is coloured ink (seal, signature)
A4_LONG_SIDE_INCH = 297 / 25.4
MAX_SKEW_POINTS = 30_000  # ink pixels sampled for the skew/orientation projection profiles

T = TypeVar("T")


@dataclass(frozen=True)
class PreprocessOptions:
    perspective: bool = True
    crop: bool = True
    orientation: bool = True
    deskew: bool = True
    illumination: bool = True
    denoise: bool = True
    binarize: bool = False  # Tesseract's LSTM reads gray line images better (see docs/benchmarks-ocr.md)
    drop_colour_ink: bool = True  # lighten red/blue ink (seals, signatures) in the OCR image
    quality: bool = True
    max_skew_deg: float = 15.0
    # below min_ocr_dpi the OCR image is upscaled to target_ocr_dpi: 100 dpi pages read far better
    # at 150 (CER-flex 1.13% -> 0.29%), while 150 dpi scans read as well unscaled as at 200-300 dpi
    # and cost less (docs/benchmarks-ocr.md)
    min_ocr_dpi: float = 140.0
    target_ocr_dpi: float = 150.0
    osd_fallback: bool = True  # ask Tesseract OSD when the own up/down vote is unclear
    quality_thresholds: quality_gate.QualityThresholds = field(default_factory=quality_gate.QualityThresholds)


class _Timer:
    def __init__(self) -> None:
        self.steps_ms: dict[str, float] = {}

    def run(self, name: str, func: Callable[..., T], *args: object) -> T:
        start = time.perf_counter()
        result = func(*args)
        self.steps_ms[name] = round(self.steps_ms.get(name, 0.0) + (time.perf_counter() - start) * 1000, 2)
        return result


def clean_page(page: SourcePage, options: PreprocessOptions | None = None) -> CleanPage:
    """Orient, deskew, crop and flatten one page; build its OCR image and quality verdict."""
    opts = options or PreprocessOptions()
    timer = _Timer()
    image = _validated_image(page)
    dpi = float(page.dpi)
    bitonal = is_bitonal(image)

    if opts.perspective:
        warped = timer.run("perspective", find_and_warp_page, image)
        if warped is not None:
            image = warped
            if page.dpi_estimated:
                dpi = _a4_dpi(image)
    if opts.crop:
        image = timer.run("crop", crop_dark_borders, image, dpi)

    rotation, skew = 0, 0.0
    if opts.orientation or opts.deskew:
        rotation, skew = timer.run("orientation", detect_orientation_and_skew, image, dpi, opts)
        image = timer.run("rotate", rotate_image, image, rotation, skew)

    gray = timer.run("gray", ocr_gray, image, opts.drop_colour_ink)
    normalized = timer.run("illumination", normalize_illumination, gray, dpi) if opts.illumination else gray
    if opts.denoise:
        normalized = timer.run("denoise", denoise, normalized)

    native = normalized
    scale = 1.0
    if dpi < opts.min_ocr_dpi and opts.target_ocr_dpi > dpi:
        scale = min(opts.target_ocr_dpi / dpi, 3.0)
        normalized = timer.run("upscale", cv2.resize, normalized, None, None, scale, scale, cv2.INTER_CUBIC)
    ocr_image = timer.run("binarize", binarize, normalized) if opts.binarize else normalized

    blank, issues = False, []
    if opts.quality:
        blank, issues = timer.run("quality", _assess, gray, native if opts.illumination else None, dpi,
                                  page.index, opts)

    if bitonal:  # a warp or deskew interpolated gray edges: the archive stays black and white (G4)
        image = timer.run("rebinarize", rebinarize, image)

    return CleanPage(
        source=page.source,
        index=page.index,
        archive_image=image,
        ocr_image=ocr_image,
        dpi=dpi,
        ocr_scale=scale,
        rotation=rotation,
        skew_angle=round(skew, 3),
        blank=blank,
        quality=issues,
        steps_ms=timer.steps_ms,
        text_layer=page.text_layer,
    )


def _validated_image(page: SourcePage) -> np.ndarray:
    image = page.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"{page.source} page {page.index + 1}: image must be an 8-bit gray or BGR array")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if min(image.shape[:2]) < 16:
        raise ValueError(f"{page.source} page {page.index + 1}: image is too small ({image.shape[1]}x{image.shape[0]})")
    if not (page.dpi and math.isfinite(page.dpi) and page.dpi > 0):
        raise ValueError(f"{page.source} page {page.index + 1}: dpi must be a positive number")
    return image


def is_bitonal(image: np.ndarray) -> bool:
    """True for a gray page of pure black and white pixels only (a fax/G4 scan); a sparse row
    sample first, so gray and colour pages are rejected without scanning every pixel."""
    if image.ndim != 2:
        return False
    for rows in (image[::16], image):
        if np.count_nonzero((rows != 0) & (rows != 255)):
            return False
    return True


def rebinarize(image: np.ndarray) -> np.ndarray:
    """Back to pure black and white at mid-gray (the interpolated edge pixels of a rotation)."""
    _, bitonal = cv2.threshold(image, 127, 255, cv2.THRESH_BINARY)
    return bitonal


def _a4_dpi(image: np.ndarray) -> float:
    return float(round(max(image.shape[:2]) / A4_LONG_SIDE_INCH))


def _work_copy(image: np.ndarray, dpi: float) -> tuple[np.ndarray, float]:
    """Gray copy at about WORK_DPI and the factor work px per image px."""
    width = image.shape[1]
    factor = min(WORK_DPI / dpi, 1.0)
    if factor < 0.95:
        image = shrink(image, factor)
        factor = image.shape[1] / float(width)
    else:
        factor = 1.0
    return to_gray(image), factor


# --------------------------------------------------------------------------- perspective / crop


def crop_dark_borders(image: np.ndarray, dpi: float) -> np.ndarray:
    """Cut dark bands (scanner lid, background) along the edges; never more than 15% per side."""
    gray, factor = _work_copy(image, dpi)
    dark = gray < 80
    rows = dark.mean(axis=1)
    cols = dark.mean(axis=0)

    def band(profile: np.ndarray) -> int:
        limit = int(len(profile) * 0.15)
        n = 0
        while n < limit and profile[n] > 0.6:
            n += 1
        return n

    top, bottom = band(rows), band(rows[::-1])
    left, right = band(cols), band(cols[::-1])
    if top == bottom == left == right == 0:
        return image
    pad = 2  # also drop the shaded transition next to the band
    y0 = int((top + pad) / factor) if top else 0
    y1 = image.shape[0] - (int((bottom + pad) / factor) if bottom else 0)
    x0 = int((left + pad) / factor) if left else 0
    x1 = image.shape[1] - (int((right + pad) / factor) if right else 0)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


# --------------------------------------------------------------------------- orientation / skew


def _ink_mask(gray: np.ndarray) -> np.ndarray:
    background = cv2.dilate(gray, np.ones((15, 15), np.uint8))
    norm = cv2.divide(gray, background, scale=255)
    _, ink = cv2.threshold(norm, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # keep text-sized blobs only: drop speckle and huge marks (photos, borders, table rules)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h = stats[:, cv2.CC_STAT_HEIGHT]
    w = stats[:, cv2.CC_STAT_WIDTH]
    keep = (h >= 3) & (h <= 60) & (w <= 120) & (w <= 6 * h)  # rules and underlines are not text
    keep[0] = False
    return keep[labels]


def _profile_score(coords: np.ndarray, angle_deg: float) -> float:
    """Peakiness of the ink projection onto the axis perpendicular to text lines at angle."""
    theta = math.radians(angle_deg)
    ys, xs = coords
    r = ys * math.cos(theta) - xs * math.sin(theta)
    r = (r - r.min()).astype(np.int32)
    hist = np.bincount(r)
    n = float(hist.sum())
    return float((hist.astype(np.float64) ** 2).sum() * len(hist) / (n * n)) if n else 0.0


def _best_angle(coords: np.ndarray, max_deg: float) -> tuple[float, float]:
    best_angle, best_score = 0.0, -1.0
    for step, span in ((1.0, max_deg), (0.2, 1.0), (0.05, 0.2)):
        center = best_angle
        for angle in np.arange(center - span, center + span + 1e-9, step):
            score = _profile_score(coords, float(angle))
            if score > best_score:
                best_angle, best_score = float(angle), score
    return best_angle, best_score


def detect_orientation_and_skew(image: np.ndarray, dpi: float, options: PreprocessOptions) -> tuple[int, float]:
    """(rotation clockwise in {0,90,180,270}, skew in degrees to rotate counter-clockwise)."""
    gray, _ = _work_copy(image, dpi)
    ink = _ink_mask(gray)
    points = np.nonzero(ink)
    if len(points[0]) < 500:
        return 0, 0.0
    stride = max(1, len(points[0]) // MAX_SKEW_POINTS)  # the profiles' peakiness needs no more
    coords = (points[0][::stride].astype(np.float32), points[1][::stride].astype(np.float32))
    max_deg = options.max_skew_deg if options.deskew else 0.0
    h_angle, h_score = _best_angle(coords, max_deg)
    rotation = 0
    angle = h_angle
    if options.orientation:
        v_angle, v_score = _best_angle((coords[1], -coords[0]), max_deg)
        if v_score > h_score * 1.15:
            rotation, angle = 90, v_angle
        upright = _upright_vote(ink, rotation, angle)
        if abs(upright) < 0.08 and options.osd_fallback:
            osd = _tesseract_osd(gray)
            if osd is not None:
                return osd, (angle if options.deskew else 0.0)
        if upright < 0:
            rotation = (rotation + 180) % 360
    return rotation, (angle if options.deskew else 0.0)


def _upright_vote(ink: np.ndarray, rotation: int, skew: float) -> float:
    """> 0 when text is upright after ``rotation``+``skew``, < 0 when upside down.

    Per text line: ink above the x-height band (Vietnamese diacritics, ascenders, capitals) minus
    ink below it (descenders, dot-below), normalized."""
    mask = rotate_image(ink.astype(np.uint8) * 255, rotation, skew, border=0) > 127
    above_total, below_total = 0.0, 0.0
    stripes = 4  # side-by-side columns (header blocks) must not blur each other's line bands
    width = mask.shape[1]
    for k in range(stripes):
        profile = mask[:, k * width // stripes:(k + 1) * width // stripes].sum(axis=1).astype(np.float64)
        above, below = _line_band_ink(profile)
        above_total += above
        below_total += below
    total = above_total + below_total
    return float((above_total - below_total) / total) if total > 0 else 0.0


def _line_band_ink(profile: np.ndarray) -> tuple[float, float]:
    """Ink above and below each text line's core band (rows at >= half the line's peak)."""
    if profile.max() <= 0:
        return 0.0, 0.0
    rows = profile > 0.02 * profile.max()
    above_total, below_total = 0.0, 0.0
    start = None
    for y, on in enumerate(np.append(rows, False)):
        if on and start is None:
            start = y
        elif not on and start is not None:
            line = profile[start:y]
            if len(line) >= 4:
                core = np.nonzero(line >= 0.5 * line.max())[0]
                above_total += line[: core[0]].sum()
                below_total += line[core[-1] + 1:].sum()
            start = None
    return above_total, below_total


def _tesseract_osd(gray: np.ndarray) -> int | None:
    from ocr.recognize import osd_rotation

    found = osd_rotation(gray, WORK_DPI)
    if found is None or found[1] < 2.0:
        return None
    return found[0]


def rotate_image(image: np.ndarray, rotation: int, skew: float, border: int | None = None) -> np.ndarray:
    """Rotate clockwise by ``rotation`` (multiple of 90) then counter-clockwise by ``skew`` degrees.

    The skew rotation keeps the canvas size; uncovered corners take the paper colour."""
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if rotation % 360:
        image = cv2.rotate(image, codes[rotation % 360])
    if abs(skew) < 0.05:
        return image
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), skew, 1.0)
    if border is None:
        fill = _paper_colour(image)
    else:
        fill = (border,) * (1 if image.ndim == 2 else image.shape[2])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _paper_colour(image: np.ndarray) -> tuple[int, ...]:
    sample = image[:: max(1, image.shape[0] // 200), :: max(1, image.shape[1] // 200)]
    if image.ndim == 2:
        return (int(np.percentile(sample, 90)),)
    return tuple(int(np.percentile(sample[:, :, c], 90)) for c in range(image.shape[2]))


# --------------------------------------------------------------------------- OCR image


def ocr_gray(image: np.ndarray, drop_colour_ink: bool = True) -> np.ndarray:
    """Gray image for OCR; strongly coloured pixels (red seals, blue ink) take their lightest channel."""
    if image.ndim == 2:
        return image
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if not drop_colour_ink:
        return gray
    step = max(1, min(image.shape[:2]) // 400)
    ys, xs = np.nonzero(_chroma(image[::step, ::step]) > COLOURED_CHROMA)
    if len(ys) == 0:
        return gray  # no coloured ink at all: skip the full-size pass
    # full-size pass only over the box holding the coloured ink (seals, signatures are small)
    y0, y1 = max(0, (ys.min() - 2) * step), min(image.shape[0], (ys.max() + 3) * step)
    x0, x1 = max(0, (xs.min() - 2) * step), min(image.shape[1], (xs.max() + 3) * step)
    chroma, lightest = _chroma(image[y0:y1, x0:x1], with_max=True)
    _, coloured = cv2.threshold(chroma, COLOURED_CHROMA, 255, cv2.THRESH_BINARY)
    cv2.copyTo(lightest, coloured, gray[y0:y1, x0:x1])
    return gray


def _chroma(image: np.ndarray, with_max: bool = False):
    """max(B,G,R) - min(B,G,R) per pixel (and the max channel when asked)."""
    b, g, r = cv2.split(image)
    high = cv2.max(cv2.max(b, g), r)
    chroma = cv2.subtract(high, cv2.min(cv2.min(b, g), r))
    return (chroma, high) if with_max else chroma


def normalize_illumination(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Divide by the paper background (max filter over text, then smooth) and stretch contrast."""
    small = shrink(gray, min(50.0 / dpi, 1.0))  # background varies slowly: estimate it at ~50 dpi
    kernel = max(3, int(round(0.12 * 50)) | 1)  # wider than a glyph stroke cluster (~3 mm)
    background = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel)))
    background = cv2.medianBlur(background, 5)
    background = cv2.resize(background, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    normalized = cv2.divide(gray, np.maximum(background, 1), scale=255)
    low = float(np.percentile(normalized[:: 4, :: 4], 0.5))
    if low < 200:
        normalized = cv2.convertScaleAbs(normalized, alpha=255.0 / (255.0 - low), beta=-low * 255.0 / (255.0 - low))
    return normalized


def denoise(gray: np.ndarray) -> np.ndarray:
    """Median 3x3 when the paper carries speckle noise; unchanged otherwise."""
    sample = gray[:: 2, :: 2]
    paper = sample[sample > 200]
    if paper.size < 1000 or float(paper.std()) < 6.0:
        return gray
    return cv2.medianBlur(gray, 3)


def binarize(gray: np.ndarray) -> np.ndarray:
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


# --------------------------------------------------------------------------- quality


def _assess(gray_full: np.ndarray, normalized_full: np.ndarray | None, dpi: float, index: int,
            opts: PreprocessOptions) -> tuple[bool, list]:
    """Quality verdict from the page's final gray and illumination-normalized images (shrunk to
    WORK_DPI; the normalization is only redone when the illumination step was switched off)."""
    factor = min(WORK_DPI / dpi, 1.0)
    gray = shrink(gray_full, factor)
    work_dpi = dpi * gray.shape[1] / gray_full.shape[1]
    if normalized_full is None:
        normalized = normalize_illumination(gray, work_dpi)
    else:
        normalized = shrink(normalized_full, factor)
    otsu, _ = cv2.threshold(normalized, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # on a blank sheet Otsu splits paper texture in two: ink must also be clearly darker than paper
    _, ink = cv2.threshold(normalized, min(otsu, 200.0), 255, cv2.THRESH_BINARY_INV)
    measures = quality_gate.measure(gray, ink, work_dpi)
    return quality_gate.assess(measures, dpi, index, opts.quality_thresholds)

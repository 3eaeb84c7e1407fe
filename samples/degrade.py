"""Realistic scan degradations of clean document images, for tests and the OCR benchmark.

``degrade(image, kind, seed, dpi)`` returns ``(degraded image, its dpi)``; the same seed gives the
same pixels. Kinds (``KINDS``):

- ``clean_300``   the page at 300 dpi, untouched apart from resampling
- ``scan_200``    200 dpi office scan: slight blur, sensor noise, JPEG q85, skew <= 1 deg
- ``bad_150``     150 dpi cheap scan: blur, strong noise, JPEG q35, gray paper, skew <= 2 deg
- ``rotated``     fed sideways or upside down (90/180/270) plus 1..5 deg skew
- ``phone_photo`` photographed on a table: perspective, background, shadow, uneven light, JPEG
- ``faded``       old photocopy: ink lightened to gray, yellowed paper, low contrast
- ``red_seal``    colour scan that keeps a red seal (draw it with the generator: ``seal=True``)
  over the signature block: slight blur, noise, JPEG q85, small skew
- ``punched``     archive file page at 300 dpi: two filing holes (ISO 838: 6 mm, 80 mm apart,
  12 mm from the edge) showing the scanner's black lid, a dark lid band along one edge,
  yellowed paper, small skew
"""
from __future__ import annotations

import math
import zlib

import cv2
import numpy as np

KINDS: tuple[str, ...] = ("clean_300", "scan_200", "bad_150", "rotated", "phone_photo", "faded", "red_seal",
                          "punched")


def degrade(image: np.ndarray, kind: str, seed: int, dpi: int = 300) -> tuple[np.ndarray, int]:
    """Degrade a clean page image (gray or BGR uint8 at ``dpi``) the way ``kind`` says."""
    if kind not in KINDS:
        raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError("image must be an 8-bit gray or BGR numpy array")
    if dpi <= 0:
        raise ValueError("dpi must be positive")
    return _KIND_FUNCS[kind](image, _rng(seed, kind), dpi)


def _rng(seed: int, kind: str) -> np.random.Generator:
    """The random stream of one degradation (``phone_photo_corners`` replays phone_photo's)."""
    return np.random.default_rng([seed, KINDS.index(kind)])


def capture_seed(doc_type: str, seed: int) -> int:
    """A degradation seed of its own for document ``(doc_type, seed)``: documents of different types
    rendered from the same seed must not share one synthetic photo/scan (same perspective, shadow,
    noise), or a benchmark measures a single capture many times."""
    return zlib.crc32(f"{doc_type}:{seed}".encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------- kinds


def _clean_300(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    return resample(image, dpi, 300), 300


def _scan_200(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = resample(image, dpi, 200)
    out = rotate(out, rng.uniform(-1.0, 1.0))
    out = blur(out, 0.6)
    out = add_noise(out, rng, 4.0)
    return jpeg(out, 85), 200


def _bad_150(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = resample(image, dpi, 150)
    out = tint_paper(out, (215, 215, 215))
    out = rotate(out, rng.uniform(-2.0, 2.0))
    out = blur(out, 0.9)
    out = add_noise(out, rng, 12.0)
    return jpeg(out, 35), 150


def _rotated(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = resample(image, dpi, 300)
    quarter = int(rng.choice([90, 180, 270]))
    skew = float(rng.uniform(1.0, 5.0) * rng.choice([-1, 1]))
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    out = rotate(cv2.rotate(out, codes[quarter]), skew)
    out = add_noise(out, rng, 3.0)
    return jpeg(out, 90), 300


def _faded(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = resample(image, dpi, 300)
    bgr = to_bgr(out).astype(np.float32) / 255.0
    ink_level = rng.uniform(0.55, 0.65)  # darkest ink becomes mid-gray
    paper = np.array([200, 228, 238], dtype=np.float32) / 255.0  # yellowed paper (BGR)
    faded = paper * (ink_level + (1.0 - ink_level) * bgr)
    out = np.clip(faded * 255.0, 0, 255).astype(np.uint8)
    out = blur(out, 0.7)
    out = add_noise(out, rng, 3.0)
    return jpeg(out, 85), 300


def _red_seal(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = to_bgr(resample(image, dpi, 300))
    out = rotate(out, rng.uniform(-1.0, 1.0))
    out = blur(out, 0.6)
    out = add_noise(out, rng, 4.0)
    return jpeg(out, 85), 300


def _phone_photo(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    page = to_bgr(resample(image, dpi, 200))
    ph, pw = page.shape[:2]
    frame_w, frame_h, background, target = _phone_layout(rng, pw, ph)
    source = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    warped = cv2.warpPerspective(page, matrix, (frame_w, frame_h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (frame_w, frame_h))
    mask = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[:, :, None] / 255.0
    light = _lighting(rng, frame_h, frame_w)
    on_page = mask * light[:, :, None]
    photo = warped.astype(np.float32) * on_page + background.astype(np.float32) * (light[:, :, None] - on_page)
    photo[:, :, 0] *= 0.93  # warm indoor light
    out = np.clip(photo, 0, 255).astype(np.uint8)
    out = blur(out, 0.8)
    out = add_noise(out, rng, 5.0)
    # pixels per inch of the sheet on average over its (foreshortened) surface
    effective_dpi = int(round(200.0 * math.sqrt(cv2.contourArea(target) / (pw * ph))))
    return jpeg(out, 80), effective_dpi


def _phone_layout(rng: np.random.Generator, pw: int, ph: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Camera frame size, table background and the sheet's corners in the frame."""
    # the camera frame: portrait 3:4, page covers ~70-85% of its height
    frame_h = int(ph / rng.uniform(0.75, 0.88))
    frame_w = int(frame_h * 0.75)
    background = _table_texture(rng, frame_h, frame_w)
    target = _camera_view(rng, pw, ph, frame_w, frame_h, coverage=0.9)
    return frame_w, frame_h, background, target


def phone_photo_corners(image: np.ndarray, seed: int, dpi: int = 300) -> np.ndarray:
    """Where ``degrade(image, "phone_photo", seed, dpi)`` puts the sheet's corners (top-left,
    top-right, bottom-right, bottom-left; photo pixels): the ground truth for page detection."""
    rng = _rng(seed, "phone_photo")
    ph, pw = resample(image, dpi, 200).shape[:2]
    return _phone_layout(rng, pw, ph)[3]


def _punched(image: np.ndarray, rng: np.random.Generator, dpi: int) -> tuple[np.ndarray, int]:
    out = to_bgr(resample(image, dpi, 300))
    out = tint_paper(out, (205, 225, 232))
    punch_holes(out, 300, lid=int(rng.integers(15, 45)))
    out = rotate(out, rng.uniform(-1.0, 1.0))
    # the scanner lid shows past one edge of the sheet (the sheet lay off the glass's corner)
    side = int(rng.integers(0, 4))
    band = int(rng.uniform(2.0, 6.0) / 25.4 * 300)
    lid = (20, 20, 20)
    if side == 0:
        out[:band] = lid
    elif side == 1:
        out[-band:] = lid
    elif side == 2:
        out[:, -band:] = lid
    else:
        out[:, :band // 2] = lid  # the punched edge: only a thin band, the holes stay on the page
    out = blur(out, 0.6)
    out = add_noise(out, rng, 4.0)
    return jpeg(out, 85), 300


def punch_holes(image: np.ndarray, dpi: float, lid: int = 25) -> list[tuple[int, int, int]]:
    """Two ISO 838 filing holes along the left edge of a portrait page, drawn in place in the
    scanner lid's tone; returns their (x, y, radius) in pixels."""
    mm = dpi / 25.4
    height = image.shape[0]
    radius = int(round(3.0 * mm))
    x = int(round(12.0 * mm))
    holes = [(x, int(round(height / 2 + dy * mm)), radius) for dy in (-40.0, 40.0)]
    colour = (lid,) * (1 if image.ndim == 2 else image.shape[2])
    for cx, cy, r in holes:
        cv2.circle(image, (cx, cy), r, colour, thickness=-1, lineType=cv2.LINE_AA)
    return holes


_KIND_FUNCS = {
    "clean_300": _clean_300,
    "scan_200": _scan_200,
    "bad_150": _bad_150,
    "rotated": _rotated,
    "phone_photo": _phone_photo,
    "faded": _faded,
    "red_seal": _red_seal,
    "punched": _punched,
}


# --------------------------------------------------------------------------- building blocks


def to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def resample(image: np.ndarray, dpi_from: float, dpi_to: float) -> np.ndarray:
    if abs(dpi_from - dpi_to) < 0.5:
        return image.copy()
    factor = dpi_to / dpi_from
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` on an enlarged canvas filled with the paper colour."""
    height, width = image.shape[:2]
    radians = math.radians(abs(degrees))
    new_w = int(math.ceil(width * math.cos(radians) + height * math.sin(radians)))
    new_h = int(math.ceil(height * math.cos(radians) + width * math.sin(radians)))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    matrix[0, 2] += (new_w - width) / 2
    matrix[1, 2] += (new_h - height) / 2
    fill = tuple(int(v) for v in np.atleast_1d(np.median(image.reshape(-1, 1 if image.ndim == 2 else 3), axis=0)))
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian sensor noise (seeded from ``rng``)."""
    noise = np.empty(image.shape, np.int16)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(noise, 0.0, sigma)
    return cv2.add(image.astype(np.int16), noise).clip(0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def tint_paper(image: np.ndarray, paper_bgr: tuple[int, int, int]) -> np.ndarray:
    """Map white paper to ``paper_bgr`` (gray or yellowed stock), keeping ink dark."""
    if image.ndim == 2:
        level = float(np.mean(paper_bgr)) / 255.0
        return (image.astype(np.float32) * level).astype(np.uint8)
    return (image.astype(np.float32) * (np.array(paper_bgr, np.float32) / 255.0)).astype(np.uint8)


def _camera_view(rng: np.random.Generator, pw: int, ph: int, frame_w: int, frame_h: int,
                 coverage: float) -> np.ndarray:
    """Image corners of a ``pw`` x ``ph`` sheet seen by a pinhole camera tilted up to 15 deg."""
    rx, ry, rz = (math.radians(v) for v in (rng.uniform(-15, 15), rng.uniform(-12, 12), rng.uniform(-4, 4)))
    rot_x = np.array([[1, 0, 0], [0, math.cos(rx), -math.sin(rx)], [0, math.sin(rx), math.cos(rx)]])
    rot_y = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    rot_z = np.array([[math.cos(rz), -math.sin(rz), 0], [math.sin(rz), math.cos(rz), 0], [0, 0, 1]])
    corners = np.array([[-pw / 2, -ph / 2, 0], [pw / 2, -ph / 2, 0], [pw / 2, ph / 2, 0], [-pw / 2, ph / 2, 0]])
    focal = 1.1 * max(frame_w, frame_h)  # ~ a phone's 26 mm-equivalent lens
    camera = corners @ (rot_z @ rot_y @ rot_x).T + np.array([0.0, 0.0, focal * max(pw, ph) / frame_h])
    projected = focal * camera[:, :2] / camera[:, 2:3]
    # fit the projected sheet inside the frame at the wanted coverage, slightly off-centre
    span = projected.max(axis=0) - projected.min(axis=0)
    scale = coverage * min(frame_w / span[0], frame_h / span[1])
    projected = (projected - projected.mean(axis=0)) * scale
    shift = np.array([frame_w / 2, frame_h / 2]) + rng.uniform(-0.02, 0.02, size=2) * np.array([frame_w, frame_h])
    return (projected + shift).astype(np.float32)


def _table_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = np.array(rng.choice([(40, 60, 90), (70, 75, 80), (30, 35, 45), (90, 110, 130)]), dtype=np.float32)
    small = rng.normal(0.0, 18.0, size=(max(2, height // 40), max(2, width // 40))).astype(np.float32)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    table = cv2.merge([texture + float(b) for b in base])
    return add_noise(np.clip(table, 0, 255).astype(np.uint8), rng, 6.0)


def _lighting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative light field: a linear fall-off plus a soft shadow band (hand or phone)."""
    small_h, small_w = max(2, height // 8), max(2, width // 8)
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    ys *= height / small_h
    xs *= width / small_w
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xs / width - 0.5) * math.cos(angle) + (ys / height - 0.5) * math.sin(angle)
    light = 0.92 + 0.25 * ramp
    shadow_angle = rng.uniform(0, math.pi)
    distance = (xs - rng.uniform(0.2, 0.8) * width) * math.cos(shadow_angle) + \
               (ys - rng.uniform(0.2, 0.8) * height) * math.sin(shadow_angle)
    softness = 0.08 * max(height, width)
    shadow = 1.0 - 0.35 / (1.0 + np.exp(-distance / softness))
    return cv2.resize((light * shadow).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)

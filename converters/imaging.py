"""Encoding archive page images for the data message.

Policy (size vs. fidelity, Decree 30/2020 "colour, >= 200 dpi, 100% scale"):

- bitonal pages (only black and white pixels) -> 1-bit CCITT Group 4 (lossless, tiny);
- pages with at most 16 distinct colours (palette scans, 4-bit gray) -> indexed PNG at 1/2/4 bits
  per pixel (lossless; JPEG would both blur and enlarge them);
- other gray pages -> 8-bit gray JPEG; colour pages -> RGB JPEG (visually lossless at q 85-90, keeps
  red seals red), unless ``lossless`` is asked, then PNG (Flate);
- a colour image whose three channels are equal is stored as gray.

The encoded bytes are handed to img2pdf, which embeds JPEG and CCITT data unchanged (so the
SHA-256 of the stream equals the SHA-256 of the JPEG file that ``pdfimages -all`` writes).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

Encoding = Literal["jpeg", "ccitt-g4", "flate"]
PALETTE_MAX_COLOURS = 16


class ImageInputError(ValueError):
    """The page image cannot be used (wrong dtype, shape, empty...)."""


@dataclass(frozen=True)
class EncodedImage:
    data: bytes  # a complete JPEG, TIFF (G4) or PNG file
    encoding: Encoding
    width: int
    height: int
    dpi: float


def to_pil(image: np.ndarray) -> Image.Image:
    """An 8-bit gray or BGR(A) OpenCV array as a Pillow image (L or RGB)."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"page image must be a numpy array, not {type(image).__name__}")
    if image.size == 0:
        raise ImageInputError("page image is empty")
    if image.dtype != np.uint8:
        raise ImageInputError(f"page image must be 8-bit (uint8), not {image.dtype}")
    if image.ndim == 2:
        return Image.fromarray(image, mode="L")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        bgr = image[:, :, :3]
        if _channels_equal(bgr):
            return Image.fromarray(np.ascontiguousarray(bgr[:, :, 0]), mode="L")
        return Image.fromarray(cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2RGB),
                               mode="RGB")
    raise ImageInputError(f"page image must be gray (H, W) or BGR (H, W, 3), got shape {image.shape}")


def _channels_equal(bgr: np.ndarray) -> bool:
    """True when B == G == R everywhere (a gray page stored as BGR); a sparse row sample first,
    so colour pages (the usual case) are rejected without scanning every pixel."""
    for rows in (bgr[::16], bgr):
        if not (np.array_equal(rows[:, :, 0], rows[:, :, 1])
                and np.array_equal(rows[:, :, 1], rows[:, :, 2])):
            return False
    return True


def is_bitonal(img: Image.Image) -> bool:
    """True for a gray image holding only pure black and pure white pixels."""
    if img.mode != "L":
        return False
    lo, hi = img.getextrema()
    if (lo, hi) not in ((0, 255), (0, 0), (255, 255)):
        return False
    histogram = img.histogram()
    return histogram[0] + histogram[255] == img.width * img.height


def to_palette(img: Image.Image, limit: int = PALETTE_MAX_COLOURS) -> Image.Image | None:
    """The same pixels as a "P" image when there are at most ``limit`` colours, else None."""
    colours = img.getcolors(limit)
    if colours is None:
        return None
    values = sorted(colour for _, colour in colours)
    if img.mode == "L":
        lut = [0] * 256
        for index, level in enumerate(values):
            lut[level] = index
        indexed = img.point(lut)
        indexed.putpalette([channel for level in values for channel in (level, level, level)])
        return indexed
    rgb = np.asarray(img, dtype=np.uint32)
    packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in values], dtype=np.uint32)
    indices = np.searchsorted(keys, packed).astype(np.uint8)
    indexed = Image.fromarray(indices, mode="L")
    indexed.putpalette([channel for colour in values for channel in colour])
    return indexed


def encode_page_image(
    image: np.ndarray, dpi: float, *, quality: int = 85, lossless: bool = False
) -> EncodedImage:
    """Encode one archive image for embedding (see the module docstring for the policy)."""
    if not 1 <= quality <= 100:
        raise ImageInputError(f"JPEG quality must be 1..100, got {quality}")
    if not dpi or dpi <= 0:
        raise ImageInputError(f"dpi must be positive, got {dpi}")
    img = to_pil(image)
    buf = io.BytesIO()
    resolution = (round(dpi, 3), round(dpi, 3))
    palette = None if lossless else to_palette(img)
    if is_bitonal(img):
        img.convert("1").save(buf, format="TIFF", compression="group4", dpi=resolution)
        encoding: Encoding = "ccitt-g4"
    elif palette is not None:
        colours = len(palette.getpalette() or []) // 3
        bits = next(b for b in (1, 2, 4, 8) if colours <= 2 ** b)
        palette.save(buf, format="PNG", optimize=False, compress_level=9, dpi=resolution, bits=bits)
        encoding = "flate"
    elif lossless:
        img.save(buf, format="PNG", optimize=False, compress_level=9, dpi=resolution)
        encoding = "flate"
    else:
        img.save(buf, format="JPEG", quality=quality, optimize=True, dpi=resolution,
                 subsampling="4:2:0" if quality < 90 else "4:4:4")
        encoding = "jpeg"
    return EncodedImage(data=buf.getvalue(), encoding=encoding, width=img.width,
                        height=img.height, dpi=float(dpi))

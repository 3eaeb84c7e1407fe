"""Input decoding: scanned images and PDFs -> ``SourcePage`` objects.

Supported inputs (detected from the file's bytes, not its name): JPEG, PNG, TIFF (multi-page,
CCITT G4...), BMP, WebP and PDF. Image pages are decoded with Pillow (EXIF orientation applied);
PDF pages are rasterized with poppler's ``pdftoppm`` at the native resolution of the page's
scanned image (300 dpi for born-digital pages), and a born-digital page's own text is kept in
``SourcePage.text_layer``.

Every refusal raises :class:`InputError` with a stable ``code`` and a one-line message naming the
file: ``empty_file``, ``unsupported_type``, ``corrupt``, ``too_large``, ``encrypted``,
``no_pages``, ``already_signed``. Sizes are checked from headers before any pixel is decoded, so
a decompression bomb costs neither memory nor time.
"""
from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ocr.types import SourcePage

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".pdf"}
)

A4_LONG_SIDE_INCH = 297 / 25.4
DEFAULT_PDF_DPI = 300.0


class InputError(ValueError):
    """An input file sohoa refuses to digitize, with a stable machine ``code``."""

    def __init__(self, file: str, code: str, message: str) -> None:
        self.file = file
        self.code = code
        self.message = message
        super().__init__(f"{file}: {message}")


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on what one input file may cost to decode."""

    max_bytes: int = 200 * 1024 * 1024
    max_pages: int = 500
    max_pixels: int = 150_000_000  # per page; A3 at 600 dpi is ~70 Mpx
    min_dpi: float = 50.0  # metadata outside [min_dpi, max_dpi] is treated as absent
    max_dpi: float = 1200.0
    max_page_inches: float = 24.0  # resolution metadata implying a longer page is not believed (A2 = 23.4")
    pdf_min_dpi: float = 150.0  # raster resolution bounds for PDF pages
    pdf_max_dpi: float = 600.0
    pdftoppm_timeout_s: float = 120.0


def load_file(path: Path, limits: LoadLimits | None = None) -> list[SourcePage]:
    """Decode every page of the file at ``path``; raise :class:`InputError` when it is unusable."""
    limits = limits or LoadLimits()
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(name, "not_found", "file not found") from None
    if size > limits.max_bytes:
        raise InputError(name, "too_large", f"file is {size} bytes, the limit is {limits.max_bytes}")
    return load_bytes(path.read_bytes(), name, limits)


def load_bytes(data: bytes, name: str, limits: LoadLimits | None = None) -> list[SourcePage]:
    """Decode every page of an uploaded file's bytes; ``name`` is only used in messages/records."""
    limits = limits or LoadLimits()
    name = Path(name).name or "upload"
    if not data:
        raise InputError(name, "empty_file", "the file is empty")
    if len(data) > limits.max_bytes:
        raise InputError(name, "too_large", f"file is {len(data)} bytes, the limit is {limits.max_bytes}")
    media = sniff_media_type(data)
    if media is None:
        raise InputError(name, "unsupported_type", "unsupported file type (expected JPEG, PNG, TIFF, BMP, WebP or PDF)")
    digest = hashlib.sha256(data).hexdigest()
    if media == "application/pdf":
        pages = _load_pdf(data, name, limits)
    else:
        pages = _load_image(data, name, media, limits)
    for page in pages:
        page.source_sha256 = digest
        page.media = media
    return pages


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the file's magic bytes, or None when it is not a supported type."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return None


# --------------------------------------------------------------------------- images


def _load_image(data: bytes, name: str, media: str, limits: LoadLimits) -> list[SourcePage]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fast = _decode_single_with_opencv(image, data, name, limits)
            if fast is not None:
                return [fast]
            pages: list[SourcePage] = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= limits.max_pages:
                    raise InputError(name, "too_large", f"more than {limits.max_pages} pages")
                _check_pixels(name, frame.size, limits)
                pages.append(_frame_to_page(frame, name, index, limits))
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(name, "too_large", f"image is too large to decode safely (over {limits.max_pixels} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(name, "corrupt", f"cannot decode the {media} image: {_one_line(exc)}") from None
    if not pages:
        raise InputError(name, "no_pages", "the image file contains no page")
    return pages


def _decode_single_with_opencv(image: Image.Image, data: bytes, name: str, limits: LoadLimits) -> SourcePage | None:
    """Plain single-page JPEG/PNG/BMP/WebP (gray or RGB, complete file): decode with OpenCV, ~2x
    cheaper than Pillow + conversion. OpenCV applies the EXIF orientation itself. None: use Pillow."""
    if getattr(image, "n_frames", 1) != 1 or image.mode not in ("L", "RGB") or not _is_complete(image.format, data):
        return None
    _check_pixels(name, image.size, limits)
    flag = cv2.IMREAD_GRAYSCALE if image.mode == "L" else cv2.IMREAD_COLOR
    array = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if array is None:
        return None
    dpi = _dpi_from_info(image.info, limits)
    height, width = array.shape[:2]
    if dpi is not None and max(height, width) / dpi > limits.max_page_inches:
        dpi = None
    if dpi is None:
        return SourcePage(source=name, index=0, image=array, dpi=estimate_dpi(width, height), dpi_estimated=True)
    return SourcePage(source=name, index=0, image=array, dpi=dpi)


def _is_complete(fmt: str | None, data: bytes) -> bool:
    """The file ends where its format says it ends (OpenCV silently decodes truncated files)."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" in data[-16:]
    return fmt in ("BMP", "WEBP")


def _check_pixels(name: str, size: tuple[int, int], limits: LoadLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(name, "corrupt", f"invalid image size {width}x{height}")
    if width * height > limits.max_pixels:
        raise InputError(
            name, "too_large", f"page is {width}x{height} pixels, the limit is {limits.max_pixels} pixels"
        )


def _frame_to_page(frame: Image.Image, name: str, index: int, limits: LoadLimits) -> SourcePage:
    dpi_meta = _dpi_from_info(frame.info, limits)
    frame = ImageOps.exif_transpose(frame)  # phone photos: apply EXIF orientation
    array = _to_cv_array(frame)
    height, width = array.shape[:2]
    if dpi_meta is not None and max(height, width) / dpi_meta > limits.max_page_inches:
        dpi_meta = None  # e.g. a 4000 px phone photo tagged 72 dpi would be a 55-inch page
    if dpi_meta is None:
        return SourcePage(source=name, index=index, image=array, dpi=estimate_dpi(width, height), dpi_estimated=True)
    return SourcePage(source=name, index=index, image=array, dpi=dpi_meta)


def _dpi_from_info(info: dict, limits: LoadLimits) -> float | None:
    raw = info.get("dpi")
    if raw is None and "jfif_density" in info and info.get("jfif_unit") in (1, 2):
        density = info["jfif_density"]
        raw = density if info["jfif_unit"] == 1 else tuple(d * 2.54 for d in density)
    if raw is None:
        return None
    try:
        values = [float(v) for v in (raw if isinstance(raw, (tuple, list)) else (raw, raw))]
    except (TypeError, ValueError):
        return None
    dpi = max(values[:2])
    if not np.isfinite(dpi) or not limits.min_dpi <= dpi <= limits.max_dpi:
        return None
    return round(dpi, 2)


def estimate_dpi(width: int, height: int) -> float:
    """Resolution assuming the picture spans an A4 page's long side (camera and fax images)."""
    return float(round(min(max(max(width, height) / A4_LONG_SIDE_INCH, 72.0), 600.0)))


def _to_cv_array(image: Image.Image) -> np.ndarray:
    """Pillow image -> 8-bit gray (2-D) or BGR (3-channel) array, alpha flattened on white."""
    mode = image.mode
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image.convert("I"), dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
    if mode == "LA" or mode == "PA" or (mode == "P" and "transparency" in image.info) or mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode == "P":
        image = image.convert("RGB")
        if _is_grayscale(image):
            return np.asarray(image.convert("L"))
    elif mode != "RGB":
        image = image.convert("RGB")
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def _is_grayscale(image: Image.Image) -> bool:
    colors = image.getcolors(maxcolors=1024)
    if colors is None:
        return False
    return all(r == g == b for _, (r, g, b) in colors)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# --------------------------------------------------------------------------- PDF


def _load_pdf(data: bytes, name: str, limits: LoadLimits) -> list[SourcePage]:
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise InputError(name, "encrypted", "the PDF is password-protected") from None
    except pikepdf.PdfError as exc:
        raise InputError(name, "corrupt", f"cannot read the PDF: {_one_line(exc)}") from None
    with pdf:
        if _has_signed_signature_field(pdf):
            raise InputError(name, "already_signed", "the PDF is already signed (a signed document must not be re-digitized)")
        count = len(pdf.pages)
        if count == 0:
            raise InputError(name, "no_pages", "the PDF has no pages")
        if count > limits.max_pages:
            raise InputError(name, "too_large", f"the PDF has {count} pages, the limit is {limits.max_pages}")
        plans = [_plan_pdf_page(page, limits) for page in pdf.pages]
    for index, plan in enumerate(plans):
        pixels = (plan.width_in * plan.dpi) * (plan.height_in * plan.dpi)
        if pixels > limits.max_pixels:
            raise InputError(name, "too_large", f"page {index + 1} would be {int(pixels)} pixels, the limit is {limits.max_pixels}")
    texts = _pdf_text_layers(data, len(plans), limits)
    with tempfile.TemporaryDirectory(prefix="sohoa-pdf-") as tmp:
        source = Path(tmp) / "in.pdf"
        source.write_bytes(data)
        pages = []
        for index, plan in enumerate(plans):
            image = _rasterize(source, index, plan.dpi, plan.gray, Path(tmp), name, limits)
            text = texts[index] if index < len(texts) and texts[index].strip() else None
            pages.append(SourcePage(source=name, index=index, image=image, dpi=plan.dpi, text_layer=text))
    return pages


@dataclass(frozen=True)
class _PdfPagePlan:
    dpi: float
    gray: bool
    width_in: float
    height_in: float


def _plan_pdf_page(page: pikepdf.Page, limits: LoadLimits) -> _PdfPagePlan:
    """Raster resolution = the largest image's own resolution on the page (a scan), else 300 dpi."""
    box = [float(v) for v in page.mediabox]
    width_pt, height_pt = abs(box[2] - box[0]), abs(box[3] - box[1])
    width_in, height_in = width_pt / 72.0, height_pt / 72.0
    best: tuple[int, float, bool] | None = None  # (pixel count, dpi, gray)
    try:
        images = dict(page.images)
    except (pikepdf.PdfError, KeyError, TypeError, ValueError):
        images = {}
    for image in images.values():
        try:
            width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
            colorspace = str(image.get("/ColorSpace", ""))
            bits = int(image.get("/BitsPerComponent", 8))
        except (TypeError, ValueError, pikepdf.PdfError):
            continue
        if width <= 0 or height <= 0 or width_in <= 0:
            continue
        long_px, long_in = max(width, height), max(width_in, height_in)
        dpi = long_px / long_in
        gray = colorspace.endswith("DeviceGray") or bits == 1 or bool(image.get("/ImageMask", False))
        if best is None or width * height > best[0]:
            best = (width * height, dpi, gray)
    if best is None:
        return _PdfPagePlan(DEFAULT_PDF_DPI, False, width_in, height_in)
    dpi = float(round(min(max(best[1], limits.pdf_min_dpi), limits.pdf_max_dpi)))
    return _PdfPagePlan(dpi, best[2], width_in, height_in)


def _has_signed_signature_field(pdf: pikepdf.Pdf) -> bool:
    acroform = pdf.Root.get("/AcroForm")
    if acroform is None:
        return False
    pending = list(acroform.get("/Fields", []))
    seen = 0
    while pending and seen < 10_000:
        seen += 1
        field = pending.pop()
        if not isinstance(field, pikepdf.Dictionary):
            continue
        if field.get("/FT") == pikepdf.Name.Sig and field.get("/V") is not None:
            return True
        pending.extend(field.get("/Kids", []))
    return False


def _pdf_text_layers(data: bytes, page_count: int, limits: LoadLimits) -> list[str]:
    """Each page's own text (``pdftotext``, form-feed separated); empty strings for scans."""
    try:
        result = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-", "-"],
            input=data,
            capture_output=True,
            timeout=limits.pdftoppm_timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [""] * page_count
    if result.returncode != 0:
        return [""] * page_count
    chunks = result.stdout.decode("utf-8", errors="replace").split("\f")
    return [unicodedata.normalize("NFC", chunk).strip() for chunk in chunks[:page_count]]


def _rasterize(source: Path, index: int, dpi: float, gray: bool, tmp: Path, name: str, limits: LoadLimits) -> np.ndarray:
    prefix = tmp / f"p{index}"
    command = ["pdftoppm", "-f", str(index + 1), "-l", str(index + 1), "-r", f"{dpi:g}", "-png"]
    command += (["-gray"] if gray else []) + [str(source), str(prefix)]
    try:
        subprocess.run(command, capture_output=True, timeout=limits.pdftoppm_timeout_s, check=True)
    except subprocess.TimeoutExpired:
        raise InputError(name, "too_large", f"page {index + 1} took too long to render") from None
    except subprocess.CalledProcessError as exc:
        raise InputError(name, "corrupt", f"cannot render page {index + 1}: {_one_line(Exception(exc.stderr.decode(errors='replace')))}") from None
    produced = sorted(tmp.glob(f"p{index}-*.png"))
    if not produced:
        raise InputError(name, "corrupt", f"cannot render page {index + 1}")
    image = cv2.imread(str(produced[0]), cv2.IMREAD_UNCHANGED)
    for file in produced:
        file.unlink()
    if image is None:
        raise InputError(name, "corrupt", f"cannot render page {index + 1}")
    return image

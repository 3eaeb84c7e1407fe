"""Separator sheets and splitting one scanned file into documents.

A scanner fed a whole archive box produces one big file. Officers put a printed **separator
sheet** (``sohoa bulk separator``) in front of each document; its QR code says "a new document
starts here" and may carry the owner, dossier code and document type of that document.
Optionally blank pages separate documents too.

Nothing is lost silently: :func:`plan_segments` returns both the documents (page index lists)
and every page it leaves out (separator sheets, their blank backs, separating blank pages) with
the reason, so the bulk report can show where each page of the box went.

QR payload: ``SOHOA-SEP/1?owner=...&dossier=...&type=...`` (URL query encoding, all optional).
"""
from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import cv2
import numpy as np
import pikepdf
import qrcode
import zxingcpp
from PIL import Image, ImageSequence
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from ingest.load import InputError, sniff_media_type
from ocr import quality as quality_gate
from ocr.preprocess import normalize_illumination

PAYLOAD_PREFIX = "SOHOA-SEP/1"
THUMB_DPI = 100.0
FONT_PATHS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
              Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"))
_KEYS = {"owner": "owner_id", "dossier": "dossier_code", "type": "doc_type"}


@dataclass(frozen=True)
class SeparatorInfo:
    """What a separator sheet says about the document that follows it (all optional)."""

    owner_id: str | None = None
    dossier_code: str | None = None
    doc_type: str | None = None


def encode_payload(info: SeparatorInfo) -> str:
    query = {short: getattr(info, attr) for short, attr in _KEYS.items() if getattr(info, attr)}
    return PAYLOAD_PREFIX + ("?" + urlencode(query) if query else "")


def decode_payload(text: str) -> SeparatorInfo | None:
    """The sheet's information, or None when the text is not a sohoa separator code."""
    head, _, query = text.strip().partition("?")
    if head != PAYLOAD_PREFIX:
        return None
    values = {k: v[0].strip() for k, v in parse_qs(query, keep_blank_values=False).items() if v}
    return SeparatorInfo(**{attr: values.get(short) or None for short, attr in _KEYS.items()})


# ---- the printable sheet ----------------------------------------------------------------------
def _font() -> str:
    for path in FONT_PATHS:
        if path.exists():
            name = f"sohoa-{path.stem}"
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(path)))
            return name
    return "Helvetica"  # no Unicode TTF installed: accents may not render, the QR still works


def _masked(owner_id: str) -> str:
    return owner_id[:3] + "*" * max(0, len(owner_id) - 6) + owner_id[-3:] if len(owner_id) > 6 else "***"


def separator_pdf(info: SeparatorInfo, *, copies: int = 1) -> bytes:
    """A printable A4 separator sheet (``copies`` identical pages). The owner ID is only in the QR
    code; the printed text shows it masked."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(encode_payload(info))
    qr.make(fit=True)
    qr_png = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(qr_png, format="PNG")
    font = _font()
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    c.setTitle("sohoa separator sheet")
    width, height = A4
    for _ in range(copies):
        c.setFont(font, 26)
        c.drawCentredString(width / 2, height - 40 * mm, "TỜ PHÂN CÁCH TÀI LIỆU")
        c.setFont(font, 14)
        c.drawCentredString(width / 2, height - 50 * mm, "Separator sheet — a new document starts after this page")
        size = 80 * mm
        c.drawImage(ImageReader(io.BytesIO(qr_png.getvalue())), (width - size) / 2,
                    height - 60 * mm - size, size, size)
        c.setFont(font, 13)
        y = height - 75 * mm - size
        for label, value in (("Chủ sở hữu / Owner", _masked(info.owner_id) if info.owner_id else "—"),
                             ("Mã hồ sơ / Dossier", info.dossier_code or "—"),
                             ("Loại giấy tờ / Type", info.doc_type or "—")):
            c.drawString(40 * mm, y, f"{label}: {value}")
            y -= 9 * mm
        c.setFont(font, 10)
        c.drawCentredString(width / 2, 20 * mm, "Không lưu trang này — trang phân cách không được số hoá")
        c.showPage()
    c.save()
    return buffer.getvalue()


# ---- reading pages ------------------------------------------------------------------------------
def read_separator(gray: np.ndarray) -> SeparatorInfo | None:
    """The separator information if the page carries a sohoa separator QR code."""
    try:
        results = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    except (ValueError, RuntimeError):
        return None
    for result in results:
        info = decode_payload(result.text)
        if info is not None:
            return info
    return None


def is_blank_page(gray: np.ndarray, dpi: float) -> bool:
    """The OCR quality gate's blank-page rule, applied to a low-resolution gray page."""
    normalized = normalize_illumination(gray, dpi)
    _, ink = cv2.threshold(normalized, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if float(normalized.min()) > 180:
        ink[:] = 0
    blank, _ = quality_gate.assess(quality_gate.measure(gray, ink, dpi), dpi)
    return blank


def page_thumbnails(data: bytes, name: str, dpi: float = THUMB_DPI) -> Iterator[np.ndarray]:
    """Every page of a scan file as an 8-bit gray image at about ``dpi`` (cheap: no clean-up)."""
    media = sniff_media_type(data)
    if media is None:
        raise InputError(name, "unsupported_type", "unsupported file type")
    if media == "application/pdf":
        yield from _pdf_thumbnails(data, name, dpi)
        return
    try:
        image = Image.open(io.BytesIO(data))
        for frame in ImageSequence.Iterator(image):
            gray = frame.convert("L")
            source_dpi = _frame_dpi(frame)
            scale = min(1.0, dpi / source_dpi)
            if scale < 1.0:
                gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                                   Image.Resampling.BOX)
            yield np.asarray(gray)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InputError(name, "corrupt", f"cannot decode the {media} image (damaged or truncated)") from None


def _frame_dpi(frame: Image.Image) -> float:
    raw = frame.info.get("dpi")
    try:
        value = float(raw[0] if isinstance(raw, (tuple, list)) else raw)
    except (TypeError, ValueError, IndexError):
        value = 0.0
    if 50.0 <= value <= 1200.0:
        return value
    return max(frame.size) / (297 / 25.4)  # assume the long side spans A4


def _pdf_thumbnails(data: bytes, name: str, dpi: float, chunk: int = 16) -> Iterator[np.ndarray]:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            count = len(pdf.pages)
    except pikepdf.PdfError:
        raise InputError(name, "corrupt", "cannot read the PDF (damaged or truncated)") from None
    with tempfile.TemporaryDirectory(prefix="sohoa-thumbs-") as tmp:
        source = Path(tmp) / "in.pdf"
        source.write_bytes(data)
        for first in range(1, count + 1, chunk):
            last = min(count, first + chunk - 1)
            proc = subprocess.run(["pdftoppm", "-r", f"{dpi:g}", "-gray", "-f", str(first), "-l", str(last),
                                   "-png", str(source), str(Path(tmp) / "t")],
                                  capture_output=True, timeout=300, check=False)
            pages = sorted(Path(tmp).glob("t-*.png"))
            if proc.returncode != 0 or len(pages) != last - first + 1:
                raise InputError(name, "corrupt", f"cannot render pages {first}-{last} of the PDF")
            for page in pages:
                image = cv2.imread(str(page), cv2.IMREAD_GRAYSCALE)
                page.unlink()
                if image is None:
                    raise InputError(name, "corrupt", "cannot render a page of the PDF")
                yield image


# ---- splitting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageMark:
    """What the cheap look at one page found."""

    separator: SeparatorInfo | None = None
    blank: bool = False


@dataclass
class Segment:
    """One document inside a file: its page indices and what its separator sheet said."""

    pages: list[int]
    info: SeparatorInfo | None = None


@dataclass
class SplitPlan:
    segments: list[Segment] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)  # page index -> "separator_sheet" / "blank_page"


def scan_marks(data: bytes, name: str, *, detect_blank: bool, dpi: float = THUMB_DPI) -> list[PageMark]:
    """Look at every page once for separator codes; blankness is measured on every page when
    ``detect_blank``, otherwise only on the page after a separator sheet (its back side)."""
    marks: list[PageMark] = []
    for gray in page_thumbnails(data, name, dpi):
        separator = read_separator(gray)
        previous_is_separator = bool(marks) and marks[-1].separator is not None
        blank = separator is None and (detect_blank or previous_is_separator) and is_blank_page(gray, dpi)
        marks.append(PageMark(separator=separator, blank=blank))
    return marks


def plan_segments(marks: list[PageMark], *, split_on_blank: bool) -> SplitPlan:
    """Documents of a file from its page marks.

    * a separator sheet ends the current document and starts a new one (carrying its info);
      the sheet itself is dropped, and so is a blank page right after it (its back, duplex scans);
    * with ``split_on_blank`` a blank page (or a run of them) also separates, and is dropped;
      otherwise blank pages stay inside their document (the OCR quality gate reports them).
    """
    plan = SplitPlan()
    current = Segment(pages=[])
    after_separator = False
    for index, mark in enumerate(marks):
        if mark.separator is not None:
            if current.pages:
                plan.segments.append(current)
            current = Segment(pages=[], info=mark.separator)
            plan.dropped[index] = "separator_sheet"
            after_separator = True
            continue
        if mark.blank and (after_separator or split_on_blank):
            plan.dropped[index] = "blank_page"
            if split_on_blank and current.pages:
                plan.segments.append(current)
                current = Segment(pages=[], info=current.info)  # same separator section
            continue
        after_separator = False
        current.pages.append(index)
    if current.pages:
        plan.segments.append(current)
    return plan


# ---- taking some pages out of a file ---------------------------------------------------------------
def extract_pages(data: bytes, name: str, indices: list[int]) -> bytes:
    """A file holding only the given pages (0-based, in order), same format, pixels untouched
    (PDF pages are copied; TIFF frames are re-encoded losslessly)."""
    if indices == list(range(page_count(data, name))):
        return data
    media = sniff_media_type(data)
    if media == "application/pdf":
        with pikepdf.open(io.BytesIO(data)) as source, pikepdf.new() as out:
            _check_indices(name, indices, len(source.pages))
            for i in indices:
                out.pages.append(source.pages[i])
            buffer = io.BytesIO()
            out.save(buffer)
            return buffer.getvalue()
    image = Image.open(io.BytesIO(data))
    count = getattr(image, "n_frames", 1)
    _check_indices(name, indices, count)
    if count == 1:
        return data
    frames = []
    for i in indices:
        image.seek(i)
        frame = image.copy()
        frame.info = dict(image.info)
        frames.append(frame)
    buffer = io.BytesIO()
    dpi = image.info.get("dpi")
    compression = "group4" if all(f.mode == "1" for f in frames) else "tiff_lzw"
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:],
                   compression=compression, **({"dpi": dpi} if dpi else {}))
    return buffer.getvalue()


def _check_indices(name: str, indices: list[int], count: int) -> None:
    if not indices or any(i < 0 or i >= count for i in indices):
        raise InputError(name, "page_out_of_range", f"page selection {indices[:5]}... does not fit a file of {count} page(s)")


def page_count(data: bytes, name: str) -> int:
    """Number of pages of a scan file without decoding the pixels."""
    media = sniff_media_type(data)
    if media is None:
        raise InputError(name, "unsupported_type", "unsupported file type (expected JPEG, PNG, TIFF, BMP, WebP or PDF)")
    try:
        if media == "application/pdf":
            with pikepdf.open(io.BytesIO(data)) as pdf:
                return len(pdf.pages)
        with Image.open(io.BytesIO(data)) as image:
            return int(getattr(image, "n_frames", 1))
    except pikepdf.PasswordError:
        raise InputError(name, "encrypted", "the PDF is password-protected") from None
    except pikepdf.PdfError:
        raise InputError(name, "corrupt", "cannot read the PDF (damaged or truncated)") from None
    except (OSError, SyntaxError, ValueError):
        raise InputError(name, "corrupt", f"cannot decode the {media} image (damaged or truncated)") from None

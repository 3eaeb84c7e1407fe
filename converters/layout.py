"""Page geometry and drawing (reportlab) for data-message and paper-copy pages.

Coordinates: PDF user space in points, origin lower-left. A marked page is laid out as::

    +-------------------------------------------+
    | [officer signature]   [agency signature]  |  top band (page 1 only)
    +-------------------------------------------+
    |                                           |
    |        archive image, 100% scale          |
    |                                           |
    +-------------------------------------------+
    | conversion mark text              [QR]    |  bottom band (page 1, or every page)
    +-------------------------------------------+

The bands extend the page: they never cover the scanned content.
"""
from __future__ import annotations

import hashlib
import io
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
import qrcode.constants
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ocr.types import Word

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2 (lower-left origin, points)

# DejaVu (fonts-dejavu-core) covers every Vietnamese letter; fonts-liberation 1.07 does not
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
DEFAULT_BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"

# fontTools reports every table it cannot subset (e.g. DejaVu's FFTM) as a warning: noise here
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

MIN_MARKED_WIDTH = 420.0  # pt; narrower scans (ID cards) get a wider page so the mark fits
MARGIN = 10.0
TEXT_SIZE = 8.0
STATEMENT_SIZE = 9.0
LEADING = 1.25
SIGNATURE_BAND = 78.0
SIGNATURE_BOX_HEIGHT = 58.0
SIGNATURE_CAPTION_SIZE = 6.5
QR_MODULE_PT = 1.5  # >= 3 px per module when rendered at 150 dpi
QR_QUIET_MODULES = 2  # plus the band's own white margin
BAND_RULE_GRAY = 0.55


class FontError(ValueError):
    """A font file is missing or is not a usable TrueType font."""


@dataclass(frozen=True)
class Fonts:
    regular: str  # reportlab font names
    bold: str
    text: str = ""  # invisible text layer font (glyphless); the regular font when empty

    @property
    def text_layer(self) -> str:
        return self.text or self.regular

    def missing(self, text: str, *, bold: bool = False) -> set[str]:
        """Characters of ``text`` the font has no glyph for (they would show as .notdef)."""
        face = pdfmetrics.getFont(self.bold if bold else self.regular).face
        return {ch for ch in text if ord(ch) not in face.charToGlyph and not ch.isspace()}

    def require(self, text: str, *, bold: bool = False) -> None:
        missing = self.missing(text, bold=bold)
        if missing:
            chars = " ".join(sorted(f"U+{ord(ch):04X}" for ch in missing))
            raise FontError(f"the font lacks glyphs for {chars}; choose a font covering "
                            "Vietnamese (e.g. DejaVu Serif)")

    def printable(self, text: str) -> str:
        """``text`` with characters the text-layer font cannot encode replaced by '?'."""
        face = pdfmetrics.getFont(self.text_layer).face
        return "".join(ch if ord(ch) in face.charToGlyph or ch.isspace() else "?"
                       for ch in unicodedata.normalize("NFC", text))


@lru_cache(maxsize=16)
def _register(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise FontError(f"font file not found: {path}")
    tag = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]
    name = f"sohoa-{tag}"
    try:
        pdfmetrics.registerFont(TTFont(name, io.BytesIO(_slim_font(file, tag)), asciiReadable=False))
    except Exception as exc:  # fontTools / reportlab raise many error types for bad files
        raise FontError(f"cannot use font {path}: {exc}") from exc
    return name


def _slim_font(file: Path, tag: str) -> bytes:
    """The font reduced to what a printed mark needs, before reportlab subsets it per document:
    the scripts of ``TEXT_RANGES``, no hinting (instructions are most of DejaVu's glyph data),
    no OpenType layout tables, only the naming records. Embedded subsets shrink ~4x.

    The PostScript name gets ``tag`` appended: reportlab keys fonts by that name, so two files
    both called "DejaVuSerif" (say, a Latin-only build) would otherwise share one font."""
    from fontTools import subset
    from fontTools.ttLib import TTFont as FontToolsFont

    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # copyright, family, style, id, full name, version, PS
    options.notdef_outline = True
    font = FontToolsFont(str(file))
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[code for first, last in TEXT_RANGES
                                 for code in range(first, last + 1)])
    subsetter.subset(font)
    postscript = font["name"].getDebugName(6) or file.stem
    font["name"].setName(f"{postscript}-{tag}", 6, 3, 1, 0x409)
    font["name"].setName(f"{postscript}-{tag}", 6, 1, 0, 0)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def load_fonts(font_path: str | None = None, bold_font_path: str | None = None) -> Fonts:
    """Register (once) and return the fonts: embedded TrueType subsets with ToUnicode maps."""
    regular = _register(font_path or DEFAULT_FONT)
    bold = _register(bold_font_path or (DEFAULT_BOLD_FONT if font_path is None else font_path))
    return Fonts(regular=regular, bold=bold, text=glyphless_font())


# Scripts an OCR engine may return for Vietnamese documents (and their neighbours).
TEXT_RANGES = ((0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
                     (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F),
                     (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2460, 0x27BF),
                     (0xFFFD, 0xFFFD))
GLYPHLESS_NAME = "SohoaGlyphless"


@lru_cache(maxsize=1)
def glyphless_font() -> str:
    """Register a tiny TrueType font whose every character is one empty glyph (built with
    fontTools, ~5 KB; the embedded subset ~1 KB). The invisible OCR text needs a font with a
    ToUnicode map for search and copy, not outlines: the idea of OCRmyPDF's GlyphLessFont."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "blank"])
    builder.setupCharacterMap({code: "blank" for first, last in TEXT_RANGES
                               for code in range(first, last + 1)})
    notdef = TTGlyphPen(None)  # a visible box, as fonts must have; never selected by our text
    notdef.moveTo((50, 0))
    for point in ((50, 700), (450, 700), (450, 0)):
        notdef.lineTo(point)
    notdef.closePath()
    builder.setupGlyf({".notdef": notdef.glyph(), "blank": TTGlyphPen(None).glyph()})
    builder.setupHorizontalMetrics({".notdef": (500, 50), "blank": (500, 0)})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": GLYPHLESS_NAME, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200,
                     fsType=0)  # installable: embedding allowed
    builder.setupPost()
    data = io.BytesIO()
    builder.save(data)
    data.seek(0)
    pdfmetrics.registerFont(TTFont(GLYPHLESS_NAME, data))
    return GLYPHLESS_NAME


@dataclass(frozen=True)
class MarkBlock:
    """Wrapped lines of a mark, ready to draw, and the QR matrix (True = dark module)."""

    lines: list[tuple[str, str, float]]  # (text, font name, size)
    qr: list[list[bool]] | None

    @property
    def text_height(self) -> float:
        return sum(size * LEADING for _, _, size in self.lines)

    @property
    def qr_size(self) -> float:
        if not self.qr:
            return 0.0
        return (len(self.qr) + 2 * QR_QUIET_MODULES) * QR_MODULE_PT

    @property
    def height(self) -> float:
        return max(self.text_height, self.qr_size) + 2 * MARGIN


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR code (ISO/IEC 18004, error correction M, UTF-8 byte mode) as a module matrix."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(payload.encode("utf-8"))
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def wrap_mark(lines: Sequence[str], fonts: Fonts, width: float, *, bold_first: bool = True,
              qr_payload: str | None = None) -> MarkBlock:
    """Wrap mark lines to the text column left of the QR code."""
    qr = qr_matrix(qr_payload) if qr_payload else None
    qr_width = ((len(qr) + 2 * QR_QUIET_MODULES) * QR_MODULE_PT + MARGIN) if qr else 0.0
    column = max(width - 2 * MARGIN - qr_width, 120.0)
    wrapped: list[tuple[str, str, float]] = []
    for number, line in enumerate(lines):
        bold = bold_first and number == 0
        font, size = (fonts.bold, STATEMENT_SIZE) if bold else (fonts.regular, TEXT_SIZE)
        fonts.require(line, bold=bold)
        for part in simpleSplit(line, font, size, column):
            wrapped.append((part, font, size))
    return MarkBlock(lines=wrapped, qr=qr)


@dataclass(frozen=True)
class PageGeometry:
    width: float
    height: float
    image: Rect  # where the archive image goes
    top_band: float
    bottom_band: float

    def signature_boxes(self) -> dict[str, Rect]:
        """Officer (top-left) and agency (top-right) boxes inside the top band."""
        if self.top_band <= 0:
            return {}
        box_w = (self.width - 3 * MARGIN) / 2
        y2 = self.height - (self.top_band - SIGNATURE_BOX_HEIGHT) / 2 + SIGNATURE_CAPTION_SIZE / 2
        y1 = y2 - SIGNATURE_BOX_HEIGHT
        return {
            "officer": (MARGIN, y1, MARGIN + box_w, y2),
            "agency": (self.width - MARGIN - box_w, y1, self.width - MARGIN, y2),
        }


def page_geometry(image_width_pt: float, image_height_pt: float, *, signature_band: bool,
                  mark: MarkBlock | None) -> PageGeometry:
    """Page size and image placement for one page (bands added only where asked)."""
    marked = signature_band or mark is not None
    width = max(image_width_pt, MIN_MARKED_WIDTH) if marked else image_width_pt
    top = SIGNATURE_BAND if signature_band else 0.0
    bottom = mark.height if mark is not None else 0.0
    x = (width - image_width_pt) / 2
    return PageGeometry(width=width, height=bottom + image_height_pt + top,
                        image=(x, bottom, x + image_width_pt, bottom + image_height_pt),
                        top_band=top, bottom_band=bottom)


def draw_mark(canvas: Canvas, geometry: PageGeometry, block: MarkBlock) -> None:
    """Draw the mark text and QR code in the bottom band (black on white, vector QR)."""
    canvas.saveState()
    band = geometry.bottom_band
    canvas.setStrokeGray(BAND_RULE_GRAY)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, band - 0.5, geometry.width - MARGIN, band - 0.5)
    canvas.setFillGray(0)
    y = band - MARGIN
    for text, font, size in block.lines:
        y -= size * LEADING
        canvas.setFont(font, size)
        canvas.drawString(MARGIN, y + size * (LEADING - 1), text)
    if block.qr:
        modules = len(block.qr)
        x0 = geometry.width - MARGIN - block.qr_size + QR_QUIET_MODULES * QR_MODULE_PT
        y_top = band - MARGIN - QR_QUIET_MODULES * QR_MODULE_PT
        path = canvas.beginPath()
        for row in range(modules):
            y = round(y_top - (row + 1) * QR_MODULE_PT, 2)
            for start, length in _dark_runs(block.qr[row]):
                path.rect(round(x0 + start * QR_MODULE_PT, 2), y, length * QR_MODULE_PT,
                          QR_MODULE_PT)
        canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def _dark_runs(row: Sequence[bool]) -> Iterator[tuple[int, int]]:
    """(start, length) of each horizontal run of dark modules: one rectangle per run."""
    start = None
    for col, dark in enumerate([*row, False]):
        if dark and start is None:
            start = col
        elif not dark and start is not None:
            yield start, col - start
            start = None


def draw_signature_captions(canvas: Canvas, geometry: PageGeometry, fonts: Fonts,
                            captions: dict[str, str]) -> None:
    """Small gray captions under the (empty) signature boxes of the top band."""
    canvas.saveState()
    canvas.setFillGray(0.45)
    canvas.setFont(fonts.regular, SIGNATURE_CAPTION_SIZE)
    for role, (x1, y1, _x2, _y2) in geometry.signature_boxes().items():
        caption = captions.get(role)
        if caption:
            canvas.drawString(x1, y1 - SIGNATURE_CAPTION_SIZE - 1, caption)
    canvas.setStrokeGray(BAND_RULE_GRAY)
    canvas.setLineWidth(0.5)
    top_rule = geometry.height - geometry.top_band + 0.5
    canvas.line(MARGIN, top_rule, geometry.width - MARGIN, top_rule)
    canvas.restoreState()


def _lines(words: Iterable[Word]) -> list[list[Word]]:
    """Words grouped into lines, keeping reading order."""
    lines: list[list[Word]] = []
    key: tuple[int, int] | None = None
    for word in words:
        if not word.text.strip() or word.width <= 0 or word.height <= 0:
            continue
        if key != (word.block, word.line) or not lines:
            lines.append([])
            key = (word.block, word.line)
        lines[-1].append(word)
    return lines


def draw_text_layer(canvas: Canvas, words: Sequence[Word], *, dpi: float,
                    image_rect: Rect, fonts: Fonts) -> int:
    """Draw the OCR words as invisible text (render mode 3) exactly over the image.

    Word boxes are archive-image pixels, top-left origin. Each word is stretched horizontally to
    its box; an inter-word space is drawn and stretched to the next word so text extraction
    yields spaces. Returns the number of words drawn.
    """
    scale = 72.0 / dpi
    x0, _y0, _x1, y_top = image_rect
    drawn = 0
    text = canvas.beginText()
    text.setTextRenderMode(3)
    font = fonts.text_layer
    space_width = pdfmetrics.stringWidth(" ", font, 1.0) or 0.25
    for line in _lines(words):
        top = min(w.top for w in line)
        bottom = max(w.top + w.height for w in line)
        line_height = (bottom - top) * scale
        size = round(max(line_height * 0.85, 1.0), 2)
        baseline = y_top - bottom * scale + line_height * 0.18
        text.setFont(font, size)
        for number, word in enumerate(line):
            left = x0 + word.left * scale
            box_width = word.width * scale
            shown = fonts.printable(word.text)
            natural = pdfmetrics.stringWidth(shown, font, size)
            # invisible text: 0.01 pt and 0.1 % are far below what selection can show
            text.setTextOrigin(round(left, 2), round(baseline, 2))
            text.setHorizScale(round(100.0 * box_width / natural, 1) if natural > 0 else 100.0)
            text.textOut(shown)
            drawn += 1
            if number + 1 < len(line):
                gap = (line[number + 1].left - (word.left + word.width)) * scale
                text.setHorizScale(round(max(100.0 * gap / (space_width * size), 1.0), 1))
                text.textOut(" ")
    text.setTextRenderMode(0)
    canvas.saveState()  # Tr is graphics state: keep mode 3 from leaking into the mark
    canvas.drawText(text)
    canvas.restoreState()
    return drawn

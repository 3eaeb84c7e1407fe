"""The citizen's printed receipt (A5, reportlab): what was digitized, where it is, how to check it.

Vietnamese text in an embedded TrueType font (DejaVu Serif via ``converters.layout.load_fonts``,
subset + ToUnicode, so ``pdftotext`` reads the words back), and a QR code of the record's lookup
address drawn as vector modules (``converters.layout.qr_matrix``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from converters.layout import Fonts, load_fonts, qr_matrix

MARGIN = 12 * mm
QR_QUIET = 4 * mm  # white space around the code (>= 4 modules)
TITLE = "PHIẾU XÁC NHẬN SỐ HOÁ VĂN BẢN GIẤY"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"


@dataclass(frozen=True)
class ReceiptInfo:
    agency_name: str
    desk: str
    officer_name: str
    owner_masked: str  # never the whole personal ID number
    doc_type_name: str
    pages: int
    uri: str
    version: int
    lookup_url: str
    confirmed_at: datetime
    signature_summary: str  # e.g. "Hợp lệ (2 chữ ký số)"
    dossier_code: str | None = None
    files: tuple[str, ...] = ()


def build_receipt(info: ReceiptInfo) -> bytes:
    """One A5 page, PDF bytes."""
    fonts = load_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A5, pageCompression=1, initialFontName=fonts.regular)
    canvas.setTitle(TITLE.capitalize())
    canvas.setAuthor(info.agency_name)
    canvas.setSubject(info.uri)
    width, height = A5
    y = height - MARGIN
    y = _centered(canvas, fonts.bold, 9, info.agency_name.upper(), width, y, width * 0.9)
    y = _centered(canvas, fonts.regular, 8, info.desk, width, y, width * 0.9)
    y -= 2 * mm
    y = _centered(canvas, fonts.bold, 9, NATION, width, y, width * 0.9)
    y = _centered(canvas, fonts.regular, 9, MOTTO, width, y, width * 0.9)
    y -= 6 * mm
    y = _centered(canvas, fonts.bold, 12, TITLE, width, y, width - 2 * MARGIN)
    y -= 4 * mm
    for label, value in receipt_lines(info):
        y = _labelled(canvas, fonts, label, value, y, width - 2 * MARGIN)
    y -= QR_QUIET
    y = _qr(canvas, info.lookup_url, width, y)
    y -= QR_QUIET
    note = ("Bản điện tử (thông điệp dữ liệu) đã được ký số và lưu vào kho dữ liệu của chủ sở hữu. "
            "Quét mã QR hoặc dùng mã bản ghi để tra cứu, xác thực.")
    for line in simpleSplit(note, fonts.regular, 8, width - 2 * MARGIN):
        canvas.setFont(fonts.regular, 8)
        canvas.drawString(MARGIN, y, line)
        y -= 10
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def receipt_lines(info: ReceiptInfo) -> list[tuple[str, str]]:
    when = info.confirmed_at.strftime("%H:%M, ngày %d/%m/%Y")
    lines = [
        ("Cán bộ tiếp nhận", info.officer_name),
        ("Thời gian", when),
        ("Chủ sở hữu (số định danh)", info.owner_masked),
    ]
    if info.dossier_code:
        lines.append(("Mã hồ sơ", info.dossier_code))
    lines += [
        ("Loại văn bản", info.doc_type_name),
        ("Số trang", str(info.pages)),
    ]
    if info.files:
        lines.append(("Bản quét", ", ".join(info.files)))
    lines += [
        ("Mã bản ghi", f"{info.uri} (phiên bản {info.version})"),
        ("Chữ ký số", info.signature_summary),
        ("Tra cứu", info.lookup_url),
    ]
    return lines


def wrap(text: str, font: str, size: float, max_width: float) -> list[str]:
    """Word-wrap like reportlab's ``simpleSplit``, also breaking words longer than a line (URIs)."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, max_width) or [""]:
        while pdfmetrics.stringWidth(line, font, size) > max_width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, size) > max_width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _centered(canvas: Canvas, font: str, size: float, text: str, page_width: float, y: float,
              max_width: float) -> float:
    canvas.setFont(font, size)
    for line in simpleSplit(text, font, size, max_width):
        canvas.drawCentredString(page_width / 2, y - size, line)
        y -= size * 1.3
    return y


def _labelled(canvas: Canvas, fonts: Fonts, label: str, value: str, y: float,
              max_width: float) -> float:
    size = 9
    label_text = f"{label}: "
    label_width = canvas.stringWidth(label_text, fonts.bold, size)
    canvas.setFont(fonts.bold, size)
    canvas.drawString(MARGIN, y - size, label_text)
    lines = wrap(value, fonts.regular, size, max_width - label_width)
    canvas.setFont(fonts.regular, size)
    for line in lines:
        canvas.drawString(MARGIN + label_width, y - size, line)
        y -= size * 1.35
    return y - 1.5


def _qr(canvas: Canvas, payload: str, page_width: float, y: float) -> float:
    matrix = qr_matrix(payload)
    module = max(0.8 * mm, min(1.1 * mm, 30 * mm / len(matrix)))  # phones read >= 0.8 mm
    side = module * len(matrix)
    x0 = (page_width - side) / 2
    top = y
    canvas.setFillColorRGB(0, 0, 0)
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            if dark:
                canvas.rect(x0 + col * module, top - (row + 1) * module, module, module,
                            stroke=0, fill=1)
    return top - side

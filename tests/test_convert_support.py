"""Shared helpers for the converters tests (no tests here): synthetic Vietnamese pages drawn with
Pillow, hand-made OCR word boxes, a record, and a real pyHanko signer with a throw-away key."""
from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from converters.datamessage import MessagePage
from converters.record import ConversionInfo, FieldEntry, SourceFile, StructuredRecord
from ocr.types import PageText, Word

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
LINES = [
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY KHAI SINH",
    "Họ, chữ đệm, tên: Nguyễn Thị Lan",
    "Ngày sinh: 05/03/2024",
]
# pyHanko 0.38 writes CIDFont /W in font units: right only for 1000-unit fonts (Noto Sans Mono);
# 2048-unit fonts (DejaVu, Liberation) get wrong widths, which check_pdfa must catch
SIGNATURE_FONT = "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf"
CONVERTED_AT = dt.datetime(2026, 11, 25, 2, 15, 2, tzinfo=dt.timezone.utc)  # 09:15:02 +07:00


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True,
                          text=True).stdout


def draw_page(size: tuple[int, int] = (1240, 1754), *, seal: bool = True, line_height: int = 70,
              font_px: int = 36) -> tuple[np.ndarray, list[Word]]:
    """An A4-at-150-dpi page (BGR) with Vietnamese lines and a red seal, plus exact word boxes."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_px)
    words: list[Word] = []
    y = 150
    for number, line in enumerate(LINES):
        x = 120
        for text in line.split():
            left, top, right, bottom = draw.textbbox((x, y), text, font=font)
            draw.text((x, y), text, font=font, fill="black")
            words.append(Word(text, left, top, right - left, bottom - top, 93.0, line=number))
            x = right + font_px // 3
        y += line_height
    if seal:
        draw.ellipse((800, 1300, 1100, 1600), outline=(200, 0, 0), width=8)
    return np.array(img)[:, :, ::-1].copy(), words


def page_text(image: np.ndarray, words: list[Word], dpi: float, index: int = 0) -> PageText:
    return PageText(index=index, width=image.shape[1], height=image.shape[0], dpi=dpi, words=words,
                    text="\n".join(LINES), mean_conf=93.0, engine="hand-made")


def bitonal_page() -> np.ndarray:
    """A gray page with only pure black and white pixels (a fax-like scan), 200 dpi, A5."""
    img = Image.new("L", (1166, 1654), 255)
    ImageDraw.Draw(img).text((100, 200), "Nơi nhận: Như trên; Lưu: VT.",
                              font=ImageFont.truetype(FONT, 40), fill=0)
    return (np.array(img) > 127).astype(np.uint8) * 255


def make_record(**changes) -> StructuredRecord:
    values = dict(
        uri="000.00.12.H29.giay_khai_sinh.01JZ8X3K2M",
        doc_type="giay_khai_sinh",
        doc_type_name="Giấy khai sinh",
        owner_ref="hmac-sha256:4f1c2a9d",
        title="Giấy khai sinh — Nguyễn Thị Lan",
        fields={"ho_ten": FieldEntry(value="Nguyễn Thị Lan", raw="Nguyễn Thị Lan", confidence=0.93),
                "ngay_sinh": FieldEntry(value="2024-03-05", raw="05/03/2024", confidence=0.9)},
        source_files=[SourceFile(name="scan.png", sha256="a" * 64, media="image/png", pages=2)],
        conversion=ConversionInfo(
            statement="Văn bản này được chuyển đổi từ văn bản giấy sang thông điệp dữ liệu",
            converted_at=CONVERTED_AT, agency_name="Uỷ ban nhân dân phường Bến Nghé",
            agency_code="000.00.12.H29", officer_name="Trần Thị Hoa", system_name="sohoa",
            lookup_url="https://sohoa.example.vn/tra-cuu/000.00.12.H29.giay_khai_sinh.01JZ8X3K2M"),
        dossier_code="000.00.12.H29-261125-0001",
    )
    values.update(changes)
    return StructuredRecord(**values)


def two_pages() -> list[MessagePage]:
    colour, words = draw_page()
    return [MessagePage(colour, 150, page_text(colour, words, 150), "scan.png", 0),
            MessagePage(bitonal_page(), 200, None, "scan.png", 1)]


def decode_qr(png: Path) -> list[str]:
    import zxingcpp

    return [r.text for r in zxingcpp.read_barcodes(Image.open(png))]


class TestSigner:
    """A real PAdES signer (pyHanko) with a self-signed RSA-2048 key; test-only PKI."""

    __test__ = False

    def __init__(self) -> None:
        from asn1crypto import keys as akeys
        from asn1crypto import x509 as ax509
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        from pyhanko.sign import signers

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tran Thi Hoa (test)")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
                .sign(key, hashes.SHA256()))
        self.signer = signers.SimpleSigner(
            signing_cert=ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
            signing_key=akeys.PrivateKeyInfo.load(key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())),
            cert_registry=None)

    def sign(self, pdf: bytes, box: tuple[float, float, float, float], field: str, *,
             embedded_font: bool = True, font: str = SIGNATURE_FONT) -> bytes:
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.text import TextBoxStyle
        from pyhanko.sign import fields
        from pyhanko.sign.fields import SigSeedSubFilter
        from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
        from pyhanko.stamp import TextStampStyle

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        fields.append_signature_field(writer, fields.SigFieldSpec(field, on_page=0, box=box))
        style = TextStampStyle(
            stamp_text="Ký bởi: %(signer)s\nThời gian: %(ts)s",
            text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(font))) if embedded_font else None
        out = io.BytesIO()
        meta = PdfSignatureMetadata(field_name=field, subfilter=SigSeedSubFilter.PADES)
        PdfSigner(meta, signer=self.signer,
                  stamp_style=style).sign_pdf(writer, output=out)
        return out.getvalue()

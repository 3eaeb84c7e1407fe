"""ingest.load: decoding every supported input and refusing bad ones with stable codes."""
from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import img2pdf
import numpy as np
import pikepdf
import pytest
from PIL import Image

from ingest.load import SUPPORTED_SUFFIXES, InputError, LoadLimits, load_bytes, load_file
from tests.conftest import SHARED, require_shared

REAL = SHARED / "data" / "real_smoke" / "original"


def _page_image(width: int = 400, height: int = 560) -> Image.Image:
    """A small gray page with a dark block near the top-left (to check orientation)."""
    array = np.full((height, width), 255, np.uint8)
    array[20:60, 20:200] = 0
    return Image.fromarray(array)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _error(data: bytes, name: str, limits: LoadLimits | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        load_bytes(data, name, limits)
    return caught.value


@pytest.mark.parametrize("fmt,media", [("PNG", "image/png"), ("BMP", "image/bmp"), ("WEBP", "image/webp"),
                                       ("JPEG", "image/jpeg"), ("TIFF", "image/tiff")])
def test_single_images_decode_with_their_dpi(fmt: str, media: str) -> None:
    data = _encode(_page_image().convert("RGB"), fmt, dpi=(200, 200))
    pages = load_bytes(data, f"scan.{fmt.lower()}")
    assert len(pages) == 1
    page = pages[0]
    assert page.media == media
    assert page.image.dtype == np.uint8 and page.image.shape[:2] == (560, 400)
    assert page.source == f"scan.{fmt.lower()}"
    assert len(page.source_sha256) == 64
    if fmt != "WEBP":  # WebP carries no resolution
        assert page.dpi == pytest.approx(200, abs=0.5) and not page.dpi_estimated


def test_multipage_g4_tiff_real_scan() -> None:
    pages = load_file(require_shared(REAL / "vietsample.tif"))
    assert [p.index for p in pages] == [0, 1]
    assert all(p.dpi == 300 and not p.dpi_estimated for p in pages)
    assert pages[0].image.ndim == 2 and set(np.unique(pages[0].image)) <= {0, 255}
    assert pages[0].image.shape == (3300, 2550)


def test_exif_orientation_of_phone_photo_is_applied() -> None:
    image = _page_image().convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 deg clockwise
    pages = load_bytes(_encode(image, "JPEG", exif=exif), "photo.jpg")
    assert pages[0].image.shape[:2] == (400, 560)
    gray = cv2.cvtColor(pages[0].image, cv2.COLOR_BGR2GRAY)
    assert gray[20:60, 500:540].mean() < 60  # the block moved to the top-right


def test_missing_and_absurd_dpi_are_estimated_from_a4() -> None:
    image = _page_image(1240, 1754)  # A4 at 150 dpi
    for data in (_encode(image, "PNG"), _encode(image, "PNG", dpi=(1, 1)), _encode(image, "PNG", dpi=(90000, 90000))):
        page = load_bytes(data, "x.png")[0]
        assert page.dpi_estimated
        assert page.dpi == pytest.approx(150, abs=2)


def test_camera_72_dpi_tag_is_not_believed() -> None:
    photo = _page_image(3000, 4000).convert("RGB")
    page = load_bytes(_encode(photo, "JPEG", dpi=(72, 72)), "IMG_0001.jpg")[0]
    assert page.dpi_estimated and page.dpi == pytest.approx(4000 / (297 / 25.4), abs=1)
    small = load_bytes(_encode(_page_image(595, 842).convert("RGB"), "JPEG", dpi=(72, 72)), "fax.jpg")[0]
    assert small.dpi == 72 and not small.dpi_estimated  # an A4 page at 72 dpi is plausible


def test_rgba_is_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    page = load_bytes(_encode(rgba, "PNG"), "t.png")[0]
    assert page.image.shape == (40, 50, 3) and page.image.min() == 255


def test_scanned_pdf_is_rasterized_at_the_images_resolution() -> None:
    scan = _encode(_page_image(1654, 2339), "PNG", dpi=(200, 200))  # A4 at 200 dpi
    pdf = img2pdf.convert(scan)
    pages = load_bytes(pdf, "scan.pdf")
    assert len(pages) == 1
    page = pages[0]
    assert page.media == "application/pdf" and page.dpi == 200 and page.text_layer is None
    assert abs(page.image.shape[0] - 2339) <= 2 and abs(page.image.shape[1] - 1654) <= 2


def test_born_digital_pdf_keeps_its_text_layer() -> None:
    pages = load_file(require_shared(REAL / "vietsample1.pdf"))
    assert len(pages) == 2
    assert pages[0].text_layer is not None and "Áo Lụa Hà Đông" in pages[0].text_layer
    assert pages[0].dpi == 300 and pages[0].image.shape[:2] == (3300, 2550)


def test_empty_unsupported_and_corrupt_inputs() -> None:
    assert _error(b"", "a.png").code == "empty_file"
    assert _error("Họ tên: Nguyễn Văn A".encode(), "notes.txt").code == "unsupported_type"
    jpeg = _encode(_page_image().convert("RGB"), "JPEG")
    error = _error(jpeg[: len(jpeg) // 2], "cut.jpg")
    assert error.code == "corrupt" and "cut.jpg" in str(error) and "\n" not in str(error)
    assert _error(b"%PDF-1.7\n garbage", "broken.pdf").code == "corrupt"


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header() -> None:
    error = _error(_png_header_only(50000, 50000), "bomb.png")
    assert error.code == "too_large" and "pixels" in error.message


def test_file_and_page_limits() -> None:
    data = _encode(_page_image(), "PNG")
    assert _error(data, "x.png", LoadLimits(max_bytes=100)).code == "too_large"
    assert _error(data, "x.png", LoadLimits(max_pixels=1000)).code == "too_large"


def test_pdf_without_pages_encrypted_and_signed(tmp_path: Path) -> None:
    empty = io.BytesIO()
    pikepdf.new().save(empty)
    assert _error(empty.getvalue(), "empty.pdf").code == "no_pages"

    source = img2pdf.convert(_encode(_page_image(), "PNG", dpi=(100, 100)))
    locked = io.BytesIO()
    with pikepdf.open(io.BytesIO(source)) as pdf:
        pdf.save(locked, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    assert _error(locked.getvalue(), "locked.pdf").code == "encrypted"

    signed = io.BytesIO()
    with pikepdf.open(io.BytesIO(source)) as pdf:
        value = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Sig, Filter=pikepdf.Name("/Adobe.PPKLite"),
                                                     Contents=pikepdf.String(b"\x00" * 64)))
        field = pdf.make_indirect(pikepdf.Dictionary(FT=pikepdf.Name.Sig, T=pikepdf.String("Signature1"), V=value,
                                                     Rect=[0, 0, 0, 0], Subtype=pikepdf.Name.Widget))
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[field], SigFlags=3)
        pdf.save(signed)
    error = _error(signed.getvalue(), "signed.pdf")
    assert error.code == "already_signed" and "already signed" in error.message
    # an unsigned signature field (a form waiting for a signature) is accepted
    unsigned = io.BytesIO()
    with pikepdf.open(io.BytesIO(signed.getvalue())) as pdf:
        del pdf.Root.AcroForm.Fields[0].V
        pdf.save(unsigned)
    assert len(load_bytes(unsigned.getvalue(), "form.pdf")) == 1


def test_load_file_reads_from_disk_and_matches_pdfimages(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(img2pdf.convert(_encode(_page_image(800, 1100), "PNG", dpi=(150, 150))))
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    x_ppi = int(listing.splitlines()[2].split()[12])
    pages = load_file(path)
    assert pages[0].dpi == x_ppi == 150
    with pytest.raises(InputError) as caught:
        load_file(tmp_path / "missing.png")
    assert caught.value.code == "not_found"


def test_supported_suffixes() -> None:
    assert {".pdf", ".tif", ".tiff", ".jpg", ".png", ".webp", ".bmp"} <= SUPPORTED_SUFFIXES

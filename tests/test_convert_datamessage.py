"""Data message builder, checked with independent tools (qpdf, poppler, zxing, pikepdf)."""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pikepdf
import pytest

from converters.datamessage import (ConversionOptions, DataMessageError, MessagePage,
                                    build_data_message, read_embedded_record)
from converters.layout import FontError
from converters.mark import conversion_mark
from converters.pdfa_check import check_pdfa
from tests.test_convert_support import (CONVERTED_AT, decode_qr, draw_page,
                                        make_record, need, page_text, run, two_pages)

STATEMENT = "Văn bản này được chuyển đổi từ văn bản giấy sang thông điệp dữ liệu"
SIGNATURE_BAND = 78.0  # converters.layout.SIGNATURE_BAND, restated: the layout promise under test


def mediaboxes(pdf: bytes) -> list[list[float]]:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return [[float(v) for v in page.mediabox] for page in doc.pages]


@pytest.fixture(scope="module")
def message():
    return build_data_message(two_pages(), make_record())


@pytest.fixture(scope="module")
def pdf_path(message, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dm") / "message.pdf"
    path.write_bytes(message.pdf)
    return path


def test_qpdf_finds_no_structural_errors(pdf_path):
    need("qpdf")
    assert "No syntax or stream encoding errors found" in run("qpdf", "--check", pdf_path)


def test_text_layer_and_mark_are_searchable_with_diacritics(pdf_path):
    need("pdftotext")
    page1 = run("pdftotext", "-f", "1", "-l", "1", pdf_path, "-")
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in page1
    assert "Họ, chữ đệm, tên: Nguyễn Thị Lan" in page1
    assert STATEMENT in page1
    assert "ngày 25 tháng 11 năm 2026, 09:15:02" in page1
    assert "2026-11-25T09:15:02+07:00" in page1
    assert "Uỷ ban nhân dân phường Bến Nghé" in page1
    assert "Trần Thị Hoa" in page1
    assert "000.00.12.H29.giay_khai_sinh.01JZ8X3K2M" in page1
    # the mark is on page 1 only by default; page 2 has no OCR text either
    assert STATEMENT not in run("pdftotext", "-f", "2", "-l", "2", pdf_path, "-")


def test_invisible_words_sit_on_their_image_boxes(pdf_path, message):
    """pdftotext -bbox positions (points, top-left origin) match the OCR pixel boxes at 150 dpi."""
    need("pdftotext")
    html = run("pdftotext", "-f", "1", "-l", "1", "-bbox", pdf_path, "-")
    found = {m.group(5): tuple(float(m.group(i)) for i in range(1, 5)) for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)</word>', html)}
    _, words = draw_page()
    page_height = mediaboxes(message.pdf)[0][3]
    image_top = page_height - SIGNATURE_BAND
    word = next(w for w in words if w.text == "KHAI")
    x_min, y_min, x_max, y_max = found["KHAI"]
    scale = 72 / 150
    assert x_min == pytest.approx(word.left * scale, abs=1.5)
    assert x_max == pytest.approx((word.left + word.width) * scale, abs=1.5)
    # vertical: the text line overlaps the word's box in the image
    box_top = (page_height - image_top) + word.top * scale
    box_bottom = box_top + word.height * scale
    assert y_min < box_bottom and y_max > box_top


def test_images_embedded_unchanged_and_hashes_match_record(pdf_path, message, tmp_path):
    need("pdfimages")
    listing = run("pdfimages", "-list", pdf_path).splitlines()[2:]
    rows = [line.split() for line in listing]
    assert [(r[0], r[3], r[4], r[5], r[8]) for r in rows] == [
        ("1", "1240", "1754", "rgb", "jpeg"), ("2", "1166", "1654", "gray", "ccitt")]
    assert [r[12] for r in rows] == ["150", "200"]  # x-ppi: 100 % scale
    run("pdfimages", "-all", pdf_path, tmp_path / "img")
    files = sorted(p for p in tmp_path.iterdir() if p.suffix in (".jpg", ".ccitt"))
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == [
        p.image_sha256 for p in message.record.pages]
    assert [p.image_encoding for p in message.record.pages] == ["jpeg", "ccitt-g4"]


def test_fonts_are_embedded_subsets_with_unicode_maps(pdf_path):
    need("pdffonts")
    rows = [line.split() for line in run("pdffonts", pdf_path).splitlines()[2:]]
    names = {row[0].split("+", 1)[1] for row in rows}
    assert "SohoaGlyphless" in names  # the invisible text layer's font
    assert all(row[-5:-2] == ["yes", "yes", "yes"] for row in rows), rows  # emb sub uni


def test_few_colour_scans_stay_lossless_and_small():
    levels = np.array([0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255],
                      np.uint8)
    rng = np.random.default_rng(5)
    gray = levels[rng.integers(0, 16, size=(400, 300))]  # a 4-bit scan, like VietOCR's samples
    gray[:200] = 255
    dm = build_data_message([MessagePage(gray, 300, None, "p.png", 0)], make_record())
    assert dm.record.pages[0].image_encoding == "flate"
    with pikepdf.open(io.BytesIO(dm.pdf)) as pdf:
        (image,) = pdf.pages[0].images.values()
        assert int(image.BitsPerComponent) == 4
        decoded = np.asarray(pikepdf.PdfImage(image).as_pil_image().convert("L"))
    assert np.array_equal(decoded, gray)


def test_page_size_is_image_size_at_dpi(message):
    first, second = mediaboxes(message.pdf)
    assert second == pytest.approx([0, 0, 1166 * 72 / 200, 1654 * 72 / 200])
    assert first[2] == pytest.approx(1240 * 72 / 150)
    assert first[3] > 1754 * 72 / 150 + SIGNATURE_BAND  # + signature band + mark band


def test_signature_boxes_are_above_the_scan_and_do_not_overlap(message):
    officer, agency = message.signature_boxes["officer"], message.signature_boxes["agency"]
    _, _, width, height = mediaboxes(message.pdf)[0]
    image_top = height - SIGNATURE_BAND
    for x1, y1, x2, y2 in (officer, agency):
        assert 0 <= x1 < x2 <= width and image_top <= y1 < y2 <= height
        assert x2 - x1 > 150 and y2 - y1 > 40
    assert officer[2] < agency[0]  # officer top-left, agency top-right


def test_qr_code_carries_the_mark(pdf_path, message, tmp_path):
    need("pdftoppm")
    run("pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", pdf_path, tmp_path / "p")
    texts = decode_qr(next(tmp_path.glob("p*.png")))
    expected = conversion_mark(message.record).qr_payload
    assert texts == [expected]
    assert STATEMENT in expected and "2026-11-25T09:15:02+07:00" in expected
    assert message.record.uri in expected and message.record.conversion.lookup_url in expected


def _xmp_values(xmp: str) -> dict[str, list[str]]:
    """Every XMP property value by '{namespace}name' (element text or attribute form)."""
    root = ET.fromstring(xmp[xmp.index("<x:xmpmeta"):xmp.index("</x:xmpmeta>") + 12])
    values: dict[str, list[str]] = {}
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    for description in root.iter(f"{rdf}Description"):
        for name, value in description.attrib.items():
            values.setdefault(name, []).append(value)
        for prop in description:
            texts = [li.text or "" for li in prop.iter(f"{rdf}li")] or [prop.text or ""]
            values.setdefault(prop.tag, []).extend(texts)
    return values


def test_xmp_declares_pdfa3b_and_conversion_facts(pdf_path):
    need("pdfinfo")
    values = _xmp_values(run("pdfinfo", "-meta", pdf_path))
    pdfaid, dc, xmp = ("{http://www.aiim.org/pdfa/ns/id/}", "{http://purl.org/dc/elements/1.1/}",
                       "{http://ns.adobe.com/xap/1.0/}")
    assert values[f"{pdfaid}part"] == ["3"] and values[f"{pdfaid}conformance"] == ["B"]
    assert values[f"{dc}publisher"] == ["Uỷ ban nhân dân phường Bến Nghé"]
    assert values[f"{dc}contributor"] == ["Trần Thị Hoa"]
    assert values[f"{dc}identifier"] == ["000.00.12.H29.giay_khai_sinh.01JZ8X3K2M"]
    assert values[f"{dc}description"][0].startswith(STATEMENT)
    created = values[f"{xmp}CreateDate"][0]
    assert datetime.fromisoformat(created) == CONVERTED_AT


def test_record_embedded_as_associated_file(pdf_path, message):
    need("qpdf")
    attached = subprocess.run(["qpdf", "--show-attachment=record.json", str(pdf_path)],
                              check=True, capture_output=True).stdout
    assert attached == message.record.to_json_bytes()
    assert read_embedded_record(message.pdf) == message.record
    with pikepdf.open(pdf_path) as pdf:
        (spec,) = pdf.Root.AF
        assert spec.AFRelationship == pikepdf.Name.Data
        assert spec.EF.F.Subtype == pikepdf.Name("/application/json")


def test_record_pages_describe_the_images(message):
    pages = message.record.pages
    assert [(p.index, p.source, p.source_index, p.width_px, p.height_px, p.dpi) for p in pages] == [
        (0, "scan.png", 0, 1240, 1754, 150.0), (1, "scan.png", 1, 1166, 1654, 200.0)]
    assert all(p.image_bytes > 0 for p in pages)
    assert message.record.conversion.converted_at == CONVERTED_AT


def test_output_passes_pdfa_self_check(message):
    report = check_pdfa(message.pdf)
    assert report.ok, report.summary()
    assert (report.part, report.conformance) == (3, "B")


def test_without_embedding_is_pdfa2b(tmp_path):
    colour, words = draw_page(seal=False)
    dm = build_data_message([MessagePage(colour, 150, page_text(colour, words, 150))],
                            make_record(), ConversionOptions(embed_record=False, qr=False))
    report = check_pdfa(dm.pdf)
    assert report.ok and report.part == 2, report.summary()
    with pytest.raises(DataMessageError, match="record.json"):
        read_embedded_record(dm.pdf)
    with pikepdf.open(io.BytesIO(dm.pdf)) as pdf:
        assert len(pdf.attachments) == 0


def test_mark_every_page_and_lossless(tmp_path):
    colour, words = draw_page(seal=True)
    pages = [MessagePage(colour, 150, page_text(colour, words, 150), "a.png", 0),
             MessagePage(colour, 150, None, "a.png", 1)]
    dm = build_data_message(pages, make_record(), ConversionOptions(mark_every_page=True,
                                                                    lossless=True))
    path = tmp_path / "every.pdf"
    path.write_bytes(dm.pdf)
    need("pdftotext")
    assert STATEMENT in run("pdftotext", "-f", "2", "-l", "2", path, "-")
    assert [p.image_encoding for p in dm.record.pages] == ["flate", "flate"]
    with pikepdf.open(path) as pdf:  # lossless: decoded pixels equal the input exactly
        decoded = pikepdf.PdfImage(next(iter(pdf.pages[0].images.values()))).as_pil_image()
        assert np.array_equal(np.asarray(decoded)[:, :, ::-1], colour)
    assert check_pdfa(dm.pdf).ok


def latin_only_font(tmp_path: Path) -> Path:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
    subsetter = subset.Subsetter()
    subsetter.populate(unicodes=range(0x20, 0x7F))
    subsetter.subset(font)
    path = tmp_path / "latin-only.ttf"
    font.save(str(path))
    return path


def test_bad_inputs_get_clear_errors(tmp_path):
    colour, words = draw_page(seal=False)
    with pytest.raises(DataMessageError, match="at least one page"):
        build_data_message([], make_record())
    wrong = page_text(colour[:100], words, 150)
    with pytest.raises(DataMessageError, match="OCR text is for a 1240x100 image"):
        build_data_message([MessagePage(colour, 150, wrong)], make_record())
    with pytest.raises(DataMessageError, match="over 200 inches"):
        build_data_message([MessagePage(colour, 8, None)], make_record())
    with pytest.raises(DataMessageError, match="dpi must be positive"):
        build_data_message([MessagePage(colour, 0, None)], make_record())
    with pytest.raises(FontError, match="U\\+1EC7"):  # a Latin-only font lacks "ệ"
        build_data_message([MessagePage(colour, 150, None)], make_record(), ConversionOptions(
            font_path=str(latin_only_font(tmp_path))))
    with pytest.raises(DataMessageError, match="not a readable PDF"):
        read_embedded_record(b"not a pdf")


def test_narrow_card_gets_a_page_wide_enough_for_the_mark():
    rng = np.random.default_rng(1)  # ID card photo, 85.6 x 54 mm at 300 dpi
    card = rng.integers(180, 250, size=(638, 1011, 3), dtype=np.uint8)
    dm = build_data_message([MessagePage(card, 300, None, "card.jpg", 0)], make_record())
    assert mediaboxes(dm.pdf)[0][2] >= 420
    assert check_pdfa(dm.pdf).ok
    assert dm.record.pages[0].image_encoding == "jpeg"

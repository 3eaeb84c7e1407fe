"""Separator sheets: printable PDF -> scanned page -> decoded; splitting a box file into documents."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image

from ingest.load import InputError, load_bytes
from ingest.separator import (PageMark, SeparatorInfo, decode_payload, encode_payload, extract_pages,
                              is_blank_page, page_count, plan_segments, read_separator, scan_marks,
                              separator_pdf)
from samples.generator import render_document

OWNER = "079203012345"
INFO = SeparatorInfo(owner_id=OWNER, dossier_code="000.00.12.H29-241125-0001", doc_type="giay_khai_sinh")


def rasterize(pdf: bytes, dpi: int = 150) -> Image.Image:
    """Render page 1 with poppler (not our code), as a scanner would see the sheet."""
    png = subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", "-f", "1", "-l", "1", "-"],
                         input=pdf, capture_output=True, check=True, timeout=60).stdout
    return Image.open(io.BytesIO(png)).convert("L")


def doc_page(doc_type: str, seed: int, dpi: int = 150) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_document(doc_type, seed=seed, dpi=dpi).image, cv2.COLOR_BGR2GRAY))


def test_payload_round_trip_and_foreign_codes():
    assert decode_payload(encode_payload(INFO)) == INFO
    assert decode_payload(encode_payload(SeparatorInfo())) == SeparatorInfo()
    assert decode_payload("https://dichvucong.gov.vn/?owner=1") is None
    assert decode_payload("PATCHT") is None


def test_printed_sheet_is_read_back_by_us_and_by_zbar(tmp_path):
    pdf = separator_pdf(INFO, copies=2)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages) == 2
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "TỜ PHÂN CÁCH" in text
    assert OWNER not in text and "079******345" in text  # the ID is only inside the QR code
    page = rasterize(pdf)
    assert read_separator(np.asarray(page)) == INFO
    png = tmp_path / "sheet.png"
    page.save(png)
    zbar = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=60)
    assert zbar.stdout.strip() == encode_payload(INFO)


def test_a_document_page_is_neither_separator_nor_blank():
    page = np.asarray(doc_page("quyet_dinh", 3, dpi=100))
    assert read_separator(page) is None
    assert not is_blank_page(page, 100.0)
    white = np.full_like(page, 246)
    noise = np.clip(white.astype(int) + np.random.default_rng(1).normal(0, 4, white.shape), 0, 255).astype(np.uint8)
    assert is_blank_page(noise, 100.0)


@pytest.mark.parametrize("marks,split_on_blank,segments,dropped", [
    # doc | SEP(a) blank-back doc doc | SEP(b) doc
    ("d S b d d S d", False, [[0], [3, 4], [6]], {1: "separator_sheet", 2: "blank_page", 5: "separator_sheet"}),
    # blank pages inside a document stay when not splitting on blanks
    ("d b d", False, [[0, 1, 2]], {}),
    ("d b d b b d", True, [[0], [2], [5]], {1: "blank_page", 3: "blank_page", 4: "blank_page"}),
    # leading separator, trailing separator: no empty documents
    ("S d d S", False, [[1, 2]], {0: "separator_sheet", 3: "separator_sheet"}),
])
def test_plan_segments(marks, split_on_blank, segments, dropped):
    sheet = SeparatorInfo(owner_id=OWNER)
    parsed = [PageMark(separator=sheet if m == "S" else None, blank=m == "b") for m in marks.split()]
    plan = plan_segments(parsed, split_on_blank=split_on_blank)
    assert [s.pages for s in plan.segments] == segments
    assert plan.dropped == dropped
    every = sorted([p for s in plan.segments for p in s.pages] + list(plan.dropped))
    assert every == list(range(len(parsed)))  # no page lost, none counted twice


def test_blank_split_documents_keep_their_separator_section():
    sheet = SeparatorInfo(owner_id=OWNER, dossier_code="D1")
    marks = [PageMark(separator=sheet), PageMark(), PageMark(blank=True), PageMark()]
    plan = plan_segments(marks, split_on_blank=True)
    assert [s.pages for s in plan.segments] == [[1], [3]]
    assert all(s.info == sheet for s in plan.segments)


def box_tiff(tmp_path: Path) -> Path:
    sheet = rasterize(separator_pdf(SeparatorInfo(owner_id=OWNER)), dpi=150)
    blank = Image.new("L", sheet.size, 250)
    pages = [doc_page("quyet_dinh", 1), sheet, blank, doc_page("cong_van", 2), doc_page("don_de_nghi", 3)]
    path = tmp_path / "box.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw", dpi=(150, 150))
    return path


def test_scan_marks_on_a_box_file(tmp_path):
    data = box_tiff(tmp_path).read_bytes()
    marks = scan_marks(data, "box.tif", detect_blank=False)
    assert [m.separator is not None for m in marks] == [False, True, False, False, False]
    assert [m.blank for m in marks] == [False, False, True, False, False]  # only the sheet's back is measured
    plan = plan_segments(marks, split_on_blank=False)
    assert [s.pages for s in plan.segments] == [[0], [3, 4]]
    assert plan.segments[1].info.owner_id == OWNER


def test_extract_pages_tiff_and_pdf(tmp_path):
    data = box_tiff(tmp_path).read_bytes()
    sub = extract_pages(data, "box.tif", [3, 4])
    assert page_count(sub, "sub.tif") == 2
    original = Image.open(io.BytesIO(data))
    original.seek(3)
    again = Image.open(io.BytesIO(sub))
    assert np.array_equal(np.asarray(again.convert("L")), np.asarray(original.convert("L")))  # lossless
    assert round(again.info["dpi"][0]) == 150
    assert extract_pages(data, "box.tif", list(range(5))) is data  # whole file: untouched

    pdf_path = tmp_path / "two.pdf"
    pdf_path.write_bytes(separator_pdf(SeparatorInfo(), copies=3))
    part = extract_pages(pdf_path.read_bytes(), "two.pdf", [2])
    (tmp_path / "part.pdf").write_bytes(part)
    info = subprocess.run(["pdfinfo", str(tmp_path / "part.pdf")], capture_output=True, check=True).stdout.decode()
    assert [line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")] == ["1"]
    assert len(load_bytes(part, "two.pdf")) == 1
    with pytest.raises(InputError) as err:
        extract_pages(data, "box.tif", [7])
    assert err.value.code == "page_out_of_range"


def test_corrupt_files_have_a_clear_reason():
    with pytest.raises(InputError) as err:
        page_count(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, "broken.png")
    assert err.value.code == "corrupt" and "0x" not in str(err.value)
    with pytest.raises(InputError) as err:
        page_count(b"%PDF-1.7\n garbage", "broken.pdf")
    assert err.value.code == "corrupt"

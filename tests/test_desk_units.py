"""Reception desk building blocks without a browser: page edits, drafts on disk, receipt, i18n."""
from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from api.desk.drafts import DraftNotFound, DraftStore, PageEdit, safe_filename
from api.desk.edits import (EditError, arrange, check_value, display_value, rotate_box,
                            rotate_image)
from api.desk.i18n import LANGUAGES, pick_language, strings, translator
from api.desk.receipt import ReceiptInfo, build_receipt
from api.desk.routes import apply_action, parse_pages
from api.desk.service import DeskError, mask_id
from ocr.types import Analysis, Classification, CleanPage, FieldValue, PageText, QualityIssue, Word

DESK = Path(__file__).resolve().parent.parent / "api" / "desk"


# ---- geometry: checked against OpenCV rotating real pixels ----------------------------------
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotate_box_matches_rotated_pixels(rotation):
    height, width = 60, 100
    box = (10, 5, 30, 12)
    image = np.zeros((height, width), np.uint8)
    image[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = 255
    turned = rotate_image(image, rotation)
    ys, xs = np.nonzero(turned)
    expected = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    assert rotate_box(box, width, height, rotation) == expected


def test_rotation_must_be_quarter_turns():
    with pytest.raises(EditError):
        rotate_box((0, 0, 1, 1), 10, 10, 45)


def _analysis(pages: int = 3) -> Analysis:
    cleans, texts = [], []
    for i in range(pages):
        img = np.full((40, 20, 3), 255, np.uint8)
        img[0, 0] = (i, i, i)  # tag the page in its pixels
        cleans.append(CleanPage(source=f"p{i}.jpg", index=0, archive_image=img,
                                ocr_image=img[:, :, 0].copy(), dpi=300.0,
                                quality=[QualityIssue("too_blurry", "mờ", "blurry", page=0)] if i == 2 else []))
        texts.append(PageText(index=i, width=20, height=40, dpi=300.0,
                              words=[Word(f"w{i}", 2, 3, 4, 5, 90.0)], text=f"w{i}"))
    fields = {"ho_ten": FieldValue("ho_ten", "Nguyễn Văn An", "NGUYỄN VĂN AN", 0.9, page=2, bbox=(2, 3, 4, 5)),
              "so_van_ban": FieldValue("so_van_ban", "12/QĐ", "12/QĐ", 0.8, page=1, bbox=(1, 1, 2, 2))}
    return Analysis(pages=cleans, texts=texts,
                    classification=Classification("quyet_dinh", 0.9), fields=fields)


def test_arrange_reorders_rotates_and_drops_pages_with_their_boxes():
    analysis = _analysis()
    out = arrange(analysis, [PageEdit(index=2, rotation=90), PageEdit(index=0)])
    assert [p.source for p in out.pages] == ["p2.jpg", "p0.jpg"]
    assert out.pages[0].archive_image.shape[:2] == (20, 40)  # turned a quarter
    assert int(out.pages[0].archive_image[0, -1, 0]) == 2  # top-left pixel went top-right
    assert out.pages[0].rotation == 90
    assert [t.index for t in out.texts] == [0, 1]
    assert (out.texts[0].width, out.texts[0].height) == (40, 20)
    word = out.texts[0].words[0]
    assert (word.left, word.top, word.width, word.height) == rotate_box((2, 3, 4, 5), 20, 40, 90)
    assert out.fields["ho_ten"].page == 0
    assert out.fields["ho_ten"].bbox == rotate_box((2, 3, 4, 5), 20, 40, 90)
    assert out.fields["so_van_ban"].page is None and out.fields["so_van_ban"].bbox is None
    assert [q.page for q in out.pages[0].quality] == [0]
    # the input analysis is untouched
    assert analysis.pages[2].archive_image.shape[:2] == (40, 20)
    assert analysis.fields["ho_ten"].page == 2


@pytest.mark.parametrize("edits", [[], [PageEdit(index=0), PageEdit(index=0)], [PageEdit(index=7)]])
def test_arrange_refuses_impossible_arrangements(edits):
    with pytest.raises(EditError):
        arrange(_analysis(), edits)


def test_page_buttons():
    pages = parse_pages(["0:0", "1:0", "2:90"])
    assert [p.index for p in apply_action(pages, "up:1")] == [1, 0, 2]
    assert [p.index for p in apply_action(pages, "down:1")] == [0, 2, 1]
    assert apply_action(pages, "rotate:2")[2].rotation == 180
    assert [p.index for p in apply_action(pages, "delete:0")] == [1, 2]
    assert [p.index for p in apply_action(pages[:1], "delete:0")] == [0]  # never the last page
    with pytest.raises(DeskError):
        apply_action(pages, "up:9")
    with pytest.raises(DeskError):
        parse_pages(["x:0"])


# ---- field values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "typed", "value", "error"), [
    ("so_dinh_danh", "079 203 012 345", "079203012345", None),
    ("so_dinh_danh", "079203O12345", "079203O12345", "personal_id"),
    ("so_dinh_danh", "003203012345", "003203012345", "personal_id"),  # no province 003
    ("ngay_sinh", "05/03/2003", "2003-03-05", None),
    ("ngay_sinh", "2003-03-05", "2003-03-05", None),
    ("ngay_sinh", "31/02/2003", "31/02/2003", "date"),
    ("ngay_sinh", "01/01/2999", "01/01/2999", "date_future"),
    ("ngay_ban_hanh", "ngày 12 tháng 3 năm 2024", "2024-03-12", None),
    ("ho_ten", "nguyễn   thị LAN", "Nguyễn Thị Lan", None),
    ("ho_ten", "Lan", "Lan", "name"),
    ("ma_so_doanh_nghiep", "0100109106", "0100109106", None),
    ("ma_so_doanh_nghiep", "0100109107", "0100109107", "tax_code"),
    ("so_van_ban", "  12/QĐ-UBND ", "12/QĐ-UBND", None),
    ("co_quan_ban_hanh", "", None, None),
])
def test_check_value(name, typed, value, error):
    assert check_value(name, typed) == (value, error)


def test_dates_are_shown_day_first():
    assert display_value("ngay_sinh", "2003-03-05") == "05/03/2003"
    assert display_value("so_van_ban", "12/QĐ") == "12/QĐ"


def test_mask_id_never_shows_the_whole_number():
    assert mask_id("079203012345") == "079******345"
    assert "203012" not in mask_id("079203012345")


# ---- drafts on disk ------------------------------------------------------------------------------
def test_draft_store_keeps_scans_and_state_across_instances(tmp_path):
    store = DraftStore(tmp_path / "drafts")
    draft = store.create(officer="lan", owner_id="079203012345", dossier_code="HS-1",
                         files=[("../../etc/giấy khai sinh.jpg", b"\xff\xd8\xff scan 1"),
                                ("trang 2.png", b"\x89PNG scan 2")])
    assert [u.name for u in draft.uploads] == ["giấy_khai_sinh.jpg", "trang_2.png"]
    with store.editing(draft.id) as d:
        d.status, d.values = "ready", {"ho_ten": "Nguyễn Thị Lan"}
    again = DraftStore(tmp_path / "drafts").get(draft.id)  # as after a restart
    assert again.status == "ready" and again.values == {"ho_ten": "Nguyễn Thị Lan"}
    assert [data for _, data in store.read_uploads(again)] == [b"\xff\xd8\xff scan 1", b"\x89PNG scan 2"]
    directory = store.directory(draft.id)
    for path in [directory / "draft.json", *(directory / "uploads").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "079203012345" not in str(directory)
    assert not list(directory.rglob(".tmp-*"))


def test_draft_store_refuses_path_tricks(tmp_path):
    store = DraftStore(tmp_path)
    for bad in ("../x", "01ARZ3NDEKTSV4RRFFQ69G5FA/", "x" * 26):
        with pytest.raises(DraftNotFound):
            store.get(bad)


def test_analysis_round_trip_and_incompatible_pickles(tmp_path):
    store = DraftStore(tmp_path)
    draft = store.create(officer="lan", owner_id="079203012345", dossier_code=None,
                         files=[("a.jpg", b"\xff\xd8\xff")])
    assert store.load_analysis(draft.id) is None
    store.save_analysis(draft.id, _analysis())
    loaded = store.load_analysis(draft.id)
    assert loaded is not None and loaded.fields["ho_ten"].value == "Nguyễn Văn An"
    (store.directory(draft.id) / "analysis.pickle").write_bytes(b"not a pickle")
    assert store.load_analysis(draft.id) is None


def test_safe_filename():
    assert safe_filename("C:\\scans\\trang 1.JPG") == "trang_1.JPG"
    assert safe_filename("...") == "scan"


# ---- receipt: read back with poppler and zbar (not our code) ------------------------------------------
def test_receipt_is_a5_with_vietnamese_text_and_readable_qr(tmp_path):
    if not (shutil.which("pdftotext") and shutil.which("zbarimg")):
        pytest.skip("poppler-utils / zbar-tools not installed")
    uri = "000.00.12.H29.giay_khai_sinh.01JDESKTESTRECEIPT0000000"
    url = "http://127.0.0.1:8000/v1/lookup/" + uri
    pdf = build_receipt(ReceiptInfo(
        agency_name="Uỷ ban nhân dân phường Bến Nghé", desk="Bộ phận Một cửa",
        officer_name="Nguyễn Thị Lan", owner_masked="079******345", doc_type_name="Giấy khai sinh",
        pages=2, uri=uri, version=1, lookup_url=url,
        confirmed_at=datetime(2026, 11, 25, 10, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
        signature_summary="Hợp lệ (2 chữ ký số)", dossier_code="HS-2026-001", files=("a.jpg", "b.jpg")))
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+419\.\d+ x 595\.\d+ pts", info)  # A5
    assert re.search(r"Pages:\s+1\n", info)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # every font embedded
    text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("PHIẾU XÁC NHẬN SỐ HOÁ VĂN BẢN GIẤY", "Nguyễn Thị Lan", "Giấy khai sinh",
                     "079******345", "Hợp lệ (2 chữ ký số)", "HS-2026-001"):
        assert expected in text
    assert "".join(text.split()).count(uri) >= 1  # wrapped, but all there
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(path), str(tmp_path / "r")], check=True)
    qr = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "r-1.png")], capture_output=True,
                        text=True).stdout.strip()
    assert qr == url


# ---- languages -----------------------------------------------------------------------------------
def test_every_language_has_every_string_and_templates_use_known_keys():
    keys = {lang: set(strings(lang)) for lang in LANGUAGES}
    assert keys["vi"] == keys["en"]
    used = set()
    for path in [*(DESK / "templates").glob("*.html"), DESK / "routes.py", DESK / "service.py"]:
        used |= set(re.findall(r"""t\(["']([a-z_]+\.[a-z_]+)["']""", path.read_text("utf-8")))
    assert used, "no t('...') call found"
    assert used <= keys["vi"], sorted(used - keys["vi"])
    prefixed = {"status.", "progress.", "field.", "field_error.", "reason.", "error."}
    assert all(any(k.startswith(p) for k in keys["vi"]) for p in prefixed)
    vi = json.loads((DESK / "locales" / "vi.json").read_text("utf-8"))
    assert vi["review.confirm"] == "Xác nhận, ký số và lưu vào kho"


def test_language_choice():
    assert pick_language("en", "vi", "vi") == "en"
    assert pick_language(None, "en", "vi-VN") == "en"
    assert pick_language(None, None, "en-US,en;q=0.9") == "en"
    assert pick_language("xx", None, None) == "vi"
    assert translator("en")("page_of", n=2) == "Page 2"
    assert translator("vi")("page_of", n=2) == "Trang 2"

"""samples.generator: synthetic Decree 30/2020 documents with ground truth."""
from __future__ import annotations

import hashlib
import subprocess
import unicodedata
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.validators import parse_vn_date, validate_personal_id, validate_tax_code
from samples.generator import DOC_TYPES, OTHER_TYPES, GeneratedDocument, render_document, write_demo

REPO = Path(__file__).resolve().parents[1]
TITLES = {
    "giay_khai_sinh": "GIẤY KHAI SINH",
    "giay_chung_nhan_ket_hon": "GIẤY CHỨNG NHẬN KẾT HÔN",
    "trich_luc_khai_tu": "TRÍCH LỤC KHAI TỬ",
    "quyet_dinh": "QUYẾT ĐỊNH",
    "cong_van": "V/v",
    "giay_cn_dang_ky_doanh_nghiep": "ĐĂNG KÝ DOANH NGHIỆP",
    "xac_nhan_cu_tru": "XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ",
    "phieu_ly_lich_tu_phap": "PHIẾU LÝ LỊCH TƯ PHÁP",
    "giay_phep_xay_dung": "GIẤY PHÉP XÂY DỰNG",
    "giay_cn_quyen_su_dung_dat": "QUYỀN SỬ DỤNG ĐẤT",
    "don_de_nghi": "ĐƠN ĐỀ NGHỊ",
    "xac_nhan_tinh_trang_hon_nhan": "GIẤY XÁC NHẬN TÌNH TRẠNG HÔN NHÂN",
}


def _sha(doc: GeneratedDocument) -> str:
    return hashlib.sha256(doc.image.tobytes()).hexdigest()


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_every_type_renders_a4_with_consistent_ground_truth(doc_type: str) -> None:
    doc = render_document(doc_type, seed=3, dpi=100)
    assert doc.doc_type == doc_type and doc.dpi == 100
    assert doc.image.dtype == np.uint8 and doc.image.shape == (1169, 827, 3)  # A4 at 100 dpi
    assert unicodedata.is_normalized("NFC", doc.text)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in doc.text
    assert "Độc lập - Tự do - Hạnh phúc" in doc.text
    assert TITLES[doc_type] in doc.text
    fields = doc.fields
    issued = date.fromisoformat(fields["ngay_ban_hanh"])
    assert any(parse_vn_date(line) == issued for line in doc.text.splitlines() if ", ngày" in line)
    if doc_type != "don_de_nghi":
        assert f"Số: {fields['so_van_ban']}" in doc.text
        assert fields["co_quan_ban_hanh"] in doc.text.splitlines()
    if "so_dinh_danh" in fields:
        birth = date.fromisoformat(fields["ngay_sinh"])
        assert validate_personal_id(fields["so_dinh_danh"], birth.year) is None
        assert fields["so_dinh_danh"] in doc.text
        assert birth <= issued
        assert fields["ho_ten"].upper() in doc.text.upper()
    if doc_type == "giay_cn_dang_ky_doanh_nghiep":
        assert validate_tax_code(fields["ma_so_doanh_nghiep"]) is None


def test_same_seed_same_document_other_seed_other_content() -> None:
    a = render_document("quyet_dinh", seed=11, dpi=100)
    b = render_document("quyet_dinh", seed=11, dpi=100)
    c = render_document("quyet_dinh", seed=12, dpi=100)
    assert _sha(a) == _sha(b) and a.fields == b.fields
    assert _sha(a) != _sha(c) and a.fields != c.fields


def test_names_ids_and_dates_vary_across_seeds() -> None:
    docs = [render_document("xac_nhan_cu_tru", seed=s, dpi=72) for s in range(20)]
    assert len({d.fields["ho_ten"] for d in docs}) >= 17
    assert len({d.fields["so_dinh_danh"][:3] for d in docs}) >= 10  # many provinces
    assert len({d.fields["co_quan_ban_hanh"] for d in docs}) >= 10


def test_seal_is_red_and_overlaps_the_signature() -> None:
    plain = render_document("quyet_dinh", seed=5, dpi=100)
    sealed = render_document("quyet_dinh", seed=5, dpi=100, seal=True)
    hsv = cv2.cvtColor(sealed.image, cv2.COLOR_BGR2HSV)
    red = ((hsv[..., 0] < 10) | (hsv[..., 0] > 170)) & (hsv[..., 1] > 120) & (hsv[..., 2] > 80)
    assert red.sum() > 500
    plain_hsv = cv2.cvtColor(plain.image, cv2.COLOR_BGR2HSV)
    assert (plain_hsv[..., 1] > 120).sum() < red.sum() / 2  # only the blue signature is coloured
    ys, xs = np.nonzero(red)
    blue = (sealed.image[..., 0].astype(int) - sealed.image[..., 2].astype(int)) > 60  # signature ink
    by, bx = np.nonzero(blue)
    assert len(bx) > 50
    # the seal's box intersects the signature's box (Decree 30: the seal covers ~1/3 of it)
    assert xs.min() < bx.max() and bx.min() < xs.max() and ys.min() < by.max() and by.min() < ys.max()
    assert sealed.text == plain.text  # the seal adds no ground-truth text


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown document type"):
        render_document("giay_phep_lai_xe", seed=1)
    with pytest.raises(ValueError, match="dpi"):
        render_document("quyet_dinh", seed=1, dpi=20)


def test_other_types_render_outside_the_catalog() -> None:
    for kind in OTHER_TYPES:
        doc = render_document(kind, seed=1, dpi=72)
        assert kind not in DOC_TYPES and "so_van_ban" in doc.fields


def test_committed_demo_images(tmp_path: Path) -> None:
    for name in ("giay_khai_sinh.jpg", "quyet_dinh.jpg", "xac_nhan_cu_tru_skewed.jpg"):
        path = REPO / "samples" / name
        assert path.exists() and path.stat().st_size < 400_000, name
    written = write_demo(tmp_path)
    assert [p.name for p in written] == ["giay_khai_sinh.jpg", "quyet_dinh.jpg", "xac_nhan_cu_tru_skewed.jpg"]
    skewed = cv2.imread(str(written[2]), cv2.IMREAD_GRAYSCALE)
    assert skewed.shape == (2339, 1654)  # A4 at 200 dpi
    ys, xs = np.nonzero(skewed < 128)
    assert len(xs) > 10_000

    def row_profile_sharpness(degrees: float) -> float:
        # project ink onto the axis perpendicular to text lines tilted by ``degrees``
        t = np.radians(degrees)
        rows = np.round(ys * np.cos(t) - xs * np.sin(t)).astype(int)
        return float(np.var(np.bincount(rows - rows.min())))

    angles = np.arange(-5.0, 5.01, 0.25)
    best = angles[int(np.argmax([row_profile_sharpness(a) for a in angles]))]
    assert 1.5 <= abs(best) <= 3.5


@pytest.mark.slow
def test_tesseract_reads_the_rendered_title_and_id(tmp_path: Path) -> None:
    """Independent check with the Tesseract CLI: the page is legible Vietnamese."""
    doc = render_document("giay_khai_sinh", seed=2, dpi=200)
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), doc.image)
    out = subprocess.run(["tesseract", str(path), "-", "-l", "vie", "--psm", "3", "--dpi", "200"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "GIẤY KHAI SINH" in unicodedata.normalize("NFC", out)
    assert doc.fields["so_dinh_danh"] in out

"""ocr.extract: labelled and layout fields, validated, with confidence and boxes."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from ocr.catalog import CatalogError, load_catalog
from ocr.extract import extract_fields, lines_of
from ocr.types import PageText, SourcePage, Word
from samples.generator import DOC_TYPES, render_document

A4_300 = (2480, 3508)


def _text_page(text: str, index: int = 0) -> PageText:
    return PageText(index=index, width=A4_300[0], height=A4_300[1], dpi=300, text=text)


def _words_line(parts: list[tuple[str, int]], top: int, line: int, conf: float = 92.0) -> list[Word]:
    """Words of one OCR line; ``parts`` = (word, left x in px), 40 px per character."""
    return [Word(text=t, left=x, top=top, width=40 * len(t), height=50, conf=conf, line=line, block=1)
            for t, x in parts]


def _spaced(text: str, x0: int) -> list[tuple[str, int]]:
    out, x = [], x0
    for word in text.split():
        out.append((word, x))
        x += 40 * len(word) + 25
    return out


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_ground_truth_text_gives_ground_truth_fields(doc_type: str) -> None:
    for seed in (1, 2024):
        doc = render_document(doc_type, seed, dpi=72)
        fields = extract_fields(doc_type, [_text_page(doc.text)])
        for name, expected in doc.fields.items():
            got = fields[name]
            assert got.value == expected and got.valid, (seed, name, got)
            assert 0.0 < got.confidence <= 1.0 and got.page == 0
        assert set(load_catalog().get(doc_type).fields) <= set(fields)


def test_header_columns_on_one_ocr_line_are_split_by_position() -> None:
    words = (
        _words_line(_spaced("UBND HUYỆN ĐÔNG ANH", 300) + _spaced("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 1200), 240, 0)
        + _words_line(_spaced("UBND XÃ TÂN LẬP", 330) + _spaced("Độc lập - Tự do - Hạnh phúc", 1350), 300, 1)
        + _words_line(_spaced("Số: 12/QĐ-UBND", 360) + _spaced("Tân Lập, ngày 05 tháng 3 năm 2024", 1250), 380, 2)
        + _words_line(_spaced("QUYẾT ĐỊNH", 1000), 520, 3)
        + _words_line(_spaced("Họ và tên: NGUYỄN VĂN AN", 450), 900, 4, conf=80.0)
    )
    page = PageText(index=0, width=A4_300[0], height=A4_300[1], dpi=300, words=words,
                    text="(unused when words are present)")
    fields = extract_fields("quyet_dinh", [page])
    agency = fields["co_quan_ban_hanh"]
    assert agency.value == "UBND XÃ TÂN LẬP" and agency.valid
    left, top, width, height = agency.bbox
    assert (left, top) == (330, 300) and left + width < A4_300[0] * 0.48
    assert fields["so_van_ban"].value == "12/QĐ-UBND"
    assert fields["ngay_ban_hanh"].value == "2024-03-05"
    name = fields["ho_ten"]
    assert name.value == "Nguyễn Văn An" and name.raw == "NGUYỄN VĂN AN"
    assert name.confidence == pytest.approx(0.8)
    name_words = [w for w in words if w.text in ("NGUYỄN", "VĂN", "AN")]
    assert name.bbox == (name_words[0].left, 900, name_words[-1].left + name_words[-1].width - name_words[0].left, 50)
    assert len(lines_of([page])) == 5


def test_motto_glued_to_the_agency_is_cut_off() -> None:
    words = (
        _words_line(_spaced("ỦY BAN NHÂN DÂN TỈNH ĐỒNG NAICỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 280), 160, 0)
        + _words_line(_spaced("Độc lập - Tự do - Hạnh phúc", 1400), 230, 1)
        + _words_line(_spaced("Số: 170/2018/QĐ-UBND", 420) + _spaced("Đồng Nai, ngày 07 tháng 6 năm 2018", 1300), 300, 2)
        + _words_line(_spaced("QUYẾT ĐỊNH", 1000), 520, 3)
    )
    page = PageText(index=0, width=A4_300[0], height=A4_300[1], dpi=300, words=words, text="")
    agency = extract_fields("quyet_dinh", [page])["co_quan_ban_hanh"]
    assert agency.value == "ỦY BAN NHÂN DÂN TỈNH ĐỒNG NAI" and agency.valid


def test_application_without_agency_block_has_no_agency() -> None:
    """An application (đơn) has only the centred motto and title above its body: the body's
    upper-case label "Số CCCD:" must not be taken for an issuing agency."""
    words = (
        _words_line(_spaced("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 700), 200, 0)
        + _words_line(_spaced("Độc lập - Tự do - Hạnh phúc", 850), 260, 1)
        + _words_line(_spaced("ĐƠN ĐỀ NGHỊ", 1000), 400, 2)
        + _words_line(_spaced("HỖ TRỢ KINH PHÍ HỌC NGHỀ", 850), 460, 3)
        + _words_line(_spaced("Tôi tên là: BÙI MỸ TRANG", 460), 620, 4)
        + _words_line(_spaced("Số CCCD: 054160063939", 460), 700, 5)
    )
    page = PageText(index=0, width=A4_300[0], height=A4_300[1], dpi=300, words=words, text="")
    agency = extract_fields("don_de_nghi", [page]).get("co_quan_ban_hanh")
    assert agency is None or agency.value is None


def test_column_split_follows_the_motto_on_an_offset_photo() -> None:
    """A photo whose page sits right of centre: a fixed fraction would cut the agency line."""
    dx = 700
    words = (
        _words_line(_spaced("SỞ KẾ HOẠCH VÀ ĐẦU TƯ", 250 + dx) + _spaced("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 1250 + dx), 240, 0)
        + _words_line(_spaced("PHÒNG ĐĂNG KÝ KINH DOANH", 230 + dx) + _spaced("Độc lập - Tự do - Hạnh phúc", 1350 + dx), 300, 1)
        + _words_line(_spaced("Số: 77/ĐKKD", 380 + dx) + _spaced("Huế, ngày 01 tháng 6 năm 2023", 1400 + dx), 380, 2)
    )
    page = PageText(index=0, width=A4_300[0] + dx + 800, height=A4_300[1], dpi=300, words=words)
    fields = extract_fields("giay_cn_dang_ky_doanh_nghiep", [page])
    assert fields["co_quan_ban_hanh"].value == "PHÒNG ĐĂNG KÝ KINH DOANH"
    assert fields["so_van_ban"].value == "77/ĐKKD"


def test_right_column_read_first_still_finds_the_agency() -> None:
    """Tesseract may emit the motto block (with the date line) before the agency block."""
    words = (
        _words_line(_spaced("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 1200), 240, 0)
        + _words_line(_spaced("Độc lập - Tự do - Hạnh phúc", 1350), 300, 1)
        + _words_line(_spaced("Châu Thành, ngày 14 tháng 02 năm 2018", 1250), 380, 2)
        + _words_line(_spaced("UBND TỈNH ĐẮK LẮK", 320), 240, 3)
        + _words_line(_spaced("UBND HUYỆN CHÂU THÀNH", 300), 300, 4)
        + _words_line(_spaced("Số: 1314/2018/QĐ-UBND", 330), 380, 5)
    )
    page = PageText(index=0, width=A4_300[0], height=A4_300[1], dpi=300, words=words)
    fields = extract_fields("quyet_dinh", [page])
    assert fields["co_quan_ban_hanh"].value == "UBND HUYỆN CHÂU THÀNH"
    assert fields["ngay_ban_hanh"].value == "2018-02-14"


def test_digit_lookalikes_in_dates_and_damaged_family_names() -> None:
    text = "Họ và tên: PRINH THỊ NGA\nNgày sinh: 07/09/196G\nSố CCCD: 001166012345"
    fields = extract_fields("xac_nhan_cu_tru", [_text_page(text)])
    assert fields["ho_ten"].value == "Trịnh Thị Nga"
    birth = fields["ngay_sinh"]
    assert birth.value == "1966-09-07" and birth.valid and birth.confidence < 0.8
    assert fields["so_dinh_danh"].valid


def test_tesseract_eth_is_read_as_vietnamese_d() -> None:
    text = "UBND XÃ AN BÌNH\nSố: 15/2024/QÐĐ-UBND\nAn Bình, ngày 01 tháng 02 năm 2024\nQUYẾT ĐỊNH"
    assert extract_fields("quyet_dinh", [_text_page(text)])["so_van_ban"].value == "15/2024/QĐ-UBND"


def test_invalid_personal_id_is_reported_never_accepted() -> None:
    text = ("UBND XÃ AN KHÁNH\nSố: 5/XNCT\nAn Khánh, ngày 02 tháng 01 năm 2024\n"
            "XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ\nHọ và tên: LÊ THỊ HOA\nNgày sinh: 03/04/1990\n"
            "Số định danh cá nhân: 003190012345")
    pid = extract_fields("xac_nhan_cu_tru", [_text_page(text)])["so_dinh_danh"]
    assert pid.value is None and not pid.valid
    assert pid.raw == "003190012345" and "province code 003" in pid.error
    assert pid.confidence < 0.5


def test_personal_id_inconsistent_with_birth_year_is_invalid() -> None:
    text = "Họ và tên: LÊ THỊ HOA\nNgày sinh: 03/04/1991\nSố CCCD: 001190012345"
    fields = extract_fields("xac_nhan_cu_tru", [_text_page(text)])
    assert fields["ngay_sinh"].value == "1991-04-03"
    assert fields["so_dinh_danh"].value is None and "1990" in fields["so_dinh_danh"].error


def test_ocr_split_and_lookalike_digits_in_ids() -> None:
    text = "Họ và tên: LÊ THỊ HOA\nNgày sinh: 03/04/1990\nSố căn cước: O01 190 O12345"
    pid = extract_fields("xac_nhan_cu_tru", [_text_page(text)])["so_dinh_danh"]
    assert pid.value == "001190012345" and pid.valid


def test_other_peoples_labels_are_skipped() -> None:
    text = ("Họ, chữ đệm, tên người mẹ: TRẦN THỊ MAI\nNgày sinh người vợ: 01/01/1980\n"
            "Số định danh cá nhân người vợ: 001180012345\n"
            "Họ, chữ đệm, tên: PHẠM VĂN BÌNH\nNgày sinh: 02/02/1982\nSố định danh cá nhân: 079082000777")
    fields = extract_fields("giay_chung_nhan_ket_hon", [_text_page(text)])
    assert fields["ho_ten"].value == "Phạm Văn Bình"
    assert fields["ngay_sinh"].value == "1982-02-02"
    assert fields["so_dinh_danh"].value == "079082000777"


def test_missing_fields_are_listed_as_not_found() -> None:
    fields = extract_fields("giay_khai_sinh", [_text_page("GIẤY KHAI SINH\nGiới tính: Nam")])
    assert set(fields) >= {"ho_ten", "ngay_sinh", "so_dinh_danh", "so_van_ban"}
    for value in fields.values():
        assert value.value is None and not value.valid and value.error == "not found"


def test_dates_names_and_honorifics() -> None:
    text = ("SỞ XÂY DỰNG\nSố: 755/GPXD\nĐà Nẵng, ngày 5 tháng 02 năm 2020\nGIẤY PHÉP XÂY DỰNG\n"
            "1. Cấp cho: Ông HOÀNG  ĐỨC   LONG\nSinh ngày: 7-8-1975\nSố CCCD: 048075001234")
    fields = extract_fields("giay_phep_xay_dung", [_text_page(text)])
    assert fields["ho_ten"].value == "Hoàng Đức Long"
    assert fields["ngay_sinh"].value == "1975-08-07"
    assert fields["ngay_ban_hanh"].value == "2020-02-05"
    assert fields["co_quan_ban_hanh"].value == "SỞ XÂY DỰNG"


def test_future_and_impossible_dates_are_invalid() -> None:
    future = date.today() + timedelta(days=400)
    text = f"Họ và tên: LÊ VĂN AN\nNgày sinh: {future:%d/%m/%Y}"
    birth = extract_fields("xac_nhan_cu_tru", [_text_page(text)])["ngay_sinh"]
    assert not birth.valid and "future" in birth.error
    impossible = extract_fields("xac_nhan_cu_tru", [_text_page("Họ và tên: LÊ VĂN AN\nNgày sinh: 31/02/1990")])
    assert not impossible["ngay_sinh"].valid


def test_garbled_date_line_falls_back_to_registration_date() -> None:
    text = ("UBND XÃ XUÂN PHƯƠNG\nSố: 154/TLKT-BS Xuân Phương, ngày 18 tháng Z năm 2021\nTRÍCH LỤC KHAI TỬ\n"
            "Ngày, tháng, năm đăng ký: 18/07/2021")
    issued = extract_fields("trich_luc_khai_tu", [_text_page(text)])["ngay_ban_hanh"]
    assert issued.value == "2021-07-18" and issued.valid


def test_enterprise_code_checked() -> None:
    ok = extract_fields("giay_cn_dang_ky_doanh_nghiep", [_text_page("Mã số doanh nghiệp: 0300588569")])
    assert ok["ma_so_doanh_nghiep"].value == "0300588569" and ok["ma_so_doanh_nghiep"].valid
    bad = extract_fields("giay_cn_dang_ky_doanh_nghiep", [_text_page("Mã số doanh nghiệp: 0300588568")])
    assert not bad["ma_so_doanh_nghiep"].valid and "check digit" in bad["ma_so_doanh_nghiep"].error


def test_fields_on_a_later_page_carry_its_index() -> None:
    first = _text_page("SỞ TƯ PHÁP\nSố: 9/2024/LLTP\nHà Nội, ngày 10 tháng 5 năm 2024\nPHIẾU LÝ LỊCH TƯ PHÁP SỐ 1", 0)
    second = _text_page("Họ và tên: ĐỖ THỊ LAN\nNgày sinh: 10/10/2000\nSố định danh cá nhân: 001300123456", 1)
    fields = extract_fields("phieu_ly_lich_tu_phap", [first, second])
    assert fields["so_van_ban"].page == 0 and fields["so_dinh_danh"].page == 1
    assert fields["so_dinh_danh"].value == "001300123456"


def test_unknown_type_code_is_an_error() -> None:
    with pytest.raises(CatalogError):
        extract_fields("giay_phep_lai_xe", [_text_page("x")])


@pytest.mark.slow
def test_real_ocr_fields_with_boxes() -> None:
    from ocr.preprocess import clean_page
    from ocr.recognize import recognize

    doc = render_document("xac_nhan_cu_tru", 31337, dpi=300)
    page = recognize(clean_page(SourcePage(source="scan.png", index=0, image=doc.image, dpi=300)))
    fields = extract_fields("xac_nhan_cu_tru", [page])
    for name, expected in doc.fields.items():
        assert fields[name].value == expected, (name, fields[name])
        assert fields[name].bbox is not None and fields[name].confidence > 0.5
    left, top, width, _ = fields["co_quan_ban_hanh"].bbox
    assert left + width < page.width * 0.5 and top < page.height * 0.2


@pytest.mark.slow
def test_phone_photo_fields_read_right() -> None:
    """A phone photo whose sheet detection/aspect once went wrong (squashed to landscape, so
    Tesseract read doubled glyphs: "Miai", "O84O88715210", no date): every field right now."""
    from ocr.preprocess import clean_page
    from ocr.recognize import recognize
    from samples.degrade import degrade

    doc = render_document("quyet_dinh", 30000, dpi=300)
    photo, dpi = degrade(doc.image, "phone_photo", 30000, dpi=300)
    page = recognize(clean_page(SourcePage(source="photo.jpg", index=0, image=photo, dpi=dpi)))
    fields = extract_fields("quyet_dinh", [page])
    for name, expected in doc.fields.items():
        assert fields[name].value == expected and fields[name].valid, (name, fields[name])

"""ocr.validators: personal ID, tax code, dates, names, agency names."""
from __future__ import annotations

from datetime import date

import pytest

from ocr.validators import (
    PROVINCES,
    correct_family_name,
    format_vn_date_words,
    gender_century_digit,
    normalize_agency,
    normalize_name,
    normalize_tax_code,
    parse_vn_date,
    personal_id_birth_year,
    personal_id_is_female,
    strip_diacritics,
    validate_name,
    validate_personal_id,
    validate_tax_code,
)


def test_province_table_has_the_63_provinces() -> None:
    assert len(PROVINCES) == 63
    assert PROVINCES["001"] == "Hà Nội" and PROVINCES["079"] == "Hồ Chí Minh" and PROVINCES["096"] == "Cà Mau"
    assert "003" not in PROVINCES  # codes are not contiguous


@pytest.mark.parametrize("pid, birth_year", [
    ("001090012345", 1990),  # Hà Nội, male, 1990
    ("079195000001", 1995),  # HCMC, female, 1995
    ("036203123456", 2003),  # Nam Định, male, 2003
    ("096321654321", 2021),  # Cà Mau, female, 2021
])
def test_valid_personal_ids(pid: str, birth_year: int) -> None:
    assert validate_personal_id(pid) is None
    assert validate_personal_id(pid, birth_year) is None
    assert personal_id_birth_year(pid) == birth_year


@pytest.mark.parametrize("pid, fragment", [
    ("00109001234", "12 digits"),
    ("0010900123456", "12 digits"),
    ("00109001234a", "12 digits"),
    ("003090012345", "province code 003"),
    ("097090012345", "province code 097"),
    ("001990012345", "future"),  # century digit 9 = 2400s
    ("001 090 012 345", "12 digits"),
])
def test_invalid_personal_ids(pid: str, fragment: str) -> None:
    error = validate_personal_id(pid)
    assert error is not None and fragment in error


def test_personal_id_birth_year_must_match_document() -> None:
    assert "1990" in validate_personal_id("001090012345", birth_year=1991)
    # century digit says 2000s: a person born in 1903 cannot hold it
    assert validate_personal_id("001203123456", birth_year=1903) is not None


def test_gender_century_digit() -> None:
    assert gender_century_digit(1985, female=False) == 0
    assert gender_century_digit(1985, female=True) == 1
    assert gender_century_digit(2010, female=False) == 2
    assert gender_century_digit(2010, female=True) == 3
    assert personal_id_is_female("001190012345") is True
    assert personal_id_is_female("001090012345") is False
    with pytest.raises(ValueError):
        gender_century_digit(1850, female=True)


@pytest.mark.parametrize("code", ["0300588569", "0101248141", "0100109106", "0100109106-001"])
def test_real_enterprise_codes_validate(code: str) -> None:
    # Vinamilk, FPT, Viettel (public registry data): the check digit must agree
    assert validate_tax_code(code) is None


@pytest.mark.parametrize("code, fragment", [
    ("0300588568", "check digit"),
    ("030058856", "10 digits"),
    ("0300588569-000", "000"),
    ("0300588569001", "10 digits"),
])
def test_invalid_enterprise_codes(code: str, fragment: str) -> None:
    assert fragment in validate_tax_code(code)


def test_normalize_tax_code() -> None:
    assert normalize_tax_code("0300 588 569") == "0300588569"
    assert normalize_tax_code("0100109106 - 001") == "0100109106-001"


@pytest.mark.parametrize("text, expected", [
    ("Hà Nội, ngày 05 tháng 3 năm 2024", date(2024, 3, 5)),
    ("ngày 5 tháng 02 năm 2024", date(2024, 2, 5)),
    ("05/03/2024", date(2024, 3, 5)),
    ("5-3-2024", date(2024, 3, 5)),
    ("Sinh ngày: 31.12.1999", date(1999, 12, 31)),
    ("ngay 05 thang 3 nam 2024", date(2024, 3, 5)),  # diacritics lost by OCR
])
def test_parse_vn_date(text: str, expected: date) -> None:
    assert parse_vn_date(text) == expected


@pytest.mark.parametrize("text", ["31/02/2024", "ngày 32 tháng 1 năm 2024", "no date here", ""])
def test_parse_vn_date_rejects(text: str) -> None:
    assert parse_vn_date(text) is None


def test_format_vn_date_words_follows_decree_30() -> None:
    assert format_vn_date_words(date(2024, 3, 5)) == "ngày 05 tháng 3 năm 2024"
    assert format_vn_date_words(date(2024, 2, 15)) == "ngày 15 tháng 02 năm 2024"
    assert parse_vn_date(format_vn_date_words(date(2024, 12, 25))) == date(2024, 12, 25)


def test_normalize_name() -> None:
    assert normalize_name("NGUYỄN VĂN AN") == "Nguyễn Văn An"
    assert normalize_name("  đặng   thị  hồng ") == "Đặng Thị Hồng"
    assert normalize_name("TRẦN THỊ\u0301") != ""  # decomposed input is NFC-normalized first
    assert validate_name("Nguyễn Văn An") is None
    assert validate_name("An") is not None


def test_strip_diacritics() -> None:
    assert strip_diacritics("Đặng Thị Hồng Nhung") == "Dang Thi Hong Nhung"


def test_normalize_agency_fixes_generic_words_only() -> None:
    assert normalize_agency("SỚ NỘI VỤ") == "SỞ NỘI VỤ"
    assert normalize_agency("ủy ban nhân dân tính thái bình") == "ỦY BAN NHÂN DÂN TỈNH THÁI BÌNH"
    # the place name after the administrative level is never touched
    assert normalize_agency("UBND XÃ HÒA BÌNH") == "UBND XÃ HÒA BÌNH"
    assert normalize_agency("CÔNG AN XÃ AN KHÁNH") == "CÔNG AN XÃ AN KHÁNH"


def test_correct_family_name() -> None:
    assert correct_family_name("Đồ Minh Hà") == "Đỗ Minh Hà"
    assert correct_family_name("Nguyên Văn An") == "Nguyễn Văn An"
    assert correct_family_name("Xyz Văn An") == "Xyz Văn An"


def test_correct_family_name_one_letter_off() -> None:
    assert correct_family_name("Prinh Thị Nga") == "Trịnh Thị Nga"
    assert correct_family_name("Lưong Văn Ba") == "Lương Văn Ba"
    # short or ambiguous names are left alone
    assert correct_family_name("Xe Văn Ba") == "Xe Văn Ba"

"""Validators and normalizers for Vietnamese administrative identifiers, dates and names.

Pure functions, no I/O. Each ``validate_*`` returns ``None`` when the value is valid, or a short
English error sentence; ``parse_*``/``normalize_*`` return the normalized value or ``None``.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

from rapidfuzz.distance import Levenshtein

# Province codes of the personal ID number (Circular 07/2016/TT-BCA; the 63 provinces before the
# 2025 mergers, which stay valid for numbers already issued).
PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang",
    "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp",
    "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

_PID_RE = re.compile(r"^\d{12}$")
_TAX_RE = re.compile(r"^(\d{10})(?:-(\d{3}))?$")
_DMY_RE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")
_WORDS_DATE_RE = re.compile(
    r"ng[aàáảãạ]y\s*(\d{1,2})\s*th[aàáảãạ]ng\s*(\d{1,2})\s*n[aăâ][mn]\s*(\d{4})", re.IGNORECASE
)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def strip_diacritics(text: str) -> str:
    """ASCII-fold Vietnamese text ("Đặng Thị Hồng" -> "Dang Thi Hong")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def gender_century_digit(birth_year: int, female: bool) -> int:
    """The 4th digit of the personal ID: century (1900s=0/1, 2000s=2/3, ...) and gender."""
    century_index = birth_year // 100 - 19
    if not 0 <= century_index <= 4:
        raise ValueError(f"birth year {birth_year} outside 1900-2399")
    return century_index * 2 + (1 if female else 0)


def validate_personal_id(value: str, birth_year: int | None = None) -> str | None:
    """Check a 12-digit personal ID number (số định danh cá nhân / CCCD).

    Structure: PPP province code, G century+gender digit, YY birth year, 6 random digits.
    Returns an error sentence, or None when the structure is valid (and consistent with
    ``birth_year`` when given).
    """
    if not _PID_RE.match(value):
        return "personal ID must be exactly 12 digits"
    province, century_gender, yy = value[:3], int(value[3]), value[4:6]
    if province not in PROVINCES:
        return f"unknown province code {province}"
    century = 1900 + (century_gender // 2) * 100
    year = century + int(yy)
    if year > date.today().year:
        return "birth year encoded in the personal ID is in the future"
    if birth_year is not None and birth_year != year:
        return f"personal ID encodes birth year {year}, document says {birth_year}"
    return None


def personal_id_birth_year(value: str) -> int | None:
    """The birth year a structurally valid personal ID encodes, else None."""
    if validate_personal_id(value) is not None:
        return None
    return 1900 + (int(value[3]) // 2) * 100 + int(value[4:6])


def personal_id_is_female(value: str) -> bool | None:
    if validate_personal_id(value) is not None:
        return None
    return int(value[3]) % 2 == 1


def validate_tax_code(value: str) -> str | None:
    """Enterprise/tax code: 10 digits, or 13 as ``NNNNNNNNNN-NNN`` for a dependent unit.

    The 10th digit is a checksum (weights 31,29,23,19,17,13,7,5,3 mod 11, Circular 105/2020).
    """
    m = _TAX_RE.match(value)
    if not m:
        return "enterprise code must be 10 digits, or 13 as NNNNNNNNNN-NNN"
    base = m.group(1)
    if tax_check_digit(base[:9]) != int(base[9]):
        return "enterprise code check digit does not match"
    if m.group(2) == "000":
        return "branch suffix 000 is not allowed"
    return None


def tax_check_digit(first9: str) -> int:
    """Check digit N10 of a Vietnamese tax code; raises ValueError when it cannot exist."""
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    total = sum(int(d) * w for d, w in zip(first9, weights, strict=True))
    digit = 10 - total % 11
    if digit == 10:
        raise ValueError("no valid check digit for this prefix")
    return 0 if digit == 11 else digit


def normalize_tax_code(raw: str) -> str:
    """Digits of an enterprise code, keeping the branch hyphen ("0101 234 567-001")."""
    cleaned = re.sub(r"[\s.]", "", raw)
    m = re.match(r"^(\d{10})\s*[-–]?\s*(\d{3})?$", cleaned)
    if not m:
        return re.sub(r"[^\d-]", "", cleaned)
    return m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")


def parse_vn_date(text: str) -> date | None:
    """Parse "ngày 05 tháng 3 năm 2024", "05/03/2024", "5-3-2024" (day first). None if invalid."""
    text = nfc(text)
    m = _WORDS_DATE_RE.search(text) or _WORDS_DATE_RE.search(strip_diacritics(text))
    if m is None:
        m = _DMY_RE.search(text)
    if m is None:
        return None
    day, month, year = (int(g) for g in m.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def format_vn_date_words(d: date) -> str:
    """Decree 30/2020 date-line style: days < 10 and months < 3 get a leading zero."""
    month = f"{d.month:02d}" if d.month < 3 else str(d.month)
    return f"ngày {d.day:02d} tháng {month} năm {d.year}"


def normalize_name(raw: str) -> str:
    """Proper Vietnamese capitalization of a personal name: "NGUYỄN văn  an" -> "Nguyễn Văn An"."""
    words = re.findall(r"[^\W\d_]+", nfc(raw))
    return " ".join(w[:1].upper() + w[1:].lower() for w in words)


def validate_name(name: str) -> str | None:
    words = name.split()
    if not 2 <= len(words) <= 7:
        return "a full name has 2 to 7 words"
    if any(len(w) > 7 for w in words):
        return "name word longer than a Vietnamese syllable"
    return None


# Words that make up Vietnamese agency names before the place name (Decree 30/2020 headers).
AGENCY_WORDS: frozenset[str] = frozenset(
    """ỦY UỶ BAN NHÂN DÂN UBND HĐND HỘI ĐỒNG SỞ PHÒNG CÔNG AN BỘ CỤC CHI TỔNG TÀI NGUYÊN VÀ MÔI
    TRƯỜNG TƯ PHÁP XÂY DỰNG NỘI VỤ Y TẾ KẾ HOẠCH ĐẦU ĐĂNG KÝ KINH DOANH GIÁO DỤC ĐÀO TẠO LAO ĐỘNG
    THƯƠNG BINH XÃ HỘI VĂN HÓA HOÁ THỂ THAO DU LỊCH GIAO THÔNG VẬN TẢI NÔNG NGHIỆP PHÁT TRIỂN
    CÔNG THƯƠNG KHOA HỌC NGHỆ TIN TRUYỀN CHÍNH VĂN ĐẤT ĐAI TÒA TOÀ ÁN VIỆN KIỂM SÁT QUẢN LÝ
    TRUNG TÂM HÀNH PHỦ THUẾ HẢI QUAN KHO BẠC NHÀ NƯỚC BẢO HIỂM TỈNH THÀNH PHỐ HUYỆN QUẬN THỊ XÃ
    PHƯỜNG TRẤN""".split()
)
_ADMIN_LEVEL_WORDS = frozenset({"TỈNH", "HUYỆN", "QUẬN", "XÃ", "PHƯỜNG", "TRẤN", "PHỐ"})

# The most common Vietnamese family names (a closed set: ~100 names cover nearly everyone).
FAMILY_NAMES: frozenset[str] = frozenset(
    """Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trịnh Mai Tạ
    Lương Cao Đào Đoàn Vương Trương Lâm Phùng Thái Hà Tô Quách Châu La Kiều Lưu Tăng Triệu Từ Hứa
    Giang Khúc Lục Mạc Nghiêm Ninh Tống Chu Doãn Khổng Lại Mẫn Âu Bạch Bế Cù Diệp Đàm Đồng Hầu Kim
    Lã Nông Ông Phí Quan Sầm Thân Thạch Tôn Vi Đường Hàn Khương Lò Mã Nhan Phó Tiêu Tòng Viên
    Bành Cung Danh Đậu Đới Kha Khưu Liêu Lữ Mạch Mông Tất Lạc Lều Ứng""".split()
)


def _unique_by_fold(words: frozenset[str]) -> dict[str, str]:
    by_fold: dict[str, set[str]] = {}
    for word in words:
        by_fold.setdefault(strip_diacritics(word).upper(), set()).add(word)
    return {fold: next(iter(ws)) for fold, ws in by_fold.items() if len(ws) == 1}


_AGENCY_BY_FOLD = _unique_by_fold(AGENCY_WORDS)
_FAMILY_BY_FOLD = _unique_by_fold(FAMILY_NAMES)


def normalize_agency(raw: str) -> str:
    """Upper-case agency name with OCR diacritic errors fixed in its generic words.

    Only the words before the place name are corrected ("SỚ NỘI VỤ" -> "SỞ NỘI VỤ",
    "UBND TÍNH THÁI BÌNH" -> "UBND TỈNH THÁI BÌNH"): a word is replaced when it is not an agency
    word but folds to exactly one; correction stops after the administrative-level word.
    """
    words = nfc(raw).upper().split()
    out: list[str] = []
    for i, word in enumerate(words):
        fixed = word if word in AGENCY_WORDS else _AGENCY_BY_FOLD.get(strip_diacritics(word).upper())
        if fixed is None:
            out.extend(words[i:])
            break
        out.append(fixed)
        if fixed in _ADMIN_LEVEL_WORDS:
            out.extend(words[i + 1:])
            break
    return " ".join(out)


def correct_family_name(name: str) -> str:
    """Fix an OCR-damaged family name from the closed list of family names.

    Same letters, wrong diacritics: "Đồ Minh Hà" -> "Đỗ Minh Hà". One wrong letter in a name of
    4+ letters, when exactly one family name is that close: "Prinh Thị Nga" -> "Trịnh Thị Nga".
    """
    words = name.split()
    if not words or words[0] in FAMILY_NAMES:
        return name
    folded = strip_diacritics(words[0]).upper()
    fixed = _FAMILY_BY_FOLD.get(folded)
    if fixed is None and len(folded) >= 4:
        close = {n for f, n in _FAMILY_BY_FOLD.items() if len(f) == len(folded) and Levenshtein.distance(f, folded) == 1}
        fixed = close.pop() if len(close) == 1 else None
    return " ".join([fixed, *words[1:]]) if fixed else name

"""Render realistic synthetic Vietnamese administrative documents (Decree 30/2020 layout).

Every document has the agency block top-left, the national motto top-right, "Số: ...", the place
and date line, a bold upper-case title, a body of labelled fields and a signature block. Contents
(names, personal ID numbers, dates, agencies) are random but deterministic for a given seed and
structurally valid (province codes, century/gender digit, tax-code check digit).

    >>> doc = render_document("giay_khai_sinh", seed=7)
    >>> doc.image.shape, doc.fields["ho_ten"]

Command line: ``python -m samples.generator --demo samples/`` writes the three demo images;
``python -m samples.generator --out DIR --types quyet_dinh --seeds 0-9`` writes images plus
``.gt.txt`` text and ``.fields.json`` ground truth.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr.validators import PROVINCES, format_vn_date_words, gender_century_digit, tax_check_digit

# Liberation Serif (Times New Roman metrics, as Decree 30/2020 asks). Debian's fonts-liberation
# 1.07 has no Vietnamese glyphs; fonts-liberation2 (2.1) has them. DejaVu Serif is the fallback.
_FONT_CANDIDATES: tuple[tuple[Path, dict[str, str]], ...] = (
    (Path("/usr/share/fonts/truetype/liberation2"), {
        "regular": "LiberationSerif-Regular.ttf", "bold": "LiberationSerif-Bold.ttf",
        "italic": "LiberationSerif-Italic.ttf", "bolditalic": "LiberationSerif-BoldItalic.ttf"}),
    (Path("/usr/share/fonts/truetype/liberation"), {
        "regular": "LiberationSerif-Regular.ttf", "bold": "LiberationSerif-Bold.ttf",
        "italic": "LiberationSerif-Italic.ttf", "bolditalic": "LiberationSerif-BoldItalic.ttf"}),
    (Path("/usr/share/fonts/truetype/dejavu"), {
        "regular": "DejaVuSerif.ttf", "bold": "DejaVuSerif-Bold.ttf",
        "italic": "DejaVuSerif-Italic.ttf", "bolditalic": "DejaVuSerif-BoldItalic.ttf"}),
)
_VIETNAMESE_PROBE = "ỘỦƯỚẶĐữỹ"

DOC_TYPES: tuple[str, ...] = (
    "giay_khai_sinh",
    "giay_chung_nhan_ket_hon",
    "trich_luc_khai_tu",
    "quyet_dinh",
    "cong_van",
    "giay_cn_dang_ky_doanh_nghiep",
    "xac_nhan_cu_tru",
    "phieu_ly_lich_tu_phap",
    "giay_phep_xay_dung",
    "giay_cn_quyen_su_dung_dat",
    "don_de_nghi",
    "xac_nhan_tinh_trang_hon_nhan",
)

A4_MM = (210.0, 297.0)
INK = (20, 20, 20)
SIGN_BLUE = (30, 50, 160)
SEAL_RED = (210, 30, 35)


@dataclass
class GeneratedDocument:
    doc_type: str
    image: np.ndarray  # BGR uint8, A4 at ``dpi``
    text: str  # ground-truth text, NFC, reading order, one printed line per line
    fields: dict[str, str]  # normalized ground-truth field values
    dpi: int


# --------------------------------------------------------------------------- random content

_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
           "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Mai", "Tạ", "Lương", "Cao"]
_MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thành", "Công", "Xuân", "Đình", "Ngọc",
             "Anh", "Gia", "Trọng", "Quang", "Mạnh"]
_MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hoài", "Phương", "Bích", "Kim", "Mỹ",
             "Diệu", "Khánh", "Thùy", "Hồng", "Bảo"]
_GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Khoa",
            "Long", "Nam", "Nghĩa", "Phong", "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Toàn",
            "Trung", "Tuấn", "Việt", "Vinh", "Hoàng", "Kiên", "Lộc", "Thịnh", "Đông"]
_GIVEN_F = ["Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai",
            "Nga", "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Thủy", "Trang", "Uyên",
            "Vân", "Yến", "Huyền", "Loan", "Trâm", "Tuyết", "Xuân", "Hằng", "Ly"]
_COMMUNES = ["Tân Lập", "Hòa Bình", "Phú Mỹ", "An Khánh", "Đông Hòa", "Tân Phú", "Quang Trung",
             "Yên Hòa", "Thạch Bàn", "Nghĩa Đô", "Bình Minh", "Xuân Phương", "Hưng Đạo",
             "Long Thạnh", "Mỹ Phước", "Tân Thành", "Cát Lái", "Hiệp Phước", "Tam Hiệp", "Kim Chung"]
_DISTRICTS = ["Đông Anh", "Gia Lâm", "Thanh Trì", "Củ Chi", "Bình Chánh", "Hóc Môn", "Thủy Nguyên",
              "Kim Bảng", "Yên Thế", "Châu Thành", "Phú Lương", "Tiên Du", "Nghi Lộc", "Hải Hậu",
              "Đức Trọng", "Cư M'gar", "Tân Uyên", "Long Thành", "Cẩm Giàng", "Thọ Xuân"]
_STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt",
            "Phan Chu Trinh", "Điện Biên Phủ", "Hùng Vương", "Quang Trung", "Nguyễn Huệ"]
_COMPANY_WORDS = ["Thương mại", "Dịch vụ", "Xây dựng", "Công nghệ", "Sản xuất", "Vận tải",
                  "Nông sản", "Thực phẩm", "Du lịch", "Đầu tư", "Cơ khí", "Môi trường"]
_COMPANY_NAMES = ["Hưng Thịnh", "Phú Gia", "An Phát", "Minh Long", "Sao Việt", "Hoàng Hà",
                  "Thành Công", "Đại Dương", "Bình An", "Tân Tiến", "Kim Ngân", "Phương Nam"]
_PROVINCE_CODES = sorted(PROVINCES)


@dataclass
class _Person:
    name: str  # proper case
    female: bool
    birth: date
    pid: str
    province: str  # province name of birth registration

    @property
    def title(self) -> str:
        return "Bà" if self.female else "Ông"


@dataclass
class _Place:
    province: str
    district: str
    commune: str

    @property
    def province_unit(self) -> str:
        city = self.province in {"Hà Nội", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng", "Cần Thơ"}
        return ("THÀNH PHỐ " if city else "TỈNH ") + self.province.upper()

    @property
    def address(self) -> str:
        return f"xã {self.commune}, huyện {self.district}, tỉnh {self.province}"


def _random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _random_person(rng: random.Random, birth_from: date, birth_to: date,
                   female: bool | None = None) -> _Person:
    if female is None:
        female = rng.random() < 0.5
    family = rng.choice(_FAMILY)
    middle = rng.choice(_MIDDLE_F if female else _MIDDLE_M)
    given = rng.choice(_GIVEN_F if female else _GIVEN_M)
    extra = [rng.choice(_MIDDLE_F if female else _MIDDLE_M)] if rng.random() < 0.15 else []
    name = " ".join([family, middle, *extra, given])
    birth = _random_date(rng, birth_from, birth_to)
    code = rng.choice(_PROVINCE_CODES)
    pid = f"{code}{gender_century_digit(birth.year, female)}{birth.year % 100:02d}{rng.randrange(10**6):06d}"
    return _Person(name, female, birth, pid, PROVINCES[code])


def _random_place(rng: random.Random) -> _Place:
    return _Place(PROVINCES[rng.choice(_PROVINCE_CODES)], rng.choice(_DISTRICTS), rng.choice(_COMMUNES))


def _random_tax_code(rng: random.Random) -> str:
    while True:
        first9 = f"{rng.choice(['01', '02', '03', '04', '05', '06', '08'])}{rng.randrange(10**7):07d}"
        try:
            return first9 + str(tax_check_digit(first9))
        except ValueError:
            continue


def _street_address(rng: random.Random, place: _Place) -> str:
    return f"Số {rng.randint(1, 250)} đường {rng.choice(_STREETS)}, {place.address}"


def _dmy(d: date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def _name_as_printed(rng: random.Random, name: str) -> str:
    return name.upper() if rng.random() < 0.6 else name


# --------------------------------------------------------------------------- document specs

Body = list[tuple[str, ...]]  # ("field", label, value) | ("para", text) | ("center", text) | ("bold", text)


@dataclass
class _Spec:
    agency_parent: str | None
    agency: str | None  # issuing agency, bold (None: a citizen's application)
    number: str | None
    place_name: str
    issued: date
    title: list[str]
    body: Body
    signer_lines: list[str]
    signer_name: str
    fields: dict[str, str]
    subtitle: list[str] = field(default_factory=list)  # "Về việc ..." under the title
    regarding: str | None = None  # "V/v ..." under the number (official letters)
    recipients: list[str] = field(default_factory=list)  # "Nơi nhận:" block
    addressee: str | None = None  # "Kính gửi: ..."


def _person_fields(p: _Person) -> dict[str, str]:
    return {"ho_ten": p.name, "ngay_sinh": p.birth.isoformat(), "so_dinh_danh": p.pid}


def _label(rng: random.Random, kind: str) -> str:
    options = {
        "name": ["Họ, chữ đệm, tên:", "Họ và tên:", "Họ, chữ đệm và tên:", "Họ tên:"],
        "birth": ["Ngày, tháng, năm sinh:", "Ngày sinh:", "Sinh ngày:"],
        "pid": ["Số định danh cá nhân:", "Số CCCD:", "Số căn cước:", "Số căn cước công dân:",
                "Số định danh:"],
    }
    return rng.choice(options[kind])


def _person_body(rng: random.Random, p: _Person, *, with_birth: bool = True) -> Body:
    rows: Body = [("field", _label(rng, "name"), _name_as_printed(rng, p.name))]
    if with_birth:
        rows.append(("field", _label(rng, "birth"), _dmy(p.birth)))
    rows.append(("field", "Giới tính:", "Nữ" if p.female else "Nam"))
    rows.append(("field", _label(rng, "pid"), p.pid))
    return rows


def _commune_agency(place: _Place) -> tuple[str, str]:
    return (f"UBND HUYỆN {place.district.upper()}", f"UBND XÃ {place.commune.upper()}")


def _number(rng: random.Random, year: int, suffix: str, with_year: bool | None = None) -> str:
    n = rng.randint(1, 2999)
    if with_year is None:
        with_year = rng.random() < 0.5
    return f"{n}/{year}/{suffix}" if with_year else f"{n}/{suffix}"


def _spec_giay_khai_sinh(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2016, 1, 1), date(2025, 12, 31))
    child = _random_person(rng, issued - timedelta(days=60), issued - timedelta(days=1))
    mother = _random_person(rng, date(1975, 1, 1), date(2003, 12, 31), female=True)
    parent, agency = _commune_agency(place)
    body: Body = [("bold", "Thông tin người được khai sinh"), *_person_body(rng, child)]
    body += [
        ("field", "Nơi sinh:", f"Bệnh viện đa khoa tỉnh {place.province}"),
        ("field", "Dân tộc:", "Kinh"),
        ("field", "Quốc tịch:", "Việt Nam"),
        ("field", "Quê quán:", place.address),
        ("bold", "Thông tin người mẹ"),
        ("field", "Họ, chữ đệm, tên người mẹ:", mother.name.upper()),
        ("field", "Năm sinh:", str(mother.birth.year)),
        ("field", "Nơi cư trú:", place.address),
        ("field", "Nơi đăng ký khai sinh:", f"Ủy ban nhân dân xã {place.commune}"),
        ("field", "Ngày, tháng, năm đăng ký:", _dmy(issued)),
    ]
    fields = {**_person_fields(child), "so_van_ban": f"{rng.randint(1, 400)}/{issued.year}",
              "ngay_ban_hanh": issued.isoformat()}
    return _Spec(parent, agency, fields["so_van_ban"], place.commune, issued, ["GIẤY KHAI SINH"],
                 body, ["CHỦ TỊCH" if rng.random() < 0.5 else "NGƯỜI KÝ GIẤY KHAI SINH"],
                 _random_person(rng, date(1960, 1, 1), date(1990, 1, 1)).name, fields)


def _spec_giay_chung_nhan_ket_hon(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2012, 1, 1), date(2025, 12, 31))
    husband = _random_person(rng, date(1970, 1, 1), date(issued.year - 20, 1, 1), female=False)
    wife = _random_person(rng, date(1972, 1, 1), date(issued.year - 18, 1, 1), female=True)
    parent, agency = _commune_agency(place)
    body: Body = [("bold", "Thông tin người chồng"),
                  ("field", _label(rng, "name"), _name_as_printed(rng, husband.name)),
                  ("field", _label(rng, "birth"), _dmy(husband.birth)),
                  ("field", _label(rng, "pid"), husband.pid),
                  ("field", "Nơi cư trú:", place.address),
                  ("bold", "Thông tin người vợ"),
                  ("field", "Họ, chữ đệm, tên người vợ:", wife.name.upper()),
                  ("field", "Ngày sinh người vợ:", _dmy(wife.birth)),
                  ("field", "Số định danh cá nhân người vợ:", wife.pid),
                  ("field", "Nơi đăng ký kết hôn:", f"Ủy ban nhân dân xã {place.commune}"),
                  ("field", "Ngày, tháng, năm đăng ký:", _dmy(issued)),
                  ("para", "Chữ ký của chồng và chữ ký của vợ đã được ghi vào Sổ đăng ký kết hôn.")]
    fields = {**_person_fields(husband), "so_van_ban": f"{rng.randint(1, 300)}/{issued.year}",
              "ngay_ban_hanh": issued.isoformat()}
    return _Spec(parent, agency, fields["so_van_ban"], place.commune, issued,
                 ["GIẤY CHỨNG NHẬN KẾT HÔN"], body, ["CHỦ TỊCH"],
                 _random_person(rng, date(1960, 1, 1), date(1990, 1, 1)).name, fields)


def _spec_trich_luc_khai_tu(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2016, 1, 1), date(2025, 12, 31))
    died = issued - timedelta(days=rng.randint(1, 30))
    person = _random_person(rng, date(1925, 1, 1), date(1990, 12, 31))
    parent, agency = _commune_agency(place)
    body: Body = [*_person_body(rng, person),
                  ("field", "Dân tộc:", "Kinh"), ("field", "Quốc tịch:", "Việt Nam"),
                  ("field", "Nơi cư trú cuối cùng:", place.address),
                  ("field", "Đã chết vào lúc:", f"{rng.randint(0, 23):02d} giờ {rng.randint(0, 59):02d} phút, ngày {_dmy(died)}"),
                  ("field", "Nơi chết:", rng.choice(["Tại nhà", f"Bệnh viện đa khoa tỉnh {place.province}"])),
                  ("field", "Nguyên nhân chết:", rng.choice(["Già yếu", "Bệnh"])),
                  ("field", "Nơi đăng ký khai tử:", f"Ủy ban nhân dân xã {place.commune}"),
                  ("field", "Ngày, tháng, năm đăng ký:", _dmy(issued))]
    fields = {**_person_fields(person), "so_van_ban": f"{rng.randint(1, 200)}/TLKT-BS",
              "ngay_ban_hanh": issued.isoformat()}
    return _Spec(parent, agency, fields["so_van_ban"], place.commune, issued,
                 ["TRÍCH LỤC KHAI TỬ"], body, ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH"],
                 _random_person(rng, date(1960, 1, 1), date(1990, 1, 1)).name, fields,
                 subtitle=[rng.choice(["(Bản sao)", "(Bản chính)"])])


def _spec_quyet_dinh(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1950, 1, 1), date(2000, 12, 31))
    level = rng.random()
    if level < 0.5:
        parent, agency = f"UBND {place.province_unit}", f"UBND HUYỆN {place.district.upper()}"
        org, place_name = f"Ủy ban nhân dân huyện {place.district}", place.district
    else:
        parent, agency = None, f"ỦY BAN NHÂN DÂN {place.province_unit}"
        org, place_name = f"Ủy ban nhân dân tỉnh {place.province}", place.province
    matter, article = rng.choice([
        ("Về việc công nhận hộ kinh doanh tiêu biểu năm " + str(issued.year - 1),
         "Công nhận hộ kinh doanh tiêu biểu đối với"),
        ("Về việc cho phép chuyển mục đích sử dụng đất",
         "Cho phép chuyển mục đích sử dụng đất trồng cây lâu năm sang đất ở đối với"),
        ("Về việc hỗ trợ kinh phí đào tạo nghề", "Hỗ trợ kinh phí đào tạo nghề cho"),
        ("Về việc khen thưởng thành tích xuất sắc", "Tặng Giấy khen cho"),
        ("Về việc giao đất ở không thông qua đấu giá", "Giao đất ở không thông qua đấu giá cho"),
    ])
    body: Body = [
        ("center", f"CHỦ TỊCH ỦY BAN NHÂN DÂN {'HUYỆN ' + place.district.upper() if level < 0.5 else place.province_unit}"),
        ("para", "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015; Luật sửa "
                 "đổi, bổ sung một số điều của Luật Tổ chức Chính phủ và Luật Tổ chức chính quyền "
                 "địa phương ngày 22 tháng 11 năm 2019;"),
        ("para", f"Xét đề nghị của Trưởng phòng {rng.choice(['Tài nguyên và Môi trường', 'Nội vụ', 'Tài chính - Kế hoạch', 'Lao động - Thương binh và Xã hội'])}."),
        ("center", "QUYẾT ĐỊNH:"),
        ("para", f"Điều 1. {article} {person.title.lower()}:"),
        *_person_body(rng, person),
        ("field", "Nơi cư trú:", place.address),
        ("para", "Điều 2. Quyết định này có hiệu lực kể từ ngày ký."),
        ("para", f"Điều 3. Chánh Văn phòng {org}, Thủ trưởng các cơ quan có liên quan và "
                 f"{person.title.lower()} có tên tại Điều 1 chịu trách nhiệm thi hành Quyết định này./."),
    ]
    number = _number(rng, issued.year, "QĐ-UBND")
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    signer = ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH"] if rng.random() < 0.5 else ["KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH"]
    return _Spec(parent, agency, number, place_name, issued, ["QUYẾT ĐỊNH"], body, signer,
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields,
                 subtitle=[matter], recipients=["Như Điều 3;", "Lưu: VT."])


def _spec_cong_van(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    dept = rng.choice([("SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG", "STNMT"), ("SỞ TƯ PHÁP", "STP"),
                       ("SỞ XÂY DỰNG", "SXD"), ("SỞ NỘI VỤ", "SNV"), ("SỞ Y TẾ", "SYT")])
    topic = rng.choice(["V/v hướng dẫn hồ sơ cấp giấy chứng nhận", "V/v trả lời đơn của công dân",
                        "V/v đôn đốc số hóa hồ sơ thủ tục hành chính", "V/v cung cấp thông tin"])
    number = _number(rng, issued.year, f"{dept[1]}-{rng.choice(['VP', 'QLĐĐ', 'HCTP', 'TCCB'])}",
                     with_year=False)
    body: Body = [
        ("field", "Kính gửi:", f"Ủy ban nhân dân huyện {place.district}"),
        ("para", f"Thực hiện chỉ đạo của Ủy ban nhân dân tỉnh {place.province} về việc đẩy mạnh cải cách "
                 f"thủ tục hành chính, {dept[0].capitalize()} đề nghị Ủy ban nhân dân huyện {place.district} "
                 "chỉ đạo các phòng chuyên môn rà soát, tổng hợp và báo cáo kết quả thực hiện."),
        ("para", f"Văn bản báo cáo gửi về {dept[0].capitalize()} trước ngày {_dmy(issued + timedelta(days=20))} "
                 "để tổng hợp, báo cáo Ủy ban nhân dân tỉnh."),
        ("para", f"Mọi vướng mắc liên hệ {rng.choice(['Văn phòng Sở', 'Phòng chuyên môn'])}, số điện thoại "
                 f"0{rng.randint(200, 299)}.{rng.randint(1000000, 9999999)} để được hướng dẫn./."),
    ]
    fields = {"so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(f"UBND {place.province_unit}", dept[0], number, place.province, issued, [], body,
                 ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields,
                 regarding=topic, recipients=["Như trên;", "Lưu: VT."])


def _spec_giay_cn_dang_ky_doanh_nghiep(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    rep = _random_person(rng, date(1960, 1, 1), date(1998, 12, 31))
    kind = rng.choice(["CÔNG TY TNHH", "CÔNG TY CỔ PHẦN"])
    company = f"{kind} {rng.choice(_COMPANY_WORDS).upper()} {rng.choice(_COMPANY_NAMES).upper()}"
    tax = _random_tax_code(rng)
    body: Body = [
        ("center", "CÔNG TY TRÁCH NHIỆM HỮU HẠN" if "TNHH" in kind else "CÔNG TY CỔ PHẦN"),
        ("field", "Mã số doanh nghiệp:", tax),
        ("field", "Đăng ký lần đầu:", f"ngày {_dmy(issued)}"),
        ("bold", "1. Tên công ty"),
        ("field", "Tên công ty viết bằng tiếng Việt:", company),
        ("field", "Tên công ty viết tắt:", company.split()[-1] + " CO., LTD"),
        ("bold", "2. Địa chỉ trụ sở chính"),
        ("para", _street_address(rng, place)),
        ("field", "3. Vốn điều lệ:", f"{rng.randint(1, 50) * 500}.000.000 đồng"),
        ("bold", "4. Người đại diện theo pháp luật của công ty"),
        ("field", _label(rng, "name"), _name_as_printed(rng, rep.name)),
        ("field", "Chức danh:", "Giám đốc"),
        ("field", _label(rng, "birth"), _dmy(rep.birth)),
        ("field", _label(rng, "pid"), rep.pid),
    ]
    number = f"{rng.randint(1, 9999)}/ĐKKD"
    fields = {**_person_fields(rep), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat(),
              "ma_so_doanh_nghiep": tax}
    return _Spec("SỞ KẾ HOẠCH VÀ ĐẦU TƯ " + place.province_unit, "PHÒNG ĐĂNG KÝ KINH DOANH", number,
                 place.province, issued, ["GIẤY CHỨNG NHẬN", "ĐĂNG KÝ DOANH NGHIỆP"], body,
                 ["TRƯỞNG PHÒNG"], _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name,
                 fields)


def _spec_xac_nhan_cu_tru(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2021, 7, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1950, 1, 1), date(2005, 12, 31))
    body: Body = [
        ("para", f"Công an xã {place.commune} xác nhận thông tin về cư trú của công dân như sau:"),
        *_person_body(rng, person),
        ("field", "Nơi thường trú:", _street_address(rng, place)),
        ("field", "Nơi ở hiện tại:", _street_address(rng, place)),
        ("field", "Họ, chữ đệm và tên chủ hộ:", _random_person(rng, date(1950, 1, 1), date(1990, 1, 1)).name.upper()),
        ("field", "Quan hệ với chủ hộ:", rng.choice(["Chủ hộ", "Con", "Vợ", "Chồng", "Cháu"])),
        ("para", "Giấy xác nhận có giá trị 30 ngày kể từ ngày cấp."),
    ]
    number = f"{rng.randint(1, 9999)}/XNCT"
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(f"CÔNG AN HUYỆN {place.district.upper()}", f"CÔNG AN XÃ {place.commune.upper()}",
                 number, place.commune, issued, ["XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ"], body,
                 ["TRƯỞNG CÔNG AN XÃ"], _random_person(rng, date(1965, 1, 1), date(1990, 1, 1)).name,
                 fields)


def _spec_phieu_ly_lich_tu_phap(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1955, 1, 1), date(2005, 12, 31))
    kind = rng.choice(["SỐ 1", "SỐ 2"])
    body: Body = [
        ("para", "Căn cứ Luật Lý lịch tư pháp ngày 17 tháng 6 năm 2009;"),
        ("para", f"Căn cứ Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp ngày {_dmy(issued - timedelta(days=10))}"),
        ("bold", "XÁC NHẬN:"),
        *_person_body(rng, person),
        ("field", "Nơi sinh:", f"tỉnh {person.province}"),
        ("field", "Quốc tịch:", "Việt Nam"),
        ("field", "Nơi thường trú:", place.address),
        ("field", "Tình trạng án tích:", "Không có án tích"),
        ("field", "Thông tin về việc cấm đảm nhiệm chức vụ:", "Không bị cấm"),
    ]
    number = f"{rng.randint(1, 99999)}/{issued.year}/LLTP"
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(f"UBND {place.province_unit}", "SỞ TƯ PHÁP", number, place.province, issued,
                 ["PHIẾU LÝ LỊCH TƯ PHÁP " + kind], body, ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields)


def _spec_giay_phep_xay_dung(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1955, 1, 1), date(2000, 12, 31))
    body: Body = [
        ("center", "(Sử dụng cho nhà ở riêng lẻ)"),
        ("field", "1. Cấp cho:", f"{person.title} {_name_as_printed(rng, person.name)}"),
        ("field", _label(rng, "birth"), _dmy(person.birth)),
        ("field", _label(rng, "pid"), person.pid),
        ("field", "Địa chỉ:", _street_address(rng, place)),
        ("field", "2. Được phép xây dựng công trình:", "Nhà ở riêng lẻ"),
        ("field", "Theo thiết kế:", f"do Công ty {rng.choice(_COMPANY_NAMES)} lập"),
        ("field", "Gồm các nội dung sau:", f"Diện tích xây dựng tầng 1: {rng.randint(40, 150)} m2"),
        ("field", "Tổng diện tích sàn:", f"{rng.randint(80, 500)} m2; số tầng: {rng.randint(1, 5)}"),
        ("field", "Chiều cao công trình:", f"{rng.randint(4, 20)} m"),
        ("field", "3. Giấy phép này có hiệu lực khởi công xây dựng trong thời hạn:", "12 tháng"),
    ]
    number = f"{rng.randint(1, 2999)}/GPXD"
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(f"UBND {place.province_unit}", rng.choice(["SỞ XÂY DỰNG", f"UBND HUYỆN {place.district.upper()}"]),
                 number, place.province, issued, ["GIẤY PHÉP XÂY DỰNG"], body,
                 ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields)


def _spec_giay_cn_quyen_su_dung_dat(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2010, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1945, 1, 1), date(2000, 12, 31))
    body: Body = [
        ("bold", "I. Người sử dụng đất, chủ sở hữu tài sản gắn liền với đất"),
        ("field", _label(rng, "name"), f"{person.title} {_name_as_printed(rng, person.name)}"),
        ("field", _label(rng, "birth"), _dmy(person.birth)),
        ("field", _label(rng, "pid"), person.pid),
        ("field", "Địa chỉ thường trú:", place.address),
        ("bold", "II. Thửa đất, nhà ở và tài sản khác gắn liền với đất"),
        ("field", "a) Thửa đất số:", f"{rng.randint(1, 900)}; tờ bản đồ số: {rng.randint(1, 60)}"),
        ("field", "b) Địa chỉ:", place.address),
        ("field", "c) Diện tích:", f"{rng.randint(60, 2000)},{rng.randint(0, 9)} m2"),
        ("field", "d) Hình thức sử dụng:", "Sử dụng riêng"),
        ("field", "đ) Mục đích sử dụng:", rng.choice(["Đất ở tại nông thôn", "Đất trồng cây lâu năm", "Đất ở tại đô thị"])),
        ("field", "e) Thời hạn sử dụng:", "Lâu dài"),
        ("field", "g) Nguồn gốc sử dụng:", rng.choice(["Công nhận quyền sử dụng đất", "Nhận chuyển nhượng"])),
    ]
    number = f"CS {rng.randint(1, 99999):05d}"
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(f"UBND {place.province_unit}", "SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG", number, place.province,
                 issued, ["GIẤY CHỨNG NHẬN", "QUYỀN SỬ DỤNG ĐẤT, QUYỀN SỞ HỮU NHÀ Ở",
                          "VÀ TÀI SẢN KHÁC GẮN LIỀN VỚI ĐẤT"], body,
                 ["TM. ỦY BAN NHÂN DÂN", "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields)


def _spec_don_de_nghi(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2018, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1950, 1, 1), date(2005, 12, 31))
    subject, request = rng.choice([
        ("cấp bản sao trích lục hộ tịch", "cấp 02 bản sao trích lục khai sinh"),
        ("xác nhận thông tin cư trú", "xác nhận thông tin về cư trú để bổ sung hồ sơ xin việc"),
        ("cấp lại giấy chứng nhận quyền sử dụng đất", "cấp lại giấy chứng nhận quyền sử dụng đất do bị mất"),
        ("hỗ trợ kinh phí học nghề", "được hỗ trợ kinh phí học nghề theo quy định"),
    ])
    body: Body = [
        ("field", "Kính gửi:", f"Ủy ban nhân dân xã {place.commune}"),
        ("field", "Tôi tên là:", _name_as_printed(rng, person.name)),
        ("field", _label(rng, "birth"), _dmy(person.birth)),
        ("field", _label(rng, "pid"), person.pid),
        ("field", "Nơi cư trú:", place.address),
        ("field", "Số điện thoại:", f"09{rng.randrange(10**8):08d}"),
        ("para", f"Tôi làm đơn này đề nghị Ủy ban nhân dân xã {place.commune} xem xét, {request}."),
        ("para", "Tôi xin cam đoan những nội dung khai trên là đúng sự thật và chịu trách nhiệm "
                 "trước pháp luật về lời khai của mình."),
    ]
    fields = {**_person_fields(person), "ngay_ban_hanh": issued.isoformat()}
    return _Spec(None, None, None, place.commune, issued,
                 ["ĐƠN ĐỀ NGHỊ", subject.upper()], body, ["NGƯỜI LÀM ĐƠN"], person.name, fields)


def _spec_xac_nhan_tinh_trang_hon_nhan(rng: random.Random) -> _Spec:
    place = _random_place(rng)
    issued = _random_date(rng, date(2016, 1, 1), date(2025, 12, 31))
    person = _random_person(rng, date(1960, 1, 1), date(2005, 12, 31))
    parent, agency = _commune_agency(place)
    body: Body = [
        ("para", f"Xét đề nghị của {person.title.lower()} {person.name} về việc cấp Giấy xác nhận "
                 "tình trạng hôn nhân,"),
        ("center", f"ỦY BAN NHÂN DÂN XÃ {place.commune.upper()} XÁC NHẬN:"),
        *_person_body(rng, person),
        ("field", "Dân tộc:", "Kinh"), ("field", "Quốc tịch:", "Việt Nam"),
        ("field", "Nơi cư trú:", place.address),
        ("field", "Tình trạng hôn nhân:", rng.choice(["Hiện tại chưa đăng ký kết hôn với ai", "Đã ly hôn, hiện tại chưa kết hôn với ai"])),
        ("field", "Giấy này được cấp để:", rng.choice(["làm thủ tục đăng ký kết hôn", "bổ sung hồ sơ vay vốn"])),
        ("field", "Giấy này có giá trị sử dụng đến ngày:", _dmy(issued + timedelta(days=180))),
    ]
    number = f"{rng.randint(1, 500)}/XNTTHN"
    fields = {**_person_fields(person), "so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}
    return _Spec(parent, agency, number, place.commune, issued,
                 ["GIẤY XÁC NHẬN TÌNH TRẠNG HÔN NHÂN"], body, ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name, fields)


_SPECS: dict[str, Callable[[random.Random], _Spec]] = {
    "giay_khai_sinh": _spec_giay_khai_sinh,
    "giay_chung_nhan_ket_hon": _spec_giay_chung_nhan_ket_hon,
    "trich_luc_khai_tu": _spec_trich_luc_khai_tu,
    "quyet_dinh": _spec_quyet_dinh,
    "cong_van": _spec_cong_van,
    "giay_cn_dang_ky_doanh_nghiep": _spec_giay_cn_dang_ky_doanh_nghiep,
    "xac_nhan_cu_tru": _spec_xac_nhan_cu_tru,
    "phieu_ly_lich_tu_phap": _spec_phieu_ly_lich_tu_phap,
    "giay_phep_xay_dung": _spec_giay_phep_xay_dung,
    "giay_cn_quyen_su_dung_dat": _spec_giay_cn_quyen_su_dung_dat,
    "don_de_nghi": _spec_don_de_nghi,
    "xac_nhan_tinh_trang_hon_nhan": _spec_xac_nhan_tinh_trang_hon_nhan,
}
assert set(_SPECS) == set(DOC_TYPES)

# Administrative documents that are NOT in the catalog: the classifier must answer "unknown".
_OTHER_TITLES: dict[str, tuple[str, str, list[str]]] = {
    "thong_bao": ("THÔNG BÁO", "TB-UBND", [
        "Ủy ban nhân dân thông báo lịch tiếp công dân định kỳ trong tháng như sau:",
        "Thời gian tiếp công dân vào sáng thứ Năm hằng tuần tại trụ sở cơ quan.",
        "Đề nghị các cơ quan, đơn vị và nhân dân biết, liên hệ thực hiện."]),
    "bien_ban": ("BIÊN BẢN", "BB-UBND", [
        "Hôm nay, vào lúc 9 giờ 00 phút, tại hội trường cơ quan, chúng tôi gồm có:",
        "Đại diện các phòng chuyên môn và đại diện hộ gia đình có liên quan.",
        "Cuộc họp kết thúc vào lúc 11 giờ cùng ngày, biên bản được lập thành 03 bản."]),
    "to_trinh": ("TỜ TRÌNH", "TTr-UBND", [
        "Thực hiện kế hoạch năm, Ủy ban nhân dân kính trình Hội đồng nhân dân xem xét,",
        "thông qua dự toán thu, chi ngân sách và phương án phân bổ kinh phí như sau:",
        "Kính trình Hội đồng nhân dân xem xét, quyết định."]),
    "giay_moi": ("GIẤY MỜI", "GM-UBND", [
        "Ủy ban nhân dân trân trọng kính mời đại biểu tới dự hội nghị tổng kết công tác năm.",
        "Thời gian: 08 giờ 00 phút. Địa điểm: Hội trường tầng 2 trụ sở cơ quan.",
        "Rất mong đại biểu đến dự đúng thời gian."]),
    "bao_cao": ("BÁO CÁO", "BC-UBND", [
        "Kết quả thực hiện nhiệm vụ phát triển kinh tế - xã hội sáu tháng đầu năm:",
        "Tổng thu ngân sách trên địa bàn đạt 52% dự toán; giải quyết việc làm cho 1.200 lao động.",
        "Phương hướng, nhiệm vụ trọng tâm sáu tháng cuối năm."]),
    "ke_hoach": ("KẾ HOẠCH", "KH-UBND", [
        "Triển khai thực hiện chuyển đổi số và số hóa hồ sơ, kết quả giải quyết thủ tục hành chính.",
        "Mục đích, yêu cầu: bảo đảm 100% hồ sơ được số hóa theo quy định.",
        "Tổ chức thực hiện: các phòng, ban chuyên môn triển khai theo chức năng, nhiệm vụ."]),
}
OTHER_TYPES: tuple[str, ...] = tuple(_OTHER_TITLES)


def _spec_other(kind: str, rng: random.Random) -> _Spec:
    title, suffix, sentences = _OTHER_TITLES[kind]
    place = _random_place(rng)
    issued = _random_date(rng, date(2015, 1, 1), date(2025, 12, 31))
    parent, agency = rng.choice([_commune_agency(place),
                                 (f"UBND {place.province_unit}", f"UBND HUYỆN {place.district.upper()}")])
    body: Body = [("para", s) for s in rng.sample(sentences, k=len(sentences))]
    body.insert(1, ("para", f"Địa bàn: {place.address}."))
    number = _number(rng, issued.year, suffix)
    subtitle = [rng.choice(["Về việc triển khai nhiệm vụ năm " + str(issued.year),
                            "Kết quả công tác cải cách hành chính", "Về công tác tiếp công dân"])]
    return _Spec(parent, agency, number, place.commune, issued, [title], body,
                 ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH"],
                 _random_person(rng, date(1960, 1, 1), date(1985, 1, 1)).name,
                 {"so_van_ban": number, "ngay_ban_hanh": issued.isoformat()}, subtitle=subtitle,
                 recipients=["Như trên;", "Lưu: VT."])


for _kind in OTHER_TYPES:
    _SPECS[_kind] = lambda rng, _kind=_kind: _spec_other(_kind, rng)


# --------------------------------------------------------------------------- rendering


def _covers_vietnamese(path: Path) -> bool:
    """True when the font draws every probe letter (a missing glyph renders as .notdef)."""
    font = ImageFont.truetype(str(path), 40)

    def pixels(ch: str) -> bytes:
        canvas = Image.new("L", (60, 60), 0)
        ImageDraw.Draw(canvas).text((5, 5), ch, font=font, fill=255)
        return canvas.tobytes()

    notdef = pixels("\ue000")
    return all(pixels(ch) != notdef for ch in _VIETNAMESE_PROBE)


@lru_cache(maxsize=1)
def font_files() -> dict[str, Path]:
    """Paths of the serif family used for documents (first installed one with Vietnamese)."""
    for directory, files in _FONT_CANDIDATES:
        paths = {style: directory / name for style, name in files.items()}
        if all(p.exists() for p in paths.values()) and _covers_vietnamese(paths["regular"]):
            return paths
    raise FileNotFoundError("no serif font with Vietnamese glyphs: install fonts-liberation2 "
                            "(or fonts-dejavu-core)")


@lru_cache(maxsize=64)
def _font(style: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_files()[style]), px)


class _Page:
    """A white A4 page with a text cursor; records every printed line as ground truth."""

    def __init__(self, dpi: int, rng: random.Random) -> None:
        self.dpi = dpi
        self.rng = rng
        self.width = round(A4_MM[0] / 25.4 * dpi)
        self.height = round(A4_MM[1] / 25.4 * dpi)
        self.image = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.image)
        self.left = self.mm(rng.uniform(28, 33))
        self.right = self.width - self.mm(rng.uniform(15, 20))
        self.y = self.mm(rng.uniform(18, 24))
        self.pt = rng.choice([13.0, 13.5, 14.0])
        self.lines: list[str] = []

    def mm(self, value: float) -> int:
        return round(value / 25.4 * self.dpi)

    def font(self, style: str = "regular", pt: float | None = None) -> ImageFont.FreeTypeFont:
        return _font(style, round((pt or self.pt) / 72 * self.dpi))

    def line_height(self, pt: float | None = None) -> int:
        return round((pt or self.pt) / 72 * self.dpi * 1.4)

    def text_width(self, text: str, font: ImageFont.FreeTypeFont) -> int:
        return int(self.draw.textlength(text, font=font))

    def put(self, x: int, y: int, text: str, font: ImageFont.FreeTypeFont, *, record: bool = True) -> int:
        """Draw ``text`` with its left edge at x and top at y; return its width."""
        self.draw.text((x, y), text, font=font, fill=INK)
        if record:
            self.lines.append(text)
        return self.text_width(text, font)

    def centered(self, cx: int, y: int, text: str, font: ImageFont.FreeTypeFont, max_width: int | None = None,
                 *, record: bool = True) -> tuple[int, int]:
        """Centre ``text`` on cx (shrinking the font to fit max_width); return (left, width)."""
        while max_width and self.text_width(text, font) > max_width and font.size > 10:
            font = _font(_style_of(font), font.size - 2)
        w = self.text_width(text, font)
        self.put(cx - w // 2, y, text, font, record=record)
        return cx - w // 2, w

    def wrap(self, text: str, font: ImageFont.FreeTypeFont, width: int, indent: int = 0) -> list[str]:
        words, lines, current = text.split(), [], ""
        for word in words:
            candidate = f"{current} {word}".strip()
            limit = width - (indent if not lines else 0)
            if current and self.text_width(candidate, font) > limit:
                lines.append(current)
                current = word
            else:
                current = candidate
        if current:
            lines.append(current)
        return lines

    def rule(self, cx: int, y: int, width: int) -> None:
        self.draw.line([(cx - width // 2, y), (cx + width // 2, y)], fill=INK, width=max(2, self.dpi // 150))


def _style_of(font: ImageFont.FreeTypeFont) -> str:
    return next(style for style, path in font_files().items() if str(path) == font.path)


def _render_header(page: _Page, spec: _Spec) -> None:
    text_w = page.right - page.left
    head_pt = page.pt - 0.5
    if spec.agency is None:  # a citizen's application: the national motto is centred
        cx = (page.left + page.right) // 2
        page.centered(cx, page.y, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", page.font("bold", head_pt))
        page.y += page.line_height(head_pt)
        _, w = page.centered(cx, page.y, "Độc lập - Tự do - Hạnh phúc", page.font("bold", page.pt))
        page.y += page.line_height()
        page.rule(cx, page.y + page.line_height() // 12, w)
        page.y += page.line_height() // 2
        return
    left_w = round(text_w * 0.42)
    left_cx = page.left + left_w // 2
    right_cx = page.left + left_w + (text_w - left_w) // 2
    right_w = text_w - left_w
    top = page.y
    # Left block: parent agency, issuing agency (bold), rule, number, subject of a letter.
    y = top
    if spec.agency_parent:
        page.centered(left_cx, y, spec.agency_parent, page.font("regular", head_pt), left_w)
        y += page.line_height(head_pt)
    _, w = page.centered(left_cx, y, spec.agency, page.font("bold", head_pt), left_w)
    y += page.line_height(head_pt)
    page.rule(left_cx, y + page.line_height(head_pt) // 12, max(w // 3, page.mm(15)))
    y += page.line_height(head_pt) // 3
    number_y = y
    if spec.number:
        page.centered(left_cx, y, f"Số: {spec.number}", page.font("regular", page.pt), left_w)
        y += page.line_height()
    if spec.regarding:
        for line in page.wrap(spec.regarding, page.font("regular", page.pt - 1), left_w):
            page.centered(left_cx, y, line, page.font("regular", page.pt - 1), left_w)
            y += page.line_height(page.pt - 1)
    left_bottom = y
    # Right block: motto, rule, place and date (italic).
    y = top
    page.centered(right_cx, y, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", page.font("bold", head_pt), right_w)
    y += page.line_height(head_pt)
    _, w = page.centered(right_cx, y, "Độc lập - Tự do - Hạnh phúc", page.font("bold", page.pt), right_w)
    y += page.line_height()
    page.rule(right_cx, y + page.line_height() // 12, w)
    date_line = f"{spec.place_name}, {format_vn_date_words(spec.issued)}"
    page.centered(right_cx, max(y + page.line_height() // 3, number_y), date_line,
                  page.font("italic", page.pt), right_w)
    y = max(y + page.line_height() // 3, number_y) + page.line_height()
    page.y = max(left_bottom, y) + page.line_height() // 2


def _render_body(page: _Page, spec: _Spec) -> None:
    cx = (page.left + page.right) // 2
    width = page.right - page.left
    page.y += page.line_height() // 2
    for line in spec.title:
        page.centered(cx, page.y, line, page.font("bold", page.pt + 1), width)
        page.y += page.line_height(page.pt + 1)
    for line in spec.subtitle:
        page.centered(cx, page.y, line, page.font("bold", page.pt), width)
        page.y += page.line_height()
    if spec.title:
        page.rule(cx, page.y + page.line_height() // 10, page.mm(30))
        page.y += page.line_height() // 2
    regular, bold = page.font("regular"), page.font("bold")
    indent = page.mm(10)
    for item in spec.body:
        kind = item[0]
        if kind == "field":
            label, value = item[1], item[2]
            label_w = page.text_width(label + " ", regular)
            value_font = bold if value.isupper() and len(value) < 60 else regular
            lines = page.wrap(value, value_font, width - indent - label_w)
            text_line = f"{label} {lines[0]}"
            page.draw.text((page.left + indent, page.y), label, font=regular, fill=INK)
            page.draw.text((page.left + indent + label_w, page.y), lines[0], font=value_font, fill=INK)
            page.lines.append(text_line)
            page.y += page.line_height()
            for extra in lines[1:]:
                page.put(page.left + indent + label_w, page.y, extra, value_font)
                page.y += page.line_height()
        elif kind == "para":
            for i, line in enumerate(page.wrap(item[1], regular, width, indent)):
                page.put(page.left + (indent if i == 0 else 0), page.y, line, regular)
                page.y += page.line_height()
        elif kind == "center":
            for line in page.wrap(item[1], bold, width):
                page.centered(cx, page.y, line, bold, width)
                page.y += page.line_height()
        elif kind == "bold":
            page.put(page.left + indent, page.y, item[1], bold)
            page.y += page.line_height()
        else:
            raise ValueError(f"unknown body item {kind!r}")


def _render_signature(page: _Page, spec: _Spec, seal: bool) -> None:
    width = page.right - page.left
    cx = page.left + round(width * 0.72)
    col_w = round(width * 0.5)
    y = page.y + page.line_height() // 2
    if spec.agency is None:  # applications carry their place/date line above the signature
        page.centered(cx, y, f"{spec.place_name}, {format_vn_date_words(spec.issued)}",
                      page.font("italic"), col_w)
        y += page.line_height()
    sign_top = y
    for line in spec.signer_lines:
        page.centered(cx, y, line, page.font("bold"), col_w)
        y += page.line_height()
    if spec.recipients:
        ry = sign_top
        small = page.pt - 2
        page.put(page.left, ry, "Nơi nhận:", page.font("bolditalic", small))
        ry += page.line_height(small)
        for r in spec.recipients:
            page.put(page.left, ry, f"- {r}", page.font("regular", small))
            ry += page.line_height(small)
    gap = page.mm(24)
    _draw_scribble(page, cx, y + gap // 2, page.mm(35), page.mm(12))
    if seal and spec.agency:
        _draw_seal(page, cx - page.mm(20), y + gap // 2 + page.mm(2), page.mm(19), spec.agency)
    y += gap
    page.centered(cx, y, spec.signer_name, page.font("bold"), col_w)
    page.y = y + page.line_height()


def _draw_scribble(page: _Page, cx: int, cy: int, w: int, h: int) -> None:
    rng = page.rng
    pts = []
    for i in range(60):
        t = i / 59
        x = cx - w / 2 + t * w
        y = cy + math.sin(t * math.pi * rng.uniform(3, 6) + rng.uniform(0, 3)) * h / 2 * rng.uniform(0.5, 1)
        pts.append((x, y))
    page.draw.line(pts, fill=SIGN_BLUE, width=max(2, page.dpi // 100), joint="curve")


def _draw_seal(page: _Page, cx: int, cy: int, radius: int, agency: str) -> None:
    """A red round seal (two rings, star, agency name on the rim), multiplied over the page."""
    size = radius * 2 + 4
    layer = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(layer)
    c = size // 2
    ring = max(3, radius // 25)
    draw.ellipse([c - radius, c - radius, c + radius, c + radius], outline=SEAL_RED, width=ring)
    inner = round(radius * 0.68)
    draw.ellipse([c - inner, c - inner, c + inner, c + inner], outline=SEAL_RED, width=max(2, ring // 2))
    star = [(c + inner * 0.45 * math.cos(math.radians(-90 + k * 36)) * (1 if k % 2 == 0 else 0.4),
             c + inner * 0.45 * math.sin(math.radians(-90 + k * 36)) * (1 if k % 2 == 0 else 0.4))
            for k in range(10)]
    draw.polygon(star, fill=SEAL_RED)
    font = _font("bold", max(8, round(radius * 0.2)))
    text = f"{agency} *"
    span = 300.0
    for i, ch in enumerate(text):
        angle = -90 - span / 2 + span * (i + 0.5) / len(text)
        glyph = Image.new("L", (font.size * 2, font.size * 2), 0)
        ImageDraw.Draw(glyph).text((font.size // 2, font.size // 3), ch, font=font, fill=255)
        glyph = glyph.rotate(-(angle + 90), resample=Image.BICUBIC)
        r = (radius + inner) / 2
        gx = c + r * math.cos(math.radians(angle)) - glyph.width / 2
        gy = c + r * math.sin(math.radians(angle)) - glyph.height / 2
        layer.paste(Image.new("RGB", glyph.size, SEAL_RED), (round(gx), round(gy)), glyph)
    box = (cx - c, cy - c)
    region = page.image.crop((box[0], box[1], box[0] + size, box[1] + size))
    blended = np.asarray(region, dtype=np.uint16) * np.asarray(layer, dtype=np.uint16) // 255
    page.image.paste(Image.fromarray(blended.astype(np.uint8)), box)


def render_document(doc_type: str, seed: int, dpi: int = 300, seal: bool = False) -> GeneratedDocument:
    """Render one synthetic document deterministically from ``seed``.

    ``doc_type`` is a catalog code (:data:`DOC_TYPES`) or one of :data:`OTHER_TYPES` (documents
    outside the catalog, which a classifier should call ``unknown``).
    """
    if doc_type not in _SPECS:
        raise ValueError(f"unknown document type {doc_type!r}; expected one of "
                         f"{', '.join(DOC_TYPES + OTHER_TYPES)}")
    if not 72 <= dpi <= 600:
        raise ValueError(f"dpi must be within 72..600, got {dpi}")
    rng = random.Random(f"{doc_type}:{seed}")
    spec = _SPECS[doc_type](rng)
    page = _Page(dpi, rng)
    _render_header(page, spec)
    _render_body(page, spec)
    _render_signature(page, spec, seal)
    if page.y > page.height:
        raise RuntimeError(f"{doc_type} seed {seed} overflows the page")  # a generator bug
    fields = dict(spec.fields)
    if spec.agency:
        fields["co_quan_ban_hanh"] = spec.agency
    image = cv2.cvtColor(np.asarray(page.image), cv2.COLOR_RGB2BGR)
    text = unicodedata.normalize("NFC", "\n".join(page.lines))
    return GeneratedDocument(doc_type, image, text, {k: unicodedata.normalize("NFC", v) for k, v in fields.items()}, dpi)


# --------------------------------------------------------------------------- command line


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def write_demo(out_dir: Path) -> list[Path]:
    """Write the three demo images of the README (JPEG quality 85)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        ("giay_khai_sinh", "giay_khai_sinh.jpg", 200, 0.0, True),
        ("quyet_dinh", "quyet_dinh.jpg", 200, 0.0, True),
        ("xac_nhan_cu_tru", "xac_nhan_cu_tru_skewed.jpg", 200, 2.5, False),
    ]
    written = []
    for doc_type, name, dpi, skew, seal in jobs:
        doc = render_document(doc_type, seed=1, dpi=dpi, seal=seal)
        image = _rotate(doc.image, skew) if skew else doc.image
        path = out_dir / name
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85]):
            raise OSError(f"cannot write {path}")
        written.append(path)
    return written


def _seed_range(spec: str) -> list[int]:
    if "-" in spec:
        a, b = spec.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in spec.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samples.generator", description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, help="write the three demo images into this directory")
    parser.add_argument("--out", type=Path, help="write generated documents (+ .gt.txt, .fields.json)")
    parser.add_argument("--types", default=",".join(DOC_TYPES))
    parser.add_argument("--seeds", default="0-2", help="e.g. 0-9 or 1,5,7")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--seal", action="store_true")
    args = parser.parse_args(argv)
    if args.demo:
        for path in write_demo(args.demo):
            print(path)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for doc_type in args.types.split(","):
            for seed in _seed_range(args.seeds):
                doc = render_document(doc_type, seed, args.dpi, args.seal)
                stem = args.out / f"{doc_type}_{seed:04d}"
                cv2.imwrite(str(stem.with_suffix(".png")), doc.image)
                stem.with_suffix(".gt.txt").write_text(doc.text + "\n", encoding="utf-8")
                stem.with_suffix(".fields.json").write_text(
                    json.dumps({"doc_type": doc_type, "fields": doc.fields}, ensure_ascii=False, indent=1),
                    encoding="utf-8")
                print(stem.with_suffix(".png"))
    if not (args.demo or args.out):
        parser.error("nothing to do: give --demo DIR and/or --out DIR")


if __name__ == "__main__":
    main()

"""Field extraction: OCR pages -> validated, normalized fields with confidence and boxes.

Rules follow the Decree 30/2020 layout the catalog types share:

* ``co_quan_ban_hanh``: the issuing agency, last line of the top-left block (above "Số:"), taken
  from the words left of the column split, so a motto read on the same OCR line is ignored;
* ``so_van_ban``: the token after "Số:" in the header;
* ``ngay_ban_hanh``: the "<place>, ngày .. tháng .. năm ...." line (header, or above the signature
  of a citizen's application);
* labelled fields ("Họ và tên:", "Ngày sinh:", "Số định danh cá nhân:", "Mã số doanh nghiệp:"):
  the text after the label on the same line (or the next line when the label ends it). Labels of
  other people (mother, wife, head of household) are skipped: the first person is the owner.

Labels are matched on diacritics-folded lower-case text with OCR-tolerant patterns; values are
taken from the original text. Every expected field of the type is returned: missing ones with
``value=None, valid=False, error="not found"``; invalid ones with the raw text and the reason.
A personal ID number whose structure is invalid is never accepted.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz

from ocr.catalog import load_catalog
from ocr.types import FieldValue, PageText, Word
from ocr.validators import (
    AGENCY_WORDS,
    correct_family_name,
    normalize_agency,
    normalize_name,
    normalize_tax_code,
    parse_vn_date,
    validate_name,
    validate_personal_id,
    validate_tax_code,
)

LEFT_COLUMN_MAX = 0.48  # word centre x / page width: the agency block ends before this
HEADER_FRACTION = 0.33  # the header (agency, number, date line) lies in the top third
TEXT_ONLY_CONFIDENCE = 0.8  # confidence of a value read from plain text (no word boxes)
FALLBACK_FACTOR = 0.6  # confidence factor of a value found without its label

_MOTTO_KEYS = ("CONG HOA XA HOI CHU NGHIA VIET NAM", "DOC LAP TU DO HANH PHUC")
_OTHER_PERSON = re.compile(r"\b(me|cha|vo|chong|chu ho|nguoi ky|nguoi dai dien theo uy quyen)\b")
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1",
                                   "|": "1", "i": "1", "!": "1", "S": "5", "s": "5", "B": "8", "Z": "2",
                                   "z": "2", "G": "6", "b": "6", "g": "9", "q": "9", "T": "7"})


# --------------------------------------------------------------------------- text helpers


def _fold_char(ch: str) -> str:
    """One folded character per input character (keeps indices aligned)."""
    if ch in "đĐ":
        return "d"
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    return (base[:1] or ch).lower()[:1]


def fold_aligned(text: str) -> str:
    """Lower-case, diacritics-free copy of ``text`` with the SAME length (index-aligned)."""
    return "".join(_fold_char(c) for c in text)


@dataclass(frozen=True)
class Line:
    """One OCR line: its text (words joined by single spaces) and the words behind it."""

    page: int
    text: str
    words: tuple[Word, ...]
    page_width: int
    page_height: int
    index: int  # line position in the document (reading order)

    @property
    def folded(self) -> str:
        return fold_aligned(self.text)

    @property
    def top_fraction(self) -> float | None:
        if not self.words or not self.page_height:
            return None
        return min(w.top for w in self.words) / self.page_height

    def span_words(self, start: int, end: int) -> list[Word]:
        """Words overlapping text characters [start, end)."""
        chosen, pos = [], 0
        for word in self.words:
            w_start, w_end = pos, pos + len(word.text)
            if w_start < end and w_end > start:
                chosen.append(word)
            pos = w_end + 1
        return chosen


def clean_ocr_text(text: str) -> str:
    """NFC, and Tesseract's Icelandic eth (U+00D0, often doubled with Đ) read as Vietnamese Đ."""
    text = unicodedata.normalize("NFC", text)
    return text.replace("ÐĐ", "Đ").replace("ĐÐ", "Đ").replace("Ð", "Đ")


def lines_of(texts: Sequence[PageText]) -> list[Line]:
    """Reading-order lines of all pages (from word boxes when present, else from ``text``)."""
    lines: list[Line] = []
    for page_no, page in enumerate(texts):
        page_index = page.index if page.index is not None else page_no
        if page.words:
            groups: dict[tuple[int, int], list[Word]] = {}
            for word in page.words:
                cleaned = clean_ocr_text(word.text)
                if cleaned != word.text:
                    word = replace(word, text=cleaned)
                groups.setdefault((word.block, word.line), []).append(word)
            for words in groups.values():
                text = unicodedata.normalize("NFC", " ".join(w.text for w in words))
                lines.append(Line(page_index, text, tuple(words), page.width, page.height, len(lines)))
        else:
            for raw in page.text.splitlines():
                text = " ".join(clean_ocr_text(raw).split())
                if text:
                    lines.append(Line(page_index, text, (), page.width, page.height, len(lines)))
    return lines


def _bbox(words: Sequence[Word]) -> tuple[int, int, int, int] | None:
    if not words:
        return None
    left = min(w.left for w in words)
    top = min(w.top for w in words)
    right = max(w.left + w.width for w in words)
    bottom = max(w.top + w.height for w in words)
    return left, top, right - left, bottom - top


def _confidence(words: Sequence[Word]) -> float:
    if not words:
        return TEXT_ONLY_CONFIDENCE
    return round(max(0.0, min(1.0, sum(w.conf for w in words) / len(words) / 100.0)), 3)


@dataclass(frozen=True)
class _Hit:
    """A located value: the line and the character span of the raw value in it."""

    line: Line
    start: int
    end: int
    fallback: bool = False

    @property
    def raw(self) -> str:
        return self.line.text[self.start:self.end].strip()

    @property
    def words(self) -> list[Word]:
        return self.line.span_words(self.start, self.end)


def _field(name: str, hit: _Hit, value: str | None, error: str | None) -> FieldValue:
    words = hit.words
    confidence = _confidence(words) * (FALLBACK_FACTOR if hit.fallback else 1.0)
    if error:
        confidence *= 0.3
    return FieldValue(name=name, value=None if error else value, raw=hit.raw,
                      confidence=round(confidence, 3), valid=error is None, error=error,
                      page=hit.line.page, bbox=_bbox(words))


def _not_found(name: str) -> FieldValue:
    return FieldValue(name=name, value=None, raw="", confidence=0.0, valid=False, error="not found")


# --------------------------------------------------------------------------- labelled values

_LABELS: dict[str, re.Pattern[str]] = {
    # folded lower-case; OCR-tolerant (optional commas, "chu dem", "va")
    "ho_ten": re.compile(r"(?:^|\s|\d\.\s?)(ho\s*[,.]?\s*(?:chu\s*dem\s*[,.]?\s*)?(?:va\s+)?ten|toi\s+ten\s+la|cap\s+cho)"
                         r"(?P<tail>[^:;]{0,30}?)\s*[:;]"),
    "ngay_sinh": re.compile(r"(ngay\s*[,.]?\s*thang\s*[,.]?\s*nam\s*sinh|ngay\s*sinh|sinh\s*ngay)"
                            r"(?P<tail>[^:;]{0,30}?)\s*[:;]"),
    "so_dinh_danh": re.compile(r"(so\s*dinh\s*danh(?:\s*ca\s*nhan)?|so\s*(?:cmnd\s*/\s*)?cc\w{0,3}d|"
                               r"so\s*can\s*cuoc(?:\s*cong\s*dan)?|cmnd\s*/\s*cccd)"
                               r"(?P<tail>[^:;]{0,30}?)\s*[:;]"),
    "ngay_dang_ky": re.compile(r"(ngay\s*[,.]?\s*thang\s*[,.]?\s*nam\s*dang\s*ky|ngay\s*dang\s*ky)"
                               r"(?P<tail>[^:;]{0,10}?)\s*[:;]"),
    "ma_so_doanh_nghiep": re.compile(r"(ma\s*so\s*doanh\s*nghiep|ma\s*so\s*thue)(?P<tail>[^:;]{0,10}?)\s*[:;]"),
}


def _labelled(lines: Sequence[Line], name: str) -> list[_Hit]:
    """All values after ``name``'s label that do not belong to another person, in order."""
    pattern = _LABELS[name]
    hits = []
    for i, line in enumerate(lines):
        match = pattern.search(line.folded)
        if not match or _OTHER_PERSON.search(match.group("tail") or ""):
            continue
        start = match.end()
        if line.text[start:].strip():
            hits.append(_Hit(line, start, len(line.text)))
        elif i + 1 < len(lines):
            nxt = lines[i + 1]
            hits.append(_Hit(nxt, 0, len(nxt.text)))
    return hits


_HONORIFIC = re.compile(r"^\s*(ong\s*/\s*ba|ong|ba|anh|chi)\s+", re.IGNORECASE)
_NAME_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _name_span(hit: _Hit) -> _Hit:
    """Narrow a value span to the name: skip an honorific, stop at the first non-name token."""
    text = hit.line.text
    start = hit.start + len(text[hit.start:]) - len(text[hit.start:].lstrip())
    honorific = _HONORIFIC.match(fold_aligned(text[start:hit.end]))
    if honorific:
        start += honorific.end()
    end = start
    for token in re.finditer(r"\S+", text[start:hit.end]):
        if not re.fullmatch(r"[^\W\d_]+[,.]?", token.group()):
            break
        end = start + token.end()
        if token.group()[-1] in ",.":
            end -= 1
            break
    return _Hit(hit.line, start, end, hit.fallback)


def extract_name(lines: Sequence[Line]) -> FieldValue | None:
    for hit in _labelled(lines, "ho_ten"):
        span = _name_span(hit)
        if not span.raw:
            continue
        value = correct_family_name(normalize_name(span.raw))
        return _field("ho_ten", span, value, validate_name(value))
    return None


_LOOKALIKE_DMY = re.compile(r"[\dOoIl|!SBGZ]{1,2}\s*[/.\-]\s*[\dOoIl|!SBGZ]{1,2}\s*[/.\-]\s*[\dOoIl|!SBGZ]{4}")


def _date_value(hit: _Hit) -> tuple[_Hit, date | None]:
    text = hit.line.text
    m = re.search(r"\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*\d{4}", text[hit.start:hit.end])
    if m:
        span = _Hit(hit.line, hit.start + m.start(), hit.start + m.end(), hit.fallback)
        return span, parse_vn_date(span.raw)
    m = _LOOKALIKE_DMY.search(text[hit.start:hit.end])
    if m:  # "07/09/196G": digits misread as letters; mapped back, confidence lowered
        span = _Hit(hit.line, hit.start + m.start(), hit.start + m.end(), fallback=True)
        return span, parse_vn_date(span.raw.translate(_DIGIT_LOOKALIKES))
    m = re.search(r"ng\w{1,3}\s*\d{1,2}\s*th\w{1,4}\s*\d{1,2}\s*n\w{1,2}\s*\d{4}", hit.line.folded[hit.start:hit.end])
    if m:
        span = _Hit(hit.line, hit.start + m.start(), hit.start + m.end(), hit.fallback)
        return span, _date_from_words(span.line.folded[span.start:span.end])
    return hit, None


def _date_from_words(folded: str) -> date | None:
    numbers = re.findall(r"\d+", folded)
    if len(numbers) != 3:
        return None
    day, month, year = (int(n) for n in numbers)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _check_date(value: date | None, *, not_before: int = 1900) -> str | None:
    if value is None:
        return "not a valid date (expected dd/mm/yyyy or 'ngày .. tháng .. năm ....')"
    if value.year < not_before:
        return f"date before {not_before}"
    if value > date.today():
        return "date is in the future"
    return None


def extract_birth_date(lines: Sequence[Line]) -> FieldValue | None:
    for hit in _labelled(lines, "ngay_sinh"):
        span, value = _date_value(hit)
        return _field("ngay_sinh", span, value.isoformat() if value else None, _check_date(value))
    return None


def _digits_span(hit: _Hit, max_groups: int = 4) -> _Hit:
    """The leading run of digit-like tokens (OCR may split a number: "0791 8800 1234")."""
    text = hit.line.text
    start = hit.start + len(text[hit.start:hit.end]) - len(text[hit.start:hit.end].lstrip())
    end = start
    for n, token in enumerate(re.finditer(r"\S+", text[start:hit.end])):
        digits = sum(c.isdigit() for c in token.group())
        if n >= max_groups or digits < max(1, len(token.group()) // 2):
            break
        end = start + token.end()
    return _Hit(hit.line, start, end, hit.fallback)


def _as_digits(raw: str) -> str:
    return re.sub(r"[\s.,\-]", "", raw.translate(_DIGIT_LOOKALIKES))


def extract_personal_id(lines: Sequence[Line], birth_year: int | None) -> FieldValue | None:
    hits = _labelled(lines, "so_dinh_danh")
    if not hits:  # fallback: the only 12-digit number of the document
        candidates = [(line, m) for line in lines for m in re.finditer(r"(?<!\d)\d{12}(?!\d)", line.text)
                      if not _OTHER_PERSON.search(line.folded)]
        if len(candidates) == 1:
            line, m = candidates[0]
            hits = [_Hit(line, m.start(), m.end(), fallback=True)]
    for hit in hits:
        span = _digits_span(hit)
        value = _as_digits(span.raw)
        error = validate_personal_id(value, birth_year)
        return _field("so_dinh_danh", span, value, error)
    return None


def extract_tax_code(lines: Sequence[Line]) -> FieldValue | None:
    for hit in _labelled(lines, "ma_so_doanh_nghiep"):
        span = _digits_span(hit, max_groups=5)
        value = normalize_tax_code(span.raw.translate(_DIGIT_LOOKALIKES))
        return _field("ma_so_doanh_nghiep", span, value, validate_tax_code(value))
    return None


# --------------------------------------------------------------------------- header fields

_NUMBER_LABEL = re.compile(r"^\W{0,2}s[o0ô]\s*[:;.]\s*")
_NUMBER_VALUE = re.compile(r"(?:[A-ZĐ]{1,3}\s)?[0-9][\w/.\-–]*")
_DATE_LINE = re.compile(r",\s*ng\w{1,3}\s*(?P<d>[0-9OoIl|!]{1,2})\s*th\w{1,4}\s*(?P<m>[0-9OoIl|!ZzSsBG]{1,2})"
                        r"\s*n\w{1,2}\s*(?P<y>[0-9OoIl|!ZzSsBG]{4})")


def _header_lines(lines: Sequence[Line]) -> list[Line]:
    """Lines of the first page's header (top third with boxes; the first 12 lines without)."""
    if not lines:
        return []
    first_page = [ln for ln in lines if ln.page == lines[0].page]
    if first_page[0].words:
        return [ln for ln in first_page if (ln.top_fraction or 0.0) < HEADER_FRACTION]
    return first_page[:12]


def _column_split(header: Sequence[Line]) -> float | None:
    """x (px) where the right column starts: the left edge of the motto ("CỘNG HÒA...",
    "Độc lập...") as read, which also holds on photos whose page is not at a fixed position."""
    xs = []
    for line in header:
        folded = [fold_aligned(w.text) for w in line.words]
        for i in range(len(folded) - 1):
            if (folded[i], folded[i + 1][:3]) in (("cong", "hoa"), ("doc", "lap")):
                xs.append(line.words[i].left)
    return min(xs) - 5.0 if xs else None


def _left_part(line: Line, split: float | None = None) -> _Hit:
    """The part of a line left of the column split (the whole line when there are no boxes)."""
    if not line.words:
        return _Hit(line, 0, len(line.text))
    limit = split if split is not None else LEFT_COLUMN_MAX * line.page_width
    end, pos = 0, 0
    for word in line.words:
        if word.left + word.width / 2 > limit:
            break
        pos_end = pos + len(word.text)
        end = pos_end
        pos = pos_end + 1
    return _Hit(line, 0, end)


def _number_line(header: Sequence[Line]) -> tuple[Line, int] | None:
    split = _column_split(header)
    for line in header:
        left = _left_part(line, split)
        m = _NUMBER_LABEL.match(line.folded[: left.end])
        if m:
            return line, m.end()
    return None


def extract_document_number(lines: Sequence[Line]) -> FieldValue | None:
    header = _header_lines(lines)
    found = _number_line(header)
    if found is None:
        return None
    line, start = found
    left = _left_part(line, _column_split(header))
    segment = line.text[start:left.end] if line.words else _strip_date_line(line.text[start:])
    m = _NUMBER_VALUE.search(segment)
    if not m:
        hit = _Hit(line, start, left.end)
        return _field("so_van_ban", hit, None, "no document number after 'Số:'")
    hit = _Hit(line, start + m.start(), start + m.end())
    value = re.sub(r"\s*([/\-])\s*", r"\1", hit.raw.replace("–", "-")).rstrip(".,;")
    return _field("so_van_ban", hit, value, None)


def _strip_date_line(text: str) -> str:
    """Text-only header lines may carry the right column's place/date: cut it off."""
    m = re.search(r"\s[A-ZĐÀ-Ỹ][^\d]*,\s*ng", text)
    return text[: m.start()] if m else text


def _header_date(line: Line, lookalikes: bool) -> tuple[_Hit, date | None] | None:
    m = _DATE_LINE.search(line.folded)
    if not m:
        return None
    hit = _Hit(line, m.start() + 1, m.end(), fallback=lookalikes)
    parts = [m.group("d"), m.group("m"), m.group("y")]
    if lookalikes:
        parts = [p.translate(_DIGIT_LOOKALIKES) for p in parts]
    if not all(p.isdigit() for p in parts):
        return hit, None
    try:
        return hit, date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return hit, None


def extract_issue_date(lines: Sequence[Line]) -> FieldValue | None:
    """The "<place>, ngày .. tháng .. năm ...." line; when OCR garbled its digits, the
    registration date of a civil-status extract ("Ngày, tháng, năm đăng ký: ..."), then the
    date line read with digit look-alikes (lower confidence)."""
    date_lines = [found for line in lines if (found := _header_date(line, False)) is not None]
    for hit, value in date_lines:
        if value is not None and _check_date(value) is None:
            return _field("ngay_ban_hanh", hit, value.isoformat(), None)
    for hit in _labelled(lines, "ngay_dang_ky"):
        span, value = _date_value(hit)
        if value is not None and _check_date(value) is None:
            return _field("ngay_ban_hanh", span, value.isoformat(), None)
    if date_lines:
        hit, _ = date_lines[0]
        retry = _header_date(hit.line, True)
        value = retry[1] if retry else None
        if value is not None and _check_date(value) is None:
            return _field("ngay_ban_hanh", retry[0], value.isoformat(), None)
        return _field("ngay_ban_hanh", hit, None, _check_date(value))
    return None


def _is_motto(folded_upper: str) -> bool:
    key = " ".join(re.sub(r"[^A-Z ]+", " ", folded_upper).split())
    return any(key.startswith(m[:12]) or m in key for m in _MOTTO_KEYS)


def extract_agency(lines: Sequence[Line]) -> FieldValue | None:
    """The issuing agency: the last agency line of the top-left block, above "Số:".

    With word boxes the header is walked top to bottom (Tesseract may read the right column
    first) and only the part of each line left of the motto is considered; the walk stops at the
    number line, or at a title or date line when there is no number.
    """
    header = _header_lines(lines)
    if header and header[0].words:
        header = sorted(header, key=lambda ln: ln.top_fraction or 0.0)
    split = _column_split(header)
    number = _number_line(header)
    titles = _title_keys()
    candidates: list[_Hit] = []
    for line in header:
        if number is not None and line is number[0]:
            break
        if line.words and any(fuzz.ratio(_key(line.text), t) >= 85 for t in titles):
            break  # a centred title (nothing of it left of the split): the header is over
        part = _left_part(line, split)
        raw = line.text[part.start:part.end]
        if not line.words:  # plain text: drop the motto read on the same line
            raw = _cut_motto(raw)
            part = _Hit(line, 0, len(raw))
        if not raw.strip():
            continue
        folded = fold_aligned(raw)
        if _DATE_LINE.search(folded) or any(fuzz.ratio(_key(raw), t) >= 85 for t in titles):
            break
        letters = [c for c in raw if c.isalpha()]
        if len(letters) < 3 or _is_motto(folded.upper()):
            continue
        if sum(c.isupper() for c in letters) / len(letters) < 0.7:
            continue
        candidates.append(part)
    if not candidates:
        return None
    hit = _unglue_motto(candidates[-1])
    value = normalize_agency(" ".join(re.sub(r"[^\w\s&,.\-–/]", " ", hit.raw).split()))
    error = None if len(value.split()) >= 2 else "agency name too short"
    result = _field("co_quan_ban_hanh", hit, value, error)
    if value.split()[0] not in AGENCY_WORDS:  # not a recognizable agency name: ask for review
        result = replace(result, confidence=round(result.confidence * 0.5, 3))
    return result


def _unglue_motto(hit: _Hit) -> _Hit:
    """Tesseract may glue the motto's first word to the agency's last one when the two columns
    almost touch ("TỈNH ĐỒNG NAICỘNG HÒA XÃ HỘI..."): end the agency before that "CỘNG"."""
    folded = fold_aligned(hit.line.text)
    head = folded[hit.start:hit.end].rstrip()
    last = head.split()[-1] if head.split() else ""
    if len(last) > 4 and last.endswith("cong") and folded[hit.end:].lstrip().startswith("hoa"):
        return _Hit(hit.line, hit.start, hit.start + len(head) - 4, hit.fallback)
    return hit


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9/ ]+", " ", fold_aligned(text)).split())


@lru_cache(maxsize=1)
def _title_keys() -> tuple[str, ...]:
    return tuple(_key(p) for t in load_catalog().types for p in t.title_patterns)


def _cut_motto(raw: str) -> str:
    folded = fold_aligned(raw)
    for key in ("cong hoa", "doc lap"):
        pos = folded.find(key)
        if pos >= 0:
            return raw[:pos].rstrip()
    return raw


# --------------------------------------------------------------------------- entry point

_EXTRACTORS: dict[str, Callable[[Sequence[Line], dict[str, FieldValue]], FieldValue | None]] = {
    "co_quan_ban_hanh": lambda lines, _: extract_agency(lines),
    "so_van_ban": lambda lines, _: extract_document_number(lines),
    "ngay_ban_hanh": lambda lines, _: extract_issue_date(lines),
    "ho_ten": lambda lines, _: extract_name(lines),
    "ngay_sinh": lambda lines, _: extract_birth_date(lines),
    "so_dinh_danh": lambda lines, found: extract_personal_id(lines, _birth_year(found)),
    "ma_so_doanh_nghiep": lambda lines, _: extract_tax_code(lines),
}


def _birth_year(found: dict[str, FieldValue]) -> int | None:
    birth = found.get("ngay_sinh")
    if birth is None or not birth.valid or not birth.value:
        return None
    return int(birth.value[:4])


def extract_fields(doc_type: str, texts: list[PageText]) -> dict[str, FieldValue]:
    """Extract the fields of a ``doc_type`` (catalog code) document from its OCR pages.

    Returns every field the catalog expects for the type (``error="not found"`` when absent),
    plus any other known field that was found. Order: the catalog's field order, then extras.
    """
    expected = load_catalog().get(doc_type).fields
    lines = lines_of(texts)
    found: dict[str, FieldValue] = {}
    for name, extractor in _EXTRACTORS.items():  # ngay_sinh runs before so_dinh_danh
        result = extractor(lines, found)
        if result is not None:
            found[name] = result
    pid = found.get("so_dinh_danh")
    birth = found.get("ngay_sinh")
    if pid is not None and pid.valid and birth is not None and not birth.valid and pid.value:
        # the ID's birth year cannot be cross-checked: keep the ID but say so
        found["so_dinh_danh"] = replace(pid, confidence=round(pid.confidence * 0.8, 3))
    ordered = {name: found.get(name) or _not_found(name) for name in expected}
    ordered.update({name: value for name, value in found.items() if name not in ordered})
    return ordered


__all__ = ["Line", "extract_fields", "fold_aligned", "lines_of"]

"""The officer's review as pure functions: page arrangement and field values.

``arrange`` applies the page order / rotations / deletions chosen at the desk to an OCR
``Analysis`` (images, word boxes, field boxes and quality notes move together), so the document
is converted exactly as reviewed without a second OCR pass. ``check_value`` validates and
normalizes what the officer typed into a field, with the same validators OCR extraction uses.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import cv2
import numpy as np

from api.desk.drafts import PageEdit
from ocr.types import Analysis, CleanPage, FieldValue, PageText, Word
from ocr.validators import (nfc, normalize_name, normalize_tax_code, parse_vn_date,
                            validate_name, validate_personal_id, validate_tax_code)

Box = tuple[int, int, int, int]  # left, top, width, height (pixels, origin top-left)
ROTATIONS = (0, 90, 180, 270)
_CV_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
              270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_FIELDS = frozenset({"ngay_sinh", "ngay_ban_hanh"})


class EditError(ValueError):
    """The requested arrangement is impossible (unknown page, bad angle, no page left)."""


# ---- geometry -------------------------------------------------------------------------------
def normalize_rotation(degrees: int) -> int:
    value = int(degrees) % 360
    if value not in ROTATIONS:
        raise EditError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    return value


def rotate_box(box: Box, width: int, height: int, rotation: int) -> Box:
    """A box in a ``width`` x ``height`` image, after turning the image clockwise."""
    left, top, w, h = box
    rotation = normalize_rotation(rotation)
    if rotation == 90:
        return (height - top - h, left, h, w)
    if rotation == 180:
        return (width - left - w, height - top - h, w, h)
    if rotation == 270:
        return (top, width - left - w, h, w)
    return box


def rotated_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if normalize_rotation(rotation) in (90, 270) else (width, height)


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    rotation = normalize_rotation(rotation)
    return image if rotation == 0 else cv2.rotate(image, _CV_ROTATE[rotation])


def _rotate_word(word: Word, width: int, height: int, rotation: int) -> Word:
    left, top, w, h = rotate_box((word.left, word.top, word.width, word.height), width, height,
                                 rotation)
    return replace(word, left=left, top=top, width=w, height=h)


def _rotate_page(page: CleanPage, text: PageText, rotation: int) -> tuple[CleanPage, PageText]:
    if rotation == 0:
        return page, text
    height, width = page.archive_image.shape[:2]
    new_width, new_height = rotated_size(width, height, rotation)
    clean = replace(page, archive_image=rotate_image(page.archive_image, rotation),
                    ocr_image=rotate_image(page.ocr_image, rotation),
                    rotation=(page.rotation + rotation) % 360)
    words = [_rotate_word(w, width, height, rotation) for w in text.words]
    return clean, replace(text, width=new_width, height=new_height, words=words)


# ---- arrangement ------------------------------------------------------------------------------
def default_pages(page_count: int) -> list[PageEdit]:
    return [PageEdit(index=i) for i in range(page_count)]


def check_arrangement(edits: list[PageEdit], page_count: int) -> None:
    if not edits:
        raise EditError("a document needs at least one page")
    indexes = [e.index for e in edits]
    if len(set(indexes)) != len(indexes):
        raise EditError("a page appears twice")
    if any(not 0 <= i < page_count for i in indexes):
        raise EditError(f"page index outside 0..{page_count - 1}")
    for e in edits:
        normalize_rotation(e.rotation)


def arrange(analysis: Analysis, edits: list[PageEdit]) -> Analysis:
    """A new Analysis with pages in ``edits`` order, turned as asked; omitted pages are dropped."""
    check_arrangement(edits, len(analysis.pages))
    position = {e.index: pos for pos, e in enumerate(edits)}
    rotation = {e.index: normalize_rotation(e.rotation) for e in edits}
    pages: list[CleanPage] = []
    texts: list[PageText] = []
    for pos, edit in enumerate(edits):
        source = analysis.pages[edit.index]
        clean, text = _rotate_page(source, analysis.texts[edit.index], edit.rotation)
        clean = replace(clean, quality=[replace(q, page=pos) for q in source.quality])
        pages.append(clean)
        texts.append(replace(text, index=pos))
    fields = {name: _move_field(value, analysis, position, rotation)
              for name, value in analysis.fields.items()}
    return Analysis(pages=pages, texts=texts, classification=analysis.classification,
                    fields=fields, seconds=analysis.seconds)


def _move_field(value: FieldValue, analysis: Analysis, position: dict[int, int],
                rotation: dict[int, int]) -> FieldValue:
    if value.page is None:
        return value
    if value.page not in position:  # its page was deleted
        return replace(value, page=None, bbox=None)
    bbox = value.bbox
    if bbox is not None:
        height, width = analysis.pages[value.page].archive_image.shape[:2]
        bbox = rotate_box(bbox, width, height, rotation[value.page])
    return replace(value, page=position[value.page], bbox=bbox)


def with_document_page_numbers(analysis: Analysis) -> Analysis:
    """Pages numbered by their position in the document, not inside their source file.

    ``recognize`` copies ``CleanPage.index`` (the page's index *within its file*) into
    ``PageText.index``, which ``extract_fields`` reports as ``FieldValue.page``; when a document
    is made of several one-page scans every page says 0. Renumber and re-extract (no OCR) so
    the desk highlights the right page.
    """
    if all(text.index == pos for pos, text in enumerate(analysis.texts)):
        return analysis
    from ocr.extract import extract_fields

    texts = [replace(text, index=pos) for pos, text in enumerate(analysis.texts)]
    return Analysis(pages=analysis.pages, texts=texts, classification=analysis.classification,
                    fields=extract_fields(analysis.classification.doc_type, texts),
                    seconds=analysis.seconds)


# ---- field values -----------------------------------------------------------------------------
def check_value(name: str, typed: str) -> tuple[str | None, str | None]:
    """(normalized value, error code) for what the officer typed; empty input is (None, None).

    Error codes are i18n keys (``field_error.<code>``) so the page explains them in either
    language.
    """
    text = nfc(" ".join(typed.split()))
    if not text:
        return None, None
    if name == "so_dinh_danh":
        digits = re.sub(r"[\s.]", "", text)
        error = validate_personal_id(digits)
        return (digits, None) if error is None else (text, "personal_id")
    if name == "ma_so_doanh_nghiep":
        code = normalize_tax_code(text)
        return (code, None) if validate_tax_code(code) is None else (text, "tax_code")
    if name in DATE_FIELDS:
        parsed = _parse_date(text)
        if parsed is None:
            return text, "date"
        if name == "ngay_sinh" and parsed > date.today():
            return text, "date_future"
        return parsed.isoformat(), None
    if name == "ho_ten":
        normalized = normalize_name(text)
        return (normalized, None) if validate_name(normalized) is None else (text, "name")
    return text, None


def _parse_date(text: str) -> date | None:
    if _ISO_DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    return parse_vn_date(text)


def display_value(name: str, value: str | None) -> str:
    """How a normalized value is shown in the form (dates day-first, as Vietnamese write them)."""
    if value is None:
        return ""
    if name in DATE_FIELDS and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return value

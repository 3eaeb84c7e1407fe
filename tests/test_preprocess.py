"""ocr.preprocess + ocr.quality on generated Vietnamese pages with known geometry."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.preprocess import PreprocessOptions, clean_page, ocr_gray
from ocr.types import SourcePage
from samples.degrade import degrade, rotate
from samples.generator import SEAL_RED, render_document

DPI = 200


@pytest.fixture(scope="module")
def doc():
    return render_document("quyet_dinh", 11, dpi=DPI, seal=True)


def _page(image: np.ndarray, dpi: float = DPI, estimated: bool = False) -> SourcePage:
    return SourcePage(source="t.png", index=0, image=image, dpi=float(dpi), dpi_estimated=estimated)


@pytest.mark.parametrize("turn,skew", [(0, 2.5), (90, -3.0), (180, 1.5), (270, 4.0)])
def test_orientation_and_skew_are_undone(doc, turn: int, skew: float) -> None:
    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    image = doc.image if turn == 0 else cv2.rotate(doc.image, codes[turn])  # turned counter-clockwise
    image = rotate(image, skew)  # and skewed counter-clockwise
    clean = clean_page(_page(image))
    assert clean.rotation == turn  # the page is turned back clockwise
    assert clean.skew_angle == pytest.approx(-skew, abs=0.25)
    assert clean.archive_image.shape[0] > clean.archive_image.shape[1]  # portrait again
    assert {"orientation", "rotate", "illumination", "quality"} <= set(clean.steps_ms)


def test_geometry_steps_can_be_switched_off(doc) -> None:
    image = cv2.rotate(doc.image, cv2.ROTATE_180)
    clean = clean_page(_page(image), PreprocessOptions(orientation=False, deskew=False))
    assert clean.rotation == 0 and clean.skew_angle == 0.0
    assert "orientation" not in clean.steps_ms and "binarize" not in clean.steps_ms
    assert len(np.unique(clean.ocr_image)) > 2  # gray, not binary


def test_ocr_image_is_aligned_binary_and_keeps_archive_colour(doc) -> None:
    clean = clean_page(_page(doc.image), PreprocessOptions(min_ocr_dpi=150, binarize=True))
    assert clean.ocr_scale == 1.0 and clean.ocr_image.shape == clean.archive_image.shape[:2]
    assert set(np.unique(clean.ocr_image)) <= {0, 255}
    red = np.all(np.abs(clean.archive_image.astype(int) - SEAL_RED[::-1]) < 40, axis=2)
    assert red.sum() > 500  # the seal stays red in the archive image
    assert clean.ocr_image[red].mean() > 200  # and is lightened away in the OCR image
    upscaled = clean_page(_page(doc.image), PreprocessOptions(min_ocr_dpi=250, target_ocr_dpi=300))  # at 300 dpi
    assert upscaled.ocr_scale == pytest.approx(1.5)
    assert upscaled.archive_image.shape == clean.archive_image.shape
    assert clean.dpi == DPI and not clean.blank and clean.quality == []


def test_a_skewed_bitonal_scan_stays_bitonal_and_reads_as_well(doc) -> None:
    from converters.imaging import encode_page_image
    from ocr.recognize import recognize

    gray = cv2.cvtColor(doc.image, cv2.COLOR_BGR2GRAY)
    _, bitonal = cv2.threshold(gray, 160, 255, cv2.THRESH_BINARY)  # a fax-mode / G4 scan
    skewed = cv2.threshold(rotate(bitonal, 2.0), 127, 255, cv2.THRESH_BINARY)[1]
    clean = clean_page(_page(skewed))
    assert clean.skew_angle == pytest.approx(-2.0, abs=0.25) and "rebinarize" in clean.steps_ms
    assert set(np.unique(clean.archive_image)) == {0, 255}  # deskewed, still black and white
    assert encode_page_image(clean.archive_image, DPI).encoding == "ccitt-g4"
    assert len(np.unique(clean.ocr_image)) > 2  # Tesseract still gets the smooth gray edges
    gray_page = clean_page(_page(rotate(gray, 2.0)))
    assert "rebinarize" not in gray_page.steps_ms and len(np.unique(gray_page.archive_image)) > 2
    assert "QUYẾT ĐỊNH" in recognize(clean).text


def test_coloured_ink_kept_when_asked(doc) -> None:
    red = np.all(np.abs(doc.image.astype(int) - SEAL_RED[::-1]) < 40, axis=2)
    assert ocr_gray(doc.image, drop_colour_ink=False)[red].mean() < 120
    assert ocr_gray(doc.image)[red].mean() > 180


def test_low_resolution_page_is_upscaled_for_ocr_and_flagged(doc) -> None:
    image, dpi = degrade(doc.image, "bad_150", seed=1, dpi=DPI)
    assert clean_page(_page(image, dpi)).ocr_scale == 1.0  # 150 dpi reads as well as upscaled
    image = cv2.resize(image, None, fx=2 / 3, fy=2 / 3, interpolation=cv2.INTER_AREA)
    dpi = 100
    clean = clean_page(_page(image, dpi))
    assert clean.ocr_scale == pytest.approx(1.5)  # 100 dpi is read at 150 dpi
    assert clean.ocr_image.shape[0] == pytest.approx(clean.archive_image.shape[0] * 1.5, abs=1)
    codes = [q.code for q in clean.quality]
    assert "low_resolution" in codes
    issue = next(q for q in clean.quality if q.code == "low_resolution")
    assert "200 dpi" in issue.message_vi and issue.page == 0


def test_phone_photo_is_flattened_to_the_sheet(doc) -> None:
    image, dpi = degrade(doc.image, "phone_photo", seed=3, dpi=DPI)
    clean = clean_page(_page(image, 72, estimated=True))
    height, width = clean.archive_image.shape[:2]
    assert "perspective" in clean.steps_ms
    assert height / width == pytest.approx(297 / 210, rel=0.01)  # A4 proportions, background gone
    assert clean.dpi == pytest.approx(height / (297 / 25.4), rel=0.01)  # the flattened sheet's resolution
    assert clean.dpi == pytest.approx(dpi, rel=0.15)  # close to the photo's average sampling of it
    assert width < image.shape[1] * 0.97
    for seed in (3, 9, 13):  # 9, 13: a sliver of table along the flattened sheet's edge once read as cut-off text
        photo, _ = degrade(doc.image, "phone_photo", seed=seed, dpi=DPI)
        codes = [q.code for q in clean_page(_page(photo, 72, estimated=True)).quality]
        assert "page_cut_off" not in codes, seed


def test_blank_and_bad_pages_get_actionable_reasons(doc) -> None:
    rng = np.random.default_rng(0)
    blank = np.clip(rng.normal(236, 4, (1169, 827)), 0, 255).astype(np.uint8)
    clean = clean_page(_page(blank, 100))
    assert clean.blank and [q.code for q in clean.quality] == ["blank_page"]

    blurry = clean_page(_page(cv2.GaussianBlur(doc.image, (0, 0), 3)))
    assert "too_blurry" in [q.code for q in blurry.quality]
    assert any("mờ" in q.message_vi for q in blurry.quality)

    dark = clean_page(_page((doc.image * 0.35).astype(np.uint8)))
    assert "too_dark" in [q.code for q in dark.quality]

    faded, dpi = degrade(doc.image, "faded", seed=2, dpi=DPI)
    assert "too_light" in [q.code for q in clean_page(_page(faded, dpi)).quality]

    gray = cv2.cvtColor(doc.image, cv2.COLOR_BGR2GRAY)
    cut = gray[: gray.shape[0] // 2, int(gray.shape[1] * 0.3):]  # right half of the top, text cut at the left
    assert "page_cut_off" in [q.code for q in clean_page(_page(cut), PreprocessOptions(crop=False)).quality]


def test_scanner_border_is_cropped(doc) -> None:
    gray = cv2.cvtColor(doc.image, cv2.COLOR_BGR2GRAY)
    bordered = cv2.copyMakeBorder(gray, 60, 60, 80, 40, cv2.BORDER_CONSTANT, value=15)
    clean = clean_page(_page(bordered))
    assert clean.archive_image.shape[0] <= gray.shape[0] + 6 and clean.archive_image.shape[1] <= gray.shape[1] + 6
    assert clean.archive_image[:, :3].mean() > 200  # no black band left


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        clean_page(_page(np.zeros((50, 50), np.float32)))
    with pytest.raises(ValueError, match="too small"):
        clean_page(_page(np.zeros((5, 5), np.uint8)))

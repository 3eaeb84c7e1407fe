"""ocr.recognize: Tesseract on real and generated Vietnamese pages, boxes, text assembly, pools."""
from __future__ import annotations

import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ingest.load import load_file
from ocr.cer import cer, cer_flex
from ocr.preprocess import PreprocessOptions, clean_page
from ocr.recognize import (OcrError, OcrOptions, clean_and_recognize_many, parse_tsv, recognize,
                           recognize_many, words_to_text)
from ocr.types import SourcePage, Word
from samples.generator import render_document
from tests.conftest import SHARED, require_shared

REAL_PAGE = SHARED / "data" / "real_smoke" / "pages" / "vietsample1_pdf_p-1.png"


@pytest.fixture(scope="module")
def generated():
    return render_document("giay_khai_sinh", 5, dpi=200)


@pytest.fixture(scope="module")
def generated_text(generated):
    clean = clean_page(SourcePage("gks.png", 0, generated.image, 200.0), PreprocessOptions(min_ocr_dpi=250, target_ocr_dpi=300))
    return clean, recognize(clean)


def _top(image: np.ndarray, share: float = 0.3) -> np.ndarray:
    return np.ascontiguousarray(image[: int(image.shape[0] * share)])


def test_real_vietnamese_page_reads_with_low_cer() -> None:
    truth = require_shared(REAL_PAGE.with_suffix("").with_suffix(".gt.txt")).read_text(encoding="utf-8")
    page = recognize(clean_page(load_file(REAL_PAGE)[0]))
    assert cer(truth, page.text) < 0.01
    assert page.text == unicodedata.normalize("NFC", page.text)
    assert page.engine.startswith("tesseract 5") and "vie" in page.engine
    assert page.mean_conf > 85 and page.seconds > 0


def test_generated_page_text_and_boxes_in_archive_pixels(generated, generated_text) -> None:
    clean, page = generated_text
    assert clean.ocr_scale == pytest.approx(1.5)  # 200 dpi is read at 300 dpi
    assert cer_flex(generated.text, page.text) < 0.03
    assert (page.width, page.height) == (clean.archive_image.shape[1], clean.archive_image.shape[0])
    gray = clean.archive_image.min(axis=2)
    for word in page.words:
        assert 0 <= word.left < page.width and 0 <= word.top < page.height
        assert word.left + word.width <= page.width and word.top + word.height <= page.height
    # every confident word box covers ink in the archive image (boxes were mapped back from 1.5x)
    confident = [w for w in page.words if w.conf > 80 and len(w.text) >= 3]
    assert len(confident) > 30
    for word in confident:
        box = gray[word.top:word.top + word.height, word.left:word.left + word.width]
        assert box.min() < 100
    assert len({w.line for w in page.words}) >= 15


def test_parse_tsv_maps_boxes_back_by_ocr_scale() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    rows = ("5\t1\t1\t1\t1\t1\t200\t100\t80\t40\t91.5\tHo\u0323\n"  # decomposed "Họ"
            "5\t1\t1\t1\t1\t2\t300\t100\t60\t40\t88\tte\u0302n\n"
            "5\t1\t2\t1\t1\t1\t200\t400\t100\t40\t30\tSố\n"
            "5\t1\t2\t1\t1\t2\t400\t400\t100\t40\t-1\t \n")
    words = parse_tsv(header + rows, scale=2.0, width=250, height=300)
    assert [w.text for w in words] == ["Họ", "tên", "Số"]
    assert all(w.text == unicodedata.normalize("NFC", w.text) for w in words)
    assert (words[0].left, words[0].top, words[0].width, words[0].height) == (100, 50, 40, 20)
    assert words[2].block == 2 and words[2].line != words[0].line
    assert words_to_text(words) == "Họ tên\n\nSố"
    assert [w.text for w in parse_tsv(header + rows, 2.0, 250, 300, min_conf=50)] == ["Họ", "tên"]


def test_words_to_text_lines_and_blocks() -> None:
    words = [Word("Điều", 0, 0, 1, 1, 90, line=0, block=1), Word("1.", 0, 0, 1, 1, 90, line=0, block=1),
             Word("Cho", 0, 0, 1, 1, 90, line=1, block=1), Word("Nơi", 0, 0, 1, 1, 90, line=2, block=3)]
    assert words_to_text(words) == "Điều 1.\nCho\n\nNơi"


def test_two_column_header_is_read_column_by_column() -> None:
    def w(text: str, left: int, top: int, line: int, block: int = 1, width: int = 100) -> Word:
        return Word(text, left, top, width, 40, 95.0, line=line, block=block)

    words = [w("UBND", 100, 100, 0), w("XÃ", 210, 100, 0, width=60), w("CỘNG", 900, 100, 0), w("HÒA", 1010, 100, 0),
             w("Số:", 100, 160, 1, 2), w("12/UBND", 210, 160, 1, 2), w("Độc", 900, 160, 1, 2), w("lập", 1010, 160, 1, 2),
             w("QUYẾT", 500, 300, 2, 3), w("ĐỊNH", 610, 300, 2, 3)]
    assert words_to_text(words) == "UBND XÃ\nSố: 12/UBND\n\nCỘNG HÒA\nĐộc lập\n\nQUYẾT ĐỊNH"


def test_blank_page_skips_tesseract_and_errors_are_clear(generated_text) -> None:
    clean, _ = generated_text
    blank = replace(clean, blank=True)
    result = recognize(blank, OcrOptions(tessdata_dir=None))
    assert result.words == [] and result.text == ""
    small = replace(clean, archive_image=_top(clean.archive_image, 0.1), ocr_image=_top(clean.ocr_image, 0.1))
    with pytest.raises(OcrError, match="gks.png page 1.*xyz_not_installed"):
        recognize(small, OcrOptions(lang="xyz_not_installed"))
    with pytest.raises(OcrError, match="longer than"):
        recognize(clean, OcrOptions(timeout_s=0.001))
    assert recognize(small).text  # the engine is still usable after a failed/timed-out page


def test_prefer_text_layer_uses_born_digital_text(generated_text) -> None:
    clean, _ = generated_text
    small = replace(clean, archive_image=_top(clean.archive_image, 0.15), ocr_image=_top(clean.ocr_image, 0.15),
                    text_layer="Cộng hòa xã hội chủ nghĩa Việt Nam")
    result = recognize(small, OcrOptions(prefer_text_layer=True))
    assert result.text == "Cộng hòa xã hội chủ nghĩa Việt Nam" and result.words


def test_pools_keep_page_order(generated) -> None:
    first = SourcePage("a.png", 0, _top(generated.image, 0.2), 200.0)
    second = SourcePage("a.png", 1, _top(generated.image[int(generated.image.shape[0] * 0.4):], 0.2), 200.0)
    pairs = clean_and_recognize_many([first, second], workers=2)
    assert [c.index for c, _ in pairs] == [0, 1] and [t.index for _, t in pairs] == [0, 1]
    texts = recognize_many([c for c, _ in pairs], OcrOptions(), workers=2)
    assert [t.text for t in texts] == [t.text for _, t in pairs]
    assert "CỘNG HÒA" in texts[0].text and texts[0].text != texts[1].text


def test_tessdata_dir_setting_is_used(generated_text) -> None:
    clean, _ = generated_text
    small = replace(clean, archive_image=_top(clean.archive_image, 0.15), ocr_image=_top(clean.ocr_image, 0.15))
    best = SHARED / "data" / "tessdata_best"
    if not (best / "vie.traineddata").exists():
        pytest.skip("tessdata_best models are not on this machine")
    result = recognize(small, OcrOptions(tessdata_dir=best))
    assert "tessdata_best" in result.engine and "CỘNG HÒA" in result.text
    with pytest.raises(OcrError):
        recognize(small, OcrOptions(tessdata_dir=Path("/nonexistent")))


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_osd_rotation_turns_the_page_back(generated, turn: int) -> None:
    import cv2

    from ocr.recognize import osd_rotation

    gray = cv2.cvtColor(generated.image, cv2.COLOR_BGR2GRAY)
    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    turned = gray if turn == 0 else cv2.rotate(gray, codes[turn])  # turned counter-clockwise
    rotation, confidence = osd_rotation(turned, 200)
    assert rotation == turn and confidence > 2.0  # clockwise by ``turn`` makes it upright


def test_signature_scribbles_read_as_words_are_dropped() -> None:
    from ocr.recognize import drop_graphic_words

    text = [Word(t, 100 * i, 500, 80, 30, c, line=0, block=1)
            for i, (t, c) in enumerate([("Họ", 95), ("tên:", 93), ("Lê", 40), ("Văn", 91), ("An", 88)])]
    title = Word("QUYẾT", 300, 200, 300, 52, 94.0, line=1, block=2)  # tall but read confidently
    scribble = Word('NJ"WNJYNN', 900, 900, 420, 95, 12.0, line=2, block=3)
    kept = drop_graphic_words([*text, title, scribble])
    assert kept == [*text, title]  # the low-confidence real word ("Lê", 40) has text height: kept


@pytest.mark.slow
def test_bad_scan_signature_is_not_read_as_text() -> None:
    from samples.degrade import degrade

    doc = render_document("giay_khai_sinh", 204, dpi=300)
    image, dpi = degrade(doc.image, "bad_150", seed=7, dpi=300)
    clean = clean_page(SourcePage("bad.png", 0, image, float(dpi)))
    page = recognize(clean)
    raw = recognize(clean, OcrOptions(drop_graphics=False))
    assert len(raw.words) > len(page.words)  # something was read from the scribble, and dropped
    assert cer_flex(doc.text, page.text) < 0.01 and cer_flex(doc.text, page.text) < cer_flex(doc.text, raw.text)


@pytest.mark.slow
def test_archive_page_with_filing_holes_reads_clean() -> None:
    """Punched holes stay in the archive image (they are part of the paper) and yield no text."""
    from samples.degrade import degrade

    doc = render_document("quyet_dinh", 9, dpi=300)
    image, dpi = degrade(doc.image, "punched", seed=3, dpi=300)
    clean = clean_page(SourcePage("archive.png", 0, image, float(dpi)))
    page = recognize(clean)
    margin = int(20 / 25.4 * dpi)  # the holes sit 9-15 mm from the left edge
    assert (clean.archive_image[:, :margin].min(axis=2) < 80).sum() > 5000  # the holes are still there
    assert not [w for w in page.words if w.left + w.width < margin]
    assert cer_flex(doc.text, page.text) < 0.01

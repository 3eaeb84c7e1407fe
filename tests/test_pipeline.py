"""The pipeline's own rules: page numbering across files, corrections, owner identities."""
from __future__ import annotations

import cv2
import pytest

from ingest.pipeline import (InputFile, PipelineError, analyze, apply_corrections, load_pages,
                             owner_kind)
from ocr.recognize import OcrOptions
from ocr.types import FieldValue
from samples.generator import render_document


def _jpeg(doc_type: str, seed: int) -> bytes:
    image = render_document(doc_type, seed=seed, dpi=200).image
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def test_pages_from_several_files_are_numbered_across_the_document():
    files = [InputFile("page1.jpg", _jpeg("giay_khai_sinh", 1)),
             InputFile("page2.jpg", _jpeg("quyet_dinh", 2))]
    pages = load_pages(files)
    assert [p.index for p in pages] == [0, 0]  # each file has one page
    analysis = analyze(pages, OcrOptions(), hint="giay_khai_sinh", workers=2)
    assert [t.index for t in analysis.texts] == [0, 1]
    assert [p.source for p in analysis.pages] == ["page1.jpg", "page2.jpg"]
    assert analysis.classification.doc_type == "giay_khai_sinh"
    assert "GIẤY KHAI SINH" in analysis.texts[0].text.upper()
    assert "QUYẾT ĐỊNH" in analysis.texts[1].text.upper()


def test_officer_corrections_replace_extracted_values():
    fields = {"ho_ten": FieldValue("ho_ten", None, raw="NGUYEN VAN", confidence=0.3, valid=False,
                                   error="incomplete", page=0, bbox=(1, 2, 3, 4))}
    out = apply_corrections(fields, {"ho_ten": "Nguyễn Văn An"})
    assert out["ho_ten"].value == "Nguyễn Văn An"
    assert out["ho_ten"].valid and out["ho_ten"].confidence == 1.0
    assert out["ho_ten"].bbox == (1, 2, 3, 4)  # still points at the words on the page
    assert fields["ho_ten"].value is None  # the input is not mutated


@pytest.mark.parametrize("owner,kind", [("079203012345", "citizen"), ("0312345678", "organization"),
                                        ("0312345678-001", "organization")])
def test_owner_kind(owner, kind):
    assert owner_kind(owner) == kind


@pytest.mark.parametrize("owner", ["999203012345", "07920301234", "abc", "079903012345"])
def test_invalid_owner_ids_are_refused(owner):
    with pytest.raises(PipelineError) as info:
        owner_kind(owner)
    assert info.value.code == "invalid_owner"

"""DeskService without HTTP: what it refuses, how a failed scan is reported, and resuming work."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.desk.service import DeskError, DeskService
from ingest.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
JPEG = (ROOT / "samples" / "giay_khai_sinh.jpg").read_bytes()
OWNER = "079203012345"


@pytest.fixture
def service(sohoa_home):
    svc = DeskService(load_settings(home=sohoa_home), workers=1)
    yield svc
    svc.close()


def _wait(svc: DeskService, draft_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = svc.store.get(draft_id).status
        if status not in ("received", "processing"):
            return status
        time.sleep(0.05)
    raise AssertionError("draft still processing")


@pytest.mark.parametrize(("owner", "files", "code"), [
    ("003203012345", [("a.jpg", JPEG)], "owner"),  # no province 003
    ("07920301234", [("a.jpg", JPEG)], "owner"),
    (OWNER, [], "no_files"),
    (OWNER, [("empty.jpg", b"")], "no_files"),
    (OWNER, [("notes.txt", b"just some text")], "unsupported_type"),
])
def test_receive_refuses_what_cannot_become_a_record(service, owner, files, code):
    with pytest.raises(DeskError) as err:
        service.receive(officer="lan", owner_id=owner, dossier_code=None, files=files)
    assert err.value.code == code
    assert service.store.all() == []  # nothing half-received


def test_receive_limits_come_from_the_api_options(sohoa_home):
    svc = DeskService(load_settings(home=sohoa_home), workers=1, max_files=1, max_upload_bytes=10**9)
    try:
        with pytest.raises(DeskError) as err:
            svc.receive(officer="lan", owner_id=OWNER, dossier_code=None,
                        files=[("a.jpg", JPEG), ("b.jpg", JPEG)])
        assert err.value.code == "too_many_files"
    finally:
        svc.close()


def test_a_corrupt_scan_fails_with_its_reason_and_is_kept(service):
    broken = JPEG[:2000]  # a JPEG cut short: the header sniffs fine, decoding fails
    draft = service.receive(officer="lan", owner_id=" 079 203 012 345 ", dossier_code="HS-9",
                            files=[("cut.jpg", broken)])
    assert draft.owner_id == OWNER
    assert _wait(service, draft.id) == "failed"
    failed = service.store.get(draft.id)
    assert failed.error is not None and failed.error.code == "corrupt"
    assert OWNER not in failed.error.message
    assert service.store.read_uploads(failed) == [("cut.jpg", broken)]
    assert [d.id for d in service.review_queue()] == [draft.id]  # the supervisor sees it
    assert [d.id for d in service.today("lan")] == [draft.id]
    assert service.today("someone-else") == []


def test_unfinished_drafts_are_resumed_after_a_restart(sohoa_home):
    settings = load_settings(home=sohoa_home)
    first = DeskService(settings, workers=1)
    draft = first.store.create(officer="lan", owner_id=OWNER, dossier_code=None,
                               files=[("cut.jpg", JPEG[:2000])])
    with first.store.editing(draft.id) as d:  # as left by a server killed mid-analysis
        d.status, d.stage = "processing", "recognizing"
    first.close()
    second = DeskService(settings, workers=1)
    try:
        assert second.resume() == 1
        assert _wait(second, draft.id) == "failed"  # processed again (and this scan is broken)
        retried = second.retry(draft.id)
        assert retried.status in ("received", "processing", "failed")
        assert _wait(second, draft.id) == "failed"
    finally:
        second.close()


def test_review_of_an_unknown_draft_is_refused(service):
    from api.desk.drafts import DraftNotFound

    with pytest.raises(DraftNotFound):
        service.save_review("01ARZ3NDEKTSV4RRFFQ69G5FAV", doc_type=None, values={})
    with pytest.raises(DraftNotFound):
        service.confirm("not-a-draft-id", "lan")


def _ready_draft(svc: DeskService, doc_type: str = "quyet_dinh"):
    """A draft whose analysis is a small, fully known one (no OCR needed)."""
    import numpy as np

    from api.desk.edits import default_pages
    from ocr.types import Analysis, Classification, CleanPage, FieldValue, PageText

    image = np.full((200, 100, 3), 255, np.uint8)
    analysis = Analysis(
        pages=[CleanPage(source="a.jpg", index=0, archive_image=image, ocr_image=image[:, :, 0],
                         dpi=300.0)],
        texts=[PageText(index=0, width=100, height=200, dpi=300.0, text="QUYẾT ĐỊNH")],
        classification=Classification(doc_type, 0.95 if doc_type != "unknown" else 0.3),
        fields={
            "so_van_ban": FieldValue("so_van_ban", "12/QĐ-UBND", "Số: 12/QĐ-UBND", 0.9, page=0,
                                     bbox=(10, 20, 30, 10)),
            "ngay_ban_hanh": FieldValue("ngay_ban_hanh", None, "", 0.0, valid=False, error="not found"),
            "so_dinh_danh": FieldValue("so_dinh_danh", None, "0792O3012345", 0.4, valid=False,
                                       error="personal ID must be exactly 12 digits", page=0,
                                       bbox=(5, 100, 60, 12)),
        })
    draft = svc.store.create(officer="lan", owner_id=OWNER, dossier_code=None,
                             files=[("a.jpg", JPEG)])
    svc.store.save_analysis(draft.id, analysis)
    with svc.store.editing(draft.id) as d:
        d.status, d.stage, d.detected_type = "ready", "ready", doc_type
        d.confidence, d.page_count, d.pages = analysis.classification.confidence, 1, default_pages(1)
    return svc.store.get(draft.id)


def test_review_form_rows_separate_not_found_from_wrongly_read(service):
    draft = _ready_draft(service)
    rows = {r.name: r for r in service.field_rows(draft)}
    assert rows["so_van_ban"].error is None and rows["so_van_ban"].value == "12/QĐ-UBND"
    assert rows["so_van_ban"].box == (10.0, 10.0, 30.0, 5.0)  # % of the 100x200 page
    assert rows["ngay_ban_hanh"].error is None and rows["ngay_ban_hanh"].value == ""
    assert rows["so_dinh_danh"].value == "0792O3012345"  # what was read, for the officer to fix
    assert rows["so_dinh_danh"].error == "personal_id"
    assert service.attention(draft, list(rows.values())) == ["invalid_fields"]
    with pytest.raises(DeskError) as err:
        service.confirm(draft.id, "lan")
    assert err.value.code == "invalid_fields"
    fixed = service.save_review(draft.id, doc_type=None, values={"so_dinh_danh": "079203012345"})
    assert all(r.error is None for r in service.field_rows(fixed))
    assert service.attention(fixed, service.field_rows(fixed)) == []


def test_confirm_needs_a_real_document_type(service):
    draft = _ready_draft(service, doc_type="unknown")
    service.save_review(draft.id, doc_type=None, values={"so_dinh_danh": ""})
    with pytest.raises(DeskError) as err:
        service.confirm(draft.id, "lan")
    assert err.value.code == "choose_type"
    assert service.store.get(draft.id).status == "ready"  # still editable
    with pytest.raises(DeskError) as err:
        service.save_review(draft.id, doc_type="no_such_type", values={})
    assert err.value.code == "unknown_type"

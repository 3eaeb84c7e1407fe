"""Planning a bulk run without OCR: SOURCE discovery, folder streams, splitting, keys, dedup."""
from __future__ import annotations

import io
import subprocess

import cv2
import pytest
from PIL import Image

from ingest.bulk.engine import deduplicate
from ingest.bulk.plan import (SourceError, UnitIdentity, discover, plan_stream, streams, to_new_unit,
                              unit_key)
from ingest.ledger import Ledger, UnitState
from ingest.manifest import parse_manifest
from ingest.separator import SeparatorInfo, separator_pdf
from samples.generator import render_document

OWNER = "079203012345"
OWNER_2 = "001088004321"
IDENTITY = UnitIdentity(owner_ref=lambda owner: f"ref-{owner[-3:]}".ljust(64, "0"),
                        seal=lambda owner, ref: b"sealed")


def page(doc_type: str, seed: int) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_document(doc_type, seed=seed, dpi=100).image, cv2.COLOR_BGR2GRAY))


def sheet(info: SeparatorInfo) -> Image.Image:
    png = subprocess.run(["pdftoppm", "-r", "100", "-gray", "-png", "-singlefile", "-"], input=separator_pdf(info),
                         capture_output=True, check=True, timeout=60).stdout
    return Image.open(io.BytesIO(png)).convert("L")


def test_discover_folder_and_list_file(tmp_path):
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "a.jpg").write_bytes(b"x")
    (src / "b" / "c.png").write_bytes(b"x")
    (src / ".hidden").write_bytes(b"x")
    found = discover(src)
    assert found.files == ["a.jpg", "b/c.png"] and found.base == src.resolve()
    listing = src / "list.txt"
    listing.write_text("# box 1\nb/c.png\n\na.jpg\n", "utf-8")
    assert discover(listing).files == ["b/c.png", "a.jpg"]
    listing.write_text("../outside.jpg\n", "utf-8")
    with pytest.raises(SourceError, match="line 1"):
        discover(listing)
    with pytest.raises(SourceError):
        discover(tmp_path / "missing")


def test_folder_stream_split_by_separator_and_blank_pages(tmp_path):
    src = tmp_path / "src"
    folder = src / "hop-03" / "ho-so-01"
    folder.mkdir(parents=True)
    blank = Image.new("L", page("quyet_dinh", 1).size, 250)
    images = [page("quyet_dinh", 1), page("cong_van", 2), sheet(SeparatorInfo(owner_id=OWNER_2, dossier_code="D-2")),
              page("don_de_nghi", 3), blank, page("giay_khai_sinh", 4)]
    for i, image in enumerate(images):
        image.save(folder / f"{i:02d}.png", dpi=(100, 100))
    (folder / "ghi-chu.txt").write_text("notes", "utf-8")
    manifest = parse_manifest(f"path,owner_id,group,split,box\nhop-03,{OWNER},folder,blank,03\n".encode())
    found = discover(src)
    (stream,) = [s for s in streams(found, manifest) if len(s.files) > 1]
    drafts = plan_stream(found.base, stream)
    documents = [d for d in drafts if d.state == UnitState.PENDING]
    assert [[s["path"].rsplit("/", 1)[1] for s in d.sources] for d in documents] == [
        ["00.png", "01.png"], ["03.png"], ["05.png"]]
    assert documents[0].info is None and documents[1].info.owner_id == OWNER_2
    assert documents[2].info.owner_id == OWNER_2  # still the sheet's section after a blank page
    skipped = {d.sources[0]["path"].rsplit("/", 1)[1]: d.reason_code for d in drafts if d.state == UnitState.SKIPPED}
    assert skipped == {"02.png": "separator_sheet", "04.png": "blank_page", "ghi-chu.txt": "not_a_scan"}

    units = [to_new_unit(i, d, IDENTITY) for i, d in enumerate(drafts, 1)]
    by_file = {u.sources[0]["path"].rsplit("/", 1)[1]: u for u in units}
    assert by_file["00.png"].owner_ref == IDENTITY.owner_ref(OWNER)
    assert by_file["03.png"].owner_ref == IDENTITY.owner_ref(OWNER_2)
    assert by_file["03.png"].dossier_code == "D-2" and by_file["03.png"].archive_ref == {"box": "03"}


def test_units_without_owner_or_manifest_row_fail_with_a_reason(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    page("quyet_dinh", 5).save(src / "a.png", dpi=(100, 100))
    (src / "other").mkdir()
    page("quyet_dinh", 6).save(src / "other" / "b.png", dpi=(100, 100))
    manifest = parse_manifest(b"path,box\na.png,1\n")
    found = discover(src)
    units = [to_new_unit(i, d, IDENTITY) for i, s in enumerate(streams(found, manifest), 1)
             for d in plan_stream(found.base, s)]
    reasons = {u.sources[0]["path"]: (u.state, u.reason_code) for u in units}
    assert reasons == {"a.png": (UnitState.FAILED, "no_owner"), "other/b.png": (UnitState.FAILED, "not_in_manifest")}
    assert "manifest line 2" in next(u.reason for u in units if u.reason_code == "no_owner")


def test_keys_and_deduplication(tmp_path):
    sources = [{"path": "a.jpg", "sha256": "1" * 64, "pages": [0, 1]}]
    key = unit_key(sources, "r" * 64, None)
    assert key == unit_key([dict(s) for s in sources], "r" * 64, None)
    assert key != unit_key(sources, "s" * 64, None)  # another owner: another document
    assert key != unit_key([{**sources[0], "pages": [0]}], "r" * 64, None)

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    manifest = parse_manifest(f"path,owner_id\n.,{OWNER}\n".encode())
    src = tmp_path / "src"
    src.mkdir()
    page("cong_van", 7).save(src / "a.png", dpi=(100, 100))
    found = discover(src)
    drafts = [d for s in streams(found, manifest) for d in plan_stream(found.base, s)]
    twice = [to_new_unit(1, drafts[0], IDENTITY), to_new_unit(2, drafts[0], IDENTITY)]
    first_run = deduplicate(twice, ledger)
    assert [u.state for u in first_run] == [UnitState.PENDING, UnitState.SKIPPED]
    assert first_run[1].reason_code == "duplicate"
    ledger.create_run("R1", source=str(src), manifest_path="m", manifest_sha256=manifest.sha256, options={})
    ledger.add_units("R1", first_run[:1])
    (row,) = [u for u in ledger.units("R1")]
    ledger.finish(row.id, None, UnitState.STORED, record_uri="A.cong_van.X", version=1)
    second_run = deduplicate([to_new_unit(1, drafts[0], IDENTITY)], ledger)
    assert (second_run[0].state, second_run[0].reason_code, second_run[0].record_uri) == (
        UnitState.SKIPPED, "already_stored", "A.cong_van.X")
    ledger.close()

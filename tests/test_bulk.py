"""Bulk back-digitization through the CLI, with real faults (issue #9 "done when").

Every check of "nothing lost, nothing duplicated" reads the object store and the index directly
(files on disk / SQL / minio listing), not through the bulk code.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import pytest
import sqlalchemy as sa
from PIL import Image

from ingest.separator import SeparatorInfo, separator_pdf
from samples.generator import render_document

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
OWNER = "079203012345"
OWNER_2 = "001088004321"
DPI = 200


# ---- helpers (also used by test_celery.py) ---------------------------------------------------------
def sohoa(*args: str, env: dict, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([SOHOA, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"sohoa {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def start(*args: str, env: dict) -> subprocess.Popen:
    """A sohoa command in its own process group (so the test can kill -9 all of it)."""
    return subprocess.Popen([SOHOA, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def home_env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, SOHOA_HOME=str(tmp_path / "home"), OMP_THREAD_LIMIT="1", SOHOA_LOG_LEVEL="WARNING",
               **extra)
    sohoa("init", env=env)
    return env


def page_image(doc_type: str, seed: int) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_document(doc_type, seed=seed, dpi=DPI).image, cv2.COLOR_BGR2RGB))


def separator_scan(info: SeparatorInfo) -> Image.Image:
    png = subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", "-singlefile", "-"],
                         input=separator_pdf(info), capture_output=True, check=True, timeout=60).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


SIMPLE_TYPES = ("giay_khai_sinh", "quyet_dinh", "xac_nhan_cu_tru", "cong_van", "don_de_nghi", "trich_luc_khai_tu")


def simple_source(root: Path, count: int) -> tuple[Path, Path]:
    """``count`` one-page documents in one folder, with a manifest giving each one's type."""
    src = root / "src"
    (src / "hop-01").mkdir(parents=True)
    lines = ["path,owner_id,doc_type,box,file_no"]
    for i in range(count):
        doc_type = SIMPLE_TYPES[i % len(SIMPLE_TYPES)]
        page_image(doc_type, 100 + i).save(src / "hop-01" / f"trang-{i:03d}.jpg", dpi=(DPI, DPI), quality=88)
        lines.append(f"hop-01/trang-{i:03d}.jpg,{OWNER},{doc_type},01,{i + 1}")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n", "utf-8")
    return src, manifest


def ledger_rows(env: dict) -> list[dict]:
    engine = sa.create_engine(db_url(env))
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT run_id, seq, state, lease_owner, attempts, record_uri, page_count, reason_code "
                "FROM bulk_units ORDER BY run_id, seq"))]
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return []  # tables not created yet (or the database is restarting)
    finally:
        engine.dispose()


def db_url(env: dict) -> str:
    return env.get("SOHOA_DB_URL") or f"sqlite:///{Path(env['SOHOA_HOME']) / 'index.sqlite3'}"


def wait_for(predicate, timeout: float = 300, what: str = "condition", proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended before {what}: {proc.returncode}\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def stored_manifests_local(env: dict) -> Counter:
    """Record URI -> number of version manifests, read from the object store's files directly."""
    from ingest.settings import load_settings
    root = load_settings(home=Path(env["SOHOA_HOME"])).objects_dir / "objects"  # local store: objects/<key>
    return Counter(p.parent.name for p in root.glob("records/*/v*.json"))


def index_versions(env: dict) -> Counter:
    engine = sa.create_engine(db_url(env))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT r.uri FROM versions v JOIN records r ON r.id = v.record_id")).all()
    finally:
        engine.dispose()
    return Counter(uri for (uri,) in rows)


def read_report(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))


def assert_exactly_once(env: dict, rows: list[dict], manifests: Counter) -> None:
    """Every stored unit has one record with one version, in the index and in the object store."""
    stored = [r for r in rows if r["state"] == "stored"]
    uris = [r["record_uri"] for r in stored]
    assert len(set(uris)) == len(uris), "two units claim the same record"
    assert set(manifests) == set(uris), (manifests, uris)
    assert all(n == 1 for n in manifests.values()), manifests
    assert index_versions(env) == manifests


# ---- the main path -------------------------------------------------------------------------------------
@pytest.fixture
def archive(tmp_path) -> tuple[Path, Path, int]:
    """Two boxes: loose scans (one corrupt, one not a scan) and one box file with a separator
    sheet (new owner), its blank back, and two documents. Returns (source, manifest, pages)."""
    src = tmp_path / "src"
    (src / "hop-01").mkdir(parents=True)
    (src / "hop-02").mkdir()
    page_image("giay_khai_sinh", 1).save(src / "hop-01" / "a.jpg", dpi=(DPI, DPI), quality=88)
    page_image("quyet_dinh", 2).save(src / "hop-01" / "b.png", dpi=(DPI, DPI))
    (src / "hop-01" / "c-hong.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 40)
    (src / "hop-01" / "ghi-chu.txt").write_text("Hộp 01 — 3 tài liệu", "utf-8")
    sheet = separator_scan(SeparatorInfo(owner_id=OWNER_2, dossier_code="000.00.12.H29-241125-0007"))
    blank = Image.new("RGB", sheet.size, (248, 248, 246))
    box = [page_image("xac_nhan_cu_tru", 3), sheet, blank, page_image("cong_van", 4)]
    box[0].save(src / "hop-02" / "scan.tif", save_all=True, append_images=box[1:], compression="tiff_lzw",
                dpi=(DPI, DPI))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,owner_id,doc_type,box,file_no\n"
                        f"hop-01,{OWNER},,01,\n"
                        f"hop-02/scan.tif,{OWNER},,02,07\n", "utf-8")
    return src, manifest, independent_page_count(src)


def independent_page_count(src: Path) -> int:
    total = 0
    for path in src.rglob("*"):
        if path.suffix.lower() in (".jpg", ".png", ".tif"):
            try:
                with Image.open(path) as image:
                    total += getattr(image, "n_frames", 1)
            except OSError:
                pass  # the corrupt file has no countable page
    return total


@pytest.mark.slow
def test_bulk_run_report_status_and_rerun(tmp_path, archive):
    src, manifest, pages = archive
    env = home_env(tmp_path)
    report = tmp_path / "report.csv"
    proc = sohoa("bulk", "run", str(src), "--manifest", str(manifest), "--workers", "2", "--plain",
                 "--report", str(report), env=env, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one corrupt file failed; the run went on
    assert "pages/min" in proc.stderr and "ETA" in proc.stderr
    rows = read_report(report)
    by_source = {r["source"]: r for r in rows}
    assert by_source["hop-01/a.jpg p1"]["state"] == "stored"
    assert by_source["hop-01/a.jpg p1"]["doc_type"] == "giay_khai_sinh"
    assert by_source["hop-01/b.png p1"]["state"] == "stored"
    assert by_source["hop-01/c-hong.jpg"]["state"] == "failed"
    assert by_source["hop-01/c-hong.jpg"]["reason_code"] == "corrupt"
    assert by_source["hop-01/ghi-chu.txt"]["state"] == "skipped"
    assert by_source["hop-02/scan.tif p2"]["reason_code"] == "separator_sheet"
    assert by_source["hop-02/scan.tif p3"]["reason_code"] == "blank_page"
    first, last = by_source["hop-02/scan.tif p1"], by_source["hop-02/scan.tif p4"]
    assert first["state"] == last["state"] == "stored"
    assert (first["box"], first["file_no"]) == ("02", "07")
    assert last["dossier_code"] == "000.00.12.H29-241125-0007"  # from the separator sheet
    # every page of the source is in exactly one row
    assert sum(int(r["pages"]) for r in rows) == pages == 6
    assert OWNER not in report.read_text("utf-8-sig") and OWNER_2 not in report.read_text("utf-8-sig")
    manifests = stored_manifests_local(env)
    assert_exactly_once(env, [{"state": r["state"], "record_uri": r["record_uri"]} for r in rows], manifests)

    # the separator sheet's owner owns the document after it (read back without the bulk code)
    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings
    os.environ["SOHOA_HOME"] = env["SOHOA_HOME"]
    try:
        settings = load_settings(home=Path(env["SOHOA_HOME"]))
        repo = Pipeline(settings).repository
        assert repo.get(last["record_uri"]).result.owner_key == repo.owner_key(OWNER_2)
        assert repo.get(first["record_uri"]).result.owner_key == repo.owner_key(OWNER)
        assert repo.reconcile().ok
        repo.close()
    finally:
        del os.environ["SOHOA_HOME"]

    run_id = ledger_rows(env)[0]["run_id"]
    status = json.loads(sohoa("bulk", "status", run_id, "--json", env=env).stdout)
    assert (status["stored_units"], status["failed_units"], status["skipped_units"], status["pages"]) == (4, 1, 3, 6)
    again = tmp_path / "again.csv"
    sohoa("bulk", "report", run_id, "-o", str(again), env=env)
    assert read_report(again) == rows

    # the same source again: nothing new is stored
    rerun = sohoa("bulk", "run", str(src), "--manifest", str(manifest), "--workers", "2", "--plain",
                  "--report", str(tmp_path / "rerun.csv"), env=env, check=False)
    assert rerun.returncode == 1  # the corrupt file is still corrupt
    rerows = read_report(tmp_path / "rerun.csv")
    assert Counter(r["reason_code"] for r in rerows if r["state"] == "skipped")["already_stored"] == 4
    assert not [r for r in rerows if r["state"] == "stored"]
    assert stored_manifests_local(env) == manifests


def test_manifest_errors_are_reported_by_line_and_column(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,owner_id,split\na.jpg,{OWNER},sometimes\nb.jpg,123,\n", "utf-8")
    env = home_env(tmp_path)
    proc = sohoa("bulk", "run", str(src), "--manifest", str(manifest), env=env, check=False)
    assert proc.returncode == 3
    assert "line 2, column split" in proc.stderr and "line 3, column owner_id" in proc.stderr
    assert ledger_rows(env) == []


# ---- faults: a worker killed mid-page, the whole run killed, a crash between store and ledger ----------
@pytest.mark.slow
def test_kill_worker_then_kill_run_then_resume_stores_each_page_once(tmp_path):
    src, manifest = simple_source(tmp_path, 5)
    env = home_env(tmp_path)
    proc = start("bulk", "run", str(src), "--manifest", str(manifest), "--workers", "2", "--plain", env=env)
    try:
        # 1. a worker process dies in the middle of a page: the run rebuilds its pool and goes on
        victim = wait_for(lambda: next((r for r in ledger_rows(env) if r["state"] == "running"
                                        and r["lease_owner"]), None), what="a running unit", proc=proc)
        pid = int(victim["lease_owner"].rsplit(":", 1)[1].split("@")[0])
        assert pid != proc.pid
        os.kill(pid, signal.SIGKILL)
        # 2. later the whole run (coordinator and workers) is killed -9
        wait_for(lambda: sum(r["state"] == "stored" for r in ledger_rows(env)) >= 2, what="two stored units", proc=proc)
    finally:
        kill_group(proc)
    rows = ledger_rows(env)
    assert any(r["state"] != "stored" for r in rows), "the run finished before it could be killed"
    run_id = rows[0]["run_id"]
    resumed = sohoa("bulk", "resume", run_id, "--workers", "2", "--plain", env=env, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = ledger_rows(env)
    assert [r["state"] for r in rows] == ["stored"] * 5
    assert next(r for r in rows if r["seq"] == victim["seq"])["attempts"] >= 2
    assert_exactly_once(env, rows, stored_manifests_local(env))

    # 3. a crash after the repository stored a unit but before the ledger said so: the ledger
    #    still says "storing"; resume must find the record, not store a second one
    engine = sa.create_engine(db_url(env))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE bulk_units SET state='storing', version=NULL, lease_owner=NULL, "
                             "lease_until=NULL WHERE run_id=:r AND seq IN (1, 3)"), {"r": run_id})
    engine.dispose()
    sohoa("bulk", "resume", run_id, "--plain", env=env)
    after = ledger_rows(env)
    assert [r["state"] for r in after] == ["stored"] * 5
    assert [r["record_uri"] for r in after] == [r["record_uri"] for r in rows]
    assert_exactly_once(env, after, stored_manifests_local(env))

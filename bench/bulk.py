"""Bulk benchmark: pages/minute of `sohoa bulk run` (1 and 2 local workers, Celery with 2 workers)
next to OCRmyPDF (-j 2) over the same pages, and a kill -9 / resume loop counting lost and
duplicated pages. Everything in one run, on this machine.

    .venv/bin/python -m bench.bulk --pages 500 --out docs/benchmarks-bulk.md
    .venv/bin/python -m bench.bulk --pages 20 --cycles 20 --configs local1,local2,celery,ocrmypdf

The batch is mixed: generated documents of every catalog type at 200 and 300 dpi, as JPEG, PNG and
multi-page TIFF box files with QR separator sheets. Each sohoa configuration starts from a fresh
SOHOA_HOME (local object store, SQLite index). OCRmyPDF gets the same page images as one PDF
(img2pdf) with ``-j 2 -l vie --output-type pdfa``: OCR + PDF/A alone, no classification, signing or
storage. Wall time and worker seconds per page (the ledger's per-unit time, summed, over pages: the time one
worker spends on a page, start-up excluded) are both reported.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import img2pdf
from PIL import Image

from ingest.separator import SeparatorInfo, separator_pdf
from samples.generator import DOC_TYPES, render_document

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
OWNERS = ("079203012345", "001088004321")
CONFIGS = ("local1", "local2", "celery", "ocrmypdf")


@dataclass
class Batch:
    source: Path
    manifest: Path
    images: list[Path]  # every content page as an image file, for OCRmyPDF
    pages: int  # content pages (separator sheets excluded)
    documents: int


def _image(doc_type: str, seed: int, dpi: int) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_document(doc_type, seed=seed, dpi=dpi).image, cv2.COLOR_BGR2RGB))


def make_batch(root: Path, pages: int, seed: int = 7) -> Batch:
    """Loose one-page scans (JPEG/PNG) and TIFF box files (3 documents each, separated by sheets)."""
    rng = random.Random(seed)
    src = root / "src"
    (src / "loose").mkdir(parents=True)
    (src / "boxes").mkdir()
    images: list[Path] = []
    sheet_png = subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", "-singlefile", "-"],
                               input=separator_pdf(SeparatorInfo(owner_id=OWNERS[1])),
                               capture_output=True, check=True).stdout
    sheet = Image.open(io.BytesIO(sheet_png)).convert("RGB")
    made, documents, n = 0, 0, 0
    flat = root / "flat"
    flat.mkdir()
    while made < pages:
        n += 1
        doc_type = DOC_TYPES[n % len(DOC_TYPES)]
        dpi = rng.choice((200, 300))
        if n % 4 == 0 and pages - made >= 3:  # a box file: doc | sheet | doc | sheet | doc
            box = [_image(DOC_TYPES[(n + k) % len(DOC_TYPES)], n * 10 + k, 200) for k in range(3)]
            frames = [box[0], sheet, box[1], sheet, box[2]]
            frames[0].save(src / "boxes" / f"hop-{n:04d}.tif", save_all=True, append_images=frames[1:],
                           compression="tiff_lzw", dpi=(200, 200))
            for k, page in enumerate(box):
                path = flat / f"{n:04d}-{k}.jpg"
                page.save(path, dpi=(200, 200), quality=90)
                images.append(path)
            made, documents = made + 3, documents + 3
            continue
        page = _image(doc_type, n, dpi)
        suffix = rng.choice((".jpg", ".png"))
        path = src / "loose" / f"trang-{n:04d}{suffix}"
        page.save(path, dpi=(dpi, dpi), **({"quality": 90} if suffix == ".jpg" else {}))
        images.append(path)
        made, documents = made + 1, documents + 1
    manifest = root / "manifest.csv"
    manifest.write_text(f"path,owner_id,box\nloose,{OWNERS[0]},1\nboxes,{OWNERS[0]},2\n", "utf-8")
    return Batch(src, manifest, images, made, documents)


# ---- measuring ---------------------------------------------------------------------------------------------
@dataclass
class Measure:
    name: str
    pages: int
    wall_s: float
    worker_s: float | None  # sum of per-unit seconds from the ledger (None: not a sohoa run)
    note: str = ""

    @property
    def pages_per_min(self) -> float:
        return self.pages / self.wall_s * 60.0

    @property
    def worker_per_page(self) -> str:
        return "-" if self.worker_s is None else f"{self.worker_s / self.pages:.2f}"


def fresh_home(root: Path, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    home = root / f"home-{name}"
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, SOHOA_HOME=str(home), OMP_THREAD_LIMIT="1", **(extra or {}))
    subprocess.run([SOHOA, "init"], env=env, check=True, capture_output=True)
    return env


def run_sohoa(batch: Batch, root: Path, name: str, workers: int) -> Measure:
    env = fresh_home(root, name)
    t0 = time.perf_counter()
    proc = subprocess.run([SOHOA, "bulk", "run", str(batch.source), "--manifest", str(batch.manifest),
                           "--workers", str(workers), "--plain", "--no-quality-review"],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    stored, worker_s = _stored_pages(env)
    return Measure(name, batch.pages, wall, worker_s, f"exit {proc.returncode}, {stored} pages stored")


def run_celery(batch: Batch, root: Path, workers: int = 2) -> Measure:
    port = _free_port()
    redis_dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", str(redis_dir / "pid"), "--dir", str(redis_dir)], check=True)
    env = fresh_home(root, "celery", {"SOHOA_BROKER_URL": f"redis://127.0.0.1:{port}/0"})
    procs = []
    try:
        t0 = time.perf_counter()
        for i in range(workers):
            procs.append(subprocess.Popen([SOHOA, "worker", "-c", "1", "--name", f"bench{i}@%h"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        proc = subprocess.run([SOHOA, "bulk", "run", str(batch.source), "--manifest", str(batch.manifest),
                               "--engine", "celery", "--plain", "--no-quality-review"],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        subprocess.run(["kill", (redis_dir / "pid").read_text().strip()], check=False)
    stored, worker_s = _stored_pages(env)
    return Measure(f"celery x{workers}", batch.pages, wall, worker_s,
                   f"exit {proc.returncode}, {stored} pages stored (wall incl. worker start-up)")


def run_ocrmypdf(batch: Batch, root: Path, jobs: int = 2) -> Measure:
    pdf = root / "ocrmypdf-in.pdf"
    pdf.write_bytes(img2pdf.convert([str(p) for p in batch.images]))
    out = root / "ocrmypdf-out.pdf"
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    t0 = time.perf_counter()
    proc = subprocess.run(["ocrmypdf", "-j", str(jobs), "-l", "vie", "--output-type", "pdfa", "-q", str(pdf), str(out)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return Measure(f"ocrmypdf -j {jobs}", batch.pages, wall, None, f"exit {proc.returncode} (OCR + PDF/A only)")


def _stored_pages(env: dict[str, str]) -> tuple[int, float]:
    """(pages stored, worker seconds spent on them) from the run's ledger."""
    with sqlite3.connect(Path(env["SOHOA_HOME"]) / "index.sqlite3") as db:
        pages, seconds = db.execute("SELECT coalesce(sum(page_count), 0), coalesce(sum(seconds), 0) "
                                    "FROM bulk_units WHERE state='stored'").fetchone()
    return int(pages), float(seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- kill -9 / resume loop ---------------------------------------------------------------------------------
@dataclass
class KillLoop:
    cycles: int
    kills: int
    window: tuple[float, float]
    documents: int
    stored: int
    lost: int
    duplicated: int
    wall_s: float


def kill_resume_loop(batch: Batch, root: Path, cycles: int, workers: int, window: tuple[float, float],
                     seed: int = 11) -> KillLoop:
    """Start the run, kill -9 its whole process group after a random time in ``window``, resume, again,
    until it was killed ``cycles`` times (or finished first: the batch was too small, the report
    says so); then let it finish and count documents lost and records/versions duplicated,
    reading the index and the object store directly."""
    rng = random.Random(seed)
    env = fresh_home(root, "killloop")
    t0 = time.perf_counter()
    run_id, kills = None, 0
    while kills < cycles:
        args = (["bulk", "resume", run_id] if run_id else
                ["bulk", "run", str(batch.source), "--manifest", str(batch.manifest)])
        proc = subprocess.Popen([SOHOA, *args, "--workers", str(workers), "--plain", "--no-quality-review"]
                                if not run_id else [SOHOA, *args, "--workers", str(workers), "--plain"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(*window))
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        run_id = run_id or _run_id(env)
        if finished:
            break
    if run_id is None:
        raise RuntimeError("the run never got as far as creating its ledger entry")
    subprocess.run([SOHOA, "bulk", "resume", run_id, "--workers", str(workers), "--plain"], env=env,
                   capture_output=True, check=False)
    lost, duplicated, stored = _reconcile(env, run_id, batch.documents)
    return KillLoop(cycles, kills, window, batch.documents, stored, lost, duplicated, time.perf_counter() - t0)


def _run_id(env: dict[str, str]) -> str | None:
    path = Path(env["SOHOA_HOME"]) / "index.sqlite3"
    try:
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT id FROM bulk_runs ORDER BY created_at LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _reconcile(env: dict[str, str], run_id: str, documents: int) -> tuple[int, int, int]:
    home = Path(env["SOHOA_HOME"])
    with sqlite3.connect(home / "index.sqlite3") as db:
        stored = [r[0] for r in db.execute(
            "SELECT record_uri FROM bulk_units WHERE run_id=? AND state='stored'", (run_id,))]
        versions = Counter(r[0] for r in db.execute(
            "SELECT r.uri FROM versions v JOIN records r ON r.id = v.record_id"))
    manifests = Counter(p.parent.name for p in (home / "store" / "objects").glob("records/*/v*.json"))
    lost = documents - len(set(stored) & set(versions))
    duplicated = (sum(n - 1 for n in versions.values()) + len(set(versions) - set(stored))
                  + sum(n - 1 for n in manifests.values()) + len(set(manifests) - set(stored)))
    return lost, duplicated, len(stored)


# ---- report -------------------------------------------------------------------------------------------------
def render(batch: Batch, measures: list[Measure], loop: KillLoop | None, command: str) -> str:
    load = os.getloadavg()
    lines = ["# Bulk benchmark", "", f"Command: `{command}`", "",
             f"Machine: {os.cpu_count()} cores, load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
             f"batch: {batch.pages} content pages in {batch.documents} documents (JPEG/PNG loose scans and "
             "TIFF box files with separator sheets, 200/300 dpi).", "",
             "| configuration | pages | wall s | pages/min | worker s/page | note |", "|---|---:|---:|---:|---:|---|"]
    for m in measures:
        lines.append(f"| {m.name} | {m.pages} | {m.wall_s:.1f} | {m.pages_per_min:.1f} | {m.worker_per_page} | {m.note} |")
    by = {m.name: m for m in measures}
    lines.append("")
    if "sohoa local x1" in by and "sohoa local x2" in by:
        lines.append(f"- 1 -> 2 local workers: x{by['sohoa local x2'].pages_per_min / by['sohoa local x1'].pages_per_min:.2f} (target >= 1.8)")
    ocr = next((m for m in measures if m.name.startswith("ocrmypdf")), None)
    if ocr and "sohoa local x2" in by:
        lines.append(f"- sohoa (2 workers, full pipeline) vs OCRmyPDF -j 2 (OCR + PDF/A): "
                     f"x{by['sohoa local x2'].pages_per_min / ocr.pages_per_min:.2f} pages/min (target >= 1.3)")
    if loop:
        lines += ["", "## kill -9 / resume loop", "",
                  f"{loop.kills} kills of the whole process group, each after a random "
                  f"{loop.window[0]:g}-{loop.window[1]:g} s, each followed by `sohoa bulk resume`; then a "
                  f"final resume: {loop.documents} documents, {loop.stored} stored, **{loop.lost} lost, "
                  f"{loop.duplicated} duplicated** (index versions + object-store manifests vs ledger), "
                  f"{loop.wall_s:.0f} s in all."]
        if loop.kills < loop.cycles:
            lines.append(f"\n**The run finished after {loop.kills} of the {loop.cycles} kills asked for: "
                         f"raise --loop-pages.**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--cycles", type=int, default=20, help="kill -9/resume cycles (0: skip)")
    parser.add_argument("--loop-pages", type=int, default=400,
                        help="pages in the kill/resume batch (enough to outlast --cycles kills)")
    parser.add_argument("--kill-window", default="3,15", help="kill after a random number of seconds in MIN,MAX")
    parser.add_argument("--out", type=Path, help="write the Markdown results here")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs: {', '.join(sorted(unknown))}")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        batch = make_batch(root / "batch", args.pages)
        measures: list[Measure] = []
        for config in configs:
            print(f"bench.bulk: {config} ...", file=sys.stderr, flush=True)
            if config == "local1":
                measures.append(run_sohoa(batch, root, "sohoa local x1", 1))
            elif config == "local2":
                measures.append(run_sohoa(batch, root, "sohoa local x2", 2))
            elif config == "celery":
                measures.append(run_celery(batch, root))
            else:
                measures.append(run_ocrmypdf(batch, root))
        loop = None
        if args.cycles:
            print("bench.bulk: kill -9/resume loop ...", file=sys.stderr, flush=True)
            low, high = (float(x) for x in args.kill_window.split(","))
            loop = kill_resume_loop(make_batch(root / "loop", args.loop_pages, seed=3), root, args.cycles, 2,
                                    (low, high))
        text = render(batch, measures, loop, "python -m bench.bulk " + " ".join(argv if argv is not None else sys.argv[1:]))
        print(text)
        if args.out:
            args.out.write_text(text, "utf-8")
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

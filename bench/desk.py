"""Reception desk timings, measured through a real browser (headless Chromium) against `sohoa serve`.

    .venv/bin/python bench/desk.py [--runs 3] [--scans samples/giay_khai_sinh.jpg samples/quyet_dinh.jpg]

Two numbers per run, as the officer feels them:
  upload -> review    click "Gửi và nhận dạng" until the review form is on screen
                      (upload, scans written to disk, OCR of every page, page images)
  confirm -> receipt  click "Xác nhận, ký số và lưu vào kho" until the receipt PDF has downloaded
                      (convert to PDF/A, two PAdES signatures, store, fetch back, verify, receipt)
Targets (issue #10): upload->review <= 8 s for 2 pages on 2 cores; confirm->receipt <= 2 s.
A throw-away SOHOA_HOME is created (and removed) unless --home is given.

Wall-clock numbers depend on what else runs on the machine, so each interval also reports the CPU
seconds the server process and its children (Tesseract) used during it (``*_cpu_s``), and the run
records the load average: on an otherwise idle machine, with pages processed one after another,
the wall time approaches the CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OWNER = "079203012345"
TARGETS = {"upload_to_review_s": 8.0, "confirm_to_receipt_s": 2.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sohoa(env: dict, *args: str, stdin: str | None = None) -> None:
    subprocess.run([SOHOA, *args], env=env, input=stdin, text=True, check=True, cwd=ROOT,
                   capture_output=True, timeout=300)


def start_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([SOHOA, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                            cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    for _ in range(450):
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def one_run(page, base: str, scans: list[Path], downloads: Path, run: int,
            server_pid: int) -> dict[str, float]:
    page.goto(base + "/desk/new")
    page.fill("#owner_id", OWNER)
    page.set_input_files("#files", [str(p) for p in scans])
    t0, c0 = time.perf_counter(), cpu_seconds(server_pid)
    page.click("#submit")
    page.wait_for_selector("#review-form", timeout=300_000)
    upload_to_review = time.perf_counter() - t0
    upload_cpu = cpu_seconds(server_pid) - c0
    if page.locator("#doc_type").input_value() == "unknown":  # the officer picks the type (untimed)
        page.select_option("#doc_type", "giay_khai_sinh")
        page.click("#change-type")
        page.wait_for_selector("#review-form")
    t1, c1 = time.perf_counter(), cpu_seconds(server_pid)
    page.click("#confirm")
    page.wait_for_selector("#receipt-link", timeout=300_000)
    with page.expect_download() as download:
        page.click("#receipt-link")
    download.value.save_as(downloads / f"receipt-{run}.pdf")
    confirm_to_receipt = time.perf_counter() - t1
    confirm_cpu = cpu_seconds(server_pid) - c1
    return {"upload_to_review_s": round(upload_to_review, 2),
            "upload_to_review_cpu_s": round(upload_cpu, 2),
            "confirm_to_receipt_s": round(confirm_to_receipt, 2),
            "confirm_to_receipt_cpu_s": round(confirm_cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scans", type=Path, nargs="+",
                        default=[ROOT / "samples" / "giay_khai_sinh.jpg", ROOT / "samples" / "quyet_dinh.jpg"])
    parser.add_argument("--home", type=Path, help="reuse this SOHOA_HOME (default: a temporary one)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="sohoa-bench-desk-"))
    home = args.home or work / "home"
    env = dict(os.environ, SOHOA_HOME=str(home), OMP_THREAD_LIMIT="1")
    if not (home / "config.toml").exists():
        sohoa(env, "init")
    # a full name on a dev install: the officer gets a personal (development) signing key
    sohoa(env, "users", "add", "bench", "--role", "officer", "--full-name", "Nguyễn Thị Lan",
          "--password-stdin", "--replace", stdin="bench-password-1\n")
    load_before = os.getloadavg()
    port = free_port()
    server = start_server(env, port, work / "server.log")
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1366, "height": 768},
                                       accept_downloads=True).new_page()
            page.goto(base + "/login?next=/desk")
            page.fill("#username", "bench")
            page.fill("#password", "bench-password-1")
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/desk$"))
            for run in range(1, args.runs + 1):
                result = one_run(page, base, args.scans, work, run, server.pid)
                results.append(result)
                print(f"run {run}: {json.dumps(result)}", flush=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)
    summary = {"pages": len(args.scans), "runs": len(results), "cpus": os.cpu_count(),
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    for key, target in TARGETS.items():
        values = [r[key] for r in results]
        cpu = [r[key.removesuffix("_s") + "_cpu_s"] for r in results]
        summary[key] = {"median": round(statistics.median(values), 2), "min": min(values),
                        "max": max(values), "cpu_median": round(statistics.median(cpu), 2),
                        "target": target, "met": statistics.median(values) <= target}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

"""OCR benchmark: sohoa vs raw Tesseract vs OCRmyPDF, CER and time per page, in one run.

Pages come from directories of ``image + .gt.txt`` pairs (``--gt-dir``, repeatable; default: the
real smoke pages) and from a generated set: ``--docs`` documents of ``samples.generator`` x every
degradation kind of ``samples.degrade`` (``--kinds``). Each engine reads the same image file:

- ``tesseract``: ``tesseract <image> stdout -l vie`` (defaults: automatic layout, its own Otsu)
- ``ocrmypdf``: ``ocrmypdf -l vie --rotate-pages --deskew --clean --output-type pdfa`` then
  ``pdftotext`` (``--image-dpi`` only matters for files without resolution)
- ``sohoa``: ``ingest.load.load_file`` + ``ocr.preprocess.clean_page`` + ``ocr.recognize.recognize``
- ``sohoa_best``: the same with ``--tessdata-best`` models (tessdata_best int)
- ``tesseract_api``: the decoded image straight into the same in-process Tesseract engine sohoa
  uses, no clean-up: Tesseract's own cost without the ``tesseract`` command's start-up (~0.2 s of
  model loading per call), i.e. what sohoa's clean-up costs on top of the engine itself

All engines run one page at a time with ``OMP_THREAD_LIMIT=1`` (``--jobs 1`` for OCRmyPDF);
``--workers N`` reads N pages side by side (each page by every engine in turn, in one worker).
Time: wall seconds and CPU seconds (this process + children) per page. CER is on NFC text with
whitespace collapsed (``ocr.cer.cer``); CER-flex tolerates reading-order differences
(``ocr.cer.cer_flex``).

    .venv/bin/python -m bench.ocr --docs 3 --out /tmp/bench-ocr.md
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import multiprocessing
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench import SHARED_DATA, process_cpu_seconds
from ingest.load import load_file
from ocr.cer import cer, cer_flex
from ocr.preprocess import clean_page
from ocr.recognize import OcrOptions, recognize

REAL_PAGES = SHARED_DATA / "real_smoke" / "pages"
TESSDATA_BEST = SHARED_DATA / "tessdata_best"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
ENGINES = ("tesseract", "ocrmypdf", "sohoa", "sohoa_best", "tesseract_api")


@dataclass(frozen=True)
class BenchPage:
    kind: str  # degradation kind, or "real:<dir name>"
    path: Path
    truth: str
    dpi: int


@dataclass(frozen=True)
class Measurement:
    engine: str
    kind: str
    page: str
    cer: float
    cer_flex: float
    wall_s: float
    cpu_s: float


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def run_tesseract(page: BenchPage, workdir: Path) -> str:
    done = subprocess.run(["tesseract", str(page.path), "stdout", "-l", "vie"], capture_output=True,
                          env=_env(), check=True, timeout=600)
    return done.stdout.decode("utf-8", errors="replace")


def run_ocrmypdf(page: BenchPage, workdir: Path) -> str:
    out_pdf = workdir / f"{page.path.stem}.ocrmypdf.pdf"
    command = ["ocrmypdf", "-l", "vie", "--rotate-pages", "--deskew", "--clean", "--output-type", "pdfa",
               "--jobs", "1", "--image-dpi", str(page.dpi), "--quiet", str(page.path), str(out_pdf)]
    subprocess.run(command, capture_output=True, env=_env(), check=True, timeout=900)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(out_pdf), "-"], capture_output=True, check=True)
    return done.stdout.decode("utf-8", errors="replace")


def _sohoa_runner(options: OcrOptions) -> Callable[[BenchPage, Path], str]:
    def run(page: BenchPage, workdir: Path) -> str:
        texts = [recognize(clean_page(source), options).text for source in load_file(page.path)]
        return "\n\n".join(texts)

    return run


def run_tesseract_api(page: BenchPage, workdir: Path) -> str:
    from ocr.recognize import _run_tesseract, parse_tsv, words_to_text

    texts = []
    for source in load_file(page.path):
        height, width = source.image.shape[:2]
        tsv = _run_tesseract(source.image, source.dpi, OcrOptions(), page.path.name)
        texts.append(words_to_text(parse_tsv(tsv, 1.0, width, height)))
    return "\n\n".join(texts)


def measure(engine: str, runner: Callable[[BenchPage, Path], str], page: BenchPage, workdir: Path) -> Measurement:
    wall, cpu = time.perf_counter(), process_cpu_seconds()
    try:
        text = runner(page, workdir)
    except subprocess.CalledProcessError as exc:
        print(f"  {engine} failed on {page.path.name}: {exc.stderr[-300:]!r}", file=sys.stderr)
        text = ""
    wall, cpu = time.perf_counter() - wall, process_cpu_seconds() - cpu
    return Measurement(engine, page.kind, page.path.name, cer(page.truth, text), cer_flex(page.truth, text), wall, cpu)


# --------------------------------------------------------------------------- page sets


def pages_from_dir(directory: Path, limit: int | None = None) -> list[BenchPage]:
    pages = []
    for image in sorted(directory.iterdir()):
        truth = image.with_suffix(".gt.txt")
        if image.suffix.lower() not in IMAGE_SUFFIXES or not truth.exists():
            continue
        with Image.open(image) as im:
            dpi = int(round(float(im.info.get("dpi", (300, 300))[0]))) or 300
        pages.append(BenchPage(f"real:{directory.name}", image, truth.read_text(encoding="utf-8"), dpi))
    return pages[:limit] if limit else pages


def generated_pages(out_dir: Path, docs: int, kinds: list[str], seed: int) -> list[BenchPage]:
    """Render ``docs`` documents (distinct types) and degrade each one with every kind."""
    from samples.degrade import capture_seed, degrade
    from samples.generator import DOC_TYPES, render_document

    pages = []
    for number in range(docs):
        doc_type = DOC_TYPES[(seed + number) % len(DOC_TYPES)]
        plain = render_document(doc_type, seed + number)
        sealed = render_document(doc_type, seed + number, seal=True)
        for kind in kinds:
            source = sealed if kind == "red_seal" else plain
            image, dpi = degrade(source.image, kind, seed=capture_seed(doc_type, seed + number), dpi=source.dpi)
            rgb = image[:, :, ::-1] if image.ndim == 3 else image
            if kind == "phone_photo":  # a phone JPEG: 72 dpi in its metadata, like real cameras write
                path = out_dir / f"{doc_type}_{seed + number}_{kind}.jpg"
                Image.fromarray(rgb).save(path, quality=92, dpi=(72, 72))
                dpi = 72
            else:
                path = out_dir / f"{doc_type}_{seed + number}_{kind}.png"
                Image.fromarray(rgb).save(path, dpi=(dpi, dpi))
            path.with_suffix(".gt.txt").write_text(source.text, encoding="utf-8")
            pages.append(BenchPage(kind, path, source.text, dpi))
    return pages


# --------------------------------------------------------------------------- report


def summarize(results: list[Measurement], engines: list[str]) -> str:
    """Markdown table per kind; a kind only counts pages that every engine run on it has read."""
    by_kind = _by_kind(results)
    header = "| kind | pages | " + " | ".join(f"{e} CER / flex" for e in engines) + " | " + \
        " | ".join(f"{e} s/page (cpu)" for e in engines) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(engines))]
    from samples.degrade import KINDS

    order = {kind: i for i, kind in enumerate(KINDS)}
    for kind, per_engine in sorted(by_kind.items(), key=lambda item: (order.get(item[0], -1), item[0])):
        count = max(len(v) for v in per_engine.values())
        cers = [_fmt_cer(per_engine.get(e, [])) for e in engines]
        times = [_fmt_time(per_engine.get(e, [])) for e in engines]
        lines.append(f"| {kind} | {count} | " + " | ".join(cers) + " | " + " | ".join(times) + " |")
    return "\n".join(lines)


def _by_kind(results: list[Measurement]) -> dict[str, dict[str, list[Measurement]]]:
    """kind -> engine -> measurements, keeping only pages every engine run on the kind has read."""
    by_kind: dict[str, dict[str, list[Measurement]]] = defaultdict(lambda: defaultdict(list))
    engines_of_kind: dict[str, set[str]] = defaultdict(set)
    pages_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in results:
        engines_of_kind[m.kind].add(m.engine)
        pages_of[(m.kind, m.page)].add(m.engine)
    for m in results:
        if pages_of[(m.kind, m.page)] == engines_of_kind[m.kind]:
            by_kind[m.kind][m.engine].append(m)
    return by_kind


def targets(results: list[Measurement]) -> str:
    """Issue #3's targets checked on these measurements (CER-flex; CPU seconds per page)."""
    by_kind = _by_kind(results)

    def flex(kind: str, engine: str) -> float | None:
        items = by_kind.get(kind, {}).get(engine)
        return statistics.mean(m.cer_flex for m in items) if items else None

    lines = []
    compared = [k for k in by_kind if None not in (flex(k, "sohoa"), flex(k, "tesseract"))]
    worse = [k for k in compared if flex(k, "sohoa") > flex(k, "tesseract")]
    if compared:
        lines.append(f"- never worse than raw Tesseract (CER-flex, every kind): "
                     f"{'met' if not worse else '**missed** on ' + ', '.join(worse)}")
    for kind in ("bad_150", "rotated", "phone_photo"):
        ours, peer = flex(kind, "sohoa"), flex(kind, "ocrmypdf")
        if ours is not None and peer:
            change = ours / peer - 1
            lines.append(f"- {kind}: CER-flex {100 * ours:.2f}% vs OCRmyPDF {100 * peer:.2f}% ({100 * change:+.0f}%; "
                         f"target <= -30%: {'met' if change <= -0.30 else '**missed**'})")
    clean = flex("clean_300", "sohoa")
    if clean is not None:
        lines.append(f"- clean_300: CER-flex {100 * clean:.2f}% (target <= 2%: {'met' if clean <= 0.02 else '**missed**'})")
    generated = [k for k in by_kind if not k.startswith("real:")]

    def cpu(engine: str) -> float | None:
        items = [m.cpu_s for k in generated for m in by_kind[k].get(engine, [])]
        return statistics.mean(items) if items else None

    ours, raw, api, peer = cpu("sohoa"), cpu("tesseract"), cpu("tesseract_api"), cpu("ocrmypdf")
    if ours and raw:
        lines.append(f"- CPU per generated page: sohoa {ours:.2f} s vs `tesseract` {raw:.2f} s "
                     f"({100 * (ours / raw - 1):+.0f}%; target <= +25%: {'met' if ours <= 1.25 * raw else '**missed**'})"
                     + (f"; vs the same engine in-process without clean-up {api:.2f} s ({100 * (ours / api - 1):+.0f}%)"
                        if api else ""))
    if ours and peer:
        lines.append(f"- OCR throughput vs OCRmyPDF (CPU per page, OCR only, no PDF/A writing): {peer / ours:.1f}x")
    return "\n".join(lines)


def _fmt_cer(items: list[Measurement]) -> str:
    if not items:
        return "-"
    return f"{100 * statistics.mean(m.cer for m in items):.2f}% / {100 * statistics.mean(m.cer_flex for m in items):.2f}%"


def _fmt_time(items: list[Measurement]) -> str:
    if not items:
        return "-"
    return f"{statistics.mean(m.wall_s for m in items):.2f} ({statistics.mean(m.cpu_s for m in items):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt-dir", type=Path, action="append", help="directory of image + .gt.txt pairs")
    parser.add_argument("--docs", type=int, default=3, help="generated documents (x every kind); 0 = none")
    parser.add_argument("--kinds", default="", help="comma-separated degradation kinds (default: all)")
    parser.add_argument("--pages", type=int, default=None, help="at most N pages per set (quick runs)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--tessdata-best", type=Path, default=TESSDATA_BEST)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--keep", type=Path, default=None, help="keep generated pages in this directory")
    parser.add_argument("--no-gt-dir", action="store_true", help="generated pages only")
    parser.add_argument("--jsonl", type=Path, default=None, help="append every measurement to this file")
    parser.add_argument("--merge", type=Path, nargs="*", default=None,
                        help="only summarize measurements from these --jsonl files (parallel shards)")
    parser.add_argument("--workers", type=int, default=1, help="pages read side by side (processes)")
    args = parser.parse_args(argv)

    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; expected {ENGINES}")
    if args.merge is not None:
        results = [Measurement(**json.loads(line)) for path in args.merge
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return _report(results, engines, argv, args.out)
    from samples.degrade import KINDS

    kinds = [k for k in args.kinds.split(",") if k] or list(KINDS)
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as tmp:
        workdir = Path(tmp)
        gen_dir = args.keep or workdir / "generated"
        gen_dir.mkdir(parents=True, exist_ok=True)
        pages: list[BenchPage] = []
        for directory in [] if args.no_gt_dir else args.gt_dir or [REAL_PAGES]:
            if not directory.is_dir():
                parser.error(f"--gt-dir {directory} is not a directory")
            pages += pages_from_dir(directory, args.pages)
        if args.docs:
            generated = generated_pages(gen_dir, args.docs, kinds, args.seed)
            pages += generated[: args.pages] if args.pages else generated
        results: list[Measurement] = []
        task = functools.partial(_read_page, engines=tuple(engines), workdir=workdir, tessdata_best=args.tessdata_best)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=context,
                                 initializer=_single_threaded) as pool:
            for page, measured in zip(pages, pool.map(task, pages)):
                for m in measured:
                    results.append(m)
                    if args.jsonl:
                        with args.jsonl.open("a", encoding="utf-8") as sink:
                            sink.write(json.dumps(dataclasses.asdict(m), ensure_ascii=False) + "\n")
                    print(f"{page.kind:12} {page.path.name:45} {m.engine:13} CER {100 * m.cer:6.2f}% "
                          f"flex {100 * m.cer_flex:6.2f}% {m.wall_s:6.2f}s cpu {m.cpu_s:6.2f}s", flush=True)
    return _report(results, engines, argv, args.out)


def _single_threaded() -> None:
    import cv2

    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)  # one thread per page, like Tesseract with OMP_THREAD_LIMIT=1


def _read_page(page: BenchPage, engines: tuple[str, ...], workdir: Path, tessdata_best: Path) -> list[Measurement]:
    """Every engine on one page, in this worker process (each engine's CPU measured on its own)."""
    runners: dict[str, Callable[[BenchPage, Path], str]] = {
        "tesseract": run_tesseract,
        "ocrmypdf": run_ocrmypdf,
        "sohoa": _sohoa_runner(OcrOptions()),
        "sohoa_best": _sohoa_runner(OcrOptions(tessdata_dir=tessdata_best)),
        "tesseract_api": run_tesseract_api,
    }
    return [measure(engine, runners[engine], page, workdir) for engine in engines]


def _report(results: list[Measurement], engines: list[str], argv: list[str] | None, out: Path | None) -> int:
    table = summarize(results, [e for e in engines if any(m.engine == e for m in results)])
    command = "python -m bench.ocr " + " ".join(argv if argv is not None else sys.argv[1:])
    report = f"Command: `{command}`\n\n{table}\n\nTargets (issue #3):\n\n{targets(results)}\n"
    print(report)
    if out:
        out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

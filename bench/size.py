"""Size benchmark: bytes/page of sohoa's PDF/A data message vs OCRmyPDF's PDF/A, same scans.

Inputs: the real smoke scans (``/work/shared/data/real_smoke/original/*.tif|png``, 300 dpi,
bitonal/palette) and generated documents (``samples.generator`` x ``samples.degrade`` kinds,
saved as the JPEG q95 a desk scanner would deliver). For each input file:

- ``sohoa``: ``ingest.load.load_file`` -> ``ocr.preprocess.clean_page`` -> ``ocr.recognize`` ->
  ``converters.datamessage.build_data_message`` (PDF/A-3b with mark, QR, text layer, record);
  the archive image is encoded per ``converters.imaging`` (G4 for bitonal, JPEG q for the rest);
- ``ocrmypdf``: ``ocrmypdf -l vie --output-type pdfa`` (its defaults: optimize level 1);
- legibility: PSNR (dB) of the image embedded by sohoa, decoded, against the archive image it
  was made from (``inf`` = lossless), plus ``check_pdfa`` of our output.

    .venv/bin/python -m bench.size --docs 3 --kinds clean_300,scan_200,red_seal \\
        --out docs/benchmarks-convert.md
"""
from __future__ import annotations

import argparse
import io
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from bench import SHARED_DATA

REAL_SMOKE = SHARED_DATA / "real_smoke" / "original"
DOC_TYPES = ("giay_khai_sinh", "quyet_dinh", "xac_nhan_cu_tru", "giay_cn_dang_ky_doanh_nghiep")


@dataclass
class Row:
    name: str
    pages: int
    input_bytes: int
    sohoa_bytes: int
    ocrmypdf_bytes: int | None
    encodings: str
    psnr: float
    pdfa_ok: bool
    build_seconds: float

    @property
    def ratio(self) -> float | None:
        return self.sohoa_bytes / self.ocrmypdf_bytes if self.ocrmypdf_bytes else None


def _record(name: str, pages: int):
    from converters.record import ConversionInfo, StructuredRecord

    return StructuredRecord(
        uri=f"000.00.12.H29.bench.{name}", doc_type="unknown", doc_type_name="Văn bản",
        owner_ref="hmac-sha256:bench",
        conversion=ConversionInfo(
            statement="Văn bản này được chuyển đổi từ văn bản giấy sang thông điệp dữ liệu",
            converted_at=datetime(2026, 11, 25, 2, 15, 2, tzinfo=timezone.utc),
            agency_name="Uỷ ban nhân dân phường Bến Nghé", agency_code="000.00.12.H29",
            officer_name="Trần Thị Hoa", system_name="sohoa",
            lookup_url=f"https://sohoa.example.vn/tra-cuu/000.00.12.H29.bench.{name}"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _embedded_vs_archive(pdf: bytes, archives: list[np.ndarray]) -> float:
    """Worst page PSNR of the decoded embedded image against the archive image."""
    worst = math.inf
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for page, archive in zip(doc.pages, archives, strict=True):
            (image,) = page.images.values()
            decoded = np.asarray(pikepdf.PdfImage(image).as_pil_image().convert(
                "L" if archive.ndim == 2 else "RGB"))
            if decoded.ndim == 3:
                decoded = decoded[:, :, ::-1]
            if archive.ndim == 3 and np.array_equal(archive[:, :, 0], archive[:, :, 2]):
                archive = archive[:, :, 0]
                decoded = decoded[:, :, 0] if decoded.ndim == 3 else decoded
            worst = min(worst, _psnr(decoded, archive))
    return worst


def run_sohoa(path: Path, quality: int) -> tuple[bytes, list[np.ndarray], float]:
    from converters.datamessage import ConversionOptions, MessagePage, build_data_message
    from ingest.load import load_file
    from ocr.preprocess import clean_page
    from ocr.recognize import recognize

    pages = [clean_page(p) for p in load_file(path)]
    texts = [recognize(p) for p in pages]
    started = time.perf_counter()
    message = build_data_message(
        [MessagePage(p.archive_image, p.dpi, t, p.source, p.index) for p, t in zip(pages, texts)],
        _record(path.stem, len(pages)), ConversionOptions(image_quality=quality))
    seconds = time.perf_counter() - started
    return message.pdf, [p.archive_image for p in pages], seconds


def run_ocrmypdf(path: Path, work: Path) -> int | None:
    if shutil.which("ocrmypdf") is None:
        return None
    out = work / f"{path.stem}.ocrmypdf.pdf"
    result = subprocess.run(["ocrmypdf", "-q", "-l", "vie", "--output-type", "pdfa", "--jobs", "1",
                             str(path), str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"ocrmypdf failed on {path.name}: {result.stderr[-300:]}", file=sys.stderr)
        return None
    return out.stat().st_size


def generated_inputs(work: Path, docs: int, kinds: list[str]) -> list[Path]:
    from samples.degrade import degrade
    from samples.generator import render_document

    paths = []
    for number in range(docs):
        doc = render_document(DOC_TYPES[number % len(DOC_TYPES)], seed=number, seal=True)
        for kind in kinds:
            image, dpi = degrade(doc.image, kind, seed=number, dpi=doc.dpi)
            rgb = image[:, :, ::-1] if image.ndim == 3 else image
            path = work / f"{doc.doc_type}-{number}-{kind}.jpg"
            Image.fromarray(np.ascontiguousarray(rgb)).save(path, quality=95, dpi=(dpi, dpi))
            paths.append(path)
    return paths


def measure(paths: list[Path], work: Path, quality: int) -> list[Row]:
    from converters.pdfa_check import check_pdfa
    from converters.datamessage import read_embedded_record

    rows = []
    for path in paths:
        pdf, archives, seconds = run_sohoa(path, quality)
        record = read_embedded_record(pdf)
        rows.append(Row(
            name=path.name, pages=len(archives), input_bytes=path.stat().st_size,
            sohoa_bytes=len(pdf), ocrmypdf_bytes=run_ocrmypdf(path, work),
            encodings=",".join(sorted({p.image_encoding for p in record.pages})),
            psnr=_embedded_vs_archive(pdf, archives), pdfa_ok=check_pdfa(pdf).ok,
            build_seconds=seconds))
        print(f"{path.name}: sohoa {len(pdf)} B, ocrmypdf {rows[-1].ocrmypdf_bytes} B", file=sys.stderr)
    return rows


def _kb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1024:.0f}"


def report(rows: list[Row], command: str, quality: int) -> str:
    lines = [
        "# Size benchmark: sohoa data message vs OCRmyPDF (PDF/A)",
        "",
        f"Command: `{command}`  ",
        f"JPEG quality {quality}; generated inputs are JPEG q95 at their scan dpi; sohoa's bytes",
        "include the mark, QR, text layer, signature band, embedded record and sRGB profile.",
        "",
        "| input | pages | input KB | sohoa KB/page | OCRmyPDF KB/page | sohoa/OCRmyPDF | encoding |"
        " PSNR dB | PDF/A ok | build s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        omp = None if r.ocrmypdf_bytes is None else r.ocrmypdf_bytes / r.pages
        lines.append(f"| {r.name} | {r.pages} | {_kb(r.input_bytes)} | {_kb(r.sohoa_bytes / r.pages)}"
                     f" | {_kb(omp)} | {ratio} | {r.encodings} | {r.psnr:.1f} | {r.pdfa_ok} |"
                     f" {r.build_seconds:.2f} |")
    ratios = [r.ratio for r in rows if r.ratio is not None]
    pages = sum(r.pages for r in rows)
    lines += ["", f"Total: sohoa {_kb(sum(r.sohoa_bytes for r in rows) / pages)} KB/page"]
    compared = [r for r in rows if r.ocrmypdf_bytes]
    if compared:
        ours = sum(r.sohoa_bytes for r in compared) / sum(r.pages for r in compared)
        theirs = sum(r.ocrmypdf_bytes or 0 for r in compared) / sum(r.pages for r in compared)
        lines[-1] += (f", OCRmyPDF {_kb(theirs)} KB/page on the same {len(compared)} files "
                      f"(ratio {ours / theirs:.2f}; median per file {statistics.median(ratios):.2f}).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=REAL_SMOKE, help="directory of real scans")
    parser.add_argument("--docs", type=int, default=2, help="generated documents")
    parser.add_argument("--kinds", default="clean_300,scan_200,red_seal",
                        help="samples.degrade kinds, comma-separated")
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = sorted(p for p in args.real.glob("*") if p.suffix.lower() in (".tif", ".tiff", ".png"))
        paths += generated_inputs(work, args.docs, [k for k in args.kinds.split(",") if k])
        rows = measure(paths, work, args.quality)
    command = "python -m bench.size " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(rows, command, args.quality)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

"""Signing and verification throughput: sohoa's batch signer vs pyHanko's plain default path.

    .venv/bin/python -m bench.sign [--docs 40] [--pages 2] [--out docs/benchmarks-sign.md]

Same PDFs (reportlab, ``--pages`` pages each, all distinct) for every path; one dev PKI (RSA-2048,
agency certificate); the dev TSA/OCSP/CRL server runs in a SEPARATE process, as a real TSA would,
so its work is not charged to the signer.

Paths, all visible signatures in the same top-right box:

- ``plain``: per document ``SimpleSigner.load_pkcs12(...)`` + ``signers.sign_pdf(...)`` with the
  default stamp, a dry-run signature to size the placeholder, and (B-T) a new
  ``HTTPTimeStamper``: what a script written from pyHanko's documentation does.
- ``sohoa``: ``open_signer(spec)`` once (key parsed once, reserved size measured once, pooled TSA
  connection, pre-subset Vietnamese font), then ``PdfSigner.sign(...)`` per document with a
  two-line Vietnamese appearance.

"Per core" rates are documents / process CPU seconds of the signing process (the machine is
shared, so wall-clock rates are printed too but CPU time is the stable figure). Verification:
``verify_pdf`` on the sohoa B-B and B-T outputs (revocation "soft": the OCSP answer is fetched
from the dev server for each document).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from signing.devserver import serve_dev_pki
from signing.pki import DevPki, init_dev_pki, load_dev_pki
from signing.signer import SignerSpec, open_signer
from signing.verify import verify_pdf

AGENCY = "Uỷ ban nhân dân phường Bến Nghé"
BOX = (339.0, 770.0, 559.0, 820.0)


@dataclass
class Rate:
    name: str
    docs: int
    cpu: float
    wall: float

    @property
    def per_core(self) -> float:
        return self.docs / self.cpu if self.cpu else float("inf")

    @property
    def per_wall(self) -> float:
        return self.docs / self.wall if self.wall else float("inf")


def make_pdfs(count: int, pages: int) -> list[bytes]:
    out = []
    for index in range(count):
        buf = io.BytesIO()
        page_canvas = canvas.Canvas(buf, pagesize=A4)
        for page in range(pages):
            page_canvas.drawString(72, 600, f"Document {index} page {page + 1}: residence confirmation")
            page_canvas.drawString(72, 580, "x" * (index % 50))
            page_canvas.showPage()
        page_canvas.save()
        out.append(buf.getvalue())
    return out


def timed(name: str, docs: list[bytes], fn: Callable[[int, bytes], object]) -> Rate:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for index, pdf in enumerate(docs):
        fn(index, pdf)
    return Rate(name, len(docs), time.process_time() - cpu0, time.perf_counter() - wall0)


def plain_sign(pki: DevPki, pdf: bytes, tsa_url: str | None) -> bytes:
    signer = signers.SimpleSigner.load_pkcs12(str(pki.agency_p12), passphrase=pki.passphrase.encode())
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        signers.PdfSignatureMetadata(field_name="Sig_Agency", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
        timestamper=timestamps.HTTPTimeStamper(tsa_url) if tsa_url else None,
        new_field_spec=fields.SigFieldSpec("Sig_Agency", on_page=0, box=BOX),  # type: ignore[arg-type]
        output=out,
    )
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(directory: str, port: int) -> None:
    serve_dev_pki(load_dev_pki(Path(directory)), port=port).serve_forever()


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("dev PKI server did not start")


def run(docs: int, pages: int) -> tuple[list[Rate], list[Rate], dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="sohoa-bench-sign-"))
    port = _free_port()
    pki = init_dev_pki(work / "pki", agency_name=AGENCY, officer_name="Nguyễn Thị Lan",
                       base_url=f"http://127.0.0.1:{port}")
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(str(pki.directory), port), daemon=True
    )
    server.start()
    try:
        _wait_for(port)
        tsa_url = pki.tsa_url
        pdfs = make_pdfs(docs, pages)
        lines = [f"Ký bởi: {AGENCY}", "Thời gian: 2026-11-23T09:15:02+07:00"]
        setup0 = time.perf_counter()
        signer = open_signer(SignerSpec(path=str(pki.agency_p12), passphrase=pki.passphrase))
        setup = {"open_signer (once)": time.perf_counter() - setup0}
        warm = pdfs[0]  # first call per level measures the signature size; not counted
        signer.sign(warm, field_name="Sig_Agency", box=BOX, lines=lines)
        signer.sign(warm, field_name="Sig_Agency", box=BOX, lines=lines, level="B-T", timestamp_url=tsa_url)
        plain_sign(pki, warm, tsa_url)

        outputs: dict[str, list[bytes]] = {"B-B": [], "B-T": []}
        signing = [
            timed("plain B-B", pdfs, lambda i, pdf: plain_sign(pki, pdf, None)),
            timed("sohoa B-B", pdfs, lambda i, pdf: outputs["B-B"].append(
                signer.sign(pdf, field_name="Sig_Agency", box=BOX, lines=lines))),
            timed("plain B-T", pdfs, lambda i, pdf: plain_sign(pki, pdf, tsa_url)),
            timed("sohoa B-T", pdfs, lambda i, pdf: outputs["B-T"].append(
                signer.sign(pdf, field_name="Sig_Agency", box=BOX, lines=lines, level="B-T",
                            timestamp_url=tsa_url))),
        ]
        signer.close()
        root = pki.root_pem()

        def check(_: int, pdf: bytes) -> None:
            if not verify_pdf(pdf, [root]).passed:
                raise RuntimeError("a benchmark signature did not verify")

        verifying = [
            timed("verify B-B (soft revocation)", outputs["B-B"], check),
            timed("verify B-T (soft revocation)", outputs["B-T"], check),
        ]
        return signing, verifying, setup
    finally:
        server.terminate()
        server.join(5)


def report(signing: list[Rate], verifying: list[Rate], setup: dict[str, float], docs: int,
           pages: int) -> str:
    by_name = {r.name: r for r in signing}
    rows = ["| path | docs | CPU s | docs/s per core (CPU) | docs/s wall | speed-up vs plain (CPU) |",
            "|---|---:|---:|---:|---:|---:|"]
    for rate in signing:
        level = rate.name.split()[-1]
        base = by_name[f"plain {level}"]
        rows.append(f"| {rate.name} | {rate.docs} | {rate.cpu:.2f} | {rate.per_core:.1f} | "
                    f"{rate.per_wall:.1f} | {base.cpu / rate.cpu:.1f}x |")
    rows += ["", "| verification | docs | CPU s | docs/s per core (CPU) | docs/s wall |",
             "|---|---:|---:|---:|---:|"]
    for rate in verifying:
        rows.append(f"| {rate.name} | {rate.docs} | {rate.cpu:.2f} | {rate.per_core:.1f} | "
                    f"{rate.per_wall:.1f} |")
    rows += ["", *(f"- {k}: {v * 1000:.0f} ms" for k, v in setup.items())]
    head = (f"{docs} distinct {pages}-page PDFs, RSA-2048 (RSASSA-PSS for sohoa, PKCS#1 v1.5 for "
            f"plain), Python {platform.python_version()}, {platform.machine()}")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    signing, verifying, setup = run(args.docs, args.pages)
    text = report(signing, verifying, setup, args.docs, args.pages)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

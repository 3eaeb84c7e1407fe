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
shared, so wall-clock rates are printed too but CPU time is the stable figure).

Verification of the sohoa B-B and B-T outputs, every path checking revocation online (soft-fail)
against the dev OCSP responder, every document required to pass:

- ``plain``: pyHanko's documented validation snippet per document, ``ValidationContext(
  trust_roots=[root], allow_fetching=True)`` + ``validate_pdf_signature(sig, vc)``;
- ``sohoa verify_pdf``: one ``verify_pdf`` call per document (EU DSS verdicts, AdES validation
  with time for B-T, difference analysis), nothing shared between calls;
- ``sohoa Verifier``: one :class:`signing.verify.Verifier` for the batch (the path of
  ``sohoa verify A.pdf B.pdf ...``): trust roots, event loop and OCSP/CRL answers shared under
  the default freshness policy (an answer is reused at most 5 minutes after its thisUpdate and
  never past its nextUpdate);
- ``sohoa Verifier, no reuse``: the same with ``FreshnessPolicy(max_age=0)`` (every document
  asks the responder again), to show what the parsing speed-ups alone give.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datetime import timedelta

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from signing.devserver import serve_dev_pki
from signing.pki import DevPki, dev_softhsm_token, init_dev_pki, load_dev_pki, softhsm_available
from signing.revinfo import FreshnessPolicy
from signing.signer import SignerSpec, open_signer
from signing.verify import Verifier, verify_pdf

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


def plain_verify(root_cert: object, pdf: bytes) -> bool:
    """pyHanko's documented validation snippet, with online revocation checking."""
    vc = ValidationContext(trust_roots=[root_cert], allow_fetching=True)
    reader = PdfFileReader(io.BytesIO(pdf))
    return all(validate_pdf_signature(sig, vc).bottom_line for sig in reader.embedded_signatures)


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


def run(docs: int, pages: int) -> tuple[list[Rate], list[Rate], list[str]]:
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
        pkcs11_rates, pkcs11_notes = measure_pkcs11(pki, pdfs, lines, work / "softhsm")
        signing += pkcs11_rates
        verifying, notes = measure_verification(pki, outputs)
        notes[:0] = [f"{k}: {v * 1000:.0f} ms" for k, v in setup.items()] + pkcs11_notes
        return signing, verifying, notes
    finally:
        server.terminate()
        server.join(5)
        shutil.rmtree(work, ignore_errors=True)


def measure_pkcs11(pki: DevPki, pdfs: list[bytes], lines: list[str],
                   directory: Path) -> tuple[list[Rate], list[str]]:
    """B-B with the agency key in a SoftHSM2 token: pyHanko's ``PKCS11Signer`` (session and
    signer opened once, ``signers.sign_pdf`` per document) vs ``open_signer(kind="pkcs11")``."""
    if not softhsm_available():
        return [], ["PKCS#11: SoftHSM2/pkcs11-tool not installed, rows skipped"]
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign import pkcs11

    token = dev_softhsm_token(pki, pki.agency_p12, directory)
    os.environ.update(token.environ())
    # one logged-in session per process at a time (PKCS#11): the two paths run one after the other
    session = pkcs11.open_pkcs11_session(token.module, token_criteria=TokenCriteria(label=token.label),
                                         user_pin=token.pin)
    try:
        plain = pkcs11.PKCS11Signer(session, key_label=token.key_label, cert_label=token.key_label)

        def plain_pkcs11(pdf: bytes) -> bytes:
            out = io.BytesIO()
            signers.sign_pdf(
                IncrementalPdfFileWriter(io.BytesIO(pdf)),
                signers.PdfSignatureMetadata(field_name="Sig_Agency",
                                             subfilter=fields.SigSeedSubFilter.PADES),
                signer=plain,
                new_field_spec=fields.SigFieldSpec("Sig_Agency", on_page=0, box=BOX),  # type: ignore[arg-type]
                output=out,
            )
            return out.getvalue()

        plain_pkcs11(pdfs[0])
        rates = [timed("plain B-B PKCS#11", pdfs, lambda i, pdf: plain_pkcs11(pdf))]
    finally:
        session.close()
    spec = SignerSpec(kind="pkcs11", pkcs11_module=token.module, token_label=token.label,
                      pin=token.pin, key_label=token.key_label)
    with open_signer(spec) as signer:
        signer.sign(pdfs[0], field_name="Sig_Agency", box=BOX, lines=lines)  # sizes the reservation
        rates.append(timed("sohoa B-B PKCS#11", pdfs, lambda i, pdf: signer.sign(
            pdf, field_name="Sig_Agency", box=BOX, lines=lines)))
    return rates, ["PKCS#11: SoftHSM2 token, RSA-2048; plain = one pyHanko PKCS11Signer session "
                   "reused for every document (a stronger baseline than the per-document PKCS#12 "
                   "load above)"]


def measure_verification(pki: DevPki, outputs: dict[str, list[bytes]]) -> tuple[list[Rate], list[str]]:
    """Every verification path over the same signed documents (each must pass)."""
    root_pem = pki.root_pem()
    root_cert = load_cert_from_pemder(str(pki.directory / "root.pem"))

    def require(ok: bool) -> None:
        if not ok:
            raise RuntimeError("a benchmark signature did not verify")

    rates: list[Rate] = []
    notes: list[str] = []
    for level in ("B-B", "B-T"):
        docs = outputs[level]
        require(plain_verify(root_cert, docs[0]))  # warm-up (imports, first connections)
        rates.append(timed(f"plain {level}", docs, lambda i, pdf: require(plain_verify(root_cert, pdf))))
        require(verify_pdf(docs[0], [root_pem]).passed)
        rates.append(timed(f"sohoa verify_pdf {level}", docs,
                           lambda i, pdf: require(verify_pdf(pdf, [root_pem]).passed)))
        for label, policy in (("Verifier", FreshnessPolicy()),
                              ("Verifier, no reuse", FreshnessPolicy(max_age=timedelta(0)))):
            with Verifier([root_pem], freshness=policy) as verifier:
                require(verifier.verify(docs[0]).passed)
                rates.append(timed(f"sohoa {label} {level}", docs,
                                   lambda i, pdf: require(verifier.verify(pdf).passed)))
                counts = verifier.backend.stats
                notes.append(f"{label} {level}: OCSP answers reused {counts['ocsp_hits']}, "
                             f"fetched {counts['ocsp_misses']} (including the warm-up document)")
    return rates, notes


def _table(rates: list[Rate], first_column: str) -> list[str]:
    """Markdown rows; the speed-up is against the ``plain`` row of the same group (last word of
    the name: the level, or the key source)."""
    plain = {r.name.split()[-1]: r for r in rates if r.name.startswith("plain ")}
    rows = [f"| {first_column} | docs | CPU s | docs/s per core (CPU) | docs/s wall | "
            "speed-up vs plain (CPU) |", "|---|---:|---:|---:|---:|---:|"]
    for rate in rates:
        base = plain[rate.name.split()[-1]]
        rows.append(f"| {rate.name} | {rate.docs} | {rate.cpu:.2f} | {rate.per_core:.1f} | "
                    f"{rate.per_wall:.1f} | {base.cpu / rate.cpu:.1f}x |")
    return rows


def report(signing: list[Rate], verifying: list[Rate], notes: list[str], docs: int,
           pages: int) -> str:
    rows = [*_table(signing, "signing"), "", *_table(verifying, "verification"), "",
            *(f"- {note}" for note in notes)]
    head = (f"{docs} distinct {pages}-page PDFs, RSA-2048 (RSASSA-PSS for sohoa, PKCS#1 v1.5 for "
            f"plain), Python {platform.python_version()}, {platform.machine()}")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    signing, verifying, notes = run(args.docs, args.pages)
    text = report(signing, verifying, notes, args.docs, args.pages)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``sohoa``: the command line of the whole product.

Stable contract (scripts and other tools rely on it): the commands, their ``--json`` output shapes
and the exit codes below.
"""
from __future__ import annotations

import json
import secrets
import sys
import time
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ingest.settings import Settings, SetupError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="sohoa — số hoá: paper to legally valid data messages (Decree 137/2024/ND-CP).")
out = Console()
err = Console(stderr=True)


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # e.g. verification did not pass, some documents failed
    USAGE = 2  # Typer/Click usage errors
    BAD_INPUT = 3  # corrupt/unsupported/empty file, invalid owner ID, unknown type
    NOT_FOUND = 4  # unknown record URI / version
    UNAVAILABLE = 5  # storage or database unreachable: retry later
    SETUP = 6  # SOHOA_HOME not initialized or incomplete


def fail(message: str, code: Exit) -> typer.Exit:
    err.print(f"[bold red]sohoa: error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def settings_or_exit() -> Settings:
    settings = load_settings()
    if not settings.is_initialized():
        raise fail(f"{settings.home} is not initialized: run `sohoa init` first", Exit.SETUP)
    return settings


def mask_id(owner_id: str) -> str:
    """Show enough of an ID for an officer to recognise it, never the whole number."""
    return owner_id[:3] + "*" * max(0, len(owner_id) - 6) + owner_id[-3:] if len(owner_id) > 6 else "***"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


# ---- init -----------------------------------------------------------------------------------
@app.command()
def init(
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing if already initialized.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-create config and development PKI.")] = False,
    agency_name: Annotated[Optional[str], typer.Option(help="Full name of the converting agency.")] = None,
    agency_code: Annotated[Optional[str], typer.Option(help="Agency e-ID code (Decision 20/2020/QĐ-TTg).")] = None,
    officer: Annotated[Optional[str], typer.Option(help="Full name of the scanning officer.")] = None,
) -> None:
    """Create SOHOA_HOME: config, server secret, development PKI (NOT for production), index, objects."""
    from ingest.pipeline import repository_config
    from repository import Repository
    from signing.pki import init_dev_pki

    settings = load_settings(agency_name=agency_name, agency_code=agency_code, officer_name=officer)
    if settings.is_initialized() and not force:
        if if_missing:
            out.print(f"sohoa: {settings.home} already initialized")
            return
        raise fail(f"{settings.home} is already initialized (use --force to re-create)", Exit.SETUP)
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    settings.objects_dir.mkdir(exist_ok=True)
    config = {"agency_name": settings.agency_name, "agency_code": settings.agency_code,
              "officer_name": settings.officer_name, "store": settings.store}
    settings.config_path.write_text(
        "# sohoa configuration (env SOHOA_<NAME> overrides any key)\n"
        + "".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items()), "utf-8")
    if not settings.secret_path.exists() or force:
        settings.secret_path.write_text(secrets.token_hex(32) + "\n")
        settings.secret_path.chmod(0o600)
    pki = init_dev_pki(settings.pki_dir, agency_name=settings.agency_name,
                       officer_name=settings.officer_name, base_url=settings.pki_base_url)
    settings = load_settings()
    Repository.open(repository_config(settings)).close()
    out.print(f"sohoa: initialized {home}")
    out.print(f"  config:   {settings.config_path}")
    out.print(f"  index:    {settings.database_url}")
    out.print(f"  objects:  {settings.objects_dir if settings.store == 'local' else settings.s3_endpoint}")
    out.print(f"  dev PKI:  {pki.directory} [bold yellow](development only — NOT for production)[/]")


# ---- ingest / get / verify / analyze ----------------------------------------------------------
def _input_files(paths: list[Path]):
    from ingest.pipeline import InputFile, PipelineError
    files, errors = [], []
    for p in paths:
        try:
            files.append(InputFile.from_path(p))
        except PipelineError as exc:
            errors.append(exc)
    return files, errors


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Scan files (JPEG/PNG/TIFF/BMP/WebP/PDF).")],
    owner: Annotated[str, typer.Option("--owner", help="Owner: 12-digit personal ID or 10/13-digit enterprise code.")],
    doc_type: Annotated[Optional[str], typer.Option("--type", help="Document type code (skips classification).")] = None,
    merge: Annotated[bool, typer.Option("--merge", help="All files are pages of ONE document.")] = False,
    dossier: Annotated[Optional[str], typer.Option("--dossier", help="Dossier code (mã hồ sơ).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per stored record on stdout.")] = False,
) -> None:
    """Digitize scans into signed data messages in the owner's repository (one record per file)."""
    from ingest.load import InputError
    from ingest.pipeline import DocumentInput, Pipeline, PipelineError
    from repository import StorageUnavailable

    settings = settings_or_exit()
    inputs, errors = _input_files(files)
    documents = [inputs] if merge and inputs else [[f] for f in inputs]
    pipeline = Pipeline(settings)
    worst = Exit.OK
    for e in errors:
        err.print(f"[bold red]sohoa: error:[/] {e}", highlight=False)
        worst = Exit.BAD_INPUT
    try:
        for doc_files in documents:
            name = doc_files[0].name if len(doc_files) == 1 else f"{doc_files[0].name} (+{len(doc_files) - 1})"
            try:
                result = pipeline.digitize(DocumentInput(files=doc_files, owner_id=owner,
                                                         doc_type=doc_type, dossier_code=dossier))
            except (InputError, PipelineError) as exc:
                err.print(f"[bold red]sohoa: error:[/] {exc}", highlight=False)
                worst = max(worst, Exit.BAD_INPUT)
                if getattr(exc, "name", "").startswith("--"):
                    break  # an option is wrong: the same for every file
                continue
            except StorageUnavailable as exc:
                raise fail(f"{name}: storage unavailable, nothing stored ({exc})", Exit.UNAVAILABLE)
            r = result.stored
            if as_json:
                print(json.dumps({"file": name, "uri": r.uri, "sha256": r.sha256,
                                  "doc_type": r.doc_type, "version": r.version, "size": r.size,
                                  "confidence": round(result.analysis.classification.confidence, 4),
                                  "pages": len(result.analysis.pages),
                                  "seconds": round(result.seconds, 3)}, ensure_ascii=False), flush=True)
            else:
                out.print(f"{name}: stored {r.uri} v{r.version} ({r.doc_type}, {result.seconds:.1f} s)")
    finally:
        pipeline.close()
    raise typer.Exit(int(worst))


@app.command()
def get(
    uri: Annotated[str, typer.Argument(help="Record URI.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the signed PDF.")],
    version: Annotated[Optional[int], typer.Option(help="A specific version (default: current).")] = None,
    record: Annotated[Optional[Path], typer.Option(help="Also write the structured record (JSON) here.")] = None,
) -> None:
    """Retrieve a stored record's signed PDF (integrity-checked on read)."""
    from ingest.pipeline import repository_config
    from repository import IntegrityFailure, RecordNotFound, Repository, StorageUnavailable

    settings = settings_or_exit()
    repo = Repository.open(repository_config(settings))
    try:
        got = repo.get(uri, version)
    except RecordNotFound:
        raise fail(f"{uri}: no such record" + (f" version {version}" if version else ""), Exit.NOT_FOUND)
    except IntegrityFailure as exc:
        raise fail(f"{uri}: stored object failed its integrity check ({exc})", Exit.FAILED)
    except StorageUnavailable as exc:
        raise fail(f"{uri}: storage unavailable ({exc})", Exit.UNAVAILABLE)
    finally:
        repo.close()
    output.write_bytes(got.pdf)
    if record:
        record.write_bytes(got.record_json)
    out.print(f"{uri} v{got.result.version} -> {output} ({got.result.size} bytes, sha256 {got.result.sha256[:16]}…)")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A signed PDF.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per signature on stdout.")] = False,
) -> None:
    """Verify every signature (integrity, trust, revocation, timestamps). Exit 0 only if all pass."""
    from converters.pdfa_check import check_pdfa
    from ingest.pipeline import trust_roots
    from signing.verify import verify_pdf

    settings = settings_or_exit()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file.name}: cannot read file ({exc.strerror})", Exit.BAD_INPUT)
    try:
        report = verify_pdf(data, trust_roots(settings))
    except Exception as exc:  # a file that is not a PDF at all
        raise fail(f"{file.name}: not a readable PDF ({exc})", Exit.BAD_INPUT)
    pdfa = check_pdfa(data)
    if as_json:
        for s in report.signatures:
            obj = s.model_dump(mode="json")
            obj["pdfa"] = {"ok": pdfa.ok, "problems": pdfa.problems}
            print(json.dumps(obj, ensure_ascii=False))
        if not report.signatures:
            print(json.dumps({"verdict": report.verdict, "sub_indication": "NO_SIGNATURE",
                              "message_vi": report.message_vi, "message_en": report.message_en},
                             ensure_ascii=False))
    else:
        for s in report.signatures:
            colour = "green" if s.verdict == "TOTAL_PASSED" else "red"
            out.print(f"[{colour}]{s.verdict}[/] {s.field}: {s.signer} ({s.level}, "
                      f"{s.signing_time.isoformat() if s.signing_time else 'no time'})"
                      + (f" [{s.sub_indication}]" if s.sub_indication else ""))
            out.print(f"    {s.message_vi}\n    {s.message_en}")
        out.print(f"PDF/A: {'OK' if pdfa.ok else 'problems: ' + '; '.join(pdfa.problems)}")
        out.print(f"[bold]{report.verdict}[/]: {report.message_vi} / {report.message_en}")
    raise typer.Exit(int(Exit.OK if report.passed else Exit.FAILED))


@app.command()
def analyze(
    files: Annotated[list[Path], typer.Argument(help="Scan files; each is one document.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines: one object per input file.")] = False,
    doc_type: Annotated[Optional[str], typer.Option("--type", help="Document type hint.")] = None,
) -> None:
    """OCR, classify and extract fields without storing anything."""
    from ingest.load import InputError
    from ingest.pipeline import InputFile, Pipeline, PipelineError

    pipeline = Pipeline(load_settings())
    worst = Exit.OK
    for path in files:
        t0 = time.perf_counter()
        try:
            analysis = pipeline.analyze_files([InputFile.from_path(path)], hint=doc_type)
        except (InputError, PipelineError) as exc:
            err.print(f"[bold red]sohoa: error:[/] {exc}", highlight=False)
            if as_json:
                print(json.dumps({"file": path.name, "error": {"code": exc.code, "message": str(exc)}},
                                 ensure_ascii=False), flush=True)
            worst = Exit.BAD_INPUT
            continue
        obj = {"file": path.name, "doc_type": analysis.classification.doc_type,
               "confidence": round(analysis.classification.confidence, 4),
               "fields": {k: v.value for k, v in analysis.fields.items()},
               "field_details": {k: {"value": v.value, "raw": v.raw, "confidence": round(v.confidence, 4),
                                     "valid": v.valid, "error": v.error}
                                 for k, v in analysis.fields.items()},
               "text": analysis.text, "pages": len(analysis.pages),
               "quality": [{"code": q.code, "severity": q.severity, "page": q.page,
                            "message_vi": q.message_vi, "message_en": q.message_en}
                           for q in analysis.quality],
               "seconds": round(time.perf_counter() - t0, 3)}
        if as_json:
            print(json.dumps(obj, ensure_ascii=False), flush=True)
        else:
            out.print(f"[bold]{path.name}[/]: {obj['doc_type']} ({obj['confidence']:.2f}), "
                      f"{obj['pages']} page(s), {obj['seconds']:.1f} s")
            for k, v in analysis.fields.items():
                flag = "" if v.valid else f"  [red]invalid: {v.error}[/]"
                out.print(f"  {k}: {v.value if v.valid else v.raw}{flag}")
            for q in analysis.quality:
                out.print(f"  [yellow]{q.message_vi}[/] ({q.message_en})")
    raise typer.Exit(int(worst))


# ---- demo -----------------------------------------------------------------------------------
DEMO_OWNER = "079203012345"  # a synthetic, structurally valid personal ID (HCMC, male, born 2003)


@app.command()
def demo(
    samples: Annotated[Path, typer.Option(help="Directory of sample scans.")] = Path("samples"),
) -> None:
    """Run the whole path over the sample scans, then fetch each record back and verify it."""
    from ingest.pipeline import DocumentInput, InputFile, Pipeline, trust_roots
    from signing.verify import verify_pdf

    settings = settings_or_exit()
    paths = sorted(p for p in samples.glob("*") if p.suffix.lower() in
                   {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf", ".bmp", ".webp"})
    if not paths:
        raise fail(f"no sample scans in {samples}", Exit.BAD_INPUT)
    table = Table(title=f"sohoa demo — {settings.agency_name}")
    for col in ("file", "detected type", "owner", "record URI", "signature", "seconds"):
        table.add_column(col)
    pipeline = Pipeline(settings)
    roots = trust_roots(settings)
    failures = 0
    try:
        for path in paths:
            t0 = time.perf_counter()
            result = pipeline.digitize(DocumentInput(files=[InputFile.from_path(path)],
                                                     owner_id=DEMO_OWNER))
            fetched = pipeline.repository.get(result.stored.uri)
            report = verify_pdf(fetched.pdf, roots)
            failures += not report.passed
            c = result.analysis.classification
            table.add_row(path.name, f"{c.doc_type} ({c.confidence:.2f})", mask_id(DEMO_OWNER),
                          result.stored.uri,
                          f"[green]{report.verdict}[/]" if report.passed else f"[red]{report.verdict}[/]",
                          f"{time.perf_counter() - t0:.1f}")
    finally:
        pipeline.close()
    out.print(table)
    out.print(f"Records retrieved back from the repository and verified: "
              f"{len(paths) - failures}/{len(paths)} passed.")
    raise typer.Exit(int(Exit.OK if failures == 0 else Exit.FAILED))


@app.command("convert-to-paper")
def convert_to_paper(
    file: Annotated[Path, typer.Argument(help="A data message (signed PDF/A from sohoa).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the printable PDF.")],
    printed_by: Annotated[Optional[str], typer.Option(help="Who makes the copy (default: the configured officer).")] = None,
) -> None:
    """Data message -> paper copy (LET 2023 Art. 12(2)): content + mark, lookup URI/QR, signature status."""
    from datetime import datetime, timezone

    from converters.datamessage import DataMessageError, read_embedded_record
    from converters.paper import PaperCopyInfo, to_paper_copy
    from ingest.pipeline import trust_roots
    from signing.verify import verify_pdf

    settings = settings_or_exit()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file.name}: cannot read file ({exc.strerror})", Exit.BAD_INPUT)
    try:
        record = read_embedded_record(data)
        report = verify_pdf(data, trust_roots(settings))
        paper = to_paper_copy(data, PaperCopyInfo(
            printed_at=datetime.now(timezone.utc), printed_by=printed_by or settings.officer_name,
            system_name=settings.system_name, system_owner=settings.agency_name,
            signature_status=report.message_vi, uri=record.uri,
            lookup_url=settings.lookup_base_url + record.uri))
    except DataMessageError as exc:
        raise fail(f"{file.name}: {exc}", Exit.BAD_INPUT)
    output.write_bytes(paper)
    out.print(f"{file.name} -> {output} ({len(paper)} bytes); signatures: {report.message_vi}")


@app.command("check-pdfa")
def check_pdfa_command(
    file: Annotated[Path, typer.Argument(help="A PDF claiming PDF/A-2b or 3b (signed or not).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """PDF/A self-check (pikepdf.pdfa + signature-aware checks). Exit 0 only if no problem."""
    from converters.pdfa_check import check_pdfa

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file.name}: cannot read file ({exc.strerror})", Exit.BAD_INPUT)
    report = check_pdfa(data)
    if as_json:
        print(json.dumps({"ok": report.ok, "part": report.part, "conformance": report.conformance,
                          "problems": report.problems, "notes": report.notes,
                          "signatures": report.signatures, "revisions": report.revisions},
                         ensure_ascii=False))
    else:
        out.print(report.summary(), highlight=False)
    raise typer.Exit(int(Exit.OK if report.ok else Exit.FAILED))


def main() -> None:
    import os

    from ingest.logs import setup_logging
    setup_logging(os.environ.get("SOHOA_LOG_LEVEL", "WARNING"))
    try:
        app()
    except SetupError as exc:
        err.print(f"[bold red]sohoa: error:[/] {exc}", highlight=False)
        sys.exit(int(Exit.SETUP))


if __name__ == "__main__":
    main()

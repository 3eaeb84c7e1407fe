"""``sohoa``: the command line of the whole product.

Stable contract (scripts and other tools rely on it): the commands, their ``--json`` output shapes
and the exit codes below.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.settings import Settings, SetupError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="sohoa — số hoá: paper to legally valid data messages (Decree 137/2024/ND-CP).")
# In a terminal Rich fits its width; into a log or a pipe, 80 columns would cut record URIs.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep stderr


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # e.g. verification did not pass, some documents failed
    USAGE = 2  # Typer/Click usage errors
    BAD_INPUT = 3  # corrupt/unsupported/empty file, invalid owner ID, unknown type
    NOT_FOUND = 4  # unknown record URI / version
    UNAVAILABLE = 5  # storage or database unreachable: retry later
    SETUP = 6  # SOHOA_HOME not initialized or incomplete


def report_error(exc: Exception) -> None:
    """One line naming the file and the reason, plus the stable code when the error has one."""
    code = getattr(exc, "code", None)
    text = f"{exc}" + (f" [{code}]" if code else "")
    err.print(f"[bold red]sohoa: error:[/] {escape(text)}", highlight=False)


def fail(message: str, code: Exit) -> typer.Exit:
    err.print(f"[bold red]sohoa: error:[/] {escape(message)}", highlight=False)
    return typer.Exit(int(code))


def settings_or_exit() -> Settings:
    settings = load_settings()
    if not settings.is_initialized():
        raise fail(f"{settings.home} is not initialized: run `sohoa init` first", Exit.SETUP)
    return settings


def read_input(file: Path) -> bytes:
    """The bytes of an input file, or a one-line error naming it (exit 3)."""
    try:
        return file.read_bytes()
    except OSError as exc:
        raise fail(f"{file.name}: cannot read file ({exc.strerror})", Exit.BAD_INPUT)


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
    from ingest.configs import repository_config
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
    officer_login: Annotated[Optional[str], typer.Option(
        "--officer", help="Sign personally as this desk user (default: the configured officer).")] = None,
) -> None:
    """Digitize scans into signed data messages in the owner's repository (one record per file)."""
    from ingest.load import InputError
    from ingest.pipeline import DocumentInput, Pipeline, PipelineError
    from repository import StorageUnavailable

    settings = settings_or_exit()
    inputs, errors = _input_files(files)
    documents = [inputs] if merge and inputs else [[f] for f in inputs]
    pipeline = Pipeline(settings)
    try:
        officer = _officer_or_exit(settings, pipeline, officer_login) if officer_login else None
    except BaseException:
        pipeline.close()
        raise
    worst = Exit.OK
    for e in errors:
        report_error(e)
        worst = Exit.BAD_INPUT
    try:
        for doc_files in documents:
            name = doc_files[0].name if len(doc_files) == 1 else f"{doc_files[0].name} (+{len(doc_files) - 1})"
            try:
                result = pipeline.digitize(DocumentInput(files=doc_files, owner_id=owner,
                                                         doc_type=doc_type, dossier_code=dossier,
                                                         officer=officer))
            except (InputError, PipelineError) as exc:
                report_error(exc)
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


def _officer_or_exit(settings: Settings, pipeline, login: str):
    """The desk user ``login`` as the signing officer, with their key loaded (exit 4 for an unknown
    user, 3 when they cannot sign personally, 5 when the database is down)."""
    from ingest.officers import OfficerKeyError, officer_for
    from repository import StorageUnavailable
    from repository.access import AccessStore
    from signing.signer import SigningError

    try:
        user = AccessStore(pipeline.repository.engine).get_user(login)
    except StorageUnavailable as exc:
        raise fail(f"database unavailable ({exc})", Exit.UNAVAILABLE)
    if user is None:
        raise fail(f"--officer: no desk user {login!r} (see `sohoa users list`)", Exit.NOT_FOUND)
    try:
        officer = officer_for(settings, user)
        pipeline.officer_signer(officer)  # open the key now: a refusal before any OCR
    except OfficerKeyError as exc:
        raise fail(f"--officer {login}: {exc.message} [{exc.code}]", Exit.BAD_INPUT)
    except SigningError as exc:
        raise fail(f"--officer {login}: the personal signing key cannot be used: {exc}", Exit.BAD_INPUT)
    return officer


@app.command()
def get(
    uri: Annotated[str, typer.Argument(help="Record URI.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the signed PDF.")],
    version: Annotated[Optional[int], typer.Option(help="A specific version (default: current).")] = None,
    record: Annotated[Optional[Path], typer.Option(help="Also write the structured record (JSON) here.")] = None,
) -> None:
    """Retrieve a stored record's signed PDF (integrity-checked on read)."""
    from ingest.configs import repository_config
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
    files: Annotated[list[Path], typer.Argument(help="One or more signed PDFs.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per signature on stdout.")] = False,
) -> None:
    """Verify every signature (integrity, trust, revocation, timestamps). Exit 0 only if all pass.

    Several files share one verifier (trust roots, OCSP/CRL answers reused while fresh)."""
    from converters.pdfa_check import check_pdfa
    from ingest.configs import trust_roots
    from signing.verify import TrustRootError, Verifier

    settings = settings_or_exit()
    worst = Exit.OK
    try:
        verifier = Verifier(trust_roots(settings))
    except (OSError, TrustRootError) as exc:
        raise fail(f"trust roots: {exc}", Exit.SETUP)
    with verifier:
        for file in files:
            try:
                data = read_input(file)
            except typer.Exit:  # read_input already printed the reason
                worst = Exit.BAD_INPUT
                continue
            try:
                report = verifier.verify(data)
            except Exception as exc:  # a file that is not a PDF at all
                fail(f"{file.name}: not a readable PDF ({exc})", Exit.BAD_INPUT)
                worst = Exit.BAD_INPUT
                continue
            if not report.passed and worst == Exit.OK:
                worst = Exit.FAILED
            pdfa = check_pdfa(data)
            if as_json:
                for s in report.signatures:
                    obj = s.model_dump(mode="json")
                    obj["pdfa"] = {"ok": pdfa.ok, "problems": pdfa.problems}
                    obj["file"] = file.name
                    print(json.dumps(obj, ensure_ascii=False), flush=True)
                if not report.signatures:
                    print(json.dumps({"verdict": report.verdict, "sub_indication": "NO_SIGNATURE",
                                      "message_vi": report.message_vi, "message_en": report.message_en,
                                      "file": file.name}, ensure_ascii=False), flush=True)
                continue
            if len(files) > 1:
                out.print(f"[bold]{escape(file.name)}[/]", highlight=False)
            for s in report.signatures:
                colour = "green" if s.verdict == "TOTAL_PASSED" else "red"
                out.print(f"[{colour}]{s.verdict}[/] {s.field}: {s.signer} ({s.level}, "
                          f"{s.signing_time.isoformat() if s.signing_time else 'no time'})"
                          + (f" [{s.sub_indication}]" if s.sub_indication else ""))
                out.print(f"    {s.message_vi}\n    {s.message_en}")
            out.print(f"PDF/A: {'OK' if pdfa.ok else 'problems: ' + '; '.join(pdfa.problems)}")
            out.print(f"[bold]{report.verdict}[/]: {report.message_vi} / {report.message_en}")
    raise typer.Exit(int(worst))


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
            report_error(exc)
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
    from ingest.configs import trust_roots
    from ingest.pipeline import DocumentInput, InputFile, Pipeline
    from signing.verify import Verifier

    settings = settings_or_exit()
    paths = sorted(p for p in samples.glob("*") if p.suffix.lower() in
                   {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf", ".bmp", ".webp"})
    if not paths:
        raise fail(f"no sample scans in {samples}", Exit.BAD_INPUT)
    table = Table(title=f"sohoa demo — {settings.agency_name}")
    for col in ("file", "detected type", "owner", "record URI", "signature", "seconds"):
        table.add_column(col, overflow="fold")  # a URI cut to "000.00.12…" cannot be copied
    pipeline = Pipeline(settings)
    verifier = Verifier(trust_roots(settings))
    failures = 0
    try:
        for path in paths:
            t0 = time.perf_counter()
            doc = DocumentInput(files=[InputFile.from_path(path)], owner_id=DEMO_OWNER)
            pages, analysis, times = pipeline.analyze_document(doc)
            pin = analysis.fields.get("so_dinh_danh")
            if pin is not None and pin.valid and pin.value:
                doc.owner_id = pin.value  # the citizen the document is about owns it
            result = pipeline.finalize(doc, pages, analysis, times)
            fetched = pipeline.repository.get(result.stored.uri)
            report = verifier.verify(fetched.pdf)
            failures += not report.passed
            c = result.analysis.classification
            table.add_row(path.name, f"{c.doc_type} ({c.confidence:.2f})", mask_id(doc.owner_id),
                          result.stored.uri,
                          f"[green]{report.verdict}[/]" if report.passed else f"[red]{report.verdict}[/]",
                          f"{time.perf_counter() - t0:.1f}")
    finally:
        pipeline.close()
        verifier.close()
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
    from ingest.configs import trust_roots
    from signing.verify import verify_pdf

    settings = settings_or_exit()
    data = read_input(file)
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

    data = read_input(file)
    report = check_pdfa(data)
    if as_json:
        print(json.dumps({"ok": report.ok, "part": report.part, "conformance": report.conformance,
                          "problems": report.problems, "notes": report.notes,
                          "signatures": report.signatures, "revisions": report.revisions},
                         ensure_ascii=False))
    else:
        out.print(report.summary(), highlight=False)
    raise typer.Exit(int(Exit.OK if report.ok else Exit.FAILED))


# ---- bulk back-digitization (docs/bulk.md) ------------------------------------------------------
bulk_app = typer.Typer(no_args_is_help=True, help="Resumable bulk runs over archive boxes (manifest + separator sheets).")
app.add_typer(bulk_app, name="bulk")
EngineOpt = Annotated[str, typer.Option("--engine", help="local (process pool) or celery (`sohoa worker`s).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-j", min=1, help="Local worker processes (default: CPU count).")]
PlainOpt = Annotated[Optional[bool], typer.Option("--plain/--rich", help="Plain log lines instead of a progress bar (default: plain when not a terminal).", show_default=False)]
ReportOpt = Annotated[Optional[Path], typer.Option("--report", help="Also write the per-unit CSV report here.")]


def _bulk_execute(settings: Settings, ledger, run_id: str, *, engine: str, workers: Optional[int],
                  plain: Optional[bool], report: Optional[Path], retry_failed: bool = False,
                  storage_retry: Optional[float] = None, quality_review: Optional[bool] = None) -> None:
    from dataclasses import replace as dc_replace

    from ingest.bulk import RunError, RunOptions, execute, write_report
    from ingest.bulk.progress import progress_for
    from repository import StorageUnavailable

    if engine not in ("local", "celery"):
        raise fail(f"--engine must be local or celery, got {engine!r}", Exit.USAGE)
    run = ledger.run(run_id)
    stored = {k: v for k, v in (run.options if run else {}).items() if k in RunOptions.__dataclass_fields__}
    options = dc_replace(RunOptions(**stored), engine=engine, workers=workers or settings.workers)
    if storage_retry is not None:
        options = dc_replace(options, storage_retry_s=storage_retry)
    if quality_review is not None:
        options = dc_replace(options, review_quality=quality_review)
    try:
        summary = execute(settings, ledger, run_id, options=options, progress=progress_for(err, run_id, plain),
                          retry_failed=retry_failed)
    except KeyboardInterrupt:
        raise fail(f"run {run_id} interrupted: `sohoa bulk resume {run_id}` continues it", Exit.FAILED)
    except RunError as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    except StorageUnavailable as exc:
        raise fail(f"run {run_id}: {exc}; `sohoa bulk resume {run_id}` continues it", Exit.UNAVAILABLE)
    _bulk_summary_table(run_id, summary)
    if report:
        write_report(ledger.units(run_id), report)
        out.print(f"report: {report}")
    if not summary.complete:
        raise fail(f"run {run_id} is not complete: `sohoa bulk resume {run_id}`", Exit.FAILED)
    raise typer.Exit(int(Exit.FAILED if summary.failed_units else Exit.OK))


def _bulk_summary_table(run_id: str, s) -> None:
    table = Table(title=f"bulk run {run_id}")
    for col in ("", "documents", "pages"):
        table.add_column(col, justify="right" if col else "left")
    for label, units, pages in (("stored", s.stored_units, s.stored_pages),
                                ("needs review", s.review_units, s.review_pages),
                                ("failed", s.failed_units, s.failed_pages),
                                ("skipped (separators, blanks, already stored)", s.skipped_units, s.skipped_pages),
                                ("not finished", s.open_units, s.open_pages),
                                ("total", s.units, s.pages)):
        table.add_row(label, str(units), str(pages))
    out.print(table)


def _bulk_ledger(settings: Settings):
    from ingest.ledger import Ledger
    from repository import StorageUnavailable
    try:
        return Ledger.open(settings.database_url)
    except StorageUnavailable as exc:
        raise fail(f"database unavailable ({exc})", Exit.UNAVAILABLE)


@bulk_app.command("run")
def bulk_run(
    source: Annotated[Path, typer.Argument(help="A folder tree of scans, or a text file listing scan paths.")],
    manifest: Annotated[Path, typer.Option("--manifest", "-m", help="CSV mapping files/folders to owner, type, dossier, box (docs/bulk.md).")],
    workers: WorkersOpt = None,
    engine: EngineOpt = "local",
    plain: PlainOpt = None,
    report: ReportOpt = None,
    storage_retry: Annotated[float, typer.Option(help="Seconds a unit waits out a storage outage before failing (resume retries it).")] = 120.0,
    quality_review: Annotated[bool, typer.Option("--quality-review/--no-quality-review", help="Send pages failing the quality gate to review instead of storing them.")] = True,
    officer_login: Annotated[Optional[str], typer.Option(
        "--officer", help="Sign personally as this desk user (default: the configured officer).")] = None,
) -> None:
    """Digitize a whole source: plan units, then store each document exactly once."""
    from ingest.bulk import RunOptions, create_run
    from ingest.bulk.plan import SourceError
    from ingest.manifest import ManifestError
    from ingest.pipeline import Pipeline

    settings = settings_or_exit()
    if officer_login:  # refuse before planning: the key must open here as in the workers
        check = Pipeline(settings)
        try:
            _officer_or_exit(settings, check, officer_login)
        finally:
            check.close()
    ledger = _bulk_ledger(settings)
    try:
        run_id = create_run(settings, ledger, source, manifest,
                            RunOptions(engine=engine, workers=workers or settings.workers,  # type: ignore[arg-type]
                                       storage_retry_s=storage_retry, review_quality=quality_review,
                                       officer=officer_login))
    except ManifestError as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    except SourceError as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    err.print(f"bulk run {run_id} (resume with: sohoa bulk resume {run_id})", highlight=False)
    try:
        _bulk_execute(settings, ledger, run_id, engine=engine, workers=workers, plain=plain, report=report)
    finally:
        ledger.close()


@bulk_app.command("resume")
def bulk_resume(
    run_id: Annotated[str, typer.Argument(help="Run ID (see `sohoa bulk status`).")],
    workers: WorkersOpt = None,
    engine: EngineOpt = "local",
    plain: PlainOpt = None,
    report: ReportOpt = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also retry failed and needs-review documents.")] = False,
) -> None:
    """Continue an interrupted run (after kill -9, outage...): nothing is stored twice."""
    settings = settings_or_exit()
    ledger = _bulk_ledger(settings)
    try:
        if ledger.run(run_id) is None:
            raise fail(f"no bulk run {run_id}", Exit.NOT_FOUND)
        _bulk_execute(settings, ledger, run_id, engine=engine, workers=workers, plain=plain, report=report,
                      retry_failed=retry_failed)
    finally:
        ledger.close()


@bulk_app.command("status")
def bulk_status(
    run_id: Annotated[Optional[str], typer.Argument(help="Run ID (default: list recent runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Where a run stands (documents and pages per state), or the list of recent runs."""
    from ingest.bulk.engine import current_summary

    settings = settings_or_exit()
    ledger = _bulk_ledger(settings)
    try:
        runs = [ledger.run(run_id)] if run_id else ledger.runs()
        if run_id and runs[0] is None:
            raise fail(f"no bulk run {run_id}", Exit.NOT_FOUND)
        if not runs and not as_json:
            out.print("no bulk runs yet")
        for run in runs:
            summary = current_summary(ledger, run.id)
            if as_json:
                print(json.dumps({"run": run.id, "state": run.state, "source": run.source,
                                  "created_at": str(run.created_at), **summary.as_dict()}, ensure_ascii=False))
            elif run_id:
                out.print(f"run {run.id}: {run.state}, source {run.source}")
                _bulk_summary_table(run.id, summary)
            else:
                out.print(f"{run.id}  {run.state:<11} {summary.done_pages}/{summary.pages} pages  "
                          f"stored {summary.stored_units}  review {summary.review_units}  "
                          f"failed {summary.failed_units}  {run.source}", highlight=False)
    finally:
        ledger.close()


@bulk_app.command("report")
def bulk_report(
    run_id: Annotated[str, typer.Argument(help="Run ID.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write (UTF-8 with BOM).")],
) -> None:
    """Per-document CSV: state, reason, source file + pages, box/file no., record URI."""
    from ingest.bulk import write_report

    settings = settings_or_exit()
    ledger = _bulk_ledger(settings)
    try:
        if ledger.run(run_id) is None:
            raise fail(f"no bulk run {run_id}", Exit.NOT_FOUND)
        units = ledger.units(run_id)
        write_report(units, output)
    finally:
        ledger.close()
    out.print(f"{output}: {len(units)} row(s)")


@bulk_app.command("separator")
def bulk_separator(
    output: Annotated[Path, typer.Option("-o", "--output", help="PDF to print.")],
    owner: Annotated[Optional[str], typer.Option("--owner", help="Owner ID of the documents after the sheet.")] = None,
    dossier: Annotated[Optional[str], typer.Option("--dossier", help="Dossier code.")] = None,
    doc_type: Annotated[Optional[str], typer.Option("--type", help="Document type code.")] = None,
    copies: Annotated[int, typer.Option(min=1, max=500, help="Number of identical sheets.")] = 1,
) -> None:
    """A printable QR separator sheet: put one in front of each document in the box."""
    from ingest.pipeline import PipelineError, owner_kind
    from ingest.separator import SeparatorInfo, separator_pdf
    from ocr.catalog import load_catalog

    if owner:
        try:
            owner_kind(owner)
        except PipelineError as exc:
            raise fail(exc.message, Exit.BAD_INPUT)
    if doc_type and doc_type not in load_catalog().known_codes:
        raise fail(f"unknown document type {doc_type!r}", Exit.BAD_INPUT)
    output.write_bytes(separator_pdf(SeparatorInfo(owner_id=owner, dossier_code=dossier, doc_type=doc_type),
                                     copies=copies))
    out.print(f"separator sheet -> {output}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Worker processes (one Tesseract thread each).")] = 1,
    broker: Annotated[Optional[str], typer.Option("--broker", help="Broker URL (default: $SOHOA_BROKER_URL or local Redis).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Worker node name (default: sohoa-PID@host).")] = None,
) -> None:
    """Run a Celery worker for bulk runs started with `--engine celery`."""

    settings_or_exit()
    os.environ["OMP_THREAD_LIMIT"] = "1"
    if broker:
        os.environ["SOHOA_BROKER_URL"] = broker
    from ingest.celery_app import app as celery_app
    celery_app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork",
                            "-n", name or f"sohoa-{os.getpid()}@%h", "--without-gossip", "--without-mingle"])


# ---- HTTP API, its clients and desk users, the audit log ---------------------------------------
@contextmanager
def _access_session(settings: Settings, *, not_found: str | None = None):
    """The repository (migrated) and its access store, closed afterwards. Known refusals end the
    command cleanly: an unknown user/client is exit 4 with ``not_found``, a refused request exit 3."""
    from ingest.configs import repository_config
    from repository import InvalidRequest, RecordNotFound, Repository
    from repository.access import AccessStore
    repo = Repository.open(repository_config(settings))
    try:
        yield repo, AccessStore(repo.engine)
    except RecordNotFound:
        if not_found is None:
            raise
        raise fail(not_found, Exit.NOT_FOUND)
    except InvalidRequest as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    finally:
        repo.close()


def _audit_cli_action(settings: Settings, repo, action: str, **fields) -> None:
    """Admin actions from the command line go into the same hash-chained audit log."""
    import getpass

    from api.app import audit_key_path
    from repository.audit import AuditEntry, AuditLog, load_or_create_service_key
    log = AuditLog(repo.engine)
    try:
        log.append([AuditEntry(actor=f"cli:{getpass.getuser()}", actor_kind="admin", action=action, **fields)])
        log.checkpoint(load_or_create_service_key(audit_key_path(settings)))
    finally:
        log.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (OpenAPI schema at /openapi.json, docs at /docs)."""
    import logging

    import uvicorn

    settings = settings_or_exit()
    with _access_session(settings) as (repo, access):
        interrupted = access.fail_unfinished_jobs()
    if interrupted:
        err.print(f"sohoa: {interrupted} job(s) left unfinished by the last run were marked failed (interrupted)")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(log_level.upper())
    os.environ.setdefault("SOHOA_API_GC_FREEZE", "true")  # a long-running server (see ApiOptions.gc_freeze)
    if workers == 1:
        from api.app import create_app
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None, log_level=log_level)
    else:
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_config=None, log_level=log_level)


users_app = typer.Typer(no_args_is_help=True, help="Reception-desk users (officer, supervisor, admin).")
app.add_typer(users_app, name="users")


FullNameOpt = Annotated[Optional[str], typer.Option(
    "--full-name", help="Full name, as printed in the personal signature, the conversion mark and the receipt.")]
SigningKeyOpt = Annotated[Optional[Path], typer.Option(
    "--signing-key", help="The user's personal PKCS#12 (.p12/.pfx): checked, then kept under SOHOA_HOME/officers, "
                          "encrypted with a key derived from the server secret.")]
KeyPassphraseOpt = Annotated[bool, typer.Option(
    "--key-passphrase-stdin", help="Read the PKCS#12 passphrase from stdin (after the password line, if any).")]
Pkcs11KeyOpt = Annotated[Optional[str], typer.Option(
    "--pkcs11-key", help="Label of the user's key on the PKCS#11 token (module and PIN: settings pkcs11_module, pkcs11_pin).")]
Pkcs11TokenOpt = Annotated[Optional[str], typer.Option("--pkcs11-token", help="Token label (default: the first token).")]
RemoteSignerOpt = Annotated[Optional[str], typer.Option(
    "--remote-signer", help="URL of a remote signing service holding the user's key (needs --signer-cert).")]
SignerCertOpt = Annotated[Optional[Path], typer.Option(
    "--signer-cert", help="The user's certificate chain (PEM/DER, signer first) for --remote-signer or --pkcs11-key.")]


def _read_secret_line(prompt: str, from_stdin: bool) -> str:
    return (sys.stdin.readline().rstrip("\r\n") if from_stdin
            else typer.prompt(prompt, hide_input=True, default="", show_default=False))


def _provision_signing_key(settings: Settings, name: str, *, role: str, full_name: str | None,
                           signing_key: Path | None, key_passphrase_stdin: bool, pkcs11_key: str | None,
                           pkcs11_token: str | None, remote_signer: str | None, signer_cert: Path | None,
                           issue_dev: bool):
    """The key reference for a user (``None``: none given and none to issue). A dev install issues
    a development certificate to officers/supervisors with a full name when no key is given."""
    from ingest.officers import (OfficerKeyError, dev_pki_in_use, import_pkcs12, issue_dev_key,
                                 pkcs11_key as pkcs11_reference, remote_key)

    sources = [x for x in (signing_key, pkcs11_key, remote_signer) if x]
    if len(sources) > 1:
        raise fail("give one key source: --signing-key, --pkcs11-key or --remote-signer", Exit.USAGE)
    if (signer_cert is not None) and not (pkcs11_key or remote_signer):
        raise fail("--signer-cert goes with --pkcs11-key or --remote-signer", Exit.USAGE)
    try:
        if signing_key is not None:
            data = read_input(signing_key)
            passphrase = _read_secret_line("PKCS#12 passphrase", key_passphrase_stdin)
            return import_pkcs12(settings, name, data, passphrase)
        if pkcs11_key:
            return pkcs11_reference(settings, name, key_label=pkcs11_key, token_label=pkcs11_token,
                                    cert_path=signer_cert)
        if remote_signer:
            if signer_cert is None:
                raise fail("--remote-signer needs --signer-cert (the user's certificate chain)", Exit.USAGE)
            return remote_key(settings, name, url=remote_signer, cert_path=signer_cert)
        if issue_dev and full_name and role in ("officer", "supervisor") and dev_pki_in_use(settings):
            return issue_dev_key(settings, name, full_name)
    except OfficerKeyError as exc:
        raise fail(f"{name}: signing key refused: {exc.message}", Exit.BAD_INPUT)
    return None


def _checked_full_name(full_name: str | None) -> str | None:
    from repository import InvalidRequest
    from repository.access import check_full_name

    try:
        return check_full_name(full_name) if full_name is not None else None
    except InvalidRequest as exc:
        raise fail(str(exc), Exit.BAD_INPUT)


def _store_user(reference, write):  # noqa: ANN001, ANN202 (KeyReference | None, () -> User)
    """``write()`` stores the user; a key provisioned for it is discarded if that fails."""
    try:
        return write()
    except BaseException:
        if reference is not None:
            reference.discard()
        raise


def _key_summary(user, reference, *, dev: bool) -> str:
    from ingest.officers import describe

    if reference is not None:
        note = " [bold yellow](development certificate — NOT for production)[/]" if dev else ""
        return f"personal signing key: {escape(describe(user))}{note}"
    if user.signing_kind:
        return f"personal signing key: {escape(describe(user))}"
    if user.role == "admin":
        return "no personal signing key (admins do not confirm documents)"
    return (f"[bold yellow]no {'full name' if not user.full_name else 'personal signing key'}[/]: {user.name} can "
            f"receive and review scans but cannot confirm (sign) documents until "
            f"`sohoa users key {user.name} --full-name ... --signing-key FILE.p12 | --pkcs11-key LABEL | "
            f"--remote-signer URL --signer-cert FILE`")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="officer | supervisor | admin")] = "officer",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Reset an existing user's role and password.")] = False,
    full_name: FullNameOpt = None,
    signing_key: SigningKeyOpt = None,
    key_passphrase_stdin: KeyPassphraseOpt = False,
    pkcs11_key: Pkcs11KeyOpt = None,
    pkcs11_token: Pkcs11TokenOpt = None,
    remote_signer: RemoteSignerOpt = None,
    signer_cert: SignerCertOpt = None,
    no_signing_key: Annotated[bool, typer.Option(
        "--no-signing-key", help="On a development install, do not issue a development certificate.")] = False,
) -> None:
    """Add a desk user (password stored as a salted scrypt hash) with their full name and personal
    signing key (Circular 01/2023/TT-VPCP Art. 8). On a development install, an officer or
    supervisor given a full name and no key gets a development certificate (CN = full name)."""
    from repository.access import MIN_PASSWORD_CHARS

    settings = settings_or_exit()
    full_name = _checked_full_name(full_name)
    password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    if len(password) < MIN_PASSWORD_CHARS:  # refused before any key is issued or stored
        raise fail(f"password must have at least {MIN_PASSWORD_CHARS} characters", Exit.BAD_INPUT)
    with _access_session(settings) as (repo, access):
        existing = access.get_user(name) if replace else None
        reference = _provision_signing_key(
            settings, name, role=role, full_name=full_name or (existing.full_name if existing else None),
            signing_key=signing_key, key_passphrase_stdin=key_passphrase_stdin, pkcs11_key=pkcs11_key,
            pkcs11_token=pkcs11_token, remote_signer=remote_signer, signer_cert=signer_cert,
            issue_dev=not no_signing_key and not (existing and existing.signing_kind))
        user = _store_user(reference, lambda: access.add_user(
            name, role, password, replace=replace, full_name=full_name,
            signing_kind=reference.kind if reference else None, signing_ref=reference.ref if reference else None))
        if reference is not None and existing is not None:
            _discard_replaced_key(settings, existing, user)
        _audit_cli_action(settings, repo, "user.add", details={
            "user": user.name, "role": user.role, "signing_key": user.signing_kind})
    out.print(f"user {user.name} ({user.role}) ready")
    out.print(_key_summary(user, reference, dev=reference is not None and not any(
        (signing_key, pkcs11_key, remote_signer))), highlight=False)


def _discard_replaced_key(settings: Settings, before, after) -> None:
    from ingest.officers import discard_files
    if before.signing_ref and before.signing_ref != after.signing_ref:
        discard_files(settings, before.signing_kind, before.signing_ref)


@users_app.command("key")
def users_key(
    name: Annotated[str, typer.Argument(help="Login name.")],
    full_name: FullNameOpt = None,
    signing_key: SigningKeyOpt = None,
    key_passphrase_stdin: KeyPassphraseOpt = False,
    pkcs11_key: Pkcs11KeyOpt = None,
    pkcs11_token: Pkcs11TokenOpt = None,
    remote_signer: RemoteSignerOpt = None,
    signer_cert: SignerCertOpt = None,
    dev: Annotated[bool, typer.Option("--dev", help="Issue a new development certificate (development install only).")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the user's personal signing key.")] = False,
) -> None:
    """Set, renew or remove a desk user's full name and personal signing key."""
    settings = settings_or_exit()
    given = [x for x in (signing_key, pkcs11_key, remote_signer, dev or None, remove or None) if x]
    if len(given) > 1:
        raise fail("give one of --signing-key, --pkcs11-key, --remote-signer, --dev, --remove", Exit.USAGE)
    if not given and full_name is None:
        raise fail("nothing to change: give --full-name and/or a key source (or --remove)", Exit.USAGE)
    full_name = _checked_full_name(full_name)
    with _access_session(settings, not_found=f"no user {name}") as (repo, access):
        before = access.get_user(name)
        if before is None:
            raise fail(f"no user {name}", Exit.NOT_FOUND)
        name_for_cert = full_name or before.full_name
        if dev and not name_for_cert:
            raise fail(f"{name} has no full name: give --full-name", Exit.USAGE)
        reference = None
        if not remove:
            reference = _provision_signing_key(
                settings, name, role=before.role, full_name=name_for_cert, signing_key=signing_key,
                key_passphrase_stdin=key_passphrase_stdin, pkcs11_key=pkcs11_key, pkcs11_token=pkcs11_token,
                remote_signer=remote_signer, signer_cert=signer_cert, issue_dev=dev)
            if dev and reference is None:
                raise fail("no development PKI in use here: give the user's own key", Exit.USAGE)
        kind, ref = ((None, None) if remove else (reference.kind, reference.ref) if reference is not None
                     else (before.signing_kind, before.signing_ref))
        user = _store_user(reference, lambda: access.set_user_signing(name, kind=kind, ref=ref, full_name=full_name))
        _discard_replaced_key(settings, before, user)  # the removed or renewed key's files
        _audit_cli_action(settings, repo, "user.key", details={
            "user": user.name, "signing_key": user.signing_kind, "removed": remove,
            "full_name_changed": full_name is not None and full_name != before.full_name})
    out.print(f"user {user.name}: {user.display_name}")
    out.print(_key_summary(user, reference, dev=dev), highlight=False)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per user, with full name and signing key.")] = False,
) -> None:
    """List desk users (login, role, state; --json adds the full name and personal signing key)."""
    from ingest.officers import key_facts

    settings = settings_or_exit()
    with _access_session(settings) as (repo, access):
        for u in access.list_users():
            state = "disabled" if u.disabled_at else "active"
            if as_json:
                print(json.dumps({"name": u.name, "role": u.role, "state": state, "full_name": u.full_name,
                                  "signing_key": key_facts(u)}, ensure_ascii=False))
            else:
                out.print(f"{u.name}\t{u.role}\t{state}", highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable a desk user and end their sessions."""
    settings = settings_or_exit()
    with _access_session(settings, not_found=f"no user {name}") as (repo, access):
        access.disable_user(name)
        _audit_cli_action(settings, repo, "user.disable", details={"user": name})
    out.print(f"user {name} disabled")


clients_app = typer.Typer(no_args_is_help=True, help="API clients (agency systems, citizens' apps, admin tools) and their keys.")
app.add_typer(clients_app, name="clients")


def _print_key(issued, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"client_id": issued.client.id, "kind": issued.client.kind, "key_id": issued.key_id,
                          "api_key": issued.secret}))
    else:
        out.print(f"client {issued.client.id} ({issued.client.kind}, {issued.client.name})")
        out.print(f"API key (shown once, store it now): {issued.secret}", highlight=False, soft_wrap=True)


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. the agency's system.")],
    kind: Annotated[str, typer.Option(help="agency | citizen | admin")] = "agency",
    agency_code: Annotated[Optional[str], typer.Option(help="The agency's e-ID code (kind agency).")] = None,
    owner: Annotated[Optional[str], typer.Option(help="The citizen's personal ID (kind citizen).")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Requests per second (default: server setting).")] = None,
    burst: Annotated[Optional[int], typer.Option(help="Token-bucket burst (default: server setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new key as JSON.")] = False,
) -> None:
    """Create a client and print its first API key (only its hash is stored)."""
    from repository.identity import canonical_id, normalize_owner_id

    settings = settings_or_exit()
    with _access_session(settings) as (repo, access):
        owner_key = None
        if owner is not None:
            normalize_owner_id("citizen" if len(canonical_id(owner)) == 12 else "organization", owner)
            owner_key = repo.owner_key(owner)
        issued = access.create_client(name, kind, agency_code=agency_code, owner_key=owner_key,
                                      rate_per_second=rate, burst=burst)
        _audit_cli_action(settings, repo, "client.create", agency_code=agency_code,
                          details={"client_id": issued.client.id, "kind": kind, "key_id": issued.key_id})
    _print_key(issued, as_json)


@clients_app.command("rotate")
def clients_rotate(
    client_id: Annotated[str, typer.Argument(help="Client id (c_…).")],
    grace_seconds: Annotated[int, typer.Option(min=0, help="Old keys keep working this long.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new key as JSON.")] = False,
) -> None:
    """Issue a new key for a client; its other keys stop working (after the grace period)."""
    from datetime import timedelta

    settings = settings_or_exit()
    with _access_session(settings, not_found=f"no active client {client_id}") as (repo, access):
        issued = access.rotate_client(client_id, grace=timedelta(seconds=grace_seconds))
        _audit_cli_action(settings, repo, "client.rotate",
                          details={"client_id": client_id, "key_id": issued.key_id, "grace_seconds": grace_seconds})
    _print_key(issued, as_json)


@clients_app.command("revoke")
def clients_revoke(client_id: Annotated[str, typer.Argument(help="Client id (c_…).")]) -> None:
    """Revoke a client and every key it has."""
    settings = settings_or_exit()
    with _access_session(settings, not_found=f"no client {client_id}") as (repo, access):
        access.revoke_client(client_id)
        _audit_cli_action(settings, repo, "client.revoke", details={"client_id": client_id})
    out.print(f"client {client_id} revoked")


@clients_app.command("list")
def clients_list(as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False) -> None:
    """List clients (never their keys)."""
    settings = settings_or_exit()
    with _access_session(settings) as (repo, access):
        clients = access.list_clients()
    for c in clients:
        state = "revoked" if c.revoked_at else f"{c.active_keys} key(s)"
        if as_json:
            print(json.dumps({"id": c.id, "name": c.name, "kind": c.kind, "agency_code": c.agency_code,
                              "owner_ref": c.owner_key, "active_keys": c.active_keys,
                              "revoked": c.revoked_at is not None}, ensure_ascii=False))
        else:
            out.print(f"{c.id}\t{c.kind}\t{c.agency_code or ''}\t{state}\t{c.name}")


audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False) -> None:
    """Re-check every entry's hash and link and every signed checkpoint. Exit 1 on any problem."""
    from dataclasses import asdict

    from api.app import audit_key_path
    from repository.audit import AuditLog, load_or_create_service_key

    settings = settings_or_exit()
    with _access_session(settings) as (repo, _):
        key = load_or_create_service_key(audit_key_path(settings))
        report = AuditLog(repo.engine).verify([key.public_key()])
    if as_json:
        print(json.dumps(asdict(report), ensure_ascii=False))
    else:
        for problem in report.problems:
            err.print(f"[bold red]audit:[/] {problem}", highlight=False)
        verdict = "[green]intact[/]" if report.ok else "[red]TAMPERED[/]"
        out.print(f"audit log {verdict}: {report.entries} entries, {report.checkpoints} signed checkpoint(s), "
                  f"{report.uncovered} entr{'y' if report.uncovered == 1 else 'ies'} after the last checkpoint")
    raise typer.Exit(int(Exit.OK if report.ok else Exit.FAILED))


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the current head of the audit log with the service key."""
    from api.app import audit_key_path
    from repository.audit import AuditLog, load_or_create_service_key

    settings = settings_or_exit()
    with _access_session(settings) as (repo, _):
        cp = AuditLog(repo.engine).checkpoint(load_or_create_service_key(audit_key_path(settings)))
    out.print(f"checkpoint at entry {cp.seq} ({cp.hash[:16]}…)" if cp else "nothing new to checkpoint")


def _open_repository(settings: Settings):
    """The repository for maintenance commands; a clean exit 5 when storage is unreachable."""
    from ingest.configs import repository_config
    from repository import Repository, StorageUnavailable

    try:
        return Repository.open(repository_config(settings))
    except StorageUnavailable as exc:
        raise fail(f"storage unavailable ({exc})", Exit.UNAVAILABLE)


def _parse_day(value: Optional[str], option: str):
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError:
        raise fail(f"{option}: expected a date like 2025-01-31, got {value!r}", Exit.BAD_INPUT)


@app.command()
def reconcile(as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False) -> None:
    """Compare stored objects with the index both ways. Exit 1 if anything is untracked or missing."""
    from dataclasses import asdict

    from repository import StorageUnavailable

    repo = _open_repository(settings_or_exit())
    try:
        report = repo.reconcile()
    except StorageUnavailable as exc:
        raise fail(f"storage unavailable ({exc})", Exit.UNAVAILABLE)
    finally:
        repo.close()
    if as_json:
        print(json.dumps({**asdict(report), "ok": report.ok}, ensure_ascii=False))
    else:
        for key in report.untracked:
            out.print(f"untracked (object without index row): {key}", highlight=False)
        for key in report.missing:
            out.print(f"[red]missing[/] (index row without object): {key}", highlight=False)
        out.print(f"{report.objects_seen} objects, {report.rows_seen} indexed: "
                  f"{len(report.untracked)} untracked, {len(report.missing)} missing")
    raise typer.Exit(int(Exit.OK if report.ok else Exit.FAILED))


@app.command()
def fixity(
    sample: Annotated[Optional[int], typer.Option("--sample", min=1, help="Check N random objects instead of all.")] = None,
    signatures: Annotated[bool, typer.Option("--signatures/--no-signatures",
                                             help="Also check that every stored PDF's signatures are intact.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Re-read and re-hash stored objects (and re-check PDF signatures). Exit 1 on any problem."""
    from dataclasses import asdict

    from repository import StorageUnavailable

    settings = settings_or_exit()
    check_pdf = verifier = None
    if signatures:
        from ingest.configs import trust_roots
        from signing.verify import Verifier

        verifier = Verifier(trust_roots(settings), revocation="off")  # one setup for the sweep

        def check_pdf(pdf: bytes) -> bool:
            report = verifier.verify(pdf)
            return bool(report.signatures) and all(s.intact for s in report.signatures)

    repo = _open_repository(settings)
    try:
        report = repo.fixity(sample=sample, check_pdf=check_pdf)
    except StorageUnavailable as exc:
        raise fail(f"storage unavailable ({exc})", Exit.UNAVAILABLE)
    finally:
        repo.close()
        if verifier is not None:
            verifier.close()
    if as_json:
        print(json.dumps({**asdict(report), "healthy": report.healthy}, ensure_ascii=False))
    else:
        for label, keys in (("changed", report.changed), ("missing", report.missing),
                            ("signature not intact", report.signature_failures), ("untracked", report.untracked)):
            for key in keys:
                out.print(f"[red]{label}[/]: {key}", highlight=False)
        out.print(f"{report.checked} object(s) checked, {report.ok} ok"
                  + ("" if report.healthy else " — [bold red]PROBLEMS FOUND[/]"))
    raise typer.Exit(int(Exit.OK if report.healthy else Exit.FAILED))


@app.command()
def search(
    query: Annotated[Optional[str], typer.Argument(help="Words to find (diacritics optional). Omit to list.")] = None,
    owner: Annotated[Optional[str], typer.Option("--owner", help="Owner's personal ID / enterprise code.")] = None,
    doc_type: Annotated[Optional[str], typer.Option("--type", help="Document type code.")] = None,
    agency: Annotated[Optional[str], typer.Option("--agency", help="Issuing agency (exact name).")] = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="Stored on/after this day (YYYY-MM-DD).")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Stored before this day (YYYY-MM-DD).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many results.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines: one object per record.")] = False,
) -> None:
    """Find records by owner, type, agency and date, and/or full text of their OCR text."""
    from repository import InvalidRequest, StorageUnavailable

    filters = dict(owner_id=owner, doc_type=doc_type, issuing_agency=agency,
                   date_from=_parse_day(date_from, "--from"), date_to=_parse_day(date_to, "--to"))
    repo = _open_repository(settings_or_exit())
    try:
        if query:
            results = [h.result for h in repo.search(query, limit=limit, **filters)]
        else:
            results = repo.list_records(limit=limit, **filters)
    except InvalidRequest as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    except StorageUnavailable as exc:
        raise fail(f"storage unavailable ({exc})", Exit.UNAVAILABLE)
    finally:
        repo.close()
    for r in results:
        if as_json:
            print(json.dumps({"uri": r.uri, "version": r.version, "doc_type": r.doc_type, "title": r.title,
                              "issuing_agency": r.issuing_agency, "created_at": r.created_at.isoformat(),
                              "sha256": r.sha256, "size": r.size, "status": r.status}, ensure_ascii=False))
        else:
            out.print(f"{r.uri}\tv{r.version}\t{r.created_at:%Y-%m-%d}\t{r.title or r.doc_type}", highlight=False)
    if not as_json:
        out.print(f"{len(results)} record(s)")


@app.command()
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to create for the BagIt package.")],
    uri: Annotated[Optional[str], typer.Option("--uri", help="Export this record.")] = None,
    owner: Annotated[Optional[str], typer.Option("--owner", help="Export all records of this owner.")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="Include superseded versions.")] = False,
) -> None:
    """Export a record or all of an owner's records as a BagIt package (checksummed, self-describing)."""
    from repository import IntegrityFailure, InvalidRequest, RecordNotFound, StorageUnavailable

    if (uri is None) == (owner is None):
        raise fail("give exactly one of --uri or --owner", Exit.BAD_INPUT)
    repo = _open_repository(settings_or_exit())
    try:
        bag = repo.export_bag(output, uri=uri, owner_id=owner, include_superseded=all_versions)
    except InvalidRequest as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    except RecordNotFound as exc:
        raise fail(f"{uri or mask_id(owner or '')}: {exc}", Exit.NOT_FOUND)
    except IntegrityFailure as exc:
        raise fail(f"a stored object failed its integrity check ({exc}); nothing exported", Exit.FAILED)
    except StorageUnavailable as exc:
        raise fail(f"storage unavailable ({exc})", Exit.UNAVAILABLE)
    finally:
        repo.close()
    files = sum(1 for p in (bag / "data").rglob("*") if p.is_file())
    out.print(f"exported {files} file(s) to {bag} (BagIt 1.0, SHA-256 manifests)")


# ---- pki: development PKI (NOT for production) ------------------------------------------------
pki_app = typer.Typer(no_args_is_help=True,
                      help="Development PKI (NOT for production): certificates, TSA, OCSP, CRL.")
app.add_typer(pki_app, name="pki")


@pki_app.command("init")
def pki_init(
    directory: Annotated[Optional[Path], typer.Option(help="Where to create it (default: SOHOA_HOME/pki).")] = None,
    agency_name: Annotated[Optional[str], typer.Option(help="Full name of the signing agency.")] = None,
    officer: Annotated[Optional[str], typer.Option(help="Full name of the scanning officer.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="URL the certificates point to for TSA/OCSP/CRL.")] = None,
    key_type: Annotated[str, typer.Option(help="rsa2048, rsa3072 or ec256.")] = "rsa2048",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dev PKI.")] = False,
) -> None:
    """Create a development PKI: root CA, agency, officer, TSA and OCSP certificates."""
    from signing.pki import init_dev_pki

    settings = load_settings(agency_name=agency_name, officer_name=officer)
    target = directory or settings.pki_dir
    if (target / "pki.json").exists() and not force:
        raise fail(f"{target} already holds a dev PKI (use --force to replace it)", Exit.SETUP)
    try:
        pki = init_dev_pki(target, agency_name=settings.agency_name, officer_name=settings.officer_name,
                           base_url=base_url or settings.pki_base_url, key_type=key_type)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc), Exit.BAD_INPUT)
    out.print(f"sohoa: dev PKI in {pki.directory} [bold yellow](NOT for production)[/]")
    out.print(f"  trust root: {pki.root_cert}")
    out.print(f"  agency:     {pki.agency_p12}\n  officer:    {pki.officer_p12}")
    out.print(f"  TSA/OCSP/CRL at {pki.base_url} (run `sohoa pki serve`)")


@pki_app.command("serve")
def pki_serve(
    directory: Annotated[Optional[Path], typer.Option(help="Dev PKI directory (default: SOHOA_HOME/pki).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="Port (default: the one in the PKI's base URL).")] = None,
) -> None:
    """Serve the dev PKI's RFC 3161 TSA, OCSP responder and CRL until interrupted."""
    from signing.devserver import port_of, serve_dev_pki
    from signing.pki import PkiError, load_dev_pki

    try:
        pki = load_dev_pki(directory or load_settings().pki_dir)
    except PkiError as exc:
        raise fail(str(exc), Exit.SETUP)
    try:
        handle = serve_dev_pki(pki, host=host, port=port if port is not None else port_of(pki.base_url))
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port or port_of(pki.base_url)}: {exc}", Exit.UNAVAILABLE)
    out.print(f"sohoa: dev PKI server (NOT for production) on {handle.base_url}")
    out.print(f"  TSA  {handle.tsa_url}\n  OCSP {handle.ocsp_url}\n  CRL  {handle.crl_url}")
    handle.serve_forever()


def _quiet_library_deprecations() -> None:
    """Library deprecation notices are for developers, not for an officer's terminal or a script
    reading stderr (one error, one line). ``python -W`` / ``PYTHONWARNINGS`` still show them."""
    if sys.warnoptions:
        return
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def main() -> None:

    from ingest.logs import setup_logging
    _quiet_library_deprecations()
    setup_logging(os.environ.get("SOHOA_LOG_LEVEL", "WARNING"))
    try:
        app()
    except SetupError as exc:
        err.print(f"[bold red]sohoa: error:[/] {exc}", highlight=False)
        sys.exit(int(Exit.SETUP))


if __name__ == "__main__":
    main()

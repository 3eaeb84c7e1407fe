"""The one task function of a bulk run: take a unit, digitize it, store it exactly once.

The same :func:`process_unit` runs in a local worker process and in a Celery worker. Each process
builds its :class:`WorkerContext` (pipeline with loaded keys, repository, ledger) once.

Exactly once, step by step (see ``ingest.ledger``):

1. claim the unit (conditional update, lease);
2. if the unit already has a record URI (an earlier attempt reached ``storing``, or an earlier run
   planned the same pages), ask the repository whether that record exists: if so, the unit is
   stored - just write that down;
3. load only the unit's pages, analyse them; low confidence or a failed quality gate -> ``review``;
4. write the URI to the ledger (``storing``), then convert, sign and store under that URI;
5. write ``stored``. A crash anywhere is repaired by step 2 on the next claim.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.ledger import (Ledger, RunRow, UnitRow, UnitState, with_db_retry, worker_identity)
from ingest.load import InputError, load_bytes
from ingest.officers import Officer, OfficerKeyError, officer_by_login
from ingest.pipeline import DocumentInput, InputFile, Pipeline, PipelineError, analyze
from ingest.separator import extract_pages
from ingest.settings import Settings, load_settings
from ocr.types import Analysis, SourcePage
from repository import InvalidRequest, RecordNotFound, StorageUnavailable
from repository.identity import OwnerIdCipher

log = logging.getLogger("sohoa.bulk")

# run options a worker reads (set by the coordinator when the run is created)
DEFAULT_STORAGE_RETRY_S = 120.0
REVIEW_QUALITY_CODES = frozenset({"too_blurry", "too_dark", "too_light", "page_cut_off", "low_resolution"})


@dataclass(frozen=True)
class UnitOutcome:
    unit_id: int
    state: str | None  # None: not claimed (final already, or held by a live worker)
    pages: int = 0
    reason_code: str | None = None
    seconds: float = 0.0


@dataclass
class WorkerContext:
    settings: Settings
    pipeline: Pipeline
    ledger: Ledger
    cipher: OwnerIdCipher
    runs: dict[str, RunRow] = field(default_factory=dict)
    officers: dict[str, Officer] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> "WorkerContext":
        return cls(settings=settings, pipeline=Pipeline(settings), ledger=Ledger.open(settings.database_url),
                   cipher=OwnerIdCipher(settings.owner_secret()))

    def run(self, run_id: str) -> RunRow:
        if run_id not in self.runs:
            row = with_db_retry(lambda: self.ledger.run(run_id), what="read run")
            if row is None:
                raise LookupError(f"no bulk run {run_id}")
            self.runs[run_id] = row
        return self.runs[run_id]

    def officer(self, login: str | None) -> Officer | None:
        """The run's signing officer (``--officer``), looked up once per process."""
        if login is None:
            return None
        if login not in self.officers:
            from repository.access import AccessStore
            try:
                self.officers[login] = officer_by_login(self.settings, AccessStore(self.pipeline.repository.engine),
                                                        login)
            except OfficerKeyError as exc:
                raise PipelineError("--officer", exc.code, exc.message) from None
        return self.officers[login]

    def close(self) -> None:
        self.pipeline.close()
        self.ledger.close()


_context: WorkerContext | None = None


def process_context() -> WorkerContext:
    """This process's context, built on first use from the environment's settings."""
    global _context
    if _context is None:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one Tesseract thread per worker process
        _context = WorkerContext.build(load_settings())
    return _context


CLAIM_LEASE_S = 600.0


def close_process_context() -> None:
    global _context
    if _context is not None:
        _context.close()
        _context = None


def lease_seconds(pages: int) -> float:
    return 120.0 + 40.0 * max(1, pages)


class _Lost(Exception):
    """The lease was taken over by someone else: stop without writing anything."""


def process_unit(ctx: WorkerContext, run_id: str, unit_id: int) -> UnitOutcome:
    """Digitize one unit of a run; safe to call again with the same arguments at any time."""
    me = worker_identity()
    t0 = time.perf_counter()
    before = with_db_retry(lambda: ctx.ledger.claim(unit_id, me, CLAIM_LEASE_S), what="claim unit")
    if before is None:
        return UnitOutcome(unit_id, None)
    run = ctx.run(run_id)
    ledger = ctx.ledger

    def finish(state: UnitState, **values: Any) -> UnitOutcome:
        values.setdefault("seconds", round(time.perf_counter() - t0, 3))
        with_db_retry(lambda: ledger.finish(unit_id, me, state, **values), what="finish unit")
        return UnitOutcome(unit_id, str(state), before.page_count, values.get("reason_code"), values["seconds"])

    try:
        if before.record_uri:
            existing = _stored_version(ctx, before.record_uri)
            if existing is not None:
                return finish(UnitState.STORED, record_uri=before.record_uri, version=existing,
                              reason_code=None, reason=None)
        copy = with_db_retry(lambda: ledger.stored_copy(before.unit_key, exclude_unit=unit_id), what="find copy")
        if copy is not None:
            return finish(UnitState.SKIPPED, record_uri=copy.record_uri, version=copy.version,
                          reason_code="already_stored", reason=f"same pages already stored by run {copy.run_id}")
        return _digitize(ctx, run, before, me, finish)
    except _Lost:
        log.warning("unit %s of run %s: lease lost, another worker continues", unit_id, run_id)
        return UnitOutcome(unit_id, None)
    except (InputError, PipelineError) as exc:
        return finish(UnitState.FAILED, reason_code=exc.code, reason=str(exc))
    except InvalidRequest as exc:
        return finish(UnitState.FAILED, reason_code="invalid_request", reason=str(exc))
    except StorageUnavailable as exc:
        return finish(UnitState.FAILED, reason_code="storage_unavailable", reason=str(exc))
    except Exception as exc:  # a bug or an unexpected library error: the run goes on, the unit says why
        log.exception("unit %s of run %s failed unexpectedly", unit_id, run_id)
        return finish(UnitState.FAILED, reason_code="internal_error", reason=f"{type(exc).__name__}: {exc}"[:500])


def _digitize(ctx: WorkerContext, run: RunRow, unit: UnitRow, me: str,
              finish: Callable[..., UnitOutcome]) -> UnitOutcome:
    s, ledger = ctx.settings, ctx.ledger
    owner_id = ctx.cipher.decrypt(unit.owner_sealed, unit.owner_ref) if unit.owner_sealed and unit.owner_ref else None
    if owner_id is None:
        raise PipelineError("unit", "no_owner", "the unit has no owner")
    base = Path(run.options["base"])
    files, pages = load_unit_pages(base, unit.sources)
    forced_type = unit.record_uri.rsplit(".", 2)[1] if unit.record_uri else None
    hint = forced_type or unit.doc_type_hint
    t_ocr = time.perf_counter()
    analysis = analyze(pages, ctx.pipeline.ocr_options(), hint, s.review_threshold)
    times = {"ocr": time.perf_counter() - t_ocr}
    if not with_db_retry(lambda: ledger.renew(unit.id, me, lease_seconds(unit.page_count)), what="renew lease"):
        raise _Lost()
    classification = analysis.classification
    if not forced_type:
        reasons = review_reasons(analysis, hinted=bool(unit.doc_type_hint),
                                 check_quality=bool(run.options.get("review_quality", True)))
        if reasons:
            return finish(UnitState.REVIEW, doc_type=classification.doc_type,
                          confidence=round(classification.confidence, 4), reason_code=reasons[0][0],
                          reason="; ".join(t for _, t in reasons))
    doc_type = hint or classification.doc_type
    uri = unit.record_uri or f"{s.agency_code}.{doc_type}.{unit.record_ulid}"
    confidence = round(classification.confidence, 4)
    if not with_db_retry(lambda: ledger.mark_storing(unit.id, me, uri, doc_type, confidence,
                                                     lease_seconds(unit.page_count)), what="mark storing"):
        raise _Lost()
    doc = DocumentInput(files=files, owner_id=owner_id, doc_type=doc_type, dossier_code=unit.dossier_code, uri=uri,
                        officer=ctx.officer(run.options.get("officer")))
    retry_s = float(run.options.get("storage_retry_s", DEFAULT_STORAGE_RETRY_S))
    result = store_with_retry(ctx, doc, pages, analysis, times, retry_s)
    return finish(UnitState.STORED, record_uri=result[0], version=result[1], doc_type=doc_type,
                  confidence=confidence, reason_code=None, reason=None)


def store_with_retry(ctx: WorkerContext, doc: DocumentInput, pages: list[SourcePage], analysis: Analysis,
                     times: dict[str, float], retry_s: float) -> tuple[str, int]:
    """Convert, sign and store; while storage is down, wait and try again (re-checking first
    whether the previous attempt reached the repository after all)."""
    if doc.uri is None:
        raise ValueError("store_with_retry needs the unit's record URI fixed in advance")
    start, delay = time.monotonic(), 1.0
    while True:
        try:
            stored = ctx.pipeline.finalize(doc, pages, analysis, times).stored
            return stored.uri, stored.version
        except StorageUnavailable:
            if time.monotonic() - start > retry_s:
                raise
            log.warning("storage unavailable; retrying in %.0f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            try:
                version = _stored_version(ctx, doc.uri)
            except StorageUnavailable:
                continue
            if version is not None:
                return doc.uri, version


def _stored_version(ctx: WorkerContext, uri: str) -> int | None:
    """The newest version of ``uri`` in the repository, or None when there is no such record."""
    try:
        versions = ctx.pipeline.repository.versions(uri)
    except RecordNotFound:
        return None
    return versions[-1].version if versions else None


def review_reasons(analysis: Analysis, *, hinted: bool, check_quality: bool) -> list[tuple[str, str]]:
    """Why a document should be looked at by a person before it is stored (empty: store it)."""
    reasons: list[tuple[str, str]] = []
    c = analysis.classification
    if not hinted and c.doc_type == "unknown":
        best = f" (best guess {c.candidates[0][0]} {c.candidates[0][1]:.2f})" if c.candidates else ""
        reasons.append(("low_confidence", f"document type not recognized{best}"))
    if check_quality:
        issues = [q for q in analysis.quality if q.code in REVIEW_QUALITY_CODES]
        if issues:
            listed = ", ".join(f"{q.code} (page {q.page + 1 if q.page is not None else '?'})" for q in issues)
            reasons.append(("quality", f"quality gate: {listed}"))
    if all(page.blank for page in analysis.pages):
        reasons.append(("blank", "every page is blank"))
    return reasons


def load_unit_pages(base: Path, sources: list[dict]) -> tuple[list[InputFile], list[SourcePage]]:
    """The unit's files (whole, for provenance hashes) and only its pages, decoded."""
    files: list[InputFile] = []
    pages: list[SourcePage] = []
    for source in sources:
        rel, indices = source["path"], list(source["pages"])
        name = Path(rel).name
        try:
            data = (base / rel).read_bytes()
        except OSError as exc:
            raise PipelineError(name, "unreadable", f"cannot read file ({exc.strerror})") from exc
        if hashlib.sha256(data).hexdigest() != source["sha256"]:
            raise PipelineError(name, "source_changed", "the file changed since the run was planned")
        loaded = load_bytes(extract_pages(data, name, indices), name)
        if len(loaded) != len(indices):
            raise PipelineError(name, "corrupt", f"{len(loaded)} of {len(indices)} pages could be decoded")
        for page, index in zip(loaded, indices):
            page.index = index
            page.source_sha256 = source["sha256"]
        files.append(InputFile(name, data))
        pages.extend(loaded)
    return files, pages

"""What the reception desk does, independent of HTTP: receive, analyze, review, confirm.

``DeskService`` owns the drafts store, a small pool of background threads that run OCR
(``Pipeline.analyze_document``) on received scans, and the confirmation step
(``Pipeline.finalize`` with the officer's page arrangement, type and field corrections: no
second OCR). On start it re-queues drafts a previous run left unfinished, so a restart loses
neither scans nor work.

Confirming signs with the personal key of the desk user who confirms (Circular 01/2023/TT-VPCP
Art. 8; ``ingest.officers``): their full name goes into the signature appearance, the conversion
mark and the receipt. A user without a usable personal key cannot confirm (``DeskError`` with
``no_signing_key``, ``signer_disabled``, ``signing_key_unusable`` or ``signing_failed``); the
draft stays as it was.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import cv2
import numpy as np

from api.desk.drafts import (Draft, DraftNotFound, DraftStore, Failure, Outcome, PageEdit,
                             now)
from api.desk.edits import (EditError, arrange, check_arrangement, check_value, default_pages,
                            display_value, with_document_page_numbers)
from api.desk.receipt import ReceiptInfo, build_receipt
from ingest.load import InputError, sniff_media_type
from ingest.configs import trust_roots
from ingest.officers import Officer, OfficerKeyError, officer_by_login
from ingest.pipeline import (DocumentInput, InputFile, Pipeline, PipelineError, load_pages,
                             owner_kind)
from ingest.settings import Settings
from ocr.catalog import UNKNOWN, load_catalog
from ocr.extract import extract_fields
from ocr.types import Analysis, FieldValue
from repository.access import AccessStore
from signing.signer import SignerSpec, SigningError
from signing.verify import TOTAL_PASSED, verify_pdf

log = logging.getLogger("sohoa.desk")

VIEW_LONG_SIDE = 1600  # px of the zoomable page view
THUMB_LONG_SIDE = 220
MAX_FILES = 50
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # per dossier


class DeskError(ValueError):
    """Something the officer can fix; ``code`` is an i18n key (``error.<code>``)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class FieldRow:
    """One field of the review form."""

    name: str
    value: str  # as shown in the input
    extracted: str | None
    confidence: float
    error: str | None  # i18n key suffix (field_error.<code>) or an extractor's English reason
    page: int | None  # position in the arranged document (0-based)
    box: tuple[float, float, float, float] | None  # left, top, width, height as % of the page


# ---- images ---------------------------------------------------------------------------------
def encode_jpeg(image: np.ndarray, long_side: int, quality: int = 80) -> bytes:
    height, width = image.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def mask_id(owner_id: str) -> str:
    """Enough of an ID for a person to recognise it; never the whole number."""
    if len(owner_id) <= 6:
        return "***"
    return owner_id[:3] + "*" * (len(owner_id) - 6) + owner_id[-3:]


def initial_value(fv: FieldValue) -> str:
    """What the form shows for an extracted field: the value, or what was read when invalid."""
    if fv.valid and fv.value:
        return display_value(fv.name, fv.value)
    return fv.raw or fv.value or ""


def read_but_invalid(fv: FieldValue) -> bool:
    """Something was read for the field but it failed validation (not merely "not found")."""
    return not fv.valid and bool(fv.raw or fv.value)


def review_reasons(analysis: Analysis, threshold: float) -> list[str]:
    """Why a document needs a careful look (i18n keys ``reason.<code>``)."""
    reasons = []
    c = analysis.classification
    if c.doc_type == UNKNOWN or c.confidence < threshold:
        reasons.append("low_confidence")
    if any(read_but_invalid(f) for f in analysis.fields.values()):
        reasons.append("invalid_fields")
    if any(q.severity == "error" for q in analysis.quality):
        reasons.append("quality")
    return reasons


# ---- the service -----------------------------------------------------------------------------
class DeskService:
    def __init__(self, settings: Settings, pipeline: Pipeline | None = None, *,
                 workers: int | None = None, max_files: int | None = None,
                 max_upload_bytes: int | None = None) -> None:
        self.settings = settings
        self.max_files = max_files or MAX_FILES
        self.max_upload_bytes = max_upload_bytes or MAX_UPLOAD_BYTES
        self.store = DraftStore(settings.home / "desk" / "drafts")
        self.pipeline = pipeline or Pipeline(settings)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers or settings.workers),
                                        thread_name_prefix="desk-ocr")
        self._finalize_lock = threading.Lock()
        self._warmed: set[SignerSpec] = set()  # officers' keys already loaded by _warm_officer
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._access: AccessStore | None = None
        self._closed = False

    # ---- lifecycle ---------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Open the repository and load the agency's key now, so the first confirm is quick
        (each officer's personal key is loaded when they receive their first scan)."""
        try:
            with self._finalize_lock:
                self.pipeline.repository
                self.pipeline.signer("agency")
        except Exception:  # the first confirm will report the real problem to the officer
            log.warning("desk: warm-up failed; confirming will retry", exc_info=True)

    def _warm_officer(self, login: str) -> None:
        if not self.settings.officer_signature:
            return
        try:
            officer = self.officer(login)
            if officer.spec in self._warmed:
                return  # loaded once: later uploads do not queue behind a running confirm for it
            with self._finalize_lock:
                self.pipeline.officer_signer(officer)
            self._warmed.add(officer.spec)
        except (DeskError, SigningError):
            pass  # said to the officer on the review page and when confirming
        except Exception:
            log.warning("desk: loading a personal signing key failed", exc_info=True)

    # ---- who signs ------------------------------------------------------------------------------
    @property
    def access(self) -> AccessStore:
        if self._access is None:
            self._access = AccessStore(self.pipeline.repository.engine)
        return self._access

    def officer(self, login: str) -> Officer:
        """The personal signing identity of desk user ``login``, or ``DeskError`` saying why not
        (codes ``no_signing_key``, ``signer_disabled``, ``signing_key_unusable``)."""
        try:
            return officer_by_login(self.settings, self.access, login)
        except OfficerKeyError as exc:
            raise DeskError(exc.code, exc.message) from None

    def _named_officer(self, login: str) -> Officer:
        """With the personal signature turned off (``officer_signature = false``): the user's name
        for the mark and the receipt, no key needed."""
        user = self.access.get_user(login)
        name = user.display_name if user is not None else login
        return replace(self.pipeline.default_officer, full_name=name, login=login)

    def signing_problem(self, login: str) -> str | None:
        """Why ``login`` cannot confirm documents now (an ``error.<code>`` key), or ``None``."""
        if not self.settings.officer_signature:
            return None
        try:
            self.officer(login)
        except DeskError as exc:
            return exc.code
        return None

    def resume(self) -> int:
        """Queue again every draft a previous run received but did not finish analyzing."""
        self._pool.submit(self.warm_up)
        count = 0
        for draft in self.store.all():
            if draft.status in ("received", "processing"):
                self._pool.submit(self._process, draft.id)
                count += 1
            elif draft.status == "confirming":  # interrupted mid-confirm: let the officer retry
                with self.store.editing(draft.id) as d:
                    d.status = "ready"
        if count:
            log.info("desk: resumed %d unfinished draft(s)", count)
        return count

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # queued drafts stay "received"/"processing" on disk: the next start resumes them
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.pipeline.close()

    # ---- receive -----------------------------------------------------------------------------
    def receive(self, *, officer: str, owner_id: str, dossier_code: str | None,
                files: list[tuple[str, bytes]]) -> Draft:
        """Check the owner and files, write the scans to disk, queue OCR; returns the draft."""
        owner_id = "".join(owner_id.split())
        try:
            owner_kind(owner_id)
        except PipelineError as exc:
            raise DeskError("owner", exc.message) from None
        files = [(name, data) for name, data in files if data]
        if not files:
            raise DeskError("no_files")
        if len(files) > self.max_files:
            raise DeskError("too_many_files", str(self.max_files))
        if sum(len(d) for _, d in files) > self.max_upload_bytes:
            raise DeskError("too_large")
        for name, data in files:
            if sniff_media_type(data) is None:
                raise DeskError("unsupported_type", name)
        dossier = (dossier_code or "").strip() or None
        if dossier is not None and len(dossier) > 64:
            raise DeskError("dossier_code")
        draft = self.store.create(officer=officer, owner_id=owner_id, dossier_code=dossier,
                                  files=files)
        log.info("desk: draft %s received, %d file(s)", draft.id, len(files))
        self._pool.submit(self._process, draft.id)
        self._pool.submit(self._warm_officer, officer)
        return draft

    def _process(self, draft_id: str) -> None:
        try:
            with self.store.editing(draft_id) as draft:
                draft.status, draft.stage, draft.error = "processing", "recognizing", None
                files = [InputFile(n, d) for n, d in self.store.read_uploads(draft)]
                owner = draft.owner_id
            t0 = time.perf_counter()
            _, analysis, _ = self.pipeline.analyze_document(DocumentInput(files=files,
                                                                          owner_id=owner))
            analysis = with_document_page_numbers(analysis)
            with self.store.editing(draft_id) as draft:
                draft.stage = "rendering"
            self.store.save_analysis(draft_id, analysis)
            self._render(draft_id, analysis)
            self._remember(draft_id, analysis)
            with self.store.editing(draft_id) as draft:
                c = analysis.classification
                draft.detected_type, draft.confidence = c.doc_type, c.confidence
                draft.page_count = len(analysis.pages)
                draft.pages = default_pages(len(analysis.pages))
                draft.values = {name: initial_value(f) for name, f in analysis.fields.items()}
                draft.analysis_seconds = round(time.perf_counter() - t0, 3)
                draft.needs_review = bool(review_reasons(analysis, self.settings.review_threshold))
                draft.status, draft.stage = "ready", "ready"
            log.info("desk: draft %s ready in %.1f s", draft_id, time.perf_counter() - t0)
        except (InputError, PipelineError) as exc:
            self._fail(draft_id, exc.code, exc.message)
        except Exception as exc:  # keep the worker alive; the scans stay on disk for a retry
            log.exception("desk: draft %s analysis failed", draft_id)
            self._fail(draft_id, "internal", type(exc).__name__)

    def _fail(self, draft_id: str, code: str, message: str) -> None:
        with self.store.editing(draft_id) as draft:
            draft.status, draft.stage = "failed", "failed"
            draft.error = Failure(code=code, message=message)

    def retry(self, draft_id: str) -> Draft:
        with self.store.editing(draft_id) as draft:
            if draft.status != "failed":
                return draft
            draft.status, draft.stage, draft.error = "received", "received", None
        self._pool.submit(self._process, draft_id)
        return self.store.get(draft_id)

    def _render(self, draft_id: str, analysis: Analysis) -> None:
        self.store.discard_renderings(draft_id)
        for index, page in enumerate(analysis.pages):
            self.store.write_image(draft_id, index, "pages",
                                   encode_jpeg(page.archive_image, VIEW_LONG_SIDE))
            self.store.write_image(draft_id, index, "thumbs",
                                   encode_jpeg(page.archive_image, THUMB_LONG_SIDE, 70))

    # ---- analysis cache -----------------------------------------------------------------------
    def _remember(self, draft_id: str, analysis: Analysis) -> None:
        with self._cache_lock:
            self._cache[draft_id] = analysis
            self._cache.move_to_end(draft_id)
            while len(self._cache) > 8:
                self._cache.popitem(last=False)

    def analysis(self, draft_id: str) -> Analysis:
        with self._cache_lock:
            cached = self._cache.get(draft_id)
        if cached is not None:
            return cached
        analysis = self.store.load_analysis(draft_id)
        if analysis is None:
            raise DraftNotFound(draft_id)
        self._remember(draft_id, analysis)
        return analysis

    # ---- lists ---------------------------------------------------------------------------------
    def today(self, officer: str | None = None) -> list[Draft]:
        """Drafts received today (Vietnam time), newest first; one officer's or everyone's."""
        day = now().date()
        return [d for d in self.store.all()
                if d.created_local().date() == day and (officer is None or d.officer == officer)]

    def review_queue(self) -> list[Draft]:
        """Unconfirmed documents for a supervisor: flagged ones first, then the oldest."""
        open_drafts = [d for d in self.store.all() if d.is_open]
        return sorted(open_drafts, key=lambda d: (not d.needs_review and d.status != "failed",
                                                  d.created_at))

    def recent_owners(self, officer: str, limit: int = 20) -> list[str]:
        seen: list[str] = []
        for d in self.today(officer):
            if d.owner_id not in seen:
                seen.append(d.owner_id)
        return seen[:limit]

    # ---- review ---------------------------------------------------------------------------------
    def field_rows(self, draft: Draft) -> list[FieldRow]:
        """The form for the draft's current type, with values, errors and arranged boxes."""
        analysis = self.analysis(draft.id)
        arranged = arrange(analysis, draft.pages)
        doc_type = draft.effective_type
        names = list(load_catalog().get(doc_type).fields) if doc_type in load_catalog() else []
        extracted = self._fields_for(doc_type, analysis, arranged)
        names += [n for n in extracted if n not in names]
        rows = []
        for name in names:
            fv = extracted.get(name)
            read = initial_value(fv) if fv else ""
            typed = draft.values.get(name, read)
            _, error = check_value(name, typed)
            if error is None and fv is not None and read_but_invalid(fv) and typed == read:
                error = "extracted_invalid"  # a cross-check failed: the officer must look
            rows.append(FieldRow(name=name, value=typed,
                                 extracted=fv.value if fv else None,
                                 confidence=fv.confidence if fv else 0.0, error=error,
                                 page=fv.page if fv else None,
                                 box=_percent_box(fv, arranged) if fv else None))
        return rows

    def attention(self, draft: Draft, rows: list[FieldRow]) -> list[str]:
        """What still needs the officer's attention now (i18n keys ``reason.<code>``)."""
        analysis = self.analysis(draft.id)
        reasons = []
        if draft.doc_type is None and "low_confidence" in review_reasons(
                analysis, self.settings.review_threshold):
            reasons.append("low_confidence")
        if any(r.error for r in rows):
            reasons.append("invalid_fields")
        if any(q.severity == "error" for q in analysis.quality):
            reasons.append("quality")
        return reasons

    def _fields_for(self, doc_type: str, analysis: Analysis,
                    arranged: Analysis) -> dict[str, FieldValue]:
        """Extracted fields for ``doc_type``: the analysis's own, or re-extracted after a change."""
        if doc_type == analysis.classification.doc_type:
            return arranged.fields
        return extract_fields(doc_type, arranged.texts)

    def save_review(self, draft_id: str, *, doc_type: str | None, values: dict[str, str],
                    pages: list[PageEdit] | None = None) -> Draft:
        """Keep what the officer typed/arranged (nothing is validated away: errors are shown)."""
        catalog = load_catalog()
        with self.store.editing(draft_id) as draft:
            if draft.status != "ready":
                raise DeskError("not_editable", draft.status)
            if doc_type and doc_type not in catalog:
                raise DeskError("unknown_type", doc_type)
            if doc_type and doc_type != draft.effective_type:
                draft.doc_type = doc_type
                analysis = self.analysis(draft_id)
                arranged = arrange(analysis, pages or draft.pages)
                fresh = self._fields_for(doc_type, analysis, arranged)
                draft.values = {n: initial_value(f) for n, f in fresh.items()}
            else:
                draft.values.update({k: v for k, v in values.items()})
            if pages is not None:
                try:
                    check_arrangement(pages, draft.page_count)
                except EditError as exc:
                    raise DeskError("pages", str(exc)) from None
                draft.pages = pages
            return draft

    # ---- confirm --------------------------------------------------------------------------------
    def confirm(self, draft_id: str, officer: str) -> Draft:
        """Convert, sign (with ``officer``'s personal key: the desk user confirming) and store the
        reviewed document; verify it; write the receipt."""
        with self.store.lock(draft_id):
            draft = self.store.get(draft_id)
            if draft.status == "confirmed":
                return draft
            if draft.status != "ready":
                raise DeskError("not_editable", draft.status)
            rows = self.field_rows(draft)
            bad = [r.name for r in rows if r.error and r.error != "extracted_invalid"]
            if bad:
                raise DeskError("invalid_fields", ", ".join(bad))
            doc_type = draft.effective_type
            if doc_type == UNKNOWN or doc_type not in load_catalog():
                raise DeskError("choose_type")
            signer = (self.officer(officer) if self.settings.officer_signature
                      else self._named_officer(officer))
            if draft.record_uri is None or f".{doc_type}." not in draft.record_uri:
                draft.record_uri = self.pipeline.repository.new_record_uri(
                    self.settings.agency_code, doc_type)
            draft.status = "confirming"
            self.store.save(draft)
        try:
            return self._finalize(draft_id, rows, signer)
        except Exception:
            with self.store.editing(draft_id) as d:
                if d.status == "confirming":
                    d.status = "ready"
            raise

    def _finalize(self, draft_id: str, rows: list[FieldRow], officer: Officer) -> Draft:
        t0 = time.perf_counter()
        draft = self.store.get(draft_id)
        analysis = arrange(self.analysis(draft_id), draft.pages)
        doc_type = draft.effective_type
        if doc_type != analysis.classification.doc_type:
            analysis = replace(analysis, fields=extract_fields(doc_type, analysis.texts))
        corrections: dict[str, str] = {}
        for row in rows:
            normalized, _ = check_value(row.name, row.value)
            if normalized is None:
                analysis.fields.pop(row.name, None)  # the officer cleared a wrong value
            elif normalized != row.extracted:
                corrections[row.name] = normalized
        files = [InputFile(n, d) for n, d in self.store.read_uploads(draft)]
        doc = DocumentInput(files=files, owner_id=draft.owner_id, doc_type=doc_type,
                            field_corrections=corrections, dossier_code=draft.dossier_code,
                            uri=draft.record_uri, officer=officer)
        with self._finalize_lock:  # decoding the scans again is cheap; OCR is not repeated
            if self.settings.officer_signature:
                try:
                    self.pipeline.officer_signer(officer)
                except SigningError as exc:
                    raise DeskError("signing_key_unusable", str(exc)) from None
            try:
                result = self.pipeline.finalize(doc, load_pages(files), analysis)
            except SigningError as exc:  # e.g. an expired/revoked certificate, TSA unreachable
                log.warning("desk: signing draft %s failed: %s", draft_id, exc)
                raise DeskError("signing_failed", str(exc)) from None
            stored = self.pipeline.repository.get(result.stored.uri, result.stored.version)
        report = verify_pdf(stored.pdf, trust_roots(self.settings))
        confirmed_at = now()
        outcome = Outcome(uri=result.stored.uri, version=result.stored.version,
                          sha256=result.stored.sha256, owner_key=result.stored.owner_key,
                          doc_type=doc_type,
                          verdict=report.verdict, verdict_vi=report.message_vi,
                          verdict_en=report.message_en, signatures=len(report.signatures),
                          confirmed_at=confirmed_at, seconds=round(time.perf_counter() - t0, 3),
                          officer=officer.login or "",
                          officer_name=result.record.conversion.officer_name)
        receipt = build_receipt(self._receipt_info(draft, outcome, result.record.conversion.lookup_url,
                                                   len(analysis.pages)))
        self.store.write_receipt(draft_id, receipt)
        with self.store.editing(draft_id) as d:
            d.outcome, d.status, d.stage = outcome, "confirmed", "confirmed"
        log.info("desk: draft %s stored as %s (%s)", draft_id, outcome.uri, outcome.verdict)
        return self.store.get(draft_id)

    def _receipt_info(self, draft: Draft, outcome: Outcome, lookup_url: str, pages: int) -> ReceiptInfo:
        s = self.settings
        passed = outcome.verdict == TOTAL_PASSED
        summary = (f"Hợp lệ ({outcome.signatures} chữ ký số)" if passed
                   else f"{outcome.verdict}: {outcome.verdict_vi}")
        return ReceiptInfo(agency_name=s.agency_name, desk=s.desk, officer_name=outcome.officer_name,
                           owner_masked=mask_id(draft.owner_id),
                           doc_type_name=load_catalog().get(outcome.doc_type).name_vi,
                           pages=pages, uri=outcome.uri, version=outcome.version,
                           lookup_url=lookup_url, confirmed_at=outcome.confirmed_at,
                           signature_summary=summary, dossier_code=draft.dossier_code,
                           files=tuple(u.name for u in draft.uploads))


def _percent_box(fv: FieldValue, arranged: Analysis) -> tuple[float, float, float, float] | None:
    if fv.bbox is None or fv.page is None or not 0 <= fv.page < len(arranged.pages):
        return None
    height, width = arranged.pages[fv.page].archive_image.shape[:2]
    left, top, w, h = fv.bbox
    return (round(100 * left / width, 3), round(100 * top / height, 3),
            round(100 * w / width, 3), round(100 * h / height, 3))


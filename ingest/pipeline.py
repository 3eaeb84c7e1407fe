"""The pipeline: the order of stages, in one place.

    load -> clean -> recognize -> classify -> extract          (analyze: ocr/)
         -> structured record -> PDF/A data message + mark     (converters/)
         -> officer's personal signature -> agency signature  (signing/)
         -> the owner's repository                            (repository/)

Each stage is a small function over plain data; ``Pipeline`` only holds what is expensive to set
up once (loaded keys, the repository connection) so batches do not repeat it.

Who digitizes travels with the document (``DocumentInput.officer``, an ``ingest.officers.Officer``:
login, full name, signing key): the officer's personal signature (Circular 01/2023/TT-VPCP
Art. 8), the conversion mark's "Người thực hiện" and the structured record name that person. No
officer given: the configured one (``officer_name`` / ``officer_key``, e.g. the CLI operator).
"""
from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from converters.datamessage import ConversionOptions, DataMessage, MessagePage, build_data_message
from converters.record import (ConversionInfo, FieldEntry, PageEntry, SourceFile,
                               StructuredRecord)
from ingest.load import load_bytes
from ingest.configs import repository_config, signer_spec
from ingest.officers import Officer, default_officer
from ingest.settings import Settings
from ocr.catalog import load_catalog
from ocr.classify import classify
from ocr.extract import extract_fields
from ocr.preprocess import clean_page
from ocr.recognize import OcrOptions, recognize_many
from ocr.types import Analysis, FieldValue, SourcePage
from ocr.validators import validate_personal_id
from repository import Repository, StoredResult, StoreRequest
from signing.signer import PdfSigner, SignerSpec, open_signer

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CONVERSION_STATEMENT = "Văn bản này được chuyển đổi từ văn bản giấy sang thông điệp dữ liệu"


class PipelineError(Exception):
    """A document that cannot go through the pipeline, with a stable code and a one-line reason."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.code, self.message = name, code, message


@dataclass(frozen=True)
class InputFile:
    name: str
    data: bytes

    @classmethod
    def from_path(cls, path: Path) -> "InputFile":
        try:
            return cls(path.name, path.read_bytes())
        except OSError as exc:
            raise PipelineError(path.name, "unreadable", f"cannot read file ({exc.strerror})") from exc


@dataclass
class DocumentInput:
    """One document to digitize: its scan files (pages in order) and who owns it."""

    files: list[InputFile]
    owner_id: str
    doc_type: str | None = None  # officer's choice or manifest hint; overrides classification
    field_corrections: dict[str, str] = field(default_factory=dict)  # confirmed at the desk
    dossier_code: str | None = None
    uri: str | None = None  # set to store a new version of an existing record
    officer: Officer | None = None  # who digitizes and signs personally; None: the configured officer


@dataclass
class DigitizeResult:
    stored: StoredResult
    record: StructuredRecord
    analysis: Analysis
    stage_seconds: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())


# ---- identities ---------------------------------------------------------------------------
def owner_kind(owner_id: str) -> str:
    """Citizen (12-digit personal ID) or organization (10- or 13-digit enterprise/tax code)."""
    digits = owner_id.replace("-", "")
    if len(owner_id) == 12 and owner_id.isdigit():
        error = validate_personal_id(owner_id)
        if error:
            raise PipelineError("--owner", "invalid_owner", f"invalid personal ID number: {error}")
        return "citizen"
    if digits.isdigit() and len(digits) in (10, 13):
        return "organization"
    raise PipelineError("--owner", "invalid_owner",
                        "owner must be a 12-digit personal ID or a 10/13-digit enterprise code")


# ---- stages ---------------------------------------------------------------------------------
def load_pages(files: list[InputFile]) -> list[SourcePage]:
    pages: list[SourcePage] = []
    for f in files:
        pages.extend(load_bytes(f.data, f.name))
    return pages


def analyze(pages: list[SourcePage], ocr_options: OcrOptions, hint: str | None = None,
            review_threshold: float = 0.6, workers: int = 1) -> Analysis:
    """Clean, recognize, classify and extract fields of one document's pages.

    ``workers`` > 1 cleans and OCRs the pages side by side (threads: OpenCV releases the GIL and
    Tesseract runs as a single-threaded child process per page). Bulk runs keep 1: they already
    run one document per worker process.
    """
    t0 = time.perf_counter()
    if workers > 1 and len(pages) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(pages))) as pool:
            cleaned = list(pool.map(clean_page, pages))
    else:
        cleaned = [clean_page(p) for p in pages]
    texts = recognize_many(cleaned, ocr_options, workers=workers)
    for number, page_text in enumerate(texts):
        page_text.index = number  # page numbers across the whole document, not per input file
    text = "\n\n".join(t.text for t in texts)
    classification = classify(text, hint=hint)
    if classification.confidence < review_threshold and not hint:
        classification = type(classification)("unknown", classification.confidence,
                                              classification.candidates, classification.method)
    fields = extract_fields(classification.doc_type, texts)
    return Analysis(pages=cleaned, texts=texts, classification=classification, fields=fields,
                    seconds=time.perf_counter() - t0)


def apply_corrections(fields: dict[str, FieldValue], corrections: dict[str, str]) -> dict[str, FieldValue]:
    """Officer-confirmed values replace extracted ones (confidence 1: a person checked them)."""
    out = dict(fields)
    for name, value in corrections.items():
        old = fields.get(name)
        out[name] = FieldValue(name=name, value=value, raw=old.raw if old else value,
                               confidence=1.0, valid=True, page=old.page if old else None,
                               bbox=old.bbox if old else None)
    return out


def build_record(analysis: Analysis, *, uri: str, doc_type: str, owner_ref: str, kind: str,
                 files: list[InputFile], source_pages: list[SourcePage],
                 conversion: ConversionInfo, dossier_code: str | None, desk: str | None) -> StructuredRecord:
    doc = load_catalog().get(doc_type)
    return StructuredRecord(
        uri=uri,
        doc_type=doc_type,
        doc_type_name=doc.name_vi,
        owner_ref=owner_ref,
        owner_kind=kind,
        title=doc.name_vi,
        fields={name: FieldEntry(value=f.value, raw=f.raw, confidence=f.confidence,
                                 valid=f.valid, error=f.error)
                for name, f in analysis.fields.items()},
        source_files=[SourceFile(name=f.name, sha256=hashlib.sha256(f.data).hexdigest(),
                                 media=next((p.media for p in source_pages if p.source == f.name), ""),
                                 pages=sum(1 for p in source_pages if p.source == f.name))
                      for f in files],
        pages=[PageEntry(index=i, source=c.source, source_index=c.index,
                         width_px=int(c.archive_image.shape[1]),
                         height_px=int(c.archive_image.shape[0]), dpi=c.dpi)
               for i, c in enumerate(analysis.pages)],
        conversion=conversion,
        dossier_code=dossier_code,
        desk=desk,
    )


def to_data_message(analysis: Analysis, record: StructuredRecord) -> DataMessage:
    pages = [MessagePage(image=c.archive_image, dpi=c.dpi, text=t, source=c.source,
                         source_index=c.index)
             for c, t in zip(analysis.pages, analysis.texts)]
    return build_data_message(pages, record, ConversionOptions())


def signature_lines(role: str, name: str, when: datetime) -> list[str]:
    stamp = when.isoformat(timespec="seconds")
    if role == "officer":
        return ["Người số hoá (ký số cá nhân):", name, f"Thời gian quét: {stamp}"]
    return ["Ký bởi:", name, f"Thời gian ký: {stamp}"]


# ---- the pipeline object --------------------------------------------------------------------
MAX_OFFICER_SIGNERS = 32  # officers' keys kept loaded per pipeline (least recently used dropped)


class Pipeline:
    """Holds the loaded keys and the repository; ``digitize`` runs the stages in order.

    Not for concurrent use from several threads (one per worker, or serialised by the caller)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._repository: Repository | None = None
        self._signers: dict[str, PdfSigner] = {}
        self._officer_signers: OrderedDict[SignerSpec, PdfSigner] = OrderedDict()
        self._default_officer: Officer | None = None

    # resources, loaded once
    @property
    def repository(self) -> Repository:
        if self._repository is None:
            self._repository = Repository.open(repository_config(self.settings))
        return self._repository

    @property
    def default_officer(self) -> Officer:
        """The configured officer (``officer_name`` + ``officer_key`` or the dev PKI's officer)."""
        if self._default_officer is None:
            self._default_officer = default_officer(self.settings)
        return self._default_officer

    def signer(self, role: str) -> PdfSigner:
        """The signer of ``role`` as configured (the agency's; officers sign with
        :meth:`officer_signer`)."""
        if role not in self._signers:
            self._signers[role] = open_signer(signer_spec(self.settings, role))
        return self._signers[role]

    def officer_signer(self, officer: Officer) -> PdfSigner:
        """The loaded key of one officer, opened on first use and kept (LRU, at most
        ``MAX_OFFICER_SIGNERS``). A PKCS#11 token allows one logged-in session per process, so
        an officer on a token whose session another officer's signer holds takes it over."""
        spec = officer.spec  # renewing a key changes its file or labels, hence the cache key
        signer = self._officer_signers.get(spec)
        if signer is not None:
            self._officer_signers.move_to_end(spec)
            return signer
        if spec.kind == "pkcs11":
            for other in [o for o in self._officer_signers if o.kind == "pkcs11"
                          and (o.pkcs11_module, o.token_label) == (spec.pkcs11_module, spec.token_label)]:
                self._officer_signers.pop(other).close()
        signer = open_signer(spec)
        self._officer_signers[spec] = signer
        while len(self._officer_signers) > MAX_OFFICER_SIGNERS:
            _, oldest = self._officer_signers.popitem(last=False)
            oldest.close()
        return signer

    def ocr_options(self) -> OcrOptions:
        return OcrOptions(lang=self.settings.ocr_lang, tessdata_dir=self.settings.tessdata_dir)

    def close(self) -> None:
        if self._repository is not None:
            self._repository.close()
            self._repository = None
        signers = [*self._signers.values(), *self._officer_signers.values()]
        self._signers.clear()
        self._officer_signers.clear()
        for signer in signers:
            signer.close()

    # stages
    def analyze_files(self, files: list[InputFile], hint: str | None = None) -> Analysis:
        return analyze(load_pages(files), self.ocr_options(), hint, self.settings.review_threshold,
                       workers=self.settings.workers)

    def sign(self, message: DataMessage, when: datetime, officer: Officer) -> bytes:
        """The officer's personal signature (top-left), then the agency's (top-right)."""
        s = self.settings
        pdf = message.pdf
        roles = (["officer"] if s.officer_signature else []) + ["agency"]
        for role in roles:
            signer = self.officer_signer(officer) if role == "officer" else self.signer(role)
            name = officer.full_name if role == "officer" else s.agency_name
            pdf = signer.sign(pdf, field_name=f"Sig_{role}", box=message.signature_boxes[role],
                              lines=signature_lines(role, name, when),
                              reason=("Số hoá văn bản giấy (Thông tư 01/2023/TT-VPCP Điều 8)"
                                      if role == "officer" else
                                      "Chuyển đổi văn bản giấy sang thông điệp dữ liệu (Nghị định 137/2024/NĐ-CP Điều 4)"),
                              location=s.agency_name, level=s.signature_level,
                              timestamp_url=s.tsa_url)
        return pdf

    def analyze_document(self, doc: DocumentInput) -> tuple[list[SourcePage], Analysis, dict[str, float]]:
        """Load and analyze a document's files (no storage): the desk shows this for review."""
        owner_kind(doc.owner_id)
        if doc.doc_type and doc.doc_type not in load_catalog().codes:
            raise PipelineError("--type", "unknown_type", f"unknown document type {doc.doc_type!r}")
        t0 = time.perf_counter()
        pages = load_pages(doc.files)
        t1 = time.perf_counter()
        analysis = analyze(pages, self.ocr_options(), doc.doc_type, self.settings.review_threshold,
                           workers=self.settings.workers)
        return pages, analysis, {"load": t1 - t0, "ocr": time.perf_counter() - t1}

    def finalize(self, doc: DocumentInput, pages: list[SourcePage], analysis: Analysis,
                 stage_seconds: dict[str, float] | None = None) -> DigitizeResult:
        """Convert, sign and store an analyzed (and possibly officer-corrected) document."""
        s = self.settings
        times = dict(stage_seconds or {})

        def timed(stage: str, fn, *args):
            t0 = time.perf_counter()
            result = fn(*args)
            times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0
            return result

        kind = owner_kind(doc.owner_id)
        officer = doc.officer or self.default_officer
        analysis.fields = apply_corrections(analysis.fields, doc.field_corrections)
        doc_type = doc.doc_type or analysis.classification.doc_type
        repo = self.repository
        uri = doc.uri or repo.new_record_uri(s.agency_code, doc_type)
        now = datetime.now(VIETNAM_TZ).replace(microsecond=0)
        conversion = ConversionInfo(statement=CONVERSION_STATEMENT, converted_at=now,
                                    agency_name=s.agency_name, agency_code=s.agency_code,
                                    officer_name=officer.full_name, system_name=s.system_name,
                                    lookup_url=s.lookup_base_url + uri)
        record = build_record(analysis, uri=uri, doc_type=doc_type,
                              owner_ref=repo.owner_key(doc.owner_id), kind=kind, files=doc.files,
                              source_pages=pages, conversion=conversion,
                              dossier_code=doc.dossier_code, desk=s.desk)
        message = timed("convert", to_data_message, analysis, record)
        signed = timed("sign", self.sign, message, now, officer)
        doc_meta = load_catalog().get(doc_type)
        issuing = analysis.fields.get("co_quan_ban_hanh")
        request = StoreRequest(
            uri=uri, owner_id=doc.owner_id, owner_kind=kind, doc_type=doc_type, pdf=signed,
            record_json=message.record.to_json_bytes(),
            fields={k: v.value for k, v in analysis.fields.items()}, text=analysis.text,
            issuing_agency=issuing.value if issuing else None, converting_agency_code=s.agency_code,
            source_sha256s=[f.sha256 for f in record.source_files], pages=len(analysis.pages),
            retention_years=doc_meta.retention_years, dossier_code=doc.dossier_code,
            title=doc_meta.name_vi)
        stored = timed("store", repo.store, request)
        return DigitizeResult(stored=stored, record=message.record, analysis=analysis,
                              stage_seconds=times)

    def digitize(self, doc: DocumentInput) -> DigitizeResult:
        """The whole path for one document: analyze, then convert, sign and store."""
        pages, analysis, times = self.analyze_document(doc)
        return self.finalize(doc, pages, analysis, times)

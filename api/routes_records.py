"""Reading records: owner lookup, listing, metadata, signed PDF and structured record (any
version), and verification of an uploaded PDF. Every read is an audit event, allowed or not."""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, cast

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import (Decision, Principal, ReadContext, authorize_view, current_principal, list_scope,
                      owner_ref_of, read_context, reader_query, require, services_of)
from api.errors import ApiProblem, invalid, not_found_or_forbidden
from repository import IntegrityFailure, InvalidRequest, ObjectMissing, StorageUnavailable
from repository.access import AccessStore, ReaderQuery, ReaderView, RecordFacts, utcnow
from repository.audit import AuditEntry
from repository.layout import parse_record_uri
from repository.objectstore import ObjectStore
from signing.verify import VerificationReport

if TYPE_CHECKING:
    from api.app import Services

router = APIRouter(prefix="/v1", tags=["records"])

OWNER_REF = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="opaque owner reference (owner_ref)")]
RECORD_URI = Annotated[str, Path(max_length=160, description="record URI AGENCY.DOCTYPE.ULID")]
MAX_VERSION = 1_000_000
VERSION = Annotated[int, Path(ge=1, le=MAX_VERSION)]
FORBIDDEN_RESPONSE: dict[int | str, dict[str, Any]] = {
    403: {"description": "the record does not exist or the caller may not read it (same body)"}}


class OwnerLookup(BaseModel):
    owner_id: str = Field(min_length=10, max_length=20, description="12-digit personal ID or 10/13-digit enterprise code")


class OwnerRef(BaseModel):
    owner_ref: str


class VersionOut(BaseModel):
    version: int
    status: str
    sha256: str
    size: int
    pages: int
    created_at: datetime
    pdf_url: str
    record_url: str


class RecordSummary(BaseModel):
    uri: str
    doc_type: str
    title: str
    issuing_agency: str | None
    converting_agency_code: str
    current_version: int
    sha256: str
    size: int
    pages: int
    updated_at: datetime
    pdf_url: str
    record_url: str


class RecordDetail(RecordSummary):
    owner_ref: str
    access_basis: str
    versions: list[VersionOut]


class RecordPage(BaseModel):
    owner_ref: str
    access_basis: str | None
    items: list[RecordSummary]
    limit: int
    offset: int


def _links(uri: str, version: int | None = None) -> tuple[str, str]:
    base = f"/v1/records/{uri}" + (f"/versions/{version}" if version else "")
    return f"{base}/pdf", f"{base}/record"


def summary_of(f: RecordFacts) -> RecordSummary:
    pdf, rec = _links(f.uri)
    return RecordSummary(uri=f.uri, doc_type=f.doc_type, title=f.title, issuing_agency=f.issuing_agency,
                         converting_agency_code=f.converting_agency_code, current_version=f.current_version,
                         sha256=f.pdf_sha256, size=f.pdf_size, pages=f.pages, updated_at=f.updated_at,
                         pdf_url=pdf, record_url=rec)


def read_entry(principal: Principal, action: str, *, outcome: str, uri: str | None,
               facts: RecordFacts | None = None, ctx: ReadContext | None = None,
               decision: Decision | None = None, details: dict | None = None) -> AuditEntry:
    return AuditEntry(
        actor=principal.ref, actor_kind=principal.kind, action=action, outcome=outcome, record_uri=uri,
        record_version=facts.version if facts else None, owner_key=facts.owner_key if facts else None,
        agency_code=principal.agency_code, purpose=ctx.purpose if ctx else None,
        basis=decision.basis if decision else None,
        details={**(decision.audit_details() if decision else {}), **(details or {}),
                 **({"on_behalf": True} if ctx and ctx.on_behalf_key else {})})


@dataclass(frozen=True)
class ReadCheck:
    """The outcome of an access check, before it is audited: ``entry`` is what the audit log must
    hold before anything is answered; ``problem`` is the error to answer with (if any)."""

    entry: AuditEntry
    facts: RecordFacts | None = None
    decision: Decision | None = None
    problem: ApiProblem | None = None

    def failed(self, error: str) -> ReadCheck:
        """The same read, recorded as failed after the decision (object missing, store down...)."""
        entry = replace(self.entry, outcome="failed", details={**self.entry.details, "error": error})
        return replace(self, entry=entry)


def read_query(principal: Principal, ctx: ReadContext, uri: str) -> ReaderQuery:
    """What to look up for this read, as of now (422 for a malformed record URI)."""
    try:
        parse_record_uri(uri)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    return reader_query(principal, ctx, uri, at=utcnow())


def judge_read(services: Services, principal: Principal, ctx: ReadContext, query: ReaderQuery,
               view: ReaderView | None, version: int | None, action: str, details: dict | None = None) -> ReadCheck:
    """Decide whether ``principal`` may read version ``version`` (default: current) of the record,
    from ``view`` (the record's current version and the caller's grant/authorization, as of
    ``query.at``); a second query only for an older version. Writes nothing; the caller audits
    ``entry`` before answering."""
    uri = query.uri
    current = view.facts if view is not None else None
    decision = authorize_view(principal, view, query.at) if view is not None else None
    if current is None or decision is None or not decision.allowed:
        return ReadCheck(read_entry(principal, action, outcome="denied", uri=uri, facts=current, ctx=ctx),
                         problem=not_found_or_forbidden())
    facts = current if version is None or version == current.version else services.access.record_facts(uri, version)
    if facts is None:
        return ReadCheck(read_entry(principal, action, outcome="failed", uri=uri, facts=current, ctx=ctx,
                                    decision=decision, details={"version": version, "error": "no_such_version"}),
                         problem=ApiProblem(404, "version_not_found", f"the record has no version {version}"))
    return ReadCheck(read_entry(principal, action, outcome="allowed", uri=uri, facts=facts, ctx=ctx,
                                decision=decision, details=details), facts=facts, decision=decision)


def check_read(services: Services, principal: Principal, ctx: ReadContext, uri: str, version: int | None,
               action: str, details: dict | None = None) -> ReadCheck:
    """:func:`judge_read` after its one query (for routes that run in a thread)."""
    query = read_query(principal, ctx, uri)
    return judge_read(services, principal, ctx, query, services.access.reader_views([query])[0], version, action,
                      details)


def authorized_facts(request: Request, principal: Principal, ctx: ReadContext, uri: str,
                     version: int | None, action: str) -> tuple[RecordFacts, Decision]:
    """The record version the principal asked for, if they may read it; audited either way (the
    entry is committed before this returns)."""
    check = check_read(services_of(request), principal, ctx, uri, version, action)
    services_of(request).audit(check.entry)
    if check.problem is not None:
        raise check.problem
    assert check.facts is not None and check.decision is not None
    return check.facts, check.decision


def _read_object(store: ObjectStore, key: str, sha256: str) -> bytes:
    try:
        data = store.get(key)
    except ObjectMissing:
        raise IntegrityFailure(f"object {key} is missing from the store") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityFailure(f"object {key} does not match its recorded SHA-256")
    return data


class PresigningStore(Protocol):
    """An object store that can hand out short-lived GET URLs (S3; a local directory cannot)."""

    def presigned_get_url(self, key: str, *, expires: timedelta,
                          response_headers: dict[str, str] | None = None) -> str: ...


@functools.cache
def _presigns(store_type: type) -> bool:
    """Whether stores of this class are :class:`PresigningStore` (asked once per class: a
    runtime Protocol check costs more than the rest of a redirect's routing)."""
    return callable(getattr(store_type, "presigned_get_url", None))


Delivery = Literal["proxy", "redirect"]
DELIVERY_QUERY = Query(description=(
    "`proxy` (default): the signed bytes in this response. `redirect`: after the access decision "
    "and its audit entry are committed, `303 See Other` to a short-lived presigned URL of the "
    "object store (the bytes then come from S3; check them against `Sohoa-SHA256`). Stores that "
    "cannot presign (a local directory) answer as for `proxy`."))


class RedirectOut(BaseModel):
    """Body of a ``303`` answer (for clients that do not follow redirects themselves)."""

    url: str
    expires_at: datetime
    sha256: str
    size: int | None
    media_type: str


@dataclass(frozen=True)
class ReadJob:
    """One record read waiting for its decision: what to look up, and what to do with it (in the
    database thread: decide, and presign for a redirect)."""

    query: ReaderQuery
    finish: Callable[[ReaderView | None], Any]


def run_reads(access: AccessStore, jobs: Sequence[ReadJob]) -> list[Any]:
    """The reads that arrived together: one lookup for all (:meth:`AccessStore.reader_views`),
    then each job's own ``finish`` (its exception is its answer alone)."""
    views = access.reader_views([job.query for job in jobs])
    results: list[Any] = []
    for job, view in zip(jobs, views):
        try:
            results.append(job.finish(view))
        except Exception as exc:  # noqa: BLE001 (handed to that request, answered by its handlers)
            results.append(exc)
    return results


async def download(request: Request, principal: Principal, ctx: ReadContext, uri: str, version: int | None,
                    what: Literal["pdf", "record"], delivery: Delivery) -> Response:
    """Decide, prepare, audit, answer — in that order; nothing leaves before the audit entry
    is committed. The decision and the presigned URL are made in a thread of the bounded
    database pool, together with the other reads waiting at that moment (:func:`run_reads`: one
    SQL query for all of them), the object read (proxy) in the I/O pool; the audit commit is
    awaited without holding a thread."""
    services = services_of(request)
    store = services.repository.objects
    redirect = delivery == "redirect" and _presigns(type(store))
    expires = timedelta(seconds=services.options.redirect_seconds)
    media = "application/pdf" if what == "pdf" else "application/json"
    action = "record.download_pdf" if what == "pdf" else "record.download_record"
    details = {"delivery": "redirect", "expires_in": int(expires.total_seconds())} if redirect else None
    wanted = request.headers.get("if-none-match")

    query = read_query(principal, ctx, uri)

    def decide_and_presign(view: ReaderView | None) -> tuple[ReadCheck, str | Exception | None]:
        check = judge_read(services, principal, ctx, query, view, version, action, details)
        if check.problem is not None or check.facts is None or not redirect:
            return check, None
        key, sha = _object_of(check.facts, what)
        if wanted == f'"{sha}"':
            return check, None
        try:
            return check, cast(PresigningStore, store).presigned_get_url(key, expires=expires, response_headers={
                "response-content-type": media,
                "response-content-disposition": f'attachment; filename="{_filename(check.facts, what)}"'})
        except StorageUnavailable as exc:
            return check.failed(type(exc).__name__), exc

    issued = utcnow()
    check, url = await services.reads(ReadJob(query, decide_and_presign))
    loop = asyncio.get_running_loop()
    data: bytes | None = None
    failure: Exception | None = check.problem
    if isinstance(url, Exception):
        failure, url = url, None
    if failure is None and check.facts is not None and not redirect:
        key, sha = _object_of(check.facts, what)
        if wanted != f'"{sha}"':
            try:
                data = await loop.run_in_executor(services.io_executor, _read_object, store, key, sha)
            except (IntegrityFailure, StorageUnavailable) as exc:
                check, failure = check.failed(type(exc).__name__), exc
    await services.audit_async(check.entry)
    if failure is not None:
        raise failure
    assert check.facts is not None
    sha = _object_of(check.facts, what)[1]
    headers = {"ETag": f'"{sha}"', "Cache-Control": "private, no-store"}
    if wanted == f'"{sha}"':
        return Response(status_code=304, headers=headers)
    if url is not None:
        body = RedirectOut(url=url, expires_at=issued + expires, sha256=sha,
                           size=check.facts.pdf_size if what == "pdf" else None, media_type=media)
        return Response(body.model_dump_json(), status_code=303, media_type="application/json",  # = JSONResponse's bytes
                        headers={"Location": url, "Cache-Control": "no-store", "Sohoa-SHA256": sha})
    headers.update({"Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha)).decode()}:",
                    "Content-Disposition": f'attachment; filename="{_filename(check.facts, what)}"'})
    return Response(content=data, media_type=media, headers=headers)


def _object_of(facts: RecordFacts, what: str) -> tuple[str, str]:
    return (facts.pdf_key, facts.pdf_sha256) if what == "pdf" else (facts.record_key, facts.record_sha256)


def _filename(facts: RecordFacts, what: str) -> str:
    return f"{facts.uri}.v{facts.version}.{'pdf' if what == 'pdf' else 'json'}"


# ---- owners ------------------------------------------------------------------------------------
@router.post("/owners/lookup", response_model=OwnerRef, summary="Opaque reference of an owner ID",
             description="Turns a personal ID / enterprise code (in the body, never in a URL) into the "
                         "opaque `owner_ref` used in paths. Says nothing about whether records exist.")
def owner_lookup(request: Request, body: OwnerLookup,
                 principal: Annotated[Principal, Depends(require("agency", "officer", "supervisor", "admin"))]) -> OwnerRef:
    try:
        return OwnerRef(owner_ref=owner_ref_of(services_of(request), body.owner_id))
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None


@router.get("/owners/{owner_ref}/records", response_model=RecordPage,
            summary="An owner's records the caller may read",
            description="Agencies see the records they converted, plus those covered by an active grant "
                        "for the declared `Sohoa-Purpose`, or by an authorization of the representative "
                        "in `Sohoa-On-Behalf-Of`. Citizens see their own or their principals' records.")
def owner_records(request: Request, owner_ref: OWNER_REF,
                  principal: Annotated[Principal, Depends(require("agency", "officer", "supervisor", "citizen"))],
                  ctx: Annotated[ReadContext, Depends(read_context)],
                  doc_type: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
                  updated_from: datetime | None = None, updated_to: datetime | None = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> RecordPage:
    services = services_of(request)
    scope, basis = list_scope(services, principal, owner_ref, ctx)
    rows = services.access.readable_records(owner_ref, scope, doc_type=doc_type, date_from=updated_from,
                                            date_to=updated_to, limit=limit, offset=offset)
    services.audit(AuditEntry(actor=principal.ref, actor_kind=principal.kind, action="records.list",
                              outcome="allowed" if not scope.empty else "denied", owner_key=owner_ref,
                              agency_code=principal.agency_code, purpose=ctx.purpose, basis=basis,
                              details={"count": len(rows), **({"doc_type": doc_type} if doc_type else {})}))
    return RecordPage(owner_ref=owner_ref, access_basis=basis, items=[summary_of(f) for f in rows],
                      limit=limit, offset=offset)


# ---- one record --------------------------------------------------------------------------------
READER_KINDS: tuple[str, ...] = ("agency", "officer", "supervisor", "citizen")
READERS = Depends(require(*READER_KINDS))


@router.get("/records/{uri}", response_model=RecordDetail, responses=FORBIDDEN_RESPONSE,
            summary="A record's metadata and versions")
def record_detail(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
                  ctx: Annotated[ReadContext, Depends(read_context)]) -> RecordDetail:
    facts, decision = authorized_facts(request, principal, ctx, uri, None, "record.read")
    versions = []
    for v in services_of(request).access.record_versions(uri):
        pdf, rec = _links(uri, v.version)
        versions.append(VersionOut(version=v.version, status=v.status, sha256=v.pdf_sha256, size=v.pdf_size,
                                   pages=v.pages, created_at=v.created_at, pdf_url=pdf, record_url=rec))
    return RecordDetail(**summary_of(facts).model_dump(), owner_ref=facts.owner_key,
                        access_basis=decision.basis or "", versions=versions)


@router.get("/lookup/{uri}", response_model=RecordDetail, responses=FORBIDDEN_RESPONSE,
            summary="Look up the record named on a data message or paper copy (its QR / lookup URL)",
            description="The conversion mark and paper copies print `lookup_base_url + uri`. Same "
                        "answer and access rule as `GET /v1/records/{uri}`: a lookup reveals nothing "
                        "to a caller who may not read the record.")
def record_lookup(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
                  ctx: Annotated[ReadContext, Depends(read_context)]) -> RecordDetail:
    return record_detail(request, uri, principal, ctx)


def _responses(media: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media: {}}, "description": description},
            303: {"model": RedirectOut, "description": "with `delivery=redirect`: the read is authorized and "
                  "audited; `Location` is a presigned object-store URL that works for a short time "
                  "(`SOHOA_API_REDIRECT_SECONDS`, default 60)",
                  "headers": {"Location": {"schema": {"type": "string"}, "description": "presigned GET URL"}}},
            304: {"description": "`If-None-Match` matched the current `ETag` (the SHA-256)"},
            **FORBIDDEN_RESPONSE}


PDF_RESPONSES = _responses("application/pdf", "the signed PDF/A data message")
JSON_RESPONSES = _responses("application/json", "the structured record embedded in the PDF")


@router.get("/records/{uri}/pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="The current version's signed PDF")
async def record_pdf(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
                     ctx: Annotated[ReadContext, Depends(read_context)],
                     delivery: Annotated[Delivery, DELIVERY_QUERY] = "proxy") -> Response:
    return await download(request, principal, ctx, uri, None, "pdf", delivery)


@router.get("/records/{uri}/record", response_class=Response, responses=JSON_RESPONSES,
            summary="The current version's structured record (JSON)")
async def record_json(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
                      ctx: Annotated[ReadContext, Depends(read_context)],
                      delivery: Annotated[Delivery, DELIVERY_QUERY] = "proxy") -> Response:
    return await download(request, principal, ctx, uri, None, "record", delivery)


@router.get("/records/{uri}/versions/{version}/pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="A specific version's signed PDF")
async def version_pdf(request: Request, uri: RECORD_URI, version: VERSION, principal: Annotated[Principal, READERS],
                      ctx: Annotated[ReadContext, Depends(read_context)],
                      delivery: Annotated[Delivery, DELIVERY_QUERY] = "proxy") -> Response:
    return await download(request, principal, ctx, uri, version, "pdf", delivery)


@router.get("/records/{uri}/versions/{version}/record", response_class=Response, responses=JSON_RESPONSES,
            summary="A specific version's structured record (JSON)")
async def version_record(request: Request, uri: RECORD_URI, version: VERSION,
                         principal: Annotated[Principal, READERS],
                         ctx: Annotated[ReadContext, Depends(read_context)],
                         delivery: Annotated[Delivery, DELIVERY_QUERY] = "proxy") -> Response:
    return await download(request, principal, ctx, uri, version, "record", delivery)


# ---- verification ------------------------------------------------------------------------------
@router.post("/verify", response_model=VerificationReport, summary="Verify the signatures of an uploaded PDF",
             description="Integrity, trust (the configured roots), revocation and timestamps of every "
                         "signature; verdicts TOTAL_PASSED / INDETERMINATE / TOTAL_FAILED with messages "
                         "in Vietnamese and English.")
def verify_upload(request: Request, file: Annotated[UploadFile, File(description="a signed PDF")],
                  principal: Annotated[Principal, Depends(current_principal)]) -> VerificationReport:
    from ingest.configs import trust_roots
    from signing.verify import verify_pdf

    services = services_of(request)
    data = file.file.read(services.options.verify_max_bytes + 1)
    if len(data) > services.options.verify_max_bytes:
        raise ApiProblem(413, "too_large", f"at most {services.options.verify_max_bytes} bytes")
    if not data:
        raise invalid("the uploaded file is empty", "empty_file")
    return verify_pdf(data, trust_roots(services.settings))

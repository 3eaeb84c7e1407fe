"""Reading records: owner lookup, listing, metadata, signed PDF and structured record (any
version), and verification of an uploaded PDF. Every read is an audit event, allowed or not."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import (Decision, Principal, ReadContext, authorize_record, current_principal, list_scope,
                      owner_ref_of, read_context, require, services_of)
from api.errors import ApiProblem, invalid, not_found_or_forbidden
from repository import IntegrityFailure, InvalidRequest, ObjectMissing
from repository.access import RecordFacts
from repository.audit import AuditEntry
from repository.layout import parse_record_uri
from signing.verify import VerificationReport

router = APIRouter(prefix="/v1", tags=["records"])

OWNER_REF = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="opaque owner reference (owner_ref)")]
RECORD_URI = Annotated[str, Path(max_length=160, description="record URI AGENCY.DOCTYPE.ULID")]
VERSION = Annotated[int, Path(ge=1, le=1_000_000)]
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


def audit_read(request: Request, principal: Principal, action: str, *, outcome: str, uri: str | None,
               facts: RecordFacts | None = None, ctx: ReadContext | None = None,
               decision: Decision | None = None, details: dict | None = None) -> None:
    services_of(request).audit(AuditEntry(
        actor=principal.ref, actor_kind=principal.kind, action=action, outcome=outcome, record_uri=uri,
        record_version=facts.version if facts else None, owner_key=facts.owner_key if facts else None,
        agency_code=principal.agency_code, purpose=ctx.purpose if ctx else None,
        basis=decision.basis if decision else None,
        details={**(decision.audit_details() if decision else {}), **(details or {}),
                 **({"on_behalf": True} if ctx and ctx.on_behalf_key else {})}))


def authorized_facts(request: Request, principal: Principal, ctx: ReadContext, uri: str,
                     version: int | None, action: str) -> tuple[RecordFacts, Decision]:
    """The record version the principal asked for, if they may read it; audited either way."""
    try:
        parse_record_uri(uri)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    services = services_of(request)
    current = services.access.record_facts(uri)
    decision = authorize_record(services, principal, current, ctx) if current else None
    if current is None or decision is None or not decision.allowed:
        audit_read(request, principal, action, outcome="denied", uri=uri, facts=current, ctx=ctx)
        raise not_found_or_forbidden()
    facts = current if version is None or version == current.version else services.access.record_facts(uri, version)
    if facts is None:
        audit_read(request, principal, action, outcome="failed", uri=uri, facts=current, ctx=ctx,
                   decision=decision, details={"version": version, "error": "no_such_version"})
        raise ApiProblem(404, "version_not_found", f"the record has no version {version}")
    audit_read(request, principal, action, outcome="allowed", uri=uri, facts=facts, ctx=ctx, decision=decision)
    return facts, decision


def _read_object(request: Request, key: str, sha256: str) -> bytes:
    store = services_of(request).repository.objects
    try:
        data = store.get(key)
    except ObjectMissing:
        raise IntegrityFailure(f"object {key} is missing from the store") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityFailure(f"object {key} does not match its recorded SHA-256")
    return data


def _bytes_response(request: Request, data: bytes, sha256: str, media: str, filename: str) -> Response:
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-store",
               "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
               "Content-Disposition": f'attachment; filename="{filename}"'}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=media, headers=headers)


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
READERS = Depends(require("agency", "officer", "supervisor", "citizen"))


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


def _pdf(request: Request, principal: Principal, ctx: ReadContext, uri: str, version: int | None) -> Response:
    facts, _ = authorized_facts(request, principal, ctx, uri, version, "record.download_pdf")
    data = _read_object(request, facts.pdf_key, facts.pdf_sha256)
    return _bytes_response(request, data, facts.pdf_sha256, "application/pdf", f"{uri}.v{facts.version}.pdf")


def _record_json(request: Request, principal: Principal, ctx: ReadContext, uri: str, version: int | None) -> Response:
    facts, _ = authorized_facts(request, principal, ctx, uri, version, "record.download_record")
    data = _read_object(request, facts.record_key, facts.record_sha256)
    return _bytes_response(request, data, facts.record_sha256, "application/json", f"{uri}.v{facts.version}.json")


PDF_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the signed PDF/A data message"},
    **FORBIDDEN_RESPONSE}
JSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "the structured record embedded in the PDF"},
    **FORBIDDEN_RESPONSE}


@router.get("/records/{uri}/pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="The current version's signed PDF")
def record_pdf(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
               ctx: Annotated[ReadContext, Depends(read_context)]) -> Response:
    return _pdf(request, principal, ctx, uri, None)


@router.get("/records/{uri}/record", response_class=Response, responses=JSON_RESPONSES,
            summary="The current version's structured record (JSON)")
def record_json(request: Request, uri: RECORD_URI, principal: Annotated[Principal, READERS],
                ctx: Annotated[ReadContext, Depends(read_context)]) -> Response:
    return _record_json(request, principal, ctx, uri, None)


@router.get("/records/{uri}/versions/{version}/pdf", response_class=Response, responses=PDF_RESPONSES,
            summary="A specific version's signed PDF")
def version_pdf(request: Request, uri: RECORD_URI, version: VERSION, principal: Annotated[Principal, READERS],
                ctx: Annotated[ReadContext, Depends(read_context)]) -> Response:
    return _pdf(request, principal, ctx, uri, version)


@router.get("/records/{uri}/versions/{version}/record", response_class=Response, responses=JSON_RESPONSES,
            summary="A specific version's structured record (JSON)")
def version_record(request: Request, uri: RECORD_URI, version: VERSION,
                   principal: Annotated[Principal, READERS],
                   ctx: Annotated[ReadContext, Depends(read_context)]) -> Response:
    return _record_json(request, principal, ctx, uri, version)


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

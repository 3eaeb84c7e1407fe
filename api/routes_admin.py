"""Administration (``/v1/admin``): API clients, legal-basis grants, the audit log. Admin only;
every change is an audit event."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from api.auth import Principal, owner_ref_of, require, services_of
from api.errors import ApiProblem, invalid
from api.routes_citizen import GrantOut, grant_out
from repository import InvalidRequest, RecordNotFound
from repository.access import ClientInfo, IssuedKey, utcnow
from repository.audit import AuditEntry, key_id_of, load_or_create_service_key

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ADMIN = Depends(require("admin"))
CLIENT_ID = Annotated[str, Path(pattern=r"^c_[0-9a-f]{16}$")]


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["agency", "citizen", "admin"]
    agency_code: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    owner_id: str | None = Field(None, min_length=10, max_length=20,
                                 description="for a citizen client: the citizen's personal ID")
    rate_per_second: float | None = Field(None, gt=0, le=100_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)


class ClientOut(BaseModel):
    id: str
    name: str
    kind: str
    agency_code: str | None
    owner_ref: str | None
    rate_per_second: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None
    active_keys: int


class IssuedKeyOut(BaseModel):
    client: ClientOut
    key_id: str
    api_key: str = Field(description="shown once; only its hash is stored")


class RotateIn(BaseModel):
    grace_seconds: int = Field(0, ge=0, le=30 * 86400, description="old keys keep working this long")


class LegalGrantIn(BaseModel):
    owner_id: str | None = Field(None, min_length=10, max_length=20)
    owner_ref: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    agency_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    purpose: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    legal_reference: str = Field(min_length=3, max_length=255, description="law / decree and article")
    valid_from: datetime | None = None
    valid_until: datetime
    doc_type: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

    @model_validator(mode="after")
    def _one_owner(self) -> "LegalGrantIn":
        if (self.owner_id is None) == (self.owner_ref is None):
            raise ValueError("give exactly one of owner_id, owner_ref")
        return self


class AuditReportOut(BaseModel):
    ok: bool
    entries: int
    last_seq: int
    checkpoints: int
    uncovered: int
    problems: list[str]


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str
    actor_kind: str
    action: str
    outcome: str
    record_uri: str | None
    record_version: int | None
    owner_ref: str | None
    agency_code: str | None
    purpose: str | None
    basis: str | None
    details: dict[str, Any]
    hash: str


def client_out(c: ClientInfo) -> ClientOut:
    return ClientOut(id=c.id, name=c.name, kind=c.kind, agency_code=c.agency_code, owner_ref=c.owner_key,
                     rate_per_second=c.rate_per_second, burst=c.burst, created_at=c.created_at,
                     revoked_at=c.revoked_at, active_keys=c.active_keys)


def _issued(k: IssuedKey) -> IssuedKeyOut:
    return IssuedKeyOut(client=client_out(k.client), key_id=k.key_id, api_key=k.secret)


def _audit(request: Request, p: Principal, action: str, **fields: Any) -> None:
    services_of(request).audit(AuditEntry(actor=p.ref, actor_kind=p.kind, action=action, **fields))


# ---- clients -----------------------------------------------------------------------------------
@router.get("/clients", response_model=list[ClientOut], summary="API clients")
def list_clients(request: Request, principal: Annotated[Principal, ADMIN]) -> list[ClientOut]:
    return [client_out(c) for c in services_of(request).access.list_clients()]


@router.post("/clients", response_model=IssuedKeyOut, status_code=201, summary="Create a client and its first key")
def create_client(request: Request, body: ClientIn, principal: Annotated[Principal, ADMIN]) -> IssuedKeyOut:
    services = services_of(request)
    try:
        owner_key = owner_ref_of(services, body.owner_id) if body.owner_id else None
        issued = services.access.create_client(body.name, body.kind, agency_code=body.agency_code,
                                               owner_key=owner_key, rate_per_second=body.rate_per_second,
                                               burst=body.burst)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    _audit(request, principal, "client.create", agency_code=body.agency_code,
           details={"client_id": issued.client.id, "kind": body.kind, "key_id": issued.key_id})
    return _issued(issued)


@router.post("/clients/{client_id}/rotate", response_model=IssuedKeyOut, summary="Issue a new key, retire the old")
def rotate_client(request: Request, client_id: CLIENT_ID, body: RotateIn,
                  principal: Annotated[Principal, ADMIN]) -> IssuedKeyOut:
    services = services_of(request)
    try:
        issued = services.access.rotate_client(client_id, grace=timedelta(seconds=body.grace_seconds))
    except RecordNotFound:
        raise ApiProblem(404, "client_not_found", "no active client with this id") from None
    services.key_cache.clear()
    _audit(request, principal, "client.rotate",
           details={"client_id": client_id, "key_id": issued.key_id, "grace_seconds": body.grace_seconds})
    return _issued(issued)


@router.delete("/clients/{client_id}", status_code=204, summary="Revoke a client and all its keys",
               responses={404: {"description": "no such client"}})
def revoke_client(request: Request, client_id: CLIENT_ID, principal: Annotated[Principal, ADMIN]) -> Response:
    services = services_of(request)
    try:
        services.access.revoke_client(client_id)
    except RecordNotFound:
        raise ApiProblem(404, "client_not_found", "no client with this id") from None
    services.limiter.forget(f"client:{client_id}")
    services.key_cache.clear()
    _audit(request, principal, "client.revoke", details={"client_id": client_id})
    return Response(status_code=204)


# ---- legal-basis grants --------------------------------------------------------------------------
@router.get("/grants", response_model=list[GrantOut], summary="Grants, by owner and/or agency")
def list_grants(request: Request, principal: Annotated[Principal, ADMIN],
                owner_ref: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
                agency_code: Annotated[str | None, Query(max_length=64)] = None) -> list[GrantOut]:
    return [grant_out(g) for g in services_of(request).access.list_grants(owner_key=owner_ref,
                                                                           agency_code=agency_code)]


@router.post("/grants", response_model=GrantOut, status_code=201,
             summary="Register a legal-basis grant (an agency may read without consent, for a purpose)")
def create_legal_grant(request: Request, body: LegalGrantIn, principal: Annotated[Principal, ADMIN]) -> GrantOut:
    services = services_of(request)
    start = body.valid_from or utcnow()
    try:
        owner_key = body.owner_ref or owner_ref_of(services, body.owner_id or "")
        g = services.access.create_grant(owner_key=owner_key, agency_code=body.agency_code, purpose=body.purpose,
                                         basis="legal_basis", legal_reference=body.legal_reference,
                                         valid_from=start, valid_until=body.valid_until,
                                         created_by=principal.ref, doc_type=body.doc_type)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    _audit(request, principal, "grant.create", owner_key=owner_key, agency_code=g.agency_code, purpose=g.purpose,
           basis=g.basis, details={"grant_id": g.id, "legal_reference": g.legal_reference,
                                   "until": g.valid_until.isoformat(), "doc_type": g.doc_type})
    return grant_out(g)


@router.delete("/grants/{grant_id}", status_code=204, summary="Revoke any grant",
               responses={404: {"description": "no such grant"}})
def revoke_grant(request: Request, grant_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                 principal: Annotated[Principal, ADMIN]) -> Response:
    try:
        g = services_of(request).access.revoke_grant(grant_id, revoked_by=principal.ref)
    except RecordNotFound:
        raise ApiProblem(404, "grant_not_found", "no grant with this id") from None
    _audit(request, principal, "grant.revoke", owner_key=g.owner_key, agency_code=g.agency_code,
           purpose=g.purpose, basis=g.basis, details={"grant_id": grant_id})
    return Response(status_code=204)


# ---- audit -----------------------------------------------------------------------------------------
@router.get("/audit/verify", response_model=AuditReportOut, summary="Re-check the audit chain and checkpoints")
def verify_audit(request: Request, principal: Annotated[Principal, ADMIN]) -> AuditReportOut:
    services = services_of(request)
    from api.app import audit_key_path
    key = load_or_create_service_key(audit_key_path(services.settings))
    report = services.audit_log.verify([key.public_key()])
    _audit(request, principal, "audit.verify", outcome="ok" if report.ok else "failed",
           details={"entries": report.entries, "problems": len(report.problems), "key_id": key_id_of(key.public_key())})
    return AuditReportOut(**report.__dict__)


@router.get("/audit/events", response_model=list[AuditEventOut], summary="Audit events, newest first")
def audit_events(request: Request, principal: Annotated[Principal, ADMIN],
                 owner_ref: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
                 record_uri: Annotated[str | None, Query(max_length=160)] = None,
                 before: Annotated[int | None, Query(ge=1)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AuditEventOut]:
    events = services_of(request).audit_log.events(owner_key=owner_ref, record_uri=record_uri,
                                                   before_seq=before, limit=limit)
    return [AuditEventOut(seq=e.seq, at=e.at, actor=e.actor, actor_kind=e.actor_kind, action=e.action,
                          outcome=e.outcome, record_uri=e.record_uri, record_version=e.record_version,
                          owner_ref=e.owner_key, agency_code=e.agency_code, purpose=e.purpose, basis=e.basis,
                          details=e.details, hash=e.hash) for e in events]

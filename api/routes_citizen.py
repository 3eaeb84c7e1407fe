"""The citizen's side (``/v1/me``): my records, who accessed them, my consents, my authorizations."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import Principal, owner_ref_of, require, services_of
from api.errors import ApiProblem, invalid
from api.routes_records import RecordSummary, summary_of
from repository import InvalidRequest, RecordNotFound
from repository.access import AuthorizationInfo, GrantInfo, ReadScope, utcnow
from repository.audit import AuditEntry

router = APIRouter(prefix="/v1/me", tags=["citizen"])
CITIZEN = Depends(require("citizen"))
ACCESS_ACTIONS = ("record.read", "record.download_pdf", "record.download_record", "records.list",
                  "record.create")
ID = Annotated[int, Path(ge=1, le=2**31 - 1)]
MISSING = {404: {"description": "no such grant/authorization of yours"}}


class GrantIn(BaseModel):
    agency_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    purpose: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
                         description="procedure or purpose code the agency will declare in Sohoa-Purpose")
    valid_from: datetime | None = Field(None, description="default: now")
    valid_until: datetime
    doc_type: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class GrantOut(BaseModel):
    id: int
    agency_code: str
    purpose: str
    basis: str
    legal_reference: str | None
    doc_type: str | None
    valid_from: datetime
    valid_until: datetime
    created_at: datetime
    revoked_at: datetime | None
    active: bool


class AuthorizationIn(BaseModel):
    representative_id: str = Field(min_length=10, max_length=20,
                                   description="the representative's personal ID or enterprise code")
    valid_from: datetime | None = None
    valid_until: datetime
    doc_type: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    reference: str | None = Field(None, max_length=255, description="number of the authorization document")


class AuthorizationOut(BaseModel):
    id: int
    direction: str  # "given" (I authorized someone) or "received" (someone authorized me)
    owner_ref: str
    representative_ref: str
    doc_type: str | None
    reference: str | None
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None
    active: bool


class AccessEvent(BaseModel):
    seq: int
    at: str
    actor: str
    actor_kind: str
    agency_code: str | None
    action: str
    outcome: str
    record_uri: str | None
    record_version: int | None
    purpose: str | None
    basis: str | None


class AccessLog(BaseModel):
    items: list[AccessEvent]
    next_before: int | None


class RecordList(BaseModel):
    items: list[RecordSummary]
    limit: int
    offset: int


def grant_out(g: GrantInfo) -> GrantOut:
    return GrantOut(id=g.id, agency_code=g.agency_code, purpose=g.purpose, basis=g.basis,
                    legal_reference=g.legal_reference, doc_type=g.doc_type, valid_from=g.valid_from,
                    valid_until=g.valid_until, created_at=g.created_at, revoked_at=g.revoked_at,
                    active=g.active_at(utcnow()))


def _authorization_out(a: AuthorizationInfo, me: str) -> AuthorizationOut:
    return AuthorizationOut(id=a.id, direction="given" if a.owner_key == me else "received", owner_ref=a.owner_key,
                            representative_ref=a.representative_key, doc_type=a.doc_type, reference=a.reference,
                            valid_from=a.valid_from, valid_until=a.valid_until, revoked_at=a.revoked_at,
                            active=a.active_at(utcnow()))


def _audit(request: Request, p: Principal, action: str, **fields: Any) -> None:
    services_of(request).audit(AuditEntry(actor=p.ref, actor_kind=p.kind, action=action, owner_key=p.owner_key,
                                          **fields))


def _period(valid_from: datetime | None, valid_until: datetime) -> tuple[datetime, datetime]:
    start = valid_from or utcnow()
    if valid_until.tzinfo is None or start.tzinfo is None:
        raise invalid("times need a time zone, e.g. 2026-12-31T23:59:59+07:00")
    if valid_until <= utcnow():
        raise invalid("valid_until must be in the future")
    return start, valid_until


@router.get("/records", response_model=RecordList, summary="My records")
def my_records(request: Request, principal: Annotated[Principal, CITIZEN],
               doc_type: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50,
               offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> RecordList:
    rows = services_of(request).access.readable_records(principal.owner_key or "", ReadScope(everything=True),
                                                         doc_type=doc_type, limit=limit, offset=offset)
    _audit(request, principal, "records.list", outcome="allowed", basis="owner", details={"count": len(rows)})
    return RecordList(items=[summary_of(f) for f in rows], limit=limit, offset=offset)


@router.get("/access-log", response_model=AccessLog, summary="Who accessed my records (and who tried)")
def my_access_log(request: Request, principal: Annotated[Principal, CITIZEN],
                  before: Annotated[int | None, Query(ge=1)] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> AccessLog:
    events = services_of(request).audit_log.events(owner_key=principal.owner_key, actions=ACCESS_ACTIONS,
                                                   before_seq=before, limit=limit)
    items = [AccessEvent(seq=e.seq, at=e.at, actor=e.actor, actor_kind=e.actor_kind, agency_code=e.agency_code,
                         action=e.action, outcome=e.outcome, record_uri=e.record_uri,
                         record_version=e.record_version, purpose=e.purpose, basis=e.basis) for e in events]
    return AccessLog(items=items, next_before=items[-1].seq if len(items) == limit else None)


@router.get("/grants", response_model=list[GrantOut], summary="Consents and legal-basis grants on my records")
def my_grants(request: Request, principal: Annotated[Principal, CITIZEN]) -> list[GrantOut]:
    return [grant_out(g) for g in services_of(request).access.list_grants(owner_key=principal.owner_key)]


@router.post("/grants", response_model=GrantOut, status_code=201, summary="Consent: let an agency read my records")
def give_consent(request: Request, body: GrantIn, principal: Annotated[Principal, CITIZEN]) -> GrantOut:
    start, end = _period(body.valid_from, body.valid_until)
    try:
        g = services_of(request).access.create_grant(
            owner_key=principal.owner_key or "", agency_code=body.agency_code, purpose=body.purpose,
            basis="consent", valid_from=start, valid_until=end, created_by=principal.ref, doc_type=body.doc_type)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    _audit(request, principal, "grant.create", agency_code=g.agency_code, purpose=g.purpose, basis=g.basis,
           details={"grant_id": g.id, "until": g.valid_until.isoformat(), "doc_type": g.doc_type})
    return grant_out(g)


@router.delete("/grants/{grant_id}", status_code=204, responses=MISSING, summary="Withdraw a consent")
def withdraw_consent(request: Request, grant_id: ID, principal: Annotated[Principal, CITIZEN]) -> Response:
    services = services_of(request)
    try:
        existing = services.access.list_grants(owner_key=principal.owner_key)
        g = next((x for x in existing if x.id == grant_id), None)
        if g is None:
            raise RecordNotFound(grant_id)
        if g.basis != "consent":
            raise ApiProblem(409, "legal_basis_grant", "a legal-basis grant is not withdrawn by consent")
        services.access.revoke_grant(grant_id, revoked_by=principal.ref, owner_key=principal.owner_key)
    except RecordNotFound:
        raise ApiProblem(404, "grant_not_found", "you have no grant with this id") from None
    _audit(request, principal, "grant.revoke", agency_code=g.agency_code, purpose=g.purpose, basis=g.basis,
           details={"grant_id": grant_id})
    return Response(status_code=204)


@router.get("/authorizations", response_model=list[AuthorizationOut],
            summary="Authorizations I gave and those naming me as representative")
def my_authorizations(request: Request, principal: Annotated[Principal, CITIZEN]) -> list[AuthorizationOut]:
    access = services_of(request).access
    me = principal.owner_key or ""
    rows = access.list_authorizations(owner_key=me) + access.list_authorizations(representative_key=me)
    return [_authorization_out(a, me) for a in rows]


@router.post("/authorizations", response_model=AuthorizationOut, status_code=201,
             summary="Register an authorization (uỷ quyền) for a representative")
def authorize_representative(request: Request, body: AuthorizationIn,
                             principal: Annotated[Principal, CITIZEN]) -> AuthorizationOut:
    services = services_of(request)
    start, end = _period(body.valid_from, body.valid_until)
    try:
        rep_key = owner_ref_of(services, body.representative_id)
        a = services.access.create_authorization(owner_key=principal.owner_key or "", representative_key=rep_key,
                                                 valid_from=start, valid_until=end, created_by=principal.ref,
                                                 doc_type=body.doc_type, reference=body.reference)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    _audit(request, principal, "authorization.create",
           details={"authorization_id": a.id, "representative_ref": rep_key, "doc_type": a.doc_type,
                    "until": a.valid_until.isoformat()})
    return _authorization_out(a, principal.owner_key or "")


@router.delete("/authorizations/{authorization_id}", status_code=204, responses=MISSING,
               summary="Revoke an authorization I gave")
def revoke_authorization(request: Request, authorization_id: ID,
                         principal: Annotated[Principal, CITIZEN]) -> Response:
    try:
        services_of(request).access.revoke_authorization(authorization_id, owner_key=principal.owner_key)
    except RecordNotFound:
        raise ApiProblem(404, "authorization_not_found", "you gave no authorization with this id") from None
    _audit(request, principal, "authorization.revoke", details={"authorization_id": authorization_id})
    return Response(status_code=204)

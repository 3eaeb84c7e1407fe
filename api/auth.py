"""Who is calling (authentication) and what they may read (authorization).

Principals
    * ``agency``  — another agency's system (or this agency's own intake system), API key
    * ``citizen`` — a citizen's app, API key bound to the citizen's opaque owner key (a stand-in
      for a VNeID login, which this deployment cannot reach)
    * ``admin``   — an operator tool (API key) or a desk user with the admin role
    * ``officer`` / ``supervisor`` — reception-desk users, username + password, session cookie

API keys (``sohoa_<key_id>_<secret>``) come in ``Authorization: Bearer …`` or ``X-API-Key``.
Desk users sign in at ``/login`` (HTML) or ``POST /v1/auth/login`` and carry the
``sohoa_session`` cookie (HttpOnly, SameSite=Lax; unsafe methods also need a same-origin
``Origin``/``Referer`` when the browser sends one).

Reading a record (the one rule, :func:`decide`):
    * a citizen reads their own records, or an owner's records under an active authorization
      (uỷ quyền) naming them as representative;
    * an agency (or this agency's desk users) reads records it converted; other records only
      with an active grant of the owner for the declared purpose (``Sohoa-Purpose`` header;
      consent or legal basis, time-bounded, optionally one document type), or when acting for
      a representative (``Sohoa-On-Behalf-Of``) who holds an active authorization;
    * admins manage clients, grants and the audit log but do not read citizens' documents.
Everything else is the same 403 as a record that does not exist.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem, LoginRequired, forbidden, invalid, unauthenticated
from repository import InvalidRequest
from repository.access import (AuthorizationInfo, ClientInfo, GrantInfo, ReaderQuery, ReaderView, ReadScope,
                               RecordFacts, UserInfo, check_purpose, utcnow)
from repository.identity import normalize_owner_id

if TYPE_CHECKING:
    from api.app import Services

SESSION_COOKIE = "sohoa_session"
PURPOSE_HEADER = "Sohoa-Purpose"
ON_BEHALF_HEADER = "Sohoa-On-Behalf-Of"
PRINCIPAL_KINDS: tuple[str, ...] = ("agency", "citizen", "admin", "officer", "supervisor")
DESK_ROLES: tuple[str, ...] = ("officer", "supervisor")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Principal:
    kind: str
    id: str  # client id or user name: opaque, safe to log
    name: str
    via: str  # "api_key" | "session"
    agency_code: str | None = None
    owner_key: str | None = None
    rate_per_second: float | None = None
    burst: int | None = None

    @property
    def ref(self) -> str:
        """How audit entries and jobs name this principal."""
        return f"{'client' if self.via == 'api_key' else 'user'}:{self.id}"

    @property
    def acts_for_agency(self) -> bool:
        return self.kind in ("agency", "officer", "supervisor")


def principal_from_client(client: ClientInfo) -> Principal:
    return Principal(kind=client.kind, id=client.id, name=client.name, via="api_key",
                     agency_code=client.agency_code, owner_key=client.owner_key,
                     rate_per_second=client.rate_per_second, burst=client.burst)


def principal_from_user(user: UserInfo, agency_code: str) -> Principal:
    return Principal(kind=user.role, id=user.name, name=user.display_name, via="session",
                     agency_code=agency_code if user.role in DESK_ROLES else None)


def services_of(request: Request) -> "Services":
    return request.app.state.services


def owner_ref_of(services: "Services", owner_id: str) -> str:
    """The opaque owner reference of a personal ID (12 digits) or enterprise code (10/13 digits);
    :class:`InvalidRequest` (never echoing the number) when it is neither."""
    digits = re.sub(r"[\s.\-]", "", owner_id or "")
    normalize_owner_id("citizen" if len(digits) == 12 else "organization", owner_id)
    return services.repository.owner_key(owner_id)


class KeyCache:
    """Recently verified API keys (by SHA-256 of the whole key) for ``ttl`` seconds, so a busy
    client does not cost a database lookup per request. Revocation or rotation through the API
    clears it at once; through the CLI (another process) it takes effect within ``ttl``."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, ClientInfo]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _slot(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> ClientInfo | None:
        if self.ttl <= 0:
            return None
        hit = self._entries.get(self._slot(key))
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, client: ClientInfo) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._slot(key)] = (time.monotonic() + self.ttl, client)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# ---- authentication ----------------------------------------------------------------------------
def presented_api_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthenticated("use 'Authorization: Bearer <API key>'")
        return value.strip()
    return request.headers.get("x-api-key") or None


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_same_origin(request: Request) -> None:
    """CSRF defence for cookie-authenticated unsafe requests."""
    if request.method in _SAFE_METHODS:
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return  # non-browser clients; browsers always send Origin on cross-site POSTs
    host = request.headers.get("host", "")
    if urlsplit(source).netloc != host:
        raise forbidden("cross-site request refused")


async def authenticate(request: Request) -> Principal | None:
    """The calling principal, ``None`` when no credentials were presented; 401 on bad ones.
    A recently verified API key is answered from memory; database look-ups run in a thread."""
    services = services_of(request)
    key = presented_api_key(request)
    if key is not None:
        client = services.key_cache.get(key)
        if client is None:
            client = await run_in_threadpool(services.access.authenticate_key, key)
            if client is not None:
                services.key_cache.put(key, client)
        if client is None:
            limit_failed_attempts(request)
            raise unauthenticated("invalid, expired or revoked API key")
        return principal_from_client(client)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = await run_in_threadpool(services.access.session_user, token)
        if user is None:
            return None
        _check_same_origin(request)
        return principal_from_user(user, services.settings.agency_code)
    return None


def limit_failed_attempts(request: Request) -> None:
    services = services_of(request)
    wait = services.failure_limiter.check(f"ip:{_client_ip(request)}")
    if wait:
        services.metrics.rate_limited.labels("auth_failure").inc()
        raise ApiProblem(429, "rate_limited", "too many failed authentication attempts",
                         headers={"Retry-After": str(wait)})


def enforce_rate_limit(request: Request, principal: Principal) -> None:
    services = services_of(request)
    wait = services.limiter.check(principal.ref, principal.rate_per_second, principal.burst)
    if wait:
        services.metrics.rate_limited.labels(principal.kind).inc()
        raise ApiProblem(429, "rate_limited", "rate limit exceeded; retry later",
                         headers={"Retry-After": str(wait)})


async def current_principal(request: Request) -> Principal:
    """Dependency: any authenticated principal (API key or desk session), rate-limited."""
    principal = await authenticate(request)
    if principal is None:
        raise unauthenticated()
    return admit(request, principal)


def admit(request: Request, principal: Principal) -> Principal:
    """The authenticated ``principal``, once the rate limit lets the request through."""
    enforce_rate_limit(request, principal)
    request.state.principal = principal
    return principal


def cached_key_principal(request: Request) -> Principal | None:
    """The principal of a well-formed API key that was verified within the cache lifetime, or
    ``None`` (no key, a malformed header, a session, or a key the cache does not hold: the
    caller then goes through :func:`authenticate`, which answers every such case)."""
    try:
        key = presented_api_key(request)
    except ApiProblem:  # a malformed header: authenticate() says so
        return None
    client = services_of(request).key_cache.get(key) if key else None
    return principal_from_client(client) if client is not None else None


def check_kind(principal: Principal, kinds: tuple[str, ...]) -> Principal:
    """``principal`` when it is one of ``kinds``; 403 ``forbidden`` otherwise."""
    if principal.kind not in kinds:
        raise forbidden(f"this operation is for: {', '.join(kinds)}")
    return principal


def require(*kinds: str) -> Callable[..., Principal]:
    """Dependency factory: the principal must be one of ``kinds``."""
    unknown = set(kinds) - set(PRINCIPAL_KINDS)
    if unknown:
        raise ValueError(f"unknown principal kinds {unknown}")

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        return check_kind(principal, kinds)

    dependency.__name__ = f"require_{'_or_'.join(kinds)}"
    return dependency


def optional_user(request: Request) -> Principal | None:
    """Dependency for pages: the signed-in desk user, or ``None``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    services = services_of(request)
    user = services.access.session_user(token)
    return principal_from_user(user, services.settings.agency_code) if user else None


def _desk_user(request: Request, roles: Iterable[str]) -> Principal:
    user = optional_user(request)
    if user is None:
        raise LoginRequired()
    _check_same_origin(request)
    if user.kind not in roles:
        raise forbidden(f"this page is for: {', '.join(roles)}")
    enforce_rate_limit(request, user)
    request.state.principal = user
    return user


def require_officer(request: Request) -> Principal:
    """Dependency for reception-desk pages: a signed-in officer or supervisor (HTML requests
    without a session are redirected to ``/login?next=…``; API requests get 401)."""
    return _desk_user(request, DESK_ROLES)


def require_supervisor(request: Request) -> Principal:
    return _desk_user(request, ("supervisor",))


def require_desk_admin(request: Request) -> Principal:
    return _desk_user(request, ("admin",))


# ---- request context for record reads -------------------------------------------------------------
@dataclass(frozen=True)
class ReadContext:
    purpose: str | None
    on_behalf_key: str | None  # owner key of the representative an agency acts for


async def read_context(request: Request) -> ReadContext:
    """Dependency: the declared purpose and representative (headers; never in URLs)."""
    purpose = request.headers.get(PURPOSE_HEADER) or None
    if purpose is not None:
        try:
            check_purpose(purpose)
        except InvalidRequest as exc:
            raise invalid(str(exc)) from None
    rep_id = request.headers.get(ON_BEHALF_HEADER) or None
    rep_key = None
    if rep_id is not None:
        try:
            rep_key = owner_ref_of(services_of(request), rep_id)
        except InvalidRequest:
            raise invalid(f"{ON_BEHALF_HEADER} must be a personal ID or enterprise code") from None
    return ReadContext(purpose=purpose, on_behalf_key=rep_key)


# ---- authorization ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: str | None = None  # owner / issuer / consent / legal_basis / authorization / representative
    grant_id: int | None = None
    authorization_id: int | None = None

    def audit_details(self) -> dict[str, int]:
        out = {}
        if self.grant_id is not None:
            out["grant_id"] = self.grant_id
        if self.authorization_id is not None:
            out["authorization_id"] = self.authorization_id
        return out


DENY = Decision(False)


def _matching_grant(grants: Iterable[GrantInfo], doc_type: str, at: datetime) -> GrantInfo | None:
    for g in grants:
        if g.active_at(at) and (g.doc_type is None or g.doc_type == doc_type):
            return g
    return None


def _matching_authorization(auths: Iterable[AuthorizationInfo], doc_type: str,
                            at: datetime) -> AuthorizationInfo | None:
    for a in auths:
        if a.active_at(at) and (a.doc_type is None or a.doc_type == doc_type):
            return a
    return None


def decide(principal: Principal, facts: RecordFacts, *, grants: Iterable[GrantInfo] = (),
           authorizations: Iterable[AuthorizationInfo] = (), at: datetime) -> Decision:
    """The access rule for one record, over already-fetched grants/authorizations (pure).

    ``grants`` are the owner's grants to the principal's agency for the declared purpose;
    ``authorizations`` those from the owner to the representative in play (the citizen
    principal, or the one an agency declared it acts for).
    """
    if principal.kind == "citizen":
        if principal.owner_key == facts.owner_key:
            return Decision(True, "owner")
        a = _matching_authorization(authorizations, facts.doc_type, at)
        return Decision(True, "authorization", authorization_id=a.id) if a else DENY
    if principal.acts_for_agency and principal.agency_code:
        if facts.converting_agency_code == principal.agency_code:
            return Decision(True, "issuer")
        g = _matching_grant(grants, facts.doc_type, at)
        if g is not None:
            return Decision(True, g.basis, grant_id=g.id)
        a = _matching_authorization(authorizations, facts.doc_type, at)
        if a is not None:
            return Decision(True, "representative", authorization_id=a.id)
    return DENY


def reader_query(principal: Principal, ctx: ReadContext, uri: str, *, at: datetime) -> ReaderQuery:
    """What to look up for ``principal`` reading ``uri``: the record plus the grant (agency,
    purpose) and authorization (representative) that could let them read it. Grants and
    revocations count from the very next request, in every server process: nothing of the
    decision is cached."""
    agency = principal.agency_code if principal.acts_for_agency else None
    representative = principal.owner_key if principal.kind == "citizen" else ctx.on_behalf_key if agency else None
    return ReaderQuery(uri, at, agency_code=agency, purpose=ctx.purpose if agency else None,
                       representative_key=representative)


def authorize_view(principal: Principal, view: ReaderView, at: datetime) -> Decision:
    return decide(principal, view.facts, grants=view.grants, authorizations=view.authorizations, at=at)


def list_scope(services: "Services", principal: Principal, owner_key: str, ctx: ReadContext) -> tuple[ReadScope, str | None]:
    """Which of ``owner_key``'s records the principal may list, and on which basis."""
    now = utcnow()
    if principal.kind == "citizen" and principal.owner_key:
        if principal.owner_key == owner_key:
            return ReadScope(everything=True), "owner"
        auths = services.access.active_authorizations(owner_key=owner_key, representative_key=principal.owner_key,
                                                      at=now)
        return _scope_of(auths), "authorization" if auths else None
    if principal.acts_for_agency and principal.agency_code:
        basis = "issuer"
        scope = ReadScope(converted_by=principal.agency_code)
        if ctx.purpose:
            grants = services.access.active_grants(owner_key=owner_key, agency_code=principal.agency_code,
                                                   purpose=ctx.purpose, at=now)
            if grants:
                scope, basis = _merge(scope, _scope_of(grants)), grants[0].basis
        if ctx.on_behalf_key:
            auths = services.access.active_authorizations(owner_key=owner_key,
                                                          representative_key=ctx.on_behalf_key, at=now)
            if auths:
                scope, basis = _merge(scope, _scope_of(auths)), "representative"
        return scope, basis
    return ReadScope(), None


def _scope_of(items: Iterable[GrantInfo | AuthorizationInfo]) -> ReadScope:
    types: set[str] = set()
    for item in items:
        if item.doc_type is None:
            return ReadScope(everything=True)
        types.add(item.doc_type)
    return ReadScope(doc_types=frozenset(types))


def _merge(a: ReadScope, b: ReadScope) -> ReadScope:
    return ReadScope(everything=a.everything or b.everything, converted_by=a.converted_by or b.converted_by,
                     doc_types=a.doc_types | b.doc_types)

"""Who may use the repository: API clients and their keys, desk users and their sessions, access
grants (consent / legal basis), authorizations (uỷ quyền) and digitization jobs.

These are data next to the records, in the same SQL index (tables created by the Alembic
migration ``0101_access_audit``; desk users' full names and signing-key references by
``0102_user_signing``). Secrets are never stored: API keys and session tokens are kept
as SHA-256 digests (they are 256-bit random values, so a fast hash is enough and keeps request
authentication cheap), passwords as scrypt hashes with a per-user salt. Owners are referred to by
their opaque ``owner_key`` only (HMAC of the ID, see :mod:`repository.identity`).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
import unicodedata
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Callable, Literal

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from .db import db_errors, execute_prepared, make_autocommit_engine, retry_on_disconnect, run_on_cursor
from .errors import InvalidRequest, RecordNotFound
from .models import Base, Blob, Owner, Record, Version

ClientKind = Literal["agency", "citizen", "admin"]
CLIENT_KINDS: tuple[str, ...] = ("agency", "citizen", "admin")
UserRole = Literal["officer", "supervisor", "admin"]
USER_ROLES: tuple[str, ...] = ("officer", "supervisor", "admin")
SIGNING_KINDS: tuple[str, ...] = ("pkcs12", "pkcs11", "remote")
MAX_FULL_NAME_CHARS = 64
GrantBasis = Literal["consent", "legal_basis"]
GRANT_BASES: tuple[str, ...] = ("consent", "legal_basis")
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed")

KEY_PREFIX = "sohoa"
_KEY_RE = re.compile(r"^sohoa_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_PURPOSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_AGENCY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_OWNER_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_DOC_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_CHARS = 10


# ---- tables ----------------------------------------------------------------------------------
class ApiClient(Base):
    """An agency system, a citizen's app or an admin tool calling the API."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    agency_code: Mapped[str | None] = mapped_column(String(64))
    owner_key: Mapped[str | None] = mapped_column(String(64), index=True)
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    burst: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """One credential of a client (``sohoa_<key_id>_<secret>``); rotation adds one, retires others."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), nullable=False, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A person signing in to the reception-desk pages (officer, supervisor, admin)."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Circular 01/2023/TT-VPCP Art. 8: the person who scans signs with a personal key (migration
    # 0102_user_signing). ``signing_ref`` is an opaque JSON reference interpreted by
    # ``ingest.officers`` (a file under SOHOA_HOME, token/key labels, a signing service URL):
    # never a passphrase, PIN or key.
    full_name: Mapped[str | None] = mapped_column(String(200))
    signing_kind: Mapped[str | None] = mapped_column(String(16))
    signing_ref: Mapped[str | None] = mapped_column(Text)


class UserSession(Base):
    __tablename__ = "user_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AccessGrant(Base):
    """Permission for an agency to read an owner's records for one purpose, for a period.

    ``basis`` is ``consent`` (given by the owner) or ``legal_basis`` (registered by an admin with
    the legal reference). ``doc_type`` narrows it to one document type (``None``: all types).
    """

    __tablename__ = "access_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_key: Mapped[str] = mapped_column(String(64), nullable=False)
    agency_code: Mapped[str] = mapped_column(String(64), nullable=False)
    purpose: Mapped[str] = mapped_column(String(64), nullable=False)
    basis: Mapped[str] = mapped_column(String(16), nullable=False)
    legal_reference: Mapped[str | None] = mapped_column(String(255))
    doc_type: Mapped[str | None] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_access_grants_owner_agency", "owner_key", "agency_code"),)


class Authorization(Base):
    """Uỷ quyền: the owner authorizes a representative (a citizen or organization) for a period."""

    __tablename__ = "authorizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_key: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    representative_key: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    doc_type: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(255))  # the authorization document's number
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """A digitization request submitted through the API and run by the in-process worker pool."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    submitted_by: Mapped[str] = mapped_column(String(100), nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    owner_key: Mapped[str] = mapped_column(String(64), nullable=False)
    doc_type: Mapped[str | None] = mapped_column(String(64))
    dossier_code: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer, nullable=False)
    input_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result_uri: Mapped[str | None] = mapped_column(String(160))
    result_version: Mapped[int | None] = mapped_column(Integer)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("submitted_by", "idempotency_key", name="uq_jobs_submitter_idempotency"),
        Index("ix_jobs_status", "status"),
    )


# ---- plain results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientInfo:
    id: str
    name: str
    kind: str
    agency_code: str | None
    owner_key: str | None
    rate_per_second: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None
    active_keys: int = 0


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued key: ``secret`` is shown once and never stored."""

    client: ClientInfo
    key_id: str
    secret: str


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    full_name: str | None = None  # as shown in the signature appearance, the mark, the receipt
    signing_kind: str | None = None  # pkcs12 | pkcs11 | remote; None: no personal signing key
    signing_ref: str | None = None  # JSON reference (no secrets), see ingest.officers

    @property
    def display_name(self) -> str:
        return self.full_name or self.name


@dataclass(frozen=True)
class GrantInfo:
    id: int
    owner_key: str
    agency_code: str
    purpose: str
    basis: str
    legal_reference: str | None
    doc_type: str | None
    valid_from: datetime
    valid_until: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    def active_at(self, at: datetime) -> bool:
        return self.revoked_at is None and self.valid_from <= at < self.valid_until


@dataclass(frozen=True)
class AuthorizationInfo:
    id: int
    owner_key: str
    representative_key: str
    doc_type: str | None
    reference: str | None
    valid_from: datetime
    valid_until: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    def active_at(self, at: datetime) -> bool:
        return self.revoked_at is None and self.valid_from <= at < self.valid_until


@dataclass(frozen=True)
class RecordFacts:
    """What access decisions and downloads need to know about one version of a record."""

    uri: str
    version: int
    current_version: int
    owner_key: str
    converting_agency_code: str
    doc_type: str
    title: str
    issuing_agency: str | None
    pdf_sha256: str
    pdf_key: str
    pdf_size: int
    record_sha256: str
    record_key: str
    pages: int
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReaderView:
    """One record version as a given reader sees it, from ONE query: the facts, plus the reader's
    candidate grant and authorization (at most one each; already filtered to active at the time
    asked and matching the version's document type). The access rule itself stays in
    :func:`api.auth.decide`, which re-checks both."""

    facts: RecordFacts
    grants: tuple[GrantInfo, ...] = ()
    authorizations: tuple[AuthorizationInfo, ...] = ()


@dataclass(frozen=True)
class ReaderQuery:
    """Which reader asks for the current version of which record, as of when (the inputs of
    :meth:`AccessStore.reader_view`, for :meth:`AccessStore.reader_views`)."""

    uri: str
    at: datetime
    agency_code: str | None = None
    purpose: str | None = None
    representative_key: str | None = None


@dataclass(frozen=True)
class ReadScope:
    """Which of one owner's records a principal may list: all, those converted by an agency,
    and/or those of some document types."""

    everything: bool = False
    converted_by: str | None = None
    doc_types: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.everything or self.converted_by or self.doc_types)


@dataclass(frozen=True)
class JobInfo:
    id: str
    submitted_by: str
    owner_key: str
    doc_type: str | None
    dossier_code: str | None
    files: int
    input_bytes: int
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_uri: str | None
    result_version: int | None
    result_sha256: str | None
    error_code: str | None
    error_message: str | None


# ---- helpers ---------------------------------------------------------------------------------
def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt_hex$hash_hex`` (RFC 7914 parameters; 16 MiB of memory per check)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n),
                                r=int(r), p=int(p), dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def parse_api_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else ``None``."""
    m = _KEY_RE.match(key or "")
    return (m["key_id"], m["secret"]) if m else None


def check_name(kind: str, value: str, pattern: re.Pattern[str] = _NAME_RE) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidRequest(f"{kind} {value!r} is not allowed (letters, digits and . _ - @ :, up to 64)")
    return value


def check_full_name(full_name: str) -> str:
    """A person's full name as it will be printed (NFC, single spaces, 2..64 characters: it is
    also a certificate's common name, which X.509 limits to 64)."""
    if not isinstance(full_name, str):
        raise InvalidRequest("full name must be text")
    name = " ".join(unicodedata.normalize("NFC", full_name).split())
    if not 2 <= len(name) <= MAX_FULL_NAME_CHARS or any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidRequest(f"full name must have 2 to {MAX_FULL_NAME_CHARS} printable characters")
    return name


def _check_signing(kind: str | None, ref: str | None) -> None:
    if kind is not None and kind not in SIGNING_KINDS:
        raise InvalidRequest(f"signing key kind must be one of {SIGNING_KINDS}, got {kind!r}")
    if (kind is None) != (ref is None):
        raise InvalidRequest("a signing key needs both its kind and its reference")


def check_purpose(purpose: str) -> str:
    return check_name("purpose", purpose, _PURPOSE_RE)


def check_agency_code(code: str) -> str:
    return check_name("agency code", code, _AGENCY_RE)


def check_doc_type(doc_type: str | None) -> str | None:
    return None if doc_type is None else check_name("document type", doc_type, _DOC_TYPE_RE)


def check_owner_key(owner_key: str) -> str:
    if not isinstance(owner_key, str) or not _OWNER_KEY_RE.match(owner_key):
        raise InvalidRequest("owner reference must be 64 lowercase hex characters")
    return owner_key


def check_period(valid_from: datetime, valid_until: datetime) -> tuple[datetime, datetime]:
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise InvalidRequest("validity times need a time zone (e.g. 2026-12-01T00:00:00+07:00)")
    if valid_until <= valid_from:
        raise InvalidRequest("valid_until must be after valid_from")
    return valid_from.astimezone(timezone.utc), valid_until.astimezone(timezone.utc)


def _user_info(u: User) -> UserInfo:
    return UserInfo(name=u.name, role=u.role, created_at=aware(u.created_at),  # type: ignore[arg-type]
                    disabled_at=aware(u.disabled_at), full_name=u.full_name,
                    signing_kind=u.signing_kind, signing_ref=u.signing_ref)


def _client_info(c: ApiClient, active_keys: int = 0) -> ClientInfo:
    return ClientInfo(id=c.id, name=c.name, kind=c.kind, agency_code=c.agency_code, owner_key=c.owner_key,
                      rate_per_second=c.rate_per_second, burst=c.burst, created_at=aware(c.created_at),
                      revoked_at=aware(c.revoked_at), active_keys=active_keys)


def _grant_info(g: AccessGrant) -> GrantInfo:
    return GrantInfo(id=g.id, owner_key=g.owner_key, agency_code=g.agency_code, purpose=g.purpose,
                     basis=g.basis, legal_reference=g.legal_reference, doc_type=g.doc_type,
                     valid_from=aware(g.valid_from), valid_until=aware(g.valid_until),
                     created_at=aware(g.created_at), created_by=g.created_by, revoked_at=aware(g.revoked_at))


def _authorization_info(a: Authorization) -> AuthorizationInfo:
    return AuthorizationInfo(id=a.id, owner_key=a.owner_key, representative_key=a.representative_key,
                             doc_type=a.doc_type, reference=a.reference, valid_from=aware(a.valid_from),
                             valid_until=aware(a.valid_until), created_at=aware(a.created_at),
                             created_by=a.created_by, revoked_at=aware(a.revoked_at))


def _job_info(j: Job) -> JobInfo:
    return JobInfo(id=j.id, submitted_by=j.submitted_by, owner_key=j.owner_key, doc_type=j.doc_type,
                   dossier_code=j.dossier_code, files=j.files, input_bytes=j.input_bytes, status=j.status,
                   created_at=aware(j.created_at), started_at=aware(j.started_at),
                   finished_at=aware(j.finished_at), result_uri=j.result_uri, result_version=j.result_version,
                   result_sha256=j.result_sha256, error_code=j.error_code, error_message=j.error_message)


def _facts_query(record_key_column):  # noqa: ANN001, ANN202 (SQLAlchemy column / Select)
    return (select(Record.uri, Record.current_version, Record.converting_agency_code, Record.title,
                   Record.issuing_agency, Record.updated_at, Version.version, Version.doc_type, Version.pdf_sha256,
                   Version.record_sha256, Version.pages, Version.status, Version.created_at, Owner.owner_key,
                   Blob.size, Blob.object_key.label("pdf_key"), record_key_column)
            .select_from(Record)
            .join(Version, Version.record_id == Record.id)
            .join(Owner, Owner.id == Record.owner_id)
            .join(Blob, Blob.sha256 == Version.pdf_sha256))


@functools.cache
def _facts_statement(specific_version: bool):  # noqa: ANN202 (Select, built once: statement building costs more than the query)
    record_blob = aliased(Blob)
    q = (_facts_query(record_blob.object_key.label("record_key"))
         .join(record_blob, record_blob.sha256 == Version.record_sha256)
         .where(Record.uri == bindparam("uri"), Version.status != "deleted"))
    q = q.where(Version.version == bindparam("version")) if specific_version else q.order_by(Version.version.desc())
    return q.limit(1)


@functools.cache
def _key_statement():  # noqa: ANN202
    return (select(ApiKey.secret_sha256, ApiKey.expires_at, ApiKey.revoked_at.label("key_revoked"),
                   *ApiClient.__table__.columns)
            .join(ApiClient, ApiClient.id == ApiKey.client_id)
            .where(ApiKey.key_id == bindparam("key_id")))


@functools.cache
def _active_grants_statement():  # noqa: ANN202
    g = AccessGrant.__table__
    return select(g).where(g.c.owner_key == bindparam("owner_key"), g.c.agency_code == bindparam("agency_code"),
                           g.c.purpose == bindparam("purpose"), g.c.revoked_at.is_(None),
                           g.c.valid_from <= bindparam("now"), g.c.valid_until > bindparam("now"))


@functools.cache
def _active_authorizations_statement():  # noqa: ANN202
    a = Authorization.__table__
    return select(a).where(a.c.owner_key == bindparam("owner_key"),
                           a.c.representative_key == bindparam("representative_key"), a.c.revoked_at.is_(None),
                           a.c.valid_from <= bindparam("now"), a.c.valid_until > bindparam("now"))


_GRANT_COLUMNS = tuple(c.name for c in AccessGrant.__table__.columns)
_AUTHORIZATION_COLUMNS = tuple(c.name for c in Authorization.__table__.columns)


@functools.cache
def _reader_query(value: Callable[[str], Any]):  # noqa: ANN202 (Select)
    """Record facts + the first active matching grant (agency, purpose) and authorization
    (representative) of the record's owner, in one round trip (correlated subqueries in the ON
    clauses of two outer joins: plain SQL that SQLite and PostgreSQL both run). ``value(name)``
    gives the request's ``uri``, ``now``, ``agency_code``, ``purpose``, ``representative_key``:
    bound parameters for one request, columns of the request set for a batch."""
    grants, auths = AccessGrant.__table__, Authorization.__table__
    g, a = grants.alias("g"), auths.alias("a")
    gi, ai = grants.alias("gi"), auths.alias("ai")
    now = value("now")
    grant_id = (select(gi.c.id)
                .where(gi.c.owner_key == Owner.owner_key, gi.c.agency_code == value("agency_code"),
                       gi.c.purpose == value("purpose"), gi.c.revoked_at.is_(None), gi.c.valid_from <= now,
                       gi.c.valid_until > now, or_(gi.c.doc_type.is_(None), gi.c.doc_type == Version.doc_type))
                .order_by(gi.c.id).limit(1).correlate_except(gi).scalar_subquery())
    auth_id = (select(ai.c.id)
               .where(ai.c.owner_key == Owner.owner_key, ai.c.representative_key == value("representative_key"),
                      ai.c.revoked_at.is_(None), ai.c.valid_from <= now, ai.c.valid_until > now,
                      or_(ai.c.doc_type.is_(None), ai.c.doc_type == Version.doc_type))
               .order_by(ai.c.id).limit(1).correlate_except(ai).scalar_subquery())
    record_blob = aliased(Blob)
    return (_facts_query(record_blob.object_key.label("record_key"))
            .join(record_blob, record_blob.sha256 == Version.record_sha256)
            .outerjoin(g, g.c.id == grant_id)
            .outerjoin(a, a.c.id == auth_id)
            .add_columns(*(g.c[n].label(f"g_{n}") for n in _GRANT_COLUMNS),
                         *(a.c[n].label(f"a_{n}") for n in _AUTHORIZATION_COLUMNS))
            .where(Record.uri == value("uri"), Version.status != "deleted"))


@functools.cache
def _reader_statement(specific_version: bool):  # noqa: ANN202 (Select, built once)
    q = _reader_query(bindparam)
    q = q.where(Version.version == bindparam("version")) if specific_version else q.order_by(Version.version.desc())
    return q.limit(1)


# the columns of a batch's request set (PostgreSQL: one array parameter each, unnested together)
_BATCH_COLUMNS = (("uri", String), ("now", DateTime(timezone=True)), ("agency_code", String), ("purpose", String),
                  ("representative_key", String))


@functools.cache
def _reader_batch_statement():  # noqa: ANN202 (Select, built once; PostgreSQL only)
    """``_reader_statement(False)`` for many requests in one round trip: the requests are
    unnested from one array per column, each joined LATERAL to its own reader query; a request
    that finds nothing still gives its row (``ord`` and NULLs), so every request gets exactly one
    row, tagged with its 1-based position."""
    requests = (func.unnest(*(bindparam(f"{name}s", type_=ARRAY(type_)) for name, type_ in _BATCH_COLUMNS))
                .table_valued(*(name for name, _ in _BATCH_COLUMNS), with_ordinality="ord")
                .render_derived(name="req"))
    one = (_reader_query(lambda name: requests.c[name])
           .order_by(Version.version.desc()).limit(1).lateral("hit"))
    return select(requests.c.ord, one).select_from(requests).outerjoin(one, true())


def _prefixed(row, prefix: str, names: tuple[str, ...]) -> SimpleNamespace | None:  # noqa: ANN001 (Row)
    """The ``prefix``-labelled columns of ``row`` as attributes (``None`` when the join found nothing)."""
    if getattr(row, f"{prefix}id") is None:
        return None
    return SimpleNamespace(**{n: getattr(row, f"{prefix}{n}") for n in names})


_PG_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class _PgPrepared:
    """A statement as a PostgreSQL prepared statement: the ``PREPARE`` body ($1, $2, ... in order
    of first use), the parameter names in that order, the statement's own literal parameters
    (LIMIT), the ``EXECUTE`` text and the row type (attribute access by column label)."""

    prepare: str
    order: tuple[str, ...]
    defaults: dict
    execute: str
    row_type: type


@functools.cache
def _pg_prepared(name: str, statement, dialect) -> _PgPrepared:  # noqa: ANN001 (Select, Dialect)
    compiled = statement.compile(dialect=dialect)
    order: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m[1] not in order:
            order.append(m[1])
        return f"${order.index(m[1]) + 1}"

    body = _PG_PLACEHOLDER.sub(number, compiled.string).replace("%%", "%")
    return _PgPrepared(prepare=f"PREPARE {name} AS {body}", order=tuple(order), defaults=dict(compiled.params),
                       execute=f"EXECUTE {name}({', '.join(['%s'] * len(order))})",
                       row_type=namedtuple("PreparedRow", tuple(statement.selected_columns.keys())))  # type: ignore[misc]


def _first_prepared(engine: Engine, operation: str, name: str, statement, params: dict):  # noqa: ANN001, ANN202 (Select -> row)
    """The first row of ``statement`` (attribute access by column label), or ``None``.

    On PostgreSQL through a server-side prepared statement (per connection, made on first use),
    because planning this many-join query costs the server several times more than running it,
    on a bare DB-API cursor (:func:`repository.db.run_on_cursor`: SQLAlchemy's result machinery
    costs more Python time than the round trip). Other databases run the statement as is."""
    if engine.dialect.name != "postgresql":
        return retry_on_disconnect(engine, operation, lambda conn: conn.execute(statement, params).first())
    rows = _prepared_rows(engine, operation, name, statement, params)  # (the reader statements: LIMIT 1)
    return rows[0] if rows else None


def _prepared_rows(engine: Engine, operation: str, name: str, statement, params: dict) -> list:  # noqa: ANN001 (Select)
    """Every row of ``statement`` run as :func:`_first_prepared` runs it on PostgreSQL, with
    attribute access by column label."""
    p = _pg_prepared(name, statement, engine.dialect)
    args = [params[n] if n in params else p.defaults[n] for n in p.order]

    def work(cursor, info: dict) -> list:  # noqa: ANN001 (DB-API cursor)
        execute_prepared(cursor, info, name, p.prepare, p.execute, args)
        return [p.row_type._make(row) for row in cursor.fetchall()]

    return run_on_cursor(engine, operation, work)


def _facts_from_row(r) -> RecordFacts:  # noqa: ANN001 (Row)
    return RecordFacts(uri=r.uri, version=r.version, current_version=r.current_version, owner_key=r.owner_key,
                       converting_agency_code=r.converting_agency_code, doc_type=r.doc_type, title=r.title,
                       issuing_agency=r.issuing_agency, pdf_sha256=r.pdf_sha256, pdf_key=r.pdf_key,
                       pdf_size=int(r.size), record_sha256=r.record_sha256, record_key=r.record_key,
                       pages=r.pages, status=r.status, created_at=aware(r.created_at),
                       updated_at=aware(r.updated_at))


def _view_from_row(row) -> ReaderView:  # noqa: ANN001 (a reader statement's row)
    grant = _prefixed(row, "g_", _GRANT_COLUMNS)
    auth = _prefixed(row, "a_", _AUTHORIZATION_COLUMNS)
    return ReaderView(facts=_facts_from_row(row),
                      grants=(_grant_info(grant),) if grant is not None else (),  # type: ignore[arg-type]
                      authorizations=(_authorization_info(auth),) if auth is not None else ())  # type: ignore[arg-type]


# ---- the store -------------------------------------------------------------------------------
class AccessStore:
    """Clients, users, grants, authorizations and jobs in the repository's SQL index.

    The schema must already be migrated (``Repository.open`` does it).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads: Engine | None = None
        self._reads_lock = threading.Lock()

    @property
    def reads(self) -> Engine:
        """The pool for the per-request record read: autocommit connections without a pre-ping,
        so one read is one round trip (:func:`repository.db.make_autocommit_engine`; a connection
        left stale by a server restart is retried once). Opened on first use."""
        if self._reads is None:
            with self._reads_lock:
                if self._reads is None:
                    self._reads = make_autocommit_engine(self.engine)
        return self._reads

    def close(self) -> None:
        """Close the read pool (the main engine belongs to whoever passed it in)."""
        with self._reads_lock:
            if self._reads is not None and self._reads is not self.engine:
                self._reads.dispose()
            self._reads = None

    @contextmanager
    def _session(self, operation: str) -> Iterator[Session]:
        with db_errors(operation), self._sessions() as s:
            yield s

    # -- clients and keys ------------------------------------------------------------------------
    def create_client(self, name: str, kind: str, *, agency_code: str | None = None,
                      owner_key: str | None = None, rate_per_second: float | None = None,
                      burst: int | None = None) -> IssuedKey:
        if kind not in CLIENT_KINDS:
            raise InvalidRequest(f"client kind must be one of {CLIENT_KINDS}, got {kind!r}")
        if not name or len(name) > 200:
            raise InvalidRequest("client name must be 1-200 characters")
        if kind == "agency":
            if not agency_code:
                raise InvalidRequest("an agency client needs its agency code")
            check_agency_code(agency_code)
        elif agency_code:
            raise InvalidRequest(f"a {kind} client has no agency code")
        if kind == "citizen":
            if not owner_key:
                raise InvalidRequest("a citizen client needs the citizen's owner reference")
            check_owner_key(owner_key)
        elif owner_key:
            raise InvalidRequest(f"a {kind} client has no owner")
        if rate_per_second is not None and rate_per_second <= 0:
            raise InvalidRequest("rate must be positive")
        if burst is not None and burst < 1:
            raise InvalidRequest("burst must be at least 1")
        client = ApiClient(id="c_" + secrets.token_hex(8), name=name, kind=kind, agency_code=agency_code,
                           owner_key=owner_key, rate_per_second=rate_per_second, burst=burst,
                           created_at=utcnow())
        with self._session("create client") as s, s.begin():
            s.add(client)
            s.flush()
            key_id, secret = self._new_key(s, client.id)
        return IssuedKey(client=_client_info(client, 1), key_id=key_id, secret=secret)

    @staticmethod
    def _new_key(s: Session, client_id: str) -> tuple[str, str]:
        key_id = secrets.token_hex(6)
        token = secrets.token_urlsafe(32)
        s.add(ApiKey(key_id=key_id, client_id=client_id, secret_sha256=sha256_hex(token),
                     created_at=utcnow()))
        return key_id, f"{KEY_PREFIX}_{key_id}_{token}"

    def rotate_client(self, client_id: str, *, grace: timedelta = timedelta(0)) -> IssuedKey:
        """Issue a new key; the client's other keys stop working after ``grace``."""
        now = utcnow()
        with self._session("rotate client") as s, s.begin():
            client = s.get(ApiClient, client_id)
            if client is None or client.revoked_at is not None:
                raise RecordNotFound(f"no active client {client_id}")
            old = s.scalars(select(ApiKey).where(ApiKey.client_id == client_id, ApiKey.revoked_at.is_(None))).all()
            for k in old:
                if grace > timedelta(0):
                    expiry = now + grace
                    current = aware(k.expires_at)
                    k.expires_at = expiry if current is None or current > expiry else current
                else:
                    k.revoked_at = now
            key_id, secret = self._new_key(s, client_id)
            info = _client_info(client, 1 + (len(old) if grace > timedelta(0) else 0))
        return IssuedKey(client=info, key_id=key_id, secret=secret)

    def revoke_client(self, client_id: str) -> ClientInfo:
        now = utcnow()
        with self._session("revoke client") as s, s.begin():
            client = s.get(ApiClient, client_id)
            if client is None:
                raise RecordNotFound(f"no client {client_id}")
            client.revoked_at = client.revoked_at or now
            s.execute(update(ApiKey).where(ApiKey.client_id == client_id, ApiKey.revoked_at.is_(None))
                      .values(revoked_at=now))
            return _client_info(client)

    def get_client(self, client_id: str) -> ClientInfo | None:
        with self._session("read client") as s:
            c = s.get(ApiClient, client_id)
            return _client_info(c) if c else None

    def list_clients(self) -> list[ClientInfo]:
        now = utcnow()
        with self._session("list clients") as s:
            clients = s.scalars(select(ApiClient).order_by(ApiClient.created_at)).all()
            keys = s.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))).all()
            live: dict[str, int] = {}
            for k in keys:
                if aware(k.expires_at) is None or aware(k.expires_at) > now:
                    live[k.client_id] = live.get(k.client_id, 0) + 1
            return [_client_info(c, live.get(c.id, 0)) for c in clients]

    def authenticate_key(self, key: str, *, at: datetime | None = None) -> ClientInfo | None:
        """The active client a presented key belongs to, else ``None`` (constant-time compare)."""
        parsed = parse_api_key(key)
        if parsed is None:
            return None
        key_id, token = parsed
        now = at or utcnow()
        with db_errors("authenticate"), self.engine.connect() as conn:
            row = conn.execute(_key_statement(), {"key_id": key_id}).first()
        if row is None:
            hmac.compare_digest(sha256_hex(token), "0" * 64)  # same work for unknown key ids
            return None
        if not hmac.compare_digest(sha256_hex(token), row.secret_sha256):
            return None
        expires = aware(row.expires_at)
        if row.key_revoked is not None or row.revoked_at is not None or (expires is not None and expires <= now):
            return None
        return ClientInfo(id=row.id, name=row.name, kind=row.kind, agency_code=row.agency_code,
                          owner_key=row.owner_key, rate_per_second=row.rate_per_second, burst=row.burst,
                          created_at=aware(row.created_at), revoked_at=None, active_keys=1)

    # -- desk users and sessions -----------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, *, replace: bool = False,
                 full_name: str | None = None, signing_kind: str | None = None,
                 signing_ref: str | None = None) -> UserInfo:
        """Create a desk user (``replace``: reset role and password of an existing one). The full
        name and the personal signing key reference are set when given, else kept."""
        check_name("user name", name)
        _check_signing(signing_kind, signing_ref)
        if role not in USER_ROLES:
            raise InvalidRequest(f"role must be one of {USER_ROLES}, got {role!r}")
        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidRequest(f"password must have at least {MIN_PASSWORD_CHARS} characters")
        full_name = check_full_name(full_name) if full_name is not None else None
        hashed = hash_password(password)
        with self._session("add user") as s, s.begin():
            user = s.get(User, name)
            if user is not None and not replace:
                raise InvalidRequest(f"user {name!r} already exists")
            if user is None:
                user = User(name=name, role=role, password_hash=hashed, created_at=utcnow(),
                            full_name=full_name, signing_kind=signing_kind, signing_ref=signing_ref)
                s.add(user)
            else:
                user.role, user.password_hash, user.disabled_at = role, hashed, None
                if full_name is not None:
                    user.full_name = full_name
                if signing_kind is not None:
                    user.signing_kind, user.signing_ref = signing_kind, signing_ref
                s.execute(UserSession.__table__.delete().where(UserSession.user_name == name))
            s.flush()
            return _user_info(user)

    def get_user(self, name: str) -> UserInfo | None:
        """One desk user (disabled ones too: callers decide), or ``None``."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            return None
        with self._session("read user") as s:
            user = s.get(User, name)
            return _user_info(user) if user is not None else None

    def set_user_signing(self, name: str, *, kind: str | None, ref: str | None,
                         full_name: str | None = None) -> UserInfo:
        """Set (or with ``kind=None`` remove) a user's personal signing key reference, and
        optionally the full name. The reference is plain JSON with no secret in it."""
        _check_signing(kind, ref)
        full_name = check_full_name(full_name) if full_name is not None else None
        with self._session("set signing key") as s, s.begin():
            user = s.get(User, name)
            if user is None:
                raise RecordNotFound(f"no user {name}")
            user.signing_kind, user.signing_ref = kind, ref
            if full_name is not None:
                user.full_name = full_name
            s.flush()
            return _user_info(user)

    def disable_user(self, name: str) -> None:
        with self._session("disable user") as s, s.begin():
            user = s.get(User, name)
            if user is None:
                raise RecordNotFound(f"no user {name}")
            user.disabled_at = user.disabled_at or utcnow()
            s.execute(UserSession.__table__.delete().where(UserSession.user_name == name))

    def list_users(self) -> list[UserInfo]:
        with self._session("list users") as s:
            return [_user_info(u) for u in s.scalars(select(User).order_by(User.name))]

    def check_user_password(self, name: str, password: str) -> UserInfo | None:
        with self._session("sign in") as s:
            user = s.get(User, name) if isinstance(name, str) and _NAME_RE.match(name) else None
        if user is None:
            check_password(password, _dummy_hash())  # same cost as a known user: names do not leak
            return None
        if not check_password(password, user.password_hash) or user.disabled_at is not None:
            return None
        return _user_info(user)

    def open_session(self, name: str, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self._session("open session") as s, s.begin():
            s.execute(UserSession.__table__.delete().where(UserSession.expires_at < now))
            s.add(UserSession(token_sha256=sha256_hex(token), user_name=name, created_at=now,
                              expires_at=now + ttl))
        return token

    def session_user(self, token: str) -> UserInfo | None:
        if not token or len(token) > 100:
            return None
        with self._session("read session") as s:
            row = s.execute(select(UserSession, User).join(User, User.name == UserSession.user_name)
                            .where(UserSession.token_sha256 == sha256_hex(token))).first()
        if row is None:
            return None
        sess, user = row
        if aware(sess.expires_at) <= utcnow() or user.disabled_at is not None:
            return None
        return _user_info(user)

    def close_session(self, token: str) -> None:
        with self._session("close session") as s, s.begin():
            s.execute(UserSession.__table__.delete().where(UserSession.token_sha256 == sha256_hex(token)))

    # -- grants ------------------------------------------------------------------------------------
    def create_grant(self, *, owner_key: str, agency_code: str, purpose: str, basis: str,
                     valid_from: datetime, valid_until: datetime, created_by: str,
                     doc_type: str | None = None, legal_reference: str | None = None) -> GrantInfo:
        check_owner_key(owner_key)
        check_agency_code(agency_code)
        check_purpose(purpose)
        check_doc_type(doc_type)
        if basis not in GRANT_BASES:
            raise InvalidRequest(f"basis must be one of {GRANT_BASES}")
        if basis == "legal_basis" and not (legal_reference or "").strip():
            raise InvalidRequest("a legal-basis grant needs the legal reference (law, article)")
        start, end = check_period(valid_from, valid_until)
        grant = AccessGrant(owner_key=owner_key, agency_code=agency_code, purpose=purpose, basis=basis,
                            legal_reference=(legal_reference or None), doc_type=doc_type, valid_from=start,
                            valid_until=end, created_at=utcnow(), created_by=created_by)
        with self._session("create grant") as s, s.begin():
            s.add(grant)
            s.flush()
            return _grant_info(grant)

    def revoke_grant(self, grant_id: int, *, revoked_by: str, owner_key: str | None = None) -> GrantInfo:
        """Revoke a grant; with ``owner_key`` only that owner's grant (else :class:`RecordNotFound`)."""
        with self._session("revoke grant") as s, s.begin():
            grant = s.get(AccessGrant, grant_id)
            if grant is None or (owner_key is not None and grant.owner_key != owner_key):
                raise RecordNotFound(f"no grant {grant_id}")
            if grant.revoked_at is None:
                grant.revoked_at, grant.revoked_by = utcnow(), revoked_by
            return _grant_info(grant)

    def list_grants(self, *, owner_key: str | None = None, agency_code: str | None = None,
                    include_revoked: bool = True) -> list[GrantInfo]:
        q = select(AccessGrant).order_by(AccessGrant.id)
        if owner_key is not None:
            q = q.where(AccessGrant.owner_key == owner_key)
        if agency_code is not None:
            q = q.where(AccessGrant.agency_code == agency_code)
        if not include_revoked:
            q = q.where(AccessGrant.revoked_at.is_(None))
        with self._session("list grants") as s:
            return [_grant_info(g) for g in s.scalars(q)]

    def active_grants(self, *, owner_key: str, agency_code: str, purpose: str,
                      at: datetime | None = None) -> list[GrantInfo]:
        """Grants letting ``agency_code`` read ``owner_key``'s records for ``purpose`` at ``at``."""
        now = at or utcnow()
        with db_errors("check grant"), self.engine.connect() as conn:
            rows = conn.execute(_active_grants_statement(), {"owner_key": owner_key, "agency_code": agency_code,
                                                             "purpose": purpose, "now": now}).all()
        return [_grant_info(g) for g in rows]  # type: ignore[arg-type] (Row has the same attributes)

    # -- authorizations (uỷ quyền) ---------------------------------------------------------------
    def create_authorization(self, *, owner_key: str, representative_key: str, valid_from: datetime,
                             valid_until: datetime, created_by: str, doc_type: str | None = None,
                             reference: str | None = None) -> AuthorizationInfo:
        check_owner_key(owner_key)
        check_owner_key(representative_key)
        check_doc_type(doc_type)
        if owner_key == representative_key:
            raise InvalidRequest("an owner cannot authorize themselves")
        if reference is not None and len(reference) > 255:
            raise InvalidRequest("reference is at most 255 characters")
        start, end = check_period(valid_from, valid_until)
        auth = Authorization(owner_key=owner_key, representative_key=representative_key, doc_type=doc_type,
                             reference=reference or None, valid_from=start, valid_until=end,
                             created_at=utcnow(), created_by=created_by)
        with self._session("create authorization") as s, s.begin():
            s.add(auth)
            s.flush()
            return _authorization_info(auth)

    def revoke_authorization(self, authorization_id: int, *, owner_key: str | None = None) -> AuthorizationInfo:
        with self._session("revoke authorization") as s, s.begin():
            auth = s.get(Authorization, authorization_id)
            if auth is None or (owner_key is not None and auth.owner_key != owner_key):
                raise RecordNotFound(f"no authorization {authorization_id}")
            auth.revoked_at = auth.revoked_at or utcnow()
            return _authorization_info(auth)

    def list_authorizations(self, *, owner_key: str | None = None,
                            representative_key: str | None = None) -> list[AuthorizationInfo]:
        q = select(Authorization).order_by(Authorization.id)
        if owner_key is not None:
            q = q.where(Authorization.owner_key == owner_key)
        if representative_key is not None:
            q = q.where(Authorization.representative_key == representative_key)
        with self._session("list authorizations") as s:
            return [_authorization_info(a) for a in s.scalars(q)]

    def active_authorizations(self, *, owner_key: str, representative_key: str,
                              at: datetime | None = None) -> list[AuthorizationInfo]:
        now = at or utcnow()
        with db_errors("check authorization"), self.engine.connect() as conn:
            rows = conn.execute(_active_authorizations_statement(),
                                {"owner_key": owner_key, "representative_key": representative_key, "now": now}).all()
        return [_authorization_info(a) for a in rows]  # type: ignore[arg-type]

    # -- records, as seen by access control -------------------------------------------------------
    def record_facts(self, uri: str, version: int | None = None) -> RecordFacts | None:
        """One version (default: the newest not deleted) of a record, or ``None`` (one prepared
        query over plain columns: this runs on every record read)."""
        params = {"uri": uri} if version is None else {"uri": uri, "version": version}
        with db_errors("read record"), self.engine.connect() as conn:
            row = conn.execute(_facts_statement(version is not None), params).first()
        return _facts_from_row(row) if row is not None else None

    def reader_view(self, uri: str, *, at: datetime, version: int | None = None, agency_code: str | None = None,
                    purpose: str | None = None, representative_key: str | None = None) -> ReaderView | None:
        """The record (default: its newest version not deleted) with the grant that ``agency_code``
        holds for ``purpose`` and the authorization ``representative_key`` holds, as of ``at`` —
        one query, so every read sees grants and revocations as committed at that moment."""
        params = {"uri": uri, "now": at, "agency_code": agency_code, "purpose": purpose,
                  "representative_key": representative_key}
        if version is not None:
            params["version"] = version
        name, statement = f"sohoa_reader_{int(version is not None)}", _reader_statement(version is not None)
        row = _first_prepared(self.reads, "read record", name, statement, params)
        return _view_from_row(row) if row is not None else None

    def reader_views(self, queries: Sequence[ReaderQuery]) -> list[ReaderView | None]:
        """:meth:`reader_view` (current versions) for several readers at once, in order. On
        PostgreSQL ONE round trip answers them all (each request still has its own row, as of its
        own ``at``: nothing is shared between them but the statement); elsewhere one query each."""
        if self.reads.dialect.name != "postgresql" or len(queries) < 2:
            return [self.reader_view(q.uri, at=q.at, agency_code=q.agency_code, purpose=q.purpose,
                                     representative_key=q.representative_key) for q in queries]
        params = {f"{name}s": [getattr(q, "at" if name == "now" else name) for q in queries]
                  for name, _ in _BATCH_COLUMNS}
        views: list[ReaderView | None] = [None] * len(queries)
        for row in _prepared_rows(self.reads, "read records", "sohoa_readers", _reader_batch_statement(), params):
            if row.uri is not None:
                views[row.ord - 1] = _view_from_row(row)
        return views

    def record_versions(self, uri: str) -> list[RecordFacts]:
        facts = self.record_facts(uri)
        if facts is None:
            return []
        return [f for v in range(1, facts.version + 1) if (f := self.record_facts(uri, v)) is not None]

    def readable_records(self, owner_key: str, scope: ReadScope, *, doc_type: str | None = None,
                         date_from: datetime | None = None, date_to: datetime | None = None,
                         limit: int = 50, offset: int = 0) -> list[RecordFacts]:
        """Current versions of an owner's records within ``scope``, newest first."""
        if scope.empty:
            return []
        q = _facts_query(literal("").label("record_key")).where(Owner.owner_key == owner_key,
                                                                Version.status == "current")
        if not scope.everything:
            conditions = []
            if scope.converted_by:
                conditions.append(Record.converting_agency_code == scope.converted_by)
            if scope.doc_types:
                conditions.append(Record.doc_type.in_(sorted(scope.doc_types)))
            q = q.where(or_(*conditions))
        if doc_type is not None:
            q = q.where(Record.doc_type == doc_type)
        if date_from is not None:
            q = q.where(Record.updated_at >= date_from)
        if date_to is not None:
            q = q.where(Record.updated_at < date_to)
        q = q.order_by(Record.updated_at.desc(), Record.id.desc()).limit(limit).offset(offset)
        with db_errors("list records"), self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [_facts_from_row(r) for r in rows]

    # -- jobs --------------------------------------------------------------------------------------
    def create_job(self, *, job_id: str, submitted_by: str, owner_key: str, files: int, input_bytes: int,
                   doc_type: str | None = None, dossier_code: str | None = None,
                   idempotency_key: str | None = None) -> tuple[JobInfo, bool]:
        """Record a queued job; ``(job, created)``. The same idempotency key returns the first job."""
        if idempotency_key is not None:
            existing = self._job_by_key(submitted_by, idempotency_key)
            if existing is not None:
                return existing, False
        job = Job(id=job_id, submitted_by=submitted_by, idempotency_key=idempotency_key, owner_key=owner_key,
                  doc_type=doc_type, dossier_code=dossier_code, files=files, input_bytes=input_bytes,
                  status="queued", created_at=utcnow())
        try:
            with self._session("create job") as s, s.begin():
                s.add(job)
        except IntegrityError:
            existing = self._job_by_key(submitted_by, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False
        return _job_info(job), True

    def _job_by_key(self, submitted_by: str, idempotency_key: str) -> JobInfo | None:
        with self._session("read job") as s:
            j = s.scalar(select(Job).where(Job.submitted_by == submitted_by, Job.idempotency_key == idempotency_key))
            return _job_info(j) if j else None

    def get_job(self, job_id: str) -> JobInfo | None:
        with self._session("read job") as s:
            j = s.get(Job, job_id)
            return _job_info(j) if j else None

    def mark_job_running(self, job_id: str) -> None:
        with self._session("update job") as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id).values(status="running", started_at=utcnow()))

    def finish_job(self, job_id: str, *, uri: str | None = None, version: int | None = None,
                   sha256: str | None = None, error_code: str | None = None,
                   error_message: str | None = None) -> JobInfo:
        status = "failed" if error_code else "succeeded"
        with self._session("update job") as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id).values(
                status=status, finished_at=utcnow(), result_uri=uri, result_version=version,
                result_sha256=sha256, error_code=error_code, error_message=error_message))
            return _job_info(s.get(Job, job_id))

    def fail_unfinished_jobs(self, *, code: str = "interrupted",
                             message: str = "the server stopped before the job finished; submit it again") -> int:
        """Mark jobs left queued/running by a stopped server as failed (their inputs were in memory)."""
        with self._session("recover jobs") as s, s.begin():
            res = s.execute(update(Job).where(Job.status.in_(("queued", "running"))).values(
                status="failed", finished_at=utcnow(), error_code=code, error_message=message))
            return int(res.rowcount or 0)

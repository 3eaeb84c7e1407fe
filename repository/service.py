"""The repository service: store, version, retrieve, list and search citizens' records.

Write order (never half-visible): the content-addressed blobs first (idempotent: same bytes, same
key), then the version's JSON manifest, then all index rows in ONE database transaction. A
failure before the commit leaves at most unreferenced objects (found by :meth:`reconcile`), never
a row pointing at nothing; retrying the same request reuses those objects and creates no
duplicate version.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from . import index_write, layout, reads
from .config import LOCK_MODES, RepositoryConfig
from .db import db_errors, make_autocommit_engine, make_engine, migrate, retry_on_disconnect
from .errors import (
    IntegrityFailure,
    InvalidRequest,
    ObjectLocked,
    ObjectMissing,
    RecordNotFound,
    RepositoryError,
    StorageUnavailable,
)
from .folding import fold
from .identity import OwnerIdCipher, canonical_id, normalize_owner_id
from .identity import owner_key as hmac_owner_key
from .index_write import NewBlob, StoreLookup, VersionRows
from .models import (
    STATUS_CURRENT,
    STATUS_DELETED,
    STATUS_SUPERSEDED,
    Blob,
    Field,
    FixityCheck,
    Owner,
    Record,
    SearchDoc,
    Version,
)
from .objectstore import ObjectInfo, ObjectStore, Retention, open_object_store
from .search import fulltext_query, query_tokens, wants_prefix

__all__ = [
    "FixityReport",
    "IntegrityFailure",
    "ObjectLocked",
    "RecordNotFound",
    "ReconcileReport",
    "Repository",
    "RepositoryError",
    "RetrievedRecord",
    "SearchHit",
    "StorageUnavailable",
    "StoreRequest",
    "StoredResult",
]

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "sohoa.repository.manifest/1"
DOSSIER_ROLES = ("component", "result")
PDF_MEDIA = "application/pdf"
JSON_MEDIA = "application/json"
MAX_RETENTION_YEARS = 200
IO_THREADS = 8
STORE_ATTEMPTS = 2  # index writes per store: a lost race on a new owner/record is retried once
T = TypeVar("T")


@dataclass
class StoreRequest:
    """Everything needed to store one version of a record.

    ``uri`` comes from :meth:`Repository.new_record_uri` for a new record, or is an existing
    record's URI for a correction/re-scan (a new version). ``retention_years`` is decided by the
    caller from the document-type catalog (``None``: no Object Lock retention).
    """

    uri: str
    owner_id: str
    owner_kind: str  # "citizen" | "organization"
    doc_type: str
    pdf: bytes
    record_json: bytes
    fields: dict[str, str | None]
    text: str
    issuing_agency: str | None
    converting_agency_code: str
    source_sha256s: list[str]
    pages: int
    retention_years: int | None = None
    dossier_code: str | None = None
    title: str = ""
    dossier_role: str = "result"  # role of this record in ``dossier_code``: component | result
    page_texts: list[str] | None = None  # OCR text per page, when available
    legal_hold: bool = False
    lock_mode: str | None = None  # GOVERNANCE / COMPLIANCE for this record (default: the config's)


@dataclass
class StoredResult:
    uri: str
    version: int
    sha256: str  # of the PDF
    size: int
    object_key: str  # of the PDF blob
    doc_type: str
    owner_key: str
    created_at: datetime
    status: str  # "current" / "superseded"
    issuing_agency: str | None = None
    title: str = ""
    record_sha256: str = ""
    manifest_key: str = ""
    pages: int = 0
    retain_until: datetime | None = None
    lock_mode: str | None = None
    legal_hold: bool = False


@dataclass
class RetrievedRecord:
    result: StoredResult
    pdf: bytes
    record_json: bytes


@dataclass
class SearchHit:
    result: StoredResult
    rank: int  # 0 = first; hits come newest first (see repository.search)


@dataclass
class ReconcileReport:
    """Objects without an index row (``untracked``) and index rows without an object (``missing``)."""

    untracked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    objects_seen: int = 0
    rows_seen: int = 0

    @property
    def ok(self) -> bool:
        return not (self.untracked or self.missing)


@dataclass
class FixityReport:
    checked: int = 0
    ok: int = 0
    changed: list[str] = field(default_factory=list)  # object keys whose bytes no longer hash right
    missing: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)  # only on a full sweep (sample=None)
    signature_failures: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.changed or self.missing or self.untracked or self.signature_failures)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _add_years(start: datetime, years: int) -> datetime:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


class Repository:
    """Electronic data repository of citizens and organizations (object store + SQL index)."""

    def __init__(self, config: RepositoryConfig, engine: Engine, store: ObjectStore) -> None:
        self.config = config
        self.engine = engine
        self.objects = store
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Single-statement reads and the store path's index write: no transaction round trips.
        self._fast = make_autocommit_engine(engine)
        self._cipher = OwnerIdCipher(config.owner_secret)
        # Object I/O of one call (two blobs + manifest) runs concurrently: fewer round-trip waits.
        self._io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="repository-io")

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: RepositoryConfig) -> Repository:
        """Validate the config, migrate the index to the newest schema and prepare the bucket."""
        config.validate()
        engine = make_engine(config.db_url, busy_timeout=config.sqlite_busy_timeout)
        try:
            migrate(engine)
            store = open_object_store(config)
            store.ensure_ready()
        except BaseException:
            engine.dispose()
            raise
        return cls(config, engine, store)

    def close(self) -> None:
        self._io.shutdown(wait=True)
        if self._fast is not self.engine:
            self._fast.dispose()
        self.engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> dict[str, Any]:
        """Readiness of the database and the object store (for ``/readyz``)."""
        report: dict[str, Any] = {"db": {"ok": True}, "store": {"ok": True, "kind": self.objects.kind}}
        try:
            with db_errors("readiness check"), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            report["db"]["dialect"] = self.engine.dialect.name
        except RepositoryError as exc:
            report["db"] = {"ok": False, "error": str(exc)}
        try:
            self.objects.ping()
            report["store"]["object_lock"] = self.objects.lock_enabled
        except RepositoryError as exc:
            report["store"] = {"ok": False, "kind": self.objects.kind, "error": str(exc)}
        report["ok"] = report["db"]["ok"] and report["store"]["ok"]
        return report

    # -- names -----------------------------------------------------------------------------------
    @staticmethod
    def new_record_uri(agency_code: str, doc_type: str) -> str:
        return layout.new_record_uri(agency_code, doc_type)

    def owner_key(self, owner_id: str) -> str:
        """Opaque key for an owner ID (HMAC-SHA256 under the server secret)."""
        if not canonical_id(owner_id):
            raise InvalidRequest("empty owner ID")
        return hmac_owner_key(self.config.owner_secret, owner_id)

    def reveal_owner_id(self, owner_key: str) -> str:
        """Decrypt the stored ID of an owner (for authorized operators; never log the result)."""
        with self._session("reveal owner") as s:
            owner = s.scalar(select(Owner).where(Owner.owner_key == owner_key))
        if owner is None:
            raise RecordNotFound("no such owner")
        return self._cipher.decrypt(owner.id_encrypted, owner.owner_key)

    # -- store -----------------------------------------------------------------------------------
    def store(self, req: StoreRequest) -> StoredResult:
        """Store one version. Same URI + same PDF bytes returns the existing version unchanged;
        same URI + new bytes adds version n+1 and marks the previous one superseded.

        Two index round trips: one lookup before the objects are written, one write after."""
        canonical = self._validate(req)
        okey = hmac_owner_key(self.config.owner_secret, canonical)
        pdf_sha, rec_sha = sha256_hex(req.pdf), sha256_hex(req.record_json)

        found = self._lookup(req.uri, okey, pdf_sha, rec_sha)
        if found.same_version is not None:
            return self.get_result(req.uri, found.same_version)
        version = found.next_version
        created_at = _utcnow().replace(microsecond=0)
        retention = self._retention_for(req.retention_years, req.lock_mode, created_at)
        _, _, (manifest_key, created_at), search_body = self._all(
            lambda: self._put_blob(req.pdf, pdf_sha, PDF_MEDIA, retention, req.legal_hold, pdf_sha in found.indexed),
            lambda: self._put_blob(req.record_json, rec_sha, JSON_MEDIA, retention, req.legal_hold, rec_sha in found.indexed),
            lambda: self._put_manifest(req, okey, version, pdf_sha, rec_sha, created_at, retention),
            lambda: _search_body(req),  # CPU work, done while the PUTs wait on the network
        )
        for _ in range(STORE_ATTEMPTS):
            rows = self._version_rows(
                req, canonical, okey, found, version, pdf_sha, rec_sha, manifest_key, created_at, retention, search_body
            )
            try:
                self._write_index(rows)
                return _stored_result(rows, len(req.pdf))
            except IntegrityError:
                # A concurrent writer created the owner, the record or this version number first.
                found = self._lookup(req.uri, okey, pdf_sha, rec_sha)
                if found.same_version is not None:  # ... with these very bytes: idempotent
                    return self.get_result(req.uri, found.same_version)
                if found.next_version != version:  # the manifest names a version number now taken
                    break
        raise StorageUnavailable(f"concurrent update of {req.uri}; retry the request")

    def _lookup(self, uri: str, okey: str, pdf_sha: str, rec_sha: str) -> StoreLookup:
        found = retry_on_disconnect(self._fast, "look up record", lambda c: index_write.lookup(c, uri, okey, pdf_sha, rec_sha))
        if found.record_owner_key is not None and found.record_owner_key != okey:
            raise InvalidRequest(f"record {uri} belongs to another owner")
        return found

    def _version_rows(
        self,
        req: StoreRequest,
        canonical: str,
        okey: str,
        found: StoreLookup,
        version: int,
        pdf_sha: str,
        rec_sha: str,
        manifest_key: str,
        created_at: datetime,
        retention: Retention | None,
        search_body: str,
    ) -> VersionRows:
        locked = retention is not None and self.objects.lock_enabled
        blobs = ((pdf_sha, req.pdf, PDF_MEDIA), (rec_sha, req.record_json, JSON_MEDIA))
        return VersionRows(
            uri=req.uri, owner_key=okey, owner_kind=req.owner_kind,
            owner_id_encrypted=self._cipher.encrypt(canonical, okey) if found.owner_row_id is None else None,
            owner_row_id=found.owner_row_id, record_id=found.record_id, version=version, doc_type=req.doc_type,
            issuing_agency=req.issuing_agency, converting_agency_code=req.converting_agency_code, title=req.title,
            pdf_sha256=pdf_sha, record_sha256=rec_sha, manifest_key=manifest_key, pages=req.pages,
            created_at=created_at, lock_mode=retention.mode if locked and retention else None,
            retain_until=retention.until if locked and retention else None,
            legal_hold=bool(req.legal_hold and self.objects.lock_enabled),
            new_blobs=tuple(
                NewBlob(sha, len(data), layout.blob_key(sha), media)
                for sha, data, media in blobs if sha not in found.indexed
            ),
            sources=tuple(req.source_sha256s),
            page_texts=tuple(req.page_texts) if req.page_texts is not None else (None,) * req.pages,
            fields=tuple((k[:100], v) for k, v in req.fields.items()),
            search_body=search_body,
            dossier_code=req.dossier_code,
            dossier_role=req.dossier_role,
        )

    def _write_index(self, rows: VersionRows) -> None:
        """All rows of one version, atomically: one statement on PostgreSQL (autocommit, one round
        trip), one transaction of a few in-process statements on SQLite."""
        if self.engine.dialect.name == "sqlite":
            with db_errors("index version"), self.engine.begin() as conn:
                index_write.write_version(conn, rows)
        else:
            retry_on_disconnect(self._fast, "index version", lambda conn: index_write.write_version(conn, rows))

    def _validate(self, req: StoreRequest) -> str:
        layout.parse_record_uri(req.uri)
        canonical = normalize_owner_id(req.owner_kind, req.owner_id)
        if not req.pdf.startswith(b"%PDF-"):
            raise InvalidRequest("pdf must be PDF bytes (starting with %PDF-)")
        try:
            json.loads(req.record_json)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"record_json is not valid JSON: {exc.__class__.__name__}") from None
        layout.validate_doc_type(req.doc_type)
        if not req.converting_agency_code:
            raise InvalidRequest("converting_agency_code is required")
        if req.pages < 1:
            raise InvalidRequest("pages must be >= 1")
        if req.page_texts is not None and len(req.page_texts) != req.pages:
            raise InvalidRequest("page_texts must have one entry per page")
        for digest in req.source_sha256s:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise InvalidRequest("source_sha256s must be lowercase hex SHA-256 digests")
        if req.retention_years is not None and not 0 < req.retention_years <= MAX_RETENTION_YEARS:
            raise InvalidRequest(f"retention_years must be in 1..{MAX_RETENTION_YEARS} or None")
        if req.lock_mode is not None and req.lock_mode not in LOCK_MODES:
            raise InvalidRequest(f"lock_mode must be one of {LOCK_MODES} or None")
        if req.dossier_code is not None and req.dossier_role not in DOSSIER_ROLES:
            raise InvalidRequest(f"dossier_role must be one of {DOSSIER_ROLES}")
        return canonical

    def get_result(self, uri: str, version: int) -> StoredResult:
        """Metadata of one version (no object I/O)."""
        return self._version_result(uri, version)

    def _version_result(self, uri: str, version: int | None) -> StoredResult:
        """One statement: a live version (default: the newest) with its record and owner."""
        stmt = reads.version_of_uri(version is not None)
        params = {"uri": uri, "version": version}
        row = self._read("read version", lambda c: c.execute(stmt, params).first())
        if row is None:
            if self._read("read record", lambda c: c.execute(reads.record_exists(), params).first()) is None:
                raise RecordNotFound(f"no record {uri}")
            raise RecordNotFound(f"no version {version} of {uri}")
        return _result_from_row(row)

    def _read(self, operation: str, work: Callable[[Connection], T]) -> T:
        """A read of one or a few statements, without a transaction (one round trip each)."""
        return retry_on_disconnect(self._fast, operation, work)

    def _retention_for(self, years: int | None, mode: str | None, created_at: datetime) -> Retention | None:
        if not years:
            return None
        return Retention(mode or self.config.lock_mode, _add_years(created_at, years))

    def _put_blob(
        self, data: bytes, sha: str, media: str, retention: Retention | None, hold: bool, indexed: bool
    ) -> ObjectInfo:
        """Write a content-addressed blob. New content (no blob row) is written straight away: a
        leftover of an interrupted attempt has the same bytes, so rewriting it is harmless. Content
        the index already knows is only checked, and its retention extended when needed."""
        key = layout.blob_key(sha)
        if not indexed:
            return self.objects.put(key, data, sha256=sha, content_type=media, retention=retention, legal_hold=hold)
        info = self.objects.stat(key)
        if info is None or info.size != len(data) or (info.sha256 not in (None, sha)):
            return self.objects.put(key, data, sha256=sha, content_type=media, retention=retention, legal_hold=hold)
        if retention and self.objects.lock_enabled and (info.retention is None or info.retention.until < retention.until):
            mode = "COMPLIANCE" if info.retention and info.retention.mode == "COMPLIANCE" else retention.mode
            self.objects.set_retention(key, Retention(mode, retention.until))
        if hold and self.objects.lock_enabled and not info.legal_hold:
            self.objects.set_legal_hold(key, True)
        return info

    def _put_manifest(
        self,
        req: StoreRequest,
        okey: str,
        version: int,
        pdf_sha: str,
        rec_sha: str,
        created_at: datetime,
        retention: Retention | None,
    ) -> tuple[str, datetime]:
        """Write the version's manifest. S3 keeps any manifest left by an interrupted attempt as an
        older object version; a store without versioning refuses to overwrite a locked one, and
        then an identical leftover is adopted (with its timestamp) so a retry changes nothing."""
        key = layout.manifest_key(req.uri, version, pdf_sha)
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "uri": req.uri,
            "version": version,
            "supersedes": version - 1 if version > 1 else None,
            "created_at": created_at.isoformat(),
            "owner_key": okey,
            "owner_kind": req.owner_kind,
            "doc_type": req.doc_type,
            "title": req.title,
            "issuing_agency": req.issuing_agency,
            "converting_agency_code": req.converting_agency_code,
            "dossier_code": req.dossier_code,
            "dossier_role": req.dossier_role if req.dossier_code else None,
            "pages": req.pages,
            "source_sha256s": list(req.source_sha256s),
            "pdf": {"sha256": pdf_sha, "size": len(req.pdf), "key": layout.blob_key(pdf_sha), "media_type": PDF_MEDIA},
            "record": {
                "sha256": rec_sha,
                "size": len(req.record_json),
                "key": layout.blob_key(rec_sha),
                "media_type": JSON_MEDIA,
            },
            "retention": {"mode": retention.mode, "until": retention.until.isoformat()} if retention else None,
        }
        body = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
        try:
            self.objects.put(key, body, sha256=sha256_hex(body), content_type=JSON_MEDIA, retention=retention)
        except ObjectLocked:
            previous = json.loads(self.objects.get(key))
            if previous.get("pdf", {}).get("sha256") != pdf_sha or previous.get("record", {}).get("sha256") != rec_sha:
                raise ObjectLocked(
                    f"a locked manifest for version {version} of {req.uri} was left by an interrupted write of "
                    "different content; run `sohoa reconcile` and store the intended content first"
                ) from None
            return key, datetime.fromisoformat(previous["created_at"])
        return key, created_at

    # -- read ------------------------------------------------------------------------------------
    def get(self, uri: str, version: int | None = None) -> RetrievedRecord:
        """Fetch a version (default: the current one) and verify both blobs' SHA-256."""
        layout.parse_record_uri(uri)
        result = self._version_result(uri, version)
        pdf, rec = self._all(
            lambda: self._read_verified(result.object_key, result.sha256),
            lambda: self._read_verified(layout.blob_key(result.record_sha256), result.record_sha256),
        )
        return RetrievedRecord(result=result, pdf=pdf, record_json=rec)

    def _all(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run object-store calls concurrently; wait for ALL of them (nothing left in flight),
        then raise the first failure, if any."""
        futures = [self._io.submit(c) for c in calls[1:]]
        try:  # the first call runs in this thread: one thread hand-off less per call
            first = calls[0]()
        finally:
            wait(futures)
        for f in futures:
            if (exc := f.exception()) is not None:
                raise exc
        return [first, *(f.result() for f in futures)]

    def read_blob(self, sha256: str) -> bytes:
        """The bytes of a content-addressed blob, verified against the digest
        (``IntegrityFailure`` when changed or missing)."""
        return self._read_verified(layout.blob_key(sha256), sha256)

    def _read_verified(self, key: str, sha: str) -> bytes:
        try:
            data = self.objects.get(key)
        except ObjectMissing:
            raise IntegrityFailure(f"object {key} is missing from the store") from None
        if sha256_hex(data) != sha:
            raise IntegrityFailure(f"object {key} does not match its recorded SHA-256")
        return data

    def versions(self, uri: str) -> list[StoredResult]:
        """Every version of a record, oldest first (deleted ones excluded)."""
        layout.parse_record_uri(uri)
        params = {"uri": uri}
        rows = self._read("list versions", lambda c: c.execute(reads.versions_of_uri(), params).all())
        if not rows and self._read("read record", lambda c: c.execute(reads.record_exists(), params).first()) is None:
            raise RecordNotFound(f"no record {uri}")
        return [_result_from_row(r) for r in rows]

    def fields(self, uri: str, version: int | None = None) -> dict[str, str | None]:
        """Structured fields of a version (default: current)."""
        with self._session("read fields") as s:
            row = self._version_row(s, uri, version)
            return {f.name: f.value for f in s.scalars(select(Field).where(Field.version_id == row.id))}

    def dossier(self, code: str) -> dict[str, list[StoredResult]]:
        """Current versions of a dossier's records grouped by role (``component``/``result``),
        results in ``<code>-KQ(n)`` order."""
        params = {"code": code}
        rows = self._read("read dossier", lambda c: c.execute(reads.dossier_members(), params).all())
        if not rows and self._read("read dossier", lambda c: c.execute(reads.dossier_exists(), params).first()) is None:
            raise RecordNotFound(f"no dossier {code}")
        grouped: dict[str, list[StoredResult]] = {role: [] for role in DOSSIER_ROLES}
        for row in rows:
            grouped[row[0]].append(_result_from_row(row[1:]))
        return grouped

    # -- listing and search ----------------------------------------------------------------------
    def list_records(
        self,
        *,
        owner_id: str | None = None,
        owner_key: str | None = None,
        doc_type: str | None = None,
        issuing_agency: str | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        include_superseded: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredResult]:
        """Records filtered by owner, type, issuing agency and last-update date range
        (``date_from <= updated < date_to``), newest first. Current versions only unless
        ``include_superseded``."""
        okey = self._resolve_owner_key(owner_id, owner_key)
        params = _filter_params(okey, doc_type, issuing_agency, date_from, date_to)
        stmt = reads.listing(frozenset(params), include_superseded)
        params.update(limit=limit, offset=offset)
        rows = self._read("list records", lambda c: c.execute(stmt, params).all())
        return [_result_from_row(r) for r in rows]

    def search(
        self,
        query: str,
        *,
        owner_id: str | None = None,
        owner_key: str | None = None,
        doc_type: str | None = None,
        issuing_agency: str | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Full-text search over current versions' OCR text, title and fields, insensitive to
        case and Vietnamese diacritics ("nguyen van an" finds "Nguyễn Văn An"). Every word must
        match; a trailing ``*`` makes the last word a prefix ("nguyen van a*"); newest first."""
        tokens = query_tokens(query)
        okey = self._resolve_owner_key(owner_id, owner_key)
        dialect = self.engine.dialect.name
        params = _filter_params(okey, doc_type, issuing_agency, date_from, date_to)
        stmt = reads.text_search(dialect, frozenset(params))
        params.update(limit=limit, fts=fulltext_query(dialect, tokens, prefix=wants_prefix(query)))
        rows = self._read("search", lambda c: c.execute(stmt, params).all())
        return [SearchHit(result=_result_from_row(r), rank=i) for i, r in enumerate(rows)]

    def _resolve_owner_key(self, owner_id: str | None, owner_key: str | None) -> str | None:
        if owner_id is not None and owner_key is not None:
            raise InvalidRequest("pass owner_id or owner_key, not both")
        return self.owner_key(owner_id) if owner_id is not None else owner_key

    def _version_row(self, s: Session, uri: str, version: int | None) -> Version:
        record = s.scalar(select(Record).where(Record.uri == uri))
        if record is None:
            raise RecordNotFound(f"no record {uri}")
        q = select(Version).where(Version.record_id == record.id, Version.status != STATUS_DELETED)
        q = q.where(Version.version == version) if version is not None else q.order_by(Version.version.desc()).limit(1)
        row = s.scalar(q)
        if row is None:
            raise RecordNotFound(f"no version {version} of {uri}")
        return row

    # -- retention, legal hold, deletion ---------------------------------------------------------
    def version_keys(self, uri: str, version: int) -> list[str]:
        with self._session("version keys") as s:
            row = self._version_row(s, uri, version)
            return [layout.blob_key(row.pdf_sha256), layout.blob_key(row.record_sha256), row.manifest_key]

    def set_legal_hold(self, uri: str, version: int, on: bool) -> None:
        """Put (or lift) a legal hold on every object of a version."""
        if not self.objects.lock_enabled:
            raise InvalidRequest("the object store has no Object Lock")
        for key in self.version_keys(uri, version):
            self.objects.set_legal_hold(key, on)
        with self._session("legal hold") as s, s.begin():
            row = self._version_row(s, uri, version)
            row.legal_hold = on

    def delete_version(self, uri: str, version: int, *, bypass_governance: bool = False) -> None:
        """Remove a version's objects (those not shared with another live version) and mark it
        deleted. Refused with :class:`ObjectLocked` when retention or a legal hold protects any
        of them; nothing is changed then."""
        keys = self.version_keys(uri, version)
        now = _utcnow()
        for key in keys:
            info = self.objects.stat(key)
            if info is not None and info.locked_at(now):
                if info.legal_hold or info.retention is None or info.retention.mode == "COMPLIANCE" or not bypass_governance:
                    raise ObjectLocked(f"version {version} of {uri} is protected ({key}); delete refused")
        with self._session("delete version") as s, s.begin():
            row = self._version_row(s, uri, version)
            shared = {
                sha
                for sha in (row.pdf_sha256, row.record_sha256)
                if s.scalar(
                    select(func.count())
                    .select_from(Version)
                    .where(
                        Version.id != row.id,
                        Version.status != STATUS_DELETED,
                        (Version.pdf_sha256 == sha) | (Version.record_sha256 == sha),
                    )
                )
            }
            for key in keys:
                if layout.sha256_of_blob_key(key) in shared:
                    continue
                try:
                    self.objects.delete(key, bypass_governance=bypass_governance)
                except ObjectMissing:
                    pass
                if (sha := layout.sha256_of_blob_key(key)) is not None:
                    s.execute(delete(FixityCheck).where(FixityCheck.sha256 == sha))
            was_current = row.status == STATUS_CURRENT
            row.status = STATUS_DELETED
            s.execute(delete(SearchDoc).where(SearchDoc.version_id == row.id))
            if was_current:
                self._promote_previous(s, row.record_id)
        log.info("deleted version %s of %s", version, uri)

    @staticmethod
    def _promote_previous(s: Session, record_id: int) -> None:
        prev = s.scalar(
            select(Version)
            .where(Version.record_id == record_id, Version.status == STATUS_SUPERSEDED)
            .order_by(Version.version.desc())
            .limit(1)
        )
        if prev is not None:
            prev.status = STATUS_CURRENT
            record = s.get(Record, record_id)
            assert record is not None
            record.current_version = prev.version

    # -- maintenance -----------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Compare the object store with the index, both ways (report only: nothing is deleted).

        An object written by a request that is still in flight can show as untracked for a
        moment; run this when writers are idle or re-check the keys it reports."""
        with self._session("reconcile") as s:
            expected = set(s.scalars(select(Blob.object_key).where(_live_blob())))
            expected |= set(s.scalars(select(Version.manifest_key).where(Version.status != STATUS_DELETED)))
        present = set(self.objects.iter_keys(layout.BLOB_PREFIX)) | set(self.objects.iter_keys(layout.MANIFEST_PREFIX))
        return ReconcileReport(
            untracked=sorted(present - expected),
            missing=sorted(expected - present),
            objects_seen=len(present),
            rows_seen=len(expected),
        )

    def fixity(self, sample: int | None = None, check_pdf: Callable[[bytes], bool] | None = None) -> FixityReport:
        """Re-read and re-hash blobs (all, or a random ``sample``) and record each outcome.

        ``check_pdf`` (e.g. a PAdES signature validator supplied by the CLI) is called on every
        intact PDF; ``False`` or an exception counts as a signature failure. A full sweep also
        lists objects the index does not know (``untracked``)."""
        if sample is not None and sample < 1:
            raise InvalidRequest("sample must be a positive number of objects")
        with self._session("fixity select") as s:
            q = select(Blob.sha256, Blob.object_key, Blob.media_type, Blob.size).where(_live_blob())
            q = q.order_by(func.random()).limit(sample) if sample is not None else q.order_by(Blob.sha256)
            blobs = s.execute(q).all()
        report = FixityReport()
        outcomes: list[tuple[str, str]] = []
        for sha, key, media, size in blobs:
            report.checked += 1
            outcome = self._check_blob(key, sha, size, media, check_pdf)
            outcomes.append((sha, outcome))
            if outcome == "ok":
                report.ok += 1
            elif outcome == "changed":
                report.changed.append(key)
            elif outcome == "missing":
                report.missing.append(key)
            else:
                report.signature_failures.append(key)
        if sample is None:
            report.untracked = self.reconcile().untracked
        now = _utcnow()
        with self._session("fixity record") as s, s.begin():
            s.add_all(FixityCheck(sha256=sha, checked_at=now, outcome=o) for sha, o in outcomes)
        return report

    def _check_blob(self, key: str, sha: str, size: int, media: str, check_pdf: Callable[[bytes], bool] | None) -> str:
        try:
            data = self.objects.get(key)
        except ObjectMissing:
            return "missing"
        if len(data) != size or sha256_hex(data) != sha:
            return "changed"
        if check_pdf is not None and media == PDF_MEDIA:
            try:
                if not check_pdf(data):
                    return "signature_invalid"
            except Exception:  # noqa: BLE001 - a crashing validator is a failed check, not a crash
                log.exception("signature check raised on %s", key)
                return "signature_invalid"
        return "ok"

    def export_bag(
        self,
        dest: Path,
        *,
        uri: str | None = None,
        owner_id: str | None = None,
        owner_key: str | None = None,
        include_superseded: bool = False,
    ) -> Path:
        """Export one record (``uri``) or all of an owner's records as a BagIt bag at ``dest``."""
        from .bag import export_bag

        return export_bag(
            self, Path(dest), uri=uri, owner_id=owner_id, owner_key=owner_key, include_superseded=include_superseded
        )

    # -- plumbing --------------------------------------------------------------------------------
    def _session(self, operation: str) -> _GuardedSession:
        return _GuardedSession(self._sessions, operation)


class _GuardedSession:
    """A session whose connection-level failures surface as :class:`StorageUnavailable`."""

    def __init__(self, factory: sessionmaker[Session], operation: str) -> None:
        self._factory = factory
        self._operation = operation
        self._guard = db_errors(operation)
        self._session: Session | None = None

    def __enter__(self) -> Session:
        self._guard.__enter__()
        self._session = self._factory()
        return self._session

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        assert self._session is not None
        try:
            self._session.close()
        finally:
            suppressed = self._guard.__exit__(exc_type, exc, tb)
        return bool(suppressed)


def _live_blob() -> ColumnElement[bool]:
    """Blobs referenced by at least one version that is not deleted."""
    live = select(Version.id).where(
        Version.status != STATUS_DELETED, (Version.pdf_sha256 == Blob.sha256) | (Version.record_sha256 == Blob.sha256)
    )
    return live.exists()


def _result_from_row(row: Sequence[Any]) -> StoredResult:
    """A :class:`StoredResult` from a row of :data:`repository.reads.RESULT_COLUMNS`."""
    (uri, agency, title, okey, version, status, doc_type, pdf_sha, rec_sha, manifest_key, pages, created_at,
     lock_mode, retain_until, legal_hold, size) = row
    return StoredResult(
        uri=uri, version=version, sha256=pdf_sha, size=int(size), object_key=layout.blob_key(pdf_sha),
        doc_type=doc_type, owner_key=okey, created_at=_aware(created_at) or created_at, status=status,
        issuing_agency=agency, title=title, record_sha256=rec_sha, manifest_key=manifest_key, pages=pages,
        retain_until=_aware(retain_until), lock_mode=lock_mode, legal_hold=bool(legal_hold),
    )


def _stored_result(rows: VersionRows, size: int) -> StoredResult:
    """The result of a version just written (what :func:`_result_from_row` would read back)."""
    return StoredResult(
        uri=rows.uri, version=rows.version, sha256=rows.pdf_sha256, size=size,
        object_key=layout.blob_key(rows.pdf_sha256), doc_type=rows.doc_type, owner_key=rows.owner_key,
        created_at=rows.created_at, status=STATUS_CURRENT, issuing_agency=rows.issuing_agency, title=rows.title,
        record_sha256=rows.record_sha256, manifest_key=rows.manifest_key, pages=rows.pages,
        retain_until=rows.retain_until, lock_mode=rows.lock_mode, legal_hold=rows.legal_hold,
    )


def _filter_params(
    okey: str | None, doc_type: str | None, agency: str | None, date_from: datetime | None, date_to: datetime | None
) -> dict[str, Any]:
    """The filters actually given, by their bound-parameter names in :mod:`repository.reads`."""
    given = {"owner_key": okey, "doc_type": doc_type, "issuing_agency": agency, "date_from": date_from, "date_to": date_to}
    return {k: v for k, v in given.items() if v is not None}


def _search_body(req: StoreRequest) -> str:
    parts: Iterable[str] = [req.title, *(v for v in req.fields.values() if v), req.text]
    return fold(" ".join(p for p in parts if p))

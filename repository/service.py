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
from concurrent.futures import ThreadPoolExecutor, wait
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from . import layout
from .config import LOCK_MODES, RepositoryConfig
from .db import db_errors, make_engine, migrate
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
from .models import (
    Blob,
    Dossier,
    DossierLink,
    Field,
    FixityCheck,
    Owner,
    Page,
    Record,
    SearchDoc,
    Version,
    VersionSource,
)
from .objectstore import ObjectInfo, ObjectStore, Retention, open_object_store
from .search import fulltext, query_tokens, wants_prefix

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
STATUS_CURRENT = "current"
STATUS_SUPERSEDED = "superseded"
STATUS_DELETED = "deleted"
DOSSIER_ROLES = ("component", "result")
PDF_MEDIA = "application/pdf"
JSON_MEDIA = "application/json"
MAX_RETENTION_YEARS = 200
IO_THREADS = 8


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
        self._cipher = OwnerIdCipher(config.owner_secret)
        # Object I/O of one call (two blobs + manifest) runs concurrently: fewer round-trip waits.
        self._io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="repository-io")

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: RepositoryConfig) -> Repository:
        """Validate the config, migrate the index to the newest schema and prepare the bucket."""
        config.validate()
        engine = make_engine(config.db_url)
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
        same URI + new bytes adds version n+1 and marks the previous one superseded."""
        canonical = self._validate(req)
        okey = hmac_owner_key(self.config.owner_secret, canonical)
        pdf_sha, rec_sha = sha256_hex(req.pdf), sha256_hex(req.record_json)

        existing, next_version, indexed = self._existing_version(req.uri, okey, pdf_sha, rec_sha)
        if existing is not None:
            return existing
        created_at = _utcnow().replace(microsecond=0)
        retention = self._retention_for(req.retention_years, req.lock_mode, created_at)

        _, _, (manifest_key, created_at) = self._all(
            lambda: self._put_blob(req.pdf, pdf_sha, PDF_MEDIA, retention, req.legal_hold, pdf_sha in indexed),
            lambda: self._put_blob(req.record_json, rec_sha, JSON_MEDIA, retention, req.legal_hold, rec_sha in indexed),
            lambda: self._put_manifest(req, okey, next_version, pdf_sha, rec_sha, created_at, retention),
        )

        try:
            return self._index_version(
                req, canonical, okey, next_version, pdf_sha, rec_sha, manifest_key, created_at, retention, indexed
            )
        except IntegrityError:
            # A concurrent writer committed the same version number first: re-check idempotency.
            existing, _, _ = self._existing_version(req.uri, okey, pdf_sha, rec_sha)
            if existing is not None:
                return existing
            raise StorageUnavailable(f"concurrent update of {req.uri}; retry the request") from None

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

    def _existing_version(
        self, uri: str, okey: str, pdf_sha: str, rec_sha: str
    ) -> tuple[StoredResult | None, int, set[str]]:
        """(the version of ``uri`` holding these PDF bytes if any, the next version number, which
        of the two digests already have a blob row). Two statements on the common path."""
        with db_errors("look up record"), self.engine.connect() as conn:
            indexed = set(conn.scalars(select(Blob.sha256).where(Blob.sha256.in_((pdf_sha, rec_sha)))))
            last_version = select(func.max(Version.version)).where(Version.record_id == Record.id).scalar_subquery()
            same_version = (
                select(Version.version)
                .where(Version.record_id == Record.id, Version.pdf_sha256 == pdf_sha, Version.status != STATUS_DELETED)
                .order_by(Version.version.desc())
                .limit(1)
                .scalar_subquery()
            )
            row = conn.execute(
                select(Owner.owner_key, last_version, same_version)
                .select_from(Record)
                .join(Owner, Owner.id == Record.owner_id)
                .where(Record.uri == uri)
            ).first()
        if row is None:
            return None, 1, indexed
        owner_key, last, same = row
        if owner_key != okey:
            raise InvalidRequest(f"record {uri} belongs to another owner")
        if same is not None:
            return self.get_result(uri, same), last + 1, indexed
        return None, (last or 0) + 1, indexed

    def get_result(self, uri: str, version: int) -> StoredResult:
        """Metadata of one version (no object I/O)."""
        with self._session("read version") as s:
            row = self._version_row(s, uri, version)
            record = s.get(Record, row.record_id)
            assert record is not None
            okey = s.scalar(select(Owner.owner_key).where(Owner.id == record.owner_id)) or ""
            return self._result(s, record, row, okey)

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

    def _index_version(
        self,
        req: StoreRequest,
        canonical: str,
        okey: str,
        version: int,
        pdf_sha: str,
        rec_sha: str,
        manifest_key: str,
        created_at: datetime,
        retention: Retention | None,
        indexed: set[str],
    ) -> StoredResult:
        """All rows of one version in one transaction (SQL Core: this is the hot write path)."""
        locked = retention is not None and self.objects.lock_enabled
        with db_errors("index version"), self.engine.begin() as conn:
            owner_id = self._owner_id(conn, req.owner_kind, canonical, okey, created_at)
            new_blobs = [
                {"sha256": sha, "size": len(data), "object_key": layout.blob_key(sha), "media_type": media, "created_at": created_at}
                for sha, data, media in ((pdf_sha, req.pdf, PDF_MEDIA), (rec_sha, req.record_json, JSON_MEDIA))
                if sha not in indexed
            ]
            if new_blobs:  # a concurrent writer of the same bytes may have inserted them meanwhile
                conn.execute(_insert_ignoring_duplicates(self.engine.dialect.name, Blob, ["sha256"]), new_blobs)
            record_values = {
                "doc_type": req.doc_type,
                "issuing_agency": req.issuing_agency,
                "title": req.title,
                "updated_at": created_at,
                "current_version": version,
            }
            record_id = conn.scalar(select(Record.id).where(Record.uri == req.uri))
            if record_id is None:
                record_id = conn.scalar(
                    insert(Record)
                    .values(uri=req.uri, owner_id=owner_id, converting_agency_code=req.converting_agency_code,
                            created_at=created_at, **record_values)
                    .returning(Record.id)
                )
            else:
                conn.execute(
                    update(Version)
                    .where(Version.record_id == record_id, Version.status == STATUS_CURRENT)
                    .values(status=STATUS_SUPERSEDED)
                )
                conn.execute(update(Record).where(Record.id == record_id).values(**record_values))
            version_id = conn.scalar(
                insert(Version)
                .values(
                    record_id=record_id, version=version, status=STATUS_CURRENT, doc_type=req.doc_type,
                    pdf_sha256=pdf_sha, record_sha256=rec_sha, manifest_key=manifest_key, pages=req.pages,
                    created_at=created_at, lock_mode=retention.mode if locked else None,
                    retain_until=retention.until if locked else None,
                    legal_hold=bool(req.legal_hold and self.objects.lock_enabled),
                )
                .returning(Version.id)
            )
            if req.source_sha256s:
                conn.execute(insert(VersionSource), [
                    {"version_id": version_id, "position": i, "source_sha256": d} for i, d in enumerate(req.source_sha256s)
                ])
            texts = req.page_texts or [None] * req.pages
            conn.execute(insert(Page), [{"version_id": version_id, "page_no": i + 1, "text": t} for i, t in enumerate(texts)])
            if req.fields:
                conn.execute(insert(Field), [{"version_id": version_id, "name": k[:100], "value": v} for k, v in req.fields.items()])
            conn.execute(insert(SearchDoc).values(version_id=version_id, record_id=record_id, body=_search_body(req)))
            if req.dossier_code:
                self._link_dossier(conn, req.dossier_code, req.dossier_role, owner_id, record_id, created_at)
        return StoredResult(
            uri=req.uri, version=version, sha256=pdf_sha, size=len(req.pdf), object_key=layout.blob_key(pdf_sha),
            doc_type=req.doc_type, owner_key=okey, created_at=created_at, status=STATUS_CURRENT,
            issuing_agency=req.issuing_agency, title=req.title, record_sha256=rec_sha, manifest_key=manifest_key,
            pages=req.pages, retain_until=retention.until if locked else None,
            lock_mode=retention.mode if locked else None, legal_hold=bool(req.legal_hold and self.objects.lock_enabled),
        )

    def _owner_id(self, conn: Connection, kind: str, canonical: str, okey: str, now: datetime) -> int:
        owner_id = conn.scalar(select(Owner.id).where(Owner.owner_key == okey))
        if owner_id is None:
            owner_id = conn.scalar(
                insert(Owner)
                .values(owner_key=okey, kind=kind, id_encrypted=self._cipher.encrypt(canonical, okey), created_at=now)
                .returning(Owner.id)
            )
        return int(owner_id)

    @staticmethod
    def _link_dossier(conn: Connection, code: str, role: str, owner_id: int, record_id: int, now: datetime) -> None:
        dossier_id = conn.scalar(select(Dossier.id).where(Dossier.code == code))
        if dossier_id is None:
            dossier_id = conn.scalar(insert(Dossier).values(code=code, owner_id=owner_id, created_at=now).returning(Dossier.id))
        linked = conn.scalar(
            select(DossierLink.seq).where(DossierLink.dossier_id == dossier_id, DossierLink.record_id == record_id)
        )
        if linked is None:
            last = conn.scalar(
                select(func.max(DossierLink.seq)).where(DossierLink.dossier_id == dossier_id, DossierLink.role == role)
            )
            conn.execute(insert(DossierLink).values(dossier_id=dossier_id, record_id=record_id, role=role, seq=(last or 0) + 1))

    # -- read ------------------------------------------------------------------------------------
    def get(self, uri: str, version: int | None = None) -> RetrievedRecord:
        """Fetch a version (default: the current one) and verify both blobs' SHA-256."""
        layout.parse_record_uri(uri)
        with self._session("get record") as s:
            record = s.scalar(select(Record).where(Record.uri == uri))
            if record is None:
                raise RecordNotFound(f"no record {uri}")
            q = select(Version).where(Version.record_id == record.id, Version.status != STATUS_DELETED)
            q = q.where(Version.version == version) if version is not None else q.order_by(Version.version.desc()).limit(1)
            row = s.scalar(q)
            if row is None:
                raise RecordNotFound(f"no version {version} of {uri}")
            okey = s.scalar(select(Owner.owner_key).where(Owner.id == record.owner_id)) or ""
            result = self._result(s, record, row, okey)
        pdf, rec = self._all(
            lambda: self._read_verified(result.object_key, result.sha256),
            lambda: self._read_verified(layout.blob_key(result.record_sha256), result.record_sha256),
        )
        return RetrievedRecord(result=result, pdf=pdf, record_json=rec)

    def _all(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run object-store calls concurrently; wait for ALL of them (nothing left in flight),
        then raise the first failure, if any."""
        futures = [self._io.submit(c) for c in calls]
        wait(futures)
        for f in futures:
            if (exc := f.exception()) is not None:
                raise exc
        return [f.result() for f in futures]

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
        with self._session("list versions") as s:
            record = s.scalar(select(Record).where(Record.uri == uri))
            if record is None:
                raise RecordNotFound(f"no record {uri}")
            okey = s.scalar(select(Owner.owner_key).where(Owner.id == record.owner_id)) or ""
            rows = s.scalars(
                select(Version).where(Version.record_id == record.id, Version.status != STATUS_DELETED).order_by(Version.version)
            ).all()
            return [self._result(s, record, r, okey) for r in rows]

    def fields(self, uri: str, version: int | None = None) -> dict[str, str | None]:
        """Structured fields of a version (default: current)."""
        with self._session("read fields") as s:
            row = self._version_row(s, uri, version)
            return {f.name: f.value for f in s.scalars(select(Field).where(Field.version_id == row.id))}

    def dossier(self, code: str) -> dict[str, list[StoredResult]]:
        """Current versions of a dossier's records grouped by role (``component``/``result``),
        results in ``<code>-KQ(n)`` order."""
        with self._session("read dossier") as s:
            dossier = s.scalar(select(Dossier).where(Dossier.code == code))
            if dossier is None:
                raise RecordNotFound(f"no dossier {code}")
            rows = s.execute(
                select(DossierLink.role, Record, Version, Owner.owner_key)
                .join(Record, Record.id == DossierLink.record_id)
                .join(Version, (Version.record_id == Record.id) & (Version.status == STATUS_CURRENT))
                .join(Owner, Owner.id == Record.owner_id)
                .where(DossierLink.dossier_id == dossier.id)
                .order_by(DossierLink.role, DossierLink.seq)
            ).all()
            grouped: dict[str, list[StoredResult]] = {role: [] for role in DOSSIER_ROLES}
            for role, record, version, okey in rows:
                grouped[role].append(self._result(s, record, version, okey))
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
        with self._session("list records") as s:
            q = self._filtered(s, okey, doc_type, issuing_agency, date_from, date_to)
            if q is None:
                return []
            status = (STATUS_CURRENT, STATUS_SUPERSEDED) if include_superseded else (STATUS_CURRENT,)
            q = q.where(Version.status.in_(status)).order_by(Record.updated_at.desc(), Version.version.desc())
            rows = s.execute(q.limit(limit).offset(offset)).all()
            return [self._result_from_row(r) for r in rows]

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
        with self._session("search") as s:
            q = self._filtered(s, okey, doc_type, issuing_agency, date_from, date_to)
            if q is None:
                return []
            ft = fulltext(self.engine.dialect.name, tokens, Version.id, prefix=wants_prefix(query))
            q = q.where(Version.status == STATUS_CURRENT)
            if okey is None:  # walk the text index newest first, stop after `limit` rows
                q = q.join(ft.table, ft.on).where(ft.match).order_by(ft.newest_first)
            else:  # one owner has few records: walk them and probe the text index for each
                q = q.where(ft.matches_row()).order_by(Version.id.desc())
            q = q.limit(limit)
            rows = s.execute(q).all()
            return [SearchHit(result=self._result_from_row(r), rank=i) for i, r in enumerate(rows)]

    def _resolve_owner_key(self, owner_id: str | None, owner_key: str | None) -> str | None:
        if owner_id is not None and owner_key is not None:
            raise InvalidRequest("pass owner_id or owner_key, not both")
        return self.owner_key(owner_id) if owner_id is not None else owner_key

    @staticmethod
    def _filtered(
        s: Session,
        okey: str | None,
        doc_type: str | None,
        issuing_agency: str | None,
        date_from: datetime | None,
        date_to: datetime | None,
    ):  # noqa: ANN205 (SQLAlchemy Select)
        q = (
            select(Record, Version, Owner.owner_key, Blob.size)
            .join(Version, Version.record_id == Record.id)
            .join(Owner, Owner.id == Record.owner_id)
            .join(Blob, Blob.sha256 == Version.pdf_sha256)
        )
        if okey is not None:
            q = q.where(Owner.owner_key == okey)
        if doc_type is not None:
            q = q.where(Record.doc_type == doc_type)
        if issuing_agency is not None:
            q = q.where(Record.issuing_agency == issuing_agency)
        if date_from is not None:
            q = q.where(Record.updated_at >= date_from)
        if date_to is not None:
            q = q.where(Record.updated_at < date_to)
        return q

    @staticmethod
    def _result_from_row(row: Any) -> StoredResult:
        record, version, okey, size = row[0], row[1], row[2], row[3]
        return _make_result(record, version, okey, size)

    @staticmethod
    def _result(s: Session, record: Record, version: Version, okey: str) -> StoredResult:
        size = s.scalar(select(Blob.size).where(Blob.sha256 == version.pdf_sha256)) or 0
        return _make_result(record, version, okey, size)

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


def _insert_ignoring_duplicates(dialect: str, model: type, keys: list[str]):  # noqa: ANN202
    """INSERT ... ON CONFLICT DO NOTHING for the two supported dialects."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        raise InvalidRequest(f"unsupported database dialect {dialect}")
    return dialect_insert(model).on_conflict_do_nothing(index_elements=keys)


def _live_blob() -> ColumnElement[bool]:
    """Blobs referenced by at least one version that is not deleted."""
    live = select(Version.id).where(
        Version.status != STATUS_DELETED, (Version.pdf_sha256 == Blob.sha256) | (Version.record_sha256 == Blob.sha256)
    )
    return live.exists()


def _make_result(record: Record, version: Version, okey: str, size: int) -> StoredResult:
    return StoredResult(
        uri=record.uri,
        version=version.version,
        sha256=version.pdf_sha256,
        size=int(size),
        object_key=layout.blob_key(version.pdf_sha256),
        doc_type=version.doc_type,
        owner_key=okey,
        created_at=_aware(version.created_at) or version.created_at,
        status=version.status,
        issuing_agency=record.issuing_agency,
        title=record.title,
        record_sha256=version.record_sha256,
        manifest_key=version.manifest_key,
        pages=version.pages,
        retain_until=_aware(version.retain_until),
        lock_mode=version.lock_mode,
        legal_hold=bool(version.legal_hold),
    )


def _search_body(req: StoreRequest) -> str:
    parts: Iterable[str] = [req.title, *(v for v in req.fields.values() if v), req.text]
    return fold(" ".join(p for p in parts if p))

"""The store path's two index round trips, as plain SQL: the idempotency lookup and the write.

``Repository.store`` is the hot write path (every scanned document goes through it), so its SQL
is written out once per dialect instead of being built by SQLAlchemy on every call:

* :func:`lookup` — ONE statement: the owner's row id, whether the two blobs are already indexed,
  and the record's owner, last version and the version already holding these PDF bytes.
* :func:`write_version` — every row of a new version in one transaction. PostgreSQL: ONE
  statement (data-modifying CTEs, lists passed as arrays and ``unnest``-ed), atomic by itself,
  so it runs on an autocommit connection in a single round trip. SQLite (in-process, no network
  round trips): a handful of statements in one transaction.

The statement texts depend only on which rows are new (owner, record, blobs, dossier), so there
are a few fixed texts per dialect, built once (:func:`functools.cache`); the driver receives
them as they are (``exec_driver_sql``), errors still go through SQLAlchemy's handling
(disconnect detection, exception wrapping). Unique constraints (owner key, record URI,
``(record_id, version)``) turn a concurrent writer's race into an ``IntegrityError`` that the
caller resolves by looking up again.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime
from sqlalchemy.dialects import sqlite as sqlite_dialect

from .errors import InvalidRequest
from .models import STATUS_CURRENT, STATUS_DELETED, STATUS_SUPERSEDED

_LOOKUP = f"""
SELECT (SELECT id FROM owners WHERE owner_key = :okey),
       (SELECT count(*) FROM blobs WHERE sha256 = :pdf),
       (SELECT count(*) FROM blobs WHERE sha256 = :rec),
       r.id, ro.owner_key,
       (SELECT max(version) FROM versions WHERE record_id = r.id),
       (SELECT max(version) FROM versions
         WHERE record_id = r.id AND pdf_sha256 = :pdf AND status <> '{STATUS_DELETED}')
FROM (SELECT 1 AS one) AS x
LEFT JOIN records r ON r.uri = :uri
LEFT JOIN owners ro ON ro.id = r.owner_id
"""


@dataclass(frozen=True)
class StoreLookup:
    """What the index knows about a store request before any object is written."""

    owner_row_id: int | None  # owners.id of the request's owner key, if the owner exists
    indexed: frozenset[str]  # which of the two digests already have a blob row
    record_id: int | None  # records.id of the URI, if the record exists
    record_owner_key: str | None
    last_version: int | None  # highest version number ever used (deleted ones included)
    same_version: int | None  # the live version already holding these PDF bytes

    @property
    def next_version(self) -> int:
        return (self.last_version or 0) + 1


@dataclass(frozen=True)
class NewBlob:
    sha256: str
    size: int
    object_key: str
    media_type: str


@dataclass(frozen=True)
class VersionRows:
    """Every value :func:`write_version` puts in the index for one new version."""

    uri: str
    owner_key: str
    owner_kind: str
    owner_id_encrypted: bytes | None  # only needed when the owner is new
    owner_row_id: int | None  # None: create the owner
    record_id: int | None  # None: create the record
    version: int
    doc_type: str
    issuing_agency: str | None
    converting_agency_code: str
    title: str
    pdf_sha256: str
    record_sha256: str
    manifest_key: str
    pages: int
    created_at: datetime
    lock_mode: str | None
    retain_until: datetime | None
    legal_hold: bool
    new_blobs: tuple[NewBlob, ...]
    sources: tuple[str, ...]  # scan digests, in order
    page_texts: tuple[str | None, ...]  # one per page
    fields: tuple[tuple[str, str | None], ...]
    search_body: str
    dossier_code: str | None
    dossier_role: str


def lookup(conn: Connection, uri: str, okey: str, pdf_sha: str, rec_sha: str) -> StoreLookup:
    """One statement: everything ``store`` must know before writing objects."""
    sql = _lookup_sql(conn.dialect.name)
    row = conn.exec_driver_sql(sql, {"okey": okey, "pdf": pdf_sha, "rec": rec_sha, "uri": uri}).one()
    owner_row_id, pdf_known, rec_known, record_id, record_owner, last, same = row
    indexed = frozenset(s for s, known in ((pdf_sha, pdf_known), (rec_sha, rec_known)) if known)
    return StoreLookup(owner_row_id, indexed, record_id, record_owner, last, same)


def write_version(conn: Connection, rows: VersionRows) -> None:
    """Insert every row of a new version (and its owner, record, blobs, dossier link when new).

    PostgreSQL: one statement, call it on an autocommit connection (it is atomic by itself).
    SQLite: call it inside a transaction (``engine.begin()``)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _write_postgresql(conn, rows)
    elif dialect == "sqlite":
        _write_sqlite(conn, rows)
    else:
        raise InvalidRequest(f"unsupported database dialect {dialect}")


# -- PostgreSQL: one statement --------------------------------------------------------------------
def _write_postgresql(conn: Connection, rows: VersionRows) -> None:
    sql = _pg_write_sql(rows.owner_row_id is None, rows.record_id is None, bool(rows.new_blobs), rows.dossier_code is not None)
    params = _common_params(rows)
    params.update(
        now=rows.created_at,
        retain_until=rows.retain_until,
        b_sha=[b.sha256 for b in rows.new_blobs],
        b_size=[b.size for b in rows.new_blobs],
        b_key=[b.object_key for b in rows.new_blobs],
        b_media=[b.media_type for b in rows.new_blobs],
        sources=list(rows.sources),
        page_texts=list(rows.page_texts),
        field_names=[k for k, _ in rows.fields],
        field_values=[v for _, v in rows.fields],
    )
    conn.exec_driver_sql(sql, params)


@functools.cache
def _pg_write_sql(new_owner: bool, new_record: bool, new_blobs: bool, dossier: bool) -> str:
    ctes: list[str] = []
    if new_owner:
        ctes.append(
            "o AS (INSERT INTO owners (owner_key, kind, id_encrypted, created_at) "
            "VALUES (:okey, :kind, :id_enc, :now) RETURNING id)"
        )
    owner = "(SELECT id FROM o)" if new_owner else ":owner_row_id"
    if new_blobs:  # a concurrent writer of the same bytes may have inserted some meanwhile
        ctes.append(
            "b AS (INSERT INTO blobs (sha256, size, object_key, media_type, created_at) "
            "SELECT t.s, t.z, t.k, t.m, :now FROM unnest(CAST(:b_sha AS varchar[]), CAST(:b_size AS bigint[]), "
            "CAST(:b_key AS varchar[]), CAST(:b_media AS varchar[])) AS t(s, z, k, m) "
            "ON CONFLICT (sha256) DO NOTHING)"
        )
    if new_record:
        ctes.append(
            "r AS (INSERT INTO records (uri, owner_id, doc_type, issuing_agency, converting_agency_code, title, "
            f"created_at, updated_at, current_version) VALUES (:uri, {owner}, :doc_type, :agency, :conv_agency, "
            ":title, :now, :now, :version) RETURNING id)"
        )
        record = "(SELECT id FROM r)"
    else:
        # Sub-statements share one snapshot: this UPDATE cannot see the version inserted below.
        ctes.append(
            f"s AS (UPDATE versions SET status = '{STATUS_SUPERSEDED}' "
            f"WHERE record_id = :record_id AND status = '{STATUS_CURRENT}')"
        )
        ctes.append(
            "r AS (UPDATE records SET doc_type = :doc_type, issuing_agency = :agency, title = :title, "
            "updated_at = :now, current_version = :version WHERE id = :record_id)"
        )
        record = ":record_id"
    ctes += [
        "v AS (INSERT INTO versions (record_id, version, status, doc_type, pdf_sha256, record_sha256, manifest_key, "
        f"pages, created_at, lock_mode, retain_until, legal_hold) VALUES ({record}, :version, '{STATUS_CURRENT}', "
        ":doc_type, :pdf, :rec, :manifest_key, :pages, :now, :lock_mode, :retain_until, :legal_hold) RETURNING id)",
        "vs AS (INSERT INTO version_sources (version_id, position, source_sha256) "
        "SELECT v.id, t.n - 1, t.sha FROM v, unnest(CAST(:sources AS varchar[])) WITH ORDINALITY AS t(sha, n))",
        "pg AS (INSERT INTO pages (version_id, page_no, text) "
        "SELECT v.id, t.n, t.txt FROM v, unnest(CAST(:page_texts AS text[])) WITH ORDINALITY AS t(txt, n))",
        "f AS (INSERT INTO fields (version_id, name, value) "
        "SELECT v.id, t.k, t.val FROM v, unnest(CAST(:field_names AS varchar[]), CAST(:field_values AS text[])) AS t(k, val))",
        f"sd AS (INSERT INTO search_docs (version_id, record_id, body) SELECT v.id, {record}, :body FROM v)",
    ]
    if dossier:
        # The upsert returns the id of an existing dossier too (and locks its row for the link).
        ctes.append(
            f"d AS (INSERT INTO dossiers (code, owner_id, created_at) VALUES (:dossier, {owner}, :now) "
            "ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id)"
        )
        final = (
            f"INSERT INTO dossier_links (dossier_id, record_id, role, seq) SELECT d.id, {record}, :role, "
            "COALESCE((SELECT max(l.seq) FROM dossier_links l WHERE l.dossier_id = d.id AND l.role = :role), 0) + 1 "
            "FROM d ON CONFLICT (dossier_id, record_id) DO NOTHING"
        )
    else:
        final = "SELECT id FROM v"
    return _pyformat("WITH " + ",\n".join(ctes) + "\n" + final)


# -- SQLite: a few statements in the caller's transaction -----------------------------------------
_SQLITE_TIME = DateTime(timezone=True).dialect_impl(sqlite_dialect.dialect()).bind_processor(sqlite_dialect.dialect())

_SQLITE = {
    "owner": "INSERT INTO owners (owner_key, kind, id_encrypted, created_at) VALUES (:okey, :kind, :id_enc, :now) RETURNING id",
    "blob": "INSERT INTO blobs (sha256, size, object_key, media_type, created_at) VALUES (:sha, :size, :key, :media, :now) "
            "ON CONFLICT (sha256) DO NOTHING",
    "record": "INSERT INTO records (uri, owner_id, doc_type, issuing_agency, converting_agency_code, title, created_at, "
              "updated_at, current_version) VALUES (:uri, :owner_row_id, :doc_type, :agency, :conv_agency, :title, :now, "
              ":now, :version) RETURNING id",
    "supersede": f"UPDATE versions SET status = '{STATUS_SUPERSEDED}' WHERE record_id = :record_id AND status = '{STATUS_CURRENT}'",
    "touch": "UPDATE records SET doc_type = :doc_type, issuing_agency = :agency, title = :title, updated_at = :now, "
             "current_version = :version WHERE id = :record_id",
    "version": "INSERT INTO versions (record_id, version, status, doc_type, pdf_sha256, record_sha256, manifest_key, pages, "
               f"created_at, lock_mode, retain_until, legal_hold) VALUES (:record_id, :version, '{STATUS_CURRENT}', :doc_type, "
               ":pdf, :rec, :manifest_key, :pages, :now, :lock_mode, :retain_until, :legal_hold) RETURNING id",
    "source": "INSERT INTO version_sources (version_id, position, source_sha256) VALUES (?, ?, ?)",
    "page": "INSERT INTO pages (version_id, page_no, text) VALUES (?, ?, ?)",
    "field": "INSERT INTO fields (version_id, name, value) VALUES (?, ?, ?)",
    "search": "INSERT INTO search_docs (version_id, record_id, body) VALUES (?, ?, ?)",
    "dossier": "INSERT INTO dossiers (code, owner_id, created_at) VALUES (:dossier, :owner_row_id, :now) "
               "ON CONFLICT (code) DO UPDATE SET code = excluded.code RETURNING id",
    "link": "INSERT INTO dossier_links (dossier_id, record_id, role, seq) SELECT :dossier_id, :record_id, :role, "
            "COALESCE((SELECT max(seq) FROM dossier_links WHERE dossier_id = :dossier_id AND role = :role), 0) + 1 "
            "ON CONFLICT (dossier_id, record_id) DO NOTHING",
}


def _write_sqlite(conn: Connection, rows: VersionRows) -> None:
    run = conn.exec_driver_sql
    params = _common_params(rows)
    params.update(now=_SQLITE_TIME(rows.created_at), retain_until=_SQLITE_TIME(rows.retain_until))
    if params["owner_row_id"] is None:
        params["owner_row_id"] = run(_SQLITE["owner"], params).scalar_one()
    for b in rows.new_blobs:
        run(_SQLITE["blob"], {"sha": b.sha256, "size": b.size, "key": b.object_key, "media": b.media_type, "now": params["now"]})
    if params["record_id"] is None:
        params["record_id"] = run(_SQLITE["record"], params).scalar_one()
    else:
        run(_SQLITE["supersede"], params)
        run(_SQLITE["touch"], params)
    version_id = run(_SQLITE["version"], params).scalar_one()
    if rows.sources:
        run(_SQLITE["source"], [(version_id, i, d) for i, d in enumerate(rows.sources)])
    run(_SQLITE["page"], [(version_id, i + 1, t) for i, t in enumerate(rows.page_texts)])
    if rows.fields:
        run(_SQLITE["field"], [(version_id, k, v) for k, v in rows.fields])
    run(_SQLITE["search"], (version_id, params["record_id"], rows.search_body))
    if rows.dossier_code is not None:
        params["dossier_id"] = run(_SQLITE["dossier"], params).scalar_one()
        run(_SQLITE["link"], params)


# -- shared ---------------------------------------------------------------------------------------
def _common_params(rows: VersionRows) -> dict[str, object]:
    return {
        "okey": rows.owner_key,
        "kind": rows.owner_kind,
        "id_enc": rows.owner_id_encrypted,
        "owner_row_id": rows.owner_row_id,
        "record_id": rows.record_id,
        "uri": rows.uri,
        "version": rows.version,
        "doc_type": rows.doc_type,
        "agency": rows.issuing_agency,
        "conv_agency": rows.converting_agency_code,
        "title": rows.title,
        "pdf": rows.pdf_sha256,
        "rec": rows.record_sha256,
        "manifest_key": rows.manifest_key,
        "pages": rows.pages,
        "lock_mode": rows.lock_mode,
        "legal_hold": rows.legal_hold,
        "body": rows.search_body,
        "dossier": rows.dossier_code,
        "role": rows.dossier_role,
    }


@functools.cache
def _lookup_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return _pyformat(_LOOKUP)
    if dialect == "sqlite":
        return _LOOKUP
    raise InvalidRequest(f"unsupported database dialect {dialect}")


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def _pyformat(sql: str) -> str:
    """``:name`` placeholders -> psycopg2's ``%(name)s`` (no ``::`` casts are used here)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))

"""The read path's SQL: SQLAlchemy Core statements built once per shape and reused.

Every lookup that returns versions selects the same plain columns (no ORM entities to build)
from ``records ⋈ versions ⋈ owners ⋈ blobs``; the values vary only through bound parameters, so
each statement object is built once (:func:`functools.cache`) and SQLAlchemy's compiled cache
finds it by identity on every later call.
"""
from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, select

from .models import STATUS_CURRENT, STATUS_DELETED, Blob, Dossier, DossierLink, Owner, Record, Version
from .search import fulltext


R, V, O, B = Record.__table__, Version.__table__, Owner.__table__, Blob.__table__
DL, D = DossierLink.__table__, Dossier.__table__

# The order of these columns is the order :func:`repository.service._result_from_row` reads. The
# PDF's size comes from a scalar subquery rather than a fourth join: PostgreSQL plans it in about
# two thirds of the time, and planning, not execution, is most of the server's work here.
_PDF_SIZE = select(B.c.size).where(B.c.sha256 == V.c.pdf_sha256).scalar_subquery()
RESULT_COLUMNS = (
    R.c.uri, R.c.issuing_agency, R.c.title, O.c.owner_key, V.c.version, V.c.status, V.c.doc_type,
    V.c.pdf_sha256, V.c.record_sha256, V.c.manifest_key, V.c.pages, V.c.created_at, V.c.lock_mode,
    V.c.retain_until, V.c.legal_hold, _PDF_SIZE,
)
_FROM = R.join(V, V.c.record_id == R.c.id).join(O, O.c.id == R.c.owner_id)

FILTERS = ("owner_key", "doc_type", "issuing_agency", "date_from", "date_to")


def _results() -> Select[Any]:
    return select(*RESULT_COLUMNS).select_from(_FROM)


@functools.cache
def version_of_uri(numbered: bool) -> Select[Any]:
    """A live version of ``:uri``: number ``:version`` when ``numbered``, else the newest."""
    q = _results().where(R.c.uri == bindparam("uri"), V.c.status != STATUS_DELETED)
    if numbered:
        return q.where(V.c.version == bindparam("version"))
    return q.order_by(V.c.version.desc()).limit(1)


@functools.cache
def versions_of_uri() -> Select[Any]:
    return _results().where(R.c.uri == bindparam("uri"), V.c.status != STATUS_DELETED).order_by(V.c.version)


@functools.cache
def record_exists() -> Select[Any]:
    return select(R.c.id).where(R.c.uri == bindparam("uri"))


def _filtered(filters: frozenset[str]) -> Select[Any]:
    q = _results()
    if "owner_key" in filters:
        q = q.where(O.c.owner_key == bindparam("owner_key"))
    if "doc_type" in filters:
        q = q.where(R.c.doc_type == bindparam("doc_type"))
    if "issuing_agency" in filters:
        q = q.where(R.c.issuing_agency == bindparam("issuing_agency"))
    if "date_from" in filters:
        q = q.where(R.c.updated_at >= bindparam("date_from", type_=R.c.updated_at.type))
    if "date_to" in filters:
        q = q.where(R.c.updated_at < bindparam("date_to", type_=R.c.updated_at.type))
    return q


@functools.cache
def listing(filters: frozenset[str], include_superseded: bool) -> Select[Any]:
    """Records matching the given filters (bound by name, see :data:`FILTERS`), newest first,
    ``:limit``/``:offset``."""
    # statuses are current / superseded / deleted: no expanding IN list to render on every call
    live = V.c.status != STATUS_DELETED if include_superseded else V.c.status == STATUS_CURRENT
    return (
        _filtered(filters)
        .where(live)
        .order_by(R.c.updated_at.desc(), V.c.version.desc())
        .limit(bindparam("limit", type_=R.c.id.type))
        .offset(bindparam("offset", type_=R.c.id.type))
    )


@functools.cache
def text_search(dialect: str, filters: frozenset[str]) -> Select[Any]:
    """Current versions matching the filters and the full-text query ``:fts`` (value from
    :func:`repository.search.fulltext_query`), newest first, ``:limit``.

    Without an owner filter the text index is walked newest first and stops after ``limit``
    rows; with one, that owner's few records are walked and the text index probed for each."""
    ft = fulltext(dialect, V.c.id)
    q = _filtered(filters).where(V.c.status == STATUS_CURRENT)
    if "owner_key" in filters:
        q = q.where(ft.matches_row()).order_by(V.c.id.desc())
    else:
        q = q.join(ft.table, ft.on).where(ft.match).order_by(ft.newest_first)
    return q.limit(bindparam("limit", type_=R.c.id.type))


@functools.cache
def dossier_members() -> Select[Any]:
    """Current versions of the records of dossier ``:code``, by role then result number."""
    return (
        select(DL.c.role, *RESULT_COLUMNS)
        .select_from(
            D.join(DL, DL.c.dossier_id == D.c.id)
            .join(R, R.c.id == DL.c.record_id)
            .join(V, (V.c.record_id == R.c.id) & (V.c.status == STATUS_CURRENT))
            .join(O, O.c.id == R.c.owner_id)
        )
        .where(D.c.code == bindparam("code"))
        .order_by(DL.c.role, DL.c.seq)
    )


@functools.cache
def dossier_exists() -> Select[Any]:
    return select(D.c.id).where(D.c.code == bindparam("code"))

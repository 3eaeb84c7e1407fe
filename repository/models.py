"""SQL index of the repository (SQLAlchemy 2 declarative models).

The schema itself is created and evolved only by the Alembic migrations in
``repository/migrations``; these classes must match them. Dialect-specific search structures
(SQLite FTS5 table ``search_fts``; PostgreSQL ``search_docs.tsv`` + GIN) live in the migrations
and are queried with SQL in :mod:`repository.search`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


# versions.status values
STATUS_CURRENT = "current"
STATUS_SUPERSEDED = "superseded"
STATUS_DELETED = "deleted"


class Base(DeclarativeBase):
    pass


class Owner(Base):
    """A citizen or organization; the ID is held only as HMAC key + AES-GCM ciphertext."""

    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    id_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Record(Base):
    """A document with a stable URI; its content lives in immutable versions."""

    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(160), unique=True, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), nullable=False)
    doc_type: Mapped[str] = mapped_column(String(64), nullable=False)
    issuing_agency: Mapped[str | None] = mapped_column(String(255))
    converting_agency_code: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        Index("ix_records_owner_type_updated", "owner_id", "doc_type", "updated_at"),
        Index("ix_records_owner_updated", "owner_id", "updated_at"),
        Index("ix_records_agency_updated", "issuing_agency", "updated_at"),
        Index("ix_records_type_updated", "doc_type", "updated_at"),
    )


class Blob(Base):
    """Content-addressed bytes in the object store."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    object_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    media_type: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Version(Base):
    """One immutable version of a record (a correction or re-scan adds a version)."""

    __tablename__ = "versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # current / superseded / deleted
    doc_type: Mapped[str] = mapped_column(String(64), nullable=False)
    pdf_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), nullable=False)
    record_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), nullable=False)
    manifest_key: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    pages: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    lock_mode: Mapped[str | None] = mapped_column(String(16))
    retain_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    legal_hold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (
        UniqueConstraint("record_id", "version", name="uq_versions_record_version"),
        Index("ix_versions_pdf_sha256", "pdf_sha256"),
        Index("ix_versions_record_sha256", "record_sha256"),
    )


class VersionSource(Base):
    """SHA-256 of each input file a version was made from (scan provenance)."""

    __tablename__ = "version_sources"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)


class Page(Base):
    """Pages of a version, with their OCR text when the caller supplied it per page."""

    __tablename__ = "pages"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    page_no: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    text: Mapped[str | None] = mapped_column(Text)


class Field(Base):
    """Extracted structured fields of a version (name -> value)."""

    __tablename__ = "fields"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class SearchDoc(Base):
    """Folded searchable text (title, field values, OCR text) of each live version."""

    __tablename__ = "search_docs"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), nullable=False, index=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)


class Dossier(Base):
    """An administrative-procedure dossier (hồ sơ TTHC) grouping components and results."""

    __tablename__ = "dossiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DossierLink(Base):
    """Membership of a record in a dossier, as a component (thành phần) or a result (kết quả)."""

    __tablename__ = "dossier_links"
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # component / result
    seq: Mapped[int] = mapped_column(Integer, nullable=False)  # n of <dossier code>-KQ(n) for results


class FixityCheck(Base):
    """Outcome of each re-read + re-hash of a blob (evidence of integrity over the years)."""

    __tablename__ = "fixity_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    outcome: Mapped[str] = mapped_column(String(24), nullable=False)  # ok/changed/missing/signature_invalid

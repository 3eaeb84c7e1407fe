"""Initial repository index: owners, records, versions, blobs, pages, fields, dossiers, search.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_key", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uri", sa.String(160), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id"), nullable=False),
        sa.Column("doc_type", sa.String(64), nullable=False),
        sa.Column("issuing_agency", sa.String(255)),
        sa.Column("converting_agency_code", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_records_owner_type_updated", "records", ["owner_id", "doc_type", "updated_at"])
    op.create_index("ix_records_owner_updated", "records", ["owner_id", "updated_at"])
    op.create_index("ix_records_agency_updated", "records", ["issuing_agency", "updated_at"])
    op.create_index("ix_records_type_updated", "records", ["doc_type", "updated_at"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.String(200), nullable=False, unique=True),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("doc_type", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("record_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("manifest_key", sa.String(255), nullable=False, unique=True),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("lock_mode", sa.String(16)),
        sa.Column("retain_until", TS),
        sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("record_id", "version", name="uq_versions_record_version"),
    )
    op.create_index("ix_versions_pdf_sha256", "versions", ["pdf_sha256"])
    op.create_index("ix_versions_record_sha256", "versions", ["record_sha256"])
    op.create_table(
        "version_sources",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("source_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_version_sources_source_sha256", "version_sources", ["source_sha256"])
    op.create_table(
        "pages",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("page_no", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text),
    )
    op.create_table(
        "fields",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text),
    )
    op.create_table(
        "search_docs",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_search_docs_record_id", "search_docs", ["record_id"])
    op.create_table(
        "dossiers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "dossier_links",
        sa.Column("dossier_id", sa.Integer, sa.ForeignKey("dossiers.id"), primary_key=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "fixity_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
    )
    op.create_index("ix_fixity_checks_sha256", "fixity_checks", ["sha256"])
    _create_fulltext(op.get_bind().dialect.name)


def _create_fulltext(dialect: str) -> None:
    """Full-text structures over the already-folded ``search_docs.body``."""
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "body, content='search_docs', content_rowid='version_id', tokenize='unicode61')"
        )
        op.execute(
            "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
            "INSERT INTO search_fts(rowid, body) VALUES (new.version_id, new.body); END"
        )
        op.execute(
            "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.version_id, old.body); END"
        )
        op.execute(
            "CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.version_id, old.body); "
            "INSERT INTO search_fts(rowid, body) VALUES (new.version_id, new.body); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE search_docs ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED"
        )
        op.execute("CREATE INDEX ix_search_docs_tsv ON search_docs USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("search_docs_ai", "search_docs_ad", "search_docs_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    for table in (
        "fixity_checks",
        "dossier_links",
        "dossiers",
        "search_docs",
        "fields",
        "pages",
        "version_sources",
        "versions",
        "blobs",
        "records",
        "owners",
    ):
        op.drop_table(table)

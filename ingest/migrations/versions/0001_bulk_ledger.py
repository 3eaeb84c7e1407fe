"""Bulk-run ledger: runs and their units (one unit = one document to store exactly once).

Revision ID: 0001_bulk_ledger
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_bulk_ledger"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bulk_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("manifest_path", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_table(
        "bulk_units",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("bulk_runs.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("unit_key", sa.String(64), nullable=False),
        sa.Column("manifest_line", sa.Integer),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("page_count", sa.Integer, nullable=False),
        sa.Column("owner_ref", sa.String(64)),
        sa.Column("owner_sealed", sa.LargeBinary),
        sa.Column("doc_type_hint", sa.String(64)),
        sa.Column("dossier_code", sa.String(64)),
        sa.Column("archive_ref", sa.JSON, nullable=False),
        sa.Column("record_ulid", sa.String(26), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", TS),
        sa.Column("dispatched_at", TS),
        sa.Column("record_uri", sa.String(160)),
        sa.Column("version", sa.Integer),
        sa.Column("doc_type", sa.String(64)),
        sa.Column("confidence", sa.Float),
        sa.Column("reason_code", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("seconds", sa.Float),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_bulk_units_run_seq"),
    )
    op.create_index("ix_bulk_units_run_state", "bulk_units", ["run_id", "state"])
    op.create_index("ix_bulk_units_key_state", "bulk_units", ["unit_key", "state"])


def downgrade() -> None:
    op.drop_index("ix_bulk_units_key_state", table_name="bulk_units")
    op.drop_index("ix_bulk_units_run_state", table_name="bulk_units")
    op.drop_table("bulk_units")
    op.drop_table("bulk_runs")

"""Access control and audit: API clients and keys, desk users and sessions, access grants,
authorizations (uỷ quyền), digitization jobs, the hash-chained audit log and its checkpoints.

Revision ID: 0101_access_audit
Revises: 0001_initial
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0101_access_audit"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agency_code", sa.String(64)),
        sa.Column("owner_key", sa.String(64)),
        sa.Column("rate_per_second", sa.Float),
        sa.Column("burst", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_api_clients_owner_key", "api_clients", ["owner_key"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(12), primary_key=True),
        sa.Column("client_id", sa.String(32), sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_api_keys_client_id", "api_keys", ["client_id"])
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS),
    )
    op.create_table(
        "user_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(64), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_user_sessions_user_name", "user_sessions", ["user_name"])
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("agency_code", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("legal_reference", sa.String(255)),
        sa.Column("doc_type", sa.String(64)),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("revoked_at", TS),
        sa.Column("revoked_by", sa.String(100)),
    )
    op.create_index("ix_access_grants_owner_agency", "access_grants", ["owner_key", "agency_code"])
    op.create_table(
        "authorizations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("representative_key", sa.String(64), nullable=False),
        sa.Column("doc_type", sa.String(64)),
        sa.Column("reference", sa.String(255)),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_authorizations_owner_key", "authorizations", ["owner_key"])
    op.create_index("ix_authorizations_representative_key", "authorizations", ["representative_key"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("submitted_by", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(100)),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("doc_type", sa.String(64)),
        sa.Column("dossier_code", sa.String(64)),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("input_bytes", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("result_uri", sa.String(160)),
        sa.Column("result_version", sa.Integer),
        sa.Column("result_sha256", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.UniqueConstraint("submitted_by", "idempotency_key", name="uq_jobs_submitter_idempotency"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "audit_events",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("record_uri", sa.String(160)),
        sa.Column("record_version", sa.Integer),
        sa.Column("owner_key", sa.String(64)),
        sa.Column("agency_code", sa.String(64)),
        sa.Column("purpose", sa.String(64)),
        sa.Column("basis", sa.String(32)),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_record_uri", "audit_events", ["record_uri"])
    op.create_index("ix_audit_events_owner_key", "audit_events", ["owner_key"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_checkpoints", "audit_events", "jobs", "authorizations", "access_grants",
                  "user_sessions", "users", "api_keys", "api_clients"):
        op.drop_table(table)

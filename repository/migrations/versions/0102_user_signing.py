"""Desk users' personal signing identities (Circular 01/2023/TT-VPCP Art. 8): the full name
printed in the officer's signature appearance, the conversion mark and the receipt, and a
reference to the user's personal signing key (kind + JSON reference, never a secret).

Revision ID: 0102_user_signing
Revises: 0101_access_audit
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0102_user_signing"
down_revision = "0101_access_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("full_name", sa.String(200)))
    op.add_column("users", sa.Column("signing_kind", sa.String(16)))
    op.add_column("users", sa.Column("signing_ref", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("signing_ref")
        batch.drop_column("signing_kind")
        batch.drop_column("full_name")

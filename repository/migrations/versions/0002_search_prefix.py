"""SQLite full-text index with 2- and 3-character prefix indexes (fast last-word prefix queries).

Revision ID: 0002_search_prefix
Revises: 0001_initial
Create Date: 2026-11-25
"""
from __future__ import annotations

from alembic import op

revision = "0002_search_prefix"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TRIGGERS = ("search_docs_ai", "search_docs_ad", "search_docs_au")


def _recreate(prefix_option: str) -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS search_fts")
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5("
        f"body, content='search_docs', content_rowid='version_id', tokenize='unicode61'{prefix_option})"
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
    op.execute("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate(", prefix='2 3'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("")

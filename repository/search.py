"""Diacritics-insensitive full-text queries over ``search_docs`` (already-folded text).

SQLite uses the FTS5 table ``search_fts`` (external content = ``search_docs``); PostgreSQL the
generated ``tsvector`` column ``search_docs.tsv`` with a GIN index (``'simple'`` configuration:
no stemming, the text is folded in Python). Every query token must match; the last one also
matches as a prefix, so a search box can query while the user types.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, String, column, func, literal, literal_column, select, table, text
from sqlalchemy.sql import Select

from .errors import InvalidRequest
from .folding import fold_tokens

MAX_QUERY_TOKENS = 16


def query_tokens(query: str) -> list[str]:
    tokens = fold_tokens(query)[:MAX_QUERY_TOKENS]
    if not tokens:
        raise InvalidRequest("empty search query (no letters or digits)")
    return tokens


def fts5_match(tokens: list[str]) -> str:
    """FTS5 MATCH expression: quoted tokens ANDed, last one as a prefix."""
    parts = [f'"{t}"' for t in tokens[:-1]] + [f'"{tokens[-1]}"*']
    return " AND ".join(parts)


def tsquery(tokens: list[str]) -> str:
    """``to_tsquery('simple', ...)`` input: tokens ANDed, last one as a prefix."""
    return " & ".join(tokens[:-1] + [f"{tokens[-1]}:*"])


def matching_version_ids(dialect: str, tokens: list[str]) -> tuple[Select, ColumnElement]:
    """A SELECT of (version_id, rank) for documents matching ``tokens`` and its rank column
    (lower rank = better)."""
    if dialect == "sqlite":
        fts = table("search_fts", column("rowid"), column("rank"))
        rank = literal_column("search_fts.rank")
        stmt = (
            select(literal_column("search_fts.rowid").label("version_id"), rank.label("rank"))
            .select_from(fts)
            .where(text("search_fts MATCH :match").bindparams(match=fts5_match(tokens)))
        )
        return stmt, rank
    if dialect == "postgresql":
        docs = table("search_docs", column("version_id"), column("tsv"))
        tsq = func.to_tsquery(literal("simple", String), tsquery(tokens))
        rank = -func.ts_rank(docs.c.tsv, tsq)
        stmt = (
            select(docs.c.version_id.label("version_id"), rank.label("rank"))
            .select_from(docs)
            .where(docs.c.tsv.op("@@")(tsq))
        )
        return stmt, rank
    raise InvalidRequest(f"full-text search is not supported on {dialect}")

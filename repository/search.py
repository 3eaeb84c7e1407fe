"""Diacritics-insensitive full-text queries over ``search_docs`` (already-folded text).

SQLite uses the FTS5 table ``search_fts`` (external content = ``search_docs``); PostgreSQL the
generated ``tsvector`` column ``search_docs.tsv`` with a GIN index (``'simple'`` configuration:
no stemming, the text is folded in Python). Every query token must match; the last one also
matches as a prefix, so a search box can query while the user types. Newest versions first.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, FromClause, String, column, func, literal, table, text

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


@dataclass(frozen=True)
class FullText:
    """How to join the full-text index to ``versions`` and filter/order by it."""

    table: FromClause
    on: ColumnElement[bool]  # join condition with versions.id
    match: ColumnElement[bool]
    newest_first: ColumnElement  # ORDER BY that the index can stream (stops after LIMIT rows)


def fulltext(dialect: str, tokens: list[str], version_id: ColumnElement) -> FullText:
    """Full-text match of ``tokens``, newest version first.

    Results are ordered by recency, not by a relevance score: ordering by the index's row id lets
    SQLite's FTS5 walk its doclists backwards and stop after LIMIT rows, and lets PostgreSQL pick
    between the GIN index and a backwards primary-key scan, so common words ("nguyen", "van")
    stay fast at 100,000+ records. Every word must match, so more words narrow the result.
    """
    if dialect == "sqlite":
        fts = table("search_fts", column("rowid"))
        return FullText(
            table=fts,
            on=fts.c.rowid == version_id,
            match=text("search_fts MATCH :fts_match").bindparams(fts_match=fts5_match(tokens)),
            newest_first=fts.c.rowid.desc(),
        )
    if dialect == "postgresql":
        docs = table("search_docs", column("version_id"), column("tsv"))
        tsq = func.to_tsquery(literal("simple", String), tsquery(tokens))
        return FullText(
            table=docs,
            on=docs.c.version_id == version_id,
            match=docs.c.tsv.op("@@")(tsq),
            newest_first=docs.c.version_id.desc(),
        )
    raise InvalidRequest(f"full-text search is not supported on {dialect}")

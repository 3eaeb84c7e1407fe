"""Diacritics-insensitive full-text queries over ``search_docs`` (already-folded text).

SQLite uses the FTS5 table ``search_fts`` (external content = ``search_docs``); PostgreSQL the
generated ``tsvector`` column ``search_docs.tsv`` with a GIN index (``'simple'`` configuration:
no stemming, the text is folded in Python). Every query word must match exactly (after
folding); a query ending in ``*`` matches its last word as a prefix. Newest versions first.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, FromClause, String, bindparam, column, exists, func, literal, table, text

from .errors import InvalidRequest
from .folding import fold_tokens

MAX_QUERY_TOKENS = 16


def query_tokens(query: str) -> list[str]:
    tokens = fold_tokens(query)[:MAX_QUERY_TOKENS]
    if not tokens:
        raise InvalidRequest("empty search query (no letters or digits)")
    return tokens


def wants_prefix(query: str) -> bool:
    """A query ending in ``*`` ("giay khai s*") matches its last word as a prefix."""
    return query.rstrip().endswith("*")


def fts5_match(tokens: list[str], prefix: bool = False) -> str:
    """FTS5 MATCH expression: quoted tokens ANDed, the last one optionally as a prefix."""
    parts = [f'"{t}"' for t in tokens]
    if prefix:
        parts[-1] += "*"
    return " AND ".join(parts)


def tsquery(tokens: list[str], prefix: bool = False) -> str:
    """``to_tsquery('simple', ...)`` input: tokens ANDed, the last one optionally as a prefix."""
    return " & ".join(tokens[:-1] + [tokens[-1] + (":*" if prefix else "")])


@dataclass(frozen=True)
class FullText:
    """How to join the full-text index to ``versions`` and filter/order by it. The query itself is
    the bound parameter ``:fts`` (its value: :func:`fulltext_query`), so one statement serves
    every query."""

    table: FromClause
    on: ColumnElement[bool]  # join condition with versions.id
    match: ColumnElement[bool]
    newest_first: ColumnElement  # ORDER BY that the index can stream (stops after LIMIT rows)

    def matches_row(self) -> ColumnElement[bool]:
        """Correlated EXISTS probe of the text index for the current outer row: the plan to use
        when another filter (one owner's records) is far more selective than the words."""
        return exists().select_from(self.table).where(self.on, self.match)


def fulltext(dialect: str, version_id: ColumnElement) -> FullText:
    """Full-text match of the ``:fts`` parameter, newest version first.

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
            match=text("search_fts MATCH :fts"),
            newest_first=fts.c.rowid.desc(),
        )
    if dialect == "postgresql":
        docs = table("search_docs", column("version_id"), column("tsv"))
        tsq = func.to_tsquery(literal("simple", String), bindparam("fts", type_=String))
        return FullText(
            table=docs,
            on=docs.c.version_id == version_id,
            match=docs.c.tsv.op("@@")(tsq),
            newest_first=docs.c.version_id.desc(),
        )
    raise InvalidRequest(f"full-text search is not supported on {dialect}")


def fulltext_query(dialect: str, tokens: list[str], prefix: bool = False) -> str:
    """The value of ``:fts`` for :func:`fulltext`: an FTS5 MATCH expression or a tsquery."""
    if dialect == "sqlite":
        return fts5_match(tokens, prefix)
    if dialect == "postgresql":
        return tsquery(tokens, prefix)
    raise InvalidRequest(f"full-text search is not supported on {dialect}")

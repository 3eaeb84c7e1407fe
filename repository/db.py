"""Engine creation, programmatic Alembic migration and database error mapping."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .errors import StorageUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


def normalize_db_url(db_url: str) -> str:
    """Pin the PostgreSQL driver the project ships (psycopg2): SQLAlchemy 2.1 would pick
    psycopg 3 for a bare ``postgresql://`` URL."""
    for prefix in ("postgresql://", "postgres://"):
        if db_url.startswith(prefix):
            return "postgresql+psycopg2://" + db_url[len(prefix) :]
    return db_url


def make_engine(db_url: str, *, busy_timeout: float = 30.0) -> Engine:
    """An engine tuned for the repository: SQLite in WAL mode with FKs on (waiting at most
    ``busy_timeout`` seconds for another writer's lock), PG with timeouts."""
    db_url = normalize_db_url(db_url)
    if db_url.startswith("sqlite"):
        engine = create_engine(db_url, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
        _ensure_sqlite_dir(db_url)
        return engine
    connect_args = {"connect_timeout": 5} if db_url.startswith("postgresql") else {}
    return create_engine(db_url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


def make_autocommit_engine(engine: Engine) -> Engine:
    """For single-statement work on a server database: its own small pool of autocommit
    connections (no BEGIN/ROLLBACK round trips) without a pre-ping (no ``SELECT 1`` round trip);
    callers go through :func:`retry_on_disconnect` instead. SQLite works in-process, where
    neither round trip exists: the engine itself is returned."""
    if engine.dialect.name == "sqlite":
        return engine
    # Prepared statements are planned once (generic plan): with array parameters (batched reads,
    # audit appends) PostgreSQL's default re-plans them on EVERY execution, because its estimate
    # for a generic plan over arrays of unknown length never beats a custom one (measured:
    # 1.5 ms of server CPU per batched read vs 0.13 ms with the generic plan).
    return create_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10,
        connect_args={"connect_timeout": 5, "options": "-c plan_cache_mode=force_generic_plan"},
    )


def retry_on_disconnect(engine: Engine, operation: str, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a connection of ``engine``; when the connection turns out dead (a server
    restart left it stale in the pool), run it once more on a fresh one. Only for work that is
    safe to repeat: a read, or one atomic statement whose unique constraints make a repeat fail
    cleanly. Connection-level failures end as :class:`StorageUnavailable`."""
    with db_errors(operation):
        try:
            with engine.connect() as conn:
                return work(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with engine.connect() as conn:  # SQLAlchemy has invalidated the pool's stale connections
            return work(conn)


def run_on_cursor(engine: Engine, operation: str, work: Callable[[Any, dict], T]) -> T:
    """:func:`retry_on_disconnect` for the hottest statements: ``work(cursor, info)`` gets a
    DB-API cursor of a pooled connection of ``engine`` and that connection's ``info`` dict (for
    per-connection state such as prepared statements), without a SQLAlchemy ``Connection`` or
    result object around it (those cost more Python time than the statement's round trip).

    Driver errors come out as SQLAlchemy's exceptions (``IntegrityError``...), connection-level
    ones as :class:`StorageUnavailable`, as through a ``Connection``. A connection that turns
    out dead is discarded and ``work`` runs once more on a fresh one, so ``work`` must be safe to
    repeat (a read, or a statement that can tell it already happened)."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    with db_errors(operation):
        for attempt in (1, 2):
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    return work(cursor, raw.info)
                finally:
                    cursor.close()
            except dbapi_error as exc:
                dead = engine.dialect.is_disconnect(exc, raw.dbapi_connection, None)
                if dead:
                    raw.invalidate(exc)
                    if attempt == 1:
                        continue
                raise DBAPIError.instance(None, None, exc, dbapi_error, connection_invalidated=dead,
                                          dialect=engine.dialect) from exc
            finally:
                raw.close()
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def execute_prepared(cursor: Any, info: dict, name: str, prepare: str, execute: str, args: Sequence[Any]) -> None:
    """Execute the PostgreSQL prepared statement ``name`` on one pooled connection (``cursor``
    and ``info`` as :func:`run_on_cursor` gives them; the caller fetches the rows): ``prepare``
    runs on the connection's first use of ``name`` (remembered in ``info``, which lives as long
    as the database session), then ``execute`` with ``args``."""
    prepared = info.setdefault("sohoa_prepared", set())
    if name not in prepared:
        cursor.execute(prepare)
        prepared.add(name)
    cursor.execute(execute, args)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DB-API connection)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _ensure_sqlite_dir(db_url: str) -> None:
    path = db_url.split(":///", 1)[-1] if ":///" in db_url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


_MIGRATE_LOCK = threading.Lock()  # Alembic keeps process-global state: one upgrade at a time


def upgrade(engine: Engine, script_location: Path, target: str, operation: str) -> None:
    """Run one Alembic history up to ``target`` on ``engine``, whichever package owns it.

    Every history in the process goes through here, because Alembic's module-level context is
    shared: two upgrades in two threads (e.g. the desk's warm-up and an API job, or the bulk ledger
    and the index) must not overlap."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    with _MIGRATE_LOCK, db_errors(operation), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def migrate(engine: Engine) -> None:
    """Bring the index schema to the newest revision of every branch (safe on every open).

    Several packages add revisions to this history (the index here, access control and audit in
    ``repository.access``/``repository.audit``); ``heads`` applies all branches."""
    upgrade(engine, MIGRATIONS_DIR, "heads", "migrate")


@contextmanager
def db_errors(operation: str) -> Iterator[None]:
    """Turn connection-level database failures into :class:`StorageUnavailable`."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise StorageUnavailable(f"database unavailable during {operation}: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable(f"database connection lost during {operation}") from exc
        raise


def _first_line(exc: Exception) -> str:
    """The driver's message without SQL or bound parameters (which may hold personal data)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"

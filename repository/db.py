"""Engine creation, programmatic Alembic migration and database error mapping."""
from __future__ import annotations

import threading

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .errors import StorageUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalize_db_url(db_url: str) -> str:
    """Pin the PostgreSQL driver the project ships (psycopg2): SQLAlchemy 2.1 would pick
    psycopg 3 for a bare ``postgresql://`` URL."""
    for prefix in ("postgresql://", "postgres://"):
        if db_url.startswith(prefix):
            return "postgresql+psycopg2://" + db_url[len(prefix) :]
    return db_url


def make_engine(db_url: str) -> Engine:
    """An engine tuned for the repository: SQLite in WAL mode with FKs on, PG with timeouts."""
    db_url = normalize_db_url(db_url)
    if db_url.startswith("sqlite"):
        engine = create_engine(db_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        _ensure_sqlite_dir(db_url)
        return engine
    connect_args = {"connect_timeout": 5} if db_url.startswith("postgresql") else {}
    return create_engine(db_url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


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

"""The bulk-run ledger: which documents (units) a run has, and where each one is.

Tables ``bulk_runs`` and ``bulk_units`` live in the repository's SQL database but are created by
this package's own Alembic environment (``ingest/migrations``, version table
``alembic_version_ingest``), run on every :meth:`Ledger.open`.

A unit moves ``pending -> running -> storing -> stored`` (or ``review`` / ``failed`` /
``skipped``). Exactly-once storage rests on three rules:

* a worker must **claim** a unit (a conditional UPDATE: only one claimer wins) and holds a lease;
  a lease is free again when it expires or when its owner process on this host is gone;
* before the repository is called, the unit's record URI (derived from the unit, never random) is
  written with state ``storing``;
* whoever picks up a ``storing`` unit first asks the repository whether that URI exists, so a crash
  between "stored" and "ledger updated" is repaired instead of storing a second copy.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (JSON, DateTime, Engine, Float, ForeignKey, Integer, LargeBinary, String,
                        Text, UniqueConstraint, func, select, update)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from repository.db import db_errors, make_engine, upgrade
from repository.errors import StorageUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_ingest"
T = TypeVar("T")


class UnitState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STORING = "storing"
    STORED = "stored"
    REVIEW = "review"  # analysed, not stored: low confidence or failed quality gate
    FAILED = "failed"
    SKIPPED = "skipped"  # the same unit is already stored (an earlier run, or a duplicate row)


FINAL_STATES = frozenset({UnitState.STORED, UnitState.REVIEW, UnitState.FAILED, UnitState.SKIPPED})
# failures worth another attempt on resume without being asked (the input itself is fine)
TRANSIENT_REASONS = frozenset({"storage_unavailable", "worker_lost", "timeout"})


class RunState(StrEnum):
    PLANNING = "planning"  # units not written yet: resume plans again
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: everything here is written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "bulk_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    manifest_path: Mapped[str] = mapped_column(Text, nullable=False)
    manifest_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UnitRow(Base):
    __tablename__ = "bulk_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("bulk_runs.id"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_key: Mapped[str] = mapped_column(String(64), nullable=False)
    manifest_line: Mapped[int | None] = mapped_column(Integer)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    page_count: Mapped[int] = mapped_column(Integer, nullable=False)
    owner_ref: Mapped[str | None] = mapped_column(String(64))
    owner_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    doc_type_hint: Mapped[str | None] = mapped_column(String(64))
    dossier_code: Mapped[str | None] = mapped_column(String(64))
    archive_ref: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    record_ulid: Mapped[str] = mapped_column(String(26), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    record_uri: Mapped[str | None] = mapped_column(String(160))
    version: Mapped[int | None] = mapped_column(Integer)
    doc_type: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_bulk_units_run_seq"),)

    @property
    def lease_expiry(self) -> datetime | None:
        return as_utc(self.lease_until)

    @property
    def dispatched(self) -> datetime | None:
        return as_utc(self.dispatched_at)


@dataclass(frozen=True)
class NewUnit:
    """A unit as planned: everything a worker needs, with the owner ID already sealed."""

    seq: int
    unit_key: str
    sources: list[dict[str, Any]]  # [{"path", "sha256", "pages": [0-based indices]}]
    page_count: int
    record_ulid: str
    owner_ref: str | None
    owner_sealed: bytes | None
    doc_type_hint: str | None = None
    dossier_code: str | None = None
    archive_ref: dict[str, Any] | None = None
    manifest_line: int | None = None
    state: UnitState = UnitState.PENDING
    reason_code: str | None = None
    reason: str | None = None
    record_uri: str | None = None


@dataclass(frozen=True)
class StateCount:
    units: int = 0
    pages: int = 0


# ---- lease owners ---------------------------------------------------------------------------
def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (Linux); empty when unavailable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _start_ticks(pid: int) -> str:
    """Start time of a process (clock ticks since boot), so a reused pid is not mistaken for the
    lease holder. Empty where /proc is not available."""
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def worker_identity() -> str:
    """``host:pid@start`` of this process: how a lease names its holder."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}@{_start_ticks(pid)}"


def _process_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if not fields:
        return True  # no /proc: the signal said it exists
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return not start or fields[19] == start


def lease_is_dead(owner: str | None, until: datetime | None, now: datetime) -> bool:
    """A lease no longer protects its unit. On this host the holder's process is asked directly
    (a long unit may outlive its lease, a killed one must not wait for it); a holder on another
    host is trusted until the lease expires."""
    if owner is None:
        return True
    host, _, process = owner.rpartition(":")
    pid, _, start = process.partition("@")
    if host == socket.gethostname() and pid.isdigit():
        return not _process_alive(int(pid), start)
    return until is None or until <= now


# ---- retries of ledger writes -----------------------------------------------------------------
def with_db_retry(operation: Callable[[], T], *, what: str, deadline_s: float = 90.0) -> T:
    """Run a ledger operation, retrying while the database is unreachable (restarts, failover)."""
    start, delay = time.monotonic(), 0.5
    while True:
        try:
            return operation()
        except StorageUnavailable:
            if time.monotonic() - start > deadline_s:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# ---- the ledger -----------------------------------------------------------------------------
class Ledger:
    """Runs and units in the SQL index. All methods are short transactions, safe to call from
    many processes at once (claims are conditional updates)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, db_url: str) -> "Ledger":
        engine = make_engine(db_url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self, operation: str) -> Iterator[Session]:
        with db_errors(f"ledger {operation}"), Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    # runs
    def create_run(self, run_id: str, *, source: str, manifest_path: str, manifest_sha256: str,
                   options: dict[str, Any]) -> RunRow:
        now = utcnow()
        row = RunRow(id=run_id, source=source, manifest_path=manifest_path,
                     manifest_sha256=manifest_sha256, options=options, state=RunState.PLANNING,
                     created_at=now, updated_at=now)
        with self._session("create run") as s:
            s.add(row)
        return row

    def run(self, run_id: str) -> RunRow | None:
        with self._session("read run") as s:
            return s.get(RunRow, run_id)

    def runs(self, limit: int = 20) -> list[RunRow]:
        with self._session("list runs") as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)))

    def set_run_state(self, run_id: str, state: RunState) -> None:
        now = utcnow()
        values: dict[str, Any] = {"state": state, "updated_at": now}
        if state == RunState.FINISHED:
            values["finished_at"] = now
        with self._session("update run") as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    # units
    def add_units(self, run_id: str, units: list[NewUnit]) -> None:
        """Write a run's planned units and mark it running, in one transaction (a crash leaves the
        run either unplanned or fully planned)."""
        now = utcnow()
        with self._session("add units") as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(state=RunState.RUNNING, updated_at=now))
            s.add_all(UnitRow(run_id=run_id, seq=u.seq, unit_key=u.unit_key, sources=u.sources,
                              page_count=u.page_count, record_ulid=u.record_ulid,
                              owner_ref=u.owner_ref, owner_sealed=u.owner_sealed,
                              doc_type_hint=u.doc_type_hint, dossier_code=u.dossier_code,
                              archive_ref=u.archive_ref or {}, manifest_line=u.manifest_line,
                              state=u.state, attempts=0, reason_code=u.reason_code,
                              reason=u.reason, record_uri=u.record_uri, updated_at=now)
                      for u in units)

    def unit(self, unit_id: int) -> UnitRow | None:
        with self._session("read unit") as s:
            return s.get(UnitRow, unit_id)

    def units(self, run_id: str) -> list[UnitRow]:
        with self._session("list units") as s:
            return list(s.scalars(select(UnitRow).where(UnitRow.run_id == run_id).order_by(UnitRow.seq)))

    def counts(self, run_id: str) -> dict[str, StateCount]:
        with self._session("count units") as s:
            rows = s.execute(select(UnitRow.state, func.count(), func.coalesce(func.sum(UnitRow.page_count), 0))
                             .where(UnitRow.run_id == run_id).group_by(UnitRow.state)).all()
        return {state: StateCount(int(n), int(pages)) for state, n, pages in rows}

    def stored_copy(self, unit_key: str, exclude_unit: int | None = None) -> UnitRow | None:
        """A unit with the same key already stored (by any run), if there is one."""
        query = select(UnitRow).where(UnitRow.unit_key == unit_key, UnitRow.state == UnitState.STORED)
        if exclude_unit is not None:
            query = query.where(UnitRow.id != exclude_unit)
        with self._session("find stored copy") as s:
            return s.scalars(query.order_by(UnitRow.id).limit(1)).first()

    def earliest_with_key(self, unit_key: str) -> UnitRow | None:
        """The first unit ever planned with this key, preferring a stored one."""
        with self._session("find unit by key") as s:
            rows = list(s.scalars(select(UnitRow).where(UnitRow.unit_key == unit_key).order_by(UnitRow.id)))
        stored = [r for r in rows if r.state == UnitState.STORED]
        with_uri = [r for r in rows if r.record_uri]
        return (stored or with_uri or rows or [None])[0]

    def open_units(self, run_id: str, retry_failed: bool = False) -> list[UnitRow]:
        """Units of a run that still need work: not final, transient failures, and (if asked)
        every failed or review unit."""
        def wanted(u: UnitRow) -> bool:
            if u.state in (UnitState.PENDING, UnitState.RUNNING, UnitState.STORING):
                return True  # for running/storing units the claim decides whether the lease is dead
            if u.state == UnitState.FAILED:
                return retry_failed or u.reason_code in TRANSIENT_REASONS
            return u.state == UnitState.REVIEW and retry_failed
        return [u for u in self.units(run_id) if wanted(u)]

    def mark_dispatched(self, unit_ids: list[int]) -> None:
        if not unit_ids:
            return
        with self._session("mark dispatched") as s:
            s.execute(update(UnitRow).where(UnitRow.id.in_(unit_ids)).values(dispatched_at=utcnow()))

    def reopen(self, unit_ids: list[int]) -> None:
        """Failed/review units asked to be retried go back to pending (attempts are kept)."""
        if not unit_ids:
            return
        with self._session("reopen units") as s:
            s.execute(update(UnitRow).where(UnitRow.id.in_(unit_ids),
                                            UnitRow.state.in_([UnitState.FAILED, UnitState.REVIEW]))
                      .values(state=UnitState.PENDING, reason_code=None, reason=None, updated_at=utcnow()))

    def claim(self, unit_id: int, worker: str, lease_s: float) -> UnitRow | None:
        """Take a unit for work; ``None`` when it is final or someone alive holds it.

        The row comes back as it was before the claim (``state`` tells whether a previous
        holder got as far as ``storing``)."""
        now = utcnow()
        with self._session("claim unit") as s:
            row = s.get(UnitRow, unit_id)
            if row is None or row.state in FINAL_STATES - {UnitState.FAILED}:
                return None
            if row.state == UnitState.FAILED and row.reason_code not in TRANSIENT_REASONS:
                return None
            if row.state in (UnitState.RUNNING, UnitState.STORING) and not lease_is_dead(
                    row.lease_owner, row.lease_expiry, now):
                return None
            before = {c.key: getattr(row, c.key) for c in UnitRow.__table__.columns}
            new_state = UnitState.STORING if row.state == UnitState.STORING else UnitState.RUNNING
            won = s.execute(
                update(UnitRow)
                .where(UnitRow.id == unit_id, UnitRow.state == row.state,
                       UnitRow.attempts == row.attempts)
                .values(state=new_state, attempts=row.attempts + 1, lease_owner=worker,
                        lease_until=now + timedelta(seconds=lease_s), updated_at=now)
            ).rowcount
        if won != 1:
            return None
        return UnitRow(**before)

    def renew(self, unit_id: int, worker: str, lease_s: float) -> bool:
        now = utcnow()
        with self._session("renew lease") as s:
            return s.execute(update(UnitRow).where(UnitRow.id == unit_id, UnitRow.lease_owner == worker,
                                                   UnitRow.state.in_([UnitState.RUNNING, UnitState.STORING]))
                             .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)).rowcount == 1

    def mark_storing(self, unit_id: int, worker: str, uri: str, doc_type: str,
                     confidence: float | None, lease_s: float) -> bool:
        """Record the URI about to be stored; False when the lease was lost meanwhile."""
        now = utcnow()
        with self._session("mark storing") as s:
            return s.execute(update(UnitRow).where(UnitRow.id == unit_id, UnitRow.lease_owner == worker,
                                                   UnitRow.state.in_([UnitState.RUNNING, UnitState.STORING]))
                             .values(state=UnitState.STORING, record_uri=uri, doc_type=doc_type,
                                     confidence=confidence, lease_until=now + timedelta(seconds=lease_s),
                                     updated_at=now)).rowcount == 1

    def finish(self, unit_id: int, worker: str | None, state: UnitState, **values: Any) -> bool:
        """Final state of a unit (only by the lease holder when ``worker`` is given)."""
        allowed = {"record_uri", "version", "doc_type", "confidence", "reason_code", "reason", "seconds"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown unit fields: {sorted(unknown)}")
        query = update(UnitRow).where(UnitRow.id == unit_id)
        if worker is not None:
            query = query.where(UnitRow.lease_owner == worker)
        with self._session("finish unit") as s:
            return s.execute(query.values(state=state, lease_owner=None, lease_until=None,
                                          updated_at=utcnow(), **values)).rowcount == 1

    def release(self, unit_id: int, worker: str) -> None:
        """Give a claimed unit back untouched (e.g. the worker is shutting down)."""
        with self._session("release unit") as s:
            s.execute(update(UnitRow).where(UnitRow.id == unit_id, UnitRow.lease_owner == worker,
                                            UnitRow.state == UnitState.RUNNING)
                      .values(state=UnitState.PENDING, lease_owner=None, lease_until=None,
                              updated_at=utcnow()))


def migrate(engine: Engine) -> None:
    """Bring the ledger tables to the newest revision (safe to call on every open)."""
    upgrade(engine, MIGRATIONS_DIR, "head", "ledger migrate")

"""Tamper-evident audit trail: an append-only, hash-chained event log with signed checkpoints.

Every read, download, grant change and admin action is one :class:`AuditEntry`. Stored entries
carry a sequence number, the previous entry's hash and their own hash::

    hash(n) = SHA-256( canonical JSON of entry n, including seq(n) and hash(n-1) )

so editing an entry changes its hash, deleting one leaves a gap and breaks the next entry's link,
and swapping two breaks both links. A rewrite of the whole chain from some point on is caught by
**checkpoints**: ``(seq, hash, time)`` signed with the service's Ed25519 key (X-Road signs its
message log the same way). The only change the chain cannot show by itself is dropping entries
after the newest checkpoint, which is why the API writes checkpoints often (every few seconds
while there is traffic) and `verify` reports how many entries are not yet covered.

Owners appear only as opaque ``owner_key`` values: nothing here may contain a personal number.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import BigInteger, Integer, String, Text, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .db import db_errors, execute_prepared, make_autocommit_engine, run_on_cursor
from .errors import InvalidRequest, StorageUnavailable
from .models import Base

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
CHECKPOINT_DOMAIN = b"sohoa-audit-checkpoint/v1\n"
OUTCOMES: tuple[str, ...] = ("allowed", "denied", "ok", "failed")
_APPEND_ATTEMPTS = 20
_VERIFY_BATCH = 5000
_PG_LOCK_KEY = int.from_bytes(b"sohoa-au", "big") >> 1  # one advisory lock for the chain head


class AuditEvent(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    at: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    actor_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    action: Mapped[str] = mapped_column(String(48), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    record_uri: Mapped[str | None] = mapped_column(String(160), index=True)
    record_version: Mapped[int | None] = mapped_column(Integer)
    owner_key: Mapped[str | None] = mapped_column(String(64), index=True)
    agency_code: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(64))
    basis: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[str] = mapped_column(String(32), nullable=False)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    signature: Mapped[str] = mapped_column(String(128), nullable=False)


_HEAD = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")

# One statement appends a batch on PostgreSQL when the caller's idea of the head is right: the
# rows (already chained in Python) go in only if the newest entry still has the hash they link
# to, and the statement answers with the head it saw, so a writer whose head was stale (another
# process appended) re-chains on it at once. The statement is its own transaction (autocommit):
# committed when it returns. Two writers racing for the same ``seq`` meet at the primary key.
_EVENT_COLUMNS = ("seq", "actor", "actor_kind", "action", "outcome", "record_uri", "record_version", "owner_key",
                  "agency_code", "purpose", "basis", "details", "prev_hash", "hash")
_PG_APPEND_NAME = "sohoa_audit_append"
_PG_APPEND = (
    f"PREPARE {_PG_APPEND_NAME}(text, text, bigint[], {', '.join(['text[]'] * 5)}, integer[], {', '.join(['text[]'] * 7)}) AS "
    "WITH head AS (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1), "
    "ins AS (INSERT INTO audit_events (at, " + ", ".join(_EVENT_COLUMNS) + ") "
    "SELECT $2, r.* FROM unnest(" + ", ".join(f"${i + 3}" for i in range(len(_EVENT_COLUMNS))) + ") AS r "
    "WHERE COALESCE((SELECT hash FROM head), '" + GENESIS_HASH + "') = $1 RETURNING 1) "
    "SELECT (SELECT count(*) FROM ins), (SELECT seq FROM head), (SELECT hash FROM head)")
_PG_APPEND_EXECUTE = f"EXECUTE {_PG_APPEND_NAME}({', '.join(['%s'] * (len(_EVENT_COLUMNS) + 2))})"
_OPTIMISTIC_ATTEMPTS = 4


# ---- plain data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened. ``actor`` is an opaque principal reference (``client:c_…``,
    ``user:lan``), never a person's number; ``details`` must not hold personal data either."""

    actor: str
    actor_kind: str
    action: str
    outcome: str = "ok"
    record_uri: str | None = None
    record_version: int | None = None
    owner_key: str | None = None
    agency_code: str | None = None
    purpose: str | None = None
    basis: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise InvalidRequest(f"audit outcome must be one of {OUTCOMES}")
        if not self.actor or not self.action:
            raise InvalidRequest("audit entries need an actor and an action")


@dataclass(frozen=True)
class StoredAuditEvent:
    seq: int
    at: str
    actor: str
    actor_kind: str
    action: str
    outcome: str
    record_uri: str | None
    record_version: int | None
    owner_key: str | None
    agency_code: str | None
    purpose: str | None
    basis: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str


@dataclass
class AuditReport:
    ok: bool
    entries: int
    last_seq: int
    checkpoints: int
    uncovered: int  # entries after the newest valid checkpoint
    problems: list[str]


# ---- hashing and keys ------------------------------------------------------------------------
def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, at: str, entry_fields: dict[str, Any], details_json: str, prev_hash: str) -> str:
    body = {"seq": seq, "at": at, **entry_fields, "details": details_json, "prev_hash": prev_hash}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _fields_of(obj: AuditEntry | AuditEvent) -> dict[str, Any]:
    return {"actor": obj.actor, "actor_kind": obj.actor_kind, "action": obj.action, "outcome": obj.outcome,
            "record_uri": obj.record_uri, "record_version": obj.record_version, "owner_key": obj.owner_key,
            "agency_code": obj.agency_code, "purpose": obj.purpose, "basis": obj.basis}


def _chained(entries: Sequence[tuple[dict[str, Any], str]], head: tuple[int, str], at: str) -> list[dict[str, Any]]:
    """Rows of ``_EVENT_COLUMNS`` (+ ``at``) for entries given as (fields, canonical details),
    chained one after the other on ``head`` (its seq and hash)."""
    seq, prev = head
    rows = []
    for fields, details in entries:
        seq += 1
        digest = entry_hash(seq, at, fields, details, prev)
        rows.append({"seq": seq, "at": at, **fields, "details": details, "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


def checkpoint_message(seq: int, hash_hex: str, at: str) -> bytes:
    return CHECKPOINT_DOMAIN + f"{seq}\n{hash_hex}\n{at}".encode("ascii")


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_service_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key signing audit checkpoints (PKCS#8 PEM, mode 0600), created on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidRequest(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)
    path.with_suffix(".pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stored(e: AuditEvent) -> StoredAuditEvent:
    return StoredAuditEvent(seq=e.seq, at=e.at, actor=e.actor, actor_kind=e.actor_kind, action=e.action,
                            outcome=e.outcome, record_uri=e.record_uri, record_version=e.record_version,
                            owner_key=e.owner_key, agency_code=e.agency_code, purpose=e.purpose,
                            basis=e.basis, details=json.loads(e.details), prev_hash=e.prev_hash, hash=e.hash)


def _pg_append(cursor: Any, info: dict, params: tuple) -> tuple[int, int | None, str | None]:
    """Run the prepared append on one connection (prepared there on first use)."""
    execute_prepared(cursor, info, _PG_APPEND_NAME, _PG_APPEND, _PG_APPEND_EXECUTE, params)
    inserted, seq, digest = cursor.fetchone()
    return int(inserted), seq, digest


# ---- the log ---------------------------------------------------------------------------------
class AuditLog:
    """Append, checkpoint, read and verify the audit chain in the repository's SQL index."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._head_hint: tuple[int, str] = (0, GENESIS_HASH)  # the head as this log last saw it
        self._appends: Engine | None = None
        self._appends_lock = threading.Lock()

    def close(self) -> None:
        """Close the append pool (the main engine belongs to whoever passed it in)."""
        with self._appends_lock:
            if self._appends is not None and self._appends is not self.engine:
                self._appends.dispose()
            self._appends = None

    @contextmanager
    def _session(self, operation: str) -> Iterator[Session]:
        with db_errors(operation), self._sessions() as s:
            yield s

    def append(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Append entries in order, in one transaction; returns their sequence numbers.

        Safe with several writers (threads or processes): a writer that lost the race for the
        next sequence number hits the primary key, rolls back and re-chains on the new head.
        """
        if not entries:
            return []
        prepared = [(_fields_of(entry), canonical_json(entry.details)) for entry in entries]
        if self.engine.dialect.name == "postgresql":
            seqs = self._append_optimistic(prepared)
            if seqs is not None:
                return seqs
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with db_errors("append audit events"), self.engine.begin() as conn:
                    if self.engine.dialect.name == "postgresql":  # writers queue instead of colliding
                        conn.execute(_PG_LOCK, {"k": _PG_LOCK_KEY})
                    head = conn.execute(_HEAD).first()
                    rows = _chained(prepared, (head[0], head[1]) if head else (0, GENESIS_HASH), now_iso())
                    conn.execute(AuditEvent.__table__.insert(), rows)
                self._head_hint = (rows[-1]["seq"], rows[-1]["hash"])
                return [row["seq"] for row in rows]
            except IntegrityError:
                time.sleep(0.001 * (attempt + 1))
        raise StorageUnavailable("audit log: too much contention appending events")

    def _append_optimistic(self, entries: Sequence[tuple[dict[str, Any], str]]) -> list[int] | None:
        """PostgreSQL: append in ONE round trip, chained on the head this log last saw; re-chained
        on the head the statement reports when another writer got there first. ``None`` after a
        few misses or a collision: the caller then takes the advisory lock and cannot miss."""
        if self._appends is None:
            with self._appends_lock:
                if self._appends is None:
                    self._appends = make_autocommit_engine(self.engine)
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            at = now_iso()
            rows = _chained(entries, self._head_hint, at)
            last = (rows[-1]["seq"], rows[-1]["hash"])
            params = (self._head_hint[1], at, *([row[c] for row in rows] for c in _EVENT_COLUMNS))
            try:
                inserted, head_seq, head_hash = run_on_cursor(self._appends, "append audit events",
                                                              lambda cur, info: _pg_append(cur, info, params))
            except IntegrityError:  # a writer in another process took the same seq at the same moment
                return None
            if inserted == len(entries) or (head_seq, head_hash) == last:
                # (the second case: the connection dropped after our statement committed, and
                # the repeat found our own last entry at the head)
                self._head_hint = last
                return list(range(last[0] - len(entries) + 1, last[0] + 1))
            self._head_hint = (head_seq or 0, head_hash or GENESIS_HASH)
        return None

    def head(self) -> tuple[int, str]:
        with self._session("read audit head") as s:
            row = s.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    def last_checkpoint(self) -> Checkpoint | None:
        with self._session("read checkpoint") as s:
            c = s.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
        return Checkpoint(c.seq, c.hash, c.at, c.key_id, c.signature) if c else None

    def checkpoint(self, key: Ed25519PrivateKey) -> Checkpoint | None:
        """Sign the current head (``None`` when the log is empty or the head is already signed)."""
        seq, digest = self.head()
        if seq == 0:
            return None
        last = self.last_checkpoint()
        if last is not None and last.seq >= seq:
            return None
        at = now_iso()
        cp = Checkpoint(seq=seq, hash=digest, at=at, key_id=key_id_of(key.public_key()),
                        signature=key.sign(checkpoint_message(seq, digest, at)).hex())
        try:
            with self._session("write checkpoint") as s, s.begin():
                s.add(AuditCheckpoint(**asdict(cp)))
        except IntegrityError:
            return None  # another writer signed the same head
        return cp

    def events(self, *, owner_key: str | None = None, record_uri: str | None = None,
               actions: Iterable[str] | None = None, before_seq: int | None = None,
               limit: int = 100) -> list[StoredAuditEvent]:
        """Newest first, filtered; for citizens' "who accessed my records" and for admins."""
        q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
        if owner_key is not None:
            q = q.where(AuditEvent.owner_key == owner_key)
        if record_uri is not None:
            q = q.where(AuditEvent.record_uri == record_uri)
        if actions is not None:
            q = q.where(AuditEvent.action.in_(list(actions)))
        if before_seq is not None:
            q = q.where(AuditEvent.seq < before_seq)
        with self._session("read audit events") as s:
            return [_stored(e) for e in s.scalars(q)]

    def count(self) -> int:
        with self._session("count audit events") as s:
            return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    def verify(self, public_keys: Iterable[Ed25519PublicKey]) -> AuditReport:
        """Re-compute the whole chain and check every checkpoint signature."""
        keys = {key_id_of(k): k for k in public_keys}
        problems: list[str] = []
        hashes_at: dict[int, str] = {}
        with self._session("read checkpoints") as s:
            checkpoints = [Checkpoint(c.seq, c.hash, c.at, c.key_id, c.signature)
                           for c in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))]
        wanted = {c.seq for c in checkpoints}
        expected_seq, prev, entries = 1, GENESIS_HASH, 0
        for e in self._scan():
            entries += 1
            if e.seq != expected_seq:
                problems.append(f"entries {expected_seq}..{e.seq - 1} are missing (deleted)"
                                if e.seq > expected_seq else f"entry {e.seq} is out of order")
            if e.prev_hash != prev:
                problems.append(f"entry {e.seq}: does not link to the previous entry (deleted or reordered)")
            recomputed = entry_hash(e.seq, e.at, _fields_of(e), e.details, e.prev_hash)
            if recomputed != e.hash:
                problems.append(f"entry {e.seq}: content does not match its hash (edited)")
            if e.seq in wanted:
                hashes_at[e.seq] = e.hash
            prev, expected_seq = e.hash, e.seq + 1
        last_seq = expected_seq - 1
        covered = 0
        for c in checkpoints:
            key = keys.get(c.key_id)
            if key is None:
                problems.append(f"checkpoint {c.seq}: signed by unknown key {c.key_id}")
                continue
            try:
                key.verify(bytes.fromhex(c.signature), checkpoint_message(c.seq, c.hash, c.at))
            except (InvalidSignature, ValueError):
                problems.append(f"checkpoint {c.seq}: signature is not valid (checkpoint edited)")
                continue
            if c.seq not in hashes_at:
                problems.append(f"checkpoint {c.seq}: the signed entry is missing (log truncated)")
            elif hashes_at[c.seq] != c.hash:
                problems.append(f"checkpoint {c.seq}: the log differs from what was signed (rewritten)")
            else:
                covered = max(covered, c.seq)
        return AuditReport(ok=not problems, entries=entries, last_seq=last_seq, checkpoints=len(checkpoints),
                           uncovered=max(0, last_seq - covered), problems=problems)

    def _scan(self) -> Iterator[AuditEvent]:
        after = 0
        while True:
            with self._session("verify audit log") as s:
                rows = s.scalars(select(AuditEvent).where(AuditEvent.seq > after)
                                 .order_by(AuditEvent.seq).limit(_VERIFY_BATCH)).all()
            if not rows:
                return
            yield from rows
            after = rows[-1].seq


# ---- group commit for a server ---------------------------------------------------------------
def _settle(outcomes: list[tuple[asyncio.Future[int], int | BaseException]]) -> None:
    """On a waiting event loop: one committed batch's outcomes for that loop's callers."""
    for fut, outcome in outcomes:
        if fut.done():  # timed out or cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


_LoopWaiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[int]"]  # a record_async caller


class AuditWriter:
    """One writer thread per process: callers block until their entry is committed, and entries
    arriving together share one transaction (group commit). Signs a checkpoint every
    ``checkpoint_seconds`` while there is traffic, and on close. A caller that stops waiting
    (timeout, cancelled request) changes nothing for the others: its entry is still written."""

    def __init__(self, log: AuditLog, key: Ed25519PrivateKey | None, *, batch_max: int = 256,
                 checkpoint_seconds: float = 5.0, timeout: float = 15.0) -> None:
        self.log, self.key = log, key
        self.batch_max, self.checkpoint_seconds, self.timeout = batch_max, checkpoint_seconds, timeout
        self._queue: queue.SimpleQueue[tuple[AuditEntry, Future[int] | _LoopWaiter] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dirty = False
        self._last_checkpoint = time.monotonic()

    def record(self, entry: AuditEntry) -> int:
        """Append one entry and wait until it is durable; :class:`StorageUnavailable` otherwise."""
        try:
            return self.submit(entry).result(timeout=self.timeout)
        except TimeoutError as exc:
            raise StorageUnavailable("audit log did not commit in time") from exc

    async def record_async(self, entry: AuditEntry) -> int:
        """:meth:`record` for an event loop: waits for the commit without holding a thread; the
        writer hands a batch's outcomes to each waiting loop in one call."""
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[int] = loop.create_future()
        self._ensure_thread()
        self._queue.put((entry, (loop, committed)))
        try:
            async with asyncio.timeout(self.timeout):
                return await committed
        except TimeoutError as exc:
            raise StorageUnavailable("audit log did not commit in time") from exc

    def submit(self, entry: AuditEntry) -> Future[int]:
        """Queue one entry; the future gets its sequence number once the entry is committed."""
        self._ensure_thread()
        fut: Future[int] = Future()
        self._queue.put((entry, fut))
        return fut

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="sohoa-audit-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.checkpoint_seconds)
            except queue.Empty:
                self._maybe_checkpoint(force=False)
                continue
            if first is None:
                self._maybe_checkpoint(force=True)
                return
            batch = [first]
            stop = False
            while len(batch) < self.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            self._maybe_checkpoint(force=stop)
            if stop:
                return

    def _commit(self, batch: list[tuple[AuditEntry, Future[int] | _LoopWaiter]]) -> None:
        outcomes: Sequence[int | BaseException]
        try:
            outcomes = self.log.append([entry for entry, _ in batch])
            self._dirty = True
        except Exception as exc:  # every waiting request must hear about it
            error = exc if isinstance(exc, StorageUnavailable) else StorageUnavailable(
                f"audit log append failed: {type(exc).__name__}")
            outcomes = [error] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int | BaseException]]] = {}
        for (_, waiter), outcome in zip(batch, outcomes):
            if isinstance(waiter, Future):
                if not waiter.set_running_or_notify_cancel():  # its caller gave up
                    continue
                if isinstance(outcome, BaseException):
                    waiter.set_exception(outcome)
                else:
                    waiter.set_result(outcome)
            else:
                by_loop.setdefault(waiter[0], []).append((waiter[1], outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop is closed: nobody is waiting there any more
                pass

    def _maybe_checkpoint(self, *, force: bool) -> None:
        if self.key is None or not self._dirty:
            return
        if not force and time.monotonic() - self._last_checkpoint < self.checkpoint_seconds:
            return
        try:
            self.log.checkpoint(self.key)
            self._dirty = False
            self._last_checkpoint = time.monotonic()
        except StorageUnavailable:
            log.warning("audit checkpoint postponed: database unavailable")

    def close(self) -> None:
        """Flush pending entries, sign a final checkpoint and stop the thread."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=self.timeout)

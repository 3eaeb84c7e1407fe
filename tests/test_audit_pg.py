"""The audit log's one-statement append on PostgreSQL: writers of several processes (here: several
AuditLog objects, each with its own idea of the head and its own connections) keep ONE chain,
re-chain when another writer got there first, and never write an entry twice — not even when
the connection drops after the statement committed."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.test_repository_core import _pg_database

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    from repository.db import make_engine, migrate

    url, drop = _pg_database(pg_url)
    eng = make_engine(url)
    migrate(eng)
    yield eng
    eng.dispose()
    drop()


def entry(i: int, who: str = "t"):  # noqa: ANN201 (AuditEntry)
    from repository.audit import AuditEntry
    return AuditEntry(actor=f"client:{who}", actor_kind="agency", action="record.download_pdf", outcome="allowed",
                      record_uri=f"000.00.12.H29.giay_khai_sinh.01JF{i:022d}", record_version=1 if i % 2 else None,
                      owner_key="ab" * 32, agency_code="G01.01", purpose="1.004227", basis="legal_basis",
                      details={"i": i, "delivery": "redirect"})


def stored(eng: sa.Engine) -> list[tuple[int, str, str]]:
    with eng.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT seq, actor, details FROM audit_events ORDER BY seq"))]


def test_one_statement_append_chains_and_rechains(engine):
    from repository.audit import AuditLog

    a, b = AuditLog(engine), AuditLog(engine)  # two processes' logs
    try:
        assert a.append([entry(1, "a")]) == [1]
        assert a.append([entry(2, "a"), entry(3, "a")]) == [2, 3]
        assert b.append([entry(4, "b")]) == [4]  # b's head was stale (genesis): re-chained on a's entries
        assert a.append([entry(5, "a")]) == [5]  # and a's now
        report = a.verify([])
        assert report.ok and report.entries == 5 and report.last_seq == 5
        assert [r[1] for r in stored(engine)] == ["client:a"] * 3 + ["client:b", "client:a"]
    finally:
        a.close()
        b.close()


def test_concurrent_logs_keep_one_chain(engine):
    from repository.audit import AuditLog

    logs = [AuditLog(engine) for _ in range(3)]
    errors: list[BaseException] = []

    def work(log: AuditLog, who: str) -> None:
        try:
            for i in range(60):
                log.append([entry(i, who)] * (1 + i % 3))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(logs[i], f"w{i}")) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        report = logs[0].verify([])
        assert report.ok, report.problems
        assert report.entries == 3 * sum(1 + i % 3 for i in range(60))
    finally:
        for log in logs:
            log.close()


def test_dropped_connections_are_retried(engine):
    from repository.audit import AuditLog

    log = AuditLog(engine)
    try:
        log.append([entry(1)])
        with engine.connect() as conn:
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert killed >= 1  # the append pool's connection
        assert log.append([entry(2), entry(3)]) == [2, 3]
        assert log.verify([]).ok and len(stored(engine)) == 3
    finally:
        log.close()


def test_an_answer_lost_after_the_commit_does_not_write_twice(engine, monkeypatch):
    """The statement commits, then the connection drops before the answer arrives: the repeat
    on a fresh connection finds the batch at the head and reports it written, once."""
    import psycopg2

    import repository.audit as audit
    from repository.audit import AuditLog

    real = audit._pg_append
    lost: list[bool] = []

    def commit_then_drop(cursor, info, params):  # noqa: ANN001, ANN202
        result = real(cursor, info, params)
        if not lost:
            lost.append(True)
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return result

    log = AuditLog(engine)
    try:
        log.append([entry(1)])
        monkeypatch.setattr(audit, "_pg_append", commit_then_drop)
        assert log.append([entry(2), entry(3)]) == [2, 3]
        assert lost == [True]
        rows = stored(engine)
        assert [r[0] for r in rows] == [1, 2, 3]
        assert log.verify([]).ok
    finally:
        log.close()


def test_the_locked_path_still_serves_after_misses(engine, monkeypatch):
    """A writer that keeps losing the race falls back to the advisory-lock transaction."""
    import repository.audit as audit
    from repository.audit import AuditLog

    other = AuditLog(engine)
    log = AuditLog(engine)
    real = audit._pg_append

    inside: list[bool] = []

    def someone_else_first(cursor, info, params):  # noqa: ANN001, ANN202
        if not inside:  # another process appends just before every attempt of ours
            inside.append(True)
            try:
                other.append([entry(0, "other")])
            finally:
                inside.clear()
        return real(cursor, info, params)

    try:
        monkeypatch.setattr(audit, "_pg_append", someone_else_first)
        assert log.append([entry(1, "mine")]) == [audit._OPTIMISTIC_ATTEMPTS + 1]
        monkeypatch.undo()
        rows = stored(engine)
        assert [r[1] for r in rows] == ["client:other"] * audit._OPTIMISTIC_ATTEMPTS + ["client:mine"]
        assert log.verify([]).ok
    finally:
        log.close()
        other.close()

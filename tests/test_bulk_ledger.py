"""The bulk ledger alone: migrations beside the repository's, claims, leases, final states."""
from __future__ import annotations

import multiprocessing
import os
import socket
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ingest.bulk.report import page_ranges, report_csv, summarize
from ingest.ledger import (Ledger, NewUnit, UnitState, lease_is_dead, utcnow, worker_identity)
from repository import Repository, RepositoryConfig


def unit(seq: int, key: str = "", pages: int = 1) -> NewUnit:
    return NewUnit(seq=seq, unit_key=(key or f"{seq:064x}")[:64], sources=[{"path": f"hop/{seq}.jpg", "sha256": "0" * 64,
                   "pages": list(range(pages))}], page_count=pages, record_ulid="01M88E59VBNKAMZ3K5MMQDGG5A",
                   owner_ref="f" * 64, owner_sealed=b"sealed", archive_ref={"box": "01"}, manifest_line=seq + 1)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # a clean slate on the shared server
            conn.execute(sa.text("DROP TABLE IF EXISTS bulk_units, bulk_runs, alembic_version_ingest"))
        engine.dispose()
    led = Ledger.open(url)
    yield led
    led.close()


def test_own_version_table_beside_the_repository(tmp_path):
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    repo = Repository.open(RepositoryConfig(db_url=url, local_dir=tmp_path / "objects", owner_secret=b"s" * 32))
    repo.close()
    Ledger.open(url).close()
    Ledger.open(url).close()  # idempotent
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"bulk_runs", "bulk_units", "alembic_version_ingest", "records"} <= tables
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version_ingest")).scalar() == "0001_bulk_ledger"
    engine.dispose()


def test_one_claim_wins_and_only_the_holder_finishes(ledger):
    ledger.create_run("R1", source="/src", manifest_path="/m.csv", manifest_sha256="0" * 64, options={})
    ledger.add_units("R1", [unit(1), unit(2, pages=3)])
    first, second = ledger.units("R1")
    me = worker_identity()
    other = f"{socket.gethostname()}:{os.getppid()}@"  # a live process of this host: the test runner's parent
    before = ledger.claim(first.id, me, 60)
    assert before is not None and before.state == UnitState.PENDING
    assert ledger.claim(first.id, other, 60) is None  # held by a live process
    assert not ledger.finish(first.id, other, UnitState.STORED)  # not the holder
    assert ledger.mark_storing(first.id, me, "A.t.U", "t", 0.9, 60)
    assert ledger.finish(first.id, me, UnitState.STORED, record_uri="A.t.U", version=1)
    assert ledger.claim(first.id, me, 60) is None  # final
    counts = summarize(ledger.counts("R1"))
    assert (counts.stored_units, counts.open_units, counts.open_pages, counts.pages) == (1, 1, 3, 4)
    assert ledger.stored_copy(first.unit_key).id == first.id
    assert ledger.earliest_with_key(first.unit_key).state == UnitState.STORED
    csv_text = report_csv(ledger.units("R1"))
    assert "hop/2.jpg p1-3" in csv_text and "A.t.U" in csv_text


def _dead_pid() -> int:
    proc = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_leases_of_dead_processes_and_expired_remote_leases(ledger):
    now = utcnow()
    host = socket.gethostname()
    assert lease_is_dead(None, None, now)
    assert lease_is_dead(f"{host}:{_dead_pid()}@1", now + timedelta(hours=1), now)  # died: free at once
    assert not lease_is_dead(worker_identity(), now - timedelta(hours=1), now)  # alive: kept though expired
    assert lease_is_dead(f"{host}:{os.getpid()}@1", now + timedelta(hours=1), now)  # pid reused by another process
    assert not lease_is_dead("elsewhere:1@1", now + timedelta(seconds=30), now)
    assert lease_is_dead("elsewhere:1@1", now - timedelta(seconds=1), now)

    ledger.create_run("R2", source="/src", manifest_path="/m.csv", manifest_sha256="0" * 64, options={})
    ledger.add_units("R2", [unit(1, key="a" * 64)])
    (u,) = ledger.units("R2")
    ghost = f"{host}:{_dead_pid()}@1"
    assert ledger.claim(u.id, ghost, 600) is not None
    assert ledger.mark_storing(u.id, ghost, "A.t.U", "t", None, 600)
    taken = ledger.claim(u.id, worker_identity(), 60)  # the holder died while storing
    assert taken is not None and taken.state == UnitState.STORING and taken.record_uri == "A.t.U"
    assert ledger.unit(u.id).attempts == 2


def test_page_ranges():
    assert page_ranges([0, 1, 2, 4, 6, 7]) == "p1-3,5,7-8"
    assert page_ranges([3]) == "p4"
    assert page_ranges([]) == ""

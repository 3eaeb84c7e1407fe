"""The audit log is tamper-evident: `sohoa audit verify` (and AuditLog.verify) catch an edited,
deleted, reordered or rewritten entry, a forged checkpoint and a truncated tail; concurrent
writers never fork the chain."""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.test_api_support import init_home

ACTIONS = ["record.read", "record.download_pdf", "grant.create", "record.download_record", "grant.revoke",
           "client.create", "records.list", "record.read"]


@pytest.fixture
def audit_env(sohoa_home: Path):
    from api.app import audit_key_path
    from ingest.configs import repository_config
    from ingest.settings import load_settings
    from repository import Repository
    from repository.audit import AuditEntry, AuditLog, load_or_create_service_key

    init_home(sohoa_home)
    settings = load_settings()
    repo = Repository.open(repository_config(settings))
    log = AuditLog(repo.engine)
    key = load_or_create_service_key(audit_key_path(settings))
    for i, action in enumerate(ACTIONS):
        log.append([AuditEntry(actor=f"client:c_{i:016x}", actor_kind="agency", action=action, outcome="allowed",
                               record_uri=f"000.00.12.H29.giay_khai_sinh.01JF00000000000000000000{i:02d}",
                               owner_key=hashlib.sha256(b"owner").hexdigest(), agency_code="G01.01",
                               purpose="1.004227", basis="consent", details={"grant_id": i})])
        if i == 3:
            log.checkpoint(key)
    log.checkpoint(key)
    yield repo, log, key
    repo.close()


def sohoa_audit_verify() -> tuple[int, dict]:
    import cli
    result = CliRunner().invoke(cli.app, ["audit", "verify", "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def sql(repo, statement: str, **params) -> None:  # noqa: ANN001
    with repo.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_intact_log_verifies(audit_env):
    code, report = sohoa_audit_verify()
    assert code == 0 and report["ok"] and report["entries"] == len(ACTIONS)
    assert report["checkpoints"] == 2 and report["uncovered"] == 0


def test_edited_entry(audit_env):
    repo, _, _ = audit_env
    sql(repo, "UPDATE audit_events SET agency_code = 'G99' WHERE seq = 3")
    code, report = sohoa_audit_verify()
    assert code == 1
    assert "entry 3: content does not match its hash (edited)" in report["problems"]


def test_edited_details(audit_env):
    repo, _, _ = audit_env
    sql(repo, "UPDATE audit_events SET details = :d WHERE seq = 6", d='{"grant_id":99}')
    code, report = sohoa_audit_verify()
    assert code == 1 and any(p.startswith("entry 6") for p in report["problems"])


def test_deleted_entry(audit_env):
    repo, _, _ = audit_env
    sql(repo, "DELETE FROM audit_events WHERE seq = 5")
    code, report = sohoa_audit_verify()
    assert code == 1
    assert "entries 5..5 are missing (deleted)" in report["problems"]
    assert "entry 6: does not link to the previous entry (deleted or reordered)" in report["problems"]


def test_deleted_first_entry(audit_env):
    repo, _, _ = audit_env
    sql(repo, "DELETE FROM audit_events WHERE seq = 1")
    code, report = sohoa_audit_verify()
    assert code == 1 and "entries 1..1 are missing (deleted)" in report["problems"]


def test_reordered_entries(audit_env):
    """Swap the contents of entries 2 and 3 (each keeps its own hash and link)."""
    repo, _, _ = audit_env
    cols = "at, actor, actor_kind, action, outcome, record_uri, record_version, owner_key, agency_code, purpose, basis, details, prev_hash, hash"
    with repo.engine.begin() as conn:
        rows = {r.seq: r for r in conn.execute(sa.text(f"SELECT seq, {cols} FROM audit_events WHERE seq IN (2, 3)"))}
        for seq, other in ((2, 3), (3, 2)):
            values = {c: getattr(rows[other], c) for c in cols.split(", ")}
            conn.execute(sa.text(f"UPDATE audit_events SET {', '.join(f'{c} = :{c}' for c in values)} WHERE seq = :seq"),
                         {**values, "seq": seq})
    code, report = sohoa_audit_verify()
    assert code == 1
    assert any("entry 2" in p for p in report["problems"]) and any("entry 3" in p for p in report["problems"])


def test_rewritten_chain_is_caught_by_checkpoint(audit_env):
    """An attacker edits entry 2 and re-computes every later hash and link: the chain is
    self-consistent again, but no longer matches the signed checkpoints."""
    from repository.audit import AuditEvent, _fields_of, entry_hash  # noqa: PLC2701 (the hash rule itself)

    repo, log, key = audit_env
    from sqlalchemy.orm import Session
    with Session(repo.engine) as s, s.begin():
        events = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        events[1].action = "record.read"
        events[1].agency_code = "G99"
        prev = events[0].hash
        for e in events[1:]:
            e.prev_hash = prev
            e.hash = entry_hash(e.seq, e.at, _fields_of(e), e.details, prev)
            prev = e.hash
    report = log.verify([key.public_key()])
    assert not any(p.startswith("entry") for p in report.problems)  # the chain alone looks fine
    assert "checkpoint 4: the log differs from what was signed (rewritten)" in report.problems
    code, cli_report = sohoa_audit_verify()
    assert code == 1 and cli_report["problems"] == report.problems


def test_forged_checkpoint_and_truncated_tail(audit_env):
    repo, log, key = audit_env
    sql(repo, "DELETE FROM audit_events WHERE seq > 6")
    report = log.verify([key.public_key()])
    assert f"checkpoint {len(ACTIONS)}: the signed entry is missing (log truncated)" in report.problems
    sql(repo, "UPDATE audit_checkpoints SET hash = :h WHERE seq = 4", h="0" * 64)
    report = log.verify([key.public_key()])
    assert "checkpoint 4: signature is not valid (checkpoint edited)" in report.problems


def test_concurrent_writers_keep_one_chain(audit_env):
    from repository.audit import AuditEntry, AuditLog, AuditWriter

    repo, log, key = audit_env
    writers = [AuditWriter(AuditLog(repo.engine), key, checkpoint_seconds=0.05) for _ in range(2)]
    errors: list[BaseException] = []

    def work(w: AuditWriter, n: int) -> None:
        try:
            for i in range(n):
                w.record(AuditEntry(actor=f"client:t{n}", actor_kind="agency", action="record.read",
                                    details={"i": i}))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(writers[i % 2], 25)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert not errors
    report = log.verify([key.public_key()])
    assert report.ok, report.problems
    assert report.entries == len(ACTIONS) + 150 and report.uncovered == 0


def test_async_waiters_get_their_own_sequence_numbers_from_shared_batches(audit_env):
    """record_async (the API's path): callers on two event loops and a thread share the writer's
    batches; each gets the sequence number of its own entry, once it is committed."""
    import asyncio

    from repository.audit import AuditEntry, AuditLog, AuditWriter

    repo, log, key = audit_env
    writer = AuditWriter(AuditLog(repo.engine), key, checkpoint_seconds=0.05)

    def entry(tag: str, i: int) -> AuditEntry:
        return AuditEntry(actor=f"client:{tag}", actor_kind="agency", action="record.read", details={"i": i})

    async def burst(tag: str) -> list[int]:
        return list(await asyncio.gather(*(writer.record_async(entry(tag, i)) for i in range(40))))

    results: dict[str, list[int]] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, asyncio.run(burst(t)))) for t in "ab"]
    threads.append(threading.Thread(target=lambda: results.__setitem__("s", [writer.record(entry("s", i))
                                                                              for i in range(10)])))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    seqs = sorted(s for v in results.values() for s in v)
    assert seqs == list(range(len(ACTIONS) + 1, len(ACTIONS) + 91))
    with repo.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT seq, actor || ':' || details FROM audit_events")).all())
    for tag, got in results.items():
        assert [json.loads(stored[s].split(":", 2)[2])["i"] for s in got] == list(range(len(got)))
        assert {stored[s].split(":")[1] for s in got} == {tag}
    assert log.verify([key.public_key()]).ok


def test_async_waiters_hear_a_failed_or_stuck_commit(audit_env, monkeypatch):
    import asyncio

    from repository import StorageUnavailable
    from repository.audit import AuditEntry, AuditLog, AuditWriter

    repo, _, key = audit_env
    log = AuditLog(repo.engine)
    def broken(entries):  # noqa: ANN001, ANN202
        raise sa.exc.OperationalError("INSERT", {}, Exception("database went away"))

    def stuck(entries):  # noqa: ANN001, ANN202
        stop.wait(5)
        return list(range(1, len(entries) + 1))

    stop = threading.Event()
    monkeypatch.setattr(log, "append", broken)
    writer = AuditWriter(log, key, timeout=0.3)
    item = AuditEntry(actor="client:x", actor_kind="agency", action="record.read")

    async def two() -> list:  # noqa: ANN202
        return await asyncio.gather(writer.record_async(item), writer.record_async(item), return_exceptions=True)

    failed = asyncio.run(two())
    assert all(isinstance(e, StorageUnavailable) and "OperationalError" in str(e) for e in failed), failed
    monkeypatch.setattr(log, "append", stuck)  # the commit hangs: the caller gives up after its timeout
    with pytest.raises(StorageUnavailable, match="did not commit in time"):
        asyncio.run(writer.record_async(item))
    stop.set()  # the late outcome finds its loop closed: dropped, the writer carries on
    assert writer.record(item) == 1  # (the stand-in append numbers each batch from 1)
    stop.clear()
    gave_up, waiting = writer.submit(item), writer.submit(item)
    assert gave_up.cancel()  # a caller that stops waiting (it was a crash of the writer thread,
    stop.set()               # stranding the rest of its batch and whatever was queued next)
    assert waiting.result(timeout=5) in (1, 2) and writer.record(item) == 1
    writer.close()


def test_checkpoint_command(audit_env):
    import cli
    repo, log, key = audit_env
    from repository.audit import AuditEntry
    log.append([AuditEntry(actor="user:lan", actor_kind="officer", action="auth.login")])
    assert log.verify([key.public_key()]).uncovered == 1
    result = CliRunner().invoke(cli.app, ["audit", "checkpoint"])
    assert result.exit_code == 0 and f"entry {len(ACTIONS) + 1}" in result.stdout
    assert log.verify([key.public_key()]).uncovered == 0

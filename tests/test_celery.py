"""The Celery engine for real: a Redis broker, two `sohoa worker` processes, one of whose worker
processes is killed -9 mid-page. Same task function and idempotency as the local engine."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_bulk import (assert_exactly_once, home_env, ledger_rows, simple_source, start,
                              stored_manifests_local, wait_for)

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")


def start_worker(name: str, env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([SOHOA, "worker", "--concurrency", "1", "--name", f"{name}@%h"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.redis
def test_celery_engine_two_workers_one_killed_mid_page(tmp_path, redis_url):
    broker = redis_url.rsplit("/", 1)[0] + "/5"  # a database of its own on the shared server
    env = home_env(tmp_path, SOHOA_BROKER_URL=broker)
    src, manifest = simple_source(tmp_path, 4)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker("w1", env, logs[0]), start_worker("w2", env, logs[1])]
    try:
        # Both must be consuming before the units are sent, or on a busy machine the first one up
        # takes every unit and the test proves nothing about sharing the work.
        wait_for(lambda: all(log.exists() and " ready." in log.read_text(errors="replace") for log in logs),
                 what="both workers ready")
        run = start("bulk", "run", str(src), "--manifest", str(manifest), "--engine", "celery", "--plain", env=env)
        try:
            victim = wait_for(lambda: next((r for r in ledger_rows(env) if r["state"] == "running"
                                            and r["lease_owner"]), None), what="a running unit", proc=run)
            pid = int(victim["lease_owner"].rsplit(":", 1)[1].split("@")[0])
            assert pid not in (w.pid for w in workers)  # a pool process, not the worker itself
            os.kill(pid, signal.SIGKILL)
            _, stderr = run.communicate(timeout=600)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
        assert run.returncode == 0, stderr[-3000:]
    finally:
        for w in workers:
            stop(w)
    rows = ledger_rows(env)
    assert [r["state"] for r in rows] == ["stored"] * 4
    assert next(r for r in rows if r["seq"] == victim["seq"])["attempts"] >= 2
    assert_exactly_once(env, rows, stored_manifests_local(env))
    texts = [log.read_text(errors="replace") for log in logs]
    # Both took units; which of them finished the requeued one is a race (the killed worker's new
    # pool process may still be loading when the other has done the rest).
    assert all(re.search(r"sohoa\.bulk\.process_unit\[[^]]+\] received", t) for t in texts), "both workers took units"
    assert any("succeeded" in t for t in texts)

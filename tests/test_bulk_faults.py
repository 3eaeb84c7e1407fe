"""Bulk runs through outages: the S3 server (Ceph RGW) and the database (PostgreSQL) restart
mid-run; the run rides them out and every page is stored exactly once.

Own servers (not the shared session fixtures: stopping those would break parallel tests).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.test_bulk import (assert_exactly_once, home_env, ledger_rows, simple_source, start, wait_for)

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


@pytest.fixture
def own_ceph():
    if not shutil.which("radosgw"):
        pytest.skip("radosgw is not installed")
    d = Path("/tmp") / f"sbc-{uuid.uuid4().hex[:8]}"  # short: unix socket paths live under it
    env = dict(os.environ, D=str(d), RGW_PORT=str(free_port()), MON_PORT=str(free_port()), WITH_MGR="0")
    out = subprocess.run(["bash", str(SCRIPTS / "ceph-up.sh")], env=env, capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        pytest.fail(f"ceph-up.sh failed: {out.stderr[-2000:]}")
    endpoint, ak, sk = out.stdout.strip().splitlines()[-1].split()
    yield {"endpoint": endpoint, "access_key": ak, "secret_key": sk, "dir": d, "port": int(env["RGW_PORT"])}
    subprocess.run(["bash", str(SCRIPTS / "ceph-down.sh")], env=env, timeout=60)


@pytest.fixture
def own_pg():
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed")
    pgbin = bins[-1].parent
    d = Path("/tmp") / f"sbp-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PGDATA=str(d), PGPORT=str(free_port()), PGBIN=str(pgbin))
    out = subprocess.run(["bash", str(SCRIPTS / "pg-up.sh")], env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"pg-up.sh failed: {out.stderr[-2000:]}")
    ctl = [str(pgbin / "pg_ctl"), "-D", str(d)]
    if os.geteuid() == 0:
        ctl = ["runuser", "-u", "postgres", "--", *ctl]
    yield {"url": out.stdout.strip().splitlines()[-1], "ctl": ctl, "log": str(d / "server.log")}
    subprocess.run([*ctl, "stop", "-m", "immediate"], capture_output=True, timeout=60)
    shutil.rmtree(d, ignore_errors=True)


def stop_rgw(ceph: dict) -> None:
    pidfile = ceph["dir"] / "run" / "ceph-client.rgw.a.pid"
    os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    wait_for(lambda: not port_open(ceph["port"]), timeout=30, what="RGW down")


def start_rgw(ceph: dict) -> None:
    env = dict(os.environ, CEPH_CONF=str(ceph["dir"] / "ceph.conf"))
    subprocess.run(["radosgw", "-n", "client.rgw.a"], env=env, check=True, timeout=60)
    wait_for(lambda: port_open(ceph["port"]), timeout=60, what="RGW up")


def s3_manifests(ceph: dict, bucket: str) -> Counter:
    from minio import Minio
    client = Minio(ceph["endpoint"], access_key=ceph["access_key"], secret_key=ceph["secret_key"], secure=False)
    keys = [o.object_name for o in client.list_objects(bucket, prefix="records/", recursive=True)]
    return Counter(key.split("/")[1] for key in keys if key.endswith(".json"))


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.postgres
def test_object_store_and_database_restart_mid_run(tmp_path, own_ceph, own_pg):
    bucket = "bulk-faults"
    env = home_env(tmp_path, SOHOA_STORE="s3", SOHOA_S3_ENDPOINT=own_ceph["endpoint"],
                   SOHOA_S3_ACCESS_KEY=own_ceph["access_key"], SOHOA_S3_SECRET_KEY=own_ceph["secret_key"],
                   SOHOA_S3_BUCKET=bucket, SOHOA_DB_URL=own_pg["url"])
    src, manifest = simple_source(tmp_path, 4)
    proc = start("bulk", "run", str(src), "--manifest", str(manifest), "--workers", "1", "--plain",
                 "--storage-retry", "180", env=env)

    def stored() -> int:
        return sum(r["state"] == "stored" for r in ledger_rows(env))

    try:
        wait_for(lambda: stored() >= 1, what="first stored unit", proc=proc)
        # the object store goes away while a unit is being stored, and comes back
        stop_rgw(own_ceph)
        wait_for(lambda: any(r["state"] == "storing" for r in ledger_rows(env)), what="a unit storing", proc=proc)
        time.sleep(4)
        start_rgw(own_ceph)
        wait_for(lambda: stored() >= 2, what="a unit stored after the outage", proc=proc)
        # the database restarts
        subprocess.run([*own_pg["ctl"], "restart", "-m", "fast", "-w", "-l", own_pg["log"]], check=True,
                       capture_output=True, timeout=120)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-3000:]
    assert "storage unavailable" in stderr  # the outage was seen and waited out, not skipped
    rows = ledger_rows(env)
    assert [r["state"] for r in rows] == ["stored"] * 4
    assert_exactly_once(env, rows, s3_manifests(own_ceph, bucket))

"""Shared fixtures: real servers (Ceph RGW, PostgreSQL, Redis) started by the project's scripts.

A server the machine cannot run is a skip on a developer's machine but a failure in CI (CI=true),
so a missing install step can never turn into a silently green run.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
# The steering repo's shared/ (real smoke scans, tessdata_best) stands beside the clone.
SHARED = Path(os.environ.get("SOHOA_SHARED_DIR") or ROOT.parent / "shared")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(message: str) -> None:
    """Skip the test, or fail it in CI (where everything must be there)."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _missing(tool: str) -> None:
    _unavailable(f"{tool} is not installed (run: bash scripts/setup.sh --with-services)")


def require_shared(path: Path) -> Path:
    """``path`` under the shared data (real scans with ground truth), or skip/fail saying where it
    is looked for."""
    if not path.exists():
        _unavailable(f"{path} not found: the steering repo's shared/ stands beside this clone "
                     "(or set SOHOA_SHARED_DIR)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_offset() -> int:
    """Distinct port/dir ranges per pytest-xdist worker."""
    wid = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server: Ceph RADOS Gateway (memstore OSD) on loopback, or SOHOA_TEST_S3=host:port,ak,sk."""
    given = os.environ.get("SOHOA_TEST_S3")
    if given:
        endpoint, ak, sk = given.split(",")
        yield {"endpoint": endpoint, "access_key": ak, "secret_key": sk, "dir": None}
        return
    if not shutil.which("radosgw"):
        _missing("radosgw (Ceph RADOS Gateway)")
    d = tmp_path_factory.mktemp("ceph")
    env = dict(os.environ, D=str(d), RGW_PORT=str(free_port()), MON_PORT=str(free_port()))
    out = subprocess.run(["bash", str(SCRIPTS / "ceph-up.sh")], env=env, capture_output=True,
                         text=True, timeout=180)
    if out.returncode != 0:
        pytest.fail(f"ceph-up.sh failed: {out.stderr[-2000:]}")
    endpoint, ak, sk = out.stdout.strip().splitlines()[-1].split()
    info = {"endpoint": endpoint, "access_key": ak, "secret_key": sk, "dir": str(d),
            "env": env}
    yield info
    subprocess.run(["bash", str(SCRIPTS / "ceph-down.sh")], env=env, timeout=60)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    """A real PostgreSQL server on loopback, or SOHOA_TEST_PG=url."""
    given = os.environ.get("SOHOA_TEST_PG")
    if given:
        yield given
        return
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        _missing("PostgreSQL server")
    pgbin = bins[-1].parent
    d = Path("/tmp") / f"sohoa-pg-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PGDATA=str(d), PGPORT=str(free_port()), PGBIN=str(pgbin))
    out = subprocess.run(["bash", str(SCRIPTS / "pg-up.sh")], env=env, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"pg-up.sh failed: {out.stderr[-2000:]}")
    yield out.stdout.strip().splitlines()[-1]
    stop = [str(pgbin / "pg_ctl"), "-D", str(d), "stop", "-m", "immediate"]
    if os.geteuid() == 0:
        stop = ["runuser", "-u", "postgres", "--", *stop]
    subprocess.run(stop, capture_output=True, timeout=60)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis server on loopback, or SOHOA_TEST_REDIS=url."""
    given = os.environ.get("SOHOA_TEST_REDIS")
    if given:
        yield given
        return
    if not shutil.which("redis-server"):
        _missing("redis-server")
    d = tmp_path_factory.mktemp("redis")
    port = free_port()
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(d / "redis.pid"),
                    "--dir", str(d)], check=True, timeout=30)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    pid = (d / "redis.pid").read_text().strip() if (d / "redis.pid").exists() else ""
    if pid:
        subprocess.run(["kill", pid], timeout=10)


@pytest.fixture
def sohoa_home(tmp_path, monkeypatch) -> Path:
    """An isolated SOHOA_HOME for one test."""
    home = tmp_path / "sohoa-home"
    monkeypatch.setenv("SOHOA_HOME", str(home))
    return home


# ---- SoftHSM2 ----------------------------------------------------------------------------------
def use_softhsm_conf(conf: Path | None, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Point SoftHSM2 at a test's own token directory (``None``: back to the default).

    SoftHSM2 reads ``SOFTHSM2_CONF`` once, at C_Initialize, and python-pkcs11 keeps one library
    object per process, so with pytest-xdist a second test in the same worker process would still
    see the first test's tokens: every test that brings its own tokens re-initializes it."""
    import pkcs11

    from signing.pki import SOFTHSM_MODULE
    if monkeypatch is not None:
        (monkeypatch.setenv("SOFTHSM2_CONF", str(conf)) if conf is not None
         else monkeypatch.delenv("SOFTHSM2_CONF", raising=False))
    elif conf is not None:
        os.environ["SOFTHSM2_CONF"] = str(conf)
    else:
        os.environ.pop("SOFTHSM2_CONF", None)
    pkcs11.lib(SOFTHSM_MODULE).reinitialize()


# ---- poppler's pdfsig, the independent signature check ---------------------------------------
def nss_db(directory: Path, root_pem: Path) -> str:
    """An NSS database that trusts exactly ``root_pem`` (for pdfsig)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{directory}", "-n", "sohoa-test-root",
                    "-t", "CT,C,C", "-i", str(root_pem)], check=True)
    return f"sql:{directory}"


def pdfsig(pdf: Path, nss: str, attempts: int = 3) -> str:
    """pdfsig's report (it exits 0 even for invalid signatures: callers check the text).

    NSS asks the certificates' OCSP responder (the dev PKI's, in-process in the tests); on a loaded
    machine that request can time out, which poppler reports as "Unknown issue with Certificate".
    Only that outcome is retried; every other answer is returned as is.
    """
    for _ in range(attempts):
        out = subprocess.run(["pdfsig", "-nssdir", nss, str(pdf)], capture_output=True, text=True,
                             timeout=120).stdout
        if "Unknown issue with Certificate" not in out:
            return out
        time.sleep(1)
    return out

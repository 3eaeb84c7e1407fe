"""Outages of the object store (Ceph RGW) and of the database (PostgreSQL) during writes.

A small TCP relay sits between the repository and the real server; stopping it is a genuine
network outage (connection refused / reset), not a mocked exception.
"""
from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid

import pytest

from repository import RecordNotFound, Repository, RepositoryConfig, StorageUnavailable
from tests.test_repository_core import SECRET, make_request


class TcpRelay:
    """Forward 127.0.0.1:<port> to a target; ``stop()`` refuses and cuts every connection;
    ``delay`` (seconds) holds back every chunk the server sends: a server that is up but slow."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.delay = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._listener is not None:
                try:  # wakes the thread blocked in accept(); close() alone would not
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped while this connection was being set up
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b, slow in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, slow), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(65536):
                if slow and self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def s3_relay(s3_server):
    relay = TcpRelay(s3_server["endpoint"])
    relay.start()
    yield relay
    relay.stop()


def s3_config(s3_server, endpoint: str, tmp_path, **kw) -> RepositoryConfig:
    return RepositoryConfig(
        db_url=f"sqlite:///{tmp_path / 'index.db'}", store="s3", s3_endpoint=endpoint,
        s3_access_key=s3_server["access_key"], s3_secret_key=s3_server["secret_key"],
        s3_bucket=f"fault-{uuid.uuid4().hex[:12]}", owner_secret=SECRET, s3_connect_timeout=1.0, s3_retries=1, **kw,
    )


def stop_after_puts(repo: Repository, n: int, relay: TcpRelay) -> None:
    """Let ``n`` real object writes through, then cut the network."""
    real_put = repo.objects.put
    count = {"n": 0}
    lock = threading.Lock()

    def put(*args, **kwargs):
        result = real_put(*args, **kwargs)
        with lock:
            count["n"] += 1
            if count["n"] == n:
                relay.stop()
        return result

    repo.objects.put = put  # type: ignore[method-assign]


def stop_before_manifest(repo: Repository, relay: TcpRelay) -> None:
    """Cut the network just as the version manifest is about to be written (the blobs, written
    concurrently, may or may not have landed: both are mid-write states)."""
    real_put = repo.objects.put

    def put(key, *args, **kwargs):
        if key.startswith("records/"):
            relay.stop()
        return real_put(key, *args, **kwargs)

    repo.objects.put = put  # type: ignore[method-assign]


@pytest.mark.s3
def test_s3_outage_mid_write_then_retry_creates_no_duplicate(s3_server, s3_relay, tmp_path):
    repo = Repository.open(s3_config(s3_server, s3_relay.address, tmp_path))
    try:
        req = make_request(retention_years=1)
        stop_before_manifest(repo, s3_relay)
        with pytest.raises(StorageUnavailable):
            repo.store(req)
        assert repo.list_records() == []
        with pytest.raises(RecordNotFound):
            repo.get(req.uri)
        assert repo.check()["store"]["ok"] is False and repo.check()["db"]["ok"] is True
        s3_relay.start()
        repo.objects.put = type(repo.objects).put.__get__(repo.objects)  # type: ignore[method-assign]
        first = repo.store(req)
        assert first.version == 1
        assert repo.store(req) == first
        assert [v.version for v in repo.versions(req.uri)] == [1]
        assert len(list(repo.objects.iter_keys("records/"))) == 1
        assert repo.reconcile().ok
        assert repo.get(req.uri).pdf == req.pdf
    finally:
        repo.close()


@pytest.mark.s3
def test_s3_unreachable_at_open_fails_clearly(s3_server, tmp_path):
    relay = TcpRelay(s3_server["endpoint"])  # never started: the port is closed
    with pytest.raises(StorageUnavailable, match="S3"):
        Repository.open(s3_config(s3_server, relay.address, tmp_path))


@pytest.mark.s3
def test_slow_s3_times_out_clearly_then_retry_creates_no_duplicate(s3_server, s3_relay, tmp_path):
    """RGW up but answering after 3 s, the client waiting at most 1 s per attempt: the store fails
    within its bounded time with a clear timeout, no index row exists, and once the server is
    fast again the same request stores exactly one version (objects that the slow server
    finally wrote are simply reused)."""
    repo = Repository.open(s3_config(s3_server, s3_relay.address, tmp_path, s3_read_timeout=1.0))
    try:
        req = make_request(retention_years=1)
        s3_relay.delay = 3.0
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="timed out waiting for the answer"):
            repo.store(req)
        assert time.monotonic() - started < 15  # 2 attempts x 1 s, not the server's pace
        s3_relay.delay = 0.0
        assert repo.list_records() == []
        with pytest.raises(RecordNotFound):
            repo.get(req.uri)
        stored = repo.store(req)
        assert stored.version == 1 and [v.version for v in repo.versions(req.uri)] == [1]
        assert repo.store(req) == stored
        assert repo.get(req.uri).pdf == req.pdf
        assert len(list(repo.objects.iter_keys("records/"))) == 1
        assert repo.reconcile().ok
    finally:
        repo.close()


# -- SQLite: the database file locked by another process, the disk full -----------------------
def sqlite_repo(tmp_path, **kw) -> Repository:
    config = RepositoryConfig(db_url=f"sqlite:///{tmp_path / 'index.db'}", local_dir=tmp_path / "objects",
                              owner_secret=SECRET, **kw)
    return Repository.open(config)


def test_sqlite_locked_by_another_process_fails_clearly_then_retry(tmp_path):
    """Another program (a backup, a second desk process) holds the write lock of the index: the
    store waits the configured time, fails with StorageUnavailable, leaves no row, and the same
    request succeeds once the lock is gone."""
    import subprocess
    import sys

    repo = sqlite_repo(tmp_path, sqlite_busy_timeout=0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
         str(tmp_path / "index.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        req = make_request(retention_years=5)  # leftovers are locked: the retry must still succeed
        with pytest.raises(StorageUnavailable, match="database is locked"):
            repo.store(req)
        assert repo.list_records() == []  # readers are not blocked (WAL) and see nothing
        assert len(repo.reconcile().untracked) == 3  # the blobs and manifest, for the reconciler only
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        stored = repo.store(req)
        assert stored.version == 1 and [v.version for v in repo.versions(req.uri)] == [1]
        assert repo.reconcile().ok
    finally:
        if holder.poll() is None:
            holder.kill()
        repo.close()


def test_sqlite_disk_full_fails_clearly_then_retry(tmp_path):
    """SQLITE_FULL from the real engine (the database may not grow by one more page, as on a full
    disk) in the middle of the index write: StorageUnavailable, the transaction rolled back
    entirely, and the same request stored once after space is freed."""
    from sqlalchemy import event

    repo = sqlite_repo(tmp_path)
    try:
        repo.store(make_request())
        full = {"on": True}

        def cap_growth(dbapi_conn, _record) -> None:  # noqa: ANN001
            if full["on"]:
                pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
                dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(repo.engine, "connect", cap_growth)
        repo.engine.dispose()  # new connections get the cap
        req = make_request(doc_type="cccd", text_body="Nơi cư trú: phường Bến Nghé " * 2000)
        with pytest.raises(StorageUnavailable, match="full"):
            repo.store(req)
        assert len(repo.list_records()) == 1
        with pytest.raises(RecordNotFound):
            repo.get(req.uri)
        assert repo.search("ben nghe") == []
        full["on"] = False
        repo.engine.dispose()
        stored = repo.store(req)
        assert stored.version == 1 and [v.version for v in repo.versions(req.uri)] == [1]
        assert [h.result.uri for h in repo.search("ben nghe")] == [req.uri]
        assert repo.reconcile().ok
        check = sqlite3.connect(tmp_path / "index.db")
        try:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            check.close()
    finally:
        repo.close()


@pytest.fixture
def pg_relay(pg_url):
    hostport = pg_url.split("@", 1)[1].split("/", 1)[0]
    relay = TcpRelay(hostport)
    relay.start()
    yield relay
    relay.stop()


@pytest.mark.postgres
def test_database_outage_mid_write_then_retry(pg_url, pg_relay, tmp_path):
    from sqlalchemy import create_engine, text

    from repository.db import normalize_db_url

    name = f"fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_db_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    user, rest = pg_url.split("@", 1)
    url = f"{user}@{pg_relay.address}/{name}"
    repo = Repository.open(RepositoryConfig(db_url=url, local_dir=tmp_path / "objects", owner_secret=SECRET))
    try:
        req = make_request(retention_years=5)  # the leftovers are locked: the retry must still succeed
        stop_after_puts(repo, 3, pg_relay)  # both blobs and the manifest land, then the DB goes away
        with pytest.raises(StorageUnavailable, match="database"):
            repo.store(req)
        assert repo.check()["db"]["ok"] is False
        with pytest.raises(StorageUnavailable):
            repo.list_records()
        pg_relay.start()
        orphans = repo.reconcile()
        assert len(orphans.untracked) == 3 and not orphans.missing  # visible to the reconciler only
        assert repo.list_records() == []
        stored = repo.store(req)
        assert stored.version == 1 and [v.version for v in repo.versions(req.uri)] == [1]
        assert repo.reconcile().ok
        assert repo.get(req.uri).record_json == req.record_json
    finally:
        repo.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.postgres
def test_pooled_connections_killed_by_the_server_are_replaced_transparently(pg_url, tmp_path):
    """What a PostgreSQL restart or failover does to pooled connections: the next read and the
    next store each get a fresh connection instead of failing (the autocommit pool has no
    pre-ping; a dead connection is detected and the single statement run once more)."""
    from sqlalchemy import create_engine, text

    from repository.db import normalize_db_url

    name = f"fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_db_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    repo = Repository.open(RepositoryConfig(db_url=url, local_dir=tmp_path / "objects", owner_secret=SECRET))
    try:
        first = repo.store(make_request())
        assert [r.uri for r in repo.list_records()] == [first.uri]

        def kill_backends() -> int:
            with admin.connect() as conn:
                return len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"), {"db": name}).all())

        assert kill_backends() >= 1
        assert repo.get(first.uri).result.sha256 == first.sha256
        assert kill_backends() >= 1
        second = repo.store(make_request(doc_type="cccd"))
        assert {r.uri for r in repo.list_records()} == {first.uri, second.uri}
        assert repo.reconcile().ok
    finally:
        repo.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.postgres
def test_database_unreachable_at_open_fails_clearly(tmp_path):
    relay = TcpRelay("127.0.0.1:1")  # never started
    config = RepositoryConfig(db_url=f"postgresql://postgres@{relay.address}/app", local_dir=tmp_path / "o", owner_secret=SECRET)
    with pytest.raises(StorageUnavailable, match="database"):
        Repository.open(config)


def test_local_writes_leave_no_temporary_files(tmp_path):
    config = RepositoryConfig(db_url=f"sqlite:///{tmp_path / 'i.db'}", local_dir=tmp_path / "objects", owner_secret=SECRET)
    with Repository.open(config) as repo:
        for _ in range(3):
            repo.store(make_request())
    leftovers = [p for p in (tmp_path / "objects").rglob(".tmp-*")]
    assert leftovers == []


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="owner_secret"):
        Repository.open(RepositoryConfig(db_url="sqlite://", local_dir=tmp_path))
    with pytest.raises(ValueError, match="s3_endpoint"):
        Repository.open(RepositoryConfig(db_url="sqlite://", store="s3", owner_secret=SECRET))
    with pytest.raises(ValueError, match="sqlite_busy_timeout"):
        Repository.open(RepositoryConfig(db_url="sqlite://", local_dir=tmp_path, owner_secret=SECRET, sqlite_busy_timeout=-1))
    with pytest.raises(ValueError, match="lock_mode"):
        Repository.open(RepositoryConfig(db_url="sqlite://", local_dir=tmp_path, owner_secret=SECRET, lock_mode="STRICT"))

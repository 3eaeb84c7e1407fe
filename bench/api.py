"""API benchmark: authorized fetches of a signed record through `sohoa serve`, next to a direct
presigned S3 GET of the same object, at 1, 16 and 64 concurrent clients.

Setup (real servers, started with the project's scripts unless given): PostgreSQL index, Ceph
RADOS Gateway objects, a real data message made by ``Pipeline.digitize`` from
``samples/giay_khai_sinh.jpg``, and an agency of ANOTHER authority reading it under a
legal-basis grant (the full authorization path: API-key lookup, record lookup, grant lookup,
audit entry committed before the response, object GET from RGW, SHA-256 check).

For each concurrency level, two closed-loop runs of ``--seconds`` each (after a warm-up):
  api    GET /v1/records/{uri}/pdf with the agency's key and Sohoa-Purpose
  s3     GET of a presigned URL of the same object, straight from RGW
Latency p50/p99 and requests/s are measured by the client (httpx, asyncio, one process). At the
end ``sohoa audit verify`` checks that every fetch left an intact, signed audit entry.

    .venv/bin/python -m bench.api --out docs/benchmarks-api.md
    .venv/bin/python -m bench.api --s3 127.0.0.1:7480,AK,SK --pg postgresql://postgres@127.0.0.1:5433/sohoa
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text


ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
SAMPLE = ROOT / "samples" / "giay_khai_sinh.jpg"
OWNER = "079203012345"  # synthetic, structurally valid personal ID
READER_AGENCY = "G01.01"
PURPOSE = "1.004227"


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def servers(s3: str | None, pg: str | None) -> Iterator[tuple[dict, str]]:
    """The given servers, or throwaway ones started like the tests do (scripts/ceph-up.sh, pg-up.sh)."""
    stops: list[Callable[[], object]] = []
    try:
        if s3 is None:
            env = dict(os.environ, D=tempfile.mkdtemp(prefix="bench-api-ceph-"), RGW_PORT=str(free_port()),
                       MON_PORT=str(free_port()))
            out = subprocess.run(["bash", str(ROOT / "scripts/ceph-up.sh")], env=env, capture_output=True,
                                 text=True, timeout=300)
            if out.returncode != 0:
                raise SystemExit(f"ceph-up.sh failed: {out.stderr[-2000:]}")
            stops.append(lambda: subprocess.run(["bash", str(ROOT / "scripts/ceph-down.sh")], env=env, timeout=120))
            s3 = ",".join(out.stdout.strip().splitlines()[-1].split())
        if pg is None:
            data = Path("/tmp") / f"bench-api-pg-{uuid.uuid4().hex[:8]}"
            pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
            env = dict(os.environ, PGDATA=str(data), PGPORT=str(free_port()), PGBIN=str(pgbin))
            out = subprocess.run(["bash", str(ROOT / "scripts/pg-up.sh")], env=env, capture_output=True, text=True,
                                 timeout=300)
            if out.returncode != 0:
                raise SystemExit(f"pg-up.sh failed: {out.stderr[-2000:]}")
            pg = out.stdout.strip().splitlines()[-1]
            stop = ["runuser", "-u", "postgres", "--", str(pgbin / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"]
            stops.append(lambda: (subprocess.run(stop, capture_output=True, timeout=120),
                                  shutil.rmtree(data, ignore_errors=True)))
        endpoint, ak, sk = s3.split(",")
        yield {"endpoint": endpoint, "access_key": ak, "secret_key": sk}, pg
    finally:
        for stop_fn in reversed(stops):
            stop_fn()


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    name = f"bench_api_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@dataclass
class RunResult:
    target: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float | None = None  # CPU time of the `sohoa serve` processes per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


async def closed_loop(url: str, headers: dict[str, str], clients: int, seconds: float, warmup: float,
                      expected_size: int) -> tuple[list[float], int, float]:
    """``clients`` workers each sending the next request when the last one is answered."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers) as client:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                try:
                    r = await client.get(url)
                    ok = r.status_code == 200 and len(r.content) == expected_size
                except httpx.HTTPError:
                    ok = False
                t1 = time.perf_counter()
                if t0 >= measure_from and t1 <= stop_at:
                    if ok:
                        latencies.append(t1 - t0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, errors, seconds


def run(target: str, url: str, headers: dict[str, str], clients: int, seconds: float, size: int) -> RunResult:
    latencies, errors, elapsed = asyncio.run(closed_loop(url, headers, clients, seconds, min(2.0, seconds / 4), size))
    latencies.sort()
    return RunResult(target, clients, len(latencies), errors, elapsed, percentile(latencies, 0.5) * 1000,
                     percentile(latencies, 0.99) * 1000)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """user+system CPU seconds of a process and all its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(pid, 0.0) for pid in tree)


def sohoa(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SOHOA, *args], env=env, capture_output=True, text=True, check=True, timeout=600)


def prepare(env: dict) -> tuple[str, str, int, str, str]:
    """Digitize the sample into a signed record; make the reading agency's key and grant."""
    os.environ.update(env)
    from ingest.pipeline import DocumentInput, InputFile, Pipeline
    from ingest.settings import load_settings
    from repository.access import AccessStore

    pipeline = Pipeline(load_settings())
    try:
        result = pipeline.digitize(DocumentInput(files=[InputFile.from_path(SAMPLE)], owner_id=OWNER))
        stored = result.stored
        access = AccessStore(pipeline.repository.engine)
        key = access.create_client("Bộ Công an (bench)", "agency", agency_code=READER_AGENCY,
                                   rate_per_second=1e6, burst=1_000_000).secret
        now = datetime.now(timezone.utc)
        access.create_grant(owner_key=stored.owner_key, agency_code=READER_AGENCY, purpose=PURPOSE,
                            basis="legal_basis", legal_reference="Luật Căn cước 2023, Điều 9",
                            valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1),
                            created_by="bench")
    finally:
        pipeline.close()
    return stored.uri, stored.object_key, stored.size, stored.sha256, key


def start_server(env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([SOHOA, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sohoa serve exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("sohoa serve did not become ready")


def presigned(env: dict, object_key: str) -> str:
    from minio import Minio
    client = Minio(env["SOHOA_S3_ENDPOINT"], access_key=env["SOHOA_S3_ACCESS_KEY"],
                   secret_key=env["SOHOA_S3_SECRET_KEY"], secure=False, region="us-east-1")
    return client.presigned_get_object(env["SOHOA_S3_BUCKET"], object_key, expires=timedelta(hours=2))


def report(results: list[RunResult], meta: dict) -> str:
    lines = ["| clients | target | requests/s | p50 ms | p99 ms | errors | p99 api / p99 s3 | server CPU ms/req |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    by = {(r.target, r.clients): r for r in results}
    for r in results:
        ratio = ""
        if r.target == "api" and ("s3", r.clients) in by:
            ratio = f"{r.p99_ms / by[('s3', r.clients)].p99_ms:.2f}"
        cpu = f"{r.server_cpu_ms:.2f}" if r.server_cpu_ms is not None else ""
        lines.append(f"| {r.clients} | {r.target} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {ratio} | {cpu} |")
    lines.append("")
    lines.append("```json")
    lines.append(json.dumps(meta, indent=2, ensure_ascii=False))
    lines.append("```")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", help="host:port,access_key,secret_key (default: start scripts/ceph-up.sh)")
    parser.add_argument("--pg", help="PostgreSQL URL we may create databases from (default: start one)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2 = cores)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels")
    parser.add_argument("--out", type=Path, help="also write the results table (markdown) here")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    with servers(args.s3, args.pg) as (s3, pg), fresh_database(pg) as db_url:
        home = Path(tempfile.mkdtemp(prefix="bench-api-"))
        env = dict(os.environ, SOHOA_HOME=str(home / "home"), SOHOA_DB_URL=db_url, SOHOA_STORE="s3",
                   SOHOA_S3_ENDPOINT=s3["endpoint"], SOHOA_S3_ACCESS_KEY=s3["access_key"],
                   SOHOA_S3_SECRET_KEY=s3["secret_key"], SOHOA_S3_BUCKET=f"bench-api-{uuid.uuid4().hex[:8]}",
                   OMP_THREAD_LIMIT="1", SOHOA_LOG_LEVEL="WARNING")
        proc = None
        try:
            sohoa(env, "init")
            uri, object_key, size, sha256, key = prepare(env)
            proc, base = start_server(env, args.workers)
            api_url = f"{base}/v1/records/{uri}/pdf"
            api_headers = {"Authorization": f"Bearer {key}", "Sohoa-Purpose": PURPOSE}
            check = httpx.get(api_url, headers=api_headers, timeout=30)
            assert check.status_code == 200 and check.headers["etag"] == f'"{sha256}"', check.text[:300]
            s3_url = presigned(env, object_key)
            assert httpx.get(s3_url, timeout=30).content == check.content
            load_before = os.getloadavg()
            results: list[RunResult] = []
            for clients in levels:
                for target, url, headers in (("s3", s3_url, {}), ("api", api_url, api_headers)):
                    cpu0 = process_tree_cpu_seconds(proc.pid)
                    r = run(target, url, headers, clients, args.seconds, size)
                    if target == "api" and r.requests:
                        r.server_cpu_ms = (process_tree_cpu_seconds(proc.pid) - cpu0) * 1000 / r.requests
                    results.append(r)
                    print(f"{clients:>3} clients {target:>3}: {r.rps:7.1f} req/s  p50 {r.p50_ms:6.1f} ms  "
                          f"p99 {r.p99_ms:6.1f} ms  errors {r.errors}  server CPU/req "
                          f"{r.server_cpu_ms or 0:.2f} ms", flush=True)
            load_after = os.getloadavg()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
        audit = json.loads(subprocess.run([SOHOA, "audit", "verify", "--json"], env=env, capture_output=True,
                                          text=True, timeout=600).stdout)
        shutil.rmtree(home, ignore_errors=True)

    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "server_workers": args.workers, "seconds_per_run": args.seconds,
            "pdf_bytes": size, "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "audit_verify": {"ok": audit["ok"], "entries": audit["entries"], "checkpoints": audit["checkpoints"]}}
    text = report(results, meta)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()

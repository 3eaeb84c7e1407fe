"""API benchmark: authorized fetches of signed records through `sohoa serve`, next to a direct
presigned S3 GET of the same objects, at 1, 16 and 64 concurrent clients.

Setup (real servers, started with the project's scripts unless given): PostgreSQL index, Ceph
RADOS Gateway objects, and ``--records`` DISTINCT signed data messages (default 1,000), each of
its own owner, each readable by an agency of ANOTHER authority under a legal-basis grant: the full
authorization path (API key, record + grant lookup, audit entry committed before the answer).
The first record is a real data message made by ``Pipeline.digitize`` from
``samples/giay_khai_sinh.jpg``; the others are that message signed once more (an extra PAdES
signature: distinct bytes, ~350 KB each). The signed PDFs are made once and kept in
``var/bench-api-corpus/`` for later runs. Every request picks a record at random, so no cache
anywhere (RGW, PostgreSQL, the API) serves one hot object; the API itself has no data cache.

For each concurrency level, three closed-loop runs of ``--requests`` fetches each (after a
warm-up), all driven by the same load generator, curl's parallel mode (C, event-driven; its
CPU is counted separately as "client"):
  s3        GET of a presigned URL of the object, straight from RGW (the peer)
  api       GET /v1/records/{uri}/pdf (the API reads the object from RGW, checks its SHA-256 and
            sends it: the default, ``delivery=proxy``)
  redirect  GET /v1/records/{uri}/pdf?delivery=redirect, following the 303 to the presigned URL
            (latency and req/s are for the whole fetch: API answer + the bytes from RGW)
CPU per request comes from /proc for each server (the `sohoa serve` process tree, radosgw +
ceph-osd, the PostgreSQL cluster; exited children included), so the 2-core ceiling is visible
even on a loaded machine. At the end ``sohoa audit verify`` checks the chain: one entry per fetch.

    .venv/bin/python -m bench.api --out docs/benchmarks-api-idle.md
    .venv/bin/python -m bench.api --s3 127.0.0.1:7480,AK,SK --pg postgresql://postgres@127.0.0.1:5433/sohoa
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
SAMPLE = ROOT / "samples" / "giay_khai_sinh.jpg"
CORPUS = ROOT / "var" / "bench-api-corpus"
OWNER_PREFIX = "079203"  # synthetic, structurally valid personal IDs 079203000000, 079203000001, ...
READER_AGENCY = "G01.01"
PURPOSE = "1.004227"
TARGETS = ("s3", "api", "redirect")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- servers ---------------------------------------------------------------------------------
@dataclass
class Servers:
    s3: dict[str, str]
    pg_url: str
    ceph_dir: str | None = None  # set when this run started Ceph: its processes are measured
    pg_dir: str | None = None  # set when this run started PostgreSQL


@contextmanager
def servers(s3: str | None, pg: str | None) -> Iterator[Servers]:
    """The given servers, or throwaway ones started like the tests do (scripts/ceph-up.sh, pg-up.sh)."""
    stops: list[Callable[[], object]] = []
    ceph_dir = pg_dir = None
    try:
        if s3 is None:
            ceph_dir = tempfile.mkdtemp(prefix="bench-api-ceph-")
            ceph_env = dict(os.environ, D=ceph_dir, RGW_PORT=str(free_port()), MON_PORT=str(free_port()))
            # registered before starting: a half-started cluster is stopped too (its own env, by value)
            stops.append(lambda: subprocess.run(["bash", str(ROOT / "scripts/ceph-down.sh")], env=ceph_env,
                                                timeout=120))
            out = subprocess.run(["bash", str(ROOT / "scripts/ceph-up.sh")], env=ceph_env, capture_output=True,
                                 text=True, timeout=300)
            if out.returncode != 0:
                raise SystemExit(f"ceph-up.sh failed: {out.stderr[-2000:]}")
            s3 = ",".join(out.stdout.strip().splitlines()[-1].split())
        if pg is None:
            pg_dir = str(Path("/tmp") / f"bench-api-pg-{uuid.uuid4().hex[:8]}")
            pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
            pg_env = dict(os.environ, PGDATA=pg_dir, PGPORT=str(free_port()), PGBIN=str(pgbin))
            out = subprocess.run(["bash", str(ROOT / "scripts/pg-up.sh")], env=pg_env, capture_output=True, text=True,
                                 timeout=300)
            if out.returncode != 0:
                raise SystemExit(f"pg-up.sh failed: {out.stderr[-2000:]}")
            pg = out.stdout.strip().splitlines()[-1]
            stop = ["runuser", "-u", "postgres", "--", str(pgbin / "pg_ctl"), "-D", pg_dir, "stop", "-m", "fast"]
            data = pg_dir
            stops.append(lambda: (subprocess.run(stop, capture_output=True, timeout=120),
                                  shutil.rmtree(data, ignore_errors=True)))
        endpoint, ak, sk = s3.split(",")
        yield Servers({"endpoint": endpoint, "access_key": ak, "secret_key": sk}, pg, ceph_dir, pg_dir)
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


# ---- CPU accounting from /proc ---------------------------------------------------------------
def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds incl. its waited-for children)."""
    out: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), cmd, sum(int(x) for x in fields[11:15]) / TICK)
    return out


def _tree(procs: dict[int, tuple[int, str, float]], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, frontier = set(roots), list(roots)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def _started_from(pid: int, directory: str) -> bool:
    try:
        return f"CEPH_CONF={directory}/".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


class CpuMeter:
    """CPU seconds used so far by each server of this run: `sohoa serve` (its process tree),
    RGW (radosgw + ceph-osd of the Ceph this run started) and PostgreSQL (the cluster this run
    started). Counting whole trees including reaped children keeps exited workers and PostgreSQL
    backends in the sum."""

    def __init__(self, sohoa_pid: int, ceph_dir: str | None, pg_dir: str | None) -> None:
        self.sohoa_pid, self.ceph_dir, self.pg_dir = sohoa_pid, ceph_dir, pg_dir

    def _groups(self, procs: dict[int, tuple[int, str, float]]) -> dict[str, set[int]]:
        groups = {"sohoa": _tree(procs, {self.sohoa_pid})}
        if self.ceph_dir:
            groups["rgw"] = {p for p, (_, cmd, _) in procs.items()
                             if cmd.startswith(("radosgw", "ceph-osd")) and _started_from(p, self.ceph_dir)}
        if self.pg_dir:
            roots = {p for p, (_, cmd, _) in procs.items() if "postgres" in cmd and f"-D {self.pg_dir} " in cmd}
            groups["pg"] = _tree(procs, roots)
        return groups

    def read(self) -> dict[str, float]:
        procs = _processes()
        return {name: sum(procs[p][2] for p in pids) for name, pids in self._groups(procs).items()}


def machine_busy_seconds() -> float:
    values = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK  # all but idle and iowait


# ---- the corpus of signed records --------------------------------------------------------------
def _corpus_meta() -> dict | None:
    path = CORPUS / "meta.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def make_corpus(env: dict, n: int) -> dict:
    """``n`` distinct signed PDFs in ``var/bench-api-corpus`` (made once; reused while enough)."""
    meta = _corpus_meta()
    if meta is not None and meta["count"] >= n:
        return meta
    os.environ.update(env)
    from ingest.pipeline import DocumentInput, InputFile, Pipeline
    from ingest.settings import load_settings

    t0 = time.perf_counter()
    pipeline = Pipeline(load_settings())
    try:
        result = pipeline.digitize(DocumentInput(files=[InputFile.from_path(SAMPLE)], owner_id=OWNER_PREFIX + "999999"))
        got = pipeline.repository.get(result.stored.uri)
        base = got.pdf
        signer = pipeline.signer("agency")
        CORPUS.mkdir(parents=True, exist_ok=True)
        (CORPUS / "0.pdf").write_bytes(base)
        for i in range(1, n):
            copy = signer.sign(base, field_name=f"Sig_copy_{i}", box=(40, 40, 200, 80),
                               reason=f"Bản sao số {i} (benchmark)", location=pipeline.settings.agency_name)
            (CORPUS / f"{i}.pdf").write_bytes(copy)
        a = result.analysis
        meta = {"count": n, "doc_type": result.stored.doc_type, "title": result.stored.title,
                "issuing_agency": result.stored.issuing_agency, "pages": result.stored.pages,
                "fields": {k: v.value for k, v in a.fields.items()}, "text": a.text,
                "record_json": base64.b64encode(got.record_json).decode(),
                "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - t0, 1)}
        (CORPUS / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")
        return meta
    finally:
        pipeline.close()


@dataclass(frozen=True)
class Rec:
    uri: str
    object_key: str
    size: int
    sha256: str


def load_records(env: dict, meta: dict, n: int) -> tuple[list[Rec], str]:
    """Store the corpus's first ``n`` PDFs as records of ``n`` owners; grant the reader agency a
    legal basis for each owner; return the records and the reader's API key."""
    os.environ.update(env)
    from ingest.settings import load_settings
    from ingest.configs import repository_config
    from repository import Repository, StoreRequest
    from repository.access import AccessStore

    settings = load_settings()
    repo = Repository.open(repository_config(settings))
    record_json = base64.b64decode(meta["record_json"])
    now = datetime.now(timezone.utc)
    access = AccessStore(repo.engine)

    def store(i: int) -> Rec:
        owner = f"{OWNER_PREFIX}{i:06d}"
        stored = repo.store(StoreRequest(
            uri=repo.new_record_uri(settings.agency_code, meta["doc_type"]), owner_id=owner, owner_kind="citizen",
            doc_type=meta["doc_type"], pdf=(CORPUS / f"{i}.pdf").read_bytes(), record_json=record_json,
            fields=meta["fields"], text=meta["text"], issuing_agency=meta["issuing_agency"],
            converting_agency_code=settings.agency_code, source_sha256s=[], pages=meta["pages"],
            title=meta["title"]))
        access.create_grant(owner_key=stored.owner_key, agency_code=READER_AGENCY, purpose=PURPOSE,
                            basis="legal_basis", legal_reference="Luật Căn cước 2023, Điều 9",
                            valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1),
                            created_by="bench")
        return Rec(stored.uri, stored.object_key, stored.size, stored.sha256)

    try:
        with ThreadPoolExecutor(4) as pool:
            records = list(pool.map(store, range(n)))
        key = access.create_client("Bộ Công an (bench)", "agency", agency_code=READER_AGENCY,
                                   rate_per_second=1e6, burst=1_000_000).secret
    finally:
        repo.close()
    return records, key


def presigned_urls(env: dict, records: list[Rec]) -> list[str]:
    from minio import Minio
    client = Minio(env["SOHOA_S3_ENDPOINT"], access_key=env["SOHOA_S3_ACCESS_KEY"],
                   secret_key=env["SOHOA_S3_SECRET_KEY"], secure=False, region="us-east-1")
    return [client.presigned_get_object(env["SOHOA_S3_BUCKET"], r.object_key, expires=timedelta(hours=3))
            for r in records]


# ---- the load generator ----------------------------------------------------------------------
@dataclass
class Fetches:
    latencies: list[float]
    errors: int
    wall: float
    client_cpu: float
    connects: int = 0  # new TCP connections curl opened (all hops of a redirected fetch)


def curl_fetch(urls: list[str], sizes: dict[str, int], *, clients: int, headers: dict[str, str],
               follow: bool) -> Fetches:
    """Fetch every URL once, ``clients`` at a time (closed loop), with curl's parallel mode;
    a fetch counts when it ends 200 with the expected number of bytes."""
    with tempfile.NamedTemporaryFile("w", suffix=".curl", delete=False) as cfg:
        for url in urls:
            cfg.write(f'url = "{url}"\noutput = "/dev/null"\n')
    cmd = ["curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", str(clients), "-K", cfg.name,
           "-w", "%{http_code} %{time_total} %{size_download} %{num_connects} %{url}\\n"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if follow:
        cmd.append("--location")  # curl drops Authorization on a redirect to another host:port
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(cfg.name)
    latencies, errors, connects = [], 0, 0
    for line in out.stdout.splitlines():
        code, seconds, size, conns, url = line.split(" ", 4)
        connects += int(conns)
        if code == "200" and int(size) == sizes[url]:
            latencies.append(float(seconds))
        else:
            errors += 1
    errors = len(urls) - len(latencies)  # failed, short, or not even reported by curl
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Fetches(latencies, errors, wall, cpu, connects)


@dataclass
class Point:
    target: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per request: sohoa, rgw, pg, client, others
    connects: float = 0.0  # new TCP connections per fetch

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def servers_ms(self) -> float:
        return sum(v for k, v in self.cpu_ms.items() if k in ("sohoa", "rgw", "pg"))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


def measure(target: str, urls: list[str], sizes: dict[str, int], clients: int, headers: dict[str, str],
            meter: CpuMeter) -> Point:
    cpu0, busy0 = meter.read(), machine_busy_seconds()
    f = curl_fetch(urls, sizes, clients=clients, headers=headers, follow=target == "redirect")
    cpu1, busy1 = meter.read(), machine_busy_seconds()
    n = max(1, len(f.latencies))
    cpu = {k: (cpu1[k] - cpu0[k]) * 1000 / n for k in cpu1}
    cpu["client"] = f.client_cpu * 1000 / n
    cpu["others"] = max(0.0, (busy1 - busy0) * 1000 / n - sum(cpu.values()))
    lat = sorted(f.latencies)
    return Point(target, clients, len(lat), f.errors, f.wall, percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000,
                 cpu, f.connects / max(1, len(urls)))


# ---- the run ---------------------------------------------------------------------------------
def sohoa(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SOHOA, *args], env=env, capture_output=True, text=True, check=True, timeout=600)


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
                time.sleep(2)  # let every worker finish starting
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("sohoa serve did not become ready")


def report(points: list[Point], meta: dict) -> str:
    lines = ["| clients | target | fetches/s | p50 ms | p99 ms | errors | p99 / p99 s3 "
             "| CPU ms per fetch: sohoa | RGW | PostgreSQL | servers | client | others | CPU-bound ceiling on 2 cores "
             "| new connections per fetch |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by = {(p.target, p.clients): p for p in points}
    for p in points:
        s3 = by.get(("s3", p.clients))
        ratio = f"{p.p99_ms / s3.p99_ms:.2f}" if p.target != "s3" and s3 else ""
        c = p.cpu_ms
        ceiling = 2000 / (p.servers_ms + c["client"]) if p.servers_ms + c["client"] > 0 else float("nan")
        lines.append(f"| {p.clients} | {p.target} | {p.rps:.0f} | {p.p50_ms:.1f} | {p.p99_ms:.1f} | {p.errors} | {ratio} "
                     f"| {c.get('sohoa', 0):.2f} | {c.get('rgw', float('nan')):.2f} | {c.get('pg', float('nan')):.2f} "
                     f"| {p.servers_ms:.2f} | {c['client']:.2f} | {c['others']:.2f} | {ceiling:.0f} | {p.connects:.3f} |")
    lines += ["", "```json", json.dumps(meta, indent=2, ensure_ascii=False), "```"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", help="host:port,access_key,secret_key (default: start scripts/ceph-up.sh)")
    parser.add_argument("--pg", help="PostgreSQL URL we may create databases from (default: start one)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (default 1, as `sohoa serve`; on one 2-core box shared with RGW, "
                             "PostgreSQL and the load generator, 2 processes measured slower on every row)")
    parser.add_argument("--records", type=int, default=1000, help="distinct signed records fetched at random (< 999999)")
    parser.add_argument("--requests", type=int, default=3000, help="measured fetches per point")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels")
    parser.add_argument("--targets", default=",".join(TARGETS), help="s3,api,redirect")
    parser.add_argument("--out", type=Path, help="also write the results (markdown) here")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    targets = [t for t in args.targets.split(",") if t in TARGETS]
    if shutil.which("curl") is None:
        raise SystemExit("bench.api needs curl (apt-get install curl)")

    t_start = time.perf_counter()
    with servers(args.s3, args.pg) as srv, fresh_database(srv.pg_url) as db_url:
        home = Path(tempfile.mkdtemp(prefix="bench-api-"))
        env = dict(os.environ, SOHOA_HOME=str(home / "home"), SOHOA_DB_URL=db_url, SOHOA_STORE="s3",
                   SOHOA_S3_ENDPOINT=srv.s3["endpoint"], SOHOA_S3_ACCESS_KEY=srv.s3["access_key"],
                   SOHOA_S3_SECRET_KEY=srv.s3["secret_key"], SOHOA_S3_BUCKET=f"bench-api-{uuid.uuid4().hex[:8]}",
                   OMP_THREAD_LIMIT="1", SOHOA_LOG_LEVEL="WARNING")
        proc = None
        try:
            sohoa(env, "init")
            corpus = make_corpus(env, args.records)
            t_load = time.perf_counter()
            records, key = load_records(env, corpus, args.records)
            load_seconds = time.perf_counter() - t_load
            proc, base = start_server(env, args.workers)
            meter = CpuMeter(proc.pid, srv.ceph_dir, srv.pg_dir)
            s3_urls = presigned_urls(env, records)
            api_urls = [f"{base}/v1/records/{r.uri}/pdf" for r in records]
            redirect_urls = [u + "?delivery=redirect" for u in api_urls]
            sizes = {u: r.size for urls in (s3_urls, api_urls, redirect_urls) for u, r in zip(urls, records)}
            api_headers = {"Authorization": f"Bearer {key}", "Sohoa-Purpose": PURPOSE}
            check = httpx.get(api_urls[0], headers=api_headers, timeout=30)
            assert check.status_code == 200 and check.headers["etag"] == f'"{records[0].sha256}"', check.text[:300]
            assert httpx.get(s3_urls[0], timeout=30).content == check.content
            rng = random.Random(20261125)
            plan = {"s3": (s3_urls, {}), "api": (api_urls, api_headers), "redirect": (redirect_urls, api_headers)}
            load_before = os.getloadavg()
            points: list[Point] = []
            api_requests = 1  # the check above + the warm-ups and runs below
            for clients in levels:
                for target in targets:
                    urls, headers = plan[target]
                    warm = rng.choices(urls, k=max(clients * 4, 100))
                    curl_fetch(warm, sizes, clients=clients, headers=headers, follow=target == "redirect")
                    p = measure(target, rng.choices(urls, k=args.requests), sizes, clients, headers, meter)
                    api_requests += 0 if target == "s3" else len(warm) + args.requests
                    points.append(p)
                    c = p.cpu_ms
                    print(f"{clients:>3} clients {target:>8}: {p.rps:7.1f}/s  p50 {p.p50_ms:6.1f} ms  "
                          f"p99 {p.p99_ms:7.1f} ms  errors {p.errors}  CPU ms/fetch: sohoa {c.get('sohoa', 0):.2f} "
                          f"rgw {c.get('rgw', 0):.2f} pg {c.get('pg', 0):.2f} client {c['client']:.2f} "
                          f"others {c['others']:.2f} conns/fetch {p.connects:.3f}", flush=True)
            load_after = os.getloadavg()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
        audit = json.loads(subprocess.run([SOHOA, "audit", "verify", "--json"], env=env, capture_output=True,
                                          text=True, timeout=600).stdout)
        shutil.rmtree(home, ignore_errors=True)

    sizes_kb = [r.size / 1024 for r in records]
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "server_workers": args.workers, "records": len(records),
            "pdf_kb_mean": round(statistics.mean(sizes_kb), 1), "requests_per_point": args.requests,
            "load_generator": subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "setup_seconds": {"store_records": round(load_seconds, 1), "corpus_made": corpus.get("made"),
                              "corpus_seconds": corpus.get("seconds")},
            "total_seconds": round(time.perf_counter() - t_start, 1),
            "audit_verify": {"ok": audit["ok"], "entries": audit["entries"], "checkpoints": audit["checkpoints"],
                             "api_fetches_sent": api_requests}}
    text_out = report(points, meta)
    print(text_out)
    if args.out:
        args.out.write_text(text_out + "\n", "utf-8")


if __name__ == "__main__":
    main()

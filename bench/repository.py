"""Repository benchmark: put/get against Ceph RGW next to raw minio-SDK calls, and index search
latency at 100,000 records on SQLite and PostgreSQL.

Part 1 (object path): N records (a PDF of ``--pdf-kb`` incompressible bytes, like the JPEG/G4
images that dominate a data message, plus a ~2 KB structured record). For each record, in the same
run and interleaved so machine load hits both alike:
  raw   = minio ``put_object`` of the PDF and of the record (sequential, same retention headers),
          then ``get_object`` of both;
  repo  = ``Repository.store`` (an index lookup, PUT of two content-addressed blobs and a
          manifest run concurrently, then one index write) and ``Repository.get`` (index lookup,
          two concurrent GETs, SHA-256 verification);
once with the index on PostgreSQL and once on SQLite (``--object-dbs``).
Part 2 (index): ``--search-records`` synthetic records (Vietnamese names, addresses, agencies,
~1 KB of OCR-like text each) bulk-loaded into the same tables ``store`` writes, then
``list_records(owner_id, doc_type)`` and diacritics-free ``search()`` timed through the public API.

    .venv/bin/python -m bench.repository --out docs/benchmarks-repository.md
    # servers: started from scripts/ceph-up.sh and scripts/pg-up.sh unless given:
    .venv/bin/python -m bench.repository --s3 127.0.0.1:7480,AK,SK --pg postgresql://postgres@127.0.0.1:5433/app
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
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

from sqlalchemy import create_engine, text

from repository import Repository, RepositoryConfig, StoreRequest, fold
from repository.db import normalize_db_url
from repository.identity import OwnerIdCipher, owner_key
from repository.layout import blob_key, manifest_key, new_record_uri

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"bench-owner-secret-0123456789abcdef"
AGENCY_CODE = "000.00.12.H29"
DOC_TYPES = ("giay_khai_sinh", "giay_chung_tu", "trich_luc_ket_hon", "xac_nhan_cu_tru", "quyet_dinh", "cccd")
FAMILY = ["Nguyễn"] * 38 + ["Trần"] * 11 + ["Lê"] * 9 + ["Phạm"] * 7 + ["Hoàng", "Huỳnh"] * 3 + [
    "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lương", "Mai"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quang", "Xuân", "Thu", "Hoài", "Gia", "Bảo"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hòa", "Hùng", "Hương", "Khánh", "Lan",
         "Linh", "Long", "Mai", "Nam", "Nga", "Phong", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn",
         "Vy", "Yến", "Đạt", "Đào", "Hiếu", "Lộc", "Nhung", "Oanh", "Quỳnh", "Thắng", "Trí", "Việt"]
PROVINCES = ["Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng", "Hải Phòng", "Cần Thơ", "Nghệ An", "Thanh Hóa",
             "Quảng Ninh", "Bắc Ninh", "Đồng Nai", "Bình Dương", "Khánh Hòa", "Lâm Đồng", "Huế", "An Giang"]
WARDS = ["Bến Nghé", "Tân Định", "Hàng Bạc", "Tràng Tiền", "Phước Mỹ", "Thạch Thang", "Tân Lập", "Mỹ An",
         "Hòa Khánh", "Vĩnh Ninh", "Cát Linh", "Láng Hạ", "Phú Hội", "Xuân Hà", "An Hải"]
TITLES = {"giay_khai_sinh": "Giấy khai sinh", "giay_chung_tu": "Giấy chứng tử",
          "trich_luc_ket_hon": "Trích lục kết hôn", "xac_nhan_cu_tru": "Giấy xác nhận thông tin về cư trú",
          "quyet_dinh": "Quyết định", "cccd": "Căn cước công dân"}


# -- servers -------------------------------------------------------------------------------------
@contextmanager
def servers(s3: str | None, pg: str | None) -> Iterator[tuple[dict, str]]:
    """Use the given servers or start throwaway ones with the project's scripts."""
    started: list[Callable[[], None]] = []
    try:
        if s3 is None:
            ceph_env = dict(os.environ, D=tempfile.mkdtemp(prefix="bench-ceph-"), RGW_PORT=str(_free_port()),
                            MON_PORT=str(_free_port()))
            started.append(lambda: subprocess.run(["bash", str(ROOT / "scripts/ceph-down.sh")], env=ceph_env))
            out = subprocess.run(["bash", str(ROOT / "scripts/ceph-up.sh")], env=ceph_env, check=True,
                                 capture_output=True, text=True)
            endpoint, ak, sk = out.stdout.strip().splitlines()[-1].split()
        else:
            endpoint, ak, sk = s3.split(",")
        if pg is None:
            pgdata = tempfile.mkdtemp(prefix="bench-pg-")
            pg_env = dict(os.environ, PGDATA=pgdata, PGPORT=str(_free_port()))
            pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]  # the server pg-up.sh runs
            stop = [str(pg_ctl), "-D", pgdata, "stop", "-m", "fast"]
            stop = ["runuser", "-u", "postgres", "--", *stop] if os.geteuid() == 0 else stop
            started.append(lambda: (subprocess.run(stop, capture_output=True), shutil.rmtree(pgdata, ignore_errors=True)))
            out = subprocess.run(["bash", str(ROOT / "scripts/pg-up.sh")], env=pg_env, check=True,
                                 capture_output=True, text=True)
            pg = out.stdout.strip().splitlines()[-1]
        yield {"endpoint": endpoint, "access_key": ak, "secret_key": sk}, pg
    finally:
        for stop_fn in reversed(started):
            stop_fn()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_pg_database(pg_url: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_db_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield normalize_db_url(pg_url).rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


# -- statistics ----------------------------------------------------------------------------------
@dataclass
class Series:
    name: str
    seconds: list[float]
    cpu: list[float] | None = None  # process CPU seconds (all threads) per operation

    def pct(self, p: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000

    @property
    def total(self) -> float:
        return sum(self.seconds)

    def row(self, payload_bytes: int) -> str:
        n = len(self.seconds)
        cpu = f"{statistics.mean(self.cpu) * 1000:.1f}" if self.cpu else "–"
        return (f"| {self.name} | {n} | {self.pct(50):.1f} | {self.pct(99):.1f} | {cpu} | {n / self.total:.1f} | "
                f"{payload_bytes * n / self.total / 1e6:.1f} |")


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return wall


# -- part 1: object path -------------------------------------------------------------------------
def make_store_request(rng: random.Random, pdf_bytes: int, i: int) -> StoreRequest:
    doc_type = DOC_TYPES[i % len(DOC_TYPES)]
    name = person(rng)
    fields = {"ho_ten": name, "ngay_sinh": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1950, 2024)}",
              "noi_cu_tru": f"phường {rng.choice(WARDS)}, {rng.choice(PROVINCES)}"}
    uri = new_record_uri(AGENCY_CODE, doc_type)
    record = {"schema": "sohoa.record/1.0", "uri": uri, "doc_type": doc_type, "fields": fields,
              "conversion": {"agency": AGENCY_CODE, "officer": "Cán bộ một cửa", "pages": 1},
              "padding": "x" * 1500}
    return StoreRequest(
        uri=uri, owner_id=citizen_id(rng), owner_kind="citizen", doc_type=doc_type,
        pdf=b"%PDF-1.7\n" + rng.randbytes(pdf_bytes - 9), record_json=json.dumps(record, ensure_ascii=False).encode(),
        fields=fields, text=ocr_text(rng, doc_type, name), issuing_agency=f"UBND phường {rng.choice(WARDS)}",
        converting_agency_code=AGENCY_CODE, source_sha256s=[hashlib.sha256(str(i).encode()).hexdigest()], pages=1,
        retention_years=10, title=f"{TITLES[doc_type]} - {name}",
    )


@dataclass
class Concurrent:
    threads: int
    records: int
    raw_put_s: float
    repo_put_s: float
    raw_get_s: float
    repo_get_s: float


def run_concurrently(fn: Callable[[StoreRequest], object], requests: list[StoreRequest], threads: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(fn, requests))
    return time.perf_counter() - t0


def bench_objects(
    s3: dict, db_url: str, records: int, pdf_kb: int, seed: int, threads: int
) -> tuple[list[Series], list[Series], int, Concurrent | None]:
    from minio import Minio
    from minio.retention import Retention as MinioRetention

    rng = random.Random(seed)
    requests = [make_store_request(rng, pdf_kb * 1024, i) for i in range(records)]
    extra = [make_store_request(rng, pdf_kb * 1024, records + i) for i in range(records // 2 if threads > 1 else 0)]
    payload = len(requests[0].pdf) + len(requests[0].record_json)
    config = RepositoryConfig(db_url=db_url, store="s3", s3_endpoint=s3["endpoint"], s3_access_key=s3["access_key"],
                              s3_secret_key=s3["secret_key"], s3_bucket=f"bench-repo-{uuid.uuid4().hex[:8]}",
                              owner_secret=SECRET)
    raw = Minio(s3["endpoint"], s3["access_key"], s3["secret_key"], secure=False)
    raw_bucket = f"bench-raw-{uuid.uuid4().hex[:8]}"
    raw.make_bucket(raw_bucket, object_lock=True)
    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3650)
    lock = MinioRetention("GOVERNANCE", until)

    def raw_put(req: StoreRequest) -> None:
        for data in (req.pdf, req.record_json):
            raw.put_object(raw_bucket, blob_key(hashlib.sha256(data).hexdigest()), io.BytesIO(data), len(data),
                           retention=lock)

    def raw_get(req: StoreRequest) -> None:
        for data in (req.pdf, req.record_json):
            r = raw.get_object(raw_bucket, blob_key(hashlib.sha256(data).hexdigest()))
            r.read()
            r.close()
            r.release_conn()

    repo = Repository.open(config)
    try:
        for req in requests[:5]:  # warm connections and caches on both paths
            raw_put(req), repo.store(req)
        puts_raw, puts_repo, gets_raw, gets_repo = [], [], [], []
        cpu: dict[str, list[float]] = {k: [] for k in ("put_raw", "put_repo", "get_raw", "get_repo")}
        for req in requests[5:]:
            puts_raw.append(timed(lambda: raw_put(req), cpu["put_raw"]))
            puts_repo.append(timed(lambda: repo.store(req), cpu["put_repo"]))
        for req in requests[5:]:
            gets_raw.append(timed(lambda: raw_get(req), cpu["get_raw"]))
            gets_repo.append(timed(lambda: repo.get(req.uri), cpu["get_repo"]))
        concurrent = None
        if extra:
            half = len(extra) // 2
            raw_put_s = run_concurrently(raw_put, extra[:half], threads) / half
            repo_put_s = run_concurrently(repo.store, extra[half:], threads) / (len(extra) - half)
            raw_get_s = run_concurrently(raw_get, extra[:half], threads) / half
            repo_get_s = run_concurrently(lambda r: repo.get(r.uri), extra[half:], threads) / (len(extra) - half)
            concurrent = Concurrent(threads, len(extra), raw_put_s, repo_put_s, raw_get_s, repo_get_s)
    finally:
        repo.close()
    puts = [Series("raw minio put_object x2", puts_raw, cpu["put_raw"]),
            Series("Repository.store", puts_repo, cpu["put_repo"])]
    gets = [Series("raw minio get_object x2", gets_raw, cpu["get_raw"]),
            Series("Repository.get (+SHA-256 verify)", gets_repo, cpu["get_repo"])]
    return puts, gets, payload, concurrent


# -- part 2: index search ------------------------------------------------------------------------
def person(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def citizen_id(rng: random.Random) -> str:
    return f"0{rng.randint(1, 96):02d}{rng.randint(0, 3)}{rng.randint(0, 99):02d}{rng.randint(0, 999999):06d}"


def ocr_text(rng: random.Random, doc_type: str, name: str) -> str:
    father, mother = person(rng), person(rng)
    place = f"phường {rng.choice(WARDS)}, {rng.choice(PROVINCES)}"
    return (
        f"CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM Độc lập - Tự do - Hạnh phúc {TITLES[doc_type].upper()} "
        f"Họ, chữ đệm, tên: {name.upper()} Ngày, tháng, năm sinh: {rng.randint(1, 28)}/{rng.randint(1, 12)}/"
        f"{rng.randint(1950, 2024)} Giới tính: {rng.choice(['Nam', 'Nữ'])} Dân tộc: Kinh Quốc tịch: Việt Nam "
        f"Nơi sinh: Bệnh viện đa khoa {rng.choice(PROVINCES)} Quê quán: {place} "
        f"Họ, chữ đệm, tên người cha: {father} Họ, chữ đệm, tên người mẹ: {mother} "
        f"Nơi cư trú: số {rng.randint(1, 300)} đường {rng.choice(WARDS)}, {place} "
        f"Người đi đăng ký: {rng.choice([father, mother])} Quan hệ với người được đăng ký: cha/mẹ "
        f"Nơi đăng ký: Ủy ban nhân dân {place} Ngày, tháng, năm đăng ký: {rng.randint(1, 28)}/{rng.randint(1, 12)}/2025 "
        f"NGƯỜI KÝ GIẤY KHAI SINH (Ký, ghi rõ họ, chữ đệm, tên, đóng dấu) CHỦ TỊCH {person(rng).upper()} "
        f"Số: {rng.randint(1, 999)}/{rng.choice(['2025', '2024'])} Quyển số: {rng.randint(1, 9)}"
    )


@dataclass
class Population:
    owners: list[str]  # citizen IDs
    pairs: list[tuple[str, str]]  # (owner ID, doc_type) with at least one record
    names: list[str]  # full names appearing in records


RECORD_COLUMNS = ("id", "uri", "owner_id", "doc_type", "issuing_agency", "converting_agency_code", "title",
                  "created_at", "updated_at", "current_version")
BLOB_COLUMNS = ("sha256", "size", "object_key", "media_type", "created_at")
VERSION_COLUMNS = ("id", "record_id", "version", "status", "doc_type", "pdf_sha256", "record_sha256", "manifest_key",
                   "pages", "created_at", "lock_mode", "retain_until", "legal_hold")


def bulk_load(repo: Repository, n: int, seed: int, batch: int = 10_000) -> Population:
    """Insert ``n`` records with the rows ``Repository.store`` writes into the tables the queries
    read (owners, records, blobs, versions, fields, search_docs; no objects: the index alone is
    measured here), through the indexes, constraints and full-text triggers of the real schema.
    Rows go in with the driver's bulk path (PostgreSQL ``COPY``, SQLite ``executemany``)."""
    rng = random.Random(seed)
    cipher = OwnerIdCipher(SECRET)
    owner_ids = list({citizen_id(rng) for _ in range(n // 3)})
    now = datetime.now(timezone.utc)
    owners = []
    for oid in owner_ids:
        okey = owner_key(SECRET, oid)
        owners.append((okey, "citizen", cipher.encrypt(oid, okey), now))
    with repo.engine.begin() as conn:
        _bulk_insert(conn, "owners", ("owner_key", "kind", "id_encrypted", "created_at"), owners)
    pairs: set[tuple[str, str]] = set()
    names: list[str] = []
    record_id = 0
    for start in range(0, n, batch):
        recs, blobs, versions, docs, fields = [], [], [], [], []
        for _ in range(min(batch, n - start)):
            record_id += 1
            owner_idx = rng.randrange(len(owner_ids))
            doc_type = rng.choice(DOC_TYPES)
            name = person(rng)
            names.append(name)
            pairs.add((owner_ids[owner_idx], doc_type))
            uri = new_record_uri(AGENCY_CODE, doc_type)
            when = now - timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86400))
            pdf_sha = hashlib.sha256(f"pdf{record_id}".encode()).hexdigest()
            rec_sha = hashlib.sha256(f"rec{record_id}".encode()).hexdigest()
            title = f"{TITLES[doc_type]} - {name}"
            agency = f"UBND phường {rng.choice(WARDS)}"
            recs.append((record_id, uri, owner_idx + 1, doc_type, agency, AGENCY_CODE, title, when, when, 1))
            for sha, size, media in ((pdf_sha, 300_000, "application/pdf"), (rec_sha, 2_000, "application/json")):
                blobs.append((sha, size, blob_key(sha), media, when))
            versions.append((record_id, record_id, 1, "current", doc_type, pdf_sha, rec_sha,
                             manifest_key(uri, 1, pdf_sha), 1, when, None, None, False))
            body = ocr_text(rng, doc_type, name)
            fields += [(record_id, "ho_ten", name), (record_id, "noi_cu_tru", rng.choice(PROVINCES))]
            docs.append((record_id, record_id, fold(f"{title} {name} {body}")))
        with repo.engine.begin() as conn:
            _bulk_insert(conn, "records", RECORD_COLUMNS, recs)
            _bulk_insert(conn, "blobs", BLOB_COLUMNS, blobs)
            _bulk_insert(conn, "versions", VERSION_COLUMNS, versions)
            _bulk_insert(conn, "fields", ("version_id", "name", "value"), fields)
            _bulk_insert(conn, "search_docs", ("version_id", "record_id", "body"), docs)
    with repo.engine.begin() as conn:
        if repo.engine.dialect.name == "postgresql":
            for table in ("records", "versions", "owners"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        conn.execute(text("ANALYZE"))
    return Population(owner_ids, sorted(pairs), names)


def _bulk_insert(conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:  # noqa: ANN001
    """Rows into ``table`` inside the caller's transaction, by the driver's fastest path."""
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            import csv

            buf = io.StringIO()
            writer = csv.writer(buf)
            for row in rows:
                writer.writerow([_pg_copy_value(v) for v in row])
            buf.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)
        else:  # SQLite stores timestamps as SQLAlchemy does: 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               [tuple(_sqlite_value(v) for v in row) for row in rows])
    finally:
        cursor.close()


def _pg_copy_value(value: object) -> object:
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def bench_search(repo: Repository, pop: Population, queries: int, seed: int) -> list[tuple[str, Series, float]]:
    rng = random.Random(seed)
    results = []
    lookups = rng.sample(pop.pairs, min(queries, len(pop.pairs)))
    hits: list[int] = []
    series: list[float] = []
    cpu: list[float] = []
    for oid, doc_type in lookups:
        series.append(timed(lambda: hits.append(len(repo.list_records(owner_id=oid, doc_type=doc_type))), cpu))
    results.append(("owner + type (`list_records`)", Series("owner+type", series, cpu), statistics.mean(hits)))

    def fts(label: str, make_query: Callable[[], tuple[str, dict]]) -> None:
        times: list[float] = []
        cpu: list[float] = []
        found: list[int] = []
        for _ in range(queries):
            q, kw = make_query()
            times.append(timed(lambda: found.append(len(repo.search(q, **kw))), cpu))
        results.append((label, Series(label, times, cpu), statistics.mean(found)))

    fts("full name, no diacritics (`search('nguyen van an')`)", lambda: (fold(rng.choice(pop.names)), {}))
    fts("full name with diacritics", lambda: (rng.choice(pop.names), {}))
    fts("place words (`search('ben nghe')`), limit 20", lambda: (fold(f"{rng.choice(WARDS)}"), {}))
    fts("name + owner filter", lambda: (fold(rng.choice(pop.names).split()[-1]), {"owner_id": rng.choice(pop.owners)}))
    return results


# -- report ----------------------------------------------------------------------------------------
@dataclass
class ObjectRun:
    db: str  # dialect of the index
    puts: list[Series]
    gets: list[Series]
    payload: int
    concurrent: Concurrent | None


def report(object_runs: list[ObjectRun], search_rows, started: float, loads: list[float]) -> str:
    lines = [
        "# Repository benchmark", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on this machine ({os.cpu_count()} cores; 1-minute load "
        f"average {min(loads):.1f}–{max(loads):.1f} during the run), Ceph RGW 16 single node (memstore OSD, beast "
        f"tcp_nodelay) on loopback, PostgreSQL 15 (fsync off), SQLite {__import__('sqlite3').sqlite_version} (WAL).", "",
        "Command:", "", "```", "  ".join(["", ".venv/bin/python -m bench.repository", *sys.argv[1:]]).strip(), "```", "",
    ]
    for run in object_runs:
        puts, gets, payload = run.puts, run.gets, run.payload
        lines += [
            f"## Object path: {len(puts[0].seconds)} records of {payload / 1024:.0f} KiB (PDF + record), index on {run.db}",
            "", "| operation | n | p50 ms | p99 ms | client CPU ms/op | records/s | MB/s |", "|---|---|---|---|---|---|---|",
            *(s.row(payload) for s in puts), *(s.row(payload) for s in gets), "",
            f"- store vs raw put: p50 x{puts[1].pct(50) / puts[0].pct(50):.2f}, mean x{puts[1].total / puts[0].total:.2f}, "
            f"client CPU x{statistics.mean(puts[1].cpu or [0]) / statistics.mean(puts[0].cpu or [1]):.2f} "
            "(target: overhead <= 20 % → ratio <= 1.20).",
            f"- get vs raw get: p50 x{gets[1].pct(50) / gets[0].pct(50):.2f}, mean x{gets[1].total / gets[0].total:.2f}, "
            f"client CPU x{statistics.mean(gets[1].cpu or [0]) / statistics.mean(gets[0].cpu or [1]):.2f}.",
        ]
        if run.concurrent:
            c = run.concurrent
            lines += [
                f"- {c.threads} client threads ({c.records // 2} records each way): raw put {1 / c.raw_put_s:.1f} records/s "
                f"vs store {1 / c.repo_put_s:.1f} (x{c.raw_put_s / c.repo_put_s:.2f}); raw get {1 / c.raw_get_s:.1f} vs "
                f"Repository.get {1 / c.repo_get_s:.1f} (x{c.raw_get_s / c.repo_get_s:.2f}).",
            ]
        lines += [""]
    if object_runs:
        lines += [
            "Raw = two sequential minio `put_object` (same Object Lock retention) / `get_object` calls of the same "
            "bytes, interleaved record by record with the repository calls. `Repository.store` = one index lookup, "
            "then the two content-addressed blobs and the version manifest written concurrently (no HEAD for new "
            "content), then one index write (one SQL statement on PostgreSQL); `Repository.get` = one index "
            "lookup, two concurrent GETs, SHA-256 of every byte. Client CPU = this process's CPU time (all "
            "threads) per operation: unlike wall-clock it does not depend on how busy the machine is.", "",
        ]
    for dialect, n, rows, load_s in search_rows:
        lines += [f"## Index search at {n:,} records — {dialect} (bulk load {load_s:.0f} s)", "",
                  "| query | n | p50 ms | p99 ms | client CPU ms p50 / p99 | mean hits |", "|---|---|---|---|---|---|"]
        lines += [f"| {label} | {len(s.seconds)} | {s.pct(50):.2f} | {s.pct(99):.2f} | "
                  f"{Series('', s.cpu or [0.0]).pct(50):.2f} / {Series('', s.cpu or [0.0]).pct(99):.2f} | {hits:.1f} |"
                  for label, s, hits in rows]
        lines += ["", "Targets: owner+type p99 < 10 ms; diacritics-insensitive full text p99 < 100 ms.", ""]
    lines += [f"Total bench time {time.time() - started:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--s3", help="host:port,access_key,secret_key (default: start scripts/ceph-up.sh)")
    parser.add_argument("--pg", help="PostgreSQL URL of a database we may create databases from (default: start one)")
    parser.add_argument("--records", type=int, default=1000, help="records for the put/get part (0 to skip)")
    parser.add_argument("--pdf-kb", type=int, default=300, help="PDF size in KiB")
    parser.add_argument("--object-dbs", default="postgresql,sqlite", help="index databases for the put/get part")
    parser.add_argument("--threads", type=int, default=8, help="client threads for the concurrent throughput run (1: skip)")
    parser.add_argument("--search-records", type=int, default=100_000, help="records for the index part (0 to skip)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args(argv)
    started = time.time()
    loads = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    object_runs: list[ObjectRun] = []
    search_rows = []
    try:
        with servers(args.s3, args.pg) as (s3, pg):
            for db in filter(None, args.object_dbs.split(",")) if args.records else []:
                with (fresh_pg_database(pg) if db == "postgresql" else _sqlite_url(work, "objects.db")) as url:
                    run = ObjectRun(db, *bench_objects(s3, url, args.records + 5, args.pdf_kb, args.seed, args.threads))
                object_runs.append(run)
                loads.append(os.getloadavg()[0])
                print("\n".join(f"{db}: {s.row(run.payload)}" for s in run.puts + run.gets), flush=True)
            for dialect in filter(None, args.dialects.split(",")) if args.search_records else []:
                with (fresh_pg_database(pg) if dialect == "postgresql" else _sqlite_url(work, "search.db")) as url:
                    repo = Repository.open(RepositoryConfig(db_url=url, local_dir=work / f"obj-{dialect}", owner_secret=SECRET))
                    try:
                        t0 = time.time()
                        pop = bulk_load(repo, args.search_records, args.seed)
                        load_s = time.time() - t0
                        print(f"{dialect}: bulk load of {args.search_records} records in {load_s:.0f} s", flush=True)
                        loads.append(os.getloadavg()[0])
                        rows = bench_search(repo, pop, args.queries, args.seed)
                    finally:
                        repo.close()
                search_rows.append((dialect, args.search_records, rows, load_s))
                loads.append(os.getloadavg()[0])
                for label, s, hits in rows:
                    print(f"{dialect}: {label}: p50 {s.pct(50):.2f} ms p99 {s.pct(99):.2f} ms hits {hits:.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    md = report(object_runs, search_rows, started, loads)
    print(md)
    if args.out:
        args.out.write_text(md, encoding="utf-8")
    return 0


@contextmanager
def _sqlite_url(work: Path, name: str) -> Iterator[str]:
    yield f"sqlite:///{work / name}"


if __name__ == "__main__":
    raise SystemExit(main())

"""The API on the production shape: `sohoa serve` (uvicorn) over PostgreSQL and Ceph RADOS Gateway.

An agency with a legal-basis grant fetches records over real HTTP from concurrent clients; the
bytes equal a direct S3 GET of the stored object (read with the minio SDK, not our code), and the
audit chain written by the concurrent requests verifies with `sohoa audit verify`.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import free_port
from tests.test_api_support import HOME_AGENCY, OTHER_AGENCY, OWNER_A, OWNER_B, REPRESENTATIVE, init_home, store_record

SOHOA = str(Path(sys.executable).parent / "sohoa")
pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def prod_env(sohoa_home, pg_url, s3_server, monkeypatch):
    database = f"api_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {database}"))
    admin.dispose()
    env = {"SOHOA_HOME": str(sohoa_home), "SOHOA_DB_URL": pg_url.rsplit("/", 1)[0] + f"/{database}",
           "SOHOA_STORE": "s3", "SOHOA_S3_ENDPOINT": s3_server["endpoint"],
           "SOHOA_S3_ACCESS_KEY": s3_server["access_key"], "SOHOA_S3_SECRET_KEY": s3_server["secret_key"],
           "SOHOA_S3_BUCKET": f"api-{uuid.uuid4().hex[:10]}", "SOHOA_API_RATE_PER_SECOND": "100000",
           "SOHOA_API_BURST": "100000"}
    init_home(sohoa_home)  # first: the session's template home must not inherit this test's store settings
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield {**os.environ, **env}


def serve(env: dict, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([SOHOA, "serve", "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sohoa serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise AssertionError("sohoa serve did not start")


def test_agency_fetches_over_http_from_pg_and_rgw(prod_env):
    from minio import Minio

    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings
    from repository.access import AccessStore

    settings = load_settings()
    pipeline = Pipeline(settings)
    records = [store_record(pipeline, OWNER_A, "000.00.99.H30", "quyet_dinh", "QUYẾT ĐỊNH"),
               store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH"),
               store_record(pipeline, OWNER_B, HOME_AGENCY, "xac_nhan_cu_tru", "XÁC NHẬN CƯ TRÚ")]
    repo = pipeline.repository
    access = AccessStore(repo.engine)
    ref_a = repo.owner_key(OWNER_A)
    agency = access.create_client("Bộ Công an", "agency", agency_code=OTHER_AGENCY).secret
    now = datetime.now(timezone.utc)
    access.create_grant(owner_key=ref_a, agency_code=OTHER_AGENCY, purpose="1.004227", basis="legal_basis",
                        legal_reference="Luật Căn cước 2023, Điều 9", valid_from=now - timedelta(hours=1),
                        valid_until=now + timedelta(days=1), created_by="test")
    pipeline.close()

    proc, base = serve(prod_env)
    try:
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["ok"] and ready["db"]["dialect"] == "postgresql" and ready["store"]["kind"] == "s3"
        headers = {"Authorization": f"Bearer {agency}", "Sohoa-Purpose": "1.004227"}
        listed = httpx.get(f"{base}/v1/owners/{ref_a}/records", headers=headers).json()
        assert {i["uri"] for i in listed["items"]} == {r.uri for r in records[:2]}

        def fetch(i: int) -> tuple[int, bytes]:
            r = httpx.get(f"{base}/v1/records/{records[i % 3].uri}/pdf", headers=headers, timeout=30)
            return r.status_code, r.content

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(48)))
        assert [code for code, _ in results] == [200 if i % 3 < 2 else 403 for i in range(48)]

        s3 = Minio(prod_env["SOHOA_S3_ENDPOINT"], access_key=prod_env["SOHOA_S3_ACCESS_KEY"],
                   secret_key=prod_env["SOHOA_S3_SECRET_KEY"], secure=False)
        for i, rec in enumerate(records[:2]):
            resp = s3.get_object(prod_env["SOHOA_S3_BUCKET"], rec.object_key)
            try:
                direct = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            assert results[i][1] == direct and hashlib.sha256(direct).hexdigest() == rec.sha256
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    verified = subprocess.run([SOHOA, "audit", "verify", "--json"], env=prod_env, capture_output=True, text=True,
                              timeout=120)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert report["entries"] == 1 + 48 and report["uncovered"] == 0  # listing + fetches; closed with a checkpoint
    with sa.create_engine(prod_env["SOHOA_DB_URL"]).connect() as conn:
        denied = conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE outcome = 'denied'")).scalar()
        allowed = conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE outcome = 'allowed' "
                                       "AND action = 'record.download_pdf' AND basis = 'legal_basis'")).scalar()
    assert (denied, allowed) == (16, 32)


def _world(prod_env) -> dict:  # noqa: ANN001
    """Two owners' records in PG + RGW, an agency key, a citizen key and the citizen's consent."""
    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings
    from repository.access import AccessStore

    pipeline = Pipeline(load_settings())
    try:
        mine = store_record(pipeline, OWNER_A, "000.00.99.H30", "quyet_dinh", "QUYẾT ĐỊNH")
        other = store_record(pipeline, OWNER_B, HOME_AGENCY, "xac_nhan_cu_tru", "XÁC NHẬN CƯ TRÚ")
        repo = pipeline.repository
        access = AccessStore(repo.engine)
        ref_a = repo.owner_key(OWNER_A)
        now = datetime.now(timezone.utc)
        grant = access.create_grant(owner_key=ref_a, agency_code=OTHER_AGENCY, purpose="1.004227", basis="consent",
                                    valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1),
                                    created_by="test")
        return {"mine": mine, "other": other, "grant_id": grant.id,
                "agency": access.create_client("Bộ Công an", "agency", agency_code=OTHER_AGENCY).secret,
                "citizen": access.create_client("VNeID A", "citizen", owner_key=ref_a).secret}
    finally:
        pipeline.close()


def _refusals_per_worker(base: str) -> dict[str, float]:
    """403 answers of GET /v1/records/{uri}/pdf counted by each worker's own Prometheus registry
    (told apart by the series' creation time), polling /metrics until both workers answered."""
    series = 'route="/v1/records/{uri}/pdf",status="403"}'
    seen: dict[str, float] = {}
    for _ in range(200):
        lines = [ln for ln in httpx.get(f"{base}/metrics").text.splitlines() if series in ln]
        created = next(ln.rsplit(" ", 1)[1] for ln in lines if ln.startswith("sohoa_http_requests_created"))
        seen[created] = float(next(ln.rsplit(" ", 1)[1] for ln in lines if ln.startswith("sohoa_http_requests_total")))
        if len(seen) == 2:
            break
    return seen


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_redirect_to_a_presigned_url_and_revocation_across_two_workers(prod_env):
    """`delivery=redirect`: 303 to a short-lived presigned RGW URL, only after the decision and
    its audit entry; the URL expires; a withdrawn consent is refused on the very next request by
    every server process (nothing of the grant decision is cached)."""
    w = _world(prod_env)
    env = {**prod_env, "SOHOA_API_REDIRECT_SECONDS": "3"}
    proc, base = serve(env, workers=2)
    try:
        assert len(_children(proc.pid)) >= 2  # uvicorn's two worker processes
        agency = {"Authorization": f"Bearer {w['agency']}", "Sohoa-Purpose": "1.004227"}
        pdf = f"{base}/v1/records/{w['mine'].uri}/pdf"
        redirects = [httpx.get(pdf, params={"delivery": "redirect"}, headers=agency) for _ in range(6)]
        for r in redirects:
            assert r.status_code == 303, r.text
            assert r.headers["cache-control"] == "no-store" and r.headers["sohoa-sha256"] == w["mine"].sha256
            assert r.json()["url"] == r.headers["location"] and r.json()["sha256"] == w["mine"].sha256
        location = redirects[-1].headers["location"]
        assert w["agency"] not in location and OWNER_A not in location
        fetched = httpx.get(location)  # no credentials: the signature in the URL is the permission
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(fetched.content).hexdigest() == w["mine"].sha256
        followed = httpx.get(pdf, params={"delivery": "redirect"}, headers=agency, follow_redirects=True)
        assert followed.status_code == 200 and followed.content == fetched.content
        assert httpx.get(pdf, headers=agency).content == fetched.content  # the default still proxies the bytes

        # refused reads never see a Location, and look like a record that does not exist
        other = httpx.get(f"{base}/v1/records/{w['other'].uri}/pdf", params={"delivery": "redirect"}, headers=agency)
        missing = httpx.get(f"{base}/v1/records/{w['mine'].uri[:-4]}ZZZZ/pdf", params={"delivery": "redirect"},
                            headers=agency)
        assert other.status_code == missing.status_code == 403 and "location" not in other.headers
        assert {**other.json(), "instance": None} == {**missing.json(), "instance": None}

        time.sleep(3.5)
        expired = httpx.get(location)
        assert expired.status_code == 403 and b"AccessDenied" in expired.content

        withdrawn = httpx.delete(f"{base}/v1/me/grants/{w['grant_id']}",
                                 headers={"Authorization": f"Bearer {w['citizen']}"})
        assert withdrawn.status_code == 204
        after = [httpx.get(pdf, params={"delivery": d}, headers=agency, follow_redirects=False)
                 for d in ("redirect", "proxy") * 12]  # a new connection each
        assert [r.status_code for r in after] == [403] * 24
        assert all("location" not in r.headers for r in after)
        # each worker process keeps its own metrics: both refused some of the 24 (before the
        # withdrawal only 2 reads were refused in all), so neither answered from a stale decision
        refused = _refusals_per_worker(base)
        assert len(refused) == 2 and sum(refused.values()) == 2 + 24 and min(refused.values()) > 2, refused
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    verified = subprocess.run([SOHOA, "audit", "verify", "--json"], env=prod_env, capture_output=True, text=True,
                              timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with sa.create_engine(prod_env["SOHOA_DB_URL"]).connect() as conn:
        rows = conn.execute(sa.text("SELECT outcome, details FROM audit_events WHERE action = 'record.download_pdf' "
                                    "ORDER BY seq")).all()
    allowed = [json.loads(d) for o, d in rows if o == "allowed"]
    assert sum(1 for d in allowed if d.get("delivery") == "redirect") == 6 + 1  # every 303 has its entry
    assert [o for o, _ in rows].count("denied") == 2 + 24


def test_no_redirect_without_a_committed_audit_entry(prod_env, monkeypatch):
    """If the audit entry cannot be committed, no presigned URL leaves the server (503)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from ingest.settings import load_settings
    from repository import StorageUnavailable

    w = _world(prod_env)
    app = create_app(load_settings())
    with TestClient(app) as client:
        services = app.state.services
        agency = {"Authorization": f"Bearer {w['agency']}", "Sohoa-Purpose": "1.004227"}
        url = f"/v1/records/{w['mine'].uri}/pdf?delivery=redirect"
        assert client.get(url, headers=agency, follow_redirects=False).status_code == 303

        def database_gone(entries):  # noqa: ANN001, ANN202
            raise StorageUnavailable("audit database unreachable")

        monkeypatch.setattr(services.audit_log, "append", database_gone)
        for delivery in ("redirect", "proxy"):
            refused = client.get(f"/v1/records/{w['mine'].uri}/pdf?delivery={delivery}", headers=agency,
                                 follow_redirects=False)
            assert refused.status_code == 503 and refused.json()["code"] == "storage_unavailable"
            assert "location" not in refused.headers and w["mine"].sha256 not in refused.text
        monkeypatch.undo()
        assert client.get(url, headers=agency, follow_redirects=False).status_code == 303


def test_reads_survive_killed_database_connections(prod_env):
    """The read pool has no pre-ping and keeps prepared statements per connection: when the
    server drops its connections (restart, failover), the next read retries on a fresh one
    (statement prepared again) instead of failing."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from ingest.settings import load_settings

    w = _world(prod_env)
    app = create_app(load_settings())
    with TestClient(app) as client:
        agency = {"Authorization": f"Bearer {w['agency']}", "Sohoa-Purpose": "1.004227"}
        url = f"/v1/records/{w['mine'].uri}/pdf"
        assert [client.get(url, headers=agency).status_code for _ in range(3)] == [200] * 3
        with sa.create_engine(prod_env["SOHOA_DB_URL"], isolation_level="AUTOCOMMIT").connect() as conn:
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert killed >= 2  # the read pool's connection and the audit writer's
        assert [client.get(url, headers=agency).status_code for _ in range(3)] == [200] * 3


def test_batched_reader_views_equal_one_query_each(prod_env):
    """AccessStore.reader_views: the reads that wait together share ONE PostgreSQL query (see
    api.batching); each must still see exactly what its own query would: its record, its
    agency's grant for its purpose, its representative's authorization, as of its own time."""
    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings
    from repository.access import AccessStore, ReaderQuery

    pipeline = Pipeline(load_settings())
    try:
        birth = store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH")
        store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH (cải chính)", uri=birth.uri)
        decision = store_record(pipeline, OWNER_A, "000.00.99.H30", "quyet_dinh", "QUYẾT ĐỊNH")
        residence = store_record(pipeline, OWNER_B, HOME_AGENCY, "xac_nhan_cu_tru", "XÁC NHẬN CƯ TRÚ")
        repo = pipeline.repository
        access = AccessStore(repo.engine)
        ref_a, ref_b, ref_rep = repo.owner_key(OWNER_A), repo.owner_key(OWNER_B), repo.owner_key(REPRESENTATIVE)
        now = datetime.now(timezone.utc)
        access.create_grant(owner_key=ref_a, agency_code=OTHER_AGENCY, purpose="1.004227", basis="consent",
                            valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1), created_by="t")
        access.create_grant(owner_key=ref_a, agency_code=OTHER_AGENCY, purpose="2.000001", basis="legal_basis",
                            legal_reference="Luật Cư trú 2020", doc_type="quyet_dinh",
                            valid_from=now - timedelta(days=3), valid_until=now - timedelta(days=2), created_by="t")
        access.create_authorization(owner_key=ref_b, representative_key=ref_rep, valid_from=now - timedelta(hours=1),
                                    valid_until=now + timedelta(days=1), created_by="t")
        queries = [ReaderQuery(uri, at, agency_code=agency, purpose=purpose, representative_key=rep)
                   for uri in (birth.uri, decision.uri, residence.uri, "urn:sohoa:000.00.12.H29:missing")
                   for at in (now, now - timedelta(days=2, hours=12))
                   for agency, purpose, rep in ((OTHER_AGENCY, "1.004227", None), (OTHER_AGENCY, "2.000001", None),
                                                (None, None, ref_rep), (OTHER_AGENCY, "1.004227", ref_rep))]
        one_each = [access.reader_view(q.uri, at=q.at, agency_code=q.agency_code, purpose=q.purpose,
                                       representative_key=q.representative_key) for q in queries]
        batched = access.reader_views(queries)
        assert batched == one_each
        assert access.reader_views(queries[5:6]) == one_each[5:6]  # alone: the one-request statement
        # not vacuous: current version, grants in and out of their windows, an authorization, a miss
        assert one_each[0].facts.version == 2 and len(one_each[0].grants) == 1
        assert not one_each[4].grants  # the consent did not exist two and a half days ago
        assert (len(one_each[9].grants), len(one_each[13].grants)) == (0, 1)  # the legal basis: expired, then valid
        assert one_each[18].authorizations and not one_each[2].authorizations
        assert one_each[24:] == [None] * 8
        access.close()
    finally:
        pipeline.close()

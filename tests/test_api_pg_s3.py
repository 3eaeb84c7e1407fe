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
from tests.test_api_support import HOME_AGENCY, OTHER_AGENCY, OWNER_A, OWNER_B, init_home, store_record

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
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    init_home(sohoa_home)
    yield {**os.environ, **env}


def serve(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([SOHOA, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sohoa serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
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

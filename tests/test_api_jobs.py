"""Submitting a real scan through the API: job -> status -> result -> signed PDF -> /v1/verify,
plus the submission rules (who may submit, bad owner, idempotency, interrupted jobs)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_api_support import HOME_AGENCY, OFFICER_PASSWORD, OTHER_AGENCY, OWNER_A, bearer, init_home

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "giay_khai_sinh.jpg"


@pytest.fixture
def jobs_env(sohoa_home, monkeypatch):
    from api.app import ApiOptions, create_app
    from ingest.settings import load_settings

    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    init_home(sohoa_home)
    app = create_app(load_settings(), ApiOptions(job_workers=1))
    with TestClient(app) as client:
        yield client, app.state.services


def wait_for(client: TestClient, url: str, headers: dict, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job not finished after {timeout} s")


@pytest.mark.slow
def test_scan_to_verified_record_through_the_api(jobs_env):
    client, services = jobs_env
    services.access.add_user("lan", "officer", OFFICER_PASSWORD)
    assert client.post("/v1/auth/login", json={"username": "lan", "password": OFFICER_PASSWORD}).status_code == 200
    scan = SAMPLE.read_bytes()
    r = client.post("/v1/jobs", files=[("files", (SAMPLE.name, scan, "image/jpeg"))],
                    data={"owner_id": OWNER_A, "doc_type": "giay_khai_sinh"}, headers={"Idempotency-Key": "desk-42"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" and job["status"] in ("queued", "running")
    assert OWNER_A not in r.text and job["owner_ref"] == services.repository.owner_key(OWNER_A)
    # a retry with the same key is the same job, not a second record
    again = client.post("/v1/jobs", files=[("files", (SAMPLE.name, scan, "image/jpeg"))],
                        data={"owner_id": OWNER_A, "doc_type": "giay_khai_sinh"}, headers={"Idempotency-Key": "desk-42"})
    assert again.json()["id"] == job["id"]
    pending = client.get(f"/v1/jobs/{job['id']}/result")
    assert pending.status_code in (200, 409)
    done = wait_for(client, f"/v1/jobs/{job['id']}", {})
    assert done["status"] == "succeeded", done
    result = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert result["uri"].startswith(f"{HOME_AGENCY}.giay_khai_sinh.") and result["version"] == 1
    pdf = client.get(result["pdf_url"])
    assert pdf.status_code == 200 and pdf.headers["etag"] == f'"{result["sha256"]}"'
    record = client.get(result["structured_record_url"]).json()
    assert record["uri"] == result["uri"] and record["doc_type"] == "giay_khai_sinh"
    # the officer's agency converted it, so another agency needs a grant; the owner can read it
    other = bearer(services.access.create_client("BCA", "agency", agency_code=OTHER_AGENCY).secret)
    assert client.get(result["pdf_url"], headers=other).status_code == 403
    citizen = bearer(services.access.create_client("A", "citizen", owner_key=done["owner_ref"]).secret)
    assert client.get(result["pdf_url"], headers=citizen).content == pdf.content
    # verification of the downloaded file, and of a tampered copy
    report = client.post("/v1/verify", files={"file": ("kq.pdf", pdf.content, "application/pdf")}, headers=citizen).json()
    assert report["verdict"] == "TOTAL_PASSED" and len(report["signatures"]) == 2
    tampered = bytearray(pdf.content)
    pos = pdf.content.index(b"stream", len(tampered) // 4) + 200
    tampered[pos] ^= 0x01
    bad = client.post("/v1/verify", files={"file": ("kq.pdf", bytes(tampered), "application/pdf")}, headers=citizen).json()
    assert bad["verdict"] == "TOTAL_FAILED"
    notpdf = client.post("/v1/verify", files={"file": ("x.pdf", b"hello", "application/pdf")}, headers=citizen).json()
    assert notpdf["verdict"] == "TOTAL_FAILED" and notpdf["signatures"] == []
    created = [e for e in services.audit_log.events(limit=100) if e.action == "record.create"]
    assert len(created) == 1 and created[0].record_uri == result["uri"] and created[0].actor == "user:lan"
    assert 'sohoa_jobs_total{status="succeeded"} 1.0' in client.get("/metrics").text


def test_submission_rules(jobs_env):
    client, services = jobs_env
    scan = [("files", (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"))]
    home = bearer(services.access.create_client("intake", "agency", agency_code=HOME_AGENCY).secret)
    foreign = bearer(services.access.create_client("BCA", "agency", agency_code=OTHER_AGENCY).secret)
    citizen = bearer(services.access.create_client("A", "citizen", owner_key=services.repository.owner_key(OWNER_A)).secret)
    for who in (foreign, citizen):
        r = client.post("/v1/jobs", files=scan, data={"owner_id": OWNER_A}, headers=who)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    bad_owner = client.post("/v1/jobs", files=scan, data={"owner_id": "999123456789"}, headers=home)
    assert bad_owner.status_code == 422 and bad_owner.json()["code"] == "invalid_owner"
    assert "999123456789" not in bad_owner.text
    unknown = client.post("/v1/jobs", files=scan, data={"owner_id": OWNER_A, "doc_type": "ho_chieu"}, headers=home)
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_type"
    empty = client.post("/v1/jobs", files=[("files", ("a.jpg", b"", "image/jpeg"))], data={"owner_id": OWNER_A}, headers=home)
    assert empty.status_code == 422 and empty.json()["code"] == "empty"
    assert services.access.get_job is not None and not services.audit_log.events(actions=["job.submit"])
    # a corrupt file becomes a failed job with the loader's stable code
    corrupt = client.post("/v1/jobs", files=[("files", ("c.png", b"\x89PNG\r\n\x1a\n" + b"\0junk" * 40, "image/png"))],
                          data={"owner_id": OWNER_A}, headers=home)
    assert corrupt.status_code == 202
    failed = wait_for(client, corrupt.json()["status_url"], home, timeout=60)
    assert failed["status"] == "failed" and failed["error_code"] == "corrupt", failed
    res = client.get(f"{corrupt.json()['status_url']}/result", headers=home)
    assert res.status_code == 409 and res.json()["code"] == "job_failed"
    # someone else's job looks like no job at all
    assert client.get(corrupt.json()["status_url"], headers=citizen).json()["code"] == "job_not_found"
    assert client.get("/v1/jobs/01JF0000000000000000000000", headers=home).json()["code"] == "job_not_found"


def test_unfinished_jobs_are_marked_interrupted(jobs_env):
    _, services = jobs_env
    ref = services.repository.owner_key(OWNER_A)
    job, created = services.access.create_job(job_id="01JF0000000000000000000001", submitted_by="client:x",
                                              owner_key=ref, files=1, input_bytes=10)
    assert created and job.status == "queued"
    assert services.access.fail_unfinished_jobs() == 1
    after = services.access.get_job(job.id)
    assert after.status == "failed" and after.error_code == "interrupted"
    assert services.access.fail_unfinished_jobs() == 0

"""End to end through the CLI, checked with tools that are not ours (issue #2 "done when").

scan -> `sohoa ingest` -> stored signed PDF/A -> `sohoa get` -> pdfsig / pdftotext / qpdf,
against the local object store and against a real Ceph RADOS Gateway.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signing.devserver import serve_dev_pki
from signing.pki import load_dev_pki
from tests.conftest import free_port, nss_db, pdfsig

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
OWNER = "079203012345"
SAMPLE = ROOT / "samples" / "giay_khai_sinh.jpg"


def run(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([SOHOA, *args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"sohoa {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@pytest.fixture(params=["local", "s3"])
def backend_env(request, tmp_path) -> dict:
    env = dict(os.environ, SOHOA_HOME=str(tmp_path / "home"), OMP_THREAD_LIMIT="1",
               SOHOA_PKI_BASE_URL=f"http://127.0.0.1:{free_port()}")
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        env.update(SOHOA_STORE="s3", SOHOA_S3_ENDPOINT=s3["endpoint"],
                   SOHOA_S3_ACCESS_KEY=s3["access_key"], SOHOA_S3_SECRET_KEY=s3["secret_key"],
                   SOHOA_S3_BUCKET=f"e2e-{tmp_path.name[-12:].lower().replace('_', '-')}")
    env["SOHOA_E2E_BACKEND"] = request.param
    return env


@pytest.mark.slow
def test_scan_to_verified_record(backend_env, tmp_path):
    env = backend_env
    run("init", env=env)
    home = Path(env["SOHOA_HOME"])

    ingested = run("ingest", str(SAMPLE), "--owner", OWNER, "--json", env=env)
    lines = [json.loads(line) for line in ingested.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    rec = lines[0]
    assert {"uri", "sha256", "doc_type", "version"} <= rec.keys()
    assert rec["version"] == 1
    assert rec["doc_type"] == "giay_khai_sinh"

    out = tmp_path / "out.pdf"
    record_json = tmp_path / "record.json"
    run("get", rec["uri"], "-o", str(out), "--record", str(record_json), env=env)
    data = out.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rec["sha256"]

    # The index row and the stored object agree, read without our repository code.
    assert_index_matches_store(env, home, rec)

    # Independent signature check: poppler's pdfsig with the dev root in an NSS database. Like any
    # relying party, NSS asks the certificates' OCSP responder: the dev PKI serves it on loopback.
    nss = nss_db(tmp_path / "nssdb", home / "pki" / "root.pem")
    port = int(env["SOHOA_PKI_BASE_URL"].rsplit(":", 1)[1])
    server = serve_dev_pki(load_dev_pki(home / "pki"), port=port)
    try:
        report = pdfsig(out, nss)
    finally:
        server.stop()
    assert report.count("Signature is Valid.") == 2, report  # officer + agency
    assert report.count("Certificate is Trusted.") == 2, report
    assert "Total document signed" in report or "signed" in report

    # Text layer and the Decree 137 conversion mark.
    text = pdftotext(out)
    assert "GIẤY KHAI SINH" in text.upper()
    assert "chuyển đổi từ văn bản giấy" in text
    assert rec["uri"] in text
    subprocess.run(["qpdf", "--check", str(out)], check=True, capture_output=True)
    stored_record = json.loads(record_json.read_text("utf-8"))
    assert stored_record["uri"] == rec["uri"]
    assert OWNER not in record_json.read_text("utf-8").split('"owner_ref"')[1][:80]

    # Our own verifier agrees, and one flipped byte inside the signed range fails it.
    assert run("verify", str(out), env=env).returncode == 0
    tampered = tmp_path / "tampered.pdf"
    flipped = bytearray(data)
    pos = data.index(b"stream", len(data) // 4) + 200  # inside an image stream, covered by both signatures
    flipped[pos] ^= 0x01
    tampered.write_bytes(bytes(flipped))
    bad = run("verify", str(tampered), "--json", env=env, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    verdicts = [json.loads(line)["verdict"] for line in bad.stdout.splitlines() if line.strip()]
    assert verdicts and all(v == "TOTAL_FAILED" for v in verdicts)
    server = serve_dev_pki(load_dev_pki(home / "pki"), port=port)
    try:
        assert "Signature is Valid." not in pdfsig(tampered, nss)
    finally:
        server.stop()


def assert_index_matches_store(env: dict, home: Path, rec: dict) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{home / 'index.sqlite3'}")
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT b.sha256, b.size, b.object_key FROM versions v "
            "JOIN records r ON r.id = v.record_id JOIN blobs b ON b.sha256 = v.pdf_sha256 "
            "WHERE r.uri = :uri AND v.version = :version"), {"uri": rec["uri"], "version": rec["version"]}).one()
    sha, size, key = row
    assert sha == rec["sha256"]
    if env["SOHOA_E2E_BACKEND"] == "local":
        blob = (home / "store" / "objects" / key).read_bytes()  # local store layout: objects/<key>
    else:
        from minio import Minio
        client = Minio(env["SOHOA_S3_ENDPOINT"], access_key=env["SOHOA_S3_ACCESS_KEY"],
                       secret_key=env["SOHOA_S3_SECRET_KEY"], secure=False)
        resp = client.get_object(env["SOHOA_S3_BUCKET"], key)
        try:
            blob = resp.read()
        finally:
            resp.close()
            resp.release_conn()
    assert len(blob) == size
    assert hashlib.sha256(blob).hexdigest() == sha
    assert OWNER not in key


@pytest.mark.parametrize("name,content,reason", [
    ("empty.jpg", b"", "empty"),
    ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, "corrupt"),
    ("notes.txt", "Đây không phải là ảnh".encode(), "unsupported"),
])
def test_bad_input_is_refused_and_nothing_stored(sohoa_home, tmp_path, name, content, reason):
    env = dict(os.environ, SOHOA_HOME=str(sohoa_home))
    run("init", env=env)
    bad = tmp_path / name
    bad.write_bytes(content)
    proc = run("ingest", str(bad), "--owner", OWNER, env=env, check=False)
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and name in errors[0], proc.stderr
    assert reason in errors[0].lower(), proc.stderr
    assert not any(p.is_file() for p in (sohoa_home / "store").rglob("*"))


def test_already_signed_pdf_is_refused(sohoa_home, tmp_path):
    env = dict(os.environ, SOHOA_HOME=str(sohoa_home))
    run("init", env=env)
    first = run("ingest", str(SAMPLE), "--owner", OWNER, "--json", env=env)
    uri = json.loads(first.stdout.splitlines()[0])["uri"]
    signed = tmp_path / "signed.pdf"
    run("get", uri, "-o", str(signed), env=env)
    objects_before = sorted(p for p in (sohoa_home / "store").rglob("*") if p.is_file())
    proc = run("ingest", str(signed), "--owner", OWNER, env=env, check=False)
    assert proc.returncode == 3
    assert "signed.pdf" in proc.stderr and "signed" in proc.stderr.lower()
    assert sorted(p for p in (sohoa_home / "store").rglob("*") if p.is_file()) == objects_before


def test_invalid_owner_id_is_refused(sohoa_home):
    env = dict(os.environ, SOHOA_HOME=str(sohoa_home))
    run("init", env=env)
    proc = run("ingest", str(SAMPLE), "--owner", "999123456789", env=env, check=False)
    assert proc.returncode == 3
    assert "personal ID" in proc.stderr


def test_commands_need_init(sohoa_home):
    env = dict(os.environ, SOHOA_HOME=str(sohoa_home))
    proc = run("ingest", str(SAMPLE), "--owner", OWNER, env=env, check=False)
    assert proc.returncode == 6
    assert "sohoa init" in proc.stderr


@pytest.mark.slow
def test_demo_is_the_main_job_end_to_end(tmp_path):
    """README's main job (`scripts/demo.sh` = init + demo) on embedded defaults: every sample is
    digitized, stored, fetched back and verified; its record URIs are printed whole and resolve."""
    env = dict(os.environ, SOHOA_HOME=str(tmp_path / "home"), OMP_THREAD_LIMIT="1")
    run("init", "--if-missing", env=env)
    run("init", "--if-missing", env=env)  # idempotent: the README runs it on every demo
    demo = run("demo", env=env)
    samples = sorted(p.name for p in (ROOT / "samples").glob("*.jpg"))
    assert samples and f"verified: {len(samples)}/{len(samples)} passed" in demo.stdout
    uris = [w for w in demo.stdout.split() if w.startswith("000.") and w.count(".") >= 5]
    assert len(uris) == len(samples), demo.stdout
    for name in samples:
        assert name in demo.stdout
    for uri in uris:
        got = run("get", uri, "-o", str(tmp_path / "got.pdf"), env=env)
        assert got.returncode == 0
        verified = run("verify", str(tmp_path / "got.pdf"), "--json", env=env)
        reports = [json.loads(line) for line in verified.stdout.splitlines() if line.strip()]
        assert [r["verdict"] for r in reports] == ["TOTAL_PASSED"] * 2  # officer + agency
        assert all(r["signer"] and r["trusted"] for r in reports)

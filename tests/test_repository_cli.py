"""`sohoa search | export | reconcile | fixity` end to end through the installed ``sohoa`` command.

Records are put in place with the repository API (or, for real signatures, with `sohoa ingest`);
then the maintenance commands run as a user runs them, against a local directory + SQLite and
against Ceph RGW + PostgreSQL, and their outputs are checked: diacritics-free search finds the
record, exported bags validate with the Library of Congress ``bagit`` package, reconcile and
fixity report an object planted, changed or removed behind the repository's back.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import bagit
import pytest

from repository import Repository, StoreRequest, fold
from tests.test_repository_core import CITIZEN, OTHER_CITIZEN, _pg_database, make_request

ROOT = Path(__file__).resolve().parent.parent
SOHOA = str(Path(sys.executable).parent / "sohoa")
SAMPLE = ROOT / "samples" / "giay_khai_sinh.jpg"


@dataclass
class Cli:
    """One initialized SOHOA_HOME and the environment that points the CLI at its storage."""

    env: dict[str, str]
    kind: str  # local-sqlite / s3-pg
    cleanups: list = field(default_factory=list)

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([SOHOA, *args], env=self.env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == expect, f"sohoa {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json_lines(self, *args: str, expect: int = 0) -> list[dict]:
        return [json.loads(line) for line in self.run(*args, expect=expect).stdout.splitlines() if line.strip()]

    def repository(self) -> Repository:
        """The same repository the CLI opens (same settings, same secret)."""
        from ingest.configs import repository_config
        from ingest.settings import load_settings

        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            repo = Repository.open(repository_config(load_settings()))
        finally:
            os.environ.clear()
            os.environ.update(old)
        self.cleanups.append(repo.close)
        return repo

    # behind the repository's back ----------------------------------------------------------------
    def overwrite(self, repo: Repository, key: str, data: bytes) -> None:
        if self.kind == "local-sqlite":
            path = Path(self.env["SOHOA_HOME"]) / "store" / "objects" / key
            path.chmod(0o644)
            path.write_bytes(data)
        else:
            import io

            repo.objects.client.put_object(repo.objects.bucket, key, io.BytesIO(data), len(data))

    def remove(self, repo: Repository, key: str) -> None:
        if self.kind == "local-sqlite":
            (Path(self.env["SOHOA_HOME"]) / "store" / "objects" / key).unlink()
        else:
            repo.objects.client.remove_object(repo.objects.bucket, key)  # a delete marker, as a user would


@pytest.fixture(params=[
    pytest.param("local-sqlite"),
    pytest.param("s3-pg", marks=[pytest.mark.s3, pytest.mark.postgres]),
])
def cli(request, tmp_path) -> Cli:
    env = dict(os.environ, SOHOA_HOME=str(tmp_path / "home"), COLUMNS="250", OMP_THREAD_LIMIT="1")
    env.pop("SOHOA_DB_URL", None)
    if request.param == "s3-pg":
        s3 = request.getfixturevalue("s3_server")
        db_url, drop = _pg_database(request.getfixturevalue("pg_url"))
        request.addfinalizer(drop)
        env.update(SOHOA_STORE="s3", SOHOA_S3_ENDPOINT=s3["endpoint"], SOHOA_S3_ACCESS_KEY=s3["access_key"],
                   SOHOA_S3_SECRET_KEY=s3["secret_key"], SOHOA_S3_BUCKET=f"cli-{uuid.uuid4().hex[:12]}",
                   SOHOA_DB_URL=db_url)
    c = Cli(env=env, kind=request.param)
    c.run("init")
    yield c
    for close in reversed(c.cleanups):
        close()


def test_search_export_reconcile_fixity(cli: Cli, tmp_path: Path):
    repo = cli.repository()
    an = repo.store(make_request(name="Nguyễn Văn An"))
    an2 = repo.store(make_request(an.uri, name="Nguyễn Văn Bình", revision=2))  # a correction
    dao = repo.store(make_request(name="Đặng Thị Đào", owner=OTHER_CITIZEN, doc_type="cccd",
                                  text_body="CĂN CƯỚC CÔNG DÂN Họ và tên: ĐẶNG THỊ ĐÀO Quê quán: Đà Nẵng"))

    # -- search: words without diacritics find the record; filters; bad input --------------------
    hits = cli.json_lines("search", "nguyen van binh", "--json")
    assert [(h["uri"], h["version"], h["status"]) for h in hits] == [(an.uri, 2, "current")]
    assert hits[0]["sha256"] == an2.sha256 and hits[0]["title"] == "Giấy khai sinh - Nguyễn Văn Bình"
    text = cli.run("search", "Nguyễn Văn Bình").stdout
    assert an.uri in text and "1 record(s)" in text
    assert cli.json_lines("search", "nguyen van an", "--json") == []  # the corrected text replaced it
    assert [h["uri"] for h in cli.json_lines("search", "da nang", "--json")] == [dao.uri]
    assert [h["uri"] for h in cli.json_lines("search", "--owner", CITIZEN, "--json")] == [an.uri]
    assert [h["uri"] for h in cli.json_lines("search", "--owner", OTHER_CITIZEN, "--type", "cccd", "--json")] == [dao.uri]
    assert cli.json_lines("search", "--owner", CITIZEN, "--type", "cccd", "--json") == []
    assert "no letters or digits" in cli.run("search", "?!", expect=3).stderr
    assert "--from" in cli.run("search", "an", "--from", "2025-13-40", expect=3).stderr

    # -- export: BagIt packages that the reference implementation validates ----------------------
    bag_dir = tmp_path / "bag-record"
    # two versions x (document.pdf, record.json, manifest.json) + index.json
    assert "exported 7 file(s)" in cli.run("export", "--uri", an.uri, "-o", str(bag_dir), "--all-versions").stdout
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    assert bag.info["External-Identifier"] == an.uri
    for version in (1, 2):
        stored = repo.get(an.uri, version)
        assert (bag_dir / f"data/{an.uri}/v00000{version}/document.pdf").read_bytes() == stored.pdf
        assert (bag_dir / f"data/{an.uri}/v00000{version}/record.json").read_bytes() == stored.record_json
    owner_dir = tmp_path / "bag-owner"
    cli.run("export", "--owner", OTHER_CITIZEN, "-o", str(owner_dir))
    bagit.Bag(str(owner_dir)).validate()
    index = json.loads((owner_dir / "data/index.json").read_text())
    assert [(r["uri"], r["version"]) for r in index["records"]] == [(dao.uri, 1)]
    assert OTHER_CITIZEN not in (owner_dir / "bag-info.txt").read_text()
    unknown = Repository.new_record_uri("000.00.12.H29", "cccd")
    cli.run("export", "--uri", unknown, "-o", str(tmp_path / "bag-none"), expect=4)
    assert not (tmp_path / "bag-none").exists()
    cli.run("export", "--uri", an.uri, "--owner", CITIZEN, "-o", str(tmp_path / "bag-both"), expect=3)
    cli.run("export", "--uri", an.uri, "-o", str(bag_dir), expect=3)  # never over an existing directory

    # -- a clean repository ----------------------------------------------------------------------
    clean = cli.json_lines("reconcile", "--json")[0]
    assert clean["ok"] and clean["untracked"] == clean["missing"] == [] and clean["rows_seen"] == 9
    healthy = cli.json_lines("fixity", "--no-signatures", "--json")[0]
    assert healthy["healthy"] and healthy["checked"] == healthy["ok"] == 6
    assert cli.json_lines("fixity", "--no-signatures", "--sample", "2", "--json")[0]["checked"] == 2

    # -- behind the repository's back: a planted orphan, a changed and a missing object -----------
    orphan = b"%PDF-1.7 left by a crashed writer"
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    orphan_key = f"blobs/sha256/{orphan_sha[:2]}/{orphan_sha[2:4]}/{orphan_sha}"
    repo.objects.put(orphan_key, orphan, sha256=orphan_sha)
    cli.remove(repo, dao.object_key)
    cli.overwrite(repo, an.object_key, b"%PDF-1.7 altered after storage")

    report = cli.json_lines("reconcile", "--json", expect=1)[0]
    assert (report["ok"], report["untracked"], report["missing"]) == (False, [orphan_key], [dao.object_key])
    text = cli.run("reconcile", expect=1).stdout
    assert f"untracked (object without index row): {orphan_key}" in text
    assert f"missing (index row without object): {dao.object_key}" in text
    assert "1 untracked, 1 missing" in text

    sweep = cli.json_lines("fixity", "--no-signatures", "--json", expect=1)[0]
    assert sweep["changed"] == [an.object_key] and sweep["missing"] == [dao.object_key]
    assert sweep["untracked"] == [orphan_key] and sweep["checked"] == 6 and sweep["ok"] == 4
    assert not sweep["healthy"]
    text = cli.run("fixity", "--no-signatures", expect=1).stdout
    assert f"changed: {an.object_key}" in text and f"missing: {dao.object_key}" in text
    assert "PROBLEMS FOUND" in text


@pytest.mark.slow
def test_ingested_record_is_found_without_diacritics_and_fixity_rechecks_signatures(tmp_path):
    """A real signed data message (`sohoa ingest` of a sample scan): the OCR'd name typed without
    diacritics finds it, and `sohoa fixity` re-validates its signatures; a copy whose signed bytes
    were altered before storage (so its SHA-256 matches the index) is reported as a signature
    failure, not as a changed object."""
    env = dict(os.environ, SOHOA_HOME=str(tmp_path / "home"), COLUMNS="250", OMP_THREAD_LIMIT="1")
    env.pop("SOHOA_DB_URL", None)
    cli = Cli(env=env, kind="local-sqlite")
    cli.run("init")
    try:
        rec = cli.json_lines("ingest", str(SAMPLE), "--owner", CITIZEN, "--json")[0]
        record_file = tmp_path / "record.json"
        cli.run("get", rec["uri"], "-o", str(tmp_path / "doc.pdf"), "--record", str(record_file))
        name = json.loads(record_file.read_text())["fields"]["ho_ten"]["value"]
        assert name and fold(name) != name.lower()  # the OCR'd name carries diacritics
        assert rec["uri"] in [h["uri"] for h in cli.json_lines("search", fold(name), "--json")]

        signed = (tmp_path / "doc.pdf").read_bytes()
        broken = bytearray(signed)
        broken[signed.index(b"stream", len(signed) // 4) + 200] ^= 0x01  # inside an image stream, signed
        repo = cli.repository()
        copy_record = json.dumps({**json.loads(record_file.read_text()), "note": "altered copy"}).encode()
        copy = repo.store(StoreRequest(
            uri=Repository.new_record_uri("000.00.12.H29", "giay_khai_sinh"), owner_id=CITIZEN,
            owner_kind="citizen", doc_type="giay_khai_sinh", pdf=bytes(broken), record_json=copy_record,
            fields={}, text="", issuing_agency=None, converting_agency_code="000.00.12.H29", source_sha256s=[],
            pages=1))

        sweep = cli.json_lines("fixity", "--json", expect=1)[0]
        assert sweep["signature_failures"] == [copy.object_key]
        assert sweep["changed"] == sweep["missing"] == sweep["untracked"] == []
        assert sweep["checked"] == 4 and sweep["ok"] == 3  # the real PDF's signatures are intact
        assert f"signature not intact: {copy.object_key}" in cli.run("fixity", expect=1).stdout
    finally:
        for close in reversed(cli.cleanups):
            close()

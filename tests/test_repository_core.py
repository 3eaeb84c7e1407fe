"""Repository behaviour on every backend combination: local directory or Ceph RGW (S3) for
objects, SQLite or PostgreSQL for the index. Real servers only (conftest fixtures)."""
from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pikepdf
import pytest
from sqlalchemy import create_engine, text

from repository.db import normalize_db_url
from repository import (
    IntegrityFailure,
    InvalidRequest,
    ObjectLocked,
    RecordNotFound,
    Repository,
    RepositoryConfig,
    StoreRequest,
)

CITIZEN = "001203004567"
OTHER_CITIZEN = "079188001234"
AGENCY = "000.00.12.H29"
SECRET = b"test-owner-secret-0123456789abcdef"
TITLES = {"giay_khai_sinh": "Giấy khai sinh", "cccd": "Căn cước công dân", "to_khai": "Tờ khai"}


def make_pdf(title: str) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    pdf.docinfo["/Title"] = title
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


@dataclass
class Env:
    repo: Repository
    config: RepositoryConfig
    kind: str  # local / s3
    dialect: str  # sqlite / postgresql
    s3: dict | None = None

    def raw_minio(self):
        from minio import Minio

        assert self.s3 is not None
        return Minio(self.s3["endpoint"], self.s3["access_key"], self.s3["secret_key"], secure=False)

    def overwrite(self, key: str, data: bytes) -> None:
        """Tamper with a stored object behind the repository's back."""
        if self.kind == "local":
            path = Path(self.config.local_dir) / "objects" / key
            path.chmod(0o644)
            path.write_bytes(data)
        else:
            self.raw_minio().put_object(self.config.s3_bucket, key, io.BytesIO(data), len(data))

    def remove(self, key: str) -> None:
        """Make an object disappear behind the repository's back (S3: a delete marker)."""
        if self.kind == "local":
            (Path(self.config.local_dir) / "objects" / key).unlink()
        else:
            self.raw_minio().remove_object(self.config.s3_bucket, key)

    def db_text_dump(self) -> str:
        engine = create_engine(normalize_db_url(self.config.db_url))
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type='table'" if self.dialect == "sqlite"
                else "SELECT tablename FROM pg_tables WHERE schemaname='public'"))]
            dump = []
            for t in tables:
                for row in conn.execute(text(f'SELECT * FROM "{t}"')):
                    dump.append(" ".join(str(v) for v in row))
        engine.dispose()
        return "\n".join(dump)


def _pg_database(pg_url: str) -> tuple[str, callable]:
    name = f"repo_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_db_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return pg_url.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(scope="session")
def repository_pg_db(pg_url):
    """One migrated database per test session; each test starts from empty tables."""
    from repository.db import make_engine, migrate

    url, drop = _pg_database(pg_url)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    drop()


def _truncate_all(db_url: str) -> None:
    engine = create_engine(normalize_db_url(db_url))
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'repository_alembic_version'"))]
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


BACKENDS = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("s3", "sqlite"), id="s3-sqlite", marks=pytest.mark.s3),
    pytest.param(("local", "postgresql"), id="local-pg", marks=pytest.mark.postgres),
    pytest.param(("s3", "postgresql"), id="s3-pg", marks=[pytest.mark.s3, pytest.mark.postgres]),
]


def build_env(request, tmp_path: Path, kind: str, dialect: str, **overrides) -> Env:
    cleanups = []
    if dialect == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'index.db'}"
    else:
        db_url = request.getfixturevalue("repository_pg_db")
        _truncate_all(db_url)
    s3 = None
    if kind == "s3":
        s3 = request.getfixturevalue("s3_server")
        config = RepositoryConfig(
            db_url=db_url, store="s3", s3_endpoint=s3["endpoint"], s3_access_key=s3["access_key"],
            s3_secret_key=s3["secret_key"], s3_bucket=f"repo-{uuid.uuid4().hex[:12]}", owner_secret=SECRET, **overrides,
        )
    else:
        config = RepositoryConfig(db_url=db_url, local_dir=tmp_path / "objects", owner_secret=SECRET, **overrides)
    repo = Repository.open(config)
    env = Env(repo=repo, config=config, kind=kind, dialect=dialect, s3=s3)

    def finish() -> None:
        repo.close()
        for c in cleanups:
            c()

    request.addfinalizer(finish)
    return env


# The whole matrix for the core write/read/search paths; the two "diagonal" combinations
# (local+SQLite, RGW+PostgreSQL) for the rest, which exercise every backend and dialect once.
DIAGONAL = [BACKENDS[0], BACKENDS[3]]


@pytest.fixture(params=BACKENDS)
def env(request, tmp_path) -> Env:
    kind, dialect = request.param
    return build_env(request, tmp_path, kind, dialect)

diagonal = pytest.mark.parametrize("env", DIAGONAL, indirect=True)


def make_request(
    uri: str | None = None,
    *,
    owner: str = CITIZEN,
    doc_type: str = "giay_khai_sinh",
    name: str = "Nguyễn Văn An",
    text_body: str | None = None,
    agency: str | None = "UBND phường Bến Nghé",
    retention_years: int | None = None,
    revision: int = 1,
    **extra,
) -> StoreRequest:
    uri = uri or Repository.new_record_uri(AGENCY, doc_type)
    fields = {"ho_ten": name, "ngay_sinh": "12/03/2019", "noi_sinh": "Quận 1, TP. Hồ Chí Minh"}
    record = {"uri": uri, "doc_type": doc_type, "fields": fields, "revision": revision}
    return StoreRequest(
        uri=uri, owner_id=owner, owner_kind="citizen", doc_type=doc_type,
        pdf=make_pdf(f"{doc_type} {name} rev {revision}"),
        record_json=json.dumps(record, ensure_ascii=False).encode("utf-8"),
        fields=fields,
        text=text_body if text_body is not None else f"GIẤY KHAI SINH\nHọ, chữ đệm, tên: {name}\nNơi sinh: Quận 1",
        issuing_agency=agency, converting_agency_code=AGENCY,
        source_sha256s=[hashlib.sha256(f"scan {uri} {revision}".encode()).hexdigest()],
        pages=1, retention_years=retention_years, title=f"{TITLES.get(doc_type, doc_type)} - {name}", **extra,
    )


# -- store / get / versions -------------------------------------------------------------------
def test_store_then_get_returns_verified_bytes(env: Env):
    req = make_request()
    res = env.repo.store(req)
    assert (res.version, res.status, res.size) == (1, "current", len(req.pdf))
    assert res.sha256 == hashlib.sha256(req.pdf).hexdigest()
    assert res.object_key == f"blobs/sha256/{res.sha256[:2]}/{res.sha256[2:4]}/{res.sha256}"
    assert res.owner_key == env.repo.owner_key(CITIZEN)
    got = env.repo.get(req.uri)
    assert got.pdf == req.pdf and got.record_json == req.record_json
    assert got.result.sha256 == res.sha256
    manifest = json.loads(env.repo.objects.get(res.manifest_key))
    assert manifest["pdf"]["sha256"] == res.sha256 and manifest["version"] == 1
    assert env.repo.fields(req.uri)["ho_ten"] == "Nguyễn Văn An"


def test_same_uri_same_bytes_is_idempotent(env: Env):
    req = make_request()
    first = env.repo.store(req)
    again = env.repo.store(replace(req))
    assert again == first
    assert [v.version for v in env.repo.versions(req.uri)] == [1]
    assert len(list(env.repo.objects.iter_keys("records/"))) == 1
    assert len(list(env.repo.objects.iter_keys("blobs/"))) == 2


def test_correction_creates_new_version_and_keeps_old(env: Env):
    v1 = env.repo.store(make_request(name="Nguyễn Văn An"))
    corrected = make_request(v1.uri, name="Nguyễn Văn Ân", revision=2)
    v2 = env.repo.store(corrected)
    assert (v2.version, v2.status) == (2, "current")
    history = env.repo.versions(v1.uri)
    assert [(h.version, h.status) for h in history] == [(1, "superseded"), (2, "current")]
    assert env.repo.get(v1.uri).pdf == corrected.pdf
    old = env.repo.get(v1.uri, version=1)
    assert old.result.status == "superseded" and old.result.sha256 == v1.sha256
    # re-sending version 1's bytes is recognised, not stored a third time
    assert env.repo.store(make_request(v1.uri, name="Nguyễn Văn An")).version == 1
    with pytest.raises(RecordNotFound):
        env.repo.get(v1.uri, version=3)


@diagonal
def test_get_unknown_record_and_bad_input(env: Env):
    with pytest.raises(RecordNotFound):
        env.repo.get(Repository.new_record_uri(AGENCY, "cccd"))
    with pytest.raises(InvalidRequest):
        env.repo.store(replace(make_request(), pdf=b"not a pdf"))
    with pytest.raises(InvalidRequest):
        env.repo.store(replace(make_request(), owner_id="12345"))
    with pytest.raises(InvalidRequest):
        env.repo.store(replace(make_request(), record_json=b"{broken"))
    first = env.repo.store(make_request())
    with pytest.raises(InvalidRequest, match="another owner"):
        env.repo.store(make_request(first.uri, owner=OTHER_CITIZEN, revision=2))


@diagonal
def test_get_detects_tampered_object(env: Env):
    res = env.repo.store(make_request())
    assert env.repo.read_blob(res.sha256) == env.repo.get(res.uri).pdf
    env.overwrite(res.object_key, b"%PDF-1.7 forged")
    with pytest.raises(IntegrityFailure):
        env.repo.get(res.uri)
    with pytest.raises(IntegrityFailure):
        env.repo.read_blob(res.sha256)


# -- listing and search -----------------------------------------------------------------------
@diagonal
def test_list_records_by_owner_type_agency_and_date(env: Env):
    a = env.repo.store(make_request(doc_type="giay_khai_sinh"))
    b = env.repo.store(make_request(doc_type="giay_chung_nhan_ket_hon", agency="UBND quận 3"))
    c = env.repo.store(make_request(owner=OTHER_CITIZEN, name="Trần Thị Bích"))
    repo = env.repo
    assert {r.uri for r in repo.list_records(owner_id=CITIZEN)} == {a.uri, b.uri}
    assert [r.uri for r in repo.list_records(owner_id=CITIZEN, doc_type="giay_khai_sinh")] == [a.uri]
    assert [r.uri for r in repo.list_records(owner_key=repo.owner_key(OTHER_CITIZEN))] == [c.uri]
    assert [r.uri for r in repo.list_records(issuing_agency="UBND quận 3")] == [b.uri]
    now = datetime.now(timezone.utc)
    assert len(repo.list_records(date_from=now - timedelta(minutes=5), date_to=now + timedelta(minutes=5))) == 3
    assert repo.list_records(date_to=now - timedelta(days=1)) == []
    assert repo.list_records(owner_id="099999999999") == []
    env.repo.store(make_request(a.uri, revision=2))
    assert [(r.version, r.status) for r in repo.list_records(owner_id=CITIZEN, doc_type="giay_khai_sinh")] == [(2, "current")]
    both = repo.list_records(owner_id=CITIZEN, doc_type="giay_khai_sinh", include_superseded=True)
    assert sorted(r.version for r in both) == [1, 2]


def test_search_with_and_without_diacritics(env: Env):
    an = env.repo.store(make_request(name="Nguyễn Văn An"))
    dat = env.repo.store(make_request(name="Đặng Thị Đào", owner=OTHER_CITIZEN, doc_type="cccd",
                                      text_body="CĂN CƯỚC CÔNG DÂN Họ và tên: ĐẶNG THỊ ĐÀO Quê quán: Đà Nẵng"))
    uris = lambda q, **kw: {h.result.uri for h in env.repo.search(q, **kw)}  # noqa: E731
    assert uris("nguyen van an") == {an.uri}
    assert uris("Nguyễn Văn An") == {an.uri}
    assert uris("NGUYEN VAN") == {an.uri}
    assert uris("nguyen va") == set() and uris("nguyen va*") == {an.uri}  # prefix only when asked
    assert uris("dang thi dao") == {dat.uri}
    assert uris("da nang") == {dat.uri}
    assert uris("Đà Nẵng") == {dat.uri}
    assert uris("giay khai sinh") == {an.uri}
    assert uris("ho chi minh") == {an.uri, dat.uri}
    assert uris("ho chi minh", doc_type="cccd") == {dat.uri}
    assert uris("ho chi minh", owner_id=CITIZEN) == {an.uri}
    assert uris("ho chi minh", issuing_agency="UBND phường Bến Nghé") == {an.uri, dat.uri}
    assert uris("khong co ai") == set()
    with pytest.raises(InvalidRequest):
        env.repo.search("  ?! ")
    # a correction replaces the searchable text of the record
    env.repo.store(make_request(an.uri, name="Nguyễn Văn Bình", revision=2))
    assert uris("nguyen van an") == set() and uris("van binh") == {an.uri}


@diagonal
def test_owner_id_never_stored_in_plaintext(env: Env):
    env.repo.store(make_request(dossier_code="000.00.12.H29-250105-0001"))
    keys = list(env.repo.objects.iter_keys(""))
    assert keys and not any(CITIZEN in k for k in keys)
    manifests = [env.repo.objects.get(k) for k in keys if k.startswith("records/")]
    assert manifests and not any(CITIZEN.encode() in m for m in manifests)
    dump = env.db_text_dump()
    assert env.repo.owner_key(CITIZEN) in dump and CITIZEN not in dump
    assert env.repo.reveal_owner_id(env.repo.owner_key(CITIZEN)) == CITIZEN


@diagonal
def test_dossier_groups_components_and_numbered_results(env: Env):
    code = "000.00.12.H29-250105-0001"
    comp = env.repo.store(make_request(doc_type="to_khai", dossier_code=code, dossier_role="component"))
    r1 = env.repo.store(make_request(dossier_code=code))
    r2 = env.repo.store(make_request(doc_type="trich_luc", dossier_code=code))
    grouped = env.repo.dossier(code)
    assert [r.uri for r in grouped["component"]] == [comp.uri]
    assert [r.uri for r in grouped["result"]] == [r1.uri, r2.uri]


@diagonal
def test_dossier_correction_keeps_its_result_number(env: Env):
    code = "000.00.12.H29-250105-0002"
    r1 = env.repo.store(make_request(dossier_code=code))
    r2 = env.repo.store(make_request(doc_type="trich_luc", dossier_code=code))
    env.repo.store(make_request(r1.uri, revision=2, dossier_code=code))  # a correction: same record
    grouped = env.repo.dossier(code)
    assert [(r.uri, r.version) for r in grouped["result"]] == [(r1.uri, 2), (r2.uri, 1)]
    with pytest.raises(RecordNotFound):
        env.repo.dossier("000.00.12.H29-250105-9999")


@diagonal
def test_concurrent_stores_of_a_new_owner_and_of_one_request(env: Env):
    """Writers racing on a brand-new owner, and on the very same request, end with one owner
    row, every distinct record stored once, and one version of the repeated request."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    owner = "038204000111"
    distinct = [make_request(owner=owner, doc_type=t) for t in ("giay_khai_sinh", "cccd", "to_khai", "trich_luc")]
    start = threading.Barrier(len(distinct))

    def store_together(req: StoreRequest):
        start.wait(timeout=30)
        return env.repo.store(req)

    with ThreadPoolExecutor(len(distinct)) as pool:
        stored = list(pool.map(store_together, distinct))
    assert [r.version for r in stored] == [1, 1, 1, 1]
    assert {r.uri for r in env.repo.list_records(owner_id=owner)} == {r.uri for r in distinct}
    assert {r.owner_key for r in stored} == {env.repo.owner_key(owner)}

    same = make_request(owner="038204000222")
    start = threading.Barrier(4)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(store_together, [same] * 4))
    assert {(r.uri, r.version, r.sha256) for r in results} == {(same.uri, 1, results[0].sha256)}
    assert [v.version for v in env.repo.versions(same.uri)] == [1]
    assert len(env.repo.list_records(owner_id="038204000222")) == 1
    assert env.repo.reconcile().ok


# -- maintenance ------------------------------------------------------------------------------
@diagonal
def test_reconcile_finds_orphans_both_ways(env: Env):
    kept = env.repo.store(make_request())
    gone = env.repo.store(make_request(doc_type="cccd"))
    assert env.repo.reconcile().ok
    orphan = b"%PDF-1.7 written by a crashed request"
    digest = hashlib.sha256(orphan).hexdigest()
    orphan_key = f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    env.repo.objects.put(orphan_key, orphan, sha256=digest)
    env.remove(gone.object_key)
    report = env.repo.reconcile()
    assert report.untracked == [orphan_key]
    assert report.missing == [gone.object_key]
    assert kept.object_key not in report.missing


@diagonal
def test_fixity_detects_changed_missing_untracked_and_bad_signature(env: Env):
    a = env.repo.store(make_request())
    b = env.repo.store(make_request(doc_type="cccd"))
    c = env.repo.store(make_request(doc_type="to_khai"))
    clean = env.repo.fixity(check_pdf=lambda pdf: pdf.startswith(b"%PDF-"))
    assert clean.healthy and clean.checked == 6 and clean.ok == 6
    assert env.repo.fixity(sample=2).checked == 2
    env.overwrite(a.object_key, b"%PDF-1.7 altered content")
    env.remove(b.object_key)
    env.repo.objects.put("blobs/sha256/00/00/" + "0" * 64, b"stray", sha256="0" * 64)
    report = env.repo.fixity(check_pdf=lambda pdf: pdf != env.repo.get(c.uri).pdf)
    assert report.changed == [a.object_key]
    assert report.missing == [b.object_key]
    assert report.signature_failures == [c.object_key]
    assert report.untracked == ["blobs/sha256/00/00/" + "0" * 64]
    assert not report.healthy and report.ok == 3


@diagonal
def test_export_bag_checksums_verified_independently(env: Env, tmp_path: Path):
    import bagit

    v1 = env.repo.store(make_request())
    v2 = env.repo.store(make_request(v1.uri, name="Nguyễn Văn Ân", revision=2))
    other = env.repo.store(make_request(doc_type="cccd"))
    bag = env.repo.export_bag(tmp_path / "bag-record", uri=v1.uri, include_superseded=True)
    lines = (bag / "manifest-sha256.txt").read_text().splitlines()
    listed = {path: digest for digest, path in (ln.split("  ", 1) for ln in lines)}
    on_disk = {p.relative_to(bag).as_posix() for p in (bag / "data").rglob("*") if p.is_file()}
    assert set(listed) == on_disk
    for path, digest in listed.items():
        assert hashlib.sha256((bag / path).read_bytes()).hexdigest() == digest
    assert (bag / f"data/{v1.uri}/v000001/document.pdf").read_bytes() == env.repo.get(v1.uri, 1).pdf
    assert hashlib.sha256((bag / f"data/{v1.uri}/v000002/document.pdf").read_bytes()).hexdigest() == v2.sha256
    assert (bag / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    bagit.Bag(str(bag)).validate()  # LoC's reference implementation, independently
    owner_bag = env.repo.export_bag(tmp_path / "bag-owner", owner_id=CITIZEN)
    index = json.loads((owner_bag / "data/index.json").read_text())
    assert sorted((r["uri"], r["version"]) for r in index["records"]) == sorted([(v1.uri, 2), (other.uri, 1)])
    assert CITIZEN not in (owner_bag / "bag-info.txt").read_text()
    bagit.Bag(str(owner_bag)).validate()
    (owner_bag / f"data/{other.uri}/v000001/document.pdf").write_bytes(b"%PDF-1.7 changed")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(owner_bag)).validate()
    with pytest.raises(InvalidRequest):
        env.repo.export_bag(tmp_path / "bag-owner", owner_id=CITIZEN)


# -- retention, legal hold, deletion ----------------------------------------------------------
@diagonal
def test_delete_of_retained_version_is_refused(env: Env):
    locked = env.repo.store(make_request(retention_years=10))
    assert locked.lock_mode == "GOVERNANCE" and locked.retain_until.year == locked.created_at.year + 10
    with pytest.raises(ObjectLocked):
        env.repo.delete_version(locked.uri, 1)
    assert env.repo.get(locked.uri).pdf  # still intact and readable
    assert env.repo.objects.stat(locked.object_key).locked_at(datetime.now(timezone.utc))


@diagonal
def test_unlocked_version_can_be_deleted_and_previous_becomes_current(env: Env):
    v1 = env.repo.store(make_request())
    v2 = env.repo.store(make_request(v1.uri, revision=2))
    env.repo.delete_version(v1.uri, 2)
    assert env.repo.objects.stat(v2.object_key) is None
    assert [(v.version, v.status) for v in env.repo.versions(v1.uri)] == [(1, "current")]
    assert {h.result.uri for h in env.repo.search("nguyen van an")} == {v1.uri}
    assert env.repo.reconcile().ok


@diagonal
def test_legal_hold_blocks_delete_until_lifted(env: Env):
    res = env.repo.store(make_request())
    env.repo.set_legal_hold(res.uri, 1, True)
    assert env.repo.objects.stat(res.object_key).legal_hold
    with pytest.raises(ObjectLocked):
        env.repo.delete_version(res.uri, 1, bypass_governance=True)
    env.repo.set_legal_hold(res.uri, 1, False)
    env.repo.delete_version(res.uri, 1)
    with pytest.raises(RecordNotFound):
        env.repo.get(res.uri)


@diagonal
def test_reopen_runs_migrations_idempotently_and_keeps_data(env: Env):
    res = env.repo.store(make_request())
    env.repo.close()
    again = Repository.open(env.config)
    try:
        assert again.get(res.uri).result.sha256 == res.sha256
        assert again.check()["ok"]
    finally:
        again.close()


# -- S3 / Ceph RGW specifics ------------------------------------------------------------------
@pytest.mark.s3
def test_rgw_bucket_has_versioning_object_lock_and_readable_retention(request, tmp_path):
    env = build_env(request, tmp_path, "s3", "sqlite", lock_mode="COMPLIANCE")
    minio = env.raw_minio()
    assert minio.get_bucket_versioning(env.config.s3_bucket).status == "Enabled"
    assert minio.get_object_lock_config(env.config.s3_bucket) is not None
    res = env.repo.store(make_request(retention_years=1))
    info = env.repo.objects.stat(res.object_key)
    assert info.retention.mode == "COMPLIANCE"
    raw = minio.stat_object(env.config.s3_bucket, res.object_key).metadata
    header = raw["x-amz-object-lock-retain-until-date"]
    assert header.startswith(res.retain_until.strftime("%Y-%m-%dT%H:%M:%S"))
    assert abs((info.retention.until - res.retain_until).total_seconds()) < 1
    # the raw server refuses too, even with governance bypass: COMPLIANCE
    from minio.deleteobjects import DeleteObject

    errors = list(minio.remove_objects(env.config.s3_bucket, [DeleteObject(res.object_key, info.version_id)],
                                       bypass_governance_mode=True))
    assert errors and errors[0].code == "AccessDenied"
    with pytest.raises(ObjectLocked):
        env.repo.delete_version(res.uri, 1, bypass_governance=True)


@pytest.mark.s3
def test_governance_lock_can_be_bypassed_explicitly(request, tmp_path):
    env = build_env(request, tmp_path, "s3", "sqlite")
    res = env.repo.store(make_request(retention_years=1))
    with pytest.raises(ObjectLocked):
        env.repo.delete_version(res.uri, 1)
    env.repo.delete_version(res.uri, 1, bypass_governance=True)
    assert env.repo.objects.stat(res.object_key) is None
    # a per-record COMPLIANCE lock overrides the bucket's GOVERNANCE default: no bypass possible
    strict = env.repo.store(make_request(retention_years=1, lock_mode="COMPLIANCE"))
    assert env.repo.objects.stat(strict.object_key).retention.mode == "COMPLIANCE"
    with pytest.raises(ObjectLocked):
        env.repo.delete_version(strict.uri, 1, bypass_governance=True)
    with pytest.raises(InvalidRequest):
        env.repo.store(make_request(retention_years=1, lock_mode="FOREVER"))

"""Personal signing identities (Circular 01/2023/TT-VPCP Art. 8): each desk officer signs with
their own key, and the stored data message says who digitized it.

Real pieces throughout: the development PKI made by `sohoa init`, keys provisioned the way
`sohoa users add` does it (a dev certificate, an imported PKCS#12, a SoftHSM2 token, a remote
signing service), ``DeskService.confirm``, the record fetched back from the repository and
checked with `sohoa verify --json` and with poppler's pdfsig.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import free_port, nss_db, pdfsig, use_softhsm_conf

SOHOA = str(Path(sys.executable).parent / "sohoa")
AGENCY = "Uỷ ban nhân dân phường Bến Nghé"
OWNER = "079203012345"
PASSWORD = "mat-khau-du-dai-1"
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "giay_khai_sinh.jpg"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One `sohoa init` (dev PKI whose OCSP/CRL URLs point at a free loopback port) for the module,
    and the dev PKI's TSA/OCSP/CRL server on that port (pdfsig asks the OCSP responder)."""
    import cli
    from signing.devserver import serve_dev_pki
    from signing.pki import load_dev_pki

    home = tmp_path_factory.mktemp("officers") / "home"
    port = free_port()
    env = {"SOHOA_HOME": str(home), "SOHOA_PKI_BASE_URL": f"http://127.0.0.1:{port}"}
    result = CliRunner().invoke(cli.app, ["init", "--agency-name", AGENCY], env=env)
    assert result.exit_code == 0, result.output
    server = serve_dev_pki(load_dev_pki(home / "pki"), port=port)
    yield home
    server.stop()


def _settings(home: Path, **overrides):
    from ingest.settings import load_settings
    return load_settings(home=home, **overrides)


def _access(settings):
    from ingest.configs import repository_config
    from repository import Repository
    from repository.access import AccessStore

    repo = Repository.open(repository_config(settings))
    return repo, AccessStore(repo.engine)


def _add_user(settings, login: str, full_name: str | None, reference=None, role: str = "officer") -> None:
    repo, access = _access(settings)
    try:
        access.add_user(login, role, PASSWORD, full_name=full_name,
                        signing_kind=reference.kind if reference else None,
                        signing_ref=reference.ref if reference else None)
    finally:
        repo.close()


def _own_p12(settings, label: str, common_name: str, passphrase: str, **validity) -> bytes:
    """A PKCS#12 as an agency CA would hand it to an officer: their key + certificate, under
    their own passphrase (issued here by the dev CA)."""
    from signing.pki import issue_certificate, load_dev_pki

    pki = load_dev_pki(settings.pki_dir)
    issued = issue_certificate(pki, label, common_name=common_name, organization=AGENCY, **validity)
    key, cert, chain = pkcs12.load_key_and_certificates(issued.read_bytes(), pki.passphrase.encode())
    issued.unlink()
    return pkcs12.serialize_key_and_certificates(
        name=label.encode(), key=key, cert=cert, cas=chain,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode()))


def _ready_draft(svc, officer: str):
    """A received, analysed draft (a fixed analysis: no OCR needed to test signing)."""
    from api.desk.edits import default_pages
    from ocr.types import Analysis, Classification, CleanPage, FieldValue, PageText

    image = np.full((1754, 1240, 3), 255, np.uint8)
    image[200:260, 150:1090] = 30  # something printed on the page
    analysis = Analysis(
        pages=[CleanPage(source="qd.jpg", index=0, archive_image=image, ocr_image=image[:, :, 0], dpi=150.0)],
        texts=[PageText(index=0, width=1240, height=1754, dpi=150.0, text="QUYẾT ĐỊNH\nSố: 12/QĐ-UBND")],
        classification=Classification("quyet_dinh", 0.95),
        fields={"so_van_ban": FieldValue("so_van_ban", "12/QĐ-UBND", "Số: 12/QĐ-UBND", 0.9, page=0,
                                         bbox=(150, 200, 940, 60))})
    draft = svc.store.create(officer=officer, owner_id=OWNER, dossier_code="HS-1",
                             files=[("qd.jpg", SAMPLE.read_bytes())])
    svc.store.save_analysis(draft.id, analysis)
    with svc.store.editing(draft.id) as d:
        d.status, d.stage, d.detected_type = "ready", "ready", "quyet_dinh"
        d.confidence, d.page_count, d.pages = 0.95, 1, default_pages(1)
    return svc.store.get(draft.id)


def _signatures(pdf: bytes) -> dict[str, tuple[str, str, tuple[float, ...]]]:
    """field name -> (signer CN, certificate SHA-256, widget rectangle), read with pyHanko."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf))
    return {s.field_name: (s.signer_cert.subject.native["common_name"], s.signer_cert.sha256.hex(),
                           tuple(float(v) for v in s.sig_field["/Rect"]))
            for s in reader.embedded_signatures}


def _page_size(pdf: bytes) -> tuple[float, float]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    box = PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Kids"][0].get_object()["/MediaBox"]
    return float(box[2]), float(box[3])


def _cert_sha256(reference_json: str) -> str:
    return json.loads(reference_json)["certificate"]["sha256"]


def _stored(settings, uri: str):
    repo, _ = _access(settings)
    try:
        return repo.get(uri)
    finally:
        repo.close()


def _sohoa(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SOHOA, *args], env=dict(os.environ, SOHOA_HOME=str(home)), input=stdin,
                          capture_output=True, text=True, timeout=300)


def _pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


# ---- `sohoa users add` / `users key` -----------------------------------------------------------------
def test_users_add_with_the_dev_pki_and_with_a_given_pkcs12(home, tmp_path, monkeypatch):
    import cli
    from ingest.officers import file_passphrase

    monkeypatch.setenv("SOHOA_HOME", str(home))
    settings = _settings(home)
    runner = CliRunner()

    # a development install: a full name and no key -> a personal certificate from the dev CA
    added = runner.invoke(cli.app, ["users", "add", "lan", "--full-name", " Lê  Thị Lan ", "--password-stdin"],
                          input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "development certificate" in added.output
    users = {u["name"]: u for u in map(json.loads, runner.invoke(cli.app, ["users", "list", "--json"]).stdout.splitlines())}
    lan = users["lan"]
    assert lan["full_name"] == "Lê Thị Lan" and lan["signing_key"]["kind"] == "pkcs12"
    assert lan["signing_key"]["subject"] == "Lê Thị Lan"
    officers = settings.officers_dir
    assert stat.S_IMODE(officers.stat().st_mode) == 0o700
    (stored,) = officers.glob("lan-*.p12")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    key, cert, _ = pkcs12.load_key_and_certificates(stored.read_bytes(),
                                                    file_passphrase(settings, stored.name).encode())
    assert key is not None
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[x509.NameOID.COMMON_NAME] == "Lê Thị Lan"
    assert subject[x509.NameOID.ORGANIZATION_NAME] == AGENCY
    assert "NOT FOR PRODUCTION" in subject[x509.NameOID.ORGANIZATIONAL_UNIT_NAME]
    root = x509.load_pem_x509_certificate((settings.pki_dir / "root.pem").read_bytes())
    assert cert.issuer == root.subject
    assert not list((settings.pki_dir / "issued").glob("officer-lan-*"))  # one copy, under officers/

    # the agency's CA gave Hoà a .p12 with her own passphrase
    p12 = tmp_path / "hoa.p12"
    p12.write_bytes(_own_p12(settings, "hoa-from-ca", "Trần Thị Hoà", "hoa-own-passphrase"))
    added = runner.invoke(cli.app, ["users", "add", "hoa", "--role", "supervisor", "--full-name", "Trần Thị Hoà",
                                    "--signing-key", str(p12), "--password-stdin", "--key-passphrase-stdin"],
                          input=f"{PASSWORD}\nhoa-own-passphrase\n")
    assert added.exit_code == 0, added.output
    (kept,) = officers.glob("hoa-*.p12")
    with pytest.raises(ValueError):  # re-encrypted: her passphrase does not open the kept copy
        pkcs12.load_key_and_certificates(kept.read_bytes(), b"hoa-own-passphrase")
    _, kept_cert, _ = pkcs12.load_key_and_certificates(kept.read_bytes(),
                                                       file_passphrase(settings, kept.name).encode())
    assert kept_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Trần Thị Hoà"
    # no passphrase anywhere in the database (neither hers nor the derived one)
    database = (home / "index.sqlite3").read_bytes()
    assert b"hoa-own-passphrase" not in database
    assert file_passphrase(settings, kept.name).encode() not in database

    # refused keys leave nothing behind: wrong passphrase, expired certificate, two sources
    before = sorted(officers.iterdir())
    wrong = runner.invoke(cli.app, ["users", "add", "x1", "--full-name", "Người Thử", "--signing-key", str(p12),
                                    "--password-stdin", "--key-passphrase-stdin"], input=f"{PASSWORD}\nsai\n")
    assert wrong.exit_code == 3 and "wrong passphrase" in wrong.output
    expired = tmp_path / "expired.p12"
    now = dt.datetime.now(dt.timezone.utc)
    expired.write_bytes(_own_p12(settings, "expired", "Người Hết Hạn", "pw",
                                 not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1)))
    old = runner.invoke(cli.app, ["users", "add", "x2", "--full-name", "Người Hết Hạn", "--signing-key", str(expired),
                                  "--password-stdin", "--key-passphrase-stdin"], input=f"{PASSWORD}\npw\n")
    assert old.exit_code == 3 and "expired" in old.output
    both = runner.invoke(cli.app, ["users", "add", "x3", "--signing-key", str(p12), "--pkcs11-key", "k",
                                   "--password-stdin"], input=PASSWORD + "\n")
    assert both.exit_code == 2
    names = [json.loads(line)["name"] for line in runner.invoke(cli.app, ["users", "list", "--json"]).stdout.splitlines()]
    assert not {"x1", "x2", "x3"} & set(names)
    assert sorted(officers.iterdir()) == before

    # renewing a key replaces the file (the old private key does not linger); plain list unchanged
    renewed = runner.invoke(cli.app, ["users", "key", "lan", "--dev"])
    assert renewed.exit_code == 0, renewed.output
    assert not stored.exists() and len(list(officers.glob("lan-*.p12"))) == 1
    plain = runner.invoke(cli.app, ["users", "list"]).stdout.split()
    assert plain[:3] == ["hoa", "supervisor", "active"] and plain[3:6] == ["lan", "officer", "active"]
    keyless = runner.invoke(cli.app, ["users", "add", "tam", "--password-stdin"], input=PASSWORD + "\n")
    assert keyless.exit_code == 0 and "cannot confirm" in keyless.output


# ---- the desk: two officers, each document signed by its own officer ------------------------------
def test_two_officers_confirm_and_each_record_carries_its_own_signature(home, tmp_path):
    from api.desk.service import DeskService
    from ingest.officers import import_pkcs12, issue_dev_key

    settings = _settings(home)
    an = issue_dev_key(settings, "an", "Nguyễn Văn An")
    binh = import_pkcs12(settings, "binh", _own_p12(settings, "binh-ca", "Phạm Thị Bình", "b-pass"), "b-pass")
    _add_user(settings, "an", "Nguyễn Văn An", an)
    _add_user(settings, "binh", "Phạm Thị Bình", binh)

    svc = DeskService(settings, workers=1)
    try:
        drafts = {"an": _ready_draft(svc, "an"), "binh": _ready_draft(svc, "binh")}
        done = {login: svc.confirm(d.id, login) for login, d in drafts.items()}
    finally:
        svc.close()

    nss = nss_db(tmp_path / "nss", settings.pki_dir / "root.pem")
    agency_sha = None
    for login, full_name, reference in (("an", "Nguyễn Văn An", an), ("binh", "Phạm Thị Bình", binh)):
        outcome = done[login].outcome
        assert outcome is not None and outcome.verdict == "TOTAL_PASSED" and outcome.signatures == 2
        assert (outcome.officer, outcome.officer_name) == (login, full_name)
        got = _stored(settings, outcome.uri)
        pdf_path = tmp_path / f"{login}.pdf"
        pdf_path.write_bytes(got.pdf)

        # pyHanko's view: the officer's OWN certificate top-left, the agency's top-right
        sigs = _signatures(got.pdf)
        assert set(sigs) == {"Sig_officer", "Sig_agency"}
        officer_cn, officer_sha, (ox1, oy1, ox2, oy2) = sigs["Sig_officer"]
        agency_cn, this_agency_sha, (ax1, ay1, ax2, ay2) = sigs["Sig_agency"]
        width, height = _page_size(got.pdf)
        assert officer_cn == full_name and officer_sha == _cert_sha256(reference.ref)
        assert ox2 <= width / 2 and oy1 > height * 0.8  # top-left of page 1
        assert agency_cn == AGENCY and ax1 >= width / 2 and ay1 > height * 0.8  # top-right, unchanged
        agency_sha = agency_sha or this_agency_sha
        assert this_agency_sha == agency_sha  # one agency key for both documents

        # `sohoa verify --json` names the officer and the agency, both passing
        verified = _sohoa(home, "verify", str(pdf_path), "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        rows = {r["field"]: r for r in map(json.loads, verified.stdout.splitlines())}
        assert rows["Sig_officer"]["signer"] == full_name and rows["Sig_officer"]["trusted"]
        assert rows["Sig_agency"]["signer"] == AGENCY and rows["Sig_agency"]["verdict"] == "TOTAL_PASSED"

        # poppler/NSS, independently
        report = pdfsig(pdf_path, nss)
        assert report.count("Signature is Valid.") == 2, report
        assert report.count("Certificate is Trusted.") == 2, report
        first, second = report.split("Signature #2:")
        assert "Sig_officer" in first and f"Signer Certificate Common Name: {full_name}" in first
        assert f"Signer Certificate Common Name: {AGENCY}" in second

        # the conversion mark, the structured record and the receipt name the same person
        assert f"Người thực hiện: {full_name}" in _pdftotext(pdf_path)
        assert json.loads(got.record_json)["conversion"]["officer_name"] == full_name
        receipt = tmp_path / f"{login}-receipt.pdf"
        receipt.write_bytes(svc.store.receipt_path(done[login].id).read_bytes())
        assert full_name in _pdftotext(receipt)
    assert _signatures(tmp_path.joinpath("an.pdf").read_bytes())["Sig_officer"][1] != \
        _signatures(tmp_path.joinpath("binh.pdf").read_bytes())["Sig_officer"][1]


# ---- refusals, at the service and on the pages ------------------------------------------------------
def test_without_a_usable_personal_key_confirming_is_refused_and_explained(home):
    from api.app import ApiOptions, create_app
    from api.desk.service import DeskError
    from ingest.officers import issue_dev_key

    settings = _settings(home)
    _add_user(settings, "chi", None)  # no full name, no key
    dung = issue_dev_key(settings, "dung", "Đặng Văn Dũng")
    _add_user(settings, "dung", "Đặng Văn Dũng", dung)
    em = issue_dev_key(settings, "em", "Lý Thị Em")
    _add_user(settings, "em", "Lý Thị Em", em)
    giang = issue_dev_key(settings, "giang", "Hồ Thị Giang")
    _add_user(settings, "giang", "Hồ Thị Giang", giang, role="supervisor")
    repo, access = _access(settings)
    try:
        access.disable_user("dung")
    finally:
        repo.close()
    (settings.officers_dir / json.loads(em.ref)["file"]).unlink()  # e.g. restored from an old backup

    app = create_app(settings, ApiOptions(rate_per_second=1000, burst=1000))
    with TestClient(app) as client:
        svc = app.state.desk
        for login, code in (("chi", "no_signing_key"), ("dung", "signer_disabled"), ("em", "signing_key_unusable")):
            draft = _ready_draft(svc, login)
            with pytest.raises(DeskError) as err:
                svc.confirm(draft.id, login)
            assert err.value.code == code
            after = svc.store.get(draft.id)
            assert after.status == "ready" and after.record_uri is None and after.outcome is None
            assert svc.signing_problem(login) == code
        assert svc.signing_problem("giang") is None

        # the officer sees why and what to do, in Vietnamese and in English
        chi_draft = next(d for d in svc.store.all() if d.officer == "chi")
        login = client.post("/login", data={"username": "chi", "password": PASSWORD}, follow_redirects=False)
        assert login.status_code == 303
        page = client.get(f"/desk/drafts/{chi_draft.id}?lang=vi")
        assert page.status_code == 200 and 'id="signing-problem"' in page.text
        assert "khoá ký số cá nhân" in page.text and "sohoa users key" in page.text
        english = client.get(f"/desk/drafts/{chi_draft.id}?lang=en")
        assert "personal signing key" in english.text and "Circular 01/2023/TT-VPCP" in english.text
        refused = client.post(f"/desk/drafts/{chi_draft.id}?lang=en", data={
            "action": "confirm", "doc_type": "quyet_dinh", "page": "0:0", "field.so_van_ban": "12/QĐ-UBND"})
        assert refused.status_code == 400 and 'role="alert"' in refused.text
        assert "Your account has no full name or no personal signing key" in refused.text
        assert svc.store.get(chi_draft.id).status == "ready"
        client.post("/logout")

        # the supervisor's queue still works: Giang finishes Chi's document and signs it herself
        client.post("/login", data={"username": "giang", "password": PASSWORD})
        queue = client.get("/desk/review-queue")
        assert queue.status_code == 200 and chi_draft.id in queue.text
        done = client.post(f"/desk/drafts/{chi_draft.id}", data={
            "action": "confirm", "doc_type": "quyet_dinh", "page": "0:0", "field.so_van_ban": "12/QĐ-UBND"},
            follow_redirects=False)
        assert done.status_code == 303
        outcome = svc.store.get(chi_draft.id).outcome
        assert outcome is not None and outcome.officer == "giang" and outcome.verdict == "TOTAL_PASSED"
        result = client.get(f"/desk/drafts/{chi_draft.id}")
        assert "Hồ Thị Giang" in result.text
    sigs = _signatures(_stored(settings, outcome.uri).pdf)
    assert sigs["Sig_officer"][:2] == ("Hồ Thị Giang", _cert_sha256(giang.ref))


# ---- other key sources: a PKCS#11 token shared by two officers, a remote signing service -----------
def test_officer_keys_on_one_pkcs11_token_and_at_a_remote_signer(home, tmp_path, monkeypatch):
    from api.desk.service import DeskService
    from ingest.officers import pkcs11_key, remote_key
    from signing.devserver import serve_remote_signer
    from signing.pki import dev_softhsm_token, issue_certificate, load_dev_pki, softhsm_available

    if not softhsm_available():
        pytest.skip("SoftHSM2 / pkcs11-tool not installed")
    pki = load_dev_pki(home / "pki")
    hai_p12 = issue_certificate(pki, "hai-token", common_name="Vũ Văn Hải", organization=AGENCY)
    khoa_p12 = issue_certificate(pki, "khoa-token", common_name="Đỗ Minh Khoa", organization=AGENCY)
    token = dev_softhsm_token(pki, hai_p12, tmp_path / "hsm", label="officers", key_label="hai", key_id="11")
    dev_softhsm_token(pki, khoa_p12, tmp_path / "hsm", label="officers", key_label="khoa", key_id="12",
                      new_token=False)
    use_softhsm_conf(token.conf, monkeypatch)
    settings = _settings(home, pkcs11_pin=token.pin, pkcs11_module=token.module)
    hai = pkcs11_key(settings, "hai", key_label="hai", token_label="officers")
    khoa = pkcs11_key(settings, "khoa", key_label="khoa", token_label="officers")
    _add_user(settings, "hai", "Vũ Văn Hải", hai)
    _add_user(settings, "khoa", "Đỗ Minh Khoa", khoa)

    long_p12 = issue_certificate(pki, "long-remote", common_name="Mai Văn Long", organization=AGENCY)
    chain = tmp_path / "long.pem"
    cert, _ = pki.load_p12(long_p12)
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + pki.root_pem())
    service = serve_remote_signer(long_p12, pki.passphrase)
    try:
        long_ = remote_key(settings, "long", url=service.base_url + "/sign", cert_path=chain)
        _add_user(settings, "long", "Mai Văn Long", long_)
        svc = DeskService(settings, workers=1)
        try:
            order = ["hai", "khoa", "long", "hai"]  # back to Hải: his token session is taken over again
            done = [svc.confirm(_ready_draft(svc, login).id, login) for login in order]
        finally:
            svc.close()
    finally:
        service.stop()
    expected = {"hai": ("Vũ Văn Hải", hai), "khoa": ("Đỗ Minh Khoa", khoa), "long": ("Mai Văn Long", long_)}
    for login, draft in zip(order, done):
        full_name, reference = expected[login]
        assert draft.outcome is not None and draft.outcome.verdict == "TOTAL_PASSED", draft.outcome
        sigs = _signatures(_stored(settings, draft.outcome.uri).pdf)
        assert sigs["Sig_officer"][:2] == (full_name, _cert_sha256(reference.ref))
        assert sigs["Sig_agency"][0] == AGENCY


# ---- the CLI operator signing as a desk user ------------------------------------------------------------
def test_ingest_signs_as_the_officer_given(home, tmp_path, monkeypatch):
    import cli
    from ingest.officers import issue_dev_key

    monkeypatch.setenv("SOHOA_HOME", str(home))
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    settings = _settings(home)
    nga = issue_dev_key(settings, "nga", "Bùi Thị Nga")
    _add_user(settings, "nga", "Bùi Thị Nga", nga)
    _add_user(settings, "oanh", "Cao Thị Oanh")  # a full name, but no key
    runner = CliRunner()
    unknown = runner.invoke(cli.app, ["ingest", str(SAMPLE), "--owner", OWNER, "--officer", "nobody"])
    assert unknown.exit_code == 4
    keyless = runner.invoke(cli.app, ["ingest", str(SAMPLE), "--owner", OWNER, "--officer", "oanh"])
    assert keyless.exit_code == 3 and "no_signing_key" in keyless.output
    stored = runner.invoke(cli.app, ["ingest", str(SAMPLE), "--owner", OWNER, "--officer", "nga", "--json"])
    assert stored.exit_code == 0, stored.output
    uri = json.loads(stored.stdout.splitlines()[-1])["uri"]
    got = _stored(settings, uri)
    assert _signatures(got.pdf)["Sig_officer"][:2] == ("Bùi Thị Nga", _cert_sha256(nga.ref))
    assert json.loads(got.record_json)["conversion"]["officer_name"] == "Bùi Thị Nga"
    # without --officer: the configured officer (the CLI operator), as before
    default = runner.invoke(cli.app, ["ingest", str(SAMPLE), "--owner", OWNER, "--json", "--type", "giay_khai_sinh"])
    assert default.exit_code == 0, default.output
    got = _stored(settings, json.loads(default.stdout.splitlines()[-1])["uri"])
    assert _signatures(got.pdf)["Sig_officer"][0] == settings.officer_name


def test_bulk_run_signs_as_the_officer_given(home, tmp_path):
    import csv

    from ingest.officers import issue_dev_key

    settings = _settings(home)
    phuc = issue_dev_key(settings, "phuc", "Lương Văn Phúc")
    _add_user(settings, "phuc", "Lương Văn Phúc", phuc)
    src = tmp_path / "box"
    src.mkdir()
    (src / "ks.jpg").write_bytes(SAMPLE.read_bytes())
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,owner_id,doc_type\nks.jpg,{OWNER},giay_khai_sinh\n", "utf-8")
    refused = _sohoa(home, "bulk", "run", str(src), "--manifest", str(manifest), "--officer", "tam-khong-co")
    assert refused.returncode == 4, refused.stderr
    run = _sohoa(home, "bulk", "run", str(src), "--manifest", str(manifest), "--workers", "1", "--plain",
                 "--officer", "phuc")
    assert run.returncode == 0, run.stdout + run.stderr
    run_id = run.stderr.split("bulk run ", 1)[1].split()[0]
    report = tmp_path / "report.csv"
    assert _sohoa(home, "bulk", "report", run_id, "-o", str(report)).returncode == 0
    rows = [r for r in csv.DictReader(report.read_text("utf-8-sig").splitlines()) if r.get("record_uri")]
    assert len(rows) == 1
    got = _stored(settings, rows[0]["record_uri"])
    assert _signatures(got.pdf)["Sig_officer"][:2] == ("Lương Văn Phúc", _cert_sha256(phuc.ref))

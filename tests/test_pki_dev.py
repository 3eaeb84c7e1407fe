"""Dev PKI and its loopback TSA/OCSP/CRL server, checked independently with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.devserver import serve_dev_pki
from signing.pki import (
    NOT_FOR_PRODUCTION,
    DevPki,
    PkiError,
    init_dev_pki,
    issue_certificate,
    load_dev_pki,
    revoke_certificate,
)
from signing.signer import SignerSpec, open_signer
from signing.verify import verify_pdf
from tests.test_sign_pades import (  # noqa: F401 - module-scoped fixtures reused here
    AGENCY,
    AGENCY_BOX,
    OFFICER,
    _free_port,
    dev,
    make_pdf,
    pki,
)


@pytest.fixture(scope="module")
def server(dev):
    return dev[1]


def openssl(*args: str, cwd: Path | None = None) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    return done.stdout + done.stderr


def _pem(pki: DevPki, p12: Path, out: Path) -> Path:
    cert, _ = pki.load_p12(p12)
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def test_certificates_are_labelled_and_point_to_the_dev_server(pki: DevPki):
    root, _ = pki.load_root()
    assert NOT_FOR_PRODUCTION in root.subject.rfc4514_string()
    expected = {"agency": AGENCY, "officer": OFFICER}
    for label, p12 in (("agency", pki.agency_p12), ("officer", pki.officer_p12),
                       ("tsa", pki.tsa_p12), ("ocsp", pki.ocsp_p12)):
        cert, key = pki.load_p12(p12)
        subject = cert.subject
        assert NOT_FOR_PRODUCTION in subject.rfc4514_string(), label
        if label in expected:
            assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == expected[label]
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            assert usage.digital_signature and usage.content_commitment
            assert key.key_size >= 2048  # type: ignore[union-attr]
        if label == "ocsp":  # delegated responder: id-pkix-ocsp-nocheck, no revocation pointers
            assert cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
            continue
        crl_dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert crl_dp[0].full_name[0].value == pki.crl_url
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert pki.ocsp_url in [d.access_location.value for d in aia]
    tsa, _ = pki.load_p12(pki.tsa_p12)
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_chain_verifies_with_openssl(pki: DevPki, tmp_path):
    for p12 in (pki.agency_p12, pki.officer_p12, pki.tsa_p12):
        leaf = _pem(pki, p12, tmp_path / f"{p12.stem}.pem")
        assert f"{leaf}: OK" in openssl("verify", "-CAfile", str(pki.root_cert), str(leaf))


def test_ocsp_good_then_revoked_with_openssl(pki: DevPki, server, tmp_path):
    p12 = issue_certificate(pki, "ocsp-probe", common_name="Phạm Văn Đức")
    leaf = _pem(pki, p12, tmp_path / "probe.pem")
    args = ("ocsp", "-issuer", str(pki.root_cert), "-cert", str(leaf), "-url", server.ocsp_url,
            "-CAfile", str(pki.root_cert))
    good = openssl(*args)
    assert "Response verify OK" in good and f"{leaf}: good" in good, good
    revoke_certificate(pki, p12)
    revoked = openssl(*args)
    assert "Response verify OK" in revoked and f"{leaf}: revoked" in revoked, revoked


def test_crl_is_signed_by_root_and_lists_revoked(pki: DevPki, server, tmp_path):
    p12 = issue_certificate(pki, "crl-probe", common_name="Võ Thị Hằng")
    serial = revoke_certificate(pki, p12)
    crl_file = tmp_path / "root.crl"
    crl_file.write_bytes(httpx.get(server.crl_url, timeout=10).content)
    out = openssl("crl", "-inform", "DER", "-in", str(crl_file), "-CAfile", str(pki.root_cert),
                  "-noout", "-text")
    assert "verify OK" in out, out
    assert f"{serial:X}".lstrip("0") in out.replace(" ", "").upper()


def test_timestamp_token_verifies_with_openssl_ts(pki: DevPki, server, tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes("Văn bản này được chuyển đổi từ văn bản giấy".encode())
    query = tmp_path / "req.tsq"
    openssl("ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query))
    reply = httpx.post(server.tsa_url, content=query.read_bytes(), timeout=10,
                       headers={"Content-Type": "application/timestamp-query"})
    assert reply.headers["Content-Type"] == "application/timestamp-reply"
    (tmp_path / "resp.tsr").write_bytes(reply.content)
    tsa_pem = _pem(pki, pki.tsa_p12, tmp_path / "tsa.pem")
    out = openssl("ts", "-verify", "-data", str(data), "-in", str(tmp_path / "resp.tsr"),
                  "-CAfile", str(pki.root_cert), "-untrusted", str(tsa_pem))
    assert "Verification: OK" in out, out
    bad = httpx.post(server.tsa_url, content=b"\x30\x03\x02\x01\x01", timeout=10)
    assert bad.status_code == 400


def test_load_round_trip_and_clear_errors(pki: DevPki, tmp_path):
    again = load_dev_pki(pki.directory)
    assert again == pki
    with pytest.raises(PkiError, match="no dev PKI"):
        load_dev_pki(tmp_path / "missing")
    with pytest.raises(ValueError, match="http"):
        init_dev_pki(tmp_path / "bad", agency_name="A", officer_name="B", base_url="ftp://x")
    with pytest.raises(ValueError, match="must not be empty"):
        init_dev_pki(tmp_path / "bad", agency_name=" ", officer_name="B")


def test_ecdsa_p256_pki_signs_and_verifies(tmp_path):
    port = _free_port()
    ec_pki = init_dev_pki(tmp_path / "ec", agency_name=AGENCY, officer_name=OFFICER,
                          base_url=f"http://127.0.0.1:{port}", key_type="ec256")
    cert, key = ec_pki.load_p12(ec_pki.agency_p12)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    with serve_dev_pki(ec_pki, port=port) as server:
        with open_signer(SignerSpec(path=str(ec_pki.agency_p12), passphrase=ec_pki.passphrase)) as s:
            signed = s.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, level="B-LT",
                            timestamp_url=server.tsa_url)
        report = verify_pdf(signed, [ec_pki.root_pem()], revocation="hard")
    assert report.passed, report.model_dump_json(indent=1)
    assert report.signatures[0].level == "B-LT"

"""Key sources behind one interface: PKCS#11 token (SoftHSM2) and a remote signing service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signing.devserver import serve_remote_signer
from signing.pki import SOFTHSM_MODULE, DevPki, dev_softhsm_token, softhsm_available
from signing.signer import SignerSpec, SigningError, open_signer
from signing.verify import verify_pdf
from tests.conftest import use_softhsm_conf
from tests.test_sign_pades import (  # noqa: F401 - module-scoped fixtures reused here
    AGENCY,
    AGENCY_BOX,
    AGENCY_LINES,
    dev,
    make_pdf,
    nssdb,
    pdfsig,
    pki,
    tsa_url,
)

TOKEN = "sohoa-test"
USER_PIN = "246810"


def _pem_chain(pki: DevPki, p12: Path, out: Path) -> Path:
    cert, _ = pki.load_p12(p12)
    root, _ = pki.load_root()
    out.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    )
    return out


@pytest.fixture(scope="module")
def softhsm_token(pki: DevPki, tmp_path_factory: pytest.TempPathFactory):
    """A SoftHSM2 token holding the agency key and certificate, in a private SOFTHSM2_CONF."""
    if not softhsm_available(SOFTHSM_MODULE):
        pytest.skip("SoftHSM2 / OpenSC not installed")
    token = dev_softhsm_token(pki, pki.agency_p12, tmp_path_factory.mktemp("softhsm"),
                              label=TOKEN, pin=USER_PIN, key_label="agency")
    previous = os.environ.get("SOFTHSM2_CONF")
    use_softhsm_conf(token.conf)
    yield token.conf.parent
    use_softhsm_conf(Path(previous) if previous else None)


def test_pkcs11_token_signs_b_t_and_verifies(softhsm_token, pki, tsa_url, nssdb, tmp_path):
    spec = SignerSpec(
        kind="pkcs11", pkcs11_module=SOFTHSM_MODULE, token_label=TOKEN, pin=USER_PIN,
        key_label="agency",
    )
    with open_signer(spec) as signer:
        assert signer.subject_name == AGENCY
        signed = [
            signer.sign(make_pdf(text=f"Ho so {i}"), field_name="Sig_Agency", box=AGENCY_BOX,
                        lines=AGENCY_LINES, level="B-T", timestamp_url=tsa_url)
            for i in range(2)
        ]
    for pdf in signed:
        report = verify_pdf(pdf, [pki.root_pem()])
        assert report.passed, report.model_dump_json(indent=1)
        assert report.signatures[0].level == "B-T"
    out = pdfsig(nssdb, signed[1], tmp_path)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out


def test_pkcs11_wrong_pin_or_label_is_a_clear_error(softhsm_token):
    with pytest.raises(SigningError, match="PKCS#11"):
        open_signer(SignerSpec(kind="pkcs11", pkcs11_module=SOFTHSM_MODULE, token_label=TOKEN,
                               pin="000000", key_label="agency"))
    with pytest.raises(SigningError, match="not usable on the token"):
        open_signer(SignerSpec(kind="pkcs11", pkcs11_module=SOFTHSM_MODULE, token_label=TOKEN,
                               pin=USER_PIN, key_label="nobody"))


def test_remote_signing_service_round_trip(pki, tsa_url, nssdb, tmp_path):
    chain = _pem_chain(pki, pki.agency_p12, tmp_path / "agency-chain.pem")
    with serve_remote_signer(pki.agency_p12, pki.passphrase) as service:
        spec = SignerSpec(kind="remote", remote_url=service.base_url + "/sign", cert_path=str(chain))
        with open_signer(spec) as signer:
            signed = signer.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX,
                                 lines=AGENCY_LINES, level="B-T", timestamp_url=tsa_url)
            second = signer.sign(signed, field_name="Sig_Agency_2", box=(339, 700, 559, 750),
                                 lines=AGENCY_LINES)
    report = verify_pdf(second, [pki.root_pem()])
    assert report.passed, report.model_dump_json(indent=1)
    assert [s.level for s in report.signatures] == ["B-T", "B-B"]
    out = pdfsig(nssdb, second, tmp_path)
    assert out.count("Signature is Valid.") == 2 and out.count("Certificate is Trusted.") == 2, out


def test_remote_service_refuses_a_certificate_it_does_not_hold(pki, tmp_path):
    officer_chain = _pem_chain(pki, pki.officer_p12, tmp_path / "officer-chain.pem")
    with serve_remote_signer(pki.agency_p12, pki.passphrase) as service:
        spec = SignerSpec(kind="remote", remote_url=service.base_url + "/sign",
                          cert_path=str(officer_chain))
        with open_signer(spec) as signer, pytest.raises(SigningError, match="HTTP 403"):
            signer.sign(make_pdf(), field_name="S", box=AGENCY_BOX)
    with open_signer(SignerSpec(kind="remote", remote_url="http://127.0.0.1:9/sign",
                                cert_path=str(officer_chain))) as signer:
        with pytest.raises(SigningError, match="unreachable"):
            signer.sign(make_pdf(), field_name="S", box=AGENCY_BOX)


def test_spec_errors_are_clear(pki, tmp_path):
    with pytest.raises(SigningError, match="wrong passphrase"):
        open_signer(SignerSpec(path=str(pki.agency_p12), passphrase="wrong"))
    with pytest.raises(SigningError, match="needs `path`"):
        open_signer(SignerSpec(kind="pkcs12"))
    with pytest.raises(SigningError, match="needs `remote_url`"):
        open_signer(SignerSpec(kind="remote"))
    with pytest.raises(SigningError, match="unknown signer kind"):
        open_signer(SignerSpec(kind="smartcard"))  # type: ignore[arg-type]

"""Development PKI: root CA, agency, officer and TSA certificates, CRL and OCSP.

Everything made here is labelled "NOT FOR PRODUCTION" in the subject (O/OU/CN). Production
deployments sign with certificates issued by the Government Cipher Committee CA or a licensed
public CA; this module exists so that the whole pipeline (sign, timestamp, B-LT revocation data,
verification) can run end-to-end on a laptop and in tests.

Layout of a dev PKI directory::

    pki.json            metadata (names, base URL, key type, passphrase of the dev keys)
    root.pem            root CA certificate (trust anchor to configure in verifiers)
    root.key.pem        root CA private key (PKCS#8, encrypted with the passphrase)
    agency.p12          organization signing certificate + key (+ root)
    officer.p12         scanning officer's personal certificate + key (+ root)
    tsa.p12             RFC 3161 timestamp authority certificate + key (+ root)
    ocsp.p12            delegated OCSP responder certificate (id-pkix-ocsp-nocheck) + key
    issued/<name>.p12   extra certificates from :func:`issue_certificate`
    revoked.json        serial numbers revoked with :func:`revoke_certificate`
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa2048", "rsa3072", "ec256"]
CertRole = Literal["signer", "tsa", "ocsp"]

NOT_FOR_PRODUCTION = "NOT FOR PRODUCTION"
DEV_ORG = f"sohoa development PKI - {NOT_FOR_PRODUCTION}"
DEFAULT_BASE_URL = "http://127.0.0.1:8799"
CRL_PATH = "/crl/root.crl"
OCSP_PATH = "/ocsp"
TSA_PATH = "/tsa"
ROOT_CERT_PATH = "/certs/root.cer"

_META_FILE = "pki.json"
_REVOKED_FILE = "revoked.json"


class PkiError(Exception):
    """A dev PKI directory is missing, incomplete or inconsistent."""


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class DevPki:
    """Paths and settings of a development PKI made by :func:`init_dev_pki`."""

    directory: Path
    root_cert: Path
    agency_p12: Path
    officer_p12: Path
    tsa_p12: Path
    passphrase: str
    base_url: str
    agency_name: str = ""
    officer_name: str = ""
    key_type: KeyType = "rsa2048"
    root_key: Path = field(default=Path())
    ocsp_p12: Path = field(default=Path())

    @property
    def crl_url(self) -> str:
        return self.base_url + CRL_PATH

    @property
    def ocsp_url(self) -> str:
        return self.base_url + OCSP_PATH

    @property
    def tsa_url(self) -> str:
        return self.base_url + TSA_PATH

    def root_pem(self) -> bytes:
        return self.root_cert.read_bytes()

    def load_root(self) -> tuple[x509.Certificate, PrivateKey]:
        """The root CA certificate and its private key."""
        cert = x509.load_pem_x509_certificate(self.root_cert.read_bytes())
        key = serialization.load_pem_private_key(
            self.root_key.read_bytes(), password=self.passphrase.encode()
        )
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise PkiError(f"unsupported root key type: {type(key).__name__}")
        return cert, key

    def load_p12(self, path: Path) -> tuple[x509.Certificate, PrivateKey]:
        """Certificate and key from one of this PKI's PKCS#12 files."""
        return load_p12(path, self.passphrase)

    def is_issued(self, serial: int) -> bool:
        """True if this PKI's root issued the end-entity certificate with that serial."""
        return (self.directory / "certs" / f"{serial:x}.pem").exists()

    def revoked_serials(self) -> dict[int, dt.datetime]:
        """Serial number -> revocation time, as recorded by :func:`revoke_certificate`."""
        path = self.directory / _REVOKED_FILE
        if not path.exists():
            return {}
        raw = json.loads(path.read_text())
        return {int(k): dt.datetime.fromisoformat(v) for k, v in raw.items()}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    bits = {"rsa2048": 2048, "rsa3072": 3072}.get(key_type)
    if bits is None:
        raise ValueError(f"unknown key type {key_type!r}; use rsa2048, rsa3072 or ec256")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str, *, org: str, unit: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org[:64]),
    ]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit[:64]))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))
    return x509.Name(attrs)


def _validation_extensions(
    builder: x509.CertificateBuilder, base_url: str, *, with_ocsp: bool = True
) -> x509.CertificateBuilder:
    crl_dp = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(base_url + CRL_PATH)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )
    ocsp_access = [
        x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(base_url + OCSP_PATH),
        )
    ]
    aia = x509.AuthorityInformationAccess(
        (ocsp_access if with_ocsp else [])
        + [
            x509.AccessDescription(
                x509.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(base_url + ROOT_CERT_PATH),
            ),
        ]
    )
    return builder.add_extension(crl_dp, critical=False).add_extension(aia, critical=False)


def _make_root(key: PrivateKey, now: dt.datetime, years: int) -> x509.Certificate:
    # a per-PKI suffix keeps two dev PKIs on one machine apart (NSS and path builders match by name)
    name = _name(f"sohoa Dev Root CA {secrets.token_hex(3)} - {NOT_FOR_PRODUCTION}", org=DEV_ORG)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _issue(
    *,
    root_cert: x509.Certificate,
    root_key: PrivateKey,
    key: PrivateKey,
    subject: x509.Name,
    role: CertRole,
    base_url: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    with_ocsp: bool = True,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    if role == "ocsp":
        return (
            builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .sign(root_key, hashes.SHA256())
        )
    if role == "tsa":
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    builder = _validation_extensions(builder, base_url, with_ocsp=with_ocsp)
    return builder.sign(root_key, hashes.SHA256())


def _write_p12(
    path: Path,
    *,
    friendly_name: str,
    key: PrivateKey,
    cert: x509.Certificate,
    root_cert: x509.Certificate,
    passphrase: str,
) -> None:
    data = pkcs12.serialize_key_and_certificates(
        name=friendly_name.encode(),
        key=key,
        cert=cert,
        cas=[root_cert],
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode()),
    )
    path.write_bytes(data)
    path.chmod(0o600)


def _record_issued(directory: Path, cert: x509.Certificate) -> None:
    issued = directory / "certs"
    issued.mkdir(exist_ok=True)
    (issued / f"{cert.serial_number:x}.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
    )


def load_p12(path: Path, passphrase: str) -> tuple[x509.Certificate, PrivateKey]:
    """Certificate and private key stored in a PKCS#12 file."""
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase.encode())
    except FileNotFoundError as exc:
        raise PkiError(f"PKCS#12 file not found: {path}") from exc
    except ValueError as exc:
        raise PkiError(f"cannot open PKCS#12 file {path}: wrong passphrase or bad file") from exc
    if cert is None or not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise PkiError(f"{path} does not hold an RSA/EC key with its certificate")
    return cert, key


def init_dev_pki(
    directory: Path,
    *,
    agency_name: str,
    officer_name: str,
    base_url: str = DEFAULT_BASE_URL,
    passphrase: str | None = None,
    key_type: KeyType = "rsa2048",
    validity_days: int = 730,
) -> DevPki:
    """Create a development PKI in ``directory`` (created if needed; existing files replaced).

    ``base_url`` is where :func:`signing.devserver.serve_dev_pki` will listen: the certificates'
    CRL distribution point and OCSP/CA-issuer AIA URLs point there, so B-LT signing and
    revocation checks work against the loopback server.
    """
    if not agency_name.strip() or not officer_name.strip():
        raise ValueError("agency_name and officer_name must not be empty")
    base_url = base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    passphrase = passphrase if passphrase is not None else secrets.token_urlsafe(18)
    now = _utcnow()
    for stale in [*directory.glob("certs/*.pem"), *directory.glob("issued/*.p12")]:
        stale.unlink()  # a new root makes certificates of a previous generation meaningless

    root_key = _new_key(key_type)
    root_cert = _make_root(root_key, now, years=10)
    root_pem = directory / "root.pem"
    root_pem.write_bytes(root_cert.public_bytes(serialization.Encoding.PEM))
    root_key_path = directory / "root.key.pem"
    root_key_path.write_bytes(
        root_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    root_key_path.chmod(0o600)

    unit = f"{NOT_FOR_PRODUCTION} - sohoa dev PKI"
    subjects: dict[str, tuple[x509.Name, CertRole]] = {
        "agency": (_name(agency_name, org=agency_name, unit=unit), "signer"),
        "officer": (_name(officer_name, org=agency_name, unit=unit), "signer"),
        "tsa": (_name(f"sohoa Dev TSA - {NOT_FOR_PRODUCTION}", org=DEV_ORG), "tsa"),
        "ocsp": (_name(f"sohoa Dev OCSP responder - {NOT_FOR_PRODUCTION}", org=DEV_ORG), "ocsp"),
    }
    for label, (subject, role) in subjects.items():
        key = _new_key(key_type)
        cert = _issue(
            root_cert=root_cert, root_key=root_key, key=key, subject=subject, role=role,
            base_url=base_url, not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=validity_days),
        )
        _write_p12(
            directory / f"{label}.p12", friendly_name=label, key=key, cert=cert,
            root_cert=root_cert, passphrase=passphrase,
        )
        _record_issued(directory, cert)
    (directory / _REVOKED_FILE).write_text("{}")
    meta = {
        "agency_name": agency_name,
        "officer_name": officer_name,
        "base_url": base_url,
        "passphrase": passphrase,
        "key_type": key_type,
        "warning": f"Development PKI - {NOT_FOR_PRODUCTION}",
    }
    meta_path = directory / _META_FILE
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    meta_path.chmod(0o600)
    return load_dev_pki(directory)


def load_dev_pki(directory: Path) -> DevPki:
    """Open a PKI directory made by :func:`init_dev_pki`."""
    directory = Path(directory)
    meta_path = directory / _META_FILE
    if not meta_path.exists():
        raise PkiError(f"no dev PKI in {directory} (missing {_META_FILE}); run `sohoa pki init`")
    meta = json.loads(meta_path.read_text())
    pki = DevPki(
        directory=directory,
        root_cert=directory / "root.pem",
        agency_p12=directory / "agency.p12",
        officer_p12=directory / "officer.p12",
        tsa_p12=directory / "tsa.p12",
        passphrase=meta["passphrase"],
        base_url=meta["base_url"],
        agency_name=meta.get("agency_name", ""),
        officer_name=meta.get("officer_name", ""),
        key_type=meta.get("key_type", "rsa2048"),
        root_key=directory / "root.key.pem",
        ocsp_p12=directory / "ocsp.p12",
    )
    missing = [
        p for p in (
            pki.root_cert, pki.root_key, pki.agency_p12, pki.officer_p12, pki.tsa_p12, pki.ocsp_p12
        )
        if not p.exists()
    ]
    if missing:
        raise PkiError(f"dev PKI in {directory} is incomplete: missing {[p.name for p in missing]}")
    return pki


def issue_certificate(
    pki: DevPki,
    label: str,
    *,
    common_name: str,
    organization: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    role: CertRole = "signer",
    with_ocsp: bool = True,
) -> Path:
    """Issue one more certificate from the dev root (e.g. a short-lived or to-be-revoked one).

    ``with_ocsp=False`` leaves the OCSP URL out (revocation status from the CRL only).
    Returns the path of ``issued/<label>.p12`` (same passphrase as the PKI).
    """
    if not label.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"label must be alphanumeric (with - or _), got {label!r}")
    root_cert, root_key = pki.load_root()
    now = _utcnow()
    key = _new_key(pki.key_type)
    subject = _name(
        common_name, org=organization or pki.agency_name or DEV_ORG,
        unit=f"{NOT_FOR_PRODUCTION} - sohoa dev PKI",
    )
    cert = _issue(
        root_cert=root_cert, root_key=root_key, key=key, subject=subject, role=role,
        base_url=pki.base_url, not_before=not_before or now - dt.timedelta(minutes=5),
        not_after=not_after or now + dt.timedelta(days=365), with_ocsp=with_ocsp,
    )
    _record_issued(pki.directory, cert)
    out_dir = pki.directory / "issued"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{label}.p12"
    _write_p12(
        path, friendly_name=label, key=key, cert=cert, root_cert=root_cert,
        passphrase=pki.passphrase,
    )
    return path


def revoke_certificate(
    pki: DevPki,
    cert: x509.Certificate | Path,
    *,
    when: dt.datetime | None = None,
) -> int:
    """Mark a certificate (or the one in a PKCS#12 file) revoked; returns its serial number.

    The dev server's CRL and OCSP answers read this list on every request.
    """
    if isinstance(cert, Path):
        cert, _ = pki.load_p12(cert)
    revoked = pki.revoked_serials()
    revoked[cert.serial_number] = when or _utcnow()
    (pki.directory / _REVOKED_FILE).write_text(
        json.dumps({str(k): v.isoformat() for k, v in revoked.items()}, indent=2)
    )
    return cert.serial_number


def build_crl(pki: DevPki, *, validity: dt.timedelta = dt.timedelta(days=7)) -> bytes:
    """A freshly signed DER CRL of the dev root listing every revoked certificate."""
    root_cert, root_key = pki.load_root()
    now = _utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    for serial, when in sorted(pki.revoked_serials().items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class SoftHsmToken:
    """A SoftHSM2 token holding one dev key + certificate (NOT FOR PRODUCTION).

    SoftHSM2 finds its tokens through the ``SOFTHSM2_CONF`` environment variable: set it to
    ``conf`` (see :meth:`environ`) in the process that opens the token.
    """

    conf: Path
    label: str
    pin: str
    key_label: str
    module: str = SOFTHSM_MODULE

    def environ(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}


def softhsm_available(module: str = SOFTHSM_MODULE) -> bool:
    return Path(module).exists() and all(shutil.which(t) for t in ("softhsm2-util", "pkcs11-tool"))


def dev_softhsm_token(
    pki: DevPki,
    p12: Path,
    directory: Path,
    *,
    label: str = "sohoa-dev",
    pin: str = "246810",
    key_label: str = "agency",
    module: str = SOFTHSM_MODULE,
    key_id: str = "01",
    new_token: bool = True,
) -> SoftHsmToken:
    """Make a SoftHSM2 token in ``directory`` and import the key and certificate of ``p12``
    (softhsm2-util + OpenSC pkcs11-tool); the key is written to disk only transiently.
    ``new_token=False`` adds the key to the existing token ``label`` (give another ``key_id``),
    e.g. several officers' keys on one HSM."""
    if not softhsm_available(module):
        raise PkiError("SoftHSM2 (softhsm2 package) and pkcs11-tool (opensc) are needed")
    (directory / "tokens").mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    cert, key = pki.load_p12(p12)
    key_pem = directory / f"{key_label}.key.pem"
    cert_der = directory / f"{key_label}.der"
    cert_der.write_bytes(cert.public_bytes(serialization.Encoding.DER))

    def run(*args: str) -> None:
        try:
            subprocess.run(args, check=True, env=env, capture_output=True)
        except subprocess.CalledProcessError as exc:
            raise PkiError(f"{args[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from exc

    if new_token:
        run("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
            "--so-pin", secrets.token_hex(4))
    key_pem.touch(mode=0o600)
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    try:
        run("softhsm2-util", "--import", str(key_pem), "--token", label, "--label", key_label,
            "--id", key_id, "--pin", pin)
    finally:
        key_pem.unlink()  # the key now lives only in the token (and the dev PKCS#12)
    run("pkcs11-tool", "--module", module, "--token-label", label, "--login", "--pin", pin,
        "--write-object", str(cert_der), "--type", "cert", "--label", key_label, "--id", key_id)
    return SoftHsmToken(conf=conf, label=label, pin=pin, key_label=key_label, module=module)

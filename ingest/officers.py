"""Who digitizes: the scanning officer's personal signing identity (Circular 01/2023/TT-VPCP Art. 8).

The officer who scans signs each scanned file with their *personal* digital signature, whose
appearance (top-left of page 1) shows that person's name and the scan time. So each desk user
(:class:`repository.access.User`) has a full name and a reference to a personal signing key;
this module turns a user into an :class:`Officer` (login, full name, ``SignerSpec``) for the
pipeline, and provisions the keys. Key sources (the ``signing.signer`` interface):

``pkcs12``
    The given PKCS#12 is opened once with the passphrase the administrator types, checked (a
    private key with its certificate; the certificate in its validity period, for signing, not a
    CA; RSA >= 2048 or EC >= 256 bits) and written again under ``$SOHOA_HOME/officers/``
    (directory 0700, file 0600), encrypted (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC, SHA-256
    MAC) with a passphrase derived from the server secret (HKDF-SHA256 over ``secret.key``, the
    file name as context, so every file has its own). The administrator's passphrase is not
    kept; neither passphrase is stored anywhere: the database holds the file name only. Whoever
    can read both ``secret.key`` and ``officers/`` (i.e. the server account or root) can use the
    keys: server-held keys cannot be protected from the server itself, use a token/HSM for that.
``pkcs11``
    Token label + key label in the database; module and user PIN from the settings
    (``pkcs11_module``, ``pkcs11_pin``), like the agency key's passphrase. The certificate is
    read from the token (or a chain file given at provisioning, copied under ``officers/``).
``remote``
    A signing service URL (``signing.signer.RemoteSigner`` protocol) and the certificate chain,
    copied under ``officers/``.
development
    On a development install (the agency signs with the dev PKI made by ``sohoa init``) a user
    added with a full name and no key gets a certificate from the dev CA (CN = full name,
    O = agency, OU says NOT FOR PRODUCTION) — like the rest of the dev PKI, never for production.

The CLI operator (``sohoa ingest``/``bulk`` without ``--officer``, the API's jobs) keeps the
configured officer (:func:`default_officer`: ``officer_name`` and ``officer_key`` or the dev
PKI's officer certificate).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ingest.configs import signer_spec
from ingest.settings import Settings
from signing.pki import DevPki, PkiError, issue_certificate, load_dev_pki

if TYPE_CHECKING:
    from repository.access import UserInfo
    from signing.signer import SignerSpec

KDF_CONTEXT = b"sohoa officer signing key file v1:"
PKCS12_KDF_ROUNDS = 50_000  # the derived passphrase has 256 bits: rounds only slow loading
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


class OfficerKeyError(Exception):
    """A desk user cannot sign personally. ``code`` (an i18n key at the desk, ``error.<code>``):

    - ``signer_disabled``: the account is disabled;
    - ``no_signing_key``: no full name or no personal signing key yet;
    - ``signing_key_unusable``: the key is configured but cannot be used (file missing, token
      absent, wrong PIN, certificate refused...);
    - ``signing_key_invalid``: at provisioning, the key or certificate given is not acceptable.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Officer:
    """The person who digitizes a document and signs it personally: ``full_name`` is printed in
    the signature appearance, the conversion mark and the receipt; ``spec`` locates their key.
    ``login`` is the desk user (``None``: the configured officer, e.g. the CLI operator)."""

    full_name: str
    spec: SignerSpec
    login: str | None = None

    def __repr__(self) -> str:  # never print passphrases or PINs
        return f"Officer(login={self.login!r}, kind={self.spec.kind!r})"


@dataclass(frozen=True)
class KeyReference:
    """What is stored for a user: ``kind`` and a JSON ``ref`` (no secret), plus the files made
    under ``officers/`` (removed again if storing the reference fails)."""

    kind: str
    ref: str
    subject: str
    not_after: datetime
    files: tuple[Path, ...] = ()

    def discard(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)


# ---- resolving a user -------------------------------------------------------------------------
def default_officer(settings: Settings) -> Officer:
    """The configured officer: ``officer_name`` with ``officer_key`` (or the dev PKI's officer)."""
    return Officer(full_name=settings.officer_name, spec=signer_spec(settings, "officer"))


def officer_for(settings: Settings, user: UserInfo) -> Officer:
    """The officer identity of a desk user, or :class:`OfficerKeyError` saying why not."""
    if user.disabled_at is not None:
        raise OfficerKeyError("signer_disabled", f"user {user.name} is disabled")
    if not user.full_name or not user.signing_kind or not user.signing_ref:
        missing = "full name" if not user.full_name else "personal signing key"
        raise OfficerKeyError("no_signing_key", f"user {user.name} has no {missing}: "
                              f"`sohoa users key {user.name} --full-name ... --signing-key ...`")
    spec = spec_for(settings, user.signing_kind, user.signing_ref)
    if spec.kind == "pkcs12" and not Path(spec.path or "").is_file():
        raise OfficerKeyError("signing_key_unusable", f"the key file of user {user.name} is missing")
    return Officer(full_name=user.full_name, spec=spec, login=user.name)


def officer_by_login(settings: Settings, access: Any, login: str) -> Officer:
    """``access`` is a :class:`repository.access.AccessStore`."""
    user = access.get_user(login)
    if user is None:
        raise OfficerKeyError("no_signing_key", f"no desk user {login!r}")
    return officer_for(settings, user)


def spec_for(settings: Settings, kind: str, ref_json: str) -> SignerSpec:
    """The ``SignerSpec`` of a stored reference (secrets come from the server, not the DB)."""
    try:
        ref = json.loads(ref_json)
        return _spec(settings, kind, ref)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OfficerKeyError("signing_key_unusable", "the stored key reference is malformed") from exc


def _spec(settings: Settings, kind: str, ref: dict[str, Any]) -> SignerSpec:
    from signing.signer import SignerSpec

    home = settings.officers_dir
    for name in (ref.get("file"), ref.get("cert_file")):
        if name is not None and not _plain_file_name(name):
            raise OfficerKeyError("signing_key_unusable", "the stored key reference names a file outside officers/")
    cert = str(home / ref["cert_file"]) if ref.get("cert_file") else None
    if kind == "pkcs12":
        return SignerSpec(kind="pkcs12", path=str(home / ref["file"]),
                          passphrase=file_passphrase(settings, ref["file"]))
    if kind == "pkcs11":
        if settings.pkcs11_pin is None:
            raise OfficerKeyError("signing_key_unusable",
                                  "the PKCS#11 user PIN is not configured (SOHOA_PKCS11_PIN)")
        return SignerSpec(kind="pkcs11", pkcs11_module=settings.pkcs11_module,
                          token_label=ref.get("token_label"), key_label=ref["key_label"],
                          pin=settings.pkcs11_pin, cert_path=cert)
    if kind == "remote":
        return SignerSpec(kind="remote", remote_url=ref["url"], cert_path=cert)
    raise OfficerKeyError("signing_key_unusable", f"unknown signing key kind {kind!r}")


def key_facts(user: UserInfo) -> dict[str, Any] | None:
    """What ``sohoa users list --json`` shows of a user's key: kind, certificate subject,
    SHA-256 fingerprint and end of validity (no path, label or URL)."""
    if not user.signing_kind or not user.signing_ref:
        return None
    try:
        cert = json.loads(user.signing_ref).get("certificate") or {}
    except ValueError:
        cert = {}
    return {"kind": user.signing_kind, "subject": cert.get("subject"), "sha256": cert.get("sha256"),
            "not_after": cert.get("not_after")}


def describe(user: UserInfo) -> str:
    """One line for people: key kind, certificate subject and end of validity."""
    facts = key_facts(user)
    if facts is None:
        return "no personal signing key"
    return f"{facts['kind']}: {facts['subject'] or '?'} until {(facts['not_after'] or '?')[:10]}"


# ---- protecting files on the server -----------------------------------------------------------
def file_passphrase(settings: Settings, file_name: str) -> str:
    """The passphrase of one key file under ``officers/``: HKDF-SHA256 of the server secret with
    the file name as context (256 bits, hex). Computed when needed, never stored."""
    from repository.identity import derive_key

    return derive_key(settings.owner_secret(), KDF_CONTEXT + file_name.encode()).hex()


def _plain_file_name(name: object) -> bool:
    """A stored reference's file name: a plain name directly under ``officers/``."""
    return isinstance(name, str) and Path(name).name == name and not name.startswith(".")


def _private_file(settings: Settings, login: str, suffix: str) -> Path:
    directory = settings.officers_dir
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    stem = _FILE_SAFE.sub("_", login)[:40] or "officer"
    return directory / f"{stem}-{secrets.token_hex(6)}{suffix}"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _protect_pkcs12(settings: Settings, login: str, key: Any, cert: x509.Certificate,
                    chain: list[x509.Certificate]) -> Path:
    path = _private_file(settings, login, ".p12")
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(PKCS12_KDF_ROUNDS)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(file_passphrase(settings, path.name).encode()))
    data = pkcs12.serialize_key_and_certificates(name=login.encode(), key=key, cert=cert,
                                                 cas=chain or None, encryption_algorithm=encryption)
    _write_private(path, data)
    return path


def discard_files(settings: Settings, kind: str | None, ref_json: str | None) -> None:
    """Remove the files a replaced reference pointed to (an old private key must not linger)."""
    if not kind or not ref_json:
        return
    try:
        ref = json.loads(ref_json)
    except ValueError:
        return
    for name in (ref.get("file"), ref.get("cert_file")):
        if name and _plain_file_name(name):
            (settings.officers_dir / name).unlink(missing_ok=True)


# ---- checking certificates ----------------------------------------------------------------------
def check_certificate(cert: x509.Certificate, at: datetime | None = None) -> None:
    """A personal signing certificate Circular 15/2025/TT-BKHCN accepts, valid now."""
    now = at or datetime.now(timezone.utc)
    if now < cert.not_valid_before_utc:
        raise OfficerKeyError("signing_key_invalid",
                              f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if now >= cert.not_valid_after_utc:
        raise OfficerKeyError("signing_key_invalid",
                              f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise OfficerKeyError("signing_key_invalid", "this is a CA certificate, not a personal one")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            raise OfficerKeyError("signing_key_invalid",
                                  "the certificate's key usage allows neither digitalSignature nor nonRepudiation")
    except x509.ExtensionNotFound:
        pass
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise OfficerKeyError("signing_key_invalid", f"RSA key of {key.key_size} bits (at least 2048)")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        raise OfficerKeyError("signing_key_invalid", f"EC key of {key.curve.key_size} bits (at least 256)")
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise OfficerKeyError("signing_key_invalid", "only RSA and ECDSA keys are accepted")


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _summary(cert: x509.Certificate) -> dict[str, str]:
    return {"subject": common_name(cert),
            "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def _reference(kind: str, ref: dict[str, Any], cert: x509.Certificate,
               files: tuple[Path, ...]) -> KeyReference:
    ref = {**ref, "certificate": _summary(cert)}
    return KeyReference(kind=kind, ref=json.dumps(ref, ensure_ascii=False, sort_keys=True),
                        subject=common_name(cert), not_after=cert.not_valid_after_utc, files=files)


def _load_chain_file(path: Path) -> tuple[list[x509.Certificate], bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OfficerKeyError("signing_key_invalid", f"cannot read {path.name}: {exc.strerror}") from exc
    try:
        certs = (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                 else [x509.load_der_x509_certificate(data)])
    except ValueError as exc:
        raise OfficerKeyError("signing_key_invalid", f"{path.name} holds no PEM/DER certificate") from exc
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return certs, pem


# ---- provisioning ---------------------------------------------------------------------------------
def import_pkcs12(settings: Settings, login: str, data: bytes, passphrase: str | None) -> KeyReference:
    """Check a PKCS#12 (key + personal certificate) and keep it under ``officers/``, encrypted
    with a key derived from the server secret (see the module docstring)."""
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(
            data, passphrase.encode() if passphrase is not None else None)
    except ValueError as exc:
        raise OfficerKeyError("signing_key_invalid",
                              "cannot open the PKCS#12 file: wrong passphrase or not a PKCS#12 file") from exc
    if key is None or cert is None:
        raise OfficerKeyError("signing_key_invalid", "the PKCS#12 file must hold a private key and its certificate")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise OfficerKeyError("signing_key_invalid", "only RSA and ECDSA keys are accepted")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise OfficerKeyError("signing_key_invalid", "the private key does not match the certificate")
    check_certificate(cert)
    path = _protect_pkcs12(settings, login, key, cert, list(chain))
    return _reference("pkcs12", {"file": path.name}, cert, (path,))


def dev_pki_in_use(settings: Settings) -> DevPki | None:
    """The development PKI, when this install signs with it (no agency key configured)."""
    if settings.agency_key is not None:
        return None
    try:
        return load_dev_pki(settings.pki_dir)
    except PkiError:
        return None


def issue_dev_key(settings: Settings, login: str, full_name: str) -> KeyReference:
    """A personal certificate from the development CA (CN = full name, O = agency), kept like
    an imported PKCS#12. NOT FOR PRODUCTION, like the rest of the dev PKI."""
    pki = dev_pki_in_use(settings)
    if pki is None:
        raise OfficerKeyError("signing_key_invalid",
                              "no development PKI in use: give the officer's own key "
                              "(--signing-key, --pkcs11-key or --remote-signer)")
    label = f"officer-{_FILE_SAFE.sub('_', login)[:40]}-{secrets.token_hex(4)}"
    issued = issue_certificate(pki, label, common_name=full_name, organization=settings.agency_name)
    try:
        return import_pkcs12(settings, login, issued.read_bytes(), pki.passphrase)
    finally:
        issued.unlink(missing_ok=True)  # kept once, under officers/ (its certificate stays in certs/)


def pkcs11_key(settings: Settings, login: str, *, key_label: str, token_label: str | None = None,
               cert_path: Path | None = None) -> KeyReference:
    """A key on a PKCS#11 token/HSM (module and PIN from the settings); opened once to check it."""
    files: tuple[Path, ...] = ()
    ref: dict[str, Any] = {"key_label": key_label, "token_label": token_label}
    if cert_path is not None:
        _, pem = _load_chain_file(cert_path)
        target = _private_file(settings, login, ".pem")
        _write_private(target, pem)
        files, ref["cert_file"] = (target,), target.name
    try:
        reference_cert = _open_and_read_certificate(spec_for(settings, "pkcs11", json.dumps(ref)))
        check_certificate(reference_cert)
    except BaseException:
        for f in files:
            f.unlink(missing_ok=True)
        raise
    return _reference("pkcs11", ref, reference_cert, files)


def remote_key(settings: Settings, login: str, *, url: str, cert_path: Path) -> KeyReference:
    """A key held by a remote signing service; its certificate chain is copied under ``officers/``."""
    if not url.startswith(("https://", "http://")):
        raise OfficerKeyError("signing_key_invalid", "the remote signer URL must be http(s)")
    certs, pem = _load_chain_file(cert_path)
    check_certificate(certs[0])
    target = _private_file(settings, login, ".pem")
    _write_private(target, pem)
    return _reference("remote", {"url": url, "cert_file": target.name}, certs[0], (target,))


def _open_and_read_certificate(spec: SignerSpec) -> x509.Certificate:
    from signing.signer import SigningError, open_signer

    try:
        with open_signer(spec) as signer:
            return x509.load_der_x509_certificate(signer.certificate_der)
    except SigningError as exc:
        raise OfficerKeyError("signing_key_invalid", str(exc)) from exc


__all__ = ["KeyReference", "Officer", "OfficerKeyError", "check_certificate", "default_officer",
           "describe", "dev_pki_in_use", "key_facts", "discard_files", "file_passphrase", "import_pkcs12",
           "issue_dev_key", "officer_by_login", "officer_for", "pkcs11_key", "remote_key", "spec_for"]

"""Loopback services for the development PKI: RFC 3161 TSA, OCSP responder, CRL, CA certificate.

    handle = serve_dev_pki(pki)             # in-process, background thread
    handle.tsa_url, handle.ocsp_url, handle.crl_url
    handle.stop()

Routes (relative to the server's base URL, same paths as baked into the dev certificates):

    POST /tsa              application/timestamp-query  -> application/timestamp-reply
    POST /ocsp             application/ocsp-request     -> application/ocsp-response
    GET  /ocsp/<base64>    (RFC 6960 GET form)
    GET  /crl/root.crl     DER CRL, freshly signed, lists revoked certificates
    GET  /certs/root.cer   DER root certificate

Also :func:`serve_remote_signer`, a loopback remote-signing service for
:class:`signing.signer.RemoteSigner`, and :func:`local_timestamper`, the same TSA in-process.

All of this is for development and tests only ("NOT FOR PRODUCTION").
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import cms, keys as asn1_keys, tsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils as asym_utils
from cryptography.x509 import ocsp
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps.api import TimeStamper

from signing.pki import (
    CRL_PATH,
    OCSP_PATH,
    ROOT_CERT_PATH,
    TSA_PATH,
    DevPki,
    PrivateKey,
    build_crl,
    load_p12,
)

log = logging.getLogger(__name__)

_MAX_BODY = 1 << 20
_OCSP_VALIDITY = dt.timedelta(hours=12)
_CRL_VALIDITY = dt.timedelta(days=7)


def _to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# "sohoa development TSA policy" (arbitrary private OID arc used only by the dev PKI)
DEV_TSA_POLICY = "1.3.6.1.4.1.55555.1.1"


class DevTimeStamper(TimeStamper):
    """An RFC 3161 time-stamping authority signing with the dev TSA key (kept parsed in memory).

    Used in-process (as a pyHanko ``TimeStamper``) and behind ``POST /tsa`` of the dev server.
    Tokens carry ESS signing-certificate-v2 (RFC 5816) and echo the request nonce.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: PrivateKey,
        chain: list[x509.Certificate],
    ):
        super().__init__()
        self._cert = _to_asn1_cert(tsa_cert)
        self._chain = [_to_asn1_cert(c) for c in chain]
        self._key = tsa_key
        self._lock = threading.Lock()

    def _sign(self, data: bytes) -> tuple[bytes, str]:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"

    def request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        now = dt.datetime.now(dt.timezone.utc)
        tst_fields: dict[str, object] = {
            "version": "v1",
            "policy": DEV_TSA_POLICY,
            "message_imprint": req["message_imprint"],
            "serial_number": secrets.randbits(63),
            "gen_time": now,
            "accuracy": {"seconds": 1},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self._cert.subject),
        }
        if req["nonce"].native is not None:
            tst_fields["nonce"] = req["nonce"]
        tst_info = tsp.TSTInfo(tst_fields).dump()
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": now})),
                simple_cms_attribute("message_digest", hashlib.sha256(tst_info).digest()),
                simple_cms_attribute(
                    "signing_certificate_v2", as_signing_certificate_v2(self._cert, "sha256")
                ),
            ]
        )
        with self._lock:
            signature, sig_algo = self._sign(signed_attrs.dump())
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": {
                    "issuer_and_serial_number": {
                        "issuer": self._cert.issuer,
                        "serial_number": self._cert.serial_number,
                    }
                },
                "digest_algorithm": {"algorithm": "sha256"},
                "signature_algorithm": {"algorithm": sig_algo},
                "signed_attrs": signed_attrs,
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": cms.ParsableOctetString(tst_info),
                },
                "certificates": [self._cert, *self._chain],
                "signer_infos": [signer_info],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return self.request_tsa_response(req)


def local_timestamper(pki: DevPki) -> DevTimeStamper:
    """The dev TSA as an in-process pyHanko ``TimeStamper`` (no HTTP round trip)."""
    tsa_cert, tsa_key = pki.load_p12(pki.tsa_p12)
    root_cert, _ = pki.load_root()
    return DevTimeStamper(tsa_cert, tsa_key, [root_cert])


@dataclass
class _Responder:
    """Stateless-per-request answers for the dev PKI (revocation list read on every request)."""

    pki: DevPki
    root_cert: x509.Certificate
    responder_cert: x509.Certificate
    responder_key: PrivateKey
    timestamper: DevTimeStamper
    ocsp_validity: dt.timedelta | None = _OCSP_VALIDITY
    crl_validity: dt.timedelta = _CRL_VALIDITY
    root_der: bytes = field(init=False)
    issuer_key_hashes: set[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.root_der = self.root_cert.public_bytes(serialization.Encoding.DER)
        spki = self.root_cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # issuer key hash = hash of the BIT STRING content of subjectPublicKey
        bitstring = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
        self.issuer_key_hashes = {
            hashlib.new(name, bitstring).digest() for name in ("sha1", "sha256")
        }

    def timestamp(self, body: bytes) -> bytes:
        req = tsp.TimeStampReq.load(body)
        req.native  # noqa: B018 - forces a full parse so malformed requests fail here
        return self.timestamper.request_tsa_response(req).dump()

    def ocsp(self, body: bytes) -> bytes:
        try:
            req = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            ).public_bytes(serialization.Encoding.DER)
        if req.issuer_key_hash not in self.issuer_key_hashes:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        now = dt.datetime.now(dt.timezone.utc)
        revoked = self.pki.revoked_serials()
        serial = req.serial_number
        revocation_time = None
        revocation_reason = None
        if serial in revoked:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = revoked[serial]
            revocation_reason = x509.ReasonFlags.key_compromise
        elif self.pki.is_issued(serial):
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=req.issuer_name_hash,
                issuer_key_hash=req.issuer_key_hash,
                serial_number=serial,
                algorithm=req.hash_algorithm,
                cert_status=status,
                this_update=now - dt.timedelta(seconds=30),
                next_update=None if self.ocsp_validity is None else now + self.ocsp_validity,
                revocation_time=revocation_time,
                revocation_reason=revocation_reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder_cert)
            .certificates([self.responder_cert])
        )
        nonce = _ocsp_nonce(req)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(self.responder_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    def crl(self) -> bytes:
        return build_crl(self.pki, validity=self.crl_validity)


def _ocsp_nonce(req: ocsp.OCSPRequest) -> bytes | None:
    try:
        return req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _make_handler(responder: _Responder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sohoa-dev-pki/1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("dev-pki %s", format % args)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > _MAX_BODY:
                self._send(400, b"missing or oversized body", "text/plain")
                return None
            return self.rfile.read(length)

        def do_GET(self) -> None:  # noqa: N802
            path = urllib.parse.urlsplit(self.path).path
            if path == CRL_PATH:
                self._send(200, responder.crl(), "application/pkix-crl")
            elif path == ROOT_CERT_PATH:
                self._send(200, responder.root_der, "application/pkix-cert")
            elif path.startswith(OCSP_PATH + "/"):
                raw = urllib.parse.unquote(path[len(OCSP_PATH) + 1 :])
                try:
                    body = base64.b64decode(raw, validate=False)
                except binascii.Error:
                    self._send(400, b"bad base64", "text/plain")
                    return
                self._send(200, responder.ocsp(body), "application/ocsp-response")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            path = urllib.parse.urlsplit(self.path).path
            if path not in (TSA_PATH, OCSP_PATH):
                self._send(404, b"not found", "text/plain")
                return
            body = self._body()
            if body is None:
                return
            if path == TSA_PATH:
                try:
                    answer = responder.timestamp(body)
                except (ValueError, TypeError):
                    self._send(400, b"malformed timestamp request", "text/plain")
                    return
                self._send(200, answer, "application/timestamp-reply")
            else:
                self._send(200, responder.ocsp(body), "application/ocsp-response")

    return Handler


@dataclass
class ServerHandle:
    """A running loopback server; ``stop()`` shuts it down and joins its thread."""

    base_url: str
    _server: ThreadingHTTPServer
    _thread: threading.Thread

    @property
    def tsa_url(self) -> str:
        return self.base_url + TSA_PATH

    @property
    def ocsp_url(self) -> str:
        return self.base_url + OCSP_PATH

    @property
    def crl_url(self) -> str:
        return self.base_url + CRL_PATH

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (for the CLI)."""
        try:
            self._thread.join()
        except KeyboardInterrupt:
            self.stop()


def _start(handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str) -> ServerHandle:
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return ServerHandle(base_url=f"http://{bound_host}:{bound_port}", _server=server, _thread=thread)


def serve_dev_pki(
    pki: DevPki,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ocsp_validity: dt.timedelta | None = _OCSP_VALIDITY,
    crl_validity: dt.timedelta = _CRL_VALIDITY,
) -> ServerHandle:
    """Start the TSA/OCSP/CRL server for ``pki`` in a background thread.

    ``port=0`` picks a free port. The dev certificates point to ``pki.base_url``: for B-LT
    signing and online revocation checks, serve on that host/port (the CLI does).
    OCSP answers are valid from 30 s ago until ``ocsp_validity`` from now (``None``: no
    nextUpdate); CRLs until ``crl_validity`` from now.
    """
    root_cert, _ = pki.load_root()
    responder_cert, responder_key = pki.load_p12(pki.ocsp_p12)
    responder = _Responder(
        pki=pki,
        root_cert=root_cert,
        responder_cert=responder_cert,
        responder_key=responder_key,
        timestamper=local_timestamper(pki),
        ocsp_validity=ocsp_validity,
        crl_validity=crl_validity,
    )
    return _start(_make_handler(responder), host, port, "sohoa-dev-pki")


def port_of(base_url: str) -> int:
    """The TCP port of an http(s) base URL (default ports applied)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.port:
        return parts.port
    return 443 if parts.scheme == "https" else 80


# -- remote signing service (loopback) ------------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _sign_digest(key: PrivateKey, request: dict) -> bytes:
    algo_name = str(request.get("digest_algorithm", ""))
    if algo_name not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algo_name!r}")
    algo = _HASHES[algo_name]()
    digest = base64.b64decode(str(request.get("digest", "")), validate=True)
    if len(digest) != algo.digest_size:
        raise ValueError("digest length does not match digest_algorithm")
    prehashed = asym_utils.Prehashed(algo)
    sig_algo = request.get("signature_algorithm")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if sig_algo != "ecdsa":
            raise ValueError("EC key can only do ecdsa")
        return key.sign(digest, ec.ECDSA(prehashed))
    assert isinstance(key, rsa.RSAPrivateKey)
    if sig_algo == "rsassa_pss":
        salt = int(request.get("pss_salt_length") or algo.digest_size)
        pss = padding.PSS(mgf=padding.MGF1(algo), salt_length=salt)
        return key.sign(digest, pss, prehashed)
    if sig_algo == "rsassa_pkcs1v15":
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    raise ValueError(f"unsupported signature algorithm {sig_algo!r}")


def serve_remote_signer(
    p12_path: Path, passphrase: str, host: str = "127.0.0.1", port: int = 0
) -> ServerHandle:
    """A loopback remote-signing service holding the key of ``p12_path``.

    Speaks the JSON protocol of :class:`signing.signer.RemoteSigner` at ``POST /sign``
    (the handle's ``base_url + "/sign"``). It refuses requests for another certificate.
    """
    cert, key = load_p12(Path(p12_path), passphrase)
    key_id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    class Handler(BaseHTTPRequestHandler):
        server_version = "sohoa-dev-remote-signer/1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("dev-remote-signer %s", format % args)

        def _json(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            if urllib.parse.urlsplit(self.path).path != "/sign":
                self._json(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > _MAX_BODY:
                self._json(400, {"error": "missing or oversized body"})
                return
            try:
                request = json.loads(self.rfile.read(length))
                if request.get("key_id") not in (None, key_id):
                    self._json(403, {"error": "unknown key_id"})
                    return
                signature = _sign_digest(key, request)
            except (ValueError, TypeError, binascii.Error) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"signature": base64.b64encode(signature).decode()})

    return _start(Handler, host, port, "sohoa-dev-remote-signer")


__all__ = [
    "DEV_TSA_POLICY",
    "DevTimeStamper",
    "ServerHandle",
    "local_timestamper",
    "port_of",
    "serve_dev_pki",
    "serve_remote_signer",
]

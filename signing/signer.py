"""PAdES signing of PDF(/A) files: one interface over PKCS#12, PKCS#11 and remote key sources.

Usage::

    signer = open_signer(SignerSpec(kind="pkcs12", path="agency.p12", passphrase="..."))
    signed = signer.sign(pdf_bytes, field_name="Sig_Agency", box=(400, 760, 580, 820),
                         lines=["Ký bởi: UBND phường Bến Nghé", "Thời gian: 2026-11-23T09:15:02+07:00"],
                         level="B-T", timestamp_url="http://127.0.0.1:8799/tsa")

A :class:`PdfSigner` keeps the key (and PKCS#11 session / HTTP connections) open, reuses one
event loop, one validation context (fetched OCSP/CRL answers are cached between documents) and
remembers the signature size per level, so signing a batch does no per-document setup and no
dry-run signature.

Each call appends one signature as an incremental update, so the output of one call can be signed
again (officer first, organization second) and PDF/A conformance of the input is kept: the
visible appearance uses an embedded subset of a TrueType font that covers Vietnamese.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import io
import logging
import os
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import httpx
from asn1crypto import algos, cms, pem, tsp, x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import (
    CIDFontType2,
    GlyphAccumulator,
    GlyphAccumulatorFactory,
)
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import attributes, fields, signers, timestamps
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore, SimpleTrustManager
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from signing.revinfo import CachingFetcherBackend, FreshnessPolicy

SignatureLevel = Literal["B-B", "B-T", "B-LT", "B-LTA"]
LEVELS: tuple[str, ...] = ("B-B", "B-T", "B-LT", "B-LTA")

# Times-metric serif first (Decree 30/2020 wants Times New Roman for signature text). Liberation
# 1.x (fonts-liberation) lacks most Vietnamese letters; Liberation 2.x (fonts-liberation2) and
# DejaVu (fonts-dejavu-core) have them all.
FONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)
_FONT_PROBE = "ĐđƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"
DEFAULT_FONT_SIZE = 8
_RESERVE_HEADROOM = 1024  # bytes of DER beyond the measured signature

# fontTools warns about every table it cannot subset (e.g. FFTM): noise for our users. pyHanko
# logs failed pre-signing checks with the certificate subject (a person's name: personal data);
# SigningError carries the reason instead.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
for _noisy in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)


class SigningError(Exception):
    """Signing could not be done (bad input, unusable key, unreachable TSA/OCSP...)."""


class _ReservationTooSmall(Exception):
    """The remembered signature size was too small for this document."""


@dataclass(frozen=True)
class SignerSpec:
    """Where the signing key lives (hashable: it identifies a loaded key, e.g. in a cache).

    - ``pkcs12``: ``path`` + ``passphrase``.
    - ``pkcs11``: ``pkcs11_module`` (e.g. /usr/lib/softhsm/libsofthsm2.so), ``token_label``,
      ``pin``, ``key_label`` (the certificate is read from the token under the same label unless
      ``cert_path`` is given).
    - ``remote``: ``remote_url`` of a signing service (see :class:`RemoteSigner`) and
      ``cert_path`` (PEM/DER, signer certificate first, then its chain).
    """

    kind: Literal["pkcs12", "pkcs11", "remote"] = "pkcs12"
    path: str | None = None
    passphrase: str | None = None
    pkcs11_module: str | None = None
    token_label: str | None = None
    pin: str | None = None
    key_label: str | None = None
    remote_url: str | None = None
    cert_path: str | None = None


def load_certificates(path: str | Path) -> list[asn1_x509.Certificate]:
    """All certificates in a PEM (one or more blocks) or DER file, in file order."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read certificate file {path}: {exc}") from exc
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


class _PrebuiltAttribute(attributes.CMSAttributeProvider):
    """Supplies one fixed, already parsed signed attribute."""

    def __init__(self, attribute: cms.CMSAttribute):
        self.attribute_type = attribute["type"].native
        self._attribute = attribute

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return self._attribute


class _CachedSigningCertificateSpec(attributes.SignedAttributeProviderSpec):
    """pyHanko's signed attributes, with signing-certificate-v2 built once per signer.

    Building that attribute from Python values costs asn1crypto ~15 ms per signature (a third
    of a B-B signature); its DER never changes for a given certificate.
    """

    def __init__(self, inner: attributes.SignedAttributeProviderSpec, cached: cms.CMSAttribute):
        self._inner = inner
        self._cached = cached

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterable[attributes.CMSAttributeProvider]:
        for provider in self._inner.signed_attr_providers(
            data_digest=data_digest, digest_algorithm=digest_algorithm
        ):
            if isinstance(provider, attributes.SigningCertificateV2Provider):
                yield _PrebuiltAttribute(self._cached)
            else:
                yield provider


class _CachedAttributesMixin:
    """For pyHanko ``Signer`` subclasses holding one certificate for their whole life."""

    _signing_cert_attr: cms.CMSAttribute | None = None

    @property
    def _signer_info_parts(self) -> dict[str, tuple[cms.SignerIdentifier, algos.DigestAlgorithm,
                                                      algos.SignedDigestAlgorithm]]:
        cache = self.__dict__.get("_signer_info_cache")
        if cache is None:
            cache = self.__dict__["_signer_info_cache"] = {}
        return cache

    def _signed_attr_provider_spec(self, *args: object, **kwargs: object):  # pyHanko internal hook
        inner = super()._signed_attr_provider_spec(*args, **kwargs)  # type: ignore[misc]
        if self.signed_attr_prov_spec is not None:  # type: ignore[attr-defined]
            return inner  # caller-provided spec: leave it alone
        if self._signing_cert_attr is None:
            value = as_signing_certificate_v2(self.signing_cert)  # type: ignore[attr-defined]
            built = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]})
            self._signing_cert_attr = cms.CMSAttribute.load(built.dump())
        return _CachedSigningCertificateSpec(inner, self._signing_cert_attr)

    def signer_info(
        self, digest_algorithm: str, signed_attrs: cms.CMSAttributes, signature: bytes
    ) -> cms.SignerInfo:
        """Same SignerInfo as pyHanko's, assembled from parts parsed once (asn1crypto builds
        the issuer name and PSS parameters from Python values very slowly)."""
        if digest_algorithm == "shake256":
            return super().signer_info(digest_algorithm, signed_attrs, signature)  # type: ignore[misc]
        parts = self._signer_info_parts.get(digest_algorithm)
        if parts is None:
            template = super().signer_info(digest_algorithm, signed_attrs, signature)  # type: ignore[misc]
            parts = tuple(
                type(template[key]).load(template[key].dump())
                for key in ("sid", "digest_algorithm", "signature_algorithm")
            )
            self._signer_info_parts[digest_algorithm] = parts
        sid, digest_obj, mechanism = parts
        return cms.SignerInfo(
            {
                "version": "v1",
                "sid": sid,
                "digest_algorithm": digest_obj,
                "signature_algorithm": mechanism,
                "signed_attrs": signed_attrs,
                "signature": signature,
            }
        )


class RemoteSigner(_CachedAttributesMixin, signers.Signer):
    """A pyHanko signer whose private key lives in a remote signing service.

    Protocol (JSON over HTTP POST to ``url``)::

        request:  {"digest": "<base64>", "digest_algorithm": "sha256",
                   "signature_algorithm": "rsassa_pss" | "rsassa_pkcs1v15" | "ecdsa",
                   "pss_salt_length": 32 | null, "key_id": "<cert SHA-256 hex>"}
        response: {"signature": "<base64>"}

    Only the digest of the CMS signed attributes leaves the process. ``signing.devserver.
    serve_remote_signer`` is a loopback implementation of the service.
    """

    def __init__(
        self,
        url: str,
        signing_cert: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
        *,
        prefer_pss: bool = True,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ):
        registry = SimpleCertificateStore.from_certs([signing_cert, *chain])
        super().__init__(
            prefer_pss=prefer_pss, signing_cert=signing_cert, cert_registry=registry
        )
        self.url = url
        self._client = client or httpx.Client(timeout=timeout)
        self._key_id = hashlib.sha256(signing_cert.dump()).hexdigest()

    def _dry_run_signature(self) -> bytes:
        cert = self.signing_cert
        assert cert is not None
        if cert.public_key.algorithm == "ec":
            return b"\x00" * 72  # maximal DER ECDSA P-256 signature
        return b"\x00" * (cert.public_key.bit_size // 8)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return self._dry_run_signature()
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        sig_algo = mechanism.signature_algo
        salt = None
        if sig_algo == "rsassa_pss":
            salt = int(mechanism["parameters"]["salt_length"].native)
        digest = hashlib.new(digest_algorithm, data).digest()
        payload = {
            "digest": base64.b64encode(digest).decode(),
            "digest_algorithm": digest_algorithm,
            "signature_algorithm": sig_algo,
            "pss_salt_length": salt,
            "key_id": self._key_id,
        }
        try:
            resp = self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise SigningError(f"remote signing service unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise SigningError(
                f"remote signing service answered HTTP {resp.status_code}: {resp.text[:200]}"
            )
        try:
            return base64.b64decode(resp.json()["signature"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise SigningError("remote signing service sent a malformed answer") from exc

    def close(self) -> None:
        self._client.close()


class _KeyCachingSigner(_CachedAttributesMixin, signers.SimpleSigner):
    """pyHanko's SimpleSigner re-parses the private key on every signature (~10-100 ms for RSA);
    this one parses it once."""

    def __init__(self, base: signers.SimpleSigner):
        super().__init__(
            signing_cert=base.signing_cert,
            signing_key=base.signing_key,
            cert_registry=base.cert_registry,
            prefer_pss=base.prefer_pss,
        )
        self._key = serialization.load_der_private_key(base.signing_key.dump(), password=None)
        self._mechanisms: dict[str | None, algos.SignedDigestAlgorithm] = {}

    def get_signature_mechanism_for_digest(
        self, digest_algorithm: str | None
    ) -> algos.SignedDigestAlgorithm:
        # pyHanko rebuilds this ASN.1 value (with PSS parameters) 5 times per signature
        if digest_algorithm not in self._mechanisms:
            self._mechanisms[digest_algorithm] = super().get_signature_mechanism_for_digest(
                digest_algorithm
            )
        return self._mechanisms[digest_algorithm]

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algo = mechanism.signature_algo
        key = self._key
        if algo == "rsassa_pss" and isinstance(key, rsa.RSAPrivateKey):
            pss_padding, hash_algo = process_pss_params(mechanism["parameters"])
            return key.sign(data, pss_padding, hash_algo)
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if algo == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        raise SigningError(f"unsupported signature mechanism {algo!r} for this key")


class _HttpTimeStamper(timestamps.TimeStamper):
    """RFC 3161 client keeping one HTTP connection pool (pyHanko's opens a new session per call)."""

    def __init__(self, url: str, *, timeout: float = 10.0):
        super().__init__()
        self.url = url
        self._client = httpx.Client(timeout=timeout)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            resp = self._client.post(
                self.url,
                content=req.dump(),
                headers={"Content-Type": "application/timestamp-query"},
            )
        except httpx.HTTPError as exc:
            raise TimestampRequestError(f"timestamp server unreachable: {exc}") from exc
        if resp.status_code != 200 or resp.headers.get("Content-Type") != "application/timestamp-reply":
            raise TimestampRequestError(f"timestamp server answered HTTP {resp.status_code}")
        return tsp.TimeStampResp.load(resp.content)

    def close(self) -> None:
        self._client.close()


def _self_signed(certs: list[asn1_x509.Certificate]) -> list[asn1_x509.Certificate]:
    return [c for c in certs if c.self_signed in ("maybe", "yes")]


@dataclass
class PdfSigner:
    """Signs PDFs with one loaded key. Not reentrant: calls are serialised by a lock."""

    signer: signers.Signer
    trust_roots: list[asn1_x509.Certificate]
    font_path: Path = field(default_factory=lambda: _default_font())
    font_size: int = DEFAULT_FONT_SIZE
    timestamper: timestamps.TimeStamper | None = None
    closer: Callable[[], None] | None = None
    revinfo_freshness: FreshnessPolicy = field(default_factory=FreshnessPolicy)

    def __post_init__(self) -> None:
        cert = self.signer.signing_cert
        if cert is None:
            raise SigningError("the key source did not provide a signing certificate")
        self._cert = cert
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._timestampers: dict[str, timestamps.TimeStamper] = {}
        self._reserved: dict[tuple[str, str | None], int] = {}
        # B-LT/B-LTA: one validation context per signature (validated "now"), sharing OCSP/CRL
        # answers across signatures only while fresh (signing.revinfo.FreshnessPolicy)
        self._revinfo = CachingFetcherBackend(RequestsFetcherBackend(), self.revinfo_freshness)
        self._trust_manager = SimpleTrustManager.build(trust_roots=self.trust_roots)
        font_file = prepared_font(self.font_path)
        self._font_chars = font_coverage(font_file)
        self._font_factory = _PreparedFontFactory(str(font_file), font_size=self.font_size)
        self._stamp_style = TextStampStyle(
            stamp_text="%(lines)s",
            text_box_style=TextBoxStyle(font=self._font_factory, font_size=self.font_size),
            border_width=1,
        )

    # -- public API ---------------------------------------------------------------------------
    @property
    def subject_name(self) -> str:
        """The signer certificate's common name (or full subject if it has no CN)."""
        subject = self._cert.subject.native
        return str(subject.get("common_name") or self._cert.subject.human_friendly)

    @property
    def certificate_der(self) -> bytes:
        return self._cert.dump()

    def sign(
        self,
        pdf: bytes,
        *,
        field_name: str,
        box: tuple[float, float, float, float],
        page: int = 0,
        lines: list[str] | None = None,
        reason: str | None = None,
        location: str | None = None,
        level: str = "B-B",
        timestamp_url: str | None = None,
    ) -> bytes:
        """Append a PAdES signature (incremental update) and return the signed PDF."""
        if level not in LEVELS:
            raise SigningError(f"unknown signature level {level!r}; use one of {', '.join(LEVELS)}")
        if not field_name or any(c in field_name for c in ".()/"):
            raise SigningError(f"invalid signature field name {field_name!r}")
        self._check_box(box)
        self._check_certificate_validity()
        timestamper = self._timestamper_for(level, timestamp_url)
        writer = self._open(pdf)
        n_pages = int(writer.root["/Pages"]["/Count"])
        if not 0 <= page < n_pages:
            raise SigningError(f"page {page} out of range: the document has {n_pages} page(s)")
        text = "\n".join(lines) if lines else self.subject_name
        self._check_renderable(text)
        pdf_signer = signers.PdfSigner(
            self._metadata(field_name, level, reason, location),
            signer=self.signer,
            timestamper=timestamper,
            stamp_style=self._stamp_style,
            new_field_spec=fields.SigFieldSpec(
                sig_field_name=field_name, on_page=page, box=tuple(box)  # type: ignore[arg-type]
            ),
        )
        key = (level, timestamp_url)
        with self._lock:
            reserved = self._reserved.get(key)
            try:
                out = self._run_sign(pdf_signer, writer, text, reserved)
            except _ReservationTooSmall:
                # e.g. a longer OCSP answer than the one measured: let pyHanko size it again
                reserved = None
                out = self._run_sign(pdf_signer, self._open(pdf), text, None)
            if reserved is None:
                self._reserved[key] = _reserve_for(out, field_name)
        return out

    @staticmethod
    def _open(pdf: bytes) -> IncrementalPdfFileWriter:
        try:
            return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        except Exception as exc:  # pyHanko raises several types for unreadable input
            raise SigningError(f"input is not a readable PDF: {exc}") from exc

    def close(self) -> None:
        """Release the key source (PKCS#11 session, HTTP clients) and the event loop."""
        if self.closer is not None:
            self.closer()
            self.closer = None
        for stamper in self._timestampers.values():
            if isinstance(stamper, _HttpTimeStamper):
                stamper.close()
        self._timestampers.clear()
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> PdfSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _run_sign(
        self,
        pdf_signer: signers.PdfSigner,
        writer: IncrementalPdfFileWriter,
        text: str,
        reserved: int | None,
    ) -> bytes:
        output = io.BytesIO()
        coro = pdf_signer.async_sign_pdf(
            writer,
            bytes_reserved=reserved,
            appearance_text_params={"lines": text},
            output=output,
        )
        try:
            self._loop.run_until_complete(coro)
        except PyHankoSigningError as exc:
            if reserved is not None and "larger than expected" in str(exc):
                raise _ReservationTooSmall from exc
            raise SigningError(f"signing failed: {exc}") from exc
        except OSError as exc:
            raise SigningError(f"signing failed (network or file error): {exc}") from exc
        return output.getvalue()

    def _metadata(
        self, field_name: str, level: str, reason: str | None, location: str | None
    ) -> signers.PdfSignatureMetadata:
        long_term = level in ("B-LT", "B-LTA")
        return signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=location,
            embed_validation_info=long_term,
            use_pades_lta=level == "B-LTA",
            validation_context=self._long_term_context() if long_term else None,
            dss_settings=DSSContentSettings(placement=SigDSSPlacementPreference.SEPARATE_REVISION),
        )

    def _long_term_context(self) -> ValidationContext:
        """A context validating at the current time; revocation answers come from the shared
        cache while fresh, so a revocation is seen at most ``max_age`` after it is published
        (a context kept for the signer's life would validate at its creation time forever)."""
        return ValidationContext(
            trust_manager=self._trust_manager,
            allow_fetching=True,
            revocation_mode="hard-fail",
            fetcher_backend=self._revinfo,
        )

    def _timestamper_for(self, level: str, url: str | None) -> timestamps.TimeStamper | None:
        if level == "B-B":
            return None
        if url is None:
            if self.timestamper is None:
                raise SigningError(f"level {level} needs a timestamp_url (RFC 3161 TSA)")
            return self.timestamper
        if url not in self._timestampers:
            if not url.startswith(("http://", "https://")):
                raise SigningError(f"timestamp_url must be an http(s) URL, got {url!r}")
            self._timestampers[url] = _HttpTimeStamper(url)
        return self._timestampers[url]

    def _check_certificate_validity(self) -> None:
        validity = self._cert["tbs_certificate"]["validity"]
        now = dt.datetime.now(dt.timezone.utc)
        not_before = validity["not_before"].native
        not_after = validity["not_after"].native
        if now < not_before:
            raise SigningError(f"signing certificate not valid before {not_before.isoformat()}")
        if now > not_after:
            raise SigningError(f"signing certificate expired on {not_after.isoformat()}")

    def _check_renderable(self, text: str) -> None:
        missing = sorted({c for c in text if c != "\n" and ord(c) not in self._font_chars})
        if missing:
            raise SigningError(
                f"the appearance font {self.font_path.name} cannot render {''.join(missing)!r}"
            )

    @staticmethod
    def _check_box(box: tuple[float, float, float, float]) -> None:
        if len(box) != 4:
            raise SigningError("box must be (x1, y1, x2, y2) in PDF points")
        x1, y1, x2, y2 = box
        if x2 - x1 < 10 or y2 - y1 < 10:
            raise SigningError(f"signature box {box} is too small or inverted (x1<x2, y1<y2)")


def _reserve_for(signed_pdf: bytes, field_name: str) -> int:
    """Hex digits to reserve in /Contents for later signatures of the same kind.

    Measured from one actual signature: its DER length (the placeholder's zero padding
    excluded) plus headroom for what varies between documents (time-stamp token serials and
    times, OCSP answers). Smaller placeholders also make verification faster.
    """
    reader = PdfFileReader(io.BytesIO(signed_pdf), strict=False)
    for sig in reader.embedded_regular_signatures:
        if sig.field_name == field_name:
            der_length = len(cms.ContentInfo.load(sig.pkcs7_content, strict=False).dump())
            return 2 * (der_length + _RESERVE_HEADROOM)  # two hex digits per byte: even
    raise SigningError(f"signature field {field_name!r} not found after signing")


# Latin (ASCII, Latin-1, Latin Extended-A/B parts), combining accents and the Vietnamese block:
# every character a Vietnamese administrative text or ISO 8601 time needs.
_APPEARANCE_CHARSET: tuple[range, ...] = (
    range(0x20, 0x7F),
    range(0xA0, 0x180),
    range(0x1A0, 0x1B1),
    range(0x300, 0x324),
    range(0x1EA0, 0x1EFA),
    range(0x2010, 0x2027),
    range(0x20AB, 0x20AC),
)


_PDF_GLYPH_SPACE = 1000  # PDF glyph space units per text space unit


def _font_cache_dir() -> Path:
    """Per-user cache (not the shared /tmp, where another user could plant a font file)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sohoa" / "fonts"


def prepared_font(font_path: Path, cache_dir: Path | None = None) -> Path:
    """A copy of ``font_path`` cut down to the Vietnamese/Latin repertoire, cached on disk.

    pyHanko subsets the appearance font for every signature; starting from ~500 glyphs instead
    of the full font (2,500+ glyphs and big layout tables) makes that several times cheaper.
    The copy is also rescaled to 1000 units per em: pyHanko 0.38 writes the CID font's /W glyph
    widths in font units, which is only right for 1000-unit fonts (Liberation Serif and DejaVu
    use 2048), and PDF/A validators reject widths that disagree with the embedded font program.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    data = font_path.read_bytes()
    recipe = repr((_APPEARANCE_CHARSET, _PDF_GLYPH_SPACE, "no-hinting-no-layout")).encode()
    tag = hashlib.sha256(data + recipe).hexdigest()[:16]
    cache_dir = cache_dir or _font_cache_dir()
    out = cache_dir / f"{font_path.stem}-{tag}.ttf"
    if out.exists():
        return out
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home (containers): a private per-process directory
        cache_dir = Path(tempfile.mkdtemp(prefix="sohoa-fonts-"))
        out = cache_dir / out.name
    options = subset.Options()
    options.notdef_outline = True
    options.hinting = False  # screen hinting is useless for a signature box; saves ~40 %
    options.drop_tables += ["GPOS", "GSUB", "GDEF", "kern", "DSIG"]  # as pyHanko's own subset
    font = TTFont(io.BytesIO(data))
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=[cp for block in _APPEARANCE_CHARSET for cp in block])
    subsetter.subset(font)
    if font["head"].unitsPerEm != _PDF_GLYPH_SPACE:
        scale_upem(font, _PDF_GLYPH_SPACE)
    tmp = out.with_suffix(f".{threading.get_ident()}.tmp")
    font.save(str(tmp))
    tmp.replace(out)  # atomic: concurrent workers never read a half-written file
    return out


class _PreparedFontFile(CIDFontType2):
    """Embeds the prepared font file byte for byte, compressed once per process.

    pyHanko re-subsets and re-serialises the font (fontTools) for every signature: ~25 ms, about
    half the cost of a visible signature. The prepared font is already a small subset that keeps
    its glyph IDs (TrueType CIDs are raw GIDs), so it can be embedded as is.
    """

    _cache: ClassVar[dict[str, tuple[bytes, int]]] = {}
    font_path: str

    def set_font_file(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        if self.font_path not in self._cache:
            raw = Path(self.font_path).read_bytes()
            self._cache[self.font_path] = (zlib.compress(raw, 6), len(raw))
        encoded, length = self._cache[self.font_path]
        stream = generic.StreamObject(
            {
                generic.NameObject("/Filter"): generic.NameObject("/FlateDecode"),
                generic.NameObject("/Length1"): generic.NumberObject(length),
            },
            encoded_data=encoded,
        )
        ref = writer.add_object(stream)
        self._font_descriptor[generic.NameObject("/FontFile2")] = ref
        return ref


class _PreparedGlyphAccumulator(GlyphAccumulator):
    """A glyph accumulator over a :func:`prepared_font` file: no per-document subsetting."""

    def __init__(self, font_path: str, **kwargs: object):
        with open(font_path, "rb") as handle:
            super().__init__(font_handle=handle, **kwargs)  # type: ignore[arg-type]
        if type(self.cidfont_obj) is not CIDFontType2:
            raise SigningError("the appearance font must be a TrueType (glyf) font")
        self.cidfont_obj.__class__ = _PreparedFontFile  # same state, different embedding
        self.cidfont_obj.font_path = font_path  # type: ignore[attr-defined]

    def _extract_subset(self, options: object = None) -> None:
        """The prepared font is the subset; keep it whole so the cached file bytes match."""


@dataclass(frozen=True)
class _PreparedFontFactory(GlyphAccumulatorFactory):
    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return _PreparedGlyphAccumulator(
            self.font_file, writer=writer, font_size=self.font_size, obj_stream=obj_stream
        )


def font_coverage(font_path: Path) -> frozenset[int]:
    """Code points the font maps to a glyph."""
    from fontTools.ttLib import TTFont

    with TTFont(str(font_path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def _default_font() -> Path:
    for candidate in FONT_CANDIDATES:
        if candidate.exists() and {ord(c) for c in _FONT_PROBE} <= font_coverage(candidate):
            return candidate
    raise SigningError(
        "no Vietnamese-capable TrueType font found; install fonts-liberation or fonts-dejavu-core"
    )


def _pss_for(cert: asn1_x509.Certificate, prefer_pss: bool) -> bool:
    return prefer_pss and cert.public_key.algorithm == "rsa"


def _open_pkcs12(spec: SignerSpec, prefer_pss: bool) -> tuple[signers.Signer, list]:
    if not spec.path:
        raise SigningError("pkcs12 signer needs `path`")
    try:
        data = Path(spec.path).read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read PKCS#12 file {spec.path}: {exc}") from exc
    passphrase = spec.passphrase.encode() if spec.passphrase is not None else None
    try:
        signer = signers.SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=passphrase
        )
    except Exception as exc:  # wrong passphrase, corrupt file
        raise SigningError(f"cannot open PKCS#12 file {spec.path}: wrong passphrase or bad file") from exc
    cert = signer.signing_cert
    assert cert is not None
    signer.prefer_pss = _pss_for(cert, prefer_pss)
    extra = load_certificates(spec.cert_path) if spec.cert_path else []
    chain = list(signer.cert_registry) + extra
    return _KeyCachingSigner(signer), _self_signed(chain)


@functools.cache
def _pkcs11_signer_class() -> type[signers.Signer]:
    """pyHanko's PKCS#11 signer with the per-certificate CMS parts built once (python-pkcs11 is
    imported only when a token is used)."""
    from pyhanko.sign import pkcs11 as hanko_pkcs11

    class CachingPkcs11Signer(_CachedAttributesMixin, hanko_pkcs11.PKCS11Signer):
        pass

    return CachingPkcs11Signer


def _open_pkcs11(spec: SignerSpec, prefer_pss: bool) -> tuple[signers.Signer, list, Callable[[], None]]:
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign import pkcs11 as hanko_pkcs11

    if not (spec.pkcs11_module and spec.key_label):
        raise SigningError("pkcs11 signer needs `pkcs11_module` and `key_label`")
    if spec.pin is None:
        raise SigningError("pkcs11 signer needs the user `pin`")
    try:
        session = hanko_pkcs11.open_pkcs11_session(
            spec.pkcs11_module,
            token_criteria=TokenCriteria(label=spec.token_label) if spec.token_label else None,
            user_pin=spec.pin,
        )
    except Exception as exc:
        raise SigningError(f"cannot open PKCS#11 token {spec.token_label!r}: {exc}") from exc
    certs = load_certificates(spec.cert_path) if spec.cert_path else []
    try:
        signer = _pkcs11_signer_class()(
            session,
            key_label=spec.key_label,
            cert_label=None if certs else spec.key_label,
            signing_cert=certs[0] if certs else None,
            ca_chain=certs[1:],
            prefer_pss=True,
        )
        cert = signer.signing_cert
    except Exception as exc:
        session.close()
        raise SigningError(f"key/certificate {spec.key_label!r} not usable on the token: {exc}") from exc
    if cert is None:
        session.close()
        raise SigningError(f"no certificate for key {spec.key_label!r}; give cert_path")
    signer.prefer_pss = _pss_for(cert, prefer_pss)
    return signer, _self_signed(list(signer.cert_registry) + certs), session.close


def _open_remote(spec: SignerSpec, prefer_pss: bool) -> tuple[RemoteSigner, list]:
    if not (spec.remote_url and spec.cert_path):
        raise SigningError("remote signer needs `remote_url` and `cert_path`")
    certs = load_certificates(spec.cert_path)
    if not certs:
        raise SigningError(f"no certificate in {spec.cert_path}")
    signer = RemoteSigner(
        spec.remote_url, certs[0], certs[1:], prefer_pss=_pss_for(certs[0], prefer_pss)
    )
    return signer, _self_signed(certs)


def open_signer(
    spec: SignerSpec,
    *,
    timestamper: timestamps.TimeStamper | None = None,
    prefer_pss: bool = True,
    font_path: Path | None = None,
    revinfo_freshness: FreshnessPolicy | None = None,
) -> PdfSigner:
    """Load the key described by ``spec`` once and return a reusable :class:`PdfSigner`.

    ``timestamper`` (optional) is used for B-T and above when ``sign`` gets no
    ``timestamp_url`` (e.g. :func:`signing.devserver.local_timestamper`). RSA keys sign with
    RSASSA-PSS unless ``prefer_pss=False``. ``revinfo_freshness``: how long the OCSP/CRL answers
    checked before a B-LT/B-LTA signature (and embedded in it) are reused for later signatures
    (default: 5 minutes after their thisUpdate, never past nextUpdate).
    """
    closer: Callable[[], None] | None = None
    if spec.kind == "pkcs12":
        signer, roots = _open_pkcs12(spec, prefer_pss)
    elif spec.kind == "pkcs11":
        signer, roots, closer = _open_pkcs11(spec, prefer_pss)
    elif spec.kind == "remote":
        remote, roots = _open_remote(spec, prefer_pss)
        signer, closer = remote, remote.close
    else:
        raise SigningError(f"unknown signer kind {spec.kind!r}; use pkcs12, pkcs11 or remote")
    return PdfSigner(
        signer=signer,
        trust_roots=roots,
        font_path=font_path or _default_font(),
        timestamper=timestamper,
        closer=closer,
        revinfo_freshness=revinfo_freshness or FreshnessPolicy(),
    )


__all__ = [
    "LEVELS",
    "PdfSigner",
    "RemoteSigner",
    "SignerSpec",
    "SigningError",
    "load_certificates",
    "open_signer",
]


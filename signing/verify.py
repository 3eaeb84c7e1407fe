"""Verification of PAdES signatures with EU DSS-style verdicts, in Vietnamese and English.

Each signature is validated with pyHanko's PAdES (ETSI EN 319 102-1) long-term validation
(:func:`pyhanko.sign.validation.ades.ades_lta_validation`): integrity of the signed byte range,
the CMS signature, the chain to the configured trust roots, revocation (embedded DSS data first,
online OCSP/CRL depending on ``revocation``), signature and document timestamps, and pyHanko's
difference analysis of every incremental update made after signing.

Verdicts follow ETSI/EU DSS: ``TOTAL_PASSED``, ``INDETERMINATE`` (with a sub-indication such as
``NO_CERTIFICATE_CHAIN_FOUND``, ``OUT_OF_BOUNDS_NO_POE``, ``TRY_LATER``) or ``TOTAL_FAILED``
(``HASH_FAILURE``, ``SIG_CRYPTO_FAILURE``, ``REVOKED``, ``FORMAT_FAILURE``...).

Documented choices:

- A PDF without any signature gets verdict ``TOTAL_FAILED`` / ``FORMAT_FAILURE`` with the message
  "Tài liệu không có chữ ký số" (no signature): an unsigned file must never look acceptable.
- A PDF that cannot be parsed gets ``TOTAL_FAILED`` / ``FORMAT_FAILURE``.
- Changes after signing that go beyond adding signatures, form filling, DSS/timestamps
  (e.g. new page content) give ``TOTAL_FAILED`` / ``FORMAT_FAILURE`` for the signatures they
  follow ("modified after signing"); pyHanko's diff policy decides what is allowed.
- ``revocation``: ``"soft"`` (default) fetches OCSP/CRL when the DSS has none but accepts a
  signature if no revocation source answers; ``"hard"`` requires an answer (else ``TRY_LATER``);
  ``"off"`` skips revocation checking (embedded data is still used).

For many documents use :class:`Verifier` (set up once; OCSP/CRL answers reused under
:class:`signing.revinfo.FreshnessPolicy`); :func:`verify_pdf` is a one-document Verifier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from asn1crypto import pem, x509 as asn1_x509
from pydantic import BaseModel
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESStatus
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.ades import (
    _dss_to_local_knowledge,  # pyHanko's own DSS -> local knowledge conversion (private API)
    ades_lta_validation,
    ades_with_time_validation,
)
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
)
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetcherBackend
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from signing.speedups import fast_verification
from signing.revinfo import CachingFetcherBackend, Clock, FreshnessPolicy, utc_now

RevocationMode = Literal["soft", "hard", "off"]

_KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)

TOTAL_PASSED = "TOTAL_PASSED"
INDETERMINATE = "INDETERMINATE"
TOTAL_FAILED = "TOTAL_FAILED"

_FETCH_TIMEOUT_SECONDS = 5

# pyHanko and its validator log every failed check with the certificate subject (a person's
# name: personal data) and a traceback; the report carries the outcome instead.
for _noisy in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)

# sub-indication -> (Vietnamese, English) explanation
_SUB_MESSAGES: dict[str, tuple[str, str]] = {
    "HASH_FAILURE": (
        "nội dung tài liệu đã bị thay đổi sau khi ký (sai lệch mã băm)",
        "the document content was altered after signing (hash mismatch)",
    ),
    "SIG_CRYPTO_FAILURE": (
        "giá trị chữ ký không hợp lệ với khoá công khai của người ký",
        "the signature value does not verify with the signer's public key",
    ),
    "REVOKED": (
        "chứng thư số của người ký đã bị thu hồi",
        "the signer's certificate has been revoked",
    ),
    "REVOKED_NO_POE": (
        "chứng thư số đã bị thu hồi và không có bằng chứng chữ ký được tạo trước thời điểm thu hồi",
        "the certificate was revoked and there is no proof the signature existed before revocation",
    ),
    "NO_CERTIFICATE_CHAIN_FOUND": (
        "không xây dựng được chuỗi chứng thư đến một chứng thư gốc tin cậy",
        "no certificate chain to a trusted root could be built",
    ),
    "OUT_OF_BOUNDS_NO_POE": (
        "chứng thư số đã hết hạn (hoặc chưa có hiệu lực) và không có dấu thời gian chứng minh "
        "chữ ký được tạo khi chứng thư còn hiệu lực",
        "the certificate is expired (or not yet valid) and no timestamp proves the signature "
        "was made while it was valid",
    ),
    "OUT_OF_BOUNDS_NOT_REVOKED": (
        "chứng thư số đã hết hạn nhưng không bị thu hồi",
        "the certificate is expired but was not revoked",
    ),
    "EXPIRED": ("chứng thư số đã hết hạn", "the certificate has expired"),
    "NOT_YET_VALID": ("chứng thư số chưa có hiệu lực", "the certificate is not yet valid"),
    "TRY_LATER": (
        "chưa lấy được thông tin thu hồi (OCSP/CRL); hãy kiểm tra lại sau",
        "revocation information (OCSP/CRL) could not be obtained; try again later",
    ),
    "FORMAT_FAILURE": (
        "định dạng chữ ký hoặc tài liệu không hợp lệ",
        "the signature or document format is invalid",
    ),
    "MODIFIED": (
        "tài liệu đã bị sửa đổi nội dung sau khi ký (cập nhật gia tăng không được phép)",
        "the document was modified after signing (disallowed incremental update)",
    ),
    "NO_SIGNATURE": ("tài liệu không có chữ ký số", "the document has no digital signature"),
    "CHAIN_CONSTRAINTS_FAILURE": (
        "chuỗi chứng thư không đáp ứng các ràng buộc (mục đích sử dụng khoá, chính sách)",
        "the certificate chain does not meet constraints (key usage, policy)",
    ),
    "SIG_CONSTRAINTS_FAILURE": (
        "chữ ký không đáp ứng các ràng buộc kiểm tra",
        "the signature does not meet the validation constraints",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE": (
        "thuật toán mật mã không còn được chấp nhận",
        "the cryptographic algorithm is no longer acceptable",
    ),
}


class SignatureResult(BaseModel):
    field: str
    verdict: str
    sub_indication: str | None
    level: str
    signer: str
    signing_time: datetime | None
    trusted: bool
    intact: bool
    covers_whole_document: bool
    modification_level: str | None
    message_vi: str
    message_en: str


class VerificationReport(BaseModel):
    signatures: list[SignatureResult]
    verdict: str
    message_vi: str
    message_en: str

    @property
    def passed(self) -> bool:
        """True when there is at least one signature and every one is TOTAL_PASSED."""
        return bool(self.signatures) and all(s.verdict == TOTAL_PASSED for s in self.signatures)


class TrustRootError(ValueError):
    """A configured trust root is not a readable certificate."""


def load_trust_roots(trust_roots: list[bytes]) -> list[asn1_x509.Certificate]:
    """Parse PEM (one or several certificates) or DER trust roots."""
    certs: list[asn1_x509.Certificate] = []
    for blob in trust_roots:
        try:
            if pem.detect(blob):
                certs.extend(
                    asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(blob, multiple=True)
                )
            else:
                certs.append(asn1_x509.Certificate.load(blob))
        except (ValueError, TypeError) as exc:
            raise TrustRootError(f"trust root is not a PEM/DER certificate: {exc}") from exc
    return certs


def _revocation_policy(mode: RevocationMode) -> tuple[RevocationCheckingPolicy, RevinfoOnlineFetchingRule]:
    if mode == "soft":
        return RevocationCheckingPolicy.from_legacy("soft-fail"), RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
    if mode == "hard":
        return RevocationCheckingPolicy.from_legacy("hard-fail"), RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
    if mode == "off":
        no_check = RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
            intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
        )
        return no_check, RevinfoOnlineFetchingRule.LOCAL_ONLY
    raise ValueError(f"revocation must be 'soft', 'hard' or 'off', got {mode!r}")


def _validation_spec(
    trust: SimpleTrustManager, mode: RevocationMode, backend: FetcherBackend
) -> PdfSignatureValidationSpec:
    rev_policy, fetch_rule = _revocation_policy(mode)
    cert_policy = CertValidationPolicySpec(
        trust_manager=trust,
        revinfo_policy=CertRevTrustPolicy(revocation_checking_policy=rev_policy),
    )
    return PdfSignatureValidationSpec(
        signature_validation_spec=SignatureValidationSpec(
            cert_validation_policy=cert_policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=fetch_rule, fetcher_backend=backend
            ),
            key_usage_settings=_KEY_USAGE,
        )
    )


@dataclass(frozen=True)
class _Context:
    """Everything that is the same for every document of a batch (built once)."""

    trust: SimpleTrustManager
    revocation: RevocationMode
    backend: FetcherBackend
    spec: PdfSignatureValidationSpec

    @classmethod
    def build(cls, trust: SimpleTrustManager, revocation: RevocationMode,
              backend: FetcherBackend) -> _Context:
        return cls(trust, revocation, backend, _validation_spec(trust, revocation, backend))


def _signer_name(sig: EmbeddedPdfSignature) -> str:
    try:
        subject = sig.signer_cert.subject.native
    except (ValueError, KeyError, AttributeError):
        return ""
    return str(subject.get("common_name") or sig.signer_cert.subject.human_friendly)


@dataclass(frozen=True)
class _Document:
    """The parsed file and its signatures, collected once (pyHanko re-reads every /Contents
    hex string each time its signature list is asked for)."""

    reader: PdfFileReader
    signatures: list[EmbeddedPdfSignature]
    doc_timestamp_revisions: list[int]
    has_dss: bool

    @classmethod
    def parse(cls, pdf: bytes) -> _Document:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        found = reader.embedded_signatures
        return cls(
            reader=reader,
            signatures=[s for s in found if s.sig_object_type == "/Sig"],
            doc_timestamp_revisions=[
                s.signed_revision for s in found if s.sig_object_type == "/DocTimeStamp"
            ],
            has_dss="/DSS" in reader.root,
        )


def _level_of(sig: EmbeddedPdfSignature, doc: _Document) -> str:
    """PAdES baseline level claimed by the document structure (not its validity)."""
    unsigned = sig.signer_info["unsigned_attrs"]
    has_sig_ts = bool(unsigned) and any(
        attr["type"].native == "signature_time_stamp_token" for attr in unsigned
    )
    if not has_sig_ts:
        return "B-B"
    if not doc.has_dss:
        return "B-T"
    later_doc_ts = any(rev > sig.signed_revision for rev in doc.doc_timestamp_revisions)
    return "B-LTA" if later_doc_ts else "B-LT"


def _sentence(verdict: str, sub: str | None, signer: str) -> tuple[str, str]:
    who_vi = f"Chữ ký của {signer}" if signer else "Chữ ký"
    who_en = f"Signature of {signer}" if signer else "Signature"
    if verdict == TOTAL_PASSED:
        return (
            f"{who_vi} hợp lệ: tài liệu toàn vẹn, chứng thư số tin cậy.",
            f"{who_en} is valid: document intact, certificate trusted.",
        )
    vi, en = _SUB_MESSAGES.get(sub or "", ("lý do không xác định", "unspecified reason"))
    if verdict == TOTAL_FAILED:
        return f"{who_vi} KHÔNG hợp lệ: {vi}.", f"{who_en} is NOT valid: {en}."
    return (
        f"{who_vi} chưa xác định được tính hợp lệ: {vi}.",
        f"{who_en} could not be fully validated: {en}.",
    )


def _modification_problem(status: PdfSignatureStatus | None) -> bool:
    if status is None:
        return False
    if status.coverage not in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    ):
        return True
    level = status.modification_level
    if level is not None and level > ModificationLevel.FORM_FILLING:
        return True
    return status.docmdp_ok is False


def _verdict(ades_status: AdESStatus, sub: str | None, api: PdfSignatureStatus | None) -> tuple[str, str | None]:
    if api is not None and not api.intact:
        return TOTAL_FAILED, "HASH_FAILURE"
    if api is not None and not api.valid:
        return TOTAL_FAILED, "SIG_CRYPTO_FAILURE"
    if _modification_problem(api):
        return TOTAL_FAILED, "FORMAT_FAILURE"
    if ades_status == AdESStatus.PASSED:
        return TOTAL_PASSED, None
    if ades_status == AdESStatus.FAILED:
        return TOTAL_FAILED, sub
    return INDETERMINATE, sub


@dataclass(frozen=True)
class _Outcome:
    status: AdESStatus
    sub: str | None
    api: PdfSignatureStatus | None
    poe_time: datetime | None = None  # best signature time proven by a time-stamp


async def _basic_outcome(sig: EmbeddedPdfSignature, ctx: _Context) -> _Outcome:
    """B-B: validate at the current time (pyHanko's AdES basic validation drops PDF details)."""
    rev_mode = {"soft": "soft-fail", "hard": "hard-fail", "off": "soft-fail"}[ctx.revocation]
    vc = ValidationContext(
        trust_manager=ctx.trust,
        allow_fetching=ctx.revocation != "off",
        revocation_mode=rev_mode,
        fetcher_backend=ctx.backend,
    )
    api = await async_validate_pdf_signature(
        sig, signer_validation_context=vc, key_usage_settings=_KEY_USAGE
    )
    if api.bottom_line:
        return _Outcome(AdESStatus.PASSED, None, api)
    indic = api.trust_problem_indic
    if indic is None:
        return _Outcome(AdESStatus.INDETERMINATE, "GENERIC", api)
    return _Outcome(indic.status, indic.name, api)


async def _with_time_outcome(
    sig: EmbeddedPdfSignature, reader: PdfFileReader, ctx: _Context
) -> _Outcome:
    """B-T / B-LT: validation with time (signature timestamp as proof of existence).

    Revocation data embedded in the DSS is used before any online source.
    """
    spec = ctx.spec.signature_validation_spec
    if "/DSS" in reader.root:
        spec = dataclasses.replace(spec, local_knowledge=_dss_to_local_knowledge(reader=reader))
    sig.compute_integrity_info(diff_policy=ctx.spec.diff_policy)
    result = await ades_with_time_validation(
        sig.signed_data,
        spec,
        raw_digest=sig.compute_digest(),
        extra_status_kwargs=sig.summarise_integrity_info(),
        status_cls=PdfSignatureStatus,
    )
    status = result.ades_subindic.status
    sub = None if status == AdESStatus.PASSED else result.ades_subindic.name
    api = result.api_status
    if sub == "REVOKED_NO_POE" and _revoked_before(api, result.best_signature_time):
        return _Outcome(AdESStatus.FAILED, "REVOKED", api, result.best_signature_time)
    return _Outcome(status, sub, api, result.best_signature_time)


def _revoked_before(api: PdfSignatureStatus | None, best_signature_time: datetime) -> bool:
    """ETSI EN 319 102-1 §5.5.4 step 4b: revoked at or before the best-signature-time
    (the validated signature time-stamp) means FAILED/REVOKED, not INDETERMINATE."""
    if api is None or api.revocation_details is None:
        return False
    return api.revocation_details.revocation_date <= best_signature_time


async def _long_term_outcome(sig: EmbeddedPdfSignature, ctx: _Context) -> _Outcome:
    """B-LTA: PAdES long-term validation over the chain of document timestamps."""
    result = await ades_lta_validation(sig, ctx.spec)
    status = result.ades_subindic.status
    sub = None if status == AdESStatus.PASSED else result.ades_subindic.name
    return _Outcome(status, sub, result.api_status, result.best_signature_time)


async def _missing_revinfo_is_try_later(
    sig: EmbeddedPdfSignature, reader: PdfFileReader, ctx: _Context, level: str, hard: _Outcome
) -> _Outcome:
    """Under hard revocation checking, a chain that only fails for lack of OCSP/CRL answers is
    INDETERMINATE / TRY_LATER (ETSI EN 319 102-1), not a chain failure."""
    soft = _Context.build(ctx.trust, "soft", ctx.backend)
    if level == "B-B":
        retry = await _basic_outcome(sig, soft)
    elif level in ("B-T", "B-LT"):
        retry = await _with_time_outcome(sig, reader, soft)
    else:
        retry = await _long_term_outcome(sig, soft)
    if retry.status == AdESStatus.PASSED:
        return _Outcome(AdESStatus.INDETERMINATE, "TRY_LATER", retry.api, retry.poe_time)
    return hard


async def _validate_one(sig: EmbeddedPdfSignature, doc: _Document, ctx: _Context) -> SignatureResult:
    reader = doc.reader
    signer = _signer_name(sig)
    level = _level_of(sig, doc)
    try:
        if level == "B-B":
            outcome = await _basic_outcome(sig, ctx)
        elif level in ("B-T", "B-LT"):
            outcome = await _with_time_outcome(sig, reader, ctx)
        else:
            outcome = await _long_term_outcome(sig, ctx)
    except (SignatureValidationError, ValueError, KeyError):
        outcome = _Outcome(AdESStatus.FAILED, AdESFailure.FORMAT_FAILURE.name, None)
    if ctx.revocation == "hard" and outcome.sub == "CERTIFICATE_CHAIN_GENERAL_FAILURE":
        outcome = await _missing_revinfo_is_try_later(sig, reader, ctx, level, outcome)
    api = outcome.api
    verdict, sub = _verdict(outcome.status, outcome.sub, api)
    modified = verdict == TOTAL_FAILED and sub == "FORMAT_FAILURE" and _modification_problem(api)
    vi, en = _sentence(verdict, "MODIFIED" if modified else sub, signer)
    signing_time = outcome.poe_time
    if signing_time is None and api is not None:
        signing_time = api.signer_reported_dt
    if signing_time is None:
        signing_time = sig.self_reported_timestamp
    mod_level = api.modification_level if api is not None else None
    return SignatureResult(
        field=str(sig.field_name),
        verdict=verdict,
        sub_indication=sub,
        level=level,
        signer=signer,
        signing_time=signing_time,
        trusted=bool(api is not None and api.trusted),
        intact=bool(api is not None and api.intact and api.valid),
        covers_whole_document=bool(api is not None and api.coverage == SignatureCoverageLevel.ENTIRE_FILE),
        modification_level=mod_level.name if mod_level is not None else None,
        message_vi=vi,
        message_en=en,
    )


async def _validate_all(doc: _Document, ctx: _Context) -> list[SignatureResult]:
    return [await _validate_one(sig, doc, ctx) for sig in doc.signatures]


def _failed_report(sub_key: str) -> VerificationReport:
    vi, en = _SUB_MESSAGES[sub_key]
    return VerificationReport(
        signatures=[],
        verdict=TOTAL_FAILED,
        message_vi=f"Không đạt: {vi}.",
        message_en=f"Not passed: {en}.",
    )


def _overall(results: list[SignatureResult]) -> VerificationReport:
    verdicts = {r.verdict for r in results}
    if verdicts == {TOTAL_PASSED}:
        verdict = TOTAL_PASSED
        vi = f"Tất cả {len(results)} chữ ký số hợp lệ; tài liệu toàn vẹn kể từ khi ký."
        en = f"All {len(results)} signature(s) valid; the document is intact since signing."
    else:
        verdict = TOTAL_FAILED if TOTAL_FAILED in verdicts else INDETERMINATE
        bad = [r for r in results if r.verdict != TOTAL_PASSED]
        vi = " ".join(r.message_vi for r in bad)
        en = " ".join(r.message_en for r in bad)
    return VerificationReport(signatures=results, verdict=verdict, message_vi=vi, message_en=en)


class Verifier:
    """Verifies many PDFs against one set of trust roots, sharing the per-document setup.

    Built once and reused for every document: the parsed trust roots and trust manager, the
    validation specifications, one event loop with its pooled HTTP session, and a cache of
    OCSP/CRL answers that is reused only while ``freshness`` allows
    (:class:`signing.revinfo.FreshnessPolicy`: inside each answer's thisUpdate/nextUpdate and at
    most ``max_age`` after thisUpdate, default 5 minutes). Each document still gets its own
    validation contexts, so verdicts never depend on which documents came before.

    Calls are serialised by a lock; use one verifier per worker thread for parallel work. Like
    :func:`verify_pdf`, do not call it from a thread that is running an asyncio event loop.
    """

    def __init__(
        self,
        trust_roots: list[bytes],
        *,
        revocation: RevocationMode = "soft",
        freshness: FreshnessPolicy | None = None,
        clock: Clock = utc_now,
        fetch_timeout: float = _FETCH_TIMEOUT_SECONDS,
    ) -> None:
        roots = load_trust_roots(trust_roots)
        _revocation_policy(revocation)  # validate the argument early
        self.backend = CachingFetcherBackend(
            RequestsFetcherBackend(per_request_timeout=fetch_timeout),
            freshness or FreshnessPolicy(),
            clock=clock,
        )
        self._ctx = _Context.build(SimpleTrustManager.build(trust_roots=roots), revocation, self.backend)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def verify(self, pdf: bytes) -> VerificationReport:
        """Verify every signature in ``pdf`` (same report as :func:`verify_pdf`)."""
        with self._lock, fast_verification():
            if self._loop.is_closed():
                raise RuntimeError("this Verifier is closed")
            try:
                doc = _Document.parse(pdf)
            except Exception:  # pyHanko raises several error types for broken files
                return _failed_report("FORMAT_FAILURE")
            if not doc.signatures:
                return _failed_report("NO_SIGNATURE")
            results = self._loop.run_until_complete(_validate_all(doc, self._ctx))
        return _overall(results)

    def verify_many(self, pdfs: Iterable[bytes]) -> Iterator[VerificationReport]:
        """One report per input, in order (lazily: feed it a generator for large batches)."""
        for pdf in pdfs:
            yield self.verify(pdf)

    def close(self) -> None:
        """Release the HTTP session and the event loop (idempotent)."""
        with self._lock:
            if self._loop.is_closed():
                return
            try:
                self._loop.run_until_complete(self.backend.close())
            finally:
                self._loop.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_pdf(
    pdf: bytes, trust_roots: list[bytes], *, revocation: RevocationMode = "soft"
) -> VerificationReport:
    """Verify every signature in ``pdf`` against ``trust_roots`` (PEM or DER certificates).

    For more than one document, keep a :class:`Verifier` instead (much cheaper per document).
    """
    with Verifier(trust_roots, revocation=revocation) as verifier:
        return verifier.verify(pdf)


__all__ = [
    "INDETERMINATE",
    "TOTAL_FAILED",
    "TOTAL_PASSED",
    "FreshnessPolicy",
    "SignatureResult",
    "TrustRootError",
    "VerificationReport",
    "Verifier",
    "load_trust_roots",
    "verify_pdf",
]


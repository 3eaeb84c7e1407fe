"""OCSP/CRL answers shared between validations, under an explicit freshness policy.

pyhanko-certvalidator keeps the revocation answers it fetches inside one set of fetchers, i.e.
one validation context: verifying a batch of documents signed by the same agency would ask the
OCSP responder (and parse, check and discard its answer) again for every document.
:class:`CachingFetcherBackend` is a :class:`~pyhanko_certvalidator.fetchers.api.FetcherBackend`
that keeps successful answers across validation contexts, and reuses one only while
:class:`FreshnessPolicy` says it is fresh:

- the answer carries ``thisUpdate`` **and** ``nextUpdate`` (an OCSP answer without
  ``nextUpdate`` means "newer information is always available": never reused);
- the cache's clock is inside ``[thisUpdate, nextUpdate)`` of every answer (a CRL set: of every
  CRL in it) — the CA's own validity window is never stretched;
- ``now - thisUpdate <= max_age`` (default 5 minutes): a revocation published by the CA is
  seen at most ``max_age`` after the answer in the cache was produced.

Failures (unreachable responder, malformed answer) are never cached. Answers are keyed by the
SHA-256 of the whole certificate they were fetched for (pyHanko keys by issuer + serial): a
document carrying a look-alike certificate (same issuer name and serial, responder URL of its
own) can therefore never plant an answer that a later document's genuine certificate would be
checked against. Certificate (AIA) fetching is left to pyHanko's per-context fetcher. Each validation context gets its own thin view of the
shared cache, so what it reports as "fetched" (e.g. answers a signer embeds in a DSS) is only
what that context used.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar

from asn1crypto import cms, crl, ocsp, x509
from pyhanko_certvalidator.authority import Authority
from pyhanko_certvalidator.fetchers.api import CRLFetcher, FetcherBackend, Fetchers, OCSPFetcher

Clock = Callable[[], datetime]
AnyCert = x509.Certificate | cms.AttributeCertificateV2
T = TypeVar("T")

DEFAULT_MAX_AGE = timedelta(minutes=5)
_MAX_ENTRIES = 4096


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _cert_key(cert: AnyCert) -> bytes:
    """The whole certificate's fingerprint (not issuer + serial, which a forged look-alike can
    copy)."""
    if isinstance(cert, x509.Certificate):
        return cert.sha256
    return hashlib.sha256(cert.dump()).digest()


@dataclass(frozen=True)
class FreshnessPolicy:
    """How long a fetched OCSP/CRL answer may be reused for later validations.

    ``max_age`` counts from the answer's ``thisUpdate`` (when the CA stated the status), not from
    when sohoa fetched it. ``max_age=timedelta(0)`` turns reuse off.
    """

    max_age: timedelta = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        if self.max_age < timedelta(0):
            raise ValueError("max_age must not be negative")

    def reusable_window(
        self, windows: Iterable[tuple[datetime | None, datetime | None]]
    ) -> tuple[datetime, datetime] | None:
        """``(not_before, not_after)`` during which answers with these (thisUpdate, nextUpdate)
        windows may be reused together, or None if they must not be cached at all."""
        if self.max_age <= timedelta(0):
            return None
        starts, ends = [], []
        for this_update, next_update in windows:
            if this_update is None or next_update is None:
                return None
            starts.append(this_update)
            ends.append(min(next_update, this_update + self.max_age))
        if not starts:
            return None
        start, end = max(starts), min(ends)
        return (start, end) if start < end else None


def ocsp_windows(response: ocsp.OCSPResponse) -> list[tuple[datetime | None, datetime | None]]:
    """(thisUpdate, nextUpdate) of every single response in an OCSP answer ([] if none)."""
    if response["response_status"].native != "successful":
        return []
    body = response["response_bytes"]["response"].parsed
    return [
        (single["this_update"].native, single["next_update"].native)
        for single in body["tbs_response_data"]["responses"]
    ]


def crl_windows(crls: Iterable[crl.CertificateList]) -> list[tuple[datetime | None, datetime | None]]:
    return [
        (c["tbs_cert_list"]["this_update"].native, c["tbs_cert_list"]["next_update"].native)
        for c in crls
    ]


@dataclass
class _Entry(Generic[T]):
    value: T
    not_before: datetime
    not_after: datetime


class _TimedCache(Generic[T]):
    """Answers keyed by certificate, each usable in a time window; thread-safe."""

    def __init__(self, clock: Clock, max_entries: int = _MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: dict[object, _Entry[T]] = {}
        self._lock = threading.Lock()
        self.hits = 0  # counted by the fetchers (informational)
        self.misses = 0

    def get(self, key: object) -> T | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.not_before <= now < entry.not_after:
                return entry.value
            if entry is not None:
                del self._entries[key]  # stale: the next validation asks the CA again
            return None

    def put(self, key: object, value: T, window: tuple[datetime, datetime] | None) -> None:
        if window is None:
            return
        now = self._clock()
        with self._lock:
            if len(self._entries) >= self._max:
                for stale in [k for k, e in self._entries.items() if not e.not_before <= now < e.not_after]:
                    del self._entries[stale]
                while len(self._entries) >= self._max:  # still full: drop the oldest insertions
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(value, window[0], window[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _CachingOCSPFetcher(OCSPFetcher):
    """Keyed by the certificate's fingerprint; the issuing authority must match too."""

    def __init__(self, cache: _TimedCache[tuple[object, ocsp.OCSPResponse]],
                 policy: FreshnessPolicy, inner: OCSPFetcher) -> None:
        self._cache = cache
        self._policy = policy
        self._inner = inner
        self._used: dict[bytes, ocsp.OCSPResponse] = {}

    async def fetch(self, cert: AnyCert, authority: Authority) -> ocsp.OCSPResponse:
        key = _cert_key(cert)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == authority.hashable:
            response = cached[1]
            self._cache.hits += 1
        else:
            self._cache.misses += 1
            response = await self._inner.fetch(cert, authority)  # raises on failure: not cached
            window = self._policy.reusable_window(ocsp_windows(response))
            self._cache.put(key, (authority.hashable, response), window)
        self._used[key] = response
        return response

    def fetched_responses(self) -> Iterable[ocsp.OCSPResponse]:
        return {*self._used.values(), *self._inner.fetched_responses()}

    def fetched_responses_for_cert(self, cert: AnyCert) -> Iterable[ocsp.OCSPResponse]:
        key = _cert_key(cert)
        response = self._used.get(key)
        if response is None:
            cached = self._cache.get(key)  # a fresh shared answer counts as already fetched
            if cached is not None:
                response = self._used[key] = cached[1]
                self._cache.hits += 1
        found = set(self._inner.fetched_responses_for_cert(cert))
        if response is not None:
            found.add(response)
        return found


class _CachingCRLFetcher(CRLFetcher):
    """Keyed by the certificate's fingerprint (CRLs fetched from that certificate's URLs)."""

    def __init__(self, cache: _TimedCache[list[crl.CertificateList]], policy: FreshnessPolicy,
                 inner: CRLFetcher) -> None:
        self._cache = cache
        self._policy = policy
        self._inner = inner
        self._used: dict[bytes, list[crl.CertificateList]] = {}

    async def fetch(self, cert: AnyCert, *, use_deltas: bool | None = None) -> Iterable[crl.CertificateList]:
        key = _cert_key(cert)
        crls = self._used.get(key) or self._cache.get(key)
        if crls is not None:
            self._cache.hits += 1
        else:
            self._cache.misses += 1
            crls = list(await self._inner.fetch(cert, use_deltas=use_deltas))
            self._cache.put(key, crls, self._policy.reusable_window(crl_windows(crls)))
        self._used[key] = crls
        return crls

    def fetched_crls(self) -> Iterable[crl.CertificateList]:
        return {c for crls in self._used.values() for c in crls} | set(self._inner.fetched_crls())

    def fetched_crls_for_cert(self, cert: AnyCert) -> Iterable[crl.CertificateList]:
        key = _cert_key(cert)
        crls = self._used.get(key)
        if crls is None:
            crls = self._cache.get(key)
            if crls is None:
                return self._inner.fetched_crls_for_cert(cert)  # KeyError if never fetched
            self._cache.hits += 1
            self._used[key] = crls
        return crls


class CachingFetcherBackend(FetcherBackend):
    """A fetcher backend whose OCSP/CRL answers outlive one validation context.

    ``inner`` does the network work (e.g. pyHanko's ``AIOHttpFetcherBackend``); every
    :meth:`get_fetchers` call (one per validation context) gets fresh inner fetchers (pyHanko's
    per-context caching and fetch budget) in front of one shared, time-bounded cache.
    """

    def __init__(self, inner: FetcherBackend, policy: FreshnessPolicy = FreshnessPolicy(),
                 *, clock: Clock = utc_now) -> None:
        self.inner = inner
        self.policy = policy
        self._ocsp: _TimedCache[tuple[object, ocsp.OCSPResponse]] = _TimedCache(clock)
        self._crl: _TimedCache[list[crl.CertificateList]] = _TimedCache(clock)

    def get_fetchers(self) -> Fetchers:
        inner = self.inner.get_fetchers()
        return Fetchers(
            ocsp_fetcher=_CachingOCSPFetcher(self._ocsp, self.policy, inner.ocsp_fetcher),
            crl_fetcher=_CachingCRLFetcher(self._crl, self.policy, inner.crl_fetcher),
            cert_fetcher=inner.cert_fetcher,
        )

    @property
    def stats(self) -> dict[str, int]:
        """Cache hits and misses (OCSP and CRL) since the backend was made."""
        return {"ocsp_hits": self._ocsp.hits, "ocsp_misses": self._ocsp.misses,
                "crl_hits": self._crl.hits, "crl_misses": self._crl.misses}

    def clear(self) -> None:
        self._ocsp.clear()
        self._crl.clear()

    async def close(self) -> None:
        await self.inner.close()


__all__ = ["DEFAULT_MAX_AGE", "CachingFetcherBackend", "FreshnessPolicy", "crl_windows",
           "ocsp_windows", "utc_now"]

"""Per-client token buckets (in process memory): ``rate`` tokens per second, up to ``burst``.

A request takes one token; with none left it is refused with 429 and ``Retry-After`` set to the
seconds until a token is back. With several server processes each holds its own buckets, so the
effective limit is per process (documented in docs/api.md).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token; 0.0 on success, else the seconds to wait for one."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Buckets by key; each key's (rate, burst) is fixed when its bucket is first made."""

    def __init__(self, default_rate: float, default_burst: int, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if default_rate <= 0 or default_burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.default_rate, self.default_burst = default_rate, default_burst
        self._clock, self._max_keys = clock, max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, key: str, rate: float | None = None, burst: int | None = None) -> int:
        """0 when allowed; else the whole seconds for ``Retry-After`` (at least 1)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # bounded memory; clients only gain a fresh burst
                r, b = rate or self.default_rate, burst or self.default_burst
                bucket = self._buckets[key] = TokenBucket(rate=r, burst=b, tokens=float(b), updated=now)
            wait = bucket.take(now)
        return 0 if wait == 0.0 else max(1, math.ceil(wait))

    def forget(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

"""The object-store interface the repository writes through, and the factory for its backends.

Two real backends implement :class:`ObjectStore`: :class:`repository.local_store.LocalObjectStore`
(a directory; the zero-setup default) and :class:`repository.s3_store.S3ObjectStore` (any S3
server through the minio SDK, tested against Ceph RADOS Gateway). Backends raise only the
repository's own errors: :class:`StorageUnavailable` (unreachable, timeout, 5xx),
:class:`ObjectMissing`, :class:`ObjectLocked`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .config import RepositoryConfig


@dataclass(frozen=True)
class Retention:
    """Object Lock retention: ``mode`` is GOVERNANCE or COMPLIANCE, ``until`` is timezone-aware UTC."""

    mode: str
    until: datetime


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # as recorded at write time (user metadata / sidecar), not recomputed
    version_id: str | None = None
    retention: Retention | None = None
    legal_hold: bool = False

    def locked_at(self, now: datetime) -> bool:
        """True when retention still runs at ``now`` or a legal hold is on."""
        return self.legal_hold or (self.retention is not None and self.retention.until > now)


@runtime_checkable
class ObjectStore(Protocol):
    """What the repository needs from an object store. Keys are ``/``-separated ASCII paths."""

    @property
    def kind(self) -> str: ...

    @property
    def lock_enabled(self) -> bool:
        """Whether retention and legal holds are enforced by this store."""
        ...

    def ensure_ready(self) -> None:
        """Create the bucket/directory when missing (versioning + Object Lock where supported)."""

    def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless the store answers."""

    def put(
        self,
        key: str,
        data: bytes,
        *,
        sha256: str,
        content_type: str = "application/octet-stream",
        retention: Retention | None = None,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        """Write ``data`` atomically under ``key``: readers see all of it or nothing."""

    def get(self, key: str) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Metadata of the live object under ``key``, or ``None`` when there is none."""

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Keys of live objects under ``prefix``, in no particular order."""

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Remove every stored version of ``key``; :class:`ObjectLocked` if any is protected."""

    def set_retention(self, key: str, retention: Retention) -> None: ...

    def set_legal_hold(self, key: str, on: bool) -> None: ...


def open_object_store(config: RepositoryConfig) -> ObjectStore:
    """Build the backend the configuration names (the import stays lazy: minio only for S3)."""
    if config.store == "local":
        from .local_store import LocalObjectStore

        assert config.local_dir is not None
        return LocalObjectStore(config.local_dir, object_lock=config.object_lock)
    from .s3_store import S3ObjectStore

    return S3ObjectStore.from_config(config)

"""Configuration of a :class:`repository.Repository` (plain data, built by the caller's settings)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
LOCK_MODES: tuple[str, ...] = ("GOVERNANCE", "COMPLIANCE")
MIN_SECRET_BYTES = 16


@dataclass
class RepositoryConfig:
    """Where the index and the objects live, and the server secret protecting owner IDs.

    ``db_url`` is an SQLAlchemy URL (``sqlite:///path/index.db`` or ``postgresql://...``).
    ``store="local"`` keeps objects under ``local_dir``; ``store="s3"`` uses an S3 endpoint
    (Ceph RGW, MinIO, AWS) through the minio SDK. ``owner_secret`` keys the HMAC that turns a
    personal/enterprise ID into an opaque owner key and derives the key encrypting stored IDs;
    it must be at least 16 bytes and must never change for a given repository.
    """

    db_url: str
    store: Literal["local", "s3"] = "local"
    local_dir: Path | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "sohoa"
    s3_secure: bool = False
    s3_region: str | None = None
    owner_secret: bytes = b""
    object_lock: bool = True
    lock_mode: str = "GOVERNANCE"
    s3_connect_timeout: float = 3.0
    s3_read_timeout: float = 30.0
    s3_retries: int = 2
    sqlite_busy_timeout: float = 30.0  # seconds a write waits for another process's lock on the SQLite file

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message when the configuration cannot work."""
        if not self.db_url:
            raise ValueError("RepositoryConfig.db_url is required (e.g. sqlite:///var/index.db)")
        if len(self.owner_secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"RepositoryConfig.owner_secret must be at least {MIN_SECRET_BYTES} bytes "
                "(it keys the HMAC of owner IDs and must stay the same for the repository's life)"
            )
        if self.sqlite_busy_timeout < 0:
            raise ValueError("RepositoryConfig.sqlite_busy_timeout must be >= 0 seconds")
        if self.lock_mode not in LOCK_MODES:
            raise ValueError(f"RepositoryConfig.lock_mode must be one of {LOCK_MODES}, got {self.lock_mode!r}")
        if self.store == "local":
            if self.local_dir is None:
                raise ValueError("RepositoryConfig.local_dir is required when store='local'")
        elif self.store == "s3":
            missing = [n for n in ("s3_endpoint", "s3_access_key", "s3_secret_key") if not getattr(self, n)]
            if missing:
                raise ValueError(f"RepositoryConfig: store='s3' needs {', '.join(missing)}")
        else:
            raise ValueError(f"RepositoryConfig.store must be 'local' or 's3', got {self.store!r}")

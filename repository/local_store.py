"""Object store in a local directory: the embedded, zero-setup backend.

Layout under ``root``: ``objects/<key>`` holds the bytes, ``meta/<key>.json`` a sidecar with the
SHA-256 recorded at write time, retention and legal hold. Every write goes to a temporary file in
the same directory, is fsynced, then renamed over the target (atomic on POSIX) and the directory
is fsynced, so a crash leaves either the old object or the new one, never a torn file.

Retention and legal holds are enforced by this class (deletes and overwrites are refused, and
locked files are made read-only); unlike S3 Object Lock this cannot stop someone with shell
access, which is why production deployments use the S3 backend.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from .errors import InvalidRequest, ObjectLocked, ObjectMissing, StorageUnavailable
from .objectstore import ObjectInfo, Retention

_READ_ONLY = stat_mod.S_IRUSR | stat_mod.S_IRGRP | stat_mod.S_IROTH
_READ_WRITE = _READ_ONLY | stat_mod.S_IWUSR


class LocalObjectStore:
    """A directory tree behaving like a (non-versioned) bucket with enforced retention."""

    def __init__(self, root: Path, *, object_lock: bool = True) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._lock = object_lock

    @property
    def kind(self) -> str:
        return "local"

    @property
    def lock_enabled(self) -> bool:
        return self._lock

    # -- lifecycle ---------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._meta.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"local object store {self.root} is not writable: {exc}") from exc

    def ping(self) -> None:
        if not (self._objects.is_dir() and os.access(self._objects, os.W_OK)):
            raise StorageUnavailable(f"local object store {self.root} is missing or not writable")

    # -- paths -------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise InvalidRequest(f"invalid object key {key!r}")
        return self._objects / key

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{key}.json"

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read object {key}: {exc}") from exc

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"cannot stat object {key}: {exc}") from exc
        meta = self._read_meta(key)
        retention = None
        if meta.get("retain_until"):
            retention = Retention(meta["lock_mode"], datetime.fromisoformat(meta["retain_until"]))
        return ObjectInfo(
            key=key,
            size=size,
            sha256=meta.get("sha256"),
            retention=retention,
            legal_hold=bool(meta.get("legal_hold")),
        )

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self._objects
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield key

    # -- writes ------------------------------------------------------------------------------
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
        path = self._path(key)
        current = self.stat(key)
        if current is not None and current.sha256 == sha256 and current.size == len(data) and _file_sha256(path) == sha256:
            return self._rewrite_identical(key, current, retention, legal_hold)
        if current is not None and current.locked_at(_now()):
            # Without versioning an overwrite would destroy a protected object: refuse it.
            raise ObjectLocked(f"object {key} is under retention or legal hold; overwrite refused")
        meta = {
            "sha256": sha256,
            "size": len(data),
            "content_type": content_type,
            "lock_mode": retention.mode if retention and self._lock else None,
            "retain_until": retention.until.isoformat() if retention and self._lock else None,
            "legal_hold": bool(legal_hold and self._lock),
        }
        try:
            if current is not None:
                os.chmod(path, _READ_WRITE)
            _atomic_write(path, data)
            _atomic_write(self._meta_path(key), json.dumps(meta, sort_keys=True).encode())
            if self._is_locked_meta(meta):
                os.chmod(path, _READ_ONLY)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write object {key}: {exc}") from exc
        info = self.stat(key)
        assert info is not None
        return info

    def _rewrite_identical(
        self, key: str, current: ObjectInfo, retention: Retention | None, legal_hold: bool
    ) -> ObjectInfo:
        """Same bytes are already stored: keep them, only strengthen their protection."""
        if self._lock and retention and (current.retention is None or current.retention.until < retention.until):
            mode = "COMPLIANCE" if current.retention and current.retention.mode == "COMPLIANCE" else retention.mode
            self.set_retention(key, Retention(mode, retention.until))
        if self._lock and legal_hold and not current.legal_hold:
            self.set_legal_hold(key, True)
        info = self.stat(key)
        assert info is not None
        return info

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(key)
        now = _now()
        if info.legal_hold:
            raise ObjectLocked(f"object {key} is under legal hold; delete refused")
        if info.retention is not None and info.retention.until > now:
            if info.retention.mode == "COMPLIANCE" or not bypass_governance:
                raise ObjectLocked(
                    f"object {key} is retained ({info.retention.mode}) until "
                    f"{info.retention.until.isoformat()}; delete refused"
                )
        try:
            path = self._path(key)
            os.chmod(path, _READ_WRITE)
            path.unlink()
            self._meta_path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete object {key}: {exc}") from exc

    def set_retention(self, key: str, retention: Retention) -> None:
        meta = self._require_meta(key)
        if meta.get("retain_until"):
            old_until = datetime.fromisoformat(meta["retain_until"])
            if meta.get("lock_mode") == "COMPLIANCE" and (
                retention.until < old_until or retention.mode != "COMPLIANCE"
            ):
                raise ObjectLocked(f"COMPLIANCE retention of {key} can only be extended")
        meta.update(lock_mode=retention.mode, retain_until=retention.until.isoformat())
        self._write_meta(key, meta)

    def set_legal_hold(self, key: str, on: bool) -> None:
        meta = self._require_meta(key)
        meta["legal_hold"] = bool(on)
        self._write_meta(key, meta)

    # -- helpers -----------------------------------------------------------------------------
    def _read_meta(self, key: str) -> dict:
        try:
            return json.loads(self._meta_path(key).read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StorageUnavailable(f"cannot read metadata of {key}: {exc}") from exc

    def _require_meta(self, key: str) -> dict:
        if self.stat(key) is None:
            raise ObjectMissing(key)
        if not self._lock:
            raise InvalidRequest("object lock is disabled for this store")
        return self._read_meta(key)

    def _write_meta(self, key: str, meta: dict) -> None:
        try:
            _atomic_write(self._meta_path(key), json.dumps(meta, sort_keys=True).encode())
            os.chmod(self._path(key), _READ_ONLY if self._is_locked_meta(meta) else _READ_WRITE)
        except OSError as exc:
            raise StorageUnavailable(f"cannot update metadata of {key}: {exc}") from exc

    @staticmethod
    def _is_locked_meta(meta: dict) -> bool:
        until = meta.get("retain_until")
        return bool(meta.get("legal_hold")) or bool(until and datetime.fromisoformat(until) > _now())


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via temp file + fsync + rename + directory fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

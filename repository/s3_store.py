"""Object store on S3 (Ceph RADOS Gateway, MinIO, AWS) through the minio SDK.

The bucket is created with versioning and Object Lock when the server supports it, so a
protected object version cannot be deleted or overwritten until its retention date (or ever,
while a legal hold is on). Deleting removes every stored version of a key explicitly; a delete
without a version id would only add a delete marker and prove nothing.

RGW sends ``RetainUntilDate`` with nine fractional digits, which minio-py 7.2's
``get_object_retention()`` cannot parse; retention is therefore read from the
``x-amz-object-lock-*`` headers of ``stat_object()`` (HEAD), which every S3 server returns.
"""
from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.retention import Retention as MinioRetention
from minio.versioningconfig import VersioningConfig

from .config import RepositoryConfig
from .errors import InvalidRequest, ObjectLocked, ObjectMissing, StorageUnavailable
from .objectstore import ObjectInfo, Retention

_MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"}
_LOCK_CODES = {"AccessDenied", "ObjectLocked", "InvalidRequest"}
_NO_LOCK_CONFIG_CODES = {"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"}
_FRACTION_RE = re.compile(r"\.(\d{6})\d+")


def parse_s3_datetime(value: str) -> datetime:
    """Parse an S3 ISO-8601 timestamp with any number of fractional digits (RGW sends 9)."""
    text = _FRACTION_RE.sub(r".\1", value.strip()).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class S3ObjectStore:
    """One bucket of an S3 server."""

    def __init__(self, client: Minio, bucket: str, *, object_lock: bool = True) -> None:
        self._client = client
        self.bucket = bucket
        self._want_lock = object_lock
        self._lock = False

    @classmethod
    def from_config(cls, config: RepositoryConfig) -> S3ObjectStore:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=config.s3_connect_timeout, read=config.s3_read_timeout),
            retries=urllib3.Retry(
                total=config.s3_retries,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,  # S3 PUTs of one object are idempotent
            ),
            maxsize=16,
        )
        client = Minio(
            config.s3_endpoint or "",
            access_key=config.s3_access_key,
            secret_key=config.s3_secret_key,
            secure=config.s3_secure,
            region=config.s3_region,
            http_client=http,
        )
        return cls(client, config.s3_bucket, object_lock=config.object_lock)

    @property
    def kind(self) -> str:
        return "s3"

    @property
    def lock_enabled(self) -> bool:
        return self._lock

    @property
    def client(self) -> Minio:
        return self._client

    # -- lifecycle ---------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        with _s3_errors("prepare bucket", self.bucket):
            if not self._client.bucket_exists(self.bucket):
                self._create_bucket()
            self._lock = self._want_lock and self._bucket_has_lock()
            if self._client.get_bucket_versioning(self.bucket).status != ENABLED:
                self._client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

    def _create_bucket(self) -> None:
        if self._want_lock:
            try:
                self._client.make_bucket(self.bucket, object_lock=True)
                return
            except S3Error as exc:
                if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return
                if exc.code not in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
                    raise
        try:
            self._client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _bucket_has_lock(self) -> bool:
        try:
            cfg = self._client.get_object_lock_config(self.bucket)
        except S3Error as exc:
            if exc.code in _NO_LOCK_CONFIG_CODES or exc.code == "NotImplemented":
                return False
            raise
        return cfg is not None

    def ping(self) -> None:
        with _s3_errors("ping", self.bucket):
            if not self._client.bucket_exists(self.bucket):
                raise StorageUnavailable(f"bucket {self.bucket} does not exist")

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        with _s3_errors("get", key):
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def presigned_get_url(self, key: str, *, expires: timedelta,
                          response_headers: dict[str, str] | None = None) -> str:
        """A URL that GETs ``key`` without other credentials until ``expires`` from now (SigV4
        query signature, computed locally; ``response_headers`` such as ``response-content-type``
        are part of the signature)."""
        with _s3_errors("presign", key):
            return self._client.presigned_get_object(self.bucket, key, expires=expires,
                                                     response_headers=response_headers)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with _s3_errors("stat", key):
                st = self._client.stat_object(self.bucket, key)
        except ObjectMissing:
            return None
        headers = {k.lower(): v for k, v in (st.metadata or {}).items()}
        retention = None
        mode = headers.get("x-amz-object-lock-mode")
        until = headers.get("x-amz-object-lock-retain-until-date")
        if mode and until:
            retention = Retention(mode.upper(), parse_s3_datetime(until))
        return ObjectInfo(
            key=key,
            size=int(st.size or 0),
            sha256=headers.get("x-amz-meta-sha256"),
            version_id=st.version_id,
            retention=retention,
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "").upper() == "ON",
        )

    def iter_keys(self, prefix: str) -> Iterator[str]:
        with _s3_errors("list", prefix):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name and not obj.is_dir:
                    yield obj.object_name

    def _versions(self, key: str) -> list[str | None]:
        with _s3_errors("list versions", key):
            return [
                o.version_id
                for o in self._client.list_objects(self.bucket, prefix=key, include_version=True)
                if o.object_name == key
            ]

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
        headers = {
            "x-amz-meta-sha256": sha256,
            # Object Lock PUTs need an integrity header on AWS; harmless elsewhere.
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode(),
        }
        lock = retention if (retention and self._lock) else None
        with _s3_errors("put", key):
            result = self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=headers,
                retention=MinioRetention(lock.mode, lock.until) if lock else None,
                legal_hold=bool(legal_hold and self._lock),
            )
        return ObjectInfo(
            key=key,
            size=len(data),
            sha256=sha256,
            version_id=result.version_id,
            retention=lock,
            legal_hold=bool(legal_hold and self._lock),
        )

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        versions = self._versions(key)
        if not versions:
            raise ObjectMissing(key)
        with _s3_errors("delete", key):
            errors = list(
                self._client.remove_objects(
                    self.bucket,
                    [DeleteObject(key, v) for v in versions],
                    bypass_governance_mode=bypass_governance,
                )
            )
        if errors:
            codes = sorted({e.code for e in errors})
            if any(c in _LOCK_CODES for c in codes):
                raise ObjectLocked(f"object {key} is protected by Object Lock; delete refused ({', '.join(codes)})")
            raise StorageUnavailable(f"delete of {key} failed: {', '.join(codes)}")

    def set_retention(self, key: str, retention: Retention) -> None:
        if not self._lock:
            raise InvalidRequest(f"bucket {self.bucket} has no Object Lock")
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(key)
        with _s3_errors("set retention", key):
            try:
                self._client.set_object_retention(
                    self.bucket, key, MinioRetention(retention.mode, retention.until), version_id=info.version_id
                )
            except S3Error as exc:
                if exc.code in _LOCK_CODES:
                    raise ObjectLocked(f"retention of {key} cannot be shortened or weakened ({exc.code})") from exc
                raise

    def set_legal_hold(self, key: str, on: bool) -> None:
        if not self._lock:
            raise InvalidRequest(f"bucket {self.bucket} has no Object Lock")
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(key)
        with _s3_errors("set legal hold", key):
            if on:
                self._client.enable_object_legal_hold(self.bucket, key, version_id=info.version_id)
            else:
                self._client.disable_object_legal_hold(self.bucket, key, version_id=info.version_id)


@contextmanager
def _s3_errors(operation: str, key: str) -> Iterator[None]:
    """Translate minio/urllib3 failures into the repository's errors."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise ObjectMissing(key) from exc
        if exc.code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
            raise StorageUnavailable(f"S3 {operation} {key}: {exc.code}") from exc
        raise
    except (ServerError, InvalidResponseError) as exc:
        raise StorageUnavailable(f"S3 {operation} {key}: server error {exc}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
        if isinstance(reason, urllib3.exceptions.TimeoutError):  # the server is up but too slow
            what = "connecting" if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) else "waiting for the answer"
            raise StorageUnavailable(f"S3 {operation} {key}: timed out {what} (every attempt): {reason}") from exc
        raise StorageUnavailable(f"S3 {operation} {key}: {type(reason).__name__}: {reason}") from exc
    except MinioException as exc:
        raise StorageUnavailable(f"S3 {operation} {key}: {exc}") from exc

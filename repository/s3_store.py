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
import hashlib
import hmac
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import queryencode, quote
from minio.retention import Retention as MinioRetention
from minio.time import to_amz_date, to_signer_date, utcnow
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


class GetPresigner:
    """SigV4 query-string presigning of GETs (AWS "Authenticating Requests: Using Query
    Parameters"), made for the API's redirect path: minio derives the signing key anew for every
    URL (four HMACs) and rebuilds the bucket URL through its generic request builder, which
    together cost several times the signature itself. This keeps the day's signing key and the
    bucket's URL prefix, and signs exactly what minio would sign.

    It is made from one URL that minio itself presigned (:meth:`from_reference`: its endpoint,
    path style, region and credential scope), and checked against minio on a second key and
    date: any difference (virtual-host style, session tokens, a changed library) and no
    presigner is made, so the caller keeps using minio's."""

    PROBE_KEY = "probe/ký tự ~ (1) + a&b=c.pdf"
    PROBE_HEADERS = {"response-content-type": "application/pdf",
                     "response-content-disposition": 'attachment; filename="hồ sơ 1;2.pdf"'}

    def __init__(self, base: str, path_prefix: str, access_key: str, secret_key: str, region: str) -> None:
        self.base, self.path_prefix = base, path_prefix
        self.access_key, self.region = access_key, region
        self._host = base.split("://", 1)[1]
        self._secret = ("AWS4" + secret_key).encode()
        self._day_key: tuple[str, str, bytes] = ("", "", b"")

    @classmethod
    def from_reference(cls, client: Minio, bucket: str, secret_key: str) -> GetPresigner | None:
        date = utcnow()
        ref = client.presigned_get_object(bucket, cls.PROBE_KEY, expires=timedelta(seconds=60),
                                          response_headers=dict(cls.PROBE_HEADERS), request_date=date)
        parts = urlsplit(ref)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        credential = query.get("X-Amz-Credential", "").split("/")
        suffix = "/" + quote(cls.PROBE_KEY)
        if len(credential) != 5 or credential[3:] != ["s3", "aws4_request"] or not parts.path.endswith(suffix):
            return None
        presigner = cls(f"{parts.scheme}://{parts.netloc}", parts.path[: -len(suffix)], credential[0], secret_key,
                        credential[2])
        checks = [(cls.PROBE_KEY, cls.PROBE_HEADERS, date), ("a/b c.json", None, date - timedelta(days=1, seconds=7))]
        for key, headers, when in checks:
            theirs = client.presigned_get_object(bucket, key, expires=timedelta(seconds=61),
                                                 response_headers=dict(headers) if headers else None, request_date=when)
            if presigner.url(key, expires=timedelta(seconds=61), response_headers=headers, date=when) != theirs:
                return None
        return presigner

    def _day(self, day: str) -> tuple[str, bytes]:
        """The day's encoded ``X-Amz-Credential`` and signing key (derived once a day)."""
        cached = self._day_key
        if cached[0] == day:
            return cached[1], cached[2]
        key = self._secret
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        credential = queryencode(f"{self.access_key}/{day}/{self.region}/s3/aws4_request")
        self._day_key = (day, credential, key)  # one assignment: readers see the old or the new day
        return credential, key

    def url(self, key: str, *, expires: timedelta, response_headers: dict[str, str] | None = None,
            date: datetime | None = None) -> str:
        date = date or utcnow()
        seconds = int(expires.total_seconds())
        if not 1 <= seconds <= 604800:
            raise ValueError("expires must be between 1 second to 7 days")
        day, stamp = to_signer_date(date), to_amz_date(date)
        credential, signing_key = self._day(day)
        path = f"{self.path_prefix}/{quote(key)}"
        query = "&".join(f"{queryencode(k)}={queryencode(v)}" for k, v in sorted((response_headers or {}).items()))
        amz = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
               f"&X-Amz-Date={stamp}&X-Amz-Expires={seconds}&X-Amz-SignedHeaders=host")
        query = f"{query}&{amz}" if query else amz
        canonical_query = "&".join("=".join(pair) for pair in sorted(p.split("=") for p in query.split("&")))
        canonical = f"GET\n{path}\n{canonical_query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = (f"AWS4-HMAC-SHA256\n{stamp}\n{day}/{self.region}/s3/aws4_request\n"
                   f"{hashlib.sha256(canonical.encode()).hexdigest()}")
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.base}{path}?{query}&X-Amz-Signature={signature}"


class S3ObjectStore:
    """One bucket of an S3 server."""

    def __init__(self, client: Minio, bucket: str, *, object_lock: bool = True,
                 secret_key: str | None = None) -> None:
        self._client = client
        self.bucket = bucket
        self._want_lock = object_lock
        self._lock = False
        self._secret_key = secret_key  # lets presigned_get_url keep the day's signing key
        self._presigner: GetPresigner | None | bool = None  # False: minio signs each URL itself
        self._presigner_lock = threading.Lock()

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
        return cls(client, config.s3_bucket, object_lock=config.object_lock, secret_key=config.s3_secret_key)

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
            presigner = self._presigner
            if presigner is None:
                with self._presigner_lock:
                    if self._presigner is None:
                        made = GetPresigner.from_reference(self._client, self.bucket, self._secret_key) \
                            if self._secret_key else None
                        self._presigner = made if made is not None else False
                    presigner = self._presigner
            if presigner:
                return presigner.url(key, expires=expires, response_headers=response_headers)
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

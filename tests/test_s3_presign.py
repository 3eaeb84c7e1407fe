"""Presigned GET URLs (the API's `delivery=redirect`): the store keeps the day's SigV4 signing
key instead of letting minio derive it for every URL, and must still sign exactly what minio
signs — checked here against minio itself for awkward keys, headers and dates, and against a
real RGW, which must serve the object with the signed response headers and refuse a tampered
or expired URL."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

pytestmark = [pytest.mark.s3]

KEYS = ["records/000.00.12.H29/giay_khai_sinh/01JF000000000000000000000A/v1.pdf", "a b/c+d=e&f?g#h.pdf",
        "tiếng việt/hồ sơ (1).json", "~tilde/*star*/'quote'/%25.pdf", "x"]
HEADERS = [None, {"response-content-type": "application/pdf"},
           {"response-content-type": "application/json",
            "response-content-disposition": 'attachment; filename="000.00.12.H29.giay_khai_sinh.01J.v2.json"'},
           {"response-content-disposition": "attachment; filename*=UTF-8''h%E1%BB%93 s%C6%A1.pdf",
            "response-cache-control": "no-store"}]


@pytest.fixture
def store(s3_server):
    from repository.config import RepositoryConfig
    from repository.s3_store import S3ObjectStore

    config = RepositoryConfig(db_url="sqlite://", store="s3", s3_endpoint=s3_server["endpoint"],
                              s3_access_key=s3_server["access_key"], s3_secret_key=s3_server["secret_key"],
                              s3_bucket=f"presign-{uuid.uuid4().hex[:10]}", object_lock=False)
    s = S3ObjectStore.from_config(config)
    s.ensure_ready()
    return s


def test_signs_exactly_what_minio_signs(store):
    from repository.s3_store import GetPresigner

    presigner = GetPresigner.from_reference(store.client, store.bucket, store._secret_key)
    assert presigner is not None
    dates = [datetime(2026, 12, 7, 23, 59, 59, tzinfo=timezone.utc), datetime(2026, 12, 8, 0, 0, 1, tzinfo=timezone.utc),
             datetime.now(timezone.utc), datetime(2027, 1, 1, 12, tzinfo=timezone.utc)]
    for date in dates:  # across a day boundary: the cached signing key follows the date
        for key in KEYS:
            for headers in HEADERS:
                for seconds in (1, 60, 3600, 604800):
                    ours = presigner.url(key, expires=timedelta(seconds=seconds), response_headers=headers, date=date)
                    theirs = store.client.presigned_get_object(store.bucket, key, expires=timedelta(seconds=seconds),
                                                               response_headers=dict(headers) if headers else None,
                                                               request_date=date)
                    assert ours == theirs
    with pytest.raises(ValueError):
        presigner.url("x", expires=timedelta(days=8))


def test_rgw_serves_the_presigned_url_and_refuses_a_tampered_or_expired_one(store):
    key = "tiếng việt/hồ sơ (1).pdf"
    data = b"%PDF-1.7 presign test " + uuid.uuid4().bytes
    store.put(key, data, sha256="0" * 64, content_type="application/octet-stream")
    headers = {"response-content-type": "application/pdf",
               "response-content-disposition": 'attachment; filename="ho-so.v1.pdf"'}
    url = store.presigned_get_url(key, expires=timedelta(seconds=60), response_headers=headers)
    assert store._presigner  # the fast signer is in use on RGW
    got = httpx.get(url, timeout=30)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="ho-so.v1.pdf"'
    tampered = url.replace("ho-so.v1.pdf", "ho-so.v2.pdf")
    assert httpx.get(tampered, timeout=30).status_code == 403
    short = store.presigned_get_url(key, expires=timedelta(seconds=1), response_headers=headers)
    time.sleep(2.5)
    assert httpx.get(short, timeout=30).status_code == 403


def test_without_the_secret_minio_signs_each_url(store):
    from repository.s3_store import S3ObjectStore

    plain = S3ObjectStore(store.client, store.bucket, object_lock=False)
    url = plain.presigned_get_url("x", expires=timedelta(seconds=60))
    assert plain._presigner is False and "X-Amz-Signature=" in url

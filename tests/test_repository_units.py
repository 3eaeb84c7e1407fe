"""Pure parts of the repository: folding, URIs and keys, owner identity protection."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from repository import InvalidRequest, Repository, fold
from repository.folding import fold_tokens
from repository.identity import OwnerIdCipher, normalize_owner_id, owner_key
from repository.layout import blob_key, manifest_key, parse_manifest_key, parse_record_uri, sha256_of_blob_key
from repository.s3_store import parse_s3_datetime
from repository.search import fts5_match, tsquery, wants_prefix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nguyễn Văn An", "nguyen van an"),
        ("ĐẶNG THỊ ĐÀO", "dang thi dao"),
        ("Giấy  khai\tsinh\n", "giay khai sinh"),
        ("Quyết định số 12/QĐ-UBND", "quyet dinh so 12/qd-ubnd"),
        ("Hồ Chí Minh", "ho chi minh"),
    ],
)
def test_fold_removes_vietnamese_diacritics_and_d_bar(text, expected):
    assert fold(text) == expected


def test_fold_handles_decomposed_input():
    import unicodedata

    assert fold(unicodedata.normalize("NFD", "Trần Thị Bích Ngọc")) == "tran thi bich ngoc"


def test_fold_removes_every_combining_mark_like_unicodedata():
    import unicodedata

    # marks of other scripts and outside the BMP (musical symbols) go too; base letters stay
    text = "Ð ð a\u0301\u0323 \u05d0\u05b8 x\U0001d167y \U0001f600"
    expected = "d d a \u05d0 xy \U0001f600"
    assert fold(text) == expected
    assert not any(unicodedata.combining(ch) for ch in fold(text))


def test_query_expressions_exact_words_and_explicit_prefix():
    tokens = fold_tokens("Nguyễn Văn*")
    assert tokens == ["nguyen", "van"] and wants_prefix("Nguyễn Văn*") and not wants_prefix("Nguyễn Văn")
    assert fts5_match(tokens) == '"nguyen" AND "van"'
    assert fts5_match(tokens, prefix=True) == '"nguyen" AND "van"*'
    assert tsquery(tokens) == "nguyen & van" and tsquery(tokens, prefix=True) == "nguyen & van:*"


def test_record_uri_with_dotted_agency_code_roundtrips():
    uri = Repository.new_record_uri("000.00.12.H29", "giay_khai_sinh")
    parsed = parse_record_uri(uri)
    assert (parsed.agency_code, parsed.doc_type) == ("000.00.12.H29", "giay_khai_sinh")
    assert len(parsed.ulid) == 26 and str(parsed) == uri
    assert Repository.new_record_uri("H29", "cccd") != Repository.new_record_uri("H29", "cccd")


@pytest.mark.parametrize("bad", ["", "nodots", "A.B.notaulid", "A.b/c.01J9Z3Q7W8X4N5M6P7Q8R9S0T1", "../x.y.01J9Z3Q7W8X4N5M6P7Q8R9S0T1"])
def test_malformed_record_uris_are_rejected(bad):
    with pytest.raises(InvalidRequest):
        parse_record_uri(bad)


def test_doc_type_with_dot_is_rejected():
    with pytest.raises(InvalidRequest):
        Repository.new_record_uri("H29", "giay.khai")


def test_blob_and_manifest_keys():
    digest = hashlib.sha256(b"x").hexdigest()
    key = blob_key(digest)
    assert key == f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert sha256_of_blob_key(key) == digest
    assert sha256_of_blob_key("blobs/sha256/00/00/" + digest) is None
    uri = "H29.cccd.01J9Z3Q7W8X4N5M6P7Q8R9S0T1"
    mkey = manifest_key(uri, 3, digest)
    assert mkey == f"records/{uri}/v000003-{digest[:16]}.json" and parse_manifest_key(mkey) == (uri, 3)
    assert parse_manifest_key(f"records/{uri}/v000003.json") is None
    with pytest.raises(InvalidRequest):
        blob_key("ABC")


def test_owner_key_is_hmac_sha256_of_canonical_id():
    secret = b"s" * 32
    expected = hmac.new(secret, b"001203004567", hashlib.sha256).hexdigest()
    assert owner_key(secret, "001203004567") == expected
    assert owner_key(secret, " 0012 0300 4567 ") == expected
    assert owner_key(b"t" * 32, "001203004567") != expected


@pytest.mark.parametrize(
    ("kind", "raw", "canonical"),
    [("citizen", "001203004567", "001203004567"), ("organization", "0101234567-001", "0101234567001"), ("organization", "0101234567", "0101234567")],
)
def test_owner_ids_normalized(kind, raw, canonical):
    assert normalize_owner_id(kind, raw) == canonical


@pytest.mark.parametrize(("kind", "raw"), [("citizen", "12345"), ("citizen", "00120300456A"), ("robot", "001203004567"), ("organization", "123")])
def test_bad_owner_ids_rejected_without_echoing_them(kind, raw):
    with pytest.raises(InvalidRequest) as err:
        normalize_owner_id(kind, raw)
    assert raw not in str(err.value) or kind == "robot"


def test_owner_id_cipher_roundtrip_and_binding_to_key():
    cipher = OwnerIdCipher(b"k" * 32)
    sealed = cipher.encrypt("001203004567", "key-a")
    assert b"001203004567" not in sealed
    assert cipher.decrypt(sealed, "key-a") == "001203004567"
    assert cipher.encrypt("001203004567", "key-a") != sealed  # random nonce
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        cipher.decrypt(sealed, "key-b")
    with pytest.raises(InvalidTag):
        OwnerIdCipher(b"j" * 32).decrypt(sealed, "key-a")


def test_rgw_nine_digit_retention_date_parses():
    parsed = parse_s3_datetime("2031-11-25T03:45:29.123456789Z")
    assert (parsed.year, parsed.microsecond, parsed.utcoffset().total_seconds()) == (2031, 123456, 0)
    assert parse_s3_datetime("2031-11-25T03:45:29Z").second == 29

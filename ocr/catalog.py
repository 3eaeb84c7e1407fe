"""The catalog of document types (``ocr/catalog.yaml``): one data file, loaded once.

    >>> cat = load_catalog()
    >>> cat.get("giay_khai_sinh").name_vi
    'Giấy khai sinh'
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
UNKNOWN = "unknown"
OwnerKind = Literal["citizen", "organization"]
KNOWN_FIELDS = frozenset({
    "ho_ten", "ngay_sinh", "so_dinh_danh", "so_van_ban", "ngay_ban_hanh", "co_quan_ban_hanh",
    "ma_so_doanh_nghiep",
})


class CatalogError(ValueError):
    """The catalog file is malformed, or a code is not in it."""


@dataclass(frozen=True)
class DocType:
    code: str
    name_vi: str
    name_en: str
    title_patterns: tuple[str, ...]
    fields: tuple[str, ...]
    is_result: bool
    retention_years: int | None  # None = permanent
    owner_kind: OwnerKind
    keywords: tuple[str, ...] = ()
    legal_basis: str = ""


@dataclass(frozen=True)
class Catalog:
    types: tuple[DocType, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """All codes in file order, ``unknown`` included (last)."""
        return tuple(t.code for t in self.types)

    @property
    def known_codes(self) -> tuple[str, ...]:
        """The codes of real document types (``unknown`` excluded)."""
        return tuple(t.code for t in self.types if t.code != UNKNOWN)

    def get(self, code: str) -> DocType:
        for doc_type in self.types:
            if doc_type.code == code:
                return doc_type
        raise CatalogError(f"unknown document type code {code!r}; known: {', '.join(self.codes)}")

    def __contains__(self, code: object) -> bool:
        return any(t.code == code for t in self.types)


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _parse_type(entry: dict, index: int) -> DocType:
    where = f"catalog entry #{index} ({entry.get('code', '?')})"
    required = ("code", "name_vi", "name_en", "title_patterns", "fields", "is_result",
                "retention_years", "owner_kind")
    missing = [k for k in required if k not in entry]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    if entry["owner_kind"] not in ("citizen", "organization"):
        raise CatalogError(f"{where}: owner_kind must be citizen or organization")
    retention = entry["retention_years"]
    if retention is not None and (not isinstance(retention, int) or retention <= 0):
        raise CatalogError(f"{where}: retention_years must be a positive integer or null")
    unknown_fields = set(entry["fields"]) - KNOWN_FIELDS
    if unknown_fields:
        raise CatalogError(f"{where}: fields not extracted by ocr.extract: {sorted(unknown_fields)}")
    return DocType(
        code=str(entry["code"]),
        name_vi=_nfc(entry["name_vi"]),
        name_en=str(entry["name_en"]),
        title_patterns=tuple(_nfc(p) for p in entry["title_patterns"]),
        fields=tuple(entry["fields"]),
        is_result=bool(entry["is_result"]),
        retention_years=retention,
        owner_kind=entry["owner_kind"],
        keywords=tuple(_nfc(k) for k in entry.get("keywords", ())),
        legal_basis=str(entry.get("legal_basis", "")),
    )


def parse_catalog(data: dict) -> Catalog:
    """Build a :class:`Catalog` from the parsed YAML mapping (validates it)."""
    if not isinstance(data, dict) or not isinstance(data.get("types"), list):
        raise CatalogError("catalog must be a mapping with a 'types' list")
    types = tuple(_parse_type(entry, i) for i, entry in enumerate(data["types"]))
    codes = [t.code for t in types]
    duplicates = {c for c in codes if codes.count(c) > 1}
    if duplicates:
        raise CatalogError(f"duplicate codes in catalog: {sorted(duplicates)}")
    if UNKNOWN not in codes:
        raise CatalogError("catalog must define the 'unknown' type")
    return Catalog(types)


@lru_cache(maxsize=4)
def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate the catalog (cached per path)."""
    source = path or CATALOG_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"catalog file {source} not found") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog file {source} is not valid YAML: {exc}") from exc
    return parse_catalog(data)

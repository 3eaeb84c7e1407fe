"""The structured record embedded in every data message (``record.json``, PDF/A-3 /AF Data).

The record is the machine-readable twin of the conversion mark (Decree 137/2024/ND-CP Art. 4):
who converted the paper, when, which pages and images the PDF holds, and the extracted fields
(Circular 01/2023/TT-VPCP metadata). It is documented in ``docs/record-schema.md``.

``owner_ref`` is an opaque key (an HMAC of the owner's identifier), never the ID number itself.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = "1.0"


class RecordError(ValueError):
    """The bytes are not a valid structured record."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ConversionInfo(_Model):
    """The facts of the paper -> data message conversion (the mark, in data)."""

    statement: str = Field(min_length=1)
    converted_at: datetime
    agency_name: str = Field(min_length=1)
    agency_code: str = ""
    officer_name: str = Field(min_length=1)
    system_name: str = ""
    lookup_url: str | None = None

    @field_validator("converted_at")
    @classmethod
    def _tz_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("converted_at must be timezone-aware (e.g. +07:00)")
        return value


class FieldEntry(_Model):
    """One extracted field, as normalized by the OCR stage (see ``ocr.types.FieldValue``)."""

    value: str | None
    raw: str = ""
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    valid: bool = True
    error: str | None = None


class SourceFile(_Model):
    """One input file the pages came from (basename only, never a full path)."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media: str = ""
    pages: int = Field(default=1, ge=1)


class PageEntry(_Model):
    """One page of the data message; ``image_sha256`` is filled by the PDF builder."""

    index: int = Field(ge=0)
    source: str
    source_index: int = Field(ge=0)
    width_px: int = Field(gt=0)
    height_px: int = Field(gt=0)
    dpi: float = Field(gt=0)
    image_sha256: str = ""  # sha256 of the exact image stream bytes embedded in the PDF
    image_encoding: str = ""  # "jpeg" (DCTDecode), "ccitt-g4" (CCITTFaxDecode), "flate"
    image_bytes: int = 0  # size of that image stream


class StructuredRecord(_Model):
    """Everything a receiving system needs to reuse the converted document without the PDF."""

    schema_version: str = SCHEMA_VERSION
    uri: str = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    doc_type: str
    doc_type_name: str
    owner_ref: str
    owner_kind: str = "citizen"
    title: str = ""
    fields: dict[str, FieldEntry] = Field(default_factory=dict)
    source_files: list[SourceFile] = Field(default_factory=list)
    pages: list[PageEntry] = Field(default_factory=list)
    conversion: ConversionInfo
    dossier_code: str | None = None
    desk: str | None = None

    def to_json_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, UTF-8 (no \\u escapes), compact separators."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )

    @classmethod
    def from_json_bytes(cls, data: bytes) -> StructuredRecord:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise RecordError(f"not a valid structured record: {exc}") from exc

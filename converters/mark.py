"""Wording and content of the Decree 137 conversion mark and of the paper-copy mark.

The wording is data (sector rules may change it): :class:`MarkWording` holds every label, with
Vietnamese defaults. Functions here are pure: they turn facts into lines of text and QR payloads;
drawing them is ``converters.layout``'s job.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from converters.record import StructuredRecord

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_W = TypeVar("_W", "MarkWording", "PaperWording")

DEFAULT_STATEMENT = "Văn bản này được chuyển đổi từ văn bản giấy sang thông điệp dữ liệu"


@dataclass(frozen=True)
class MarkWording:
    """Labels of the conversion mark (data -> paper wording lives in :class:`PaperWording`).

    The statement printed is ``record.conversion.statement`` (the record is authoritative);
    ``statement`` here is the default callers put there.
    """

    statement: str = DEFAULT_STATEMENT
    time_label: str = "Thời gian chuyển đổi"
    agency_label: str = "Cơ quan chuyển đổi"
    officer_label: str = "Người thực hiện"
    uri_label: str = "Mã tra cứu"
    lookup_label: str = "Tra cứu tại"
    system_label: str = "Hệ thống"
    officer_box_label: str = "Chữ ký số của người thực hiện số hoá"
    agency_box_label: str = "Chữ ký số của cơ quan chuyển đổi"


@dataclass(frozen=True)
class PaperWording:
    """Labels of the mark printed on a paper copy made from a data message (LET 2023 Art. 12(2))."""

    statement: str = "Bản giấy này được chuyển đổi từ thông điệp dữ liệu"
    time_label: str = "Thời gian chuyển đổi"
    printed_by_label: str = "Người thực hiện"
    system_label: str = "Hệ thống lưu giữ bản gốc"
    owner_label: str = "Chủ quản hệ thống"
    uri_label: str = "Mã tra cứu"
    lookup_label: str = "Tra cứu bản gốc tại"
    signature_label: str = "Tình trạng chữ ký số khi in"


class WordingError(ValueError):
    """A wording file is unreadable or names labels that do not exist."""


def load_wording(path: str | Path) -> tuple[MarkWording, PaperWording]:
    """Agency-specific wording from a YAML file (sector rules set the exact text)::

        conversion:            # MarkWording fields; omitted ones keep the default
          statement: "Bản điện tử chuyển đổi từ văn bản giấy"
          agency_label: "Đơn vị chuyển đổi"
        paper:                 # PaperWording fields
          statement: "Bản giấy chuyển đổi từ thông điệp dữ liệu"
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WordingError(f"cannot read wording file {path}: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"conversion", "paper"}:
        raise WordingError(f"{path}: expected the sections 'conversion' and/or 'paper'")
    return (_wording(MarkWording, data.get("conversion") or {}, path),
            _wording(PaperWording, data.get("paper") or {}, path))


def _wording(kind: type[_W], values: object, path: str | Path) -> _W:
    names = {f.name for f in fields(kind)}
    if not isinstance(values, dict) or set(values) - names or not all(
            isinstance(v, str) and v.strip() for v in values.values()):
        raise WordingError(f"{path}: {kind.__name__} takes non-empty texts for "
                           f"{', '.join(sorted(names))}")
    return kind(**{key: nfc(value) for key, value in values.items()})


@dataclass(frozen=True)
class MarkText:
    """The mark as lines of text, plus the QR payload carrying the same facts."""

    lines: list[str]
    qr_payload: str
    iso_time: str
    facts: dict[str, str] = field(default_factory=dict)


def nfc(text: str) -> str:
    """Unicode NFC (TCVN 6909:2001 text is precomposed): one glyph per Vietnamese letter."""
    return unicodedata.normalize("NFC", text)


def to_vietnam_time(moment: datetime) -> datetime:
    """The same instant in Vietnam time (UTC+07:00); naive datetimes are rejected."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(VIETNAM_TZ)


def iso_vietnam(moment: datetime) -> str:
    """ISO 8601 to the second with the Vietnam offset, e.g. ``2026-11-25T09:15:02+07:00``."""
    return to_vietnam_time(moment).replace(microsecond=0).isoformat()


def vietnamese_datetime(moment: datetime) -> str:
    """``ngày 25 tháng 11 năm 2026, 09:15:02`` (Vietnam time)."""
    local = to_vietnam_time(moment)
    return (
        f"ngày {local.day:02d} tháng {local.month:02d} năm {local.year}, "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def conversion_mark(record: StructuredRecord, wording: MarkWording | None = None) -> MarkText:
    """The Decree 137 Art. 4 mark: statement, time, agency, officer, URI (+ lookup URL)."""
    wording = wording or MarkWording()
    info = record.conversion
    iso_time = iso_vietnam(info.converted_at)
    statement = info.statement or wording.statement
    agency = info.agency_name + (f" ({info.agency_code})" if info.agency_code else "")
    lines = [
        statement,
        f"{wording.time_label}: {vietnamese_datetime(info.converted_at)} ({iso_time})",
        f"{wording.agency_label}: {agency}",
        f"{wording.officer_label}: {info.officer_name}",
        f"{wording.uri_label}: {record.uri}",
    ]
    if info.lookup_url:
        lines.append(f"{wording.lookup_label}: {info.lookup_url}")
    facts = {
        "statement": statement,
        "converted_at": iso_time,
        "agency": agency,
        "officer": info.officer_name,
        "uri": record.uri,
    }
    if info.lookup_url:
        facts["lookup_url"] = info.lookup_url
    lines = [nfc(line) for line in lines]
    facts = {key: nfc(value) for key, value in facts.items()}
    return MarkText(lines=lines, qr_payload=_qr_text(lines[0], facts, wording), iso_time=iso_time,
                    facts=facts)


def _qr_text(statement: str, facts: dict[str, str], wording: MarkWording) -> str:
    labels = {
        "converted_at": wording.time_label,
        "agency": wording.agency_label,
        "officer": wording.officer_label,
        "uri": wording.uri_label,
        "lookup_url": wording.lookup_label,
    }
    body = [f"{labels[key]}: {value}" for key, value in facts.items() if key in labels]
    return "\n".join([statement, *body])


@dataclass(frozen=True)
class PaperFacts:
    """What the paper-copy mark states (built by ``converters.paper`` from ``PaperCopyInfo``)."""

    printed_at: datetime
    printed_by: str
    system_name: str
    system_owner: str
    uri: str
    lookup_url: str | None
    signature_status: str


def paper_mark(facts: PaperFacts, wording: PaperWording | None = None) -> MarkText:
    """The LET 2023 Art. 12(2) / Decree 137 Art. 5 mark for a paper copy."""
    wording = wording or PaperWording()
    iso_time = iso_vietnam(facts.printed_at)
    lines = [
        wording.statement,
        f"{wording.time_label}: {vietnamese_datetime(facts.printed_at)} ({iso_time})",
        f"{wording.printed_by_label}: {facts.printed_by}",
        f"{wording.system_label}: {facts.system_name}",
        f"{wording.owner_label}: {facts.system_owner}",
        f"{wording.uri_label}: {facts.uri}",
    ]
    if facts.lookup_url:
        lines.append(f"{wording.lookup_label}: {facts.lookup_url}")
    lines.append(f"{wording.signature_label}: {facts.signature_status}")
    qr_lines = [wording.statement, f"{wording.time_label}: {iso_time}",
                f"{wording.printed_by_label}: {facts.printed_by}",
                f"{wording.system_label}: {facts.system_name}",
                f"{wording.owner_label}: {facts.system_owner}",
                f"{wording.uri_label}: {facts.uri}"]
    if facts.lookup_url:
        qr_lines.append(f"{wording.lookup_label}: {facts.lookup_url}")
    return MarkText(lines=[nfc(line) for line in lines], qr_payload=nfc("\n".join(qr_lines)),
                    iso_time=iso_time, facts={"printed_at": iso_time, "uri": facts.uri})

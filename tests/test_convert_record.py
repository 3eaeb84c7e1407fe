"""Structured record (schema 1.0) and mark wording."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from converters.mark import MarkWording, conversion_mark, iso_vietnam, vietnamese_datetime
from converters.record import ConversionInfo, RecordError, StructuredRecord
from tests.test_convert_support import CONVERTED_AT, make_record


def test_json_is_canonical_utf8_and_round_trips():
    record = make_record()
    data = record.to_json_bytes()
    assert "Nguyễn Thị Lan".encode() in data  # no \\u escapes
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed)
    assert list(parsed["conversion"]) == sorted(parsed["conversion"])
    assert parsed["schema_version"] == "1.0"
    assert StructuredRecord.from_json_bytes(data) == record
    assert StructuredRecord.from_json_bytes(data).to_json_bytes() == data


def test_times_keep_their_offset_and_instant():
    record = make_record()
    data = json.loads(record.to_json_bytes())
    assert datetime.fromisoformat(data["conversion"]["converted_at"]) == CONVERTED_AT


def test_invalid_records_are_rejected_clearly():
    with pytest.raises(RecordError, match="not a valid structured record"):
        StructuredRecord.from_json_bytes(b'{"uri": "x"}')
    with pytest.raises(RecordError):
        StructuredRecord.from_json_bytes(b"\xff not json")
    with pytest.raises(ValidationError, match="timezone-aware"):
        ConversionInfo(statement="s", converted_at=datetime(2026, 11, 25, 9, 15), agency_name="A",
                       officer_name="B")
    with pytest.raises(ValidationError):
        make_record(source_files=[{"name": "a.png", "sha256": "not-a-digest"}])


def test_vietnamese_time_formats():
    moment = datetime(2026, 11, 25, 2, 15, 2, 500_000, tzinfo=timezone.utc)
    assert iso_vietnam(moment) == "2026-11-25T09:15:02+07:00"
    assert vietnamese_datetime(moment) == "ngày 25 tháng 11 năm 2026, 09:15:02"
    late = datetime(2026, 12, 31, 20, 0, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert iso_vietnam(late) == "2027-01-01T08:00:00+07:00"
    with pytest.raises(ValueError):
        iso_vietnam(datetime(2026, 1, 1))


def test_mark_wording_is_data():
    record = make_record()
    default = conversion_mark(record)
    assert default.lines[0] == record.conversion.statement
    assert any(line.startswith("Cơ quan chuyển đổi: Uỷ ban nhân dân phường Bến Nghé")
               for line in default.lines)
    custom = conversion_mark(record, MarkWording(agency_label="Đơn vị chuyển đổi"))
    assert any(line.startswith("Đơn vị chuyển đổi: ") for line in custom.lines)
    assert "Đơn vị chuyển đổi: " in custom.qr_payload


def test_mark_text_is_nfc():
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "Uỷ ban nhân dân phường Bến Nghé")
    record = make_record()
    record.conversion.agency_name = decomposed
    mark = conversion_mark(record)
    assert "Uỷ ban nhân dân phường Bến Nghé" in mark.lines[2]
    assert unicodedata.is_normalized("NFC", mark.qr_payload)


def test_wording_loads_from_yaml(tmp_path):
    from converters.mark import WordingError, load_wording

    path = tmp_path / "wording.yaml"
    path.write_text("conversion:\n  agency_label: Đơn vị chuyển đổi\n"
                    "paper:\n  statement: Bản giấy chuyển đổi từ thông điệp dữ liệu\n",
                    encoding="utf-8")
    conversion, paper = load_wording(path)
    assert conversion.agency_label == "Đơn vị chuyển đổi"
    assert conversion.time_label == MarkWording().time_label  # omitted: default kept
    assert paper.statement == "Bản giấy chuyển đổi từ thông điệp dữ liệu"
    path.write_text("conversion:\n  agencylabel: typo\n", encoding="utf-8")
    with pytest.raises(WordingError, match="MarkWording takes"):
        load_wording(path)
    with pytest.raises(WordingError, match="cannot read"):
        load_wording(tmp_path / "missing.yaml")

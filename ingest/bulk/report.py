"""What a bulk run did, unit by unit (CSV) and in sum (a table / JSON): where every page went."""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.ledger import StateCount, UnitRow, UnitState

CSV_COLUMNS = ("seq", "state", "reason_code", "reason", "source", "pages", "box", "file_no",
               "manifest_line", "dossier_code", "doc_type", "confidence", "record_uri", "version",
               "attempts", "seconds")
ACTIVE_STATES = (UnitState.PENDING, UnitState.RUNNING, UnitState.STORING)


def page_ranges(indices: list[int]) -> str:
    """0-based indices -> "p1-3,5" (1-based, like a person counts pages)."""
    if not indices:
        return ""
    parts, start, prev = [], indices[0], indices[0]
    for i in indices[1:] + [None]:  # type: ignore[list-item]
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start + 1}" if start == prev else f"{start + 1}-{prev + 1}")
        if i is not None:
            start = prev = i
    return "p" + ",".join(parts)


def source_text(unit: UnitRow) -> str:
    return "; ".join(f"{s['path']} {page_ranges(s['pages'])}".strip() for s in unit.sources)


def unit_row(unit: UnitRow) -> dict[str, object]:
    return {"seq": unit.seq, "state": unit.state, "reason_code": unit.reason_code or "",
            "reason": unit.reason or "", "source": source_text(unit), "pages": unit.page_count,
            "box": unit.archive_ref.get("box", ""), "file_no": unit.archive_ref.get("file_no", ""),
            "manifest_line": unit.manifest_line or "", "dossier_code": unit.dossier_code or "",
            "doc_type": unit.doc_type or unit.doc_type_hint or "",
            "confidence": "" if unit.confidence is None else f"{unit.confidence:.2f}",
            "record_uri": unit.record_uri if unit.state in (UnitState.STORED, UnitState.SKIPPED) and unit.record_uri else "",
            "version": unit.version or "", "attempts": unit.attempts,
            "seconds": "" if unit.seconds is None else f"{unit.seconds:.1f}"}


def report_csv(units: list[UnitRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for unit in units:
        writer.writerow(unit_row(unit))
    return buffer.getvalue()


def write_report(units: list[UnitRow], path: Path) -> None:
    path.write_text(report_csv(units), "utf-8-sig")  # with BOM: Excel opens Vietnamese text right


@dataclass(frozen=True)
class Summary:
    units: int
    pages: int
    stored_units: int
    stored_pages: int
    review_units: int
    review_pages: int
    failed_units: int
    failed_pages: int
    skipped_units: int
    skipped_pages: int
    open_units: int
    open_pages: int

    @property
    def done_pages(self) -> int:
        return self.pages - self.open_pages

    @property
    def complete(self) -> bool:
        return self.open_units == 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def summarize(counts: dict[str, StateCount]) -> Summary:
    def get(*states: str) -> StateCount:
        picked = [counts.get(s, StateCount()) for s in states]
        return StateCount(sum(c.units for c in picked), sum(c.pages for c in picked))

    every = get(*[s.value for s in UnitState])
    stored, review = get(UnitState.STORED), get(UnitState.REVIEW)
    failed, skipped = get(UnitState.FAILED), get(UnitState.SKIPPED)
    active = get(*ACTIVE_STATES)
    return Summary(units=every.units, pages=every.pages, stored_units=stored.units, stored_pages=stored.pages,
                   review_units=review.units, review_pages=review.pages, failed_units=failed.units,
                   failed_pages=failed.pages, skipped_units=skipped.units, skipped_pages=skipped.pages,
                   open_units=active.units, open_pages=active.pages)

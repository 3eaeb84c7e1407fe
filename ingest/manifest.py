"""The bulk manifest: which scans belong to whom, and where they sit in the paper archive.

A CSV file (UTF-8, with or without BOM; comma, semicolon or tab separated) with a header row.
Columns (order free, names case-insensitive; see ``docs/bulk.md``):

=============  ========  ===========================================================================
column         required  meaning
=============  ========  ===========================================================================
path           yes       a file or folder, relative to SOURCE (``/`` separators); a folder row
                         applies to every file below it, the most specific row wins
owner_id       no*       12-digit personal ID or 10/13-digit enterprise code (*may come from the
                         separator sheets instead)
doc_type       no        document type code (skips classification)
dossier_code   no        dossier code (mã hồ sơ)
box            no        archive box number (hộp số)
file_no        no        archive file number (hồ sơ số)
group          no        ``file`` (default): each file is one document; ``folder``: all files of
                         the folder, in name order, are the pages of one document
split          no        ``separator`` (default): QR separator sheets split a file into documents;
                         ``blank``: blank pages also separate; ``none``: never split
=============  ========  ===========================================================================

Every problem is reported with its line and column, all at once, before anything runs.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.pipeline import PipelineError, owner_kind
from ocr.catalog import load_catalog

COLUMNS = ("path", "owner_id", "doc_type", "dossier_code", "box", "file_no", "group", "split")
GROUPS = ("file", "folder")
SPLITS = ("separator", "blank", "none")
MAX_FIELD = 64


@dataclass(frozen=True)
class ManifestIssue:
    line: int  # 1-based line in the CSV file (the header is line 1)
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class ManifestError(ValueError):
    """The manifest cannot be used; ``issues`` names every bad line and column."""

    def __init__(self, name: str, issues: list[ManifestIssue]) -> None:
        self.name, self.issues = name, issues
        listed = "\n".join(f"  {name}: {i}" for i in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"{name}: {len(issues)} problem(s)\n{listed}{more}")


@dataclass(frozen=True)
class ManifestRow:
    line: int
    path: str  # normalized relative POSIX path; "" or "." means the whole SOURCE
    owner_id: str | None = None
    doc_type: str | None = None
    dossier_code: str | None = None
    box: str | None = None
    file_no: str | None = None
    group: str = "file"
    split: str = "separator"

    @property
    def archive_ref(self) -> dict[str, str]:
        return {k: v for k, v in (("box", self.box), ("file_no", self.file_no)) if v}

    def covers(self, rel: str) -> bool:
        return self.path in ("", ".") or rel == self.path or rel.startswith(self.path + "/")


@dataclass
class Manifest:
    name: str
    sha256: str
    rows: list[ManifestRow] = field(default_factory=list)

    def row_for(self, rel: str) -> ManifestRow | None:
        """The most specific row covering a source file's relative path."""
        best: ManifestRow | None = None
        for row in self.rows:
            if row.covers(rel) and (best is None or len(row.path) > len(best.path)):
                best = row
        return best


def normalize_rel_path(raw: str) -> str | None:
    """A clean relative POSIX path, or None if it escapes the source (``..``, absolute)."""
    text = raw.strip().replace("\\", "/")
    if not text or text in (".", "./"):
        return ""
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        return None
    return str(path)


def load_manifest(path: Path) -> Manifest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(path.name, [ManifestIssue(0, "-", f"cannot read the file ({exc.strerror})")]) from None
    return parse_manifest(data, path.name)


def parse_manifest(data: bytes, name: str = "manifest.csv") -> Manifest:
    """Parse and validate a manifest; raise :class:`ManifestError` listing every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ManifestError(name, [ManifestIssue(line, "-", "not UTF-8 text (save the CSV as UTF-8)")]) from None
    if not text.strip():
        raise ManifestError(name, [ManifestIssue(1, "-", "the manifest is empty")])
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    header = [h.strip().lower() for h in next(reader)]
    issues = _header_issues(header)
    if issues:
        raise ManifestError(name, issues)
    catalog_codes = set(load_catalog().known_codes)
    rows: list[ManifestRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            issues.append(ManifestIssue(line, "-", f"{len(record)} cells but the header has {len(header)}"))
            continue
        cells = {h: (record[i].strip() if i < len(record) else "") for i, h in enumerate(header)}
        row, row_issues = _parse_row(line, cells, catalog_codes)
        issues.extend(row_issues)
        if row is None:
            continue
        if row.path in seen:
            issues.append(ManifestIssue(line, "path", f"{row.path!r} is already listed on line {seen[row.path]}"))
            continue
        seen[row.path] = line
        rows.append(row)
    if not rows and not issues:
        issues.append(ManifestIssue(2, "-", "the manifest has a header but no rows"))
    if issues:
        raise ManifestError(name, issues)
    return Manifest(name=name, sha256=hashlib.sha256(data).hexdigest(), rows=rows)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first = text.splitlines()[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _header_issues(header: list[str]) -> list[ManifestIssue]:
    issues = []
    for index, name in enumerate(header):
        if name not in COLUMNS:
            issues.append(ManifestIssue(1, name or f"#{index + 1}",
                                        f"unknown column (expected some of: {', '.join(COLUMNS)})"))
        elif header.index(name) != index:
            issues.append(ManifestIssue(1, name, "column appears twice"))
    if "path" not in header:
        issues.append(ManifestIssue(1, "path", "the required column 'path' is missing"))
    return issues


def _parse_row(line: int, cells: dict[str, str], catalog_codes: set[str]) -> tuple[ManifestRow | None, list[ManifestIssue]]:
    issues: list[ManifestIssue] = []

    def bad(column: str, message: str) -> None:
        issues.append(ManifestIssue(line, column, message))

    path = normalize_rel_path(cells.get("path", ""))
    if path is None:
        bad("path", "must be relative to SOURCE and must not contain '..'")
    owner = cells.get("owner_id") or None
    if owner:
        try:
            owner_kind(owner)
        except PipelineError as exc:
            bad("owner_id", exc.message)  # never echoes the number itself
    doc_type = cells.get("doc_type") or None
    if doc_type and doc_type not in catalog_codes:
        bad("doc_type", f"unknown document type {doc_type!r} (see `sohoa types` / ocr/catalog.yaml)")
    for column in ("dossier_code", "box", "file_no"):
        value = cells.get(column, "")
        if len(value) > MAX_FIELD:
            bad(column, f"longer than {MAX_FIELD} characters")
    group = (cells.get("group") or "file").lower()
    if group not in GROUPS:
        bad("group", f"must be one of {', '.join(GROUPS)}, got {group!r}")
    split = (cells.get("split") or "separator").lower()
    if split not in SPLITS:
        bad("split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
    if issues or path is None:
        return None, issues
    return ManifestRow(line=line, path=path, owner_id=owner, doc_type=doc_type,
                       dossier_code=cells.get("dossier_code") or None, box=cells.get("box") or None,
                       file_no=cells.get("file_no") or None, group=group, split=split), issues

"""Planning a bulk run: SOURCE + manifest -> units (one unit = one document to store once).

Every page of every source file ends up in exactly one unit: a document to digitize, or a
``skipped`` unit saying why the page is not digitized (separator sheet, blank back of a sheet,
separating blank page), or a ``failed`` unit (unreadable file, no manifest row, no owner).

The idempotency key of a unit is the SHA-256 of its source content (each file's SHA-256 with the
page indices taken from it) plus the owner reference and dossier code: the same pages for the same
owner are the same document, whichever run or manifest line brings them.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ulid import ULID

from ingest.ledger import NewUnit, UnitState
from ingest.load import InputError
from ingest.manifest import Manifest, ManifestRow
from ingest.pipeline import PipelineError, owner_kind
from ingest.separator import SeparatorInfo, page_count, plan_segments, scan_marks
from ocr.catalog import load_catalog

SCAN_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".pdf"})


class SourceError(ValueError):
    """SOURCE cannot be listed (missing, empty, a list file naming files outside its folder)."""


@dataclass(frozen=True)
class SourceSet:
    base: Path  # every unit's file path is relative to this folder
    files: list[str]  # relative POSIX paths, in processing order


def discover(source: Path) -> SourceSet:
    """The files of SOURCE: a folder tree (every file, sorted), or a list file (one path a line,
    relative to the list's folder; ``#`` comments)."""
    source = source.expanduser().resolve()
    if source.is_dir():
        files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts))
        if not files:
            raise SourceError(f"{source}: the folder has no files")
        return SourceSet(base=source, files=files)
    if source.is_file():
        base = source.parent
        files: list[str] = []
        for number, raw in enumerate(source.read_text("utf-8").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            path = Path(line) if os.path.isabs(line) else base / line
            path = path.resolve()
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                raise SourceError(f"{source.name}: line {number}: {line!r} is outside {base}") from None
            if not path.is_file():
                raise SourceError(f"{source.name}: line {number}: no such file {line!r}")
            files.append(rel)
        if not files:
            raise SourceError(f"{source.name}: the list names no files")
        return SourceSet(base=base, files=files)
    raise SourceError(f"{source}: no such file or folder")


@dataclass
class UnitDraft:
    """A unit before it gets its sequence number, key and ULID."""

    sources: list[dict]  # [{"path", "sha256", "pages": [...]}]
    row: ManifestRow | None
    info: SeparatorInfo | None = None
    state: UnitState = UnitState.PENDING
    reason_code: str | None = None
    reason: str | None = None

    @property
    def page_count(self) -> int:
        return sum(len(s["pages"]) for s in self.sources)


@dataclass(frozen=True)
class Stream:
    """Pages that are split together: one file (group=file) or a folder's files (group=folder)."""

    files: list[str]
    row: ManifestRow | None


def streams(sources: SourceSet, manifest: Manifest) -> list[Stream]:
    out: list[Stream] = []
    folders: dict[tuple[str, int], list[str]] = {}
    for rel in sources.files:
        row = manifest.row_for(rel)
        if row is not None and row.group == "folder":
            folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
            key = (folder, row.line)
            if key not in folders:
                folders[key] = []
                out.append(Stream(files=folders[key], row=row))
            folders[key].append(rel)
        else:
            out.append(Stream(files=[rel], row=row))
    return out


def plan_stream(base: Path, stream: Stream) -> list[UnitDraft]:
    """Read a stream's files once (hash, page count, separator/blank marks) and cut it into units."""
    row = stream.row
    drafts: list[UnitDraft] = []
    pages: list[tuple[str, str, int]] = []  # (path, sha256, page index) in stream order
    marks = []
    for rel in stream.files:
        path = base / rel
        if Path(rel).suffix.lower() not in SCAN_SUFFIXES:
            drafts.append(_failed([{"path": rel, "sha256": "", "pages": []}], row, "not_a_scan",
                                  "not a scan file (by its extension); not digitized", UnitState.SKIPPED))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            drafts.append(_failed([{"path": rel, "sha256": "", "pages": []}], row, "unreadable",
                                  f"cannot read file ({exc.strerror})"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if row is None:
            drafts.append(_failed([{"path": rel, "sha256": digest, "pages": _safe_pages(data, rel)}], None,
                                  "not_in_manifest", "no manifest row covers this file"))
            continue
        try:
            count = page_count(data, rel)
            if row.split == "none":
                file_marks = None
            else:
                file_marks = scan_marks(data, rel, detect_blank=row.split == "blank")
        except InputError as exc:
            drafts.append(_failed([{"path": rel, "sha256": digest, "pages": []}], row, exc.code, exc.message))
            continue
        if file_marks is not None and len(file_marks) != count:
            drafts.append(_failed([{"path": rel, "sha256": digest, "pages": []}], row, "corrupt",
                                  f"{len(file_marks)} of {count} pages could be read"))
            continue
        for index in range(count):
            pages.append((rel, digest, index))
        marks.extend(file_marks if file_marks is not None else [None] * count)
    if not pages:
        return drafts
    if row is not None and row.split != "none":
        plan = plan_segments(marks, split_on_blank=row.split == "blank")
        segments = [(seg.pages, seg.info) for seg in plan.segments]
        for position, reason_code in sorted(plan.dropped.items()):
            rel, digest, index = pages[position]
            text = "separator sheet" if reason_code == "separator_sheet" else "blank page"
            drafts.append(_failed([{"path": rel, "sha256": digest, "pages": [index]}], row, reason_code,
                                  f"{text}; not digitized", UnitState.SKIPPED))
    else:
        segments = [(list(range(len(pages))), None)]
    for positions, info in segments:
        drafts.append(UnitDraft(sources=_group_sources(pages[p] for p in positions), row=row, info=info))
    return sorted(drafts, key=_first_page(pages))


def _first_page(pages: list[tuple[str, str, int]]) -> Callable[[UnitDraft], tuple]:
    order = {(rel, index): n for n, (rel, _, index) in enumerate(pages)}

    def key(draft: UnitDraft) -> tuple:
        first = draft.sources[0]
        return (order.get((first["path"], first["pages"][0] if first["pages"] else -1), -1), first["path"])
    return key


def _group_sources(pages: Iterable[tuple[str, str, int]]) -> list[dict]:
    out: list[dict] = []
    for rel, digest, index in pages:
        if out and out[-1]["path"] == rel:
            out[-1]["pages"].append(index)
        else:
            out.append({"path": rel, "sha256": digest, "pages": [index]})
    return out


def _safe_pages(data: bytes, name: str) -> list[int]:
    try:
        return list(range(page_count(data, name)))
    except InputError:
        return []


def _failed(sources: list[dict], row: ManifestRow | None, code: str, message: str,
            state: UnitState = UnitState.FAILED) -> UnitDraft:
    return UnitDraft(sources=sources, row=row, state=state, reason_code=code, reason=message)


# ---- from drafts to ledger units ----------------------------------------------------------------
@dataclass
class UnitIdentity:
    """Turns owner IDs into the opaque reference + sealed form the ledger keeps."""

    owner_ref: Callable[[str], str]
    seal: Callable[[str, str], bytes]  # (owner_id, owner_ref) -> sealed bytes
    known_types: frozenset[str] = field(default_factory=lambda: frozenset(load_catalog().known_codes))


def resolve(draft: UnitDraft) -> tuple[str | None, str | None, str | None]:
    """(owner_id, doc_type, dossier_code) of a document: its separator sheet wins over its row."""
    info, row = draft.info, draft.row
    owner = (info.owner_id if info else None) or (row.owner_id if row else None)
    doc_type = (info.doc_type if info else None) or (row.doc_type if row else None)
    dossier = (info.dossier_code if info else None) or (row.dossier_code if row else None)
    return owner, doc_type, dossier


def unit_key(sources: list[dict], owner_ref: str | None, dossier_code: str | None) -> str:
    material = json.dumps({"sources": [[s["sha256"], s["pages"]] for s in sources],
                           "owner": owner_ref, "dossier": dossier_code}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def fresh_ulid(key: str) -> str:
    """A ULID whose time part is now and whose random part comes from the unit key."""
    now_ms = int(ULID().milliseconds)
    return str(ULID.from_bytes(now_ms.to_bytes(6, "big") + bytes.fromhex(key)[:10]))


def to_new_unit(seq: int, draft: UnitDraft, identity: UnitIdentity) -> NewUnit:
    row = draft.row
    owner, doc_type, dossier = resolve(draft)
    state, code, reason = draft.state, draft.reason_code, draft.reason
    if state == UnitState.PENDING:
        code, reason = _check_document(owner, doc_type, identity, row)
        if code:
            state = UnitState.FAILED
    owner_ref = identity.owner_ref(owner) if owner and state != UnitState.FAILED else None
    sealed = identity.seal(owner, owner_ref) if owner_ref and owner else None
    key = unit_key(draft.sources, owner_ref, dossier)
    return NewUnit(seq=seq, unit_key=key, sources=draft.sources, page_count=draft.page_count,
                   record_ulid=fresh_ulid(key), owner_ref=owner_ref, owner_sealed=sealed,
                   doc_type_hint=doc_type, dossier_code=dossier,
                   archive_ref=row.archive_ref if row else {}, manifest_line=row.line if row else None,
                   state=state, reason_code=code, reason=reason)


def _check_document(owner: str | None, doc_type: str | None, identity: UnitIdentity,
                    row: ManifestRow | None) -> tuple[str | None, str | None]:
    where = f"manifest line {row.line}" if row else "the manifest"
    if not owner:
        return "no_owner", f"no owner ID: set owner_id on {where} or use separator sheets carrying the owner"
    try:
        owner_kind(owner)
    except PipelineError as exc:
        return "invalid_owner", f"separator sheet: {exc.message}"
    if doc_type and doc_type not in identity.known_types:
        return "unknown_type", f"separator sheet: unknown document type {doc_type!r}"
    return None, None

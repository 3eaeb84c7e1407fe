"""Desk drafts on disk: the scans a citizen handed over and what the system read from them.

One draft = one document being received at the desk. Everything lives under
``$SOHOA_HOME/desk/drafts/<draft id>/`` so nothing is lost when the server restarts::

    draft.json        the draft's state (pydantic model below), rewritten atomically
    uploads/NN-name   the scan files exactly as uploaded (written before any processing)
    analysis.pickle   the OCR analysis (ocr.types.Analysis, picklable by contract)
    pages/N.jpg       page views rendered from the archive images (N = analysis page index)
    thumbs/N.jpg      small page thumbnails
    receipt.pdf       the citizen's receipt, once confirmed

Draft ids are ULIDs (sortable by creation time); personal ID numbers never appear in paths.
Files are created owner-readable only (``0600``): the directory holds personal data.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from ulid import ULID

from ocr.types import Analysis

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ANALYSIS_FORMAT = 1  # bump when ocr.types changes incompatibly: old pickles are re-analyzed
_DRAFT_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_SAFE_NAME = re.compile(r"[^\w.\-]+")

Status = Literal["received", "processing", "ready", "confirming", "confirmed", "failed"]
OPEN_STATUSES: frozenset[str] = frozenset({"received", "processing", "ready", "failed"})


class DraftNotFound(KeyError):
    """No draft with that id (or a malformed id)."""


class Upload(BaseModel):
    name: str  # the file's own name (basename), shown to the officer and kept in the record
    stored: str  # file name under uploads/
    sha256: str
    size: int


class PageEdit(BaseModel):
    """One page as the officer arranged it: which analyzed page, turned how far."""

    index: int  # index into Analysis.pages
    rotation: int = 0  # extra clockwise rotation: 0, 90, 180 or 270


class Failure(BaseModel):
    code: str
    message: str


class Outcome(BaseModel):
    """What confirming produced: the stored record and its signature check."""

    uri: str
    version: int
    sha256: str
    owner_key: str = ""  # the repository's opaque owner reference (for audit entries)
    doc_type: str
    verdict: str  # TOTAL_PASSED / INDETERMINATE / TOTAL_FAILED
    verdict_vi: str
    verdict_en: str
    signatures: int
    confirmed_at: datetime
    seconds: float
    officer: str = ""  # login of the desk user who confirmed and signed personally
    officer_name: str = ""  # their full name, as in the signature, the mark and the receipt


class Draft(BaseModel):
    id: str
    created_at: datetime
    updated_at: datetime
    officer: str  # login name of the officer who received it
    owner_id: str  # the citizen's personal ID / organization code (never logged)
    dossier_code: str | None = None
    uploads: list[Upload] = Field(default_factory=list)
    status: Status = "received"
    stage: str = "received"  # finer progress: received, loading, recognizing, rendering, ready
    error: Failure | None = None
    # from the analysis (cached here so lists do not unpickle images)
    detected_type: str | None = None
    confidence: float = 0.0
    page_count: int = 0
    analysis_seconds: float = 0.0
    # the officer's review
    doc_type: str | None = None  # chosen type (None: the detected one)
    pages: list[PageEdit] = Field(default_factory=list)
    values: dict[str, str] = Field(default_factory=dict)  # field name -> value as typed
    needs_review: bool = False  # low confidence, unknown type or invalid fields
    record_uri: str | None = None  # chosen before the first confirm attempt: a retry never duplicates
    outcome: Outcome | None = None

    @property
    def effective_type(self) -> str:
        return self.doc_type or self.detected_type or "unknown"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def created_local(self) -> datetime:
        return self.created_at.astimezone(VIETNAM_TZ)


def now() -> datetime:
    return datetime.now(VIETNAM_TZ)


def safe_filename(name: str) -> str:
    """A basename safe to use on disk (keeps Vietnamese letters, drops path parts/specials)."""
    base = Path(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    base = _SAFE_NAME.sub("_", base).strip("._") or "scan"
    return base[:120]


class DraftStore:
    """Drafts under one directory; a lock per draft serializes read-modify-write cycles."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # ---- paths -------------------------------------------------------------------------
    def directory(self, draft_id: str) -> Path:
        if not _DRAFT_ID.match(draft_id):
            raise DraftNotFound(draft_id)
        return self.root / draft_id

    def upload_path(self, draft: Draft, upload: Upload) -> Path:
        return self.directory(draft.id) / "uploads" / upload.stored

    def page_image(self, draft_id: str, index: int, kind: Literal["pages", "thumbs"]) -> Path:
        return self.directory(draft_id) / kind / f"{int(index)}.jpg"

    def receipt_path(self, draft_id: str) -> Path:
        return self.directory(draft_id) / "receipt.pdf"

    def _analysis_path(self, draft_id: str) -> Path:
        return self.directory(draft_id) / "analysis.pickle"

    # ---- create / read / write ----------------------------------------------------------
    def create(self, *, officer: str, owner_id: str, dossier_code: str | None,
               files: list[tuple[str, bytes]]) -> Draft:
        """Write the uploaded files to disk first, then the draft that refers to them."""
        draft_id = str(ULID())
        directory = self.directory(draft_id)
        (directory / "uploads").mkdir(parents=True, mode=0o700)
        uploads: list[Upload] = []
        for number, (name, data) in enumerate(files, start=1):
            stored = f"{number:02d}-{safe_filename(name)}"
            _write_private(directory / "uploads" / stored, data)
            uploads.append(Upload(name=safe_filename(name), stored=stored,
                                  sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
        moment = now()
        draft = Draft(id=draft_id, created_at=moment, updated_at=moment, officer=officer,
                      owner_id=owner_id, dossier_code=dossier_code or None, uploads=uploads)
        self.save(draft)
        return draft

    def get(self, draft_id: str) -> Draft:
        path = self.directory(draft_id) / "draft.json"
        try:
            return Draft.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise DraftNotFound(draft_id) from None

    def save(self, draft: Draft) -> None:
        draft.updated_at = now()
        _write_private(self.directory(draft.id) / "draft.json",
                       draft.model_dump_json(indent=1).encode("utf-8"))

    @contextmanager
    def editing(self, draft_id: str) -> Iterator[Draft]:
        """Load, let the caller change, and save a draft while holding its lock."""
        with self.lock(draft_id):
            draft = self.get(draft_id)
            yield draft
            self.save(draft)

    def lock(self, draft_id: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(draft_id, threading.RLock())

    def all(self) -> list[Draft]:
        """Every draft, newest first (unreadable ones are skipped: they are never deleted)."""
        drafts: list[Draft] = []
        for directory in sorted(self.root.iterdir(), reverse=True):
            if not _DRAFT_ID.match(directory.name):
                continue
            try:
                drafts.append(self.get(directory.name))
            except (DraftNotFound, ValueError):
                continue
        return drafts

    def read_uploads(self, draft: Draft) -> list[tuple[str, bytes]]:
        return [(u.name, self.upload_path(draft, u).read_bytes()) for u in draft.uploads]

    # ---- analysis --------------------------------------------------------------------------
    def save_analysis(self, draft_id: str, analysis: Analysis) -> None:
        payload = pickle.dumps({"format": ANALYSIS_FORMAT, "analysis": analysis},
                               protocol=pickle.HIGHEST_PROTOCOL)
        _write_private(self._analysis_path(draft_id), payload)

    def load_analysis(self, draft_id: str) -> Analysis | None:
        """The saved analysis, or None when absent or from an incompatible version.

        The pickle is only ever read from this server's own home directory, written by
        :meth:`save_analysis`.
        """
        try:
            payload = pickle.loads(self._analysis_path(draft_id).read_bytes())  # noqa: S301
        except FileNotFoundError:
            return None
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError):
            return None
        if not isinstance(payload, dict) or payload.get("format") != ANALYSIS_FORMAT:
            return None
        analysis = payload.get("analysis")
        return analysis if isinstance(analysis, Analysis) else None

    def write_image(self, draft_id: str, index: int, kind: Literal["pages", "thumbs"],
                    jpeg: bytes) -> None:
        path = self.page_image(draft_id, index, kind)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        _write_private(path, jpeg)

    def write_receipt(self, draft_id: str, pdf: bytes) -> None:
        _write_private(self.receipt_path(draft_id), pdf)

    def discard_renderings(self, draft_id: str) -> None:
        for kind in ("pages", "thumbs"):
            shutil.rmtree(self.directory(draft_id) / kind, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename) with mode 0600; a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


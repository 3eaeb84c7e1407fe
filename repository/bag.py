"""Export records as a BagIt package (RFC 8493, BagIt 1.0, SHA-256 manifests).

Layout of a bag::

    bagit.txt  bag-info.txt  manifest-sha256.txt  tagmanifest-sha256.txt
    data/index.json                                   # every exported version, machine-readable
    data/<uri>/v000001/document.pdf                   # the signed data message (PDF/A-3b)
    data/<uri>/v000001/record.json                    # the structured record
    data/<uri>/v000001/manifest.json                  # the repository's manifest of that version

Written without chdir (safe inside a threaded server) into a temporary sibling directory that is
renamed into place at the end, so a failed export never leaves a plausible-looking bag behind.
Every object is re-verified against its recorded SHA-256 while exporting.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidRequest, RecordNotFound

if TYPE_CHECKING:
    from .service import Repository, StoredResult

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
SOFTWARE_AGENT = "sohoa repository"


@dataclass(frozen=True)
class _PayloadFile:
    path: str  # relative to the bag root, starts with data/
    sha256: str
    size: int


def export_bag(
    repo: Repository,
    dest: Path,
    *,
    uri: str | None = None,
    owner_id: str | None = None,
    owner_key: str | None = None,
    include_superseded: bool = False,
) -> Path:
    """Write a bag of one record (``uri``) or of all an owner's records to ``dest`` (must not exist)."""
    if (uri is None) == (owner_id is None and owner_key is None):
        raise InvalidRequest("export_bag needs exactly one of uri or owner_id/owner_key")
    if dest.exists():
        raise InvalidRequest(f"export destination {dest} already exists")
    versions = _select_versions(repo, uri, owner_id, owner_key, include_superseded)
    if not versions:
        raise RecordNotFound("nothing to export")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        payload = _write_payload(repo, staging, versions)
        identifier = uri if uri is not None else versions[0].owner_key
        _write_tag_files(staging, payload, identifier, len({v.uri for v in versions}), len(versions))
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _select_versions(
    repo: Repository, uri: str | None, owner_id: str | None, owner_key: str | None, include_superseded: bool
) -> list[StoredResult]:
    if uri is not None:
        history = repo.versions(uri)
        return history if include_superseded else [v for v in history if v.status == "current"]
    found: list[StoredResult] = []
    page, offset = 500, 0
    while True:
        batch = repo.list_records(
            owner_id=owner_id, owner_key=owner_key, include_superseded=include_superseded, limit=page, offset=offset
        )
        found.extend(batch)
        if len(batch) < page:
            return sorted(found, key=lambda r: (r.uri, r.version))
        offset += page


def _write_payload(repo: Repository, root: Path, versions: list[StoredResult]) -> list[_PayloadFile]:
    payload: list[_PayloadFile] = []
    index = []
    for v in versions:
        record = repo.get(v.uri, v.version)  # verifies both SHA-256 digests
        manifest = repo.objects.get(v.manifest_key)
        folder = f"data/{v.uri}/v{v.version:06d}"
        for name, data in (("document.pdf", record.pdf), ("record.json", record.record_json), ("manifest.json", manifest)):
            payload.append(_write_file(root, f"{folder}/{name}", data))
        index.append(
            {
                "uri": v.uri,
                "version": v.version,
                "status": v.status,
                "doc_type": v.doc_type,
                "title": v.title,
                "issuing_agency": v.issuing_agency,
                "created_at": v.created_at.isoformat(),
                "owner_key": v.owner_key,
                "pdf_sha256": v.sha256,
                "record_sha256": v.record_sha256,
                "path": folder,
            }
        )
    body = json.dumps({"records": index}, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    payload.append(_write_file(root, "data/index.json", body))
    return payload


def _write_file(root: Path, rel: str, data: bytes) -> _PayloadFile:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _PayloadFile(rel, hashlib.sha256(data).hexdigest(), len(data))


def _manifest_line(digest: str, rel: str) -> str:
    # RFC 8493 §2.1.3: percent-encode CR, LF and % in file paths.
    encoded = rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"{digest}  {encoded}\n"


def _write_tag_files(root: Path, payload: list[_PayloadFile], identifier: str, records: int, versions: int) -> None:
    manifest = "".join(_manifest_line(p.sha256, p.path) for p in sorted(payload, key=lambda p: p.path))
    info = {
        "Source-Organization": SOFTWARE_AGENT,
        "Bag-Software-Agent": SOFTWARE_AGENT,
        "Bagging-Date": datetime.now(timezone.utc).date().isoformat(),
        "External-Identifier": identifier,
        "External-Description": f"{records} record(s), {versions} version(s) exported from the electronic data repository",
        "Payload-Oxum": f"{sum(p.size for p in payload)}.{len(payload)}",
    }
    tags = {
        "bagit.txt": BAGIT_TXT.encode("utf-8"),
        "bag-info.txt": "".join(f"{k}: {v}\n" for k, v in info.items()).encode("utf-8"),
        "manifest-sha256.txt": manifest.encode("utf-8"),
    }
    for name, data in tags.items():
        (root / name).write_bytes(data)
    tagmanifest = "".join(_manifest_line(hashlib.sha256(d).hexdigest(), n) for n, d in sorted(tags.items()))
    (root / "tagmanifest-sha256.txt").write_text(tagmanifest, encoding="utf-8")

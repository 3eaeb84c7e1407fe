"""Each package's own small config, built from the one ``Settings`` object.

Stages never read settings; the pipeline, the CLI, the API and workers call these. Kept apart from
``ingest.pipeline`` so commands that only need the repository or the trust roots (init, get,
verify) start without importing the OCR stack.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ingest.settings import Settings
from repository.config import RepositoryConfig
from signing.pki import load_dev_pki

if TYPE_CHECKING:
    from signing.signer import SignerSpec


def repository_config(s: Settings) -> RepositoryConfig:
    return RepositoryConfig(
        db_url=s.database_url, store=s.store, local_dir=s.objects_dir,
        s3_endpoint=s.s3_endpoint, s3_access_key=s.s3_access_key, s3_secret_key=s.s3_secret_key,
        s3_bucket=s.s3_bucket, s3_secure=s.s3_secure, s3_region=s.s3_region,
        owner_secret=s.owner_secret(), object_lock=s.object_lock, lock_mode=s.lock_mode)


def signer_spec(s: Settings, role: str) -> "SignerSpec":
    from signing.signer import SignerSpec  # pyHanko: only when signing
    explicit = s.officer_key if role == "officer" else s.agency_key
    if explicit:
        return SignerSpec(kind="pkcs12", path=str(explicit), passphrase=s.key_passphrase)
    pki = load_dev_pki(s.pki_dir)
    path = pki.officer_p12 if role == "officer" else pki.agency_p12
    return SignerSpec(kind="pkcs12", path=str(path), passphrase=pki.passphrase)


def trust_roots(s: Settings) -> list[bytes]:
    paths = list(s.trust_roots) or [load_dev_pki(s.pki_dir).root_cert]
    return [Path(p).read_bytes() for p in paths]

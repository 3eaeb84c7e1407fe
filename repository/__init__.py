"""Electronic data repository of citizens and organizations (Decree 137/2024, Decree 45/2020).

Public surface: :class:`Repository` with :class:`RepositoryConfig`, the request/result dataclasses
and the error family. ``repository`` imports nothing else of sohoa.
"""
from .config import RepositoryConfig
from .errors import (
    IntegrityFailure,
    InvalidRequest,
    ObjectLocked,
    ObjectMissing,
    RecordNotFound,
    RepositoryError,
    StorageUnavailable,
)
from .folding import fold
from .service import (
    FixityReport,
    ReconcileReport,
    Repository,
    RetrievedRecord,
    SearchHit,
    StoredResult,
    StoreRequest,
)

__all__ = [
    "FixityReport",
    "IntegrityFailure",
    "InvalidRequest",
    "ObjectLocked",
    "ObjectMissing",
    "ReconcileReport",
    "RecordNotFound",
    "Repository",
    "RepositoryConfig",
    "RepositoryError",
    "RetrievedRecord",
    "SearchHit",
    "StorageUnavailable",
    "StoreRequest",
    "StoredResult",
    "fold",
]

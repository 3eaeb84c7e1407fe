"""Exceptions raised by the repository (one family, so callers can map them to HTTP codes)."""
from __future__ import annotations


class RepositoryError(Exception):
    """Base class of every error the repository raises on purpose."""


class InvalidRequest(RepositoryError, ValueError):
    """The caller passed something malformed (bad URI, owner kind, empty PDF...)."""


class RecordNotFound(RepositoryError, LookupError):
    """No record (or no such version of it) exists."""


class StorageUnavailable(RepositoryError):
    """The object store or the database cannot be reached or failed mid-operation.

    Nothing half-written is visible after this error; retrying the same call is safe.
    """


class IntegrityFailure(RepositoryError):
    """Stored bytes do not match their recorded SHA-256 (or the object vanished)."""


class ObjectLocked(RepositoryError):
    """A delete or overwrite was refused because retention or a legal hold protects the object."""


class ObjectMissing(RepositoryError, KeyError):
    """The object store has no object under the requested key."""

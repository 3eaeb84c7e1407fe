"""The FastAPI application: ``create_app(settings)``.

Resources (repository, access store, audit writer, job runner) live in one :class:`Services`
object on ``app.state.services``; they open lazily, so the app starts (and ``/healthz``
answers) even while the database or object store is down, and ``/readyz`` says so.

Routers: system (health, readiness, metrics), auth (desk login), records (agency reads,
verification), citizen (``/v1/me``), admin, jobs; plus the reception desk pages from
``api.desk`` when that package provides a ``router``.
"""
from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth import KeyCache
from api.batching import Batcher
from api.errors import install_error_handlers
from api.fast_reads import FastReads
from api.metrics import ApiMetrics, MetricsMiddleware
from api.ratelimit import RateLimiter
from api.routes_records import ReadJob, run_reads
from ingest.settings import Settings
from repository import Repository, RepositoryError
from repository.access import AccessStore
from repository.audit import AuditEntry, AuditLog, AuditWriter, load_or_create_service_key

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"
AUDIT_KEY_FILE = "audit-ed25519.pem"


class ApiOptions(BaseSettings):
    """API tuning, from environment variables ``SOHOA_API_*`` (defaults suit one small server)."""

    model_config = SettingsConfigDict(env_prefix="SOHOA_API_", extra="ignore")

    rate_per_second: float = 50.0  # default per-client token bucket (a client row may override)
    burst: int = 100
    failed_auth_per_second: float = 1.0  # per source IP
    failed_auth_burst: int = 20
    max_upload_bytes: int = 50 * 1024 * 1024
    max_files: int = 20
    session_hours: float = 10.0
    cookie_secure: bool = False  # set true behind HTTPS
    audit_checkpoint_seconds: float = 5.0
    job_workers: int | None = None  # default: Settings.workers
    verify_max_bytes: int = 30 * 1024 * 1024
    auth_cache_seconds: float = 5.0  # verified API keys are re-checked after this (0: every request)
    redirect_seconds: int = Field(60, ge=1, le=3600)  # lifetime of a presigned URL (delivery=redirect)
    # FastAPI's native OpenTelemetry spans and metrics, to an OTel provider the operator set up;
    # off by default (the Prometheus /metrics and our masked logs are the supported telemetry;
    # asking whether a provider is configured costs ~5 % of a record fetch's Python time)
    opentelemetry: bool = False
    # After start-up, move every object then alive (modules, routes, models, pools) out of the
    # garbage collector's reach (gc.freeze): a full collection otherwise walks them all, measured
    # at 100-170 ms, a pause of every request in flight. `sohoa serve` turns it on (unless set);
    # off for an app embedded in another process (tests), whose later garbage it would keep.
    gc_freeze: bool = False


def _telemetry(options: ApiOptions) -> dict[str, bool]:
    """FastAPI's native OpenTelemetry: spans and metrics only when asked for; never its exception
    log records (their messages and tracebacks would bypass our personal-data masking)."""
    on = options.opentelemetry
    return {"tracing": on, "metrics": on, "logs": False}


def freeze_startup_objects() -> None:
    """Collect once, then freeze what survives (the objects every request shares): later
    collections, full ones included, only walk newer objects."""
    gc.collect()
    gc.freeze()


def audit_key_path(settings: Settings) -> Path:
    return settings.home / AUDIT_KEY_FILE


class Services:
    """Everything the routes share; each resource opens on first use, once, thread-safely."""

    def __init__(self, settings: Settings, options: ApiOptions) -> None:
        self.settings, self.options = settings, options
        self.metrics = ApiMetrics()
        self.limiter = RateLimiter(options.rate_per_second, options.burst)
        self.failure_limiter = RateLimiter(options.failed_auth_per_second, options.failed_auth_burst)
        self.key_cache = KeyCache(options.auth_cache_seconds)
        self._lock = threading.RLock()
        self._repository: Repository | None = None
        self._access: AccessStore | None = None
        self._audit_log: AuditLog | None = None
        self._audit_writer: AuditWriter | None = None
        self._jobs: Any = None
        self._db_executor: ThreadPoolExecutor | None = None
        self._io_executor: ThreadPoolExecutor | None = None
        # record reads waiting together share one decision query (api.batching)
        self.reads: Batcher[ReadJob, Any] = Batcher(lambda jobs: run_reads(self.access, jobs), lambda: self.db_executor)

    @property
    def repository(self) -> Repository:
        if self._repository is None:
            with self._lock:
                if self._repository is None:
                    from ingest.configs import repository_config
                    self._repository = Repository.open(repository_config(self.settings))
        return self._repository

    @property
    def access(self) -> AccessStore:
        if self._access is None:
            with self._lock:
                if self._access is None:
                    self._access = AccessStore(self.repository.engine)
        return self._access

    @property
    def audit_log(self) -> AuditLog:
        if self._audit_log is None:
            with self._lock:
                if self._audit_log is None:
                    self._audit_log = AuditLog(self.repository.engine)
        return self._audit_log

    @property
    def audit_writer(self) -> AuditWriter:
        if self._audit_writer is None:
            with self._lock:
                if self._audit_writer is None:
                    key = load_or_create_service_key(audit_key_path(self.settings))
                    self._audit_writer = AuditWriter(self.audit_log, key,
                                                     checkpoint_seconds=self.options.audit_checkpoint_seconds)
        return self._audit_writer

    @property
    def jobs(self):  # noqa: ANN201 (api.jobs.JobRunner; imported lazily: it pulls in the OCR stack)
        if self._jobs is None:
            with self._lock:
                if self._jobs is None:
                    from api.jobs import JobRunner
                    self._jobs = JobRunner(self.settings, self.access, self.audit, self.metrics,
                                           workers=self.options.job_workers or self.settings.workers)
        return self._jobs

    def audit(self, entry: AuditEntry) -> int:
        """Write an audit entry and wait until it is committed (fail closed: 503 otherwise)."""
        seq = self.audit_writer.record(entry)
        self.metrics.audit_event(entry.action, entry.outcome)
        return seq

    async def audit_async(self, entry: AuditEntry) -> int:
        """:meth:`audit` for async routes (the wait holds no thread)."""
        seq = await self.audit_writer.record_async(entry)
        self.metrics.audit_event(entry.action, entry.outcome)
        return seq

    @property
    def db_executor(self) -> ThreadPoolExecutor:
        """Threads for the record-read decision: as many as its SQL pool keeps open, so a burst
        of reads queues here instead of opening and closing overflow connections (each a
        PostgreSQL backend fork)."""
        if self._db_executor is None:
            with self._lock:
                if self._db_executor is None:
                    size = getattr(self.access.reads.pool, "size", lambda: 5)()
                    self._db_executor = ThreadPoolExecutor(max(2, size), thread_name_prefix="sohoa-db")
        return self._db_executor

    @property
    def io_executor(self) -> ThreadPoolExecutor:
        """Threads for object-store reads (as many as the S3 client keeps connections)."""
        if self._io_executor is None:
            with self._lock:
                if self._io_executor is None:
                    self._io_executor = ThreadPoolExecutor(16, thread_name_prefix="sohoa-io")
        return self._io_executor

    def close(self) -> None:
        with self._lock:
            for executor in (self._db_executor, self._io_executor):
                if executor is not None:
                    executor.shutdown(wait=True)
            self._db_executor = self._io_executor = None
            if self._jobs is not None:
                self._jobs.close()
                self._jobs = None
            if self._audit_writer is not None:
                self._audit_writer.close()
                self._audit_writer = None
            if self._access is not None:
                self._access.close()
            if self._audit_log is not None:
                self._audit_log.close()
            if self._repository is not None:
                self._repository.close()
                self._repository = None
                self._access = None
                self._audit_log = None


def _desk_router():  # noqa: ANN202 (fastapi.APIRouter | None)
    """``api.desk.router`` when the reception-desk package provides one."""
    if importlib.util.find_spec("api.desk") is None:
        return None
    module = importlib.import_module("api.desk")
    return getattr(module, "router", None)


def create_app(settings: Settings, options: ApiOptions | None = None) -> FastAPI:
    from api import routes_admin, routes_auth, routes_citizen, routes_jobs, routes_records, routes_system

    services = Services(settings, options or ApiOptions())

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        # Open (and migrate) the repository before anything else starts using the database:
        # Alembic keeps per-process global state, so two first opens must not overlap.
        try:
            await run_in_threadpool(lambda: services.repository)
        except (RepositoryError, ValueError, OSError) as exc:
            log.warning("repository not available at start-up (readyz will say so): %s", exc)
        if services.options.gc_freeze:
            freeze_startup_objects()
        yield
        await run_in_threadpool(services.close)

    app = FastAPI(
        title="sohoa API",
        version=API_VERSION,
        summary="Digitized administrative documents (Decree 137/2024/ND-CP): records, consent, audit",
        description=("Agencies fetch signed data messages with a legal basis or the owner's consent; "
                     "citizens see who accessed their records. Errors are application/problem+json "
                     "with a stable `code`. See docs/api.md."),
        lifespan=lifespan,
        telemetry=_telemetry(services.options),
    )
    app.state.services = services
    app.state.settings = settings
    install_error_handlers(app)
    for module in (routes_system, routes_auth, routes_records, routes_citizen, routes_admin, routes_jobs):
        app.include_router(module.router)
    desk = _desk_router()
    if desk is not None:
        app.include_router(desk)
    app.add_middleware(FastReads, fastapi_app=app)  # inside the metrics: its answers are counted too
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env`` (several worker processes)."""
    from ingest.settings import load_settings
    return create_app(load_settings())

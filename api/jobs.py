"""Digitization jobs: an in-process worker pool running ``Pipeline.digitize``.

The job row (``repository.access.Job``) is the persistent state: queued -> running ->
succeeded | failed, with the stored record's URI or a stable error code. Uploaded scans and the
owner's ID stay in memory only (the ID is personal data and is never written outside the
repository's encrypted owner table), so a job cut short by a server stop cannot resume: at
start-up, ``sohoa serve`` marks such jobs ``failed`` / ``interrupted`` and the client submits
again (the same ``Idempotency-Key`` then returns the failed job, a new key a new one).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ulid import ULID

from api.metrics import ApiMetrics
from ingest.logs import redact
from ingest.settings import Settings
from repository import StorageUnavailable
from repository.access import AccessStore, JobInfo
from repository.audit import AuditEntry

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, settings: Settings, access: AccessStore, audit: Callable[[AuditEntry], int],
                 metrics: ApiMetrics, *, workers: int) -> None:
        self.settings, self.access, self.audit, self.metrics = settings, access, audit, metrics
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sohoa-job")
        self._local = threading.local()
        self._pipelines: list = []
        self._lock = threading.Lock()

    def submit(self, *, submitted_by: str, actor_kind: str, agency_code: str | None, doc,  # noqa: ANN001
               owner_key: str, idempotency_key: str | None) -> tuple[JobInfo, bool]:
        """Queue ``doc`` (an ``ingest.pipeline.DocumentInput``); ``(job, created)``."""
        job, created = self.access.create_job(
            job_id=str(ULID()), submitted_by=submitted_by, owner_key=owner_key, files=len(doc.files),
            input_bytes=sum(len(f.data) for f in doc.files), doc_type=doc.doc_type,
            dossier_code=doc.dossier_code, idempotency_key=idempotency_key)
        if created:
            self.audit(AuditEntry(actor=submitted_by, actor_kind=actor_kind, action="job.submit",
                                  owner_key=owner_key, agency_code=agency_code,
                                  details={"job_id": job.id, "files": job.files, "doc_type": job.doc_type}))
            self._pool.submit(self._run, job.id, doc, submitted_by, actor_kind, agency_code)
        return job, created

    def _pipeline(self):  # noqa: ANN202 (ingest.pipeline.Pipeline, one per worker thread)
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            from ingest.pipeline import Pipeline
            pipeline = self._local.pipeline = Pipeline(self.settings)
            with self._lock:
                self._pipelines.append(pipeline)
        return pipeline

    def _run(self, job_id: str, doc, submitted_by: str, actor_kind: str, agency_code: str | None) -> None:  # noqa: ANN001
        from ingest.load import InputError
        from ingest.pipeline import PipelineError

        t0 = time.perf_counter()
        try:
            self.access.mark_job_running(job_id)
            result = self._pipeline().digitize(doc)
        except (InputError, PipelineError) as exc:
            self._fail(job_id, exc.code, redact(str(exc)))
            return
        except StorageUnavailable as exc:
            self._fail(job_id, "storage_unavailable", "storage unavailable; nothing was stored, submit again")
            log.warning("job %s: storage unavailable: %s", job_id, exc)
            return
        except Exception:
            log.exception("job %s failed", job_id)
            self._fail(job_id, "internal_error", "internal error")
            return
        stored = result.stored
        try:
            self.access.finish_job(job_id, uri=stored.uri, version=stored.version, sha256=stored.sha256)
            self.audit(AuditEntry(actor=submitted_by, actor_kind=actor_kind, action="record.create",
                                  record_uri=stored.uri, record_version=stored.version, owner_key=stored.owner_key,
                                  agency_code=agency_code,
                                  details={"job_id": job_id, "doc_type": stored.doc_type, "sha256": stored.sha256}))
        except StorageUnavailable:
            log.error("job %s: stored %s but could not record the outcome", job_id, stored.uri)
            return
        self.metrics.jobs.labels("succeeded").inc()
        self.metrics.job_seconds.observe(time.perf_counter() - t0)

    def _fail(self, job_id: str, code: str, message: str) -> None:
        self.metrics.jobs.labels("failed").inc()
        try:
            self.access.finish_job(job_id, error_code=code, error_message=message[:2000])
        except StorageUnavailable:
            log.error("job %s failed (%s) and the outcome could not be recorded", job_id, code)

    def close(self) -> None:
        """Let running jobs finish; queued ones stay ``queued`` (marked interrupted at next start)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for p in self._pipelines:
                p.close()
            self._pipelines.clear()

"""Coordinating a bulk run: plan it into the ledger, then drive workers until every unit is final.

Engines (the same task function, :func:`ingest.bulk.worker.process_unit`, behind both):

* ``local``: a process pool on this machine (spawned processes, one Tesseract thread each); a
  worker killed mid-page breaks the pool, which is rebuilt, and the dead worker's unit is taken
  over (its lease names a process that no longer exists);
* ``celery``: tasks on a broker (Redis) for ``sohoa worker`` processes anywhere; the coordinator
  only watches the ledger, and sends a unit again when its message seems lost.

The ledger, not the engine, is the truth: the coordinator can be killed and ``resume`` started
on another machine.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from ulid import ULID

from ingest.bulk.plan import (Stream, UnitDraft, UnitIdentity, discover, plan_stream, streams,
                              to_new_unit)
from ingest.bulk.progress import ProgressSink
from ingest.bulk.report import Summary, summarize
from ingest.ledger import (FINAL_STATES, TRANSIENT_REASONS, Ledger, NewUnit, RunRow, RunState,
                           UnitState, lease_is_dead, utcnow, with_db_retry)
from ingest.manifest import load_manifest
from ingest.settings import Settings
from repository.identity import OwnerIdCipher, canonical_id, owner_key

log = logging.getLogger("sohoa.bulk")
Engine = Literal["local", "celery"]


class RunError(RuntimeError):
    """The run cannot start or continue (unknown run, changed manifest...)."""


@dataclass(frozen=True)
class RunOptions:
    engine: Engine = "local"
    workers: int = 1
    storage_retry_s: float = 120.0  # how long a worker waits out a storage outage per unit
    review_quality: bool = True  # a failed quality gate sends a document to review
    officer: str | None = None  # desk user who signs personally (None: the configured officer)
    redispatch_s: float = 120.0  # celery: send a pending unit again after this long
    poll_s: float = 0.5


# ---- planning ------------------------------------------------------------------------------------
def _plan_one(args: tuple[str, Stream]) -> list[UnitDraft]:
    base, stream = args
    return plan_stream(Path(base), stream)


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a clean fork server that imported the pipeline once (no
    inherited database connections; a rebuilt pool starts in milliseconds)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ingest.bulk.worker"])
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context, initializer=_init_process)


def _init_process() -> None:
    from ingest.logs import setup_logging
    os.environ["OMP_THREAD_LIMIT"] = "1"
    setup_logging(os.environ.get("SOHOA_LOG_LEVEL", "WARNING"))


def identity_for(settings: Settings) -> UnitIdentity:
    secret = settings.owner_secret()
    cipher = OwnerIdCipher(secret)
    return UnitIdentity(owner_ref=lambda owner: owner_key(secret, owner),
                        seal=lambda owner, ref: cipher.encrypt(canonical_id(owner), ref))


def create_run(settings: Settings, ledger: Ledger, source: Path, manifest_path: Path,
               options: RunOptions) -> str:
    """Validate the manifest and SOURCE, then record a new run (units are planned by :func:`plan_run`)."""
    manifest = load_manifest(manifest_path)
    sources = discover(source)
    run_id = str(ULID())
    with_db_retry(lambda: ledger.create_run(
        run_id, source=str(source.resolve()), manifest_path=str(manifest_path.resolve()),
        manifest_sha256=manifest.sha256, options={**asdict(options), "base": str(sources.base)}),
        what="create run")
    return run_id


def plan_run(settings: Settings, ledger: Ledger, run: RunRow, workers: int) -> int:
    """Cut SOURCE into units and write them in one transaction; returns the number of units."""
    manifest = load_manifest(Path(run.manifest_path))
    if manifest.sha256 != run.manifest_sha256:
        raise RunError(f"run {run.id}: the manifest changed since the run started; start a new run")
    sources = discover(Path(run.source))
    jobs = [(str(sources.base), stream) for stream in streams(sources, manifest)]
    if workers > 1 and len(jobs) > 1:
        with _pool(workers) as pool:
            drafts = [d for batch in pool.map(_plan_one, jobs, chunksize=4) for d in batch]
    else:
        drafts = [d for job in jobs for d in _plan_one(job)]
    identity = identity_for(settings)
    units = deduplicate([to_new_unit(seq, d, identity) for seq, d in enumerate(drafts, start=1)], ledger)
    with_db_retry(lambda: ledger.add_units(run.id, units), what="add units")
    return len(units)


def deduplicate(units: list[NewUnit], ledger: Ledger) -> list[NewUnit]:
    """The same pages twice in this run -> one is ``skipped``; pages an earlier run already stored
    -> ``skipped`` with that record; an earlier unfinished copy -> the same record ULID/URI, so the
    worker finds the record if that copy got stored."""
    seen: dict[str, int] = {}
    out: list[NewUnit] = []
    for unit in units:
        if unit.state != UnitState.PENDING:
            out.append(unit)
            continue
        if unit.unit_key in seen:
            out.append(replace(unit, state=UnitState.SKIPPED, reason_code="duplicate",
                               reason=f"same pages as unit {seen[unit.unit_key]} of this run"))
            continue
        seen[unit.unit_key] = unit.seq
        earlier = with_db_retry(lambda: ledger.earliest_with_key(unit.unit_key), what="find earlier unit")
        if earlier is None:
            out.append(unit)
        elif earlier.state == UnitState.STORED:
            out.append(replace(unit, state=UnitState.SKIPPED, reason_code="already_stored",
                               reason=f"already stored by run {earlier.run_id}", record_uri=earlier.record_uri))
        else:
            out.append(replace(unit, record_ulid=earlier.record_ulid, record_uri=earlier.record_uri))
    return out


# ---- running -----------------------------------------------------------------------------------------
def current_summary(ledger: Ledger, run_id: str) -> Summary:
    return summarize(with_db_retry(lambda: ledger.counts(run_id), what="count units"))


def execute(settings: Settings, ledger: Ledger, run_id: str, *, options: RunOptions,
            progress: ProgressSink | None = None, retry_failed: bool = False) -> Summary:
    """Plan the run if needed, then process its open units until each is final."""
    run = with_db_retry(lambda: ledger.run(run_id), what="read run")
    if run is None:
        raise RunError(f"no bulk run {run_id}")
    if run.state == RunState.PLANNING:
        plan_run(settings, ledger, run, options.workers)
    if retry_failed:
        again = [u.id for u in ledger.units(run_id) if u.state in (UnitState.FAILED, UnitState.REVIEW)
                 and u.reason_code not in ("separator_sheet", "blank_page", "not_a_scan")]
        with_db_retry(lambda: ledger.reopen(again), what="reopen units")
    else:
        _reopen_transient(ledger, run_id)
    with_db_retry(lambda: ledger.set_run_state(run_id, RunState.RUNNING), what="update run")
    summary = current_summary(ledger, run_id)
    if progress:
        progress.start(summary)
    tick = (lambda: progress.update(current_summary(ledger, run_id))) if progress else (lambda: None)
    try:
        if options.engine == "celery":
            _run_celery(ledger, run_id, options, tick)
        else:
            _run_local(ledger, run_id, options, tick)
    except KeyboardInterrupt:
        with_db_retry(lambda: ledger.set_run_state(run_id, RunState.INTERRUPTED), what="update run")
        raise
    summary = current_summary(ledger, run_id)
    final = RunState.FINISHED if summary.complete else RunState.INTERRUPTED
    with_db_retry(lambda: ledger.set_run_state(run_id, final), what="update run")
    if progress:
        progress.stop(summary)
    return summary


def _reopen_transient(ledger: Ledger, run_id: str) -> None:
    ids = [u.id for u in ledger.units(run_id) if u.state == UnitState.FAILED and u.reason_code in TRANSIENT_REASONS]
    with_db_retry(lambda: ledger.reopen(ids), what="reopen units")


def _active_ids(ledger: Ledger, run_id: str) -> list[int]:
    units = with_db_retry(lambda: ledger.units(run_id), what="list units")
    return [u.id for u in units if u.state not in FINAL_STATES]


def _unit_task(run_id: str, unit_id: int) -> dict[str, Any]:
    """Entry point inside a local worker process."""
    from ingest.bulk.worker import process_context, process_unit
    return asdict(process_unit(process_context(), run_id, unit_id))


def _run_local(ledger: Ledger, run_id: str, options: RunOptions, tick: Callable[[], None],
               max_pool_restarts: int = 50) -> None:
    restarts = 0
    while todo := _active_ids(ledger, run_id):
        broken, unclaimed = False, 0
        with _pool(options.workers) as pool:
            pending: set[Future] = {pool.submit(_unit_task, run_id, uid) for uid in todo}
            while pending and not broken:
                done, pending = wait(pending, timeout=options.poll_s, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        unclaimed += future.result()["state"] is None
                    except BrokenProcessPool:
                        broken = True
                tick()
        if broken:
            restarts += 1
            log.warning("a worker process died; rebuilding the pool (%d)", restarts)
            if restarts > max_pool_restarts:
                raise RunError(f"worker processes keep dying ({restarts} times); see the log")
        elif unclaimed:
            time.sleep(max(options.poll_s, 1.0))  # units held by live workers elsewhere: wait for them
            tick()


def _run_celery(ledger: Ledger, run_id: str, options: RunOptions, tick: Callable[[], None]) -> None:
    from ingest.celery_app import send_unit

    last_check, started, warned = 0.0, time.monotonic(), False
    while True:
        units = with_db_retry(lambda: ledger.units(run_id), what="list units")
        active = [u for u in units if u.state not in FINAL_STATES]
        if not active:
            return
        if not warned and time.monotonic() - started > 60 and all(u.attempts == 0 for u in active):
            log.warning("no worker has taken a unit for 60 s: is `sohoa worker` running on the same broker?")
            warned = True
        if time.monotonic() - last_check >= max(options.poll_s, 2.0):
            last_check = time.monotonic()
            now = utcnow()
            stale = now - timedelta(seconds=options.redispatch_s)
            resend = [u.id for u in active
                      if (u.state == UnitState.PENDING and (u.dispatched is None or u.dispatched < stale))
                      or (u.state in (UnitState.RUNNING, UnitState.STORING)
                          and lease_is_dead(u.lease_owner, u.lease_expiry, now)
                          and (u.dispatched is None or u.dispatched < stale))]
            for uid in resend:
                send_unit(run_id, uid)
            with_db_retry(lambda: ledger.mark_dispatched(resend), what="mark dispatched")
        tick()
        time.sleep(options.poll_s)

"""Celery application of sohoa: bulk units as tasks on a Redis broker, run by ``sohoa worker``.

Broker: ``Settings.broker_url`` (env ``SOHOA_BROKER_URL``, default ``redis://127.0.0.1:6379/0``). Workers read every other
setting (SOHOA_HOME, database, object store) from their own environment, like the CLI.

Delivery is at least once (late acks, a task whose worker process dies is given back to the
broker); the ledger's claims make a repeated delivery harmless. No result backend is needed: the
ledger is where results live.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
TASK_NAME = "sohoa.bulk.process_unit"
QUEUE = "sohoa-bulk"


def broker_url() -> str:
    """``Settings.broker_url``: env ``SOHOA_BROKER_URL`` > ``config.toml`` > the default."""
    from ingest.settings import load_settings
    return load_settings().broker_url or DEFAULT_BROKER


def make_app(broker: str | None = None) -> Celery:
    celery = Celery("sohoa", broker=broker or broker_url(), set_as_current=True)
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,  # a message is acknowledged after the unit is done...
        task_reject_on_worker_lost=True,  # ...and handed back when the worker process dies
        worker_prefetch_multiplier=1,  # OCR tasks are long: no hoarding
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        worker_max_tasks_per_child=500,
    )
    celery.task(name=TASK_NAME, bind=False)(process_unit_task)
    return celery


def process_unit_task(run_id: str, unit_id: int) -> dict[str, Any]:
    from ingest.bulk.worker import process_context, process_unit
    return asdict(process_unit(process_context(), run_id, int(unit_id)))


def send_unit(run_id: str, unit_id: int) -> None:
    app.send_task(TASK_NAME, args=(run_id, unit_id), queue=QUEUE)


@worker_process_shutdown.connect
def _close_context(**_: Any) -> None:
    from ingest.bulk.worker import close_process_context
    close_process_context()


app = make_app()

"""Bulk back-digitization: resumable, parallel runs over archive boxes (issue #9).

``plan`` cuts SOURCE + manifest into units, ``worker.process_unit`` digitizes one unit exactly
once, ``engine`` drives a local process pool or Celery workers, ``report`` says where every page
went. The ledger tables are in :mod:`ingest.ledger`.
"""
from ingest.bulk.engine import RunError, RunOptions, create_run, execute
from ingest.bulk.report import Summary, report_csv, summarize, write_report

__all__ = ["RunError", "RunOptions", "Summary", "create_run", "execute", "report_csv", "summarize",
           "write_report"]

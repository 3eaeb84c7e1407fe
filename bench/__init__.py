"""Benchmarks (speed and accuracy targets live here, never in tests)."""
import os
import resource
from pathlib import Path

# The steering repo's shared/ data (real smoke scans, tessdata_best) stands beside the clone.
SHARED_DATA = Path(os.environ.get("SOHOA_SHARED_DIR")
                   or Path(__file__).resolve().parents[1].parent / "shared") / "data"


def process_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its reaped children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

"""Benchmarks (speed and accuracy targets live here, never in tests)."""
import os
from pathlib import Path

# The steering repo's shared/ data (real smoke scans, tessdata_best) stands beside the clone.
SHARED_DATA = Path(os.environ.get("SOHOA_SHARED_DIR")
                   or Path(__file__).resolve().parents[1].parent / "shared") / "data"

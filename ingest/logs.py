"""Logging for the CLI, the API and workers: one format, and personal numbers never leave the process.

Code should log opaque references (owner_ref, record URI) and never personal data; the
``RedactPersonalData`` filter is the safety net for what slips through (exception messages,
third-party libraries): 12-digit personal ID numbers and 10/13-digit enterprise codes are masked.
"""
from __future__ import annotations

import logging
import re

_PERSONAL_NUMBER = re.compile(r"(?<!\d)(\d{3})\d{4}(\d{3})-\d{3}(?!\d)|(?<!\d)(\d{3})\d{4,7}(\d{3})(?!\d)")


def redact(text: str) -> str:
    """Mask 10-13 digit runs (personal ID numbers, enterprise/tax codes) keeping 3+3 digits."""
    def mask(m: re.Match) -> str:
        if m.group(1) is not None:  # 13-digit branch code 0312345678-001
            return f"{m.group(1)}****{m.group(2)}-***"
        return f"{m.group(3)}{'*' * (len(m.group(0)) - 6)}{m.group(4)}"
    return _PERSONAL_NUMBER.sub(mask, text)


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.exc_info:
            record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Idempotent: one stderr handler with the redaction filter on the root logger."""
    root = logging.getLogger()
    if any(isinstance(f, RedactPersonalData) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactPersonalData())
    root.addHandler(handler)
    root.setLevel(level)

import logging

from ingest.logs import RedactPersonalData, redact


def test_redact_masks_personal_numbers_but_not_other_numbers():
    assert redact("owner 079203012345 stored") == "owner 079******345 stored"
    assert redact("mst 0312345678-001") == "mst 031****678-***"
    assert redact("mst 0312345678") == "mst 031****678"
    assert redact("page 12 of 2024, 300 dpi") == "page 12 of 2024, 300 dpi"
    assert redact("uri 000.00.12.H29.giay_khai_sinh.01J") == "uri 000.00.12.H29.giay_khai_sinh.01J"


def test_filter_redacts_messages_and_tracebacks(caplog):
    logger = logging.getLogger("sohoa.test")
    logger.addFilter(RedactPersonalData())
    try:
        try:
            raise ValueError("bad id 001099123456")
        except ValueError:
            logger.exception("failed for %s", "079203012345")
    finally:
        logger.filters.clear()
    text = caplog.text
    assert "079203012345" not in text and "001099123456" not in text
    assert "079******345" in text and "001******456" in text

"""Paper <-> data message conversion (Decree 137/2024/ND-CP Art. 4 and 5; LET 2023 Art. 12).

- ``converters.record``: the structured record (``record.json``, schema 1.0, docs/record-schema.md)
- ``converters.datamessage``: ``build_data_message`` (PDF/A-3b: page images at 100 %, invisible
  OCR text, conversion mark + QR, signature boxes, embedded record) and ``read_embedded_record``
- ``converters.paper``: ``to_paper_copy`` (data message -> printable copy with its own mark)
- ``converters.pdfa_check``: ``check_pdfa`` (PDF/A-2b/3b self-check, also after PAdES signing)
- ``converters.mark`` (wording as data, Vietnamese dates), ``converters.layout`` (geometry, fonts,
  drawing), ``converters.imaging`` (image encoding policy)

Imports nothing of ours but ``ocr.types``.
"""

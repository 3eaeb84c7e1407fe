"""Data message -> paper copy (LET 2023 Art. 12(2), Decree 137/2024/ND-CP Art. 5).

The paper copy is every page of the data message as it prints (signature appearances included),
each with a band below it stating that it was converted from a data message, when and by whom,
which information system (and owner) holds the original, how to look it up (URI + QR), and the
signature status at print time. The caller passes the verification verdict as text: converters
does not verify signatures.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import datetime

import pikepdf
import pikepdf.pdfa
from pikepdf import Name
from reportlab.pdfgen.canvas import Canvas

from converters import layout
from converters.datamessage import DataMessageError, read_embedded_record
from converters.mark import PaperFacts, PaperWording, paper_mark

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaperCopyInfo:
    printed_at: datetime  # timezone-aware
    printed_by: str  # full name of the person (and/or agency) making the copy
    system_name: str  # the information system holding the original data message
    system_owner: str  # the agency owning that system
    signature_status: str  # e.g. "Hợp lệ: 2 chữ ký số, văn bản không bị thay đổi"
    uri: str | None = None  # record URI; read from the embedded record.json when None
    lookup_url: str | None = None
    wording: PaperWording = field(default_factory=PaperWording)
    mark_every_page: bool = True
    qr: bool = True
    font_path: str | None = None
    bold_font_path: str | None = None


def to_paper_copy(pdf: bytes, info: PaperCopyInfo) -> bytes:
    """A printable PDF of ``pdf`` with the data-message -> paper mark (and QR)."""
    if not info.printed_by.strip() or not info.system_name.strip() or not info.system_owner.strip():
        raise DataMessageError("printed_by, system_name and system_owner are required on a paper copy")
    uri = info.uri or read_embedded_record(pdf).uri
    facts = PaperFacts(printed_at=info.printed_at, printed_by=info.printed_by,
                       system_name=info.system_name, system_owner=info.system_owner, uri=uri,
                       lookup_url=info.lookup_url, signature_status=info.signature_status)
    mark = paper_mark(facts, info.wording)
    fonts = layout.load_fonts(info.font_path, info.bold_font_path)
    try:
        source = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PdfError as exc:
        raise DataMessageError(f"not a readable PDF: {exc}") from exc
    with source:
        source.flatten_annotations(mode="print")  # signature appearances become page content
        sizes = [_page_size(page) for page in source.pages]
        geometries = []
        for number, (width, height) in enumerate(sizes):
            block = None
            if number == 0 or info.mark_every_page:
                block = layout.wrap_mark(mark.lines, fonts, max(width, layout.MIN_MARKED_WIDTH),
                                         qr_payload=mark.qr_payload if info.qr else None)
            geometries.append((layout.page_geometry(width, height, signature_band=False,
                                                    mark=block), block))
        overlay = _draw_marks(geometries, fonts)
        output = pikepdf.open(io.BytesIO(overlay))
        for number, page in enumerate(source.pages):
            form = output.copy_foreign(page.as_form_xobject())
            output.pages[number].add_underlay(form, pikepdf.Rectangle(*geometries[number][0].image))
            if Name.Trans in output.pages[number].obj:
                del output.pages[number].obj[Name.Trans]
    with output:
        if Name.Info in output.trailer:
            del output.trailer[Name.Info]  # reportlab's; the facts go to XMP below
        with output.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["dc:title"] = f"{info.wording.statement}: {uri}"
            meta["dc:description"] = "\n".join(mark.lines)
            meta["dc:contributor"] = {info.printed_by}
            meta["dc:identifier"] = uri
            meta["xmp:CreateDate"] = info.printed_at.isoformat()
        return _save(output)


def _save(output: pikepdf.Pdf) -> bytes:
    """PDF/A-2b when the data message's pages allow it (ours do), else a plain PDF."""
    buf = io.BytesIO()
    try:
        pikepdf.pdfa.save(output, buf, "2b", output_intent="sRGB", deterministic_id=True)
    except pikepdf.pdfa.PdfaError as exc:
        log.warning("paper copy is not PDF/A-2b, writing a plain PDF: %s",
                    exc.report.summary(limit=3))
        buf = io.BytesIO()
        output.save(buf, deterministic_id=True)
    return buf.getvalue()


def _page_size(page: pikepdf.Page) -> tuple[float, float]:
    box = page.cropbox if Name.CropBox in page.obj else page.mediabox
    width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
    if int(page.obj.get(Name.Rotate, 0)) % 180:
        width, height = height, width
    return width, height


def _draw_marks(geometries: list[tuple[layout.PageGeometry, layout.MarkBlock | None]],
                fonts: layout.Fonts) -> bytes:
    buf = io.BytesIO()
    canvas = Canvas(buf, invariant=True, pageCompression=1, initialFontName=fonts.regular)
    for geometry, block in geometries:
        canvas.setPageSize((geometry.width, geometry.height))
        if block is not None:
            layout.draw_mark(canvas, geometry, block)
        canvas.showPage()
    canvas.save()
    return buf.getvalue()

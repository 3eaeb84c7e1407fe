"""Paper -> data message (Decree 137/2024/ND-CP Art. 4): PDF/A-3b with mark, QR, text, record.

``build_data_message`` lays out each archive image at 100% scale (page size = image size at its
dpi), draws the OCR words as an invisible text layer, adds the conversion mark (+ QR) in a band
below the scan and a signature band above it on page 1, writes XMP (Dublin Core) metadata, embeds
the structured record as the PDF/A-3 associated file ``record.json`` (/AFRelationship /Data), and
saves through ``pikepdf.pdfa.save``, which installs the sRGB output intent and refuses to write a
file its PDF/A validator does not approve.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

import img2pdf
import numpy as np
import pikepdf
import pikepdf.pdfa
from pikepdf import Name
from reportlab.pdfgen.canvas import Canvas

from converters import layout
from converters.imaging import EncodedImage, ImageInputError, encode_page_image
from converters.mark import MarkWording, conversion_mark
from converters.record import PageEntry, RecordError, StructuredRecord
from ocr.types import PageText

RECORD_FILENAME = "record.json"
RECORD_MIME = "application/json"
MAX_PAGE_PT = 14400.0  # PDF/A-2/3 implementation limit (ISO 32000-1 Annex C): 200 inches
MAX_BANDS_PT = 400.0  # room for the signature band and the mark band
Rect = layout.Rect


class DataMessageError(ValueError):
    """The inputs cannot make a data message, or a PDF is not one of ours."""


@dataclass
class MessagePage:
    """One page to convert: the archive image (BGR or gray uint8) and its OCR text."""

    image: np.ndarray
    dpi: float
    text: PageText | None = None
    source: str = ""
    source_index: int = 0


@dataclass
class ConversionOptions:
    mark_every_page: bool = False  # repeat the mark band (with QR) below every page
    qr: bool = True
    wording: MarkWording = field(default_factory=MarkWording)
    image_quality: int = 85  # JPEG quality for gray/colour pages
    lossless: bool = False  # PNG/Flate instead of JPEG for gray/colour pages
    font_path: str | None = None  # TrueType font of the mark (must cover Vietnamese); default
    bold_font_path: str | None = None  # DejaVu Serif. The invisible text uses a glyphless font.
    text_layer: bool = True
    signature_band: bool = True  # reserve officer/agency signature boxes above page 1
    embed_record: bool = True  # PDF/A-3b with record.json; False -> PDF/A-2b, nothing embedded
    producer: str = "sohoa"  # xmp:CreatorTool when record.conversion.system_name is empty


@dataclass
class DataMessage:
    pdf: bytes
    record: StructuredRecord  # with pages[].image_sha256 filled
    signature_boxes: dict[str, Rect]  # page 0; keys "officer", "agency"; points, lower-left origin
    flavour: str = "3b"


@dataclass(frozen=True)
class _PlacedPage:
    encoded: EncodedImage
    geometry: layout.PageGeometry
    mark: layout.MarkBlock | None  # drawn in the bottom band when present


def build_data_message(pages: list[MessagePage], record: StructuredRecord,
                       options: ConversionOptions | None = None) -> DataMessage:
    """Build the PDF/A data message for ``pages`` and return it with the completed record."""
    options = options or ConversionOptions()
    if not pages:
        raise DataMessageError("a data message needs at least one page")
    for number, page in enumerate(pages):
        _check_page(number, page)
    fonts = layout.load_fonts(options.font_path, options.bold_font_path)
    mark = conversion_mark(record, options.wording)
    placed = _layout_pages(pages, fonts, options, mark.lines,
                           mark.qr_payload if options.qr else None)
    overlay = _draw_overlay(pages, placed, fonts, options)
    flavour = "3b" if options.embed_record else "2b"
    with pikepdf.open(io.BytesIO(overlay)) as pdf:
        entries = [_place_image(pdf, number, page, item)
                   for number, (page, item) in enumerate(zip(pages, placed, strict=True))]
        # model_copy does not validate: validate again so a bad record is never embedded
        completed = StructuredRecord.model_validate(
            record.model_copy(update={"pages": entries}).model_dump())
        _write_metadata(pdf, completed, mark.lines, options)
        if options.embed_record:
            _attach_record(pdf, completed)
        data = _save_pdfa(pdf, flavour)
    _verify_image_hashes(data, completed)
    return DataMessage(pdf=data, record=completed,
                       signature_boxes=placed[0].geometry.signature_boxes(), flavour=flavour)


def _layout_pages(pages: list[MessagePage], fonts: layout.Fonts, options: ConversionOptions,
                  mark_lines: list[str], qr_payload: str | None) -> list[_PlacedPage]:
    """Encode every image and decide each page's size, bands and mark."""
    placed = []
    for number, page in enumerate(pages):
        try:
            image = encode_page_image(page.image, page.dpi, quality=options.image_quality,
                                      lossless=options.lossless)
        except ImageInputError as exc:
            raise DataMessageError(f"page {number}: {exc}") from exc
        width_pt, height_pt = image.width * 72.0 / page.dpi, image.height * 72.0 / page.dpi
        block = None
        if number == 0 or options.mark_every_page:
            block = layout.wrap_mark(mark_lines, fonts, max(width_pt, layout.MIN_MARKED_WIDTH),
                                     qr_payload=qr_payload)
        geometry = layout.page_geometry(width_pt, height_pt, mark=block,
                                        signature_band=options.signature_band and number == 0)
        placed.append(_PlacedPage(encoded=image, geometry=geometry, mark=block))
    return placed


def _save_pdfa(pdf: pikepdf.Pdf, flavour: str) -> bytes:
    """Install the sRGB output intent and XMP declaration, write, and validate what was written."""
    pikepdf.pdfa.prepare(pdf, flavour, output_intent="sRGB")
    _drop_volatile_docinfo(pdf)
    out = io.BytesIO()
    try:
        pikepdf.pdfa.save(pdf, out, flavour, repair=False, deterministic_id=True)
    except pikepdf.pdfa.PdfaError as exc:  # our own output must always pass
        raise DataMessageError(f"the built PDF is not PDF/A-{flavour}: {exc}") from exc
    return out.getvalue()


def _check_page(number: int, page: MessagePage) -> None:
    if not isinstance(page.image, np.ndarray) or page.image.ndim not in (2, 3):
        raise DataMessageError(f"page {number}: image must be a gray or BGR numpy array")
    if not page.dpi or page.dpi <= 0:
        raise DataMessageError(f"page {number}: dpi must be positive, got {page.dpi}")
    height, width = page.image.shape[:2]
    if max(height, width) * 72.0 / page.dpi + MAX_BANDS_PT > MAX_PAGE_PT:
        raise DataMessageError(
            f"page {number}: {width}x{height} px at {page.dpi:g} dpi is over 200 inches (the "
            "PDF/A page size limit); the dpi is probably wrong")
    if page.text is not None:
        if (page.text.width, page.text.height) != (width, height):
            raise DataMessageError(
                f"page {number}: OCR text is for a {page.text.width}x{page.text.height} image, "
                f"the archive image is {width}x{height}")


def _draw_overlay(pages: list[MessagePage], placed: list[_PlacedPage], fonts: layout.Fonts,
                  options: ConversionOptions) -> bytes:
    """One reportlab page per data-message page: bands, mark, QR, invisible text."""
    buf = io.BytesIO()
    canvas = Canvas(buf, invariant=True, pageCompression=1, initialFontName=fonts.regular)
    captions = {"officer": options.wording.officer_box_label,
                "agency": options.wording.agency_box_label}
    for page, item in zip(pages, placed, strict=True):
        geometry = item.geometry
        canvas.setPageSize((geometry.width, geometry.height))
        if options.text_layer and page.text is not None and page.text.words:
            layout.draw_text_layer(canvas, page.text.words, dpi=page.dpi,
                                   image_rect=geometry.image, fonts=fonts)
        if item.mark is not None:
            layout.draw_mark(canvas, geometry, item.mark)
        if geometry.top_band > 0:
            layout.draw_signature_captions(canvas, geometry, fonts, captions)
        canvas.showPage()
    canvas.save()
    return buf.getvalue()


def _image_xobject(encoded: EncodedImage) -> tuple[pikepdf.Pdf, pikepdf.Stream]:
    """img2pdf embeds JPEG/CCITT/PNG data without re-encoding; take its image XObject."""
    single = pikepdf.open(io.BytesIO(img2pdf.convert(encoded.data)))
    xobjects = single.pages[0].Resources.XObject
    images = [xobjects[key] for key in xobjects.keys() if xobjects[key].get("/Subtype") == Name.Image]
    if len(images) != 1:
        raise DataMessageError("img2pdf did not produce exactly one image")
    return single, images[0]


def _place_image(pdf: pikepdf.Pdf, number: int, page: MessagePage, item: _PlacedPage
                 ) -> PageEntry:
    """Draw the image under the overlay content of page ``number``, filling
    ``geometry.image``, and describe it (hash of the exact stream bytes) for the record."""
    target = pdf.pages[number]
    single, source = _image_xobject(item.encoded)
    with single:
        image = pdf.copy_foreign(source)
    name = target.add_resource(image, Name.XObject, prefix="Im")
    x1, y1, x2, y2 = item.geometry.image
    ops = [
        pikepdf.ContentStreamInstruction([], pikepdf.Operator("q")),
        pikepdf.ContentStreamInstruction([x2 - x1, 0, 0, y2 - y1, x1, y1], pikepdf.Operator("cm")),
        pikepdf.ContentStreamInstruction([name], pikepdf.Operator("Do")),
        pikepdf.ContentStreamInstruction([], pikepdf.Operator("Q")),
    ]
    target.contents_add(pdf.make_stream(pikepdf.unparse_content_stream(ops)), prepend=True)
    if Name.Trans in target.obj:  # reportlab writes an empty page transition; PDF/A has no use
        del target.obj[Name.Trans]
    raw = image.read_raw_bytes()
    return PageEntry(index=number, source=page.source, source_index=page.source_index,
                     width_px=item.encoded.width, height_px=item.encoded.height,
                     dpi=float(page.dpi), image_sha256=hashlib.sha256(raw).hexdigest(),
                     image_encoding=item.encoded.encoding, image_bytes=len(raw))


def _format_pdf_date(moment: datetime) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return moment.strftime("D:%Y%m%d%H%M%S") + f"{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def _write_metadata(pdf: pikepdf.Pdf, record: StructuredRecord, mark_lines: list[str],
                    options: ConversionOptions) -> None:
    """XMP (predefined Dublin Core / XMP properties only, so PDF/A needs no extension schema).

    dc:publisher = converting agency, dc:contributor = officer, xmp:CreateDate = conversion time,
    dc:description = the mark text, dc:identifier = record URI, dc:type = document type code.
    """
    info = record.conversion
    title = record.title or record.doc_type_name
    pdf.trailer.Info = pdf.make_indirect(pikepdf.Dictionary(
        Title=pikepdf.String(title),
        Author=pikepdf.String(info.agency_name),
        Subject=pikepdf.String("\n".join(mark_lines)),
        Creator=pikepdf.String(info.system_name or options.producer),
        CreationDate=pikepdf.String(_format_pdf_date(info.converted_at)),
    ))
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["dc:title"] = title
        meta["dc:creator"] = [info.agency_name]
        meta["dc:description"] = "\n".join(mark_lines)
        meta["dc:publisher"] = {info.agency_name}
        meta["dc:contributor"] = {info.officer_name}
        meta["dc:identifier"] = record.uri
        meta["dc:type"] = {record.doc_type}
        meta["dc:language"] = {"vi"}
        meta["xmp:CreateDate"] = info.converted_at.isoformat()
        meta["xmp:ModifyDate"] = info.converted_at.isoformat()
        meta["xmp:CreatorTool"] = info.system_name or options.producer
        meta["pdf:Keywords"] = "; ".join(
            x for x in (record.doc_type, record.doc_type_name, info.agency_code, record.uri) if x)


def _drop_volatile_docinfo(pdf: pikepdf.Pdf) -> None:
    """Keep only DocInfo entries later writers leave alone.

    Signing tools (pyHanko) rewrite XMP pdf:Producer / xmp:ModifyDate on each incremental update
    but append their own name to an existing DocInfo /Producer, which would break the PDF/A
    DocInfo-XMP equivalence; without these two keys there is nothing to disagree about.
    """
    info = pdf.trailer.get(Name.Info)
    if isinstance(info, pikepdf.Dictionary):
        for key in (Name.Producer, Name.ModDate):
            if key in info:
                del info[key]


def _attach_record(pdf: pikepdf.Pdf, record: StructuredRecord) -> None:
    moment = _format_pdf_date(record.conversion.converted_at)
    spec = pikepdf.AttachedFileSpec(
        pdf, record.to_json_bytes(), description="Structured record (sohoa record schema "
        f"{record.schema_version})", filename=RECORD_FILENAME, mime_type=RECORD_MIME,
        creation_date=moment, mod_date=moment, relationship=Name.Data)
    pdf.attachments[RECORD_FILENAME] = spec
    filespec = pdf.attachments[RECORD_FILENAME].obj
    if not filespec.is_indirect:
        raise DataMessageError("the record's file specification must be an indirect object")
    pdf.Root.AF = pikepdf.Array([filespec])


def _verify_image_hashes(data: bytes, record: StructuredRecord) -> None:
    """The record's image hashes must equal the streams actually written (self-check)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for entry, page in zip(record.pages, pdf.pages, strict=True):
            digests = {hashlib.sha256(obj.read_raw_bytes()).hexdigest()
                       for _, obj in page.images.items()}
            if entry.image_sha256 not in digests:
                raise DataMessageError(f"page {entry.index}: image stream changed while saving")


def read_embedded_record(pdf: bytes) -> StructuredRecord:
    """The structured record embedded in a data message (also after signing)."""
    try:
        doc = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PdfError as exc:
        raise DataMessageError(f"not a readable PDF: {exc}") from exc
    with doc:
        spec = doc.attachments.get(RECORD_FILENAME)
        if spec is None:
            raise DataMessageError(f"the PDF has no embedded {RECORD_FILENAME} (not a sohoa data "
                                   "message, or the record was removed)")
        data = spec.get_file().read_bytes()
    try:
        return StructuredRecord.from_json_bytes(data)
    except RecordError as exc:
        raise DataMessageError(f"embedded {RECORD_FILENAME} is invalid: {exc}") from exc

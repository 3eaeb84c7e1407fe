"""Self-check of PDF/A-2b/3b files (veraPDF is not available; this is sohoa's own check).

Two layers:

1. ``pikepdf.pdfa`` (an allowlist validator generated from the veraPDF rule profiles) checks the
   whole file. It does not model interactive forms, so for a signed file it is run on a copy
   whose signature appearances are flattened into the page (fonts, glyph widths and colours of
   the appearance are then validated like content) and whose signature machinery (``/AcroForm``,
   ``/Perms``, ``/DSS``) is removed; the fields themselves are checked here: appearance stream
   present, printable, fonts embedded, a PDF/A-permitted ``/SubFilter``.
2. Independent structural checks that name the PDF/A clauses sohoa relies on: header, no
   encryption, XMP ``pdfaid`` matching the claimed part, output intent with an ICC profile, every
   font embedded, no JavaScript or forbidden actions, embedded files as associated files
   (PDF/A-3, ``/AFRelationship``, MIME type), and DocInfo consistent with XMP.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pikepdf
import pikepdf.pdfa
from pikepdf import Name
from pikepdf.models.metadata import decode_pdf_date

FORBIDDEN_ACTIONS = {"/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/JavaScript",
                     "/Hide", "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView"}
KNOWN_EXTENSIONS = {"/ADBE", "/ESIC"}  # Adobe; ETSI (PAdES, set by pyHanko)
ALLOWED_SIG_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached", "/ETSI.RFC3161"}
ANNOT_INVISIBLE, ANNOT_HIDDEN, ANNOT_PRINT, ANNOT_NOVIEW = 1, 2, 4, 32
_HEADER = re.compile(rb"%PDF-1\.([0-7])\r?\n?")
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
_INFO_XMP = {  # DocInfo key -> XMP property
    "/Title": "dc:title", "/Author": "dc:creator", "/Subject": "dc:description",
    "/Keywords": "pdf:Keywords", "/Creator": "xmp:CreatorTool", "/Producer": "pdf:Producer",
    "/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate",
}


@dataclass
class PdfaReport:
    ok: bool
    part: int | None
    conformance: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signatures: int = 0
    revisions: int = 1

    def summary(self) -> str:
        claim = f"PDF/A-{self.part}{(self.conformance or '').lower()}" if self.part else "no PDF/A claim"
        head = f"{claim}: {'OK' if self.ok else 'NOT OK'} ({self.signatures} signature(s), " \
               f"{self.revisions} revision(s))"
        return "\n".join([head, *(f"  problem: {p}" for p in self.problems),
                          *(f"  note: {n}" for n in self.notes)])


def check_pdfa(pdf: bytes) -> PdfaReport:
    """Check that ``pdf`` is a PDF/A-2b or 3b file, also after incremental signing."""
    problems: list[str] = []
    notes: list[str] = []
    revisions = max(pdf.count(b"%%EOF"), 1)
    problems += _check_header(pdf)
    try:
        doc = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PasswordError:
        return PdfaReport(False, None, None, ["6.1.3: the file is encrypted"], revisions=revisions)
    except pikepdf.PdfError as exc:
        return PdfaReport(False, None, None, [f"not a readable PDF: {exc}"], revisions=revisions)
    with doc:
        part, conformance, xmp_problems = _pdfa_claim(doc)
        problems += xmp_problems
        if doc.is_encrypted or Name.Encrypt in doc.trailer:
            problems.append("6.1.3: the file is encrypted")
        if Name.ID not in doc.trailer:
            problems.append("6.1.3: the trailer has no /ID")
        problems += _check_output_intent(doc)
        problems += _check_fonts(doc)
        problems += _check_actions(doc)
        problems += _check_embedded_files(doc, part)
        problems += _check_info_consistency(doc)
        signature_widgets = _signature_widgets(doc)
        problems += _check_extensions(doc)
        for where, widget in signature_widgets:
            problems += _check_signature_widget(widget, where)
        if part in (2, 3) and conformance in ("B", "U", "A"):
            flavour = f"{part}b"
            problems_v, notes_v = _run_validator(pdf, doc, flavour, bool(signature_widgets))
            problems += problems_v
            notes += notes_v
        elif part is not None:
            problems.append(f"PDF/A-{part}{conformance or ''} is not a level this check supports "
                            "(2b, 3b)")
    unique = list(dict.fromkeys(problems))
    return PdfaReport(ok=not unique, part=part, conformance=conformance, problems=unique,
                      notes=notes, signatures=len(signature_widgets), revisions=revisions)


def _check_header(pdf: bytes) -> list[str]:
    match = _HEADER.match(pdf)
    if not match:
        return ["6.1.2: the file does not start with a %PDF-1.0 .. %PDF-1.7 header"]
    rest = pdf[match.end():match.end() + 64]
    comment = rest.split(b"\n", 1)[0].split(b"\r", 1)[0]
    if not comment.startswith(b"%") or sum(1 for b in comment[1:] if b > 127) < 4:
        return ["6.1.2: the header is not followed by a comment with at least 4 binary bytes"]
    return []


def _pdfa_claim(doc: pikepdf.Pdf) -> tuple[int | None, str | None, list[str]]:
    if Name.Metadata not in doc.Root:
        return None, None, ["6.6.2: the catalog has no XMP /Metadata stream"]
    metadata = doc.Root.Metadata
    problems = []
    if Name.Filter in metadata:
        problems.append("6.6.2.1: the XMP metadata stream is compressed (/Filter)")
    try:
        meta = doc.open_metadata()
        part_text, conformance = meta.get("pdfaid:part"), meta.get("pdfaid:conformance")
    except Exception as exc:  # pikepdf raises several XML error types
        return None, None, [*problems, f"6.6.2: XMP metadata cannot be parsed: {exc}"]
    if not part_text:
        problems.append("6.6.4: XMP has no pdfaid:part (the file does not claim PDF/A)")
        return None, None, problems
    try:
        part = int(part_text)
    except ValueError:
        return None, None, [*problems, f"6.6.4: pdfaid:part {part_text!r} is not a number"]
    if not conformance:
        problems.append("6.6.4: XMP has no pdfaid:conformance")
    if part in (2, 3) and doc.pdf_version > "1.7":
        problems.append(f"6.1.2: PDF/A-{part} is based on PDF 1.7, the file says {doc.pdf_version}")
    return part, (conformance or None), problems


def _check_output_intent(doc: pikepdf.Pdf) -> list[str]:
    intents = doc.Root.get(Name.OutputIntents)
    if not intents:
        return ["6.2.3: no output intent (an ICC profile is required for device colours)"]
    pdfa = [oi for oi in intents if oi.get(Name.S) == Name.GTS_PDFA1]
    if not pdfa:
        return ["6.2.3: no output intent with /S /GTS_PDFA1"]
    profiles = {oi.get(Name.DestOutputProfile).objgen for oi in pdfa
                if isinstance(oi.get(Name.DestOutputProfile), pikepdf.Stream)}
    if not profiles:
        return ["6.2.3: the PDF/A output intent has no /DestOutputProfile ICC stream"]
    if len(profiles) > 1:
        return ["6.2.3: output intents point to different ICC profiles"]
    profile = pdfa[0].DestOutputProfile
    if int(profile.get(Name.N, 0)) not in (1, 3, 4):
        return ["6.2.3: the output ICC profile has no valid /N"]
    return []


def _resources_fonts(resources: pikepdf.Object, where: str, seen: set[tuple[int, int]]
                     ) -> Iterator[tuple[str, pikepdf.Object]]:
    """Fonts reachable from a resource dictionary, following form XObjects and patterns."""
    if not isinstance(resources, pikepdf.Dictionary):
        return
    fonts = resources.get(Name.Font)
    if isinstance(fonts, pikepdf.Dictionary):
        for name, font in fonts.items():
            yield f"{where} font {name}", font
            if font.get(Name.Subtype) == Name.Type3:
                yield from _nested(font.get(Name.Resources), f"{where} {name}", seen)
    for key in (Name.XObject, Name.Pattern):
        group = resources.get(key)
        if isinstance(group, pikepdf.Dictionary):
            for name, obj in group.items():
                if isinstance(obj, pikepdf.Stream) or isinstance(obj, pikepdf.Dictionary):
                    yield from _nested(obj.get(Name.Resources), f"{where} {name}", seen, obj)


def _nested(resources: pikepdf.Object | None, where: str, seen: set[tuple[int, int]],
            owner: pikepdf.Object | None = None) -> Iterator[tuple[str, pikepdf.Object]]:
    if owner is not None and owner.is_indirect:
        if owner.objgen in seen:
            return
        seen.add(owner.objgen)
    if resources is not None:
        yield from _resources_fonts(resources, where, seen)


def _all_fonts(doc: pikepdf.Pdf) -> Iterator[tuple[str, pikepdf.Object]]:
    seen: set[tuple[int, int]] = set()
    for number, page in enumerate(doc.pages, start=1):
        yield from _resources_fonts(page.obj.get(Name.Resources), f"page {number}", seen)
        for annot in page.obj.get(Name.Annots, []):
            appearance = annot.get(Name.AP)
            if not isinstance(appearance, pikepdf.Dictionary):
                continue
            for state in ("/N", "/R", "/D"):
                stream = appearance.get(state)
                if isinstance(stream, pikepdf.Stream):
                    yield from _nested(stream.get(Name.Resources),
                                       f"page {number} annotation {state}", seen, stream)


def _font_embedded(font: pikepdf.Object) -> bool:
    subtype = font.get(Name.Subtype)
    if subtype == Name.Type3:
        return True
    if subtype == Name.Type0:
        descendants = font.get(Name.DescendantFonts)
        if not descendants:
            return False
        font = descendants[0]
    descriptor = font.get(Name.FontDescriptor)
    return isinstance(descriptor, pikepdf.Dictionary) and any(
        isinstance(descriptor.get(key), pikepdf.Stream) for key in _FONT_FILES)


def _check_fonts(doc: pikepdf.Pdf) -> list[str]:
    return [f"6.2.11.4: {where} ({font.get(Name.BaseFont, '?')}) is not embedded"
            for where, font in _all_fonts(doc) if not _font_embedded(font)]


def _actions(obj: pikepdf.Object) -> Iterator[pikepdf.Object]:
    action = obj.get(Name.A)
    if isinstance(action, pikepdf.Dictionary):
        yield action
    additional = obj.get(Name.AA)
    if isinstance(additional, pikepdf.Dictionary):
        yield from (a for a in additional.values() if isinstance(a, pikepdf.Dictionary))


def _check_actions(doc: pikepdf.Pdf) -> list[str]:
    problems = []
    names = doc.Root.get(Name.Names)
    if isinstance(names, pikepdf.Dictionary) and Name.JavaScript in names:
        problems.append("6.6.1: the name dictionary has document-level /JavaScript")
    if Name.AA in doc.Root:
        problems.append("6.6.2: the catalog has additional actions (/AA)")
    open_action = doc.Root.get(Name.OpenAction)
    if isinstance(open_action, pikepdf.Dictionary) and str(open_action.get(Name.S)) in FORBIDDEN_ACTIONS:
        problems.append(f"6.6.1: the open action is {open_action.get(Name.S)}")
    for number, page in enumerate(doc.pages, start=1):
        if Name.AA in page.obj:
            problems.append(f"6.6.2: page {number} has additional actions (/AA)")
        for annot in page.obj.get(Name.Annots, []):
            for action in _actions(annot):
                if str(action.get(Name.S)) in FORBIDDEN_ACTIONS:
                    problems.append(f"6.6.1: page {number} annotation action {action.get(Name.S)}")
    return problems


def _check_embedded_files(doc: pikepdf.Pdf, part: int | None) -> list[str]:
    problems = []
    associated = {spec.objgen for spec in doc.Root.get(Name.AF, []) if spec.is_indirect}
    for page in doc.pages:
        associated |= {spec.objgen for spec in page.obj.get(Name.AF, []) if spec.is_indirect}
    for name, attached in doc.attachments.items():
        spec = attached.obj
        if part == 2:
            problems.append(f"6.8: PDF/A-2 permits only PDF/A embedded files; {name!r} is "
                            "embedded (use PDF/A-3)")
            continue
        if Name.AFRelationship not in spec:
            problems.append(f"6.8: embedded file {name!r} has no /AFRelationship")
        if Name.F not in spec or Name.UF not in spec:
            problems.append(f"6.8: embedded file {name!r} needs both /F and /UF")
        stream = spec.get(Name.EF, {}).get(Name.F)
        if not isinstance(stream, pikepdf.Stream) or Name.Subtype not in stream:
            problems.append(f"6.8: embedded file {name!r} has no MIME type (/Subtype)")
        if not spec.is_indirect or spec.objgen not in associated:
            problems.append(f"6.8: embedded file {name!r} is not an associated file (/AF)")
    return problems


def _pdf_date(value: str) -> datetime | None:
    try:
        return decode_pdf_date(value)
    except ValueError:
        return None


def _check_info_consistency(doc: pikepdf.Pdf) -> list[str]:
    info = doc.trailer.get(Name.Info)
    if not isinstance(info, pikepdf.Dictionary):
        return []
    try:
        meta = doc.open_metadata()
    except Exception:  # already reported by _pdfa_claim
        return []
    problems = []
    for key, prop in _INFO_XMP.items():
        if key not in info:
            continue
        value = str(info[key])
        xmp_value = meta.get(prop)
        if xmp_value is None:
            problems.append(f"6.6.3: DocInfo {key} has no XMP {prop} equivalent")
            continue
        if key in ("/CreationDate", "/ModDate"):
            left, right = _pdf_date(value), _parse_xmp_date(str(xmp_value))
            if left is None or right is None or left != right:
                problems.append(f"6.6.3: DocInfo {key} {value!r} differs from XMP {prop} "
                                f"{xmp_value!r}")
            continue
        if isinstance(xmp_value, list | set):
            xmp_text = ", ".join(sorted(xmp_value)) if isinstance(xmp_value, set) else ", ".join(
                xmp_value)
        else:
            xmp_text = str(xmp_value)
        if xmp_text != value:
            problems.append(f"6.6.3: DocInfo {key} differs from XMP {prop}")
    return problems


def _parse_xmp_date(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _signature_widgets(doc: pikepdf.Pdf) -> list[tuple[str, pikepdf.Dictionary]]:
    widgets = []
    for number, page in enumerate(doc.pages, start=1):
        for annot in page.obj.get(Name.Annots, []):
            if annot.get(Name.Subtype) != Name.Widget:
                continue
            field_type = annot.get(Name.FT) or annot.get(Name.Parent, {}).get(Name.FT)
            if field_type == Name.Sig:
                widgets.append((f"page {number} signature {annot.get(Name.T, '?')}", annot))
    return widgets


def _check_signature_widget(widget: pikepdf.Dictionary, where: str) -> list[str]:
    problems = []
    rect = [float(v) for v in widget.get(Name.Rect, [0, 0, 0, 0])]
    zero_area = abs(rect[2] - rect[0]) < 1e-6 and abs(rect[3] - rect[1]) < 1e-6
    flags = int(widget.get(Name.F, 0))
    if not zero_area:
        appearance = widget.get(Name.AP)
        if not isinstance(appearance, pikepdf.Dictionary) or not isinstance(
                appearance.get(Name.N), pikepdf.Stream):
            problems.append(f"6.3.3: {where} has no normal appearance stream")
        elif set(appearance.keys()) - {"/N"}:
            problems.append(f"6.3.3: {where} appearance has keys other than /N")
        if not flags & ANNOT_PRINT or flags & (ANNOT_INVISIBLE | ANNOT_HIDDEN | ANNOT_NOVIEW):
            problems.append(f"6.3.2: {where} is not printable or is hidden (flags {flags})")
    value = widget.get(Name.V) or widget.get(Name.Parent, {}).get(Name.V)
    if isinstance(value, pikepdf.Dictionary):
        sub_filter = str(value.get(Name.SubFilter))
        if sub_filter not in ALLOWED_SIG_SUBFILTERS:
            problems.append(f"6.4.3: {where} uses /SubFilter {sub_filter}")
    return problems


def _check_extensions(doc: pikepdf.Pdf) -> list[str]:
    """Developer extensions (ISO 32000-1 7.12): PAdES signers add /ESIC (ETSI EN 319 142-1)."""
    extensions = doc.Root.get(Name.Extensions)
    if extensions is None:
        return []
    if not isinstance(extensions, pikepdf.Dictionary):
        return ["catalog /Extensions is not a dictionary"]
    problems = []
    for prefix, entry in extensions.items():
        if prefix == "/Type":
            continue
        entries = entry if isinstance(entry, pikepdf.Array) else [entry]
        for item in entries:
            if prefix not in KNOWN_EXTENSIONS:
                problems.append(f"catalog /Extensions {prefix} is not a known developer extension")
            elif not (isinstance(item, pikepdf.Dictionary)
                      and isinstance(item.get(Name.BaseVersion), pikepdf.Name)
                      and isinstance(item.get(Name.ExtensionLevel), int)):
                problems.append(f"catalog /Extensions {prefix} lacks /BaseVersion or /ExtensionLevel")
    return problems


def _without_signatures(doc: pikepdf.Pdf) -> bytes:
    """A copy for the allowlist validator: signature appearances flattened into page content
    (so their fonts, widths and colours are validated like any content), then the signature
    machinery (fields, /Perms, /DSS) removed."""
    doc.flatten_annotations(mode="all")
    for key in (Name.AcroForm, Name.Perms, Name.DSS, Name.Extensions):  # /Extensions: see below
        if key in doc.Root:
            del doc.Root[key]
    for page in doc.pages:
        annots = page.obj.get(Name.Annots)
        if annots is None:
            continue
        kept = [a for a in annots if not (a.get(Name.Subtype) == Name.Widget and (
            a.get(Name.FT) or a.get(Name.Parent, {}).get(Name.FT)) == Name.Sig)]
        if kept:
            page.obj.Annots = pikepdf.Array(kept)
        else:
            del page.obj[Name.Annots]
    out = io.BytesIO()
    doc.save(out, **pikepdf.pdfa.resolve_save_kwargs(  # keep filters and version as written
        "3b" if doc.Root.get(Name.AF) else "2b"))
    return out.getvalue()


def _run_validator(pdf: bytes, doc: pikepdf.Pdf, flavour: str, signed: bool
                   ) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    notes: list[str] = []
    report = pikepdf.pdfa.validate_written(io.BytesIO(pdf), flavour)
    problems += [f"{f.rule} at {f.where}: {f.message}" for f in report.violations]
    if not signed and Name.Extensions not in doc.Root:
        problems += [f"not checked: {f.rule} at {f.where}: {f.message}" for f in report.unsupported]
        return problems, notes
    with pikepdf.open(io.BytesIO(pdf)) as copy:
        stripped = _without_signatures(copy)
    second = pikepdf.pdfa.validate_written(io.BytesIO(stripped), flavour)
    seen = {(f.rule, f.message) for f in report.violations}
    for finding in second.findings:  # object numbers there are the copy's, not the file's
        if (finding.rule, finding.message) in seen:
            continue
        prefix = "" if finding.kind == "violation" else "not checked: "
        problems.append(f"{prefix}{finding.rule} (with signature appearances flattened): "
                        f"{finding.message}")
    if signed:
        notes.append("signature fields and /Extensions checked by sohoa (pikepdf.pdfa does not "
                     "model them); the rest, with appearances flattened, by pikepdf.pdfa")
    return problems, notes

"""PDF/A self-check: our output, after pyHanko signing, and files that must be refused."""
from __future__ import annotations

import io

import pikepdf
import pytest
from reportlab.pdfgen.canvas import Canvas

from converters.datamessage import build_data_message
from converters.pdfa_check import check_pdfa
from tests.test_convert_support import TestSigner, make_record, need, run, two_pages


@pytest.fixture(scope="module")
def message():
    return build_data_message(two_pages(), make_record())


@pytest.fixture(scope="module")
def signer():
    return TestSigner()


def test_fresh_data_message_passes(message):
    report = check_pdfa(message.pdf)
    assert report.ok, report.summary()
    assert (report.part, report.conformance, report.signatures, report.revisions) == (3, "B", 0, 1)


def test_still_pdfa_after_two_incremental_pyhanko_signatures(message, signer, tmp_path):
    boxes = message.signature_boxes
    signed = signer.sign(message.pdf, boxes["officer"], "officer")
    signed = signer.sign(signed, boxes["agency"], "agency")
    assert signed.startswith(message.pdf)  # incremental updates
    with pikepdf.open(io.BytesIO(signed)) as doc:  # PAdES: pyHanko declares the ETSI extension
        assert "/ESIC" in doc.Root.Extensions
    report = check_pdfa(signed)
    assert report.ok, report.summary()
    assert report.signatures == 2 and report.revisions == 3
    need("pdfsig")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    assert run("pdfsig", path).count("Signature Field Name") == 2


def test_signature_appearance_with_unembedded_font_is_refused(message, signer):
    signed = signer.sign(message.pdf, message.signature_boxes["officer"], "officer",
                         embedded_font=False)
    report = check_pdfa(signed)
    assert not report.ok
    assert any("not embedded" in p for p in report.problems), report.summary()


def test_signature_appearance_with_wrong_glyph_widths_is_refused(message, signer):
    """pyHanko 0.38 + a 2048-unit TrueType font writes /W in font units: a real PDF/A error."""
    signed = signer.sign(message.pdf, message.signature_boxes["officer"], "officer",
                         font="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    report = check_pdfa(signed)
    assert not report.ok
    assert any("glyph widths disagree" in p for p in report.problems), report.summary()


def test_plain_pdf_is_refused():
    buf = io.BytesIO()
    canvas = Canvas(buf)
    canvas.drawString(100, 700, "Hello")  # Helvetica, not embedded; no XMP, no output intent
    canvas.save()
    report = check_pdfa(buf.getvalue())
    assert not report.ok and report.part is None
    text = "\n".join(report.problems)
    assert "XMP" in text and "output intent" in text and "not embedded" in text


def _edit(pdf: bytes, change) -> bytes:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        change(doc)
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


def test_javascript_is_refused(message):
    def add_js(doc: pikepdf.Pdf) -> None:
        action = doc.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                                      JS=pikepdf.String("app.alert(1)")))
        doc.Root.OpenAction = action
    report = check_pdfa(_edit(message.pdf, add_js))
    assert not report.ok
    assert any("open action is /JavaScript" in p for p in report.problems), report.summary()


def test_attachment_outside_af_is_refused(message):
    def attach(doc: pikepdf.Pdf) -> None:
        doc.attachments["extra.txt"] = pikepdf.AttachedFileSpec(doc, b"x", mime_type="text/plain")
        # pikepdf lists new attachments in /AF itself; keep only the record there
        doc.Root.AF = pikepdf.Array([spec for spec in doc.Root.AF if spec.get(pikepdf.Name.UF)
                                     == "record.json"])
    report = check_pdfa(_edit(message.pdf, attach))
    assert not report.ok
    assert any("'extra.txt'" in p for p in report.problems), report.summary()


def test_encrypted_file_is_refused(message):
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(message.pdf)) as doc:
        doc.save(out, encryption=pikepdf.Encryption(owner="o", user="", R=6))
    report = check_pdfa(out.getvalue())
    assert not report.ok
    assert any("encrypted" in p for p in report.problems)


def test_garbage_is_refused():
    report = check_pdfa(b"%PDF-1.7\nnot really")
    assert not report.ok and report.problems


def test_cli_check_pdfa(message, tmp_path):
    import json

    from typer.testing import CliRunner

    from cli import app

    good = tmp_path / "good.pdf"
    good.write_bytes(message.pdf)
    result = CliRunner().invoke(app, ["check-pdfa", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["part"] == 3
    bad = tmp_path / "bad.pdf"
    buf = io.BytesIO()
    Canvas(buf).save()
    bad.write_bytes(buf.getvalue())
    result = CliRunner().invoke(app, ["check-pdfa", str(bad)])
    assert result.exit_code == 1
    assert CliRunner().invoke(app, ["check-pdfa", str(tmp_path / "missing.pdf")]).exit_code == 3


def test_pades_b_lta_from_the_signing_stage_stays_pdfa(message, tmp_path):
    """The project's own signer (signing/) at B-LTA: DSS, validation data, document timestamp."""
    import socket

    from signing.devserver import serve_dev_pki
    from signing.pki import init_dev_pki
    from signing.signer import SignerSpec, open_signer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    pki = init_dev_pki(tmp_path / "pki", agency_name="Uỷ ban nhân dân phường Bến Nghé",
                       officer_name="Trần Thị Hoa", base_url=base)
    server = serve_dev_pki(pki, port=port)
    try:
        officer = open_signer(SignerSpec(kind="pkcs12", path=str(pki.officer_p12),
                                         passphrase=pki.passphrase))
        agency = open_signer(SignerSpec(kind="pkcs12", path=str(pki.agency_p12),
                                        passphrase=pki.passphrase))
        pdf = officer.sign(message.pdf, field_name="Sig_officer",
                           box=message.signature_boxes["officer"], lines=["Trần Thị Hoa"],
                           level="B-T", timestamp_url=f"{base}/tsa")
        pdf = agency.sign(pdf, field_name="Sig_agency", box=message.signature_boxes["agency"],
                          lines=["Uỷ ban nhân dân phường Bến Nghé"], level="B-LTA",
                          timestamp_url=f"{base}/tsa")
    finally:
        server.stop()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert "/DSS" in doc.Root
    report = check_pdfa(pdf)
    assert report.ok, report.summary()
    assert report.signatures == 3  # officer, agency, document timestamp

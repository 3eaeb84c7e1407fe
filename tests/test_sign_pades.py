"""PAdES signing and verification against the dev PKI, cross-checked with poppler's pdfsig (NSS).

One module-scoped dev PKI (RSA-2048) + loopback TSA/OCSP/CRL server; small 2-page PDFs made with
reportlab. Every signed file is checked twice: by ``signing.verify.verify_pdf`` and independently
by ``pdfsig`` against an NSS database that trusts only the dev root.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import socket
from pathlib import Path

import pikepdf
import pytest

from tests.conftest import nss_db
from tests.conftest import pdfsig as pdfsig_report
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from signing.devserver import serve_dev_pki
from signing.pki import DevPki, init_dev_pki, issue_certificate, revoke_certificate
from signing.signer import PdfSigner, SignerSpec, SigningError, open_signer
from signing.verify import INDETERMINATE, TOTAL_FAILED, TOTAL_PASSED, verify_pdf

AGENCY = "Uỷ ban nhân dân phường Bến Nghé"
OFFICER = "Nguyễn Thị Lan"
OFFICER_BOX = (36.0, 770.0, 256.0, 820.0)  # top-left of an A4 page
AGENCY_BOX = (339.0, 770.0, 559.0, 820.0)  # top-right
OFFICER_LINES = ["Người quét: Nguyễn Thị Lan", "Thời gian quét: 2026-11-23T09:15:02+07:00"]
AGENCY_LINES = [f"Ký bởi: {AGENCY}", "Thời gian ký: 2026-11-23T09:15:40+07:00"]
LEVELS = ["B-B", "B-T", "B-LT", "B-LTA"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_pdf(pages: int = 2, text: str = "Giấy xác nhận thông tin về cư trú") -> bytes:
    buf = io.BytesIO()
    page_canvas = canvas.Canvas(buf, pagesize=A4, pageCompression=0)
    for number in range(1, pages + 1):
        page_canvas.drawString(72, 600, f"Trang {number}: {text}".encode("ascii", "replace").decode())
        page_canvas.showPage()
    page_canvas.save()
    return buf.getvalue()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    port = _free_port()
    pki = init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        agency_name=AGENCY,
        officer_name=OFFICER,
        base_url=f"http://127.0.0.1:{port}",
        passphrase="test-only-passphrase",
    )
    server = serve_dev_pki(pki, port=port)
    yield pki, server
    server.stop()


@pytest.fixture(scope="module")
def pki(dev) -> DevPki:
    return dev[0]


@pytest.fixture(scope="module")
def tsa_url(dev) -> str:
    return dev[1].tsa_url


@pytest.fixture(scope="module")
def officer(pki: DevPki):
    with open_signer(SignerSpec(path=str(pki.officer_p12), passphrase=pki.passphrase)) as signer:
        yield signer


@pytest.fixture(scope="module")
def agency(pki: DevPki):
    with open_signer(SignerSpec(path=str(pki.agency_p12), passphrase=pki.passphrase)) as signer:
        yield signer


@pytest.fixture(scope="module")
def nssdb(pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    for tool in ("pdfsig", "certutil"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    return nss_db(tmp_path_factory.mktemp("nss"), pki.root_cert)


def pdfsig(nssdb: str, pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    return pdfsig_report(path, nssdb)


def sign_both(officer: PdfSigner, agency: PdfSigner, pdf: bytes, level: str, tsa_url: str) -> bytes:
    first = officer.sign(
        pdf, field_name="Sig_Officer", box=OFFICER_BOX, lines=OFFICER_LINES,
        reason="Số hoá", location="Bộ phận Một cửa", level=level, timestamp_url=tsa_url,
    )
    return agency.sign(
        first, field_name="Sig_Agency", box=AGENCY_BOX, lines=AGENCY_LINES,
        reason="Chứng thực bản điện tử", level=level, timestamp_url=tsa_url,
    )


@pytest.mark.parametrize("level", LEVELS)
def test_officer_then_agency_signature_verify_at_every_level(
    level, officer, agency, pki, tsa_url, nssdb, tmp_path
):
    pdf = make_pdf()
    signed = sign_both(officer, agency, pdf, level, tsa_url)
    assert signed.startswith(pdf)  # incremental updates only

    report = verify_pdf(signed, [pki.root_pem()])
    assert report.passed, report.model_dump_json(indent=1)
    assert report.verdict == TOTAL_PASSED
    assert [s.field for s in report.signatures] == ["Sig_Officer", "Sig_Agency"]
    assert [s.signer for s in report.signatures] == [OFFICER, AGENCY]
    assert all(s.level == level and s.trusted and s.intact for s in report.signatures)
    assert report.signatures[0].modification_level in ("FORM_FILLING", "LTA_UPDATES")
    assert report.signatures[1].covers_whole_document == (level in ("B-B", "B-T"))
    assert all(s.signing_time is not None for s in report.signatures)
    assert "hợp lệ" in report.message_vi and "valid" in report.message_en

    out = pdfsig(nssdb, signed, tmp_path)
    blocks = [b for b in out.split("Signature #")[1:] if "ETSI.CAdES.detached" in b]
    assert len(blocks) == 2, out  # document timestamps (B-LTA) are listed but not verified
    for block in blocks:
        assert "Signature is Valid." in block, out
        assert "Certificate is Trusted." in block, out


def test_appearance_top_left_and_top_right_with_embedded_vietnamese_font(officer, agency, tsa_url):
    signed = sign_both(officer, agency, make_pdf(), "B-B", tsa_url)
    with pikepdf.open(io.BytesIO(signed)) as doc:
        widgets = {
            str(annot.T): annot
            for annot in doc.pages[0].Annots
            if annot.get("/FT") == "/Sig"
        }
        assert set(widgets) == {"Sig_Officer", "Sig_Agency"}
        for name, box in (("Sig_Officer", OFFICER_BOX), ("Sig_Agency", AGENCY_BOX)):
            widget = widgets[name]
            assert [float(v) for v in widget.Rect] == pytest.approx(list(box))
            assert int(widget.F) & 4  # printable
            fonts = widget.AP.N.Resources.Font
            for font_name in fonts.keys():
                font = fonts[font_name]
                assert font.Subtype == "/Type0"  # not a standard-14 font
                descriptor = font.DescendantFonts[0].FontDescriptor
                program = TTFont(io.BytesIO(descriptor.FontFile2.read_bytes()))  # embedded
                assert program["head"].unitsPerEm == 1000  # /W widths are in glyph space
                assert {ord(c) for c in "".join(OFFICER_LINES + AGENCY_LINES)} <= set(
                    program.getBestCmap()
                )


def test_unrenderable_text_and_bad_inputs_are_refused(agency):
    with pytest.raises(SigningError, match="cannot render"):
        agency.sign(make_pdf(), field_name="S", box=AGENCY_BOX, lines=["中文"])
    with pytest.raises(SigningError, match="not a readable PDF"):
        agency.sign(b"not a pdf", field_name="S", box=AGENCY_BOX)
    with pytest.raises(SigningError, match="out of range"):
        agency.sign(make_pdf(pages=1), field_name="S", box=AGENCY_BOX, page=3)
    with pytest.raises(SigningError, match="unknown signature level"):
        agency.sign(make_pdf(), field_name="S", box=AGENCY_BOX, level="B-X")
    with pytest.raises(SigningError, match="too small or inverted"):
        agency.sign(make_pdf(), field_name="S", box=(100, 100, 50, 50))


def test_tampered_byte_is_hash_failure(agency, pki, nssdb, tmp_path):
    signed = agency.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, lines=AGENCY_LINES)
    assert signed.count(b"Trang 1") == 1
    tampered = signed.replace(b"Trang 1", b"Trang 7")
    report = verify_pdf(tampered, [pki.root_pem()])
    assert not report.passed
    sig = report.signatures[0]
    assert (sig.verdict, sig.sub_indication, sig.intact) == (TOTAL_FAILED, "HASH_FAILURE", False)
    assert "thay đổi" in sig.message_vi
    out = pdfsig(nssdb, tampered, tmp_path)
    assert "Signature is Valid." not in out and "Digest Mismatch" in out, out


def test_revoked_certificate_is_not_passed(pki, tsa_url, nssdb, tmp_path):
    p12 = issue_certificate(pki, "revoked-officer", common_name="Trần Văn Bình")
    revoke_certificate(pki, p12, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    with open_signer(SignerSpec(path=str(p12), passphrase=pki.passphrase)) as signer:
        basic = signer.sign(make_pdf(), field_name="Sig_Officer", box=OFFICER_BOX)
        timestamped = signer.sign(
            make_pdf(), field_name="Sig_Officer", box=OFFICER_BOX, level="B-T",
            timestamp_url=tsa_url,
        )
        with pytest.raises(SigningError):  # B-LT checks revocation before signing
            signer.sign(make_pdf(), field_name="S", box=OFFICER_BOX, level="B-LT",
                        timestamp_url=tsa_url)
    # B-T: the timestamp proves the signature came after the revocation -> definitely failed
    sig = verify_pdf(timestamped, [pki.root_pem()]).signatures[0]
    assert (sig.verdict, sig.sub_indication) == (TOTAL_FAILED, "REVOKED"), sig
    assert "thu hồi" in sig.message_vi
    # B-B: no proof of when it was made (ETSI EN 319 102-1 basic validation)
    sig = verify_pdf(basic, [pki.root_pem()]).signatures[0]
    assert (sig.verdict, sig.sub_indication) == (INDETERMINATE, "REVOKED_NO_POE"), sig
    assert "thu hồi" in sig.message_vi
    assert "Certificate has been Revoked." in pdfsig(nssdb, basic, tmp_path)


def test_expired_certificate_without_ltv_is_indeterminate(pki, nssdb, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    p12 = issue_certificate(
        pki, "expired", common_name="Lê Thị Cúc",
        not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1),
    )
    with open_signer(SignerSpec(path=str(p12), passphrase=pki.passphrase)) as signer:
        with pytest.raises(SigningError, match="expired"):
            signer.sign(make_pdf(), field_name="S", box=OFFICER_BOX)
    # a signature made by older software that did not check: plain pyHanko, no timestamp
    legacy = signers.SimpleSigner.load_pkcs12(str(p12), passphrase=pki.passphrase.encode())
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig_Old"),
        signer=legacy,
        output=out,
    )
    report = verify_pdf(out.getvalue(), [pki.root_pem()])
    sig = report.signatures[0]
    assert sig.verdict == INDETERMINATE and sig.intact
    assert sig.sub_indication in ("OUT_OF_BOUNDS_NO_POE", "EXPIRED"), sig
    assert "hết hạn" in sig.message_vi
    assert "Certificate has Expired" in pdfsig(nssdb, out.getvalue(), tmp_path)


def test_untrusted_root_is_no_certificate_chain_found(agency, tmp_path):
    other = init_dev_pki(
        tmp_path / "other", agency_name="Cơ quan khác", officer_name="Người khác",
        passphrase="other-pass",
    )
    signed = agency.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, lines=AGENCY_LINES)
    report = verify_pdf(signed, [other.root_pem()], revocation="off")
    sig = report.signatures[0]
    assert (sig.verdict, sig.sub_indication) == (INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")
    assert sig.intact and not sig.trusted
    assert report.verdict == INDETERMINATE and not report.passed


def _append_page_content(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 300 Td (Sua doi trai phep) Tj ET")
    writer.add_stream_to_page(0, writer.add_object(stream))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_incremental_update_changing_page_content_fails(officer, agency, pki, tsa_url):
    signed = sign_both(officer, agency, make_pdf(), "B-T", tsa_url)
    modified = _append_page_content(signed)
    assert modified.startswith(signed)
    report = verify_pdf(modified, [pki.root_pem()])
    assert report.verdict == TOTAL_FAILED and not report.passed
    for sig in report.signatures:
        assert sig.intact  # the signed bytes are untouched...
        assert (sig.verdict, sig.sub_indication) == (TOTAL_FAILED, "FORMAT_FAILURE")  # ...but
        assert sig.modification_level == "OTHER"
        assert "sửa đổi" in sig.message_vi


def test_unsigned_and_broken_pdfs_are_not_passed(pki):
    unsigned = verify_pdf(make_pdf(), [pki.root_pem()])
    assert (unsigned.verdict, unsigned.signatures, unsigned.passed) == (TOTAL_FAILED, [], False)
    assert "không có chữ ký" in unsigned.message_vi and "no digital signature" in unsigned.message_en
    broken = verify_pdf(b"%PDF-1.7 garbage", [pki.root_pem()])
    assert broken.verdict == TOTAL_FAILED and not broken.passed


def test_batch_reuses_reserved_size(pki):
    with open_signer(SignerSpec(path=str(pki.agency_p12), passphrase=pki.passphrase)) as signer:
        outputs = [
            signer.sign(make_pdf(text=f"Hồ sơ {i}"), field_name="Sig_Agency", box=AGENCY_BOX,
                        lines=[f"{AGENCY}", f"Thời gian: 2026-11-23T09:15:{i:02d}+07:00"])
            for i in range(4)
        ]
    sizes = set()
    for signed in outputs[1:]:  # the first one measures the size, the rest reuse it
        with pikepdf.open(io.BytesIO(signed)) as doc:
            field = next(f for f in doc.Root.AcroForm.Fields if str(f.T) == "Sig_Agency")
            sizes.add(len(bytes(field.V.Contents)))
    assert len(sizes) == 1  # same reservation for every document after the first
    assert all(verify_pdf(s, [pki.root_pem()], revocation="off").passed for s in outputs)


def test_unreachable_revocation_service_is_try_later_only_when_required(tmp_path):
    port = _free_port()  # nothing listens there: OCSP and CRL are unreachable
    lonely = init_dev_pki(tmp_path / "lonely", agency_name=AGENCY, officer_name=OFFICER,
                          base_url=f"http://127.0.0.1:{port}", passphrase="lonely-pass")
    with open_signer(SignerSpec(path=str(lonely.agency_p12), passphrase=lonely.passphrase)) as s:
        signed = s.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX, lines=AGENCY_LINES)
    roots = [lonely.root_pem()]
    hard = verify_pdf(signed, roots, revocation="hard")
    assert [(x.verdict, x.sub_indication) for x in hard.signatures] == [(INDETERMINATE, "TRY_LATER")]
    assert "kiểm tra lại sau" in hard.message_vi
    assert verify_pdf(signed, roots, revocation="soft").passed
    assert verify_pdf(signed, roots, revocation="off").passed
    with pytest.raises(ValueError, match="revocation"):
        verify_pdf(signed, roots, revocation="sometimes")  # type: ignore[arg-type]


def test_reservation_that_turns_out_too_small_is_resized(pki):
    with open_signer(SignerSpec(path=str(pki.agency_p12), passphrase=pki.passphrase)) as signer:
        signer.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX)
        measured = signer._reserved[("B-B", None)]
        signer._reserved[("B-B", None)] = 512  # as if the first document had a tiny signature
        signed = signer.sign(make_pdf(), field_name="Sig_Agency", box=AGENCY_BOX)
        assert signer._reserved[("B-B", None)] == measured
    assert verify_pdf(signed, [pki.root_pem()], revocation="off").passed

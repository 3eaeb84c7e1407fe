"""Data message -> paper copy."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from converters.datamessage import DataMessageError, build_data_message
from converters.paper import PaperCopyInfo, to_paper_copy
from tests.test_convert_support import (TestSigner, decode_qr, make_record, need, run,
                                        two_pages)

PRINTED_AT = datetime(2026, 12, 1, 3, 0, 5, tzinfo=timezone.utc)  # 10:00:05 +07:00


def info(**changes) -> PaperCopyInfo:
    values = dict(printed_at=PRINTED_AT, printed_by="Lê Văn Minh, Bộ phận Một cửa phường Bến Nghé",
                  system_name="Kho quản lý dữ liệu điện tử sohoa",
                  system_owner="Uỷ ban nhân dân Thành phố Hồ Chí Minh",
                  signature_status="Hợp lệ: 2 chữ ký số, văn bản không bị thay đổi sau khi ký",
                  lookup_url="https://sohoa.example.vn/tra-cuu/000.00.12.H29.giay_khai_sinh.01JZ8X3K2M")
    values.update(changes)
    return PaperCopyInfo(**values)


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    message = build_data_message(two_pages(), make_record())
    signer = TestSigner()
    signed = signer.sign(message.pdf, message.signature_boxes["officer"], "officer")
    path = tmp_path_factory.mktemp("paper") / "print.pdf"
    path.write_bytes(to_paper_copy(signed, info()))
    return path


def test_every_page_is_printed_with_the_mark(paper):
    need("pdftotext")
    assert "Pages:           2" in run("pdfinfo", paper)
    for number in (1, 2):
        text = " ".join(run("pdftotext", "-f", str(number), "-l", str(number), paper, "-").split())
        assert "Bản giấy này được chuyển đổi từ thông điệp dữ liệu" in text
        assert "ngày 01 tháng 12 năm 2026, 10:00:05" in text
        assert "Lê Văn Minh, Bộ phận Một cửa phường Bến Nghé" in text
        assert "Kho quản lý dữ liệu điện tử sohoa" in text
        assert "Uỷ ban nhân dân Thành phố Hồ Chí Minh" in text
        assert "000.00.12.H29.giay_khai_sinh.01JZ8X3K2M" in text  # URI read from record.json
        assert "Hợp lệ: 2 chữ ký số" in text
    first = run("pdftotext", "-f", "1", "-l", "1", paper, "-")
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in first  # content (text layer) kept
    assert "Văn bản này được chuyển đổi từ văn bản giấy" in first  # the original mark kept
    assert "Ký bởi" in first  # the signature appearance is printed (flattened)


def test_paper_qr_points_to_the_original(paper, tmp_path):
    need("pdftoppm")
    run("pdftoppm", "-r", "150", "-f", "2", "-l", "2", "-png", paper, tmp_path / "p")
    (text,) = decode_qr(next(tmp_path.glob("p*.png")))
    assert "000.00.12.H29.giay_khai_sinh.01JZ8X3K2M" in text
    assert "https://sohoa.example.vn/tra-cuu/" in text
    assert "2026-12-01T10:00:05+07:00" in text


def test_paper_copy_is_pdfa2b_without_the_record(paper):
    import pikepdf

    from converters.pdfa_check import check_pdfa

    data = paper.read_bytes()
    report = check_pdfa(data)
    assert report.ok and report.part == 2, report.summary()
    with pikepdf.open(paper) as pdf:
        assert len(pdf.attachments) == 0  # a print carries the content, not the data


def test_paper_copy_needs_the_facts():
    with pytest.raises(DataMessageError, match="printed_by"):
        to_paper_copy(b"%PDF-1.7", info(printed_by=" "))
    with pytest.raises(DataMessageError):
        to_paper_copy(b"not a pdf", info(uri="x"))

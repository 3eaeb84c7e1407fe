"""Shared helpers of the API tests (no tests here): an initialized home, real signed records
stored through the repository, principals with real keys and sessions."""
from __future__ import annotations

import atexit
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from typer.testing import CliRunner

HOME_AGENCY = "000.00.12.H29"  # the server's own agency (converts records)
OTHER_AGENCY = "G01.01"  # another agency (Bộ Công an) that needs consent or a legal basis
THIRD_AGENCY = "000.00.99.H30"  # converted some of the owner's records elsewhere
OWNER_A = "079203012345"  # synthetic, structurally valid personal IDs
OWNER_B = "001185000123"
REPRESENTATIVE = "048090004567"
ADMIN_PASSWORD = "quan-tri-vien-2026"
OFFICER_PASSWORD = "can-bo-mot-cua-2026"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


_TEMPLATE: list[Path] = []


def init_home(home: Path) -> None:
    """``sohoa init`` through the real CLI code, once per test session (it makes a development
    PKI, ~15 s); later homes are copies of the first (same PKI and server secret)."""
    import cli
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="sohoa-api-template-")) / "home"
        result = CliRunner().invoke(cli.app, ["init", "--agency-code", HOME_AGENCY],
                                    env={"SOHOA_HOME": str(template)})
        assert result.exit_code == 0, result.output
        atexit.register(shutil.rmtree, template.parent, True)
        _TEMPLATE.append(template)
    shutil.copytree(_TEMPLATE[0], home)
    # the copy keeps the template's paths out of config.toml; check the home is self-contained
    assert str(_TEMPLATE[0]) not in (home / "config.toml").read_text("utf-8")


def make_pdf(title: str, body: str) -> bytes:
    """A one-page A4 PDF with Vietnamese text (DejaVu Sans embedded)."""
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(FONT)))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setFont("DejaVuSans", 13)
    c.drawString(72, 760, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    c.drawString(72, 740, "Độc lập - Tự do - Hạnh phúc")
    c.setFont("DejaVuSans", 16)
    c.drawString(72, 700, title)
    c.setFont("DejaVuSans", 11)
    c.drawString(72, 670, body)
    c.showPage()
    c.save()
    return buf.getvalue()


def sign_pdf(pipeline, pdf: bytes) -> bytes:  # noqa: ANN001 (ingest.pipeline.Pipeline)
    return pipeline.signer("agency").sign(
        pdf, field_name="Sig_agency", box=(330, 40, 560, 110),
        lines=["Ký bởi:", pipeline.settings.agency_name, "Thời gian ký: 2026-11-25T10:00:00+07:00"],
        reason="Chuyển đổi văn bản giấy sang thông điệp dữ liệu", location=pipeline.settings.agency_name)


def store_record(pipeline, owner_id: str, agency_code: str, doc_type: str, title: str,  # noqa: ANN001
                 uri: str | None = None):  # noqa: ANN201 (repository.StoredResult)
    from repository import StoreRequest

    repo = pipeline.repository
    uri = uri or repo.new_record_uri(agency_code, doc_type)
    pdf = sign_pdf(pipeline, make_pdf(title, f"Số hiệu bản ghi {uri[-8:]}"))
    record = {"uri": uri, "doc_type": doc_type, "title": title, "owner_ref": repo.owner_key(owner_id)}
    return repo.store(StoreRequest(
        uri=uri, owner_id=owner_id, owner_kind="citizen", doc_type=doc_type, pdf=pdf,
        record_json=json.dumps(record, ensure_ascii=False).encode("utf-8"), fields={"so_hieu": uri[-8:]},
        text=title, issuing_agency="Uỷ ban nhân dân phường Bến Nghé", converting_agency_code=agency_code,
        source_sha256s=[], pages=1, title=title))


@contextmanager
def records_home(home: Path, *, third_agency: bool = False) -> Iterator[tuple[object, dict[str, str]]]:
    """``SOHOA_HOME`` = ``home`` (initialized) while open, holding the records the API tests read:
    owner A's birth certificate converted here, in two versions (``a_home``), owner B's residence
    confirmation (``b_home``) and, with ``third_agency``, a decision about A converted by
    THIRD_AGENCY (``a_third``). Yields the home's settings and the records' URIs by name."""
    from ingest.pipeline import Pipeline
    from ingest.settings import load_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOHOA_HOME", str(home))
        init_home(home)
        settings = load_settings()
        pipeline = Pipeline(settings)
        try:
            a_home = store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH")
            store_record(pipeline, OWNER_A, HOME_AGENCY, "giay_khai_sinh", "GIẤY KHAI SINH (cải chính)",
                         uri=a_home.uri)  # version 2
            records = {"a_home": a_home.uri}
            if third_agency:
                records["a_third"] = store_record(pipeline, OWNER_A, THIRD_AGENCY, "quyet_dinh", "QUYẾT ĐỊNH").uri
            records["b_home"] = store_record(pipeline, OWNER_B, HOME_AGENCY, "xac_nhan_cu_tru",
                                             "XÁC NHẬN CƯ TRÚ").uri
        finally:
            pipeline.close()
        yield settings, records


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class World:
    """A running app with records and one credential per principal."""

    client: TestClient
    services: object
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # principal -> headers
    records: dict[str, str] = field(default_factory=dict)  # name -> uri
    owner_refs: dict[str, str] = field(default_factory=dict)

    def as_(self, principal: str, **extra: str) -> dict[str, str]:
        return {**self.keys[principal], **extra}


def add_grant(services, owner_ref: str, agency: str, purpose: str, *, basis: str = "consent",  # noqa: ANN001
              start: timedelta = timedelta(days=-1), end: timedelta = timedelta(days=30),
              doc_type: str | None = None) -> int:
    now = datetime.now(timezone.utc)
    g = services.access.create_grant(owner_key=owner_ref, agency_code=agency, purpose=purpose, basis=basis,
                                     valid_from=now + start, valid_until=now + end, created_by="test",
                                     doc_type=doc_type,
                                     legal_reference="Luật Căn cước 2023, Điều 9" if basis == "legal_basis" else None)
    return g.id

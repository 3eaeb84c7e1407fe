"""ocr.catalog: the one data file of document types."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ocr.catalog import CATALOG_PATH, KNOWN_FIELDS, CatalogError, load_catalog, parse_catalog
from samples.generator import DOC_TYPES

EXPECTED_CODES = {
    "giay_khai_sinh", "giay_chung_nhan_ket_hon", "trich_luc_khai_tu", "quyet_dinh", "cong_van",
    "giay_cn_dang_ky_doanh_nghiep", "xac_nhan_cu_tru", "phieu_ly_lich_tu_phap", "giay_phep_xay_dung",
    "giay_cn_quyen_su_dung_dat", "don_de_nghi", "xac_nhan_tinh_trang_hon_nhan",
}


def test_catalog_has_exactly_the_agreed_codes() -> None:
    catalog = load_catalog()
    assert set(catalog.codes) == EXPECTED_CODES | {"unknown"}
    assert set(catalog.known_codes) == EXPECTED_CODES
    assert set(DOC_TYPES) == EXPECTED_CODES  # the generator covers every type


def test_load_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_doc_type_fields() -> None:
    catalog = load_catalog()
    birth = catalog.get("giay_khai_sinh")
    assert birth.name_vi == "Giấy khai sinh" and birth.name_en == "Birth certificate"
    assert "GIẤY KHAI SINH" in birth.title_patterns
    assert birth.is_result is True and birth.retention_years is None and birth.owner_kind == "citizen"
    assert {"ho_ten", "ngay_sinh", "so_dinh_danh"} <= set(birth.fields)
    business = catalog.get("giay_cn_dang_ky_doanh_nghiep")
    assert business.owner_kind == "organization" and "ma_so_doanh_nghiep" in business.fields
    application = catalog.get("don_de_nghi")
    assert application.is_result is False  # a dossier component, not a procedure result
    for doc_type in catalog.types:
        assert set(doc_type.fields) <= KNOWN_FIELDS
        assert doc_type.retention_years is None or doc_type.retention_years > 0
        if doc_type.code not in ("unknown", "cong_van"):
            assert doc_type.title_patterns, doc_type.code


def test_get_unknown_code_raises_with_the_known_codes() -> None:
    with pytest.raises(CatalogError, match="giay_khai_sinh"):
        load_catalog().get("giay_phep_lai_xe")
    assert "quyet_dinh" in load_catalog()
    assert "giay_phep_lai_xe" not in load_catalog()


def _valid_data() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["types"][0].pop("owner_kind"), "missing owner_kind"),
    (lambda d: d["types"][0].update(owner_kind="robot"), "owner_kind"),
    (lambda d: d["types"][0].update(retention_years=-5), "retention_years"),
    (lambda d: d["types"][0].update(fields=["ho_ten", "blood_type"]), "blood_type"),
    (lambda d: d["types"].append(dict(d["types"][0])), "duplicate"),
    (lambda d: d.update(types=[t for t in d["types"] if t["code"] != "unknown"]), "unknown"),
    (lambda d: d.pop("types"), "types"),
])
def test_malformed_catalogs_are_rejected(mutate, message: str) -> None:  # noqa: ANN001
    data = _valid_data()
    mutate(data)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("types: [\n  - code: x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(broken)

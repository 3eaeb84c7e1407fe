"""Bulk manifest: parsing, row matching, and errors that name the line and the column."""
from __future__ import annotations

import pytest

from ingest.manifest import ManifestError, parse_manifest

OWNER = "079203012345"  # structurally valid synthetic personal ID
ORG = "0312345678"


def issues_of(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text.encode("utf-8"))
    return [(i.line, i.column, i.message) for i in info.value.issues]


def test_valid_manifest_and_most_specific_row_wins():
    m = parse_manifest((
        "path,owner_id,doc_type,dossier_code,box,file_no,group,split\n"
        f"hop-01,{OWNER},,,01,,,\n"
        f"hop-01/ho-so-07,{ORG},quyet_dinh,000.00.12.H29-241125-0001,01,07,folder,none\n"
        f"hop-02/scan.tif,{OWNER},,,02,,,blank\n").encode())
    assert [r.line for r in m.rows] == [2, 3, 4]
    assert m.row_for("hop-01/a.jpg").line == 2
    assert m.row_for("hop-01/ho-so-07/p1.png").line == 3
    assert m.row_for("hop-01/ho-so-070/p1.png").line == 2  # a prefix of a name is not a folder
    assert m.row_for("hop-02/scan.tif").split == "blank"
    assert m.row_for("hop-03/x.jpg") is None
    row = m.row_for("hop-01/ho-so-07/p1.png")
    assert (row.group, row.split, row.doc_type) == ("folder", "none", "quyet_dinh")
    assert row.archive_ref == {"box": "01", "file_no": "07"}
    assert len(m.sha256) == 64


def test_excel_style_semicolons_bom_and_blank_lines():
    text = "\ufeffPath;Owner_ID;Box\n\nhop-01;" + OWNER + ";1\n"
    m = parse_manifest(text.encode("utf-8"))
    assert m.rows[0].path == "hop-01" and m.rows[0].owner_id == OWNER and m.rows[0].line == 3


def test_every_problem_is_named_by_line_and_column():
    found = issues_of(
        "path,owner_id,doc_type,group,split\n"
        f"a,{OWNER},,,\n"
        f"b,{ORG},,,\n"                  # an enterprise code: fine
        "c,12345,,,\n"                    # not an ID at all
        f"d,{OWNER},giay_khong_co,,\n"   # unknown type
        f"e,{OWNER},,pile,\n"            # bad group
        f"f,{OWNER},,,sometimes\n"       # bad split
        f"a,{OWNER},,,\n"                # duplicate path
        f"../etc,{OWNER},,,\n")          # escapes SOURCE
    by_line = {(line, column) for line, column, _ in found}
    assert (4, "owner_id") in by_line
    assert (5, "doc_type") in by_line
    assert (6, "group") in by_line
    assert (7, "split") in by_line
    assert (8, "path") in by_line and any("line 2" in m for ln, _, m in found if ln == 8)
    assert (9, "path") in by_line
    assert not any(line in (2, 3) for line, _, _ in found)
    # the error text never repeats a personal number
    assert not any("12345" in m for _, _, m in found)


def test_invalid_personal_id_is_refused_without_echoing_it():
    bad = "999203012345"  # unknown province code
    found = issues_of(f"path,owner_id\nx.jpg,{bad}\n")
    assert found[0][:2] == (2, "owner_id")
    assert bad not in found[0][2]


def test_header_problems():
    found = issues_of("file,owner\nx.jpg,1\n")
    columns = {c for _, c, _ in found}
    assert {"file", "owner", "path"} <= columns and all(line == 1 for line, _, _ in found)


def test_not_utf8_and_empty():
    with pytest.raises(ManifestError) as info:
        parse_manifest("path,owner_id\nĐà,1\n".encode("cp1258"))
    assert "UTF-8" in str(info.value) and info.value.issues[0].line == 2
    assert issues_of("")[0][2] == "the manifest is empty"
    assert "no rows" in issues_of("path,owner_id\n")[0][2]


def test_too_many_cells():
    found = issues_of(f"path,owner_id\nx.jpg,{OWNER},extra\n")
    assert found[0][0] == 2 and "cells" in found[0][2]

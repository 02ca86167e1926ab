"""Downloads: text that begins like a formula never runs, and reads in the XLSX as it was typed."""
from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from infra.exports import csv_bytes, xlsx_bytes

TYPED = ["=HYPERLINK(\"http://x\",\"点我\")", "+86 团结超市", "-便民店-", "@SUM(A1)", "-12.50", "张三"]


def test_xlsx_keeps_formula_like_text_as_plain_text_without_a_stray_apostrophe():
    sheet = load_workbook(io.BytesIO(xlsx_bytes(["a"] * len(TYPED), [TYPED], "t"))).active
    cells = list(sheet.iter_rows(min_row=2, values_only=False))[0]
    assert [c.value for c in cells] == TYPED
    assert all(c.data_type == "s" for c in cells)
    assert all(c.quotePrefix for c in cells[:4])  # Excel keeps them text even when the cell is edited


def test_csv_neutralises_every_formula_start():
    rows = list(csv.reader(io.StringIO(csv_bytes(["a"] * len(TYPED), [TYPED]).decode("utf-8-sig"))))
    assert rows[1][:4] == ["'" + t for t in TYPED[:4]] and rows[1][4:] == TYPED[4:]

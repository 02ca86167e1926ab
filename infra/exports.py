"""CSV and XLSX downloads. Cells that begin like a formula are neutralised: a name typed by
someone must never run as a formula in the spreadsheet of whoever opens the export."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[safe_cell(c) for c in row] for row in rows])
    return buffer.getvalue().encode("utf-8-sig")  # with a BOM so that Excel reads the Chinese right


def xlsx_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str,
               widths: Sequence[int] = (), number_formats: dict[int, str] | None = None) -> bytes:
    """`number_formats`: a format per column (0-based) for the numbers in it ("0.00" for yuan)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
        for index, cell in enumerate(sheet[sheet.max_row]):
            if number_formats and index in number_formats and cell.data_type == "n":
                cell.number_format = number_formats[index]
            if safe_cell(cell.value) is not cell.value:
                # Kept as typed (an apostrophe would show in the cell), stored as text, not a formula,
                # and marked quote-prefixed so that Excel keeps it text when the cell is edited.
                cell.data_type, cell.quotePrefix = "s", True
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()

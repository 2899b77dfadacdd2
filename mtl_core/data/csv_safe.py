"""CSV for spreadsheets: cells a spreadsheet would run as a formula are defused (OWASP "CSV injection").

A text cell starting with = + - @ (or a tab, CR or LF, which some spreadsheets skip before parsing) gets a
leading apostrophe, the OWASP advice: Excel, LibreOffice and Google Sheets then show it as text.
Numbers stay numbers: a numeric cell (int, float, bool, numpy number) is written as is, and so is a string
that is exactly a plain decimal number such as "-3.5" or "+2e-3" - a spreadsheet reads that as a number,
never as a formula, so "-5" keeps meaning minus five. Headers are cells too.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_risky(value: str) -> bool:
    """Whether a spreadsheet could read this text as a formula."""
    return value.startswith(FORMULA_START) and _PLAIN_NUMBER.fullmatch(value) is None


def safe_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run; anything else unchanged."""
    if isinstance(value, numbers.Number) or not isinstance(value, str):
        return value
    return "'" + value if is_risky(value) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell and header defused; numeric columns keep their dtype."""
    out = frame.copy()
    out.columns = [safe_cell(str(c)) for c in frame.columns]
    for i in range(out.shape[1]):  # by position: headers may repeat
        if not pd.api.types.is_numeric_dtype(out.iloc[:, i]):
            out.isetitem(i, out.iloc[:, i].map(safe_cell))
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of `frame` (no index) with every text cell defused; the one way the project writes CSV.

    CRLF rows (RFC 4180) make the writer quote any cell holding a bare CR: unquoted, a spreadsheet splits
    the row there and whatever follows the CR would start a fresh, undefused cell.
    """
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")

"""What a spreadsheet would do with a CSV: the cells it would run as formulas."""

from __future__ import annotations

import csv
import io

from mtl_core.data.csv_safe import is_risky


def live_cells(data: bytes) -> list[str]:
    """Every cell (headers included) of a CSV that a spreadsheet would evaluate as a formula."""
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    return [cell for row in rows for cell in row if is_risky(cell)]

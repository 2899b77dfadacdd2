"""CSV formula injection: every CSV the project writes defuses cells a spreadsheet would run."""

from __future__ import annotations

import ast
import io
import re

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtl_core.data.csv_safe import FORMULA_START, is_risky, safe_cell, to_csv_bytes
from tests.helpers import ROOT
from tests.helpers.source_tree import python_files
from tests.helpers.spreadsheet import live_cells

CSV_HOME = "mtl_core/data/csv_safe.py"  # the one module allowed to write CSV
SHIPPED = ["mtl_core", "app", "app_pages", "streamlit_app.py"]
SAFE_WRAPPERS = {"batch.to_csv"}  # app/predict/batch.py's to_csv returns to_csv_bytes(...)


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)",
                                  "\t=1", "\r=1", "\n=1", "-", "=", "-1.5e3x"])
def test_formula_cells_get_an_apostrophe(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("value", [-5, -1.5, 0, 2.0, True, "-5", "-1.5", "+2e-3", ".5", "plain", "a=b", "", None])
def test_numbers_and_plain_text_stay_as_they_are(value):
    assert safe_cell(value) == value


def test_frame_headers_and_every_text_cell_are_defused_numbers_stay_numbers():
    frame = pd.DataFrame({"row": [1, 2], "=evil": ["=1+1", "fine"], "score": [-0.5, 1.0],
                          "ner": ["@SUM(1) [MISC]", ""], "mixed": [3, "-cmd"]})
    data = to_csv_bytes(frame)
    assert live_cells(data) == []
    back = pd.read_csv(io.BytesIO(data))
    assert list(back.columns) == ["row", "'=evil", "score", "ner", "mixed"]
    assert list(back["score"]) == [-0.5, 1.0] and list(back["row"]) == [1, 2]
    assert list(back["'=evil"]) == ["'=1+1", "fine"]
    assert list(frame["=evil"]) == ["=1+1", "fine"]  # the caller's frame is not changed


@given(st.lists(st.text(alphabet=st.sampled_from(list("=+-@\t\r\n\"',;a1. ")), max_size=12), min_size=1,
                max_size=6))
def test_no_text_ever_comes_out_live(texts):
    assert live_cells(to_csv_bytes(pd.DataFrame({"text": texts}))) == []
    assert not any(safe_cell(t).startswith(FORMULA_START) and is_risky(safe_cell(t)) for t in texts)


def _is_safe_frame_call(node: ast.AST) -> bool:
    """`safe_frame(table).to_csv(...)`: a frame defused right where it is written."""
    return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "safe_frame"


def _csv_writers(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            receiver = base.id if isinstance(base, ast.Name) else ""
            if f"{receiver}.{node.func.attr}" in SAFE_WRAPPERS or _is_safe_frame_call(base):
                continue
            if node.func.attr == "to_csv" or (receiver == "csv" and node.func.attr in ("writer", "DictWriter")):
                found.append(f"{name}:{node.lineno} {node.func.attr}")
    return found


def test_csv_is_only_written_through_the_safe_helper():
    writers = [w for p in python_files(SHIPPED)
               for w in _csv_writers(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert [w for w in writers if not w.startswith(CSV_HOME)] == []


def test_the_writer_scan_sees_raw_writers():
    planted = ("import csv\ntable.to_csv(buf)\ncsv.writer(buf)\ncsv.DictWriter(buf, f)\n"
               "safe_frame(table).to_csv(buf)\nbatch.to_csv(table)\n")
    assert _csv_writers(planted, "x.py") == ["x.py:2 to_csv", "x.py:3 writer", "x.py:4 DictWriter"]


def test_streamlit_table_export_is_off():
    """st.dataframe's built-in CSV download/copy writes cells verbatim in the browser: the app turns it off."""
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")  # no tomllib on Python 3.10
    client = re.search(r"^\[client\]$(.*?)(?=^\[|\Z)", config, re.M | re.S)
    assert client and re.search(r"^disableDataExport\s*=\s*true\s*$", client.group(1), re.M)

"""Big uploads read row by row (`mtl_core.data.upload_stream`, the background batch job): the same rows and
column names as the page's reader, bad lines counted and named, never a crash."""

from __future__ import annotations

import pytest

from app.predict import batch
from mtl_core.data.upload_stream import StreamProblems, count_lines, iter_cells


def _cells(tmp_path, name: str, data: bytes, column: str = "text"):
    path = tmp_path / name
    path.write_bytes(data)
    problems = StreamProblems()
    return list(iter_cells(path, name, column, problems)), problems


@pytest.mark.parametrize("name, data, column", [
    ("x.csv", b'id,text\n1,ok\n2,"quoted, comma"\n\n3\n4,a,b\n5,last\n', "text"),
    ("x.tsv", "text\t\ttext\nn\u00e4\tb\tc\n".encode("utf-16"), "text.1"),
    ("x.jsonl", b'{"text": "a"}\n"bare"\n[1]\n{"n": 2}\n', "text"),
    ("x.json", b' [{"text": "a"}, "b", 3]', "text"),
])
def test_same_rows_as_the_page_reader(tmp_path, name, data, column):
    cells, _ = _cells(tmp_path, name, data, column)
    frame = batch.read_upload(name, data).frame
    page = [v if isinstance(v, str) else None for v in frame[column].tolist()]
    assert [(row, value if isinstance(value, str) else None) for row, value in cells] == list(enumerate(page, 1))


def test_bad_lines_are_counted_and_named(tmp_path):
    data = b"text\nok\n" + b"bad \xe9 latin\n" + b"a,b,c\nfine\n"
    cells, problems = _cells(tmp_path, "x.csv", data)
    assert [v for _, v in cells] == ["ok", "bad \u00e9 latin", "fine"]
    assert problems.legacy == [3] and problems.too_long == [4]
    text = " ".join(problems.messages())
    assert "Windows-1252" in text and "more fields than the header" in text


def test_deep_json_line_is_skipped(tmp_path):
    cells, problems = _cells(tmp_path, "x.jsonl", b'{"text": "a"}\n' + b'{"a": ' * 100_000 + b'\n{"text": "b"}\n')
    assert [v for _, v in cells] == ["a", "b"] and problems.too_deep == [2]
    assert "nested too deeply" in problems.messages()[0]


def test_missing_column_and_deep_array_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="no column 'body'"):
        _cells(tmp_path, "x.csv", b"text\na\n", column="body")
    with pytest.raises(ValueError, match="nested too deeply"):
        _cells(tmp_path, "x.json", b"[" * 100_000)


def test_count_lines(tmp_path):
    path = tmp_path / "x.csv"
    for data, lines in [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"a\n" * 3_000_000, 3_000_000)]:
        path.write_bytes(data)
        assert count_lines(path) == lines

"""Predict-page batch uploads (`app/batch.read_upload`): encodings, ragged rows, empty, huge, compressed and
binary files, JSON nested too deeply (in every user-file parser), the page's row cap. Each gives a specific
message; valid rows are kept."""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
import zipfile

import pytest

from app.predict import batch
from mtl_core.data.errors import DataSourceError
from mtl_core.data.readers import read_jsonl
from mtl_core.data.uploads import MAX_JSON_DEPTH, MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, JsonTooDeep, loads_json
from mtl_core.store.import_file import ImportFileError, read_records
from tests.helpers import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def texts(parsed) -> list[str]:
    return list(parsed.frame["text"]) if parsed.frame is not None else []


# ------------------------------------------------------------------------------ encodings


def test_latin1_file_keeps_every_row_and_says_how_it_was_read():
    parsed = batch.read_upload("x.csv", "text,label\ncafé crème,pos\nplain,neg\nnaïve,pos\n".encode("latin-1"))
    assert texts(parsed) == ["café crème", "plain", "naïve"]
    [problem] = parsed.problems
    assert "not UTF-8" in problem and "line 2" in problem and "Windows-1252" in problem


def test_broken_lines_in_a_utf8_file_are_skipped_and_named():
    data = "text\nnaïve ok\n".encode() + b"bad \xff\xfe byte\n" + b"fine\nalso fine\n" + b"\xc3\n"
    parsed = batch.read_upload("x.csv", data)
    assert texts(parsed) == ["naïve ok", "fine", "also fine"]
    [problem] = parsed.problems
    assert "2 line(s)" in problem and "line(s) 3, 6" in problem and "UTF-8" in problem


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_byte_order_marks(encoding):
    data = "text\nhéllo\nwörld\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    parsed = batch.read_upload("x.csv", data)
    assert texts(parsed) == ["héllo", "wörld"] and parsed.problems == []


def test_broken_utf16_is_reported_not_a_crash():
    parsed = batch.read_upload("x.csv", "text\nhello\n".encode("utf-16") + b"\x00")  # odd byte count
    assert texts(parsed)[0] == "hello"  # the stray byte becomes one replacement character
    assert any("UTF-16" in p and "broken" in p for p in parsed.problems)


# ------------------------------------------------------------------------------ shape of the table


def test_ragged_rows_are_skipped_with_their_lines_and_short_rows_padded():
    data = b'text,label\nok,1\nbad,1,extra\n"quoted, comma",0\nshort\n\nworse,1,2,3\nlast,1\n'
    parsed = batch.read_upload("x.csv", data)
    assert texts(parsed) == ["ok", "quoted, comma", "short", "last"]
    assert list(parsed.frame["label"]) == ["1", "0", "", "1"]
    [problem] = parsed.problems
    assert "2 malformed row(s)" in problem and "line(s) 3, 7" in problem and "double quotes" in problem


def test_blank_and_repeated_header_names_get_usable_columns():
    parsed = batch.read_upload("x.tsv", b"text\t\ttext\na\tb\tc\n")
    assert list(parsed.frame.columns) == ["text", "column 2", "text.1"] and texts(parsed) == ["a"]


@pytest.mark.parametrize("name, data, message", [
    ("x.csv", b"", "The file is empty."),
    ("x.csv", b"  \n\r\n\t", "The file is empty."),
    ("x.csv", b"text,label\n", "no data rows"),
    ("x.csv", b"\n\ntext,label\n\n\n", "no data rows"),
    ("x.jsonl", b"\n\n  \n[]", "No valid JSON records"),
    ("x.json", b"[]", "No valid JSON records"),
    ("x.jsonl", b"[1, 2, 3]\n", "malformed"),
])
def test_empty_and_header_only_files(name, data, message):
    parsed = batch.read_upload(name, data)
    assert parsed.frame is None and any(message in p for p in parsed.problems), parsed.problems


def test_many_identical_rows_are_read():  # highly compressible, but nothing is decompressed: just rows
    parsed = batch.read_upload("x.csv", b"text\n" + b"the same short review\n" * 200_000)
    assert len(parsed.frame) == 200_000 and parsed.problems == []


# ------------------------------------------------------------------------------ size cap


def test_upload_cap_matches_the_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB == 200
    assert MAX_UPLOAD_BYTES == 200 * 1024 * 1024


def test_over_the_cap_is_refused_before_parsing():
    parsed = batch.read_upload("x.csv", b"text\n" + b"a" * 2_000, max_bytes=1_000)
    assert parsed.frame is None and parsed.problems == [
        "The file is 0.0 MB; uploads are limited to 0.0 MB. Split it into smaller files."]
    assert batch.read_upload("x.csv", b"text\nok\n", max_bytes=1_000).frame is not None


def test_a_real_201_mb_file_is_refused_quickly():
    data = b"text\n" + b"a fairly ordinary line of text\n" * (201 * 1024 * 1024 // 31)
    assert len(data) > MAX_UPLOAD_BYTES
    started = time.perf_counter()
    parsed = batch.read_upload("big.csv", data)
    assert time.perf_counter() - started < 5  # refused from its size: never handed to a parser
    assert parsed.frame is None and "201.0 MB" in parsed.problems[0] and "200.0 MB" in parsed.problems[0]


# ------------------------------------------------------------------------------ not text at all


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", b"text\n" + b"a" * 50_000_000)
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (PNG, "PNG image"),
    (b"text\nhello\x00world\n", "NUL bytes"),
    (bytes(range(256)) * 64, "NUL bytes"),
    (gzip.compress(b"text\n" + b"a" * 50_000_000), "gzip-compressed"),
    (_zip_bomb(), "zip archive"),
    (b"%PDF-1.7\n...", "PDF"),
    (b"SQLite format 3\x00" + bytes(100), "SQLite database"),
], ids=["png", "nul", "random-binary", "gzip-bomb", "zip-bomb", "pdf", "sqlite"])
@pytest.mark.parametrize("name", ["upload.csv", "upload.jsonl"])
def test_binary_and_compressed_files_are_refused_unopened(name, data, message):
    started = time.perf_counter()
    parsed = batch.read_upload(name, data)
    assert time.perf_counter() - started < 5  # a 50 MB bomb is never inflated
    assert parsed.frame is None and len(parsed.problems) == 1 and message in parsed.problems[0]


# ------------------------------------------------------------------------------ deeply nested JSON

DEEP = b"[" * 100_000  # Python's json parser recurses per level: unchecked, a RecursionError


def test_a_deeply_nested_jsonl_line_is_skipped_and_named():
    parsed = batch.read_upload("x.jsonl", b'{"text": "ok"}\n' + DEEP + b'\n{"text": "[[[[ in a text is fine"}\n')
    assert texts(parsed) == ["ok", "[[[[ in a text is fine"]
    [problem] = parsed.problems
    assert "nested too deeply" in problem and "line(s) 2" in problem


@pytest.mark.parametrize("name", ["x.json", "x.jsonl"])
def test_a_deeply_nested_json_array_is_refused_with_a_message(name):
    parsed = batch.read_upload(name, DEEP)
    assert parsed.frame is None and "nested too deeply" in parsed.problems[0]


@pytest.mark.parametrize("depth, ok", [(MAX_JSON_DEPTH, True), (MAX_JSON_DEPTH + 1, False)])
def test_depth_cap_is_exact_and_ignores_brackets_in_strings(depth, ok):
    text = '{"t": "[[[{{{\\"[["' + ', "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    if ok:
        assert loads_json(text)["t"] == '[[[{{{"[['
    else:
        with pytest.raises(JsonTooDeep) as err:
            loads_json(text)
        assert isinstance(err.value, json.JSONDecodeError) and "nested too deeply" in str(err.value)


@pytest.mark.parametrize("text", ["]" * 100_000 + "[" * 100_000, "[" * 100_000 + "]" * 100_000, "{\"a\":" * 50_000])
def test_unbalanced_or_deep_text_never_recurses(text):
    with pytest.raises(json.JSONDecodeError):
        loads_json(text)


def test_annotation_import_names_the_deep_line():
    good = b'{"text": "t", "task": "sentiment", "kind": "label", "annotator": "a", "created_at": "2024-01-01T00:00"}'
    with pytest.raises(ImportFileError, match=r"line 2: nested too deeply"):
        read_records(good + b"\n" + DEEP + b"\n")


def test_task_data_reader_names_the_deep_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "a"}\n' + b'{"a": ' * 100_000 + b"\n")
    with pytest.raises(DataSourceError, match=r"line 2: nested too deeply"):
        read_jsonl(path)


# ------------------------------------------------------------------------------ the page's row cap


@pytest.mark.parametrize("name, data", [
    ("x.csv", b"text\n" + b"".join(b"row %d\n" % i for i in range(5))),
    ("x.jsonl", b"".join(b'{"text": "row %d"}\n' % i for i in range(5))),
    ("x.json", b"[" + b",".join(b'"row %d"' % i for i in range(5)) + b"]"),
])
def test_max_rows_reads_that_many_and_says_there_are_more(name, data):
    capped = batch.read_upload(name, data, max_rows=3)
    assert texts(capped) == ["row 0", "row 1", "row 2"] and capped.more_rows
    exact = batch.read_upload(name, data, max_rows=5)
    assert len(exact.frame) == 5 and not exact.more_rows

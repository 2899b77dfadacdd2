"""An uploaded CSV/TSV/JSONL file read row by row, in constant memory (the background batch job).

The same formats and leniency as the Predict page's reader (`app/predict/batch.read_upload`): a bad line is
counted, named and skipped, never a reason to lose the good ones. Decoding is decided per line (UTF-8, else
Windows-1252) because the whole file is never held; a UTF-16 file (with a BOM) is decoded as a stream.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mtl_core.data.uploads import UTF16_BOMS, JsonTooDeep, line_list, loads_json, too_deep_message

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
BLOCK = 1 << 20


@dataclass
class StreamProblems:
    """Line numbers of what was skipped or read approximately, for the job's result."""

    legacy: list[int] = field(default_factory=list)  # not UTF-8: read as Windows-1252
    malformed: list[int] = field(default_factory=list)  # not JSON / not an object or string / CSV error
    too_long: list[int] = field(default_factory=list)  # more CSV fields than the header
    too_deep: list[int] = field(default_factory=list)  # JSON nested past MAX_JSON_DEPTH

    def messages(self) -> list[str]:
        out = []
        if self.legacy:
            out.append(f"{len(self.legacy)} line(s) were not UTF-8 and were read as Windows-1252 "
                       f"(line(s) {line_list(self.legacy)}).")
        if self.malformed:
            out.append(f"{len(self.malformed)} malformed line(s) were skipped (line(s) {line_list(self.malformed)}).")
        if self.too_long:
            out.append(f"{len(self.too_long)} row(s) with more fields than the header were skipped "
                       f"(line(s) {line_list(self.too_long)}). Put text that contains the delimiter in double quotes.")
        if self.too_deep:
            out.append(f"{len(self.too_deep)} line(s) were skipped, {too_deep_message()} "
                       f"(line(s) {line_list(self.too_deep)}).")
        return out


def column_names(header: list[str]) -> list[str]:
    """Header cells as unique, non-empty column names ('column 3' for a blank one, 'x.1' for a repeat)."""
    names: list[str] = []
    for number, cell in enumerate(header, start=1):
        base = cell.strip() or f"column {number}"
        name, repeat = base, 0
        while name in names:
            repeat += 1
            name = f"{base}.{repeat}"
        names.append(name)
    return names


def count_lines(path: Path) -> int:
    """Newlines in the file (+1 for an unterminated last line): the progress bar's estimate of its rows."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def iter_cells(path: Path, name: str, column: str, problems: StreamProblems) -> Iterator[tuple[int, Any]]:
    """(data row number from 1, the row's value in `column`) for every data row; skipped lines go to `problems`.

    A value may be missing (None) or not a string: the caller decides what it predicts.
    ValueError when the CSV header has no such column.
    """
    for number, (value,) in iter_row_cells(path, name, [column], problems):
        yield number, value


def iter_row_cells(path: Path, name: str, columns: list[str], problems: StreamProblems
                   ) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """`iter_cells` for several columns at once (e.g. the text and an id): (row number, one value per column)."""
    with path.open("rb") as fh:
        lines = _decoded_lines(fh, problems)
        if name.lower().endswith(JSON_SUFFIXES):
            yield from _json_cells(lines, columns, problems)
        else:
            yield from _csv_cells(lines, "\t" if name.lower().endswith(".tsv") else ",", columns, problems)


def _decoded_lines(fh: BinaryIO, problems: StreamProblems) -> Iterator[str]:
    if fh.read(2) in UTF16_BOMS:
        fh.seek(0)
        yield from io.TextIOWrapper(fh, encoding="utf-16", errors="replace", newline="")
        return
    fh.seek(0)
    for number, raw in enumerate(fh, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            problems.legacy.append(number)
            yield _legacy(raw)


def _legacy(raw: bytes) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # a byte cp1252 leaves undefined: latin-1 decodes anything
        return raw.decode("latin-1")


def _csv_cells(lines: Iterator[str], sep: str, columns: list[str], problems: StreamProblems):
    reader = csv.reader(lines, delimiter=sep)
    header = None
    while header is None:
        row = next(reader, None)
        if row is None:
            return
        header = row if any(cell.strip() for cell in row) else None
    names = column_names(header)
    for column in columns:
        if column not in names:
            raise ValueError(f"the file has no column {column!r} (columns: {', '.join(names)})")
    at, number = [names.index(column) for column in columns], 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:  # e.g. a field over the csv module's size limit: skip that line
            problems.malformed.append(reader.line_num)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            problems.too_long.append(reader.line_num)
            continue
        number += 1
        yield number, tuple(row[i] if i < len(row) else "" for i in at)


def _json_cells(lines: Iterator[str], columns: list[str], problems: StreamProblems):
    first = next(((n, line) for n, line in enumerate(lines, start=1) if line.strip()), None)
    if first is None:
        return
    if first[1].lstrip().startswith("["):  # a whole JSON array, not JSON lines: it is parsed at once
        try:
            items = loads_json(first[1] + "".join(lines))
        except ValueError as exc:  # JsonTooDeep included
            raise ValueError(f"could not parse the JSON array: {exc}") from None
        yield from _records(((n, item) for n, item in enumerate(items, start=1)), columns, problems)
        return
    yield from _records(_parsed_lines(_chain(first, lines), problems), columns, problems)


def _chain(first: tuple[int, str], lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    yield first
    yield from enumerate(lines, start=first[0] + 1)


def _parsed_lines(numbered: Iterator[tuple[int, str]], problems: StreamProblems):
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            yield number, loads_json(line)
        except JsonTooDeep:
            problems.too_deep.append(number)
        except ValueError:
            problems.malformed.append(number)


def _records(items, columns: list[str], problems: StreamProblems):
    row = 0
    for number, item in items:
        if isinstance(item, str):  # a bare string line is a text
            item = {"text": item}
        if not isinstance(item, dict):
            problems.malformed.append(number)
            continue
        row += 1
        yield row, tuple(item.get(column) for column in columns)

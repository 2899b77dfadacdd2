"""Checks shared by every uploaded file (Predict batch, Review import): size cap, binary files, decoding,
and the one depth-safe JSON parser every user file goes through (`loads_json`).

Nothing here decompresses anything: a zip/gzip file (even one named .csv) is refused from its first bytes,
so a "zip bomb" never gets expanded.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64  # nesting of [ and { in one user record; real records need 2-3 levels
# JSON strings (escapes included) are skipped, so "[[[" inside a text never counts as nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRING_OR_BRACKET = re.compile(_STRING.pattern + r'|[\[\]{}]')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
MAX_UPLOAD_MB = 200  # the same cap as `maxUploadSize` in .streamlit/config.toml
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SNIFF_BYTES = 64 * 1024

# (leading bytes, what the file is): files people upload by mistake instead of CSV/JSONL text
MAGIC_NUMBERS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (or an Excel .xlsx workbook)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls/.doc)"),
    (b"SQLite format 3\x00", "a SQLite database"),
)


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:,.1f} MB"


def line_list(numbers: list[int], shown: int = 5) -> str:
    """'3, 7, 9' or '3, 7, 9, 12, 15 and 4 more' for messages."""
    head = ", ".join(str(n) for n in numbers[:shown])
    return head + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def upload_problem(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str | None:
    """Why `data` cannot be read as a text table at all (too big, empty, binary), or None."""
    if len(data) > max_bytes:
        return (f"The file is {size_text(len(data))}; uploads are limited to {size_text(max_bytes)}. "
                "Split it into smaller files.")
    if not data.strip():
        return "The file is empty."
    for magic, kind in MAGIC_NUMBERS:
        if data.startswith(magic):
            return (f"This is {kind}, not a CSV/TSV/JSONL text file (compressed files are not unpacked). "
                    "Upload the plain text file instead.")
    if not data.startswith(UTF16_BOMS) and b"\x00" in data[:SNIFF_BYTES]:
        return ("The file contains NUL bytes: it looks like a binary file, not CSV/TSV/JSONL text "
                "(or UTF-16 text without a byte-order mark: save it as UTF-8).")
    return None


def decode_upload(data: bytes) -> tuple[str, list[str]]:
    """Text of an upload, and what went wrong while decoding it.

    UTF-8 (with or without BOM) and UTF-16 with a BOM decode as such. A file with no valid non-ASCII
    UTF-8 at all is taken to be in a legacy encoding and read as Windows-1252 (every row kept, a warning
    given); a UTF-8 file with a few broken lines loses just those lines, which are named.
    """
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16"), []
        except UnicodeDecodeError as exc:
            return (data.decode("utf-16", errors="replace"),
                    [f"The file starts like UTF-16 but is broken at byte {exc.start:,} ({exc.reason}); "
                     "unreadable characters were replaced by \ufffd."])
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    good, bad, utf8_seen = [], [], False
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            bad.append(number)
            continue
        good.append(text)
        utf8_seen = utf8_seen or not text.isascii()
    if not utf8_seen:
        return _legacy_decode(data), [
            f"The file is not UTF-8 (first non-UTF-8 byte on line {bad[0]}); it was read as Windows-1252 "
            "(Latin-1). If accented letters look wrong, save the file as UTF-8 and upload it again."]
    return "\n".join(good), [
        f"The file is not valid UTF-8: {len(bad)} line(s) could not be decoded and were skipped "
        f"(line(s) {line_list(bad)}). Save the file as UTF-8 to keep them."]


def _legacy_decode(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # a byte cp1252 leaves undefined (0x81, 0x8d, ...): latin-1 decodes anything
        return data.decode("latin-1")


class JsonTooDeep(json.JSONDecodeError):
    """A JSON value nested deeper than the cap: refused unparsed. A JSONDecodeError, so every caller that
    handles bad JSON handles it too."""


def too_deep_message(max_depth: int = MAX_JSON_DEPTH) -> str:
    return f"nested too deeply (more than {max_depth} levels of [ or {{)"


def _too_deep_at(text: str, max_depth: int) -> int | None:
    """Index of the first bracket that opens level max_depth + 1 (outside strings), or None.

    The running sum of +1/-1 per bracket is the parser's depth up to its first unmatched close, where the
    parser stops anyway; the sum runs at C speed, the position is looked for only in a file that fails.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return None  # cannot nest that deep: the usual record costs two C-speed counts
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) <= max_depth:
        return None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        depth += _DEPTH_STEP.get(match.group(), 0)
        if depth > max_depth:
            return match.start()
    return 0  # an unterminated string hid the brackets from this scan: refused all the same


def loads_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads for user files: nesting past `max_depth` raises JsonTooDeep instead of Python's parser
    recursing into a RecursionError (a line of 100k "[" would otherwise crash the page)."""
    at = _too_deep_at(text, max_depth)
    if at is None:
        try:
            return json.loads(text)
        except RecursionError:  # only reachable with a max_depth near the interpreter's recursion limit
            at = 0
    raise JsonTooDeep(too_deep_message(max_depth), text, at)

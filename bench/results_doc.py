"""docs/RESULTS.md, one section per bench: a rerun replaces its own section and leaves the others alone."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"


def replace_section(heading: str, text: str, after: str | None = None, path: Path = RESULTS) -> None:
    """Write `heading` + `text` over the section that starts with `heading` (up to the next "## "); a new
    section goes after the section `after` when there is one, else at the end. Atomic (temp file + rename)."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    body = f"{heading}\n\n{text.strip()}\n"
    if heading in old:
        start = old.index(heading)
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + body + ("\n" + old[end + 1:] if end >= 0 else "")
    elif after and after in old and (end := old.find("\n## ", old.index(after) + len(after))) >= 0:
        new = old[:end + 1] + body + "\n" + old[end + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)

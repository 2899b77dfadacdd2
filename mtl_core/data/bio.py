"""BIO tag normalisation for token tasks: every token task is stored as BIO2 with the task's own
spelling of the entity types, whatever scheme (IOB1, BIOES, IO) or casing the source used."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_BEGIN = {"B", "S", "U"}  # BIOES/BILOU single-token and begin tags open an entity
_INSIDE = {"I", "E", "L"}


def _split_tag(tag: str, types: dict[str, str]) -> tuple[str, str | None]:
    """'B-geo-loc' -> ('B', 'geo-loc'); 'O' -> ('O', None); a bare type (IO scheme) -> ('I', type)."""
    if tag.upper() == "O":
        return "O", None
    prefix, sep, rest = tag.partition("-")
    if sep and prefix.upper() in _BEGIN | _INSIDE and rest.casefold() in types:
        return ("B" if prefix.upper() in _BEGIN else "I"), types[rest.casefold()]
    if tag.casefold() in types:
        return "I", types[tag.casefold()]
    raise ValueError(
        f"tag {tag!r} is not 'O' or B-/I-<type> with a type in the task labels {sorted(types.values())}"
    )


def normalise_tags(tags: Sequence[str], entity_types: Iterable[str]) -> tuple[str, ...]:
    """Map tags to BIO2 over `entity_types`; raises ValueError naming the first unknown tag."""
    types = {t.casefold(): t for t in entity_types}
    out: list[str] = []
    prev_type: str | None = None
    for tag in tags:
        prefix, etype = _split_tag(tag.strip(), types)
        if prefix == "I" and etype != prev_type:
            prefix = "B"  # IOB1/IO: an I- that does not continue an entity starts one
        out.append("O" if etype is None else f"{prefix}-{etype}")
        prev_type = etype
    return tuple(out)


def entity_types_of(tags: Iterable[str]) -> list[str]:
    """Entity type of each entity (one per B- tag) in a BIO2 sequence."""
    return [t[2:] for t in tags if t.startswith("B-")]

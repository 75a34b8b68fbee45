"""``--qualities`` text -> a list of rate points, with one clear error per bad form.

Accepted forms, comma-separated and mixed freely: a number (``5``, ``0.5``), an
inclusive integer range ``LO..HI`` (``1..8``), a stepped range ``LO..HI..STEP``
(``10..90..20`` = 10, 30, 50, 70, 90), or a named quality (a word, for codecs whose
ladder has names). A repeated quality runs once; the caller is told which were repeated.
At most ``MAX_QUALITIES`` rate points in all: a range is measured before it is expanded,
so ``1..10**12`` is refused at once instead of filling memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from jcsr_bench.kit.errors import JcsrError

FORMS = ("'1,4,8' (a list), '1..8' (an inclusive integer range), '10..90..20' (a range "
         "with a step), or leave --qualities out to use each codec's own ladder")


MAX_QUALITIES = 1000


class QualitiesError(JcsrError):
    """A ``--qualities`` value that cannot be read."""


def _bad(value: Any, why: str, label: str = "--qualities") -> QualitiesError:
    return QualitiesError(f"{label} {value!r}: {why}; accepted forms: {FORMS}")


def _integer(text: str, value: str, part: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad(value, f"{part!r} is not a range of whole numbers") from None


def _range(part: str, value: str, room: int) -> range:
    bounds = part.split("..")
    if len(bounds) > 3:
        raise _bad(value, f"{part!r} has more than three '..'-separated numbers")
    lo, hi, *rest = (_integer(b.strip(), value, part) for b in bounds)
    step = rest[0] if rest else 1
    if step <= 0:
        raise _bad(value, f"the step of {part!r} must be a positive whole number")
    if hi < lo:
        raise _bad(value, f"{part!r} is empty (it counts down); write {hi}..{lo}")
    points = range(lo, hi + 1, step)
    if len(points) > room:
        raise _bad(value, f"{part!r} names {len(points):,} points, more than the "
                          f"{MAX_QUALITIES:,} qualities a run accepts; use a step ('LO..HI..STEP')")
    return points


def _number(part: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(part)
        except ValueError:
            pass
    return part


def parse_qualities(value: str) -> list[int | float | str]:
    """The qualities a ``--qualities`` text names, in order, duplicates kept."""
    parts = [p.strip() for p in value.split(",")]
    if not any(parts):
        raise _bad(value, "no quality given")
    out: list[int | float | str] = []
    for part in parts:
        if not part:
            raise _bad(value, "an empty item between commas")
        out.extend(_range(part, value, MAX_QUALITIES - len(out)) if ".." in part
                   else [_number(part)])
        if len(out) > MAX_QUALITIES:
            raise _bad(value, f"more than the {MAX_QUALITIES:,} qualities a run accepts")
    return out


def unique(qualities: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """``(each quality once in first-seen order, the ones that were repeated)``, in linear
    time (equal values such as ``1`` and ``1.0`` count as one, as ``==`` says)."""
    seen: dict[Any, None] = {}
    repeated: dict[Any, None] = {}
    for quality in qualities:
        if quality not in seen:
            seen[quality] = None
        else:
            repeated[quality] = None
    return list(seen), list(repeated)


def normalise(value: str | Sequence[Any] | None, label: str,
              stream: TextIO) -> list[Any] | None:
    """``value`` (a ``--qualities`` text or a list) as the list to run, each quality once
    (a note on ``stream`` names the repeated ones); ``None`` = each codec's ladder."""
    if value is None:
        return None
    parsed = parse_qualities(value) if isinstance(value, str) else list(value)
    if not parsed:
        raise _bad(value, "no quality given", label)
    if len(parsed) > MAX_QUALITIES:
        raise _bad(value, f"more than the {MAX_QUALITIES:,} qualities a run accepts", label)
    qualities, repeated = unique(parsed)
    if repeated:
        print(f"jcsr-bench: note: {label} {value!r} names {', '.join(map(str, repeated))} "
              f"more than once; each quality runs once: {', '.join(map(str, qualities))}",
              file=stream)
    return qualities

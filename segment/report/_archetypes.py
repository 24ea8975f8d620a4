"""How the report's sections name archetypes, show their sizes and class their verdicts."""

from __future__ import annotations

from ..vocabulary import ALL_STABLE, BORDERLINE_DISSOLVED, NOISE, NOISE_NAME, STABLE_INTERPRETATION
from . import _format as fmt
from ._data import RunData
from ._suppress import group_sizes_below, hidden_sizes, suppressed_label


def label(a) -> str:
    """How an archetype is named in tables, e.g. ``"archetype 2"`` or the noise group's name."""
    a = int(a)
    return NOISE_NAME if a == NOISE else f"archetype {a}"


def size_text(n, min_cell: int, hidden: bool) -> str:
    """An archetype's size, or ``"<min_cell"`` when it is suppressed (see
    :func:`~segment.report._suppress.hidden_sizes`)."""
    if fmt.is_missing(n):
        return "—"
    return suppressed_label(min_cell) if hidden else fmt.integer(n)


def hidden_groups(data: RunData) -> set:
    """(method, archetype) pairs whose size is not shown: too small, or giving a small one back."""
    return hidden_sizes(data.table("archetype_sizes"), data.min_cell) | group_sizes_below(data.tables, data.min_cell)


def verdict_class(verdict: str) -> str:
    """The CSS class a stability verdict is shown with: ok, warn, bad or muted."""
    v = str(verdict).lower()
    if v.startswith("stable") or v == ALL_STABLE or v == STABLE_INTERPRETATION:
        return "ok"
    if v.startswith("weak") or v == BORDERLINE_DISSOLVED:
        return "warn"
    if v.startswith("dissolved") or v.startswith("not all"):
        return "bad"
    return "muted"

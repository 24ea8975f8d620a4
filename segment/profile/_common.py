"""Constants and small helpers shared by the profiling modules."""

from __future__ import annotations

import pandas as pd

from ..vocabulary import NOISE

CI_LEVEL = 0.95


class _Log:
    def __init__(self):
        self.items: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _frame(rows, columns) -> pd.DataFrame:
    if not rows:
        return _empty(columns)
    return pd.DataFrame(rows, columns=list(columns))


def _group_name(g: int) -> str:
    return "the noise group (-1)" if g == NOISE else f"archetype {g}"


def _members_text(count, outcome) -> str:
    if count == 1:
        return f"a single member with a non-missing {outcome} value"
    return f"no member with a non-missing {outcome} value"


def _plural(n, word) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"

"""Small-cell suppression: the one place where counts are hidden."""

from __future__ import annotations

import numpy as np
import pandas as pd


def suppressed_label(min_cell: int) -> str:
    """How a suppressed count is shown, e.g. ``"<10"``."""
    return f"<{int(min_cell)}"


def suppress_small_cells(table: pd.DataFrame, min_cell: int = 10, columns=None) -> pd.DataFrame:
    """Replace every count below ``min_cell`` by ``"<min_cell"``.

    Parameters
    ----------
    table : DataFrame
        A table of counts (a cross-table, or a long table with a count
        column).
    min_cell : int
        Smallest count that may be shown.  Counts from 0 to ``min_cell - 1``
        are replaced by the text ``"<min_cell"`` (a zero is suppressed too:
        "nobody in this archetype is X" can disclose as much as a 1).
    columns : list of str, optional
        The count columns.  Default: every numeric column.

    Returns
    -------
    DataFrame
        A copy; suppressed columns become text (object) columns, counts that
        are shown stay integers.  Missing values stay missing.

    Examples
    --------
    >>> suppress_small_cells(pd.DataFrame({"level": ["a", "b"], "n": [3, 12]}), 10)
      level    n
    0     a  <10
    1     b   12
    """
    out = table.copy()
    if columns is None:
        columns = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])
                   and not pd.api.types.is_bool_dtype(out[c])]
    label = suppressed_label(min_cell)
    for c in columns:
        values = pd.to_numeric(out[c], errors="coerce")
        shown = []
        for v, original in zip(values, out[c]):
            if pd.isna(v):
                shown.append(original if isinstance(original, str) else np.nan)
            elif v < min_cell:
                shown.append(label)
            else:
                shown.append(int(v) if float(v).is_integer() else v)
        out[c] = pd.Series(shown, index=out.index, dtype=object)
    return out

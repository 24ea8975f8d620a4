"""Disclosure control: the one place where counts are hidden.

Primary suppression hides every count below ``report.min_cell``.  That
alone is not enough when the table's totals can be read elsewhere (an
archetype's size, the cohort's size): a line with a single hidden cell
gives it back by subtraction.  Secondary suppression (as in τ-ARGUS and
sdcMicro) therefore hides further cells, the smallest first, until no row
or column of the table has exactly one hidden cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def suppressed_label(min_cell: int) -> str:
    """How a suppressed count is shown, e.g. ``"<10"``."""
    return f"<{int(min_cell)}"


def small_cell_mask(counts, min_cell: int, *, rows: bool = True, columns: bool = True,
                    protect_zeros: bool = True) -> np.ndarray:
    """Which cells of a table of counts must be hidden.

    Parameters
    ----------
    counts : array-like of shape (n_rows, n_columns)
        Counts; NaN marks a cell that is not a count (never hidden, never
        used to hide another).
    min_cell : int
        Smallest count that may be shown.
    rows, columns : bool
        Whether the totals of the rows (columns) are published or can be
        derived; every such line with exactly one hidden cell gets a second
        one, its smallest shown count.
    protect_zeros : bool
        Hide zeros too ("nobody in this archetype is X" discloses as much
        as a 1).

    Returns
    -------
    ndarray of bool
        True where the count must be hidden.
    """
    values = np.asarray(counts, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    present = np.isfinite(values)
    hide = present & (values < min_cell) & (protect_zeros | (values > 0))
    lines = ([(i, slice(None)) for i in range(values.shape[0])] if rows else []) + \
            ([(slice(None), j) for j in range(values.shape[1])] if columns else [])
    changed = True
    while changed:
        changed = False
        for line in lines:
            cells = present[line]
            hidden = hide[line] & cells
            if cells.sum() < 2 or hidden.sum() != 1:
                continue
            candidates = np.where(cells & ~hide[line], values[line], np.inf)
            k = int(np.argmin(candidates))
            if not np.isfinite(candidates[k]):
                continue
            index = list(line)
            index[index.index(slice(None))] = k
            hide[tuple(index)] = True
            changed = True
    return hide


def suppress_small_cells(table: pd.DataFrame, min_cell: int = 10, columns=None, *, by=None,
                         protect_zeros: bool = True) -> pd.DataFrame:
    """Replace the counts that must be hidden by ``"<min_cell"``.

    Every count below ``min_cell`` is hidden, and then (see
    :func:`small_cell_mask`) enough further counts that none can be
    derived by subtraction from a total.

    Parameters
    ----------
    table : DataFrame
        A wide cross-table of counts (its rows and columns are the lines,
        their totals taken as known), or a long table with a count column
        and ``by`` naming the columns whose groups are the lines.
    min_cell : int
        Smallest count that may be shown.
    columns : list of str, optional
        The count columns.  Default: every numeric column.
    by : str or list of str, optional
        Long tables: the lines are the groups of these columns (e.g. the
        answers of one item, whose total is the cohort size).
    protect_zeros : bool
        Hide zeros too.

    Returns
    -------
    DataFrame
        A copy; suppressed columns become text (object) columns, counts that
        are shown stay integers.  Missing values stay missing.

    Examples
    --------
    >>> suppress_small_cells(pd.DataFrame({"a": [3, 12, 30], "b": [15, 11, 40]}), 10)
         a    b
    0  <10  <10
    1  <10  <10
    2   30   40
    """
    out = table.copy()
    if columns is None:
        columns = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])
                   and not pd.api.types.is_bool_dtype(out[c])]
    columns = list(columns)
    values = np.column_stack([pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=float) for c in columns]) \
        if columns else np.empty((len(out), 0))
    if by is None:
        hide = small_cell_mask(values, min_cell, protect_zeros=protect_zeros)
    else:
        hide = np.zeros(values.shape, bool)
        for rows in out.groupby(by, sort=False).indices.values():
            hide[rows] = small_cell_mask(values[rows], min_cell, protect_zeros=protect_zeros,
                                         rows=len(columns) > 1)
    label = suppressed_label(min_cell)
    for j, c in enumerate(columns):
        shown = []
        for v, hidden, original in zip(values[:, j], hide[:, j], out[c]):
            if np.isnan(v):
                shown.append(original if isinstance(original, str) else np.nan)
            elif hidden:
                shown.append(label)
            else:
                shown.append(int(v) if float(v).is_integer() else v)
        out[c] = pd.Series(shown, index=out.index, dtype=object)
    return out


#: Tables with statistics per archetype: the rows of groups below ``min_cell`` are withheld
PER_GROUP_TABLES = ("profiles", "adjusted", "uncertainty", "archetype_features")
NAME_COLUMNS = ("name", "draft_name", "top_features")


def small_groups(sizes: pd.DataFrame, min_cell: int) -> set:
    """``(method, archetype)`` of every group (noise included) below ``min_cell``."""
    if not len(sizes) or not {"method", "archetype", "n"} <= set(sizes.columns):
        return set()
    n = pd.to_numeric(sizes["n"], errors="coerce")
    return {(str(m), int(a)) for m, a, v in zip(sizes["method"], sizes["archetype"], n) if v < min_cell}


def group_sizes_below(tables: dict, min_cell: int) -> set:
    """Small groups by ``archetype_sizes`` or by ``archetypes`` (both hold the sizes)."""
    return (small_groups(tables.get("archetype_sizes", pd.DataFrame()), min_cell)
            | small_groups(tables.get("archetypes", pd.DataFrame()), min_cell))


def hidden_sizes(sizes: pd.DataFrame, min_cell: int) -> set:
    """``(method, archetype)`` whose size is not shown: the small groups and,
    so that none of them follows from the number analysed minus the others,
    the smallest further groups of each method (secondary suppression)."""
    out = set()
    if not len(sizes) or not {"method", "archetype", "n"} <= set(sizes.columns):
        return out
    for method, part in sizes.groupby("method", sort=False):
        hide = small_cell_mask(pd.to_numeric(part["n"], errors="coerce").to_numpy(float), min_cell,
                               rows=False)[:, 0]
        out |= {(str(method), int(a)) for a, h in zip(part["archetype"], hide) if h}
    return out


def withhold_small_groups(tables: dict, min_cell: int) -> dict:
    """The tables with no statistic of a group below ``min_cell``.

    Rows of such groups are dropped from the per-archetype statistics
    (outcome means, SDs, CIs, shares, adjusted estimates, feature means),
    pairwise comparisons involving them are dropped, adjusted differences
    from such a reference group are dropped, and names built from their
    feature means are blanked.  Their sizes are suppressed elsewhere.
    """
    small = group_sizes_below(tables, min_cell)
    if not small:
        return tables

    def is_small(methods, archetypes):
        return np.array([(str(m), int(a)) in small if pd.notna(a) else False
                         for m, a in zip(methods, archetypes)], dtype=bool)

    out = dict(tables)
    for name in PER_GROUP_TABLES:
        t = out.get(name)
        if t is None or not len(t) or "archetype" not in t:
            continue
        drop = is_small(t["method"], t["archetype"])
        if "reference_archetype" in t:
            drop |= is_small(t["method"], pd.to_numeric(t["reference_archetype"], errors="coerce"))
        out[name] = t[~drop].reset_index(drop=True)
    pair = out.get("pairwise")
    if pair is not None and len(pair):
        drop = is_small(pair["method"], pair["archetype_a"]) | is_small(pair["method"], pair["archetype_b"])
        out["pairwise"] = pair[~drop].reset_index(drop=True)
    arch = out.get("archetypes")
    if arch is not None and len(arch):
        arch = arch.copy()
        rows = is_small(arch["method"], arch["archetype"])
        for c in NAME_COLUMNS:
            if c in arch:
                arch[c] = arch[c].astype(object)
                arch.loc[rows, c] = ""
        out["archetypes"] = arch
    return out

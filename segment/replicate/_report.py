"""Writing a replication: its tables, ``replication.json`` and an HTML report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import rundir

if TYPE_CHECKING:
    from ._replication import Replication

OUTPUT_FILES = ("transfer_assignments.csv", "matching.csv", "prediction_strength.csv", "shares.csv",
                "outcome_replication.csv", "replication.json", "report.html")


def write_replication(run_dir: Path, rep: Replication, config=None) -> Path:
    """Write a replication into ``<run_dir>/replications/<id>/`` via a working folder."""
    final, tmp = rundir.new_working_folder(Path(run_dir) / "replications", rundir.timestamp())
    try:
        rep.summary["replication_id"] = final.name
        rep.summary["created"] = rundir.utc_timestamp()
        rundir.write_csv(tmp / "transfer_assignments.csv", rep.assignments, index=True)
        rundir.write_csv(tmp / "matching.csv", rep.matching)
        rundir.write_csv(tmp / "prediction_strength.csv", rep.prediction_strength)
        rundir.write_csv(tmp / "shares.csv", rep.shares)
        rundir.write_csv(tmp / "outcome_replication.csv", rep.outcomes)
        rundir.write_json(tmp / "replication.json", rep.summary)
        min_cell = config.report.min_cell if config is not None else 10
        (tmp / "report.html").write_text(render_report(rep, min_cell=min_cell), encoding="utf-8")
        os.rename(tmp, final)
    except BaseException:
        rundir.discard(tmp)
        raise
    return final


#: Per table: each count column and the statistics of the group it counts, hidden with it.
_DISCLOSED = {
    "prediction_strength": {"n": ("prediction_strength",)},
    "matching": {"n_refit": (), "n_transferred": (), "n_both": ()},
    "shares": {"n_original": ("share_original",), "n_new": ("share_new",)},
    "outcomes": {"original_n": ("original_diff", "original_ci_low", "original_ci_high", "original_p_adjusted"),
                 "transferred_n": ("transferred_diff", "transferred_ci_low", "transferred_ci_high",
                                   "transferred_p_adjusted"),
                 "refit_n": ("refit_diff", "refit_ci_low", "refit_ci_high", "refit_p_adjusted")},
}
#: Statistics of a row that, beside the counts, would give a hidden count back.
_ROW_STATISTICS = {
    "matching": ("jaccard", "in_group_proportion", "igp_null_mean", "igp_null_p95", "igp_p_value"),
    "shares": ("difference", "ci_low", "ci_high", "p_adjusted"),
}


def disclosed(frame: pd.DataFrame, table: str, min_cell: int) -> pd.DataFrame:
    """A replication table as a shareable page may show it.

    Counts below ``min_cell`` are hidden, and further counts of the same
    method so that none follows by subtraction from a total (the run
    report's rule, :func:`segment.report._suppress.small_cell_mask`); the
    statistics of a group whose count is hidden go with it, and so do the
    statistics of a row that would give a hidden count back (a Jaccard from
    the two sizes, a difference of shares from the other share).
    """
    from ..report._suppress import small_cell_mask, suppressed_label

    counts = [c for c in _DISCLOSED[table] if c in frame.columns]
    out = frame.astype(object).copy()
    if not counts or not len(out):
        return out
    hide = np.zeros((len(out), len(counts)), bool)
    values = np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(float) for c in counts])
    for rows in frame.groupby("method", sort=False).indices.values():
        hide[rows] = small_cell_mask(values[rows], min_cell, rows=False)
    for j, count in enumerate(counts):
        out.loc[hide[:, j], count] = suppressed_label(min_cell)
        for column in _DISCLOSED[table][count]:
            if column in out.columns:
                out.loc[hide[:, j], column] = None
    row_hidden = hide.any(axis=1)
    for column in _ROW_STATISTICS.get(table, ()):
        if column in out.columns:
            out.loc[row_hidden, column] = None
    return out


def render_report(rep: Replication, *, fragment: bool = False, min_cell: int = 10) -> str:
    """The replication report: one self-contained HTML page (or a fragment) under the run report's disclosure rule."""
    from ..report._render import render_page

    def records(frame, table):
        frame = disclosed(frame, table, min_cell)
        return [{k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v) for k, v in r.items()}
                for r in frame.to_dict("records")]

    return render_page("replication.html", rep=rep, s=rep.summary, fragment=fragment, min_cell=min_cell,
                       ps=records(rep.prediction_strength, "prediction_strength"),
                       matching=records(rep.matching, "matching"), shares=records(rep.shares, "shares"),
                       outcomes=records(rep.outcomes, "outcomes"))

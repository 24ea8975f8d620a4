"""The archetype report: one self-contained HTML file per run.

The report is rendered from the files of a run directory only (tables,
``metrics.json`` and ``manifest.json``; never ``assignments.csv`` or any
other per-respondent table), through a summary dict and one Jinja2 template
with autoescaping.  Counts below ``report.min_cell`` in cross-tables are
suppressed by :func:`suppress_small_cells`.

Examples
--------
>>> from segment.report import render_run_dir, figures
>>> render_run_dir("reports/smmh/20260101-120000")        # doctest: +SKIP
>>> figures.embedding_figure("reports/smmh/20260101-120000")  # doctest: +SKIP
"""

from __future__ import annotations

from . import figures
from ._data import RunData, is_run_dir, load_run_data
from ._render import render_html, render_run, render_run_dir, render_summary_html
from ._summary import build_summary
from ._suppress import suppress_small_cells
from ._verdict import Verdict, group_warnings, summary_lines, verdict

__all__ = [
    "render_run",
    "render_run_dir",
    "render_summary_html",
    "render_html",
    "build_summary",
    "verdict",
    "Verdict",
    "group_warnings",
    "summary_lines",
    "suppress_small_cells",
    "load_run_data",
    "is_run_dir",
    "RunData",
    "figures",
]

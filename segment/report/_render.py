"""Render the summary dict into one self-contained HTML file."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from matplotlib.colors import to_hex

from ..errors import SegmentError
from ..vocabulary import NOISE
from . import _format as fmt
from ._data import PER_RESPONDENT, RunData, load_run_data, run_data_from
from ._notebook import run_summary_html
from ._summary import build_summary

REPORT_FILE = "report.html"
FIGURES_FOLDER = "figures"
TABLES_FOLDER = "tables"


def _environment() -> jinja2.Environment:
    """The templates of ``report/templates`` with the number formats every page shares."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segment.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.ChainableUndefined, trim_blocks=False, lstrip_blocks=False,
    )
    env.filters.update(
        num=fmt.num, share=fmt.share, pvalue=fmt.pvalue, count=fmt.integer,
        dash=lambda v: "—" if fmt.is_missing(v) else v,
        p_relation=lambda p: "—" if fmt.is_missing(p) else (fmt.pvalue(p) if float(p) < 0.001 or float(p) > 0.999
                                                             else f"= {fmt.pvalue(p)}"),
        star=lambda p, alpha: "*" if not fmt.is_missing(p) and float(p) < alpha else "",
    )
    return env


def render_page(template: str, **context) -> str:
    """Render one of ``report/templates`` (the replication and sweep pages, too)."""
    return _environment().get_template(template).render(**context)


def _colors(summary: dict) -> dict:
    from .figures import archetype_color

    ids = {NOISE}
    for m in summary["profiles"]["methods"]:
        ids.update(c["archetype"] for c in m["cards"])
    return {a: to_hex(archetype_color(a)) for a in ids}


def render_html(summary: dict, *, fragment: bool = False, rendered: str | None = None) -> str:
    """The HTML text of a summary dict (a whole page, or a fragment for notebooks)."""
    template = _environment().get_template("report.html")
    rendered = rendered or datetime.now(timezone.utc).isoformat(timespec="seconds")
    return template.render(**summary, fragment=fragment, rendered=rendered, colors=_colors(summary))


def _atomic_write(path: Path, text: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_csv(path: Path, frame) -> None:
    _atomic_write(path, frame.to_csv(index=False, lineterminator="\n"))


def _write_outputs(folder: Path, data: RunData) -> Path:
    summary = build_summary(data, figures=True)
    fig_dir = folder / FIGURES_FOLDER
    fig_dir.mkdir(exist_ok=True)
    for name, f in summary["figures"].items():
        _atomic_write(fig_dir / f"{name}.svg", f["svg"])
    tab_dir = folder / TABLES_FOLDER
    derived = {"answers_suppressed": summary["data"].get("answers_frame"),
               "contingency_hdbscan_gmm_suppressed": summary["model"].get("contingency_frame"),
               "outcomes_apa": summary["outcomes"].get("apa_frame")}
    crosstabs = [ct["frame"] for ct in summary["profiles"]["crosstabs"]]
    if crosstabs:
        import pandas as pd
        derived["covariate_crosstab_suppressed"] = pd.concat(crosstabs, ignore_index=True)
    derived = {k: v for k, v in derived.items() if v is not None and len(v)}
    if derived:
        tab_dir.mkdir(exist_ok=True)
        for name, frame in derived.items():
            _write_csv(tab_dir / f"{name}.csv", frame)
    path = folder / REPORT_FILE
    _atomic_write(path, render_html(summary))
    return path


def render_run(run, folder) -> Path:
    """Write ``report.html``, ``figures/*.svg`` and ``tables/*.csv`` into a run's folder.

    The report is built from the files in ``folder`` alone (never from
    ``run``), so rendering a fresh run and re-rendering a saved one give the
    same report.

    Parameters
    ----------
    run : Run or None
        The run just computed; unused except to document the call.
    folder : str or Path
        The run directory (or its working folder while the run is written).

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    folder = Path(folder)
    return _write_outputs(folder, load_run_data(folder))


def render_run_dir(run_dir) -> Path:
    """Re-render the report of a saved run without refitting anything.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``segment run``.

    Returns
    -------
    Path
        The path of ``report.html``.

    Raises
    ------
    SegmentError
        When ``run_dir`` is not a run directory, or when result files the
        run wrote are missing (the report would lose sections; the existing
        report is left as it is).
    """
    data = load_run_data(run_dir)
    missing = missing_files(data)
    if missing:
        raise SegmentError(
            f"{data.folder} misses result file(s) that the run wrote: {', '.join(missing)}. The report "
            f"would lose what they hold, so {REPORT_FILE} was left as it is. Restore them, or run the "
            "experiment again.")
    return _write_outputs(data.folder, data)


#: Tables every run with a segmentation writes (runs whose manifest does not list its files)
WRITTEN_BY_EVERY_RUN = ("archetype_sizes", "agreement", "indices", "missingness", "answers", "covariate_crosstab",
                        "profiles", "tests", "pairwise", "adjusted", "uncertainty", "archetypes")
WRITTEN_WITH_STABILITY = ("stability", "resamples", "jaccard", "null_jaccard")


def missing_files(data: RunData) -> list[str]:
    """Result files of the run that are not in its folder (per-respondent
    files aside: the report never reads them)."""
    listed = data.manifest.get("files")
    if listed is None:
        stems = WRITTEN_BY_EVERY_RUN if data.metrics.get("hdbscan") else ()
        stems += WRITTEN_WITH_STABILITY if data.metrics.get("stability") else ()
        listed = [f"{stem}.csv" for stem in stems]
    return [name for name in listed
            if Path(name).stem not in PER_RESPONDENT and not (data.folder / name).is_file()]


def render_summary_html(run) -> str:
    """The notebook view of a run: the verdict first, then the archetypes of each
    method with their stability verdicts, the test of structure and the notes.

    Parameters
    ----------
    run : Run, RunData or path of a run directory

    Returns
    -------
    str
        An HTML fragment.
    """
    return run_summary_html(run_data_from(run))

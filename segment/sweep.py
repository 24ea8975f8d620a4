"""Parameter sweeps: every combination of a ``[sweep]``, compared side by side.

An experiment with a ``[sweep]`` table runs once per combination of the
listed values.  Each setting is a complete run directory; the sweep adds
``sweep.csv`` (one row per setting), ``sweep_ari.csv`` (agreement between
the settings' archetypes) and ``sweep.html``, and applies a declared rule to
select a setting.  Stages whose inputs and parameters are unchanged are read
from a content-addressed cache (``joblib.Memory``), so a sweep over HDBSCAN
parameters fits UMAP once per UMAP setting.

::

    [sweep]
    reduce.n_neighbors = [10, 15, 30]
    cluster.hdbscan.min_cluster_size = [10, 15, 25]
    resamples = 20        # stability resamples per setting (default: [stability])
    max_noise = 0.3       # the rule: settings with noise share at most this ...
    select = "min_stability"   # ... and the highest minimum archetype stability
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .cluster import agreement
from .config import ExperimentConfig, config_from_dict, set_dotted
from .errors import ConfigError, SegmentError
from .rundir import check_output, discard, make_folders, new_working_folder, timestamp, write_csv, write_json

OPTIONS = {"resamples": int, "max_noise": float, "select": str, "cache": bool}
RULES = {
    "min_stability": "the highest minimum archetype stability (mean Jaccard of the least stable HDBSCAN "
                     "archetype), ties broken by mean stability",
    "mean_stability": "the highest mean archetype stability of HDBSCAN archetypes",
    "dbcv": "the highest DBCV of the HDBSCAN archetypes (UMAP embedding)",
}


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def sweep_plan(config: ExperimentConfig) -> tuple[list[dict], dict]:
    """The settings of a sweep (dotted key -> value) and its options.

    Raises
    ------
    ConfigError
        An option of the wrong type, a swept key that is not a list, or a
        swept key that is not a key of the experiment.
    """
    flat = _flatten(config.sweep)
    options = {"resamples": None, "max_noise": 0.3, "select": "min_stability", "cache": True}
    grid = {}
    for key, value in flat.items():
        if key in OPTIONS:
            ok = isinstance(value, OPTIONS[key]) or (OPTIONS[key] is float and isinstance(value, int))
            if not ok or isinstance(value, bool) != (OPTIONS[key] is bool):
                raise ConfigError(f"config key 'sweep.{key}' must be {OPTIONS[key].__name__}; got {value!r}.")
            options[key] = value
            continue
        if not isinstance(value, list) or not value:
            raise ConfigError(f"config key 'sweep.{key}' must be a non-empty list of values; got {value!r}.")
        if key.startswith(("sweep.", "experiment.")):
            raise ConfigError(f"config key 'sweep.{key}': the experiment section cannot be swept.")
        grid[key] = value
    if options["select"] not in RULES:
        raise ConfigError(f"config key 'sweep.select' must be one of {', '.join(RULES)}; got {options['select']!r}.")
    if not grid:
        raise ConfigError("the [sweep] table lists no parameter to sweep, e.g. reduce.n_neighbors = [10, 15, 30].")
    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    base = config.to_dict()
    base["sweep"] = {}
    for setting in settings:  # every setting must be a valid experiment
        data = copy.deepcopy(base)
        for key, value in setting.items():
            set_dotted(data, key, value)
        try:
            config_from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"sweep setting {setting}: {exc}") from None
    return settings, options


def setting_config(config: ExperimentConfig, setting: dict, options: dict) -> ExperimentConfig:
    data = config.to_dict()
    data["sweep"] = {}
    for key, value in setting.items():
        set_dotted(data, key, value)
    if options["resamples"] is not None:
        data["stability"]["resamples"] = options["resamples"]
    return config_from_dict(data, config.path)


@dataclass
class Sweep:
    """The settings of a sweep, their key figures and the selected one."""

    table: pd.DataFrame
    ari: pd.DataFrame
    rule: str
    selected: int | None
    path: Path | None = None
    runs: list = field(default_factory=list)

    def _repr_html_(self) -> str:
        return sweep_html(self)


def _figures(run) -> dict:
    m = run.metrics
    idx = pd.DataFrame(m.get("indices", []))

    def index(name):
        if idx.empty:
            return float("nan")
        hit = idx[(idx["method"] == "hdbscan") & (idx["index"] == name) & (idx["space"] == "UMAP embedding")]
        return float(hit["value"].iloc[0]) if len(hit) else float("nan")

    stability = run.tables.get("stability")
    mean_stab = min_stab = float("nan")
    if stability is not None and len(stability):
        h = stability[stability["method"] == "hdbscan"]
        if len(h):
            mean_stab, min_stab = float(h["mean_jaccard"].mean()), float(h["mean_jaccard"].min())
    gmm = run.segmentation.gmm if run.segmentation is not None else None
    return {
        "n_archetypes": m.get("hdbscan", {}).get("n_archetypes", 0),
        "noise_share": m.get("hdbscan", {}).get("noise_share", float("nan")),
        "mean_stability": mean_stab, "min_stability": min_stab,
        "dbcv": index("dbcv"), "silhouette": index("silhouette"),
        "silhouette_space": "UMAP embedding (HDBSCAN archetypes, noise left out)",
        "gmm_k": None if gmm is None else gmm.k,
        "gmm_bic": None if gmm is None else float(gmm.table.loc[gmm.table["selected"], "bic"].iloc[0]),
    }


def select_setting(table: pd.DataFrame, rule: str, max_noise: float) -> int | None:
    """Index of the setting the rule selects, or None when none qualifies."""
    ok = table[(table["noise_share"] <= max_noise) & (table["n_archetypes"] >= 2)]
    if rule == "min_stability":
        ok = ok.dropna(subset=["min_stability"]).sort_values(["min_stability", "mean_stability"], ascending=False)
    elif rule == "mean_stability":
        ok = ok.dropna(subset=["mean_stability"]).sort_values("mean_stability", ascending=False)
    else:
        ok = ok.dropna(subset=["dbcv"]).sort_values("dbcv", ascending=False)
    return None if ok.empty else int(ok.index[0])


def run_sweep(config: ExperimentConfig, *, quiet: bool = True, command: str | None = None) -> Sweep:
    """Run every setting of an experiment's ``[sweep]`` and compare them.

    Parameters
    ----------
    config : ExperimentConfig
        An experiment with a non-empty ``sweep`` table.
    quiet : bool
        No progress lines on stderr.
    command : str, optional
        Recorded in each setting's manifest.

    Returns
    -------
    Sweep
    """
    import joblib

    from .experiment import prepare, run_experiment

    settings, options = sweep_plan(config)
    check_output(config)
    plan = prepare(config)
    if not quiet:
        for w in plan.warnings:
            print(f"segment: warning: {w}", file=sys.stderr)
    for setting in settings:  # every setting checked against the cohort before the first fit
        try:
            prepare(setting_config(config, setting, options), plan.cohort)
        except SegmentError as exc:
            raise type(exc)(f"sweep setting {setting}: {exc}") from None
    parent = config.resolve(config.experiment.output) / config.experiment.name
    made = make_folders(parent)
    final, tmp = new_working_folder(parent, f"sweep-{timestamp()}")
    memory = joblib.Memory(parent / ".cache", verbose=0) if options["cache"] else None
    rows, runs = [], []
    try:
        for number, setting in enumerate(settings, start=1):
            name = f"setting-{number:02d}"
            started = time.perf_counter()
            run = run_experiment(setting_config(config, setting, options), quiet=quiet, memory=memory,
                                 place=(tmp, name), command=command, cohort=plan.cohort)
            runs.append(run)
            rows.append({"setting": name, **setting, **_figures(run),
                         "wall_seconds": time.perf_counter() - started, "run": name})
            if not quiet:
                print(f"segment: sweep {number}/{len(settings)} done", flush=True)
        sweep = _compare(pd.DataFrame(rows), runs, options)
        _write_sweep(tmp, sweep, settings, options)
        os.rename(tmp, final)
    except BaseException:
        if made:  # the folder is this sweep's own: its cache goes with it
            shutil.rmtree(parent / ".cache", ignore_errors=True)
        discard(tmp, made)
        raise
    sweep.path = final
    return sweep


def _compare(table: pd.DataFrame, runs: list, options: dict) -> Sweep:
    """The settings compared: agreement between their archetypes and the one the rule selects."""
    ari = pd.DataFrame(np.eye(len(runs)), index=table["setting"], columns=table["setting"])
    for a, b in itertools.combinations(range(len(runs)), 2):
        la, lb = runs[a].assignments, runs[b].assignments
        shared = la.index[(~la["excluded"]) & (~lb["excluded"])]
        value = agreement(la.loc[shared, "hdbscan_label"].to_numpy(int),
                          lb.loc[shared, "hdbscan_label"].to_numpy(int))["ari"]
        ari.iloc[a, b] = ari.iloc[b, a] = value
    selected = select_setting(table, options["select"], options["max_noise"])
    table["selected"] = False
    if selected is not None:
        table.loc[selected, "selected"] = True
    rule = (f"Among settings with at least 2 HDBSCAN archetypes and a noise share of at most "
            f"{options['max_noise']:.0%}, the one with {RULES[options['select']]}.")
    return Sweep(table=table, ari=ari, rule=rule, selected=selected, runs=runs)


def _write_sweep(folder: Path, sweep: Sweep, settings: list[dict], options: dict) -> None:
    """Write ``sweep.csv``, ``sweep_ari.csv``, ``sweep.json`` and ``sweep.html`` into ``folder``."""
    table, selected = sweep.table, sweep.selected
    write_csv(folder / "sweep.csv", table)
    write_csv(folder / "sweep_ari.csv", sweep.ari.reset_index())
    write_json(folder / "sweep.json", {"rule": sweep.rule, "options": options, "settings": settings,
                                       "selected": None if selected is None else table.loc[selected, "setting"],
                                       "cache": options["cache"],
                                       "wall_seconds": float(table["wall_seconds"].sum())})
    (folder / "sweep.html").write_text(sweep_html(sweep), encoding="utf-8")


def sweep_html(sweep: Sweep) -> str:
    """A self-contained page comparing the settings of a sweep (``report/templates/sweep.html``)."""
    from .report import _format as fmt
    from .report._render import render_page

    table = sweep.table.copy()
    table["noise_share"] = table["noise_share"].map(fmt.share)
    for col in ("mean_stability", "min_stability", "dbcv", "silhouette", "gmm_bic", "wall_seconds"):
        table[col] = table[col].map(fmt.num)
    return render_page(
        "sweep.html",
        rule=sweep.rule,
        selected=None if sweep.selected is None else sweep.table.loc[sweep.selected, "setting"],
        columns=[c for c in table.columns if c not in ("run", "silhouette_space")],
        rows=table.to_dict("records"),
        ari_columns=list(sweep.ari.columns),
        ari_rows=[(i, [fmt.num(v) for v in row]) for i, row in zip(sweep.ari.index, sweep.ari.to_numpy())],
    )

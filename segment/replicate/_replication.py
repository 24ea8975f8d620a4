"""A replication: carry a fitted segmentation to a new cohort, refit there, and compare.

The run's model assigns the new cohort (:mod:`segment.predict`), the same
experiment (same config, same seed) is fitted on the new cohort alone, and
the two are compared (:mod:`._agreement`, :mod:`._outcomes`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SegmentError
from ..pipeline import METHODS
from ..predict import LABEL_COLUMN, held_out_transfer, transfer
from ..vocabulary import NOISE, seed_stream
from ._agreement import (
    ALPHA,
    CORRECTION,
    IGP_NULL_DRAWS,
    MIN_MATCH_JACCARD,
    PS_THRESHOLD,
    SHARES_COLUMNS,
    contingency_table,
    in_group_proportion,
    in_group_proportion_null,
    match_archetypes,
    prediction_strength,
    share_changes,
)
from ._inputs import analysed_features, load_model, original_outcomes, read_new_cohort, versions_differ
from ._outcomes import OUTCOME_COLUMNS, original_summaries, outcome_replication, summaries_from_values
from ._report import render_report, write_replication

MATCHING_COLUMNS = ["method", "refit_archetype", "original_archetype", "n_refit", "n_transferred",
                    "n_both", "jaccard", "matched", "in_group_proportion", "n_in_group",
                    "igp_null_mean", "igp_null_p95", "igp_null_draws", "igp_p_value"]
PS_COLUMNS = ["method", "k_model", "k_refit", "k", "refit_archetype", "n", "n_pairs",
              "prediction_strength", "is_minimum"]


@dataclass
class Replication:
    """A fitted model carried to a new cohort, refitted there and compared.

    Attributes
    ----------
    assignments : DataFrame
        One row per new respondent: exclusion, transferred labels
        (``transfer`` columns) and refitted labels (``refit_*``).
    matching : DataFrame
        Columns :data:`MATCHING_COLUMNS`.
    prediction_strength : DataFrame
        Columns :data:`PS_COLUMNS`.
    shares : DataFrame
        Columns :data:`SHARES_COLUMNS`.
    outcomes : DataFrame
        Columns :data:`OUTCOME_COLUMNS`.
    summary : dict
        What ``replication.json`` holds (per-method verdicts, tests,
        warnings, timings).
    verdict : str
        One sentence.
    replicated : bool
        Whether the archetypes of the primary method replicate.
    path : Path or None
        The replication folder, when written.
    """

    assignments: pd.DataFrame
    matching: pd.DataFrame
    prediction_strength: pd.DataFrame
    shares: pd.DataFrame
    outcomes: pd.DataFrame
    summary: dict
    verdict: str
    replicated: bool
    warnings: list = field(default_factory=list)
    path: Path | None = None

    def _repr_html_(self) -> str:
        return render_report(self, fragment=True)


@dataclass
class _Fits:
    """The model, and the new cohort as the model assigns it and as refitted there."""

    seg: object
    config: object
    refit_seed: int
    ss: np.random.SeedSequence
    transferred: pd.DataFrame
    X_new: np.ndarray
    refit: object
    refit_labels: pd.DataFrame
    held_out: pd.DataFrame

    def methods_compared(self) -> list[str]:
        """The methods that label the model's cohort, the transferred and the refitted one."""
        return [m for m in METHODS if self.seg.labels(m) is not None and LABEL_COLUMN[m] in self.transferred
                and m in self.refit_labels]


def replicate(run_dir, cohort_path, codebook_path=None, *, write: bool = True, seed: int | None = None,
              quiet: bool = True, note: dict | None = None) -> Replication:
    """Carry a run's model to a new cohort, refit there, compare and report.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``segment run``.
    cohort_path : str, Path or Cohort
        The new cohort's survey file (or an already loaded
        :class:`~segment.cohort.Cohort`).
    codebook_path : str or Path, optional
        Its codebook; by default the run's codebook (found by checksum beside
        the cohort file or in the run directory).
    write : bool
        Write ``<run_dir>/replications/<id>/`` (tables, ``replication.json``,
        ``report.html``), never overwriting.
    seed : int, optional
        Seed of the refit; by default the run's seed.
    note : dict, optional
        Recorded in ``replication.json`` (e.g. how a split-half was drawn).

    Returns
    -------
    Replication
    """
    from ..cohort import Cohort
    from ..config import config_from_dict

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if seed is not None and seed < 0:
        raise SegmentError(f"--seed must be >= 0; got {seed}.")
    if not isinstance(cohort_path, Cohort) and not Path(cohort_path).is_file():
        raise SegmentError(f"--cohort: survey file not found: {cohort_path}")
    seg, manifest = load_model(run_dir)
    config = config_from_dict(manifest["config"])
    warn = versions_differ(manifest)
    timings = {}

    cohort, loading = read_new_cohort(run_dir, manifest, cohort_path, codebook_path, config)
    reason, analysed, noticed = analysed_features(seg, cohort, manifest, config)
    profiles, outcome_names, absent = original_outcomes(run_dir, config, cohort)
    warn += loading + noticed + absent

    fits = _fit(seg, config, analysed, cohort.codebook, int(config.experiment.seed if seed is None else seed),
                timings)
    igps, igp_null = _in_group_proportions(fits, timings)
    matching, ps_table, shares_table, outcomes_table, methods, tests = _compare(
        fits, igps, igp_null, profiles, outcome_names, cohort.outcomes.loc[analysed.index])

    summary = _summary(fits, methods, tests, manifest, cohort, analysed, reason, timings,
                       warn + list(fits.refit.notes), note)
    rep = Replication(assignments=_assignments(cohort, reason, fits), matching=matching,
                      prediction_strength=ps_table, shares=shares_table, outcomes=outcomes_table,
                      summary=summary, verdict=summary["verdict"], replicated=summary["replicated"],
                      warnings=summary["warnings"])
    if write:
        summary["timings"]["total_seconds"] = round(time.perf_counter() - started, 4)
        rep.path = write_replication(run_dir, rep, config)
    return rep


@contextmanager
def _timed(timings: dict, key: str):
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start


def _fit(seg, config, analysed: pd.DataFrame, codebook, refit_seed: int, timings: dict) -> _Fits:
    """Assign the new cohort with the model, refit the experiment on it, and hold out the model's own cohort."""
    from ..pipeline import fit_segmentation

    with _timed(timings, "transfer_seconds"):
        transferred, X_new, _ = transfer(seg, analysed, return_embedding=True)
    ss = np.random.SeedSequence(refit_seed)
    with _timed(timings, "refit_seconds"):
        refit = fit_segmentation(analysed, codebook, config, np.random.SeedSequence(ss.entropy, spawn_key=(0,)))
    with _timed(timings, "held_out_transfer_seconds"):
        held_out = held_out_transfer(seg)
    return _Fits(seg=seg, config=config, refit_seed=refit_seed, ss=ss, transferred=transferred, X_new=X_new,
                 refit=refit, refit_labels=refit.labels_frame(), held_out=held_out)


def _assignments(cohort, reason: pd.Series, fits: _Fits) -> pd.DataFrame:
    """One row per new respondent: exclusion, transferred labels and refitted labels (``refit_*``)."""
    assignments = pd.DataFrame(index=cohort.ids)
    assignments["excluded"] = (reason != "").to_numpy()
    assignments["exclusion_reason"] = reason.to_numpy()
    for c in fits.transferred.columns:
        assignments[c] = fits.transferred[c].reindex(cohort.ids)
    for m in fits.refit_labels.columns:
        assignments[f"refit_{m}"] = fits.refit_labels[m].reindex(cohort.ids)
    for c in assignments.columns:
        if c.endswith(("_label", "_component", "_cluster")) or c.startswith("refit_"):
            assignments[c] = assignments[c].astype("Int64")
    assignments.index.name = "respondent"
    return assignments


def _in_group_proportions(fits: _Fits, timings: dict) -> tuple:
    """Each method's in-group proportions in the new cohort, and their structure-free null reference.

    Returns
    -------
    (dict, DataFrame)
        ``{method: in_group_proportion table by archetype}`` and the null
        reference indexed by ``(method, archetype)``.
    """
    used = fits.methods_compared()
    igps = {m: in_group_proportion(fits.X_new, fits.transferred[LABEL_COLUMN[m]].to_numpy()).set_index("archetype")
            for m in used}
    with _timed(timings, "igp_null_seconds"):
        igp_null = in_group_proportion_null(
            fits.seg, fits.X_new,
            {(m, int(a)): float(v) for m in used for a, v in igps[m]["in_group_proportion"].items()},
            seed=int(np.random.SeedSequence(fits.ss.entropy, spawn_key=(1,)).generate_state(1)[0])
        ).set_index(["method", "archetype"])
    return igps, igp_null


def _null_of(igp_null: pd.DataFrame, m: str, o) -> dict:
    cols = ["igp_null_mean", "igp_null_p95", "igp_null_draws", "igp_p_value"]
    if o is None or (m, o) not in igp_null.index:
        return {c: (0 if c == "igp_null_draws" else np.nan) for c in cols}
    return igp_null.loc[(m, o), cols].to_dict()


def _matching_rows(m: str, R: np.ndarray, T: np.ndarray, match: dict, orig_ids: list, igp: pd.DataFrame,
                   igp_null: pd.DataFrame) -> list[dict]:
    """Rows of ``matching.csv`` of one method: every refitted archetype, then unmatched original ones."""
    table = contingency_table(R, T)
    rows = []
    for r in sorted(set(R.tolist()) - {NOISE}):
        o = match.get(r)
        n_both = int(table.loc[r, o]) if o is not None else 0
        n_r, n_t = int((R == r).sum()), int((T == o).sum()) if o is not None else 0
        jac = n_both / (n_r + n_t - n_both) if o is not None else np.nan
        rows.append({"method": m, "refit_archetype": r, "original_archetype": o,
                     "n_refit": n_r, "n_transferred": n_t, "n_both": n_both,
                     "jaccard": jac, "matched": bool(jac >= MIN_MATCH_JACCARD),
                     "in_group_proportion": igp["in_group_proportion"].get(o, np.nan)
                     if o is not None else np.nan,
                     "n_in_group": igp["n_in_group"].get(o, 0) if o is not None else 0,
                     **_null_of(igp_null, m, o)})
    for o in orig_ids:
        if o not in match.values():
            rows.append({"method": m, "refit_archetype": None, "original_archetype": o,
                         "n_refit": 0, "n_transferred": int((T == o).sum()), "n_both": 0,
                         "jaccard": 0.0, "matched": False,
                         "in_group_proportion": igp["in_group_proportion"].get(o, np.nan),
                         "n_in_group": int(igp["n_in_group"].get(o, 0)), **_null_of(igp_null, m, o)})
    return rows


def _prediction_strength_table(m: str, fits: _Fits, R: np.ndarray, T: np.ndarray, k_model: int,
                               k_refit: int) -> tuple:
    """Prediction strength of one method, at the model's k where the refit can be set to it.

    Returns
    -------
    (DataFrame, str or None)
        Rows of ``prediction_strength.csv`` and a note when the refit chose
        another k than the model.
    """
    R_ps, k_ps, k_note = R, k_refit, None
    if k_refit != k_model:
        R_ps, k_ps, k_note = _refit_at_model_k(m, fits.seg, fits.refit, fits.config, fits.ss, k_model, k_refit)
    ps = prediction_strength(R_ps, T)
    ps.insert(0, "method", m)
    ps.insert(1, "k_model", k_model)
    ps.insert(2, "k_refit", k_refit)
    ps.insert(3, "k", k_ps)
    return ps, k_note


def _outcome_differences(m: str, R: np.ndarray, T: np.ndarray, match: dict, matching_rows: list,
                         profiles: pd.DataFrame, outcome_names: list, y_new: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``outcome_replication.csv`` of one method (``matching_rows``: its rows of ``matching.csv``)."""
    original, trans, refitted = {}, {}, {}
    for o in outcome_names:
        y = y_new[o].to_numpy(dtype=float)
        original[o] = original_summaries(profiles, m, o)
        trans[o] = summaries_from_values(T, y)
        refitted[o] = summaries_from_values(R, y)
    jaccards = {int(r["refit_archetype"]): r["jaccard"] for r in matching_rows if r["refit_archetype"] is not None}
    return outcome_replication(m, original, trans, refitted, match, jaccards)


def _compare(fits: _Fits, igps: dict, igp_null: pd.DataFrame, profiles: pd.DataFrame, outcome_names: list,
             y_new: pd.DataFrame) -> tuple:
    """Every method's matching, prediction strength, shares and outcome differences, and its verdict.

    Returns
    -------
    (DataFrame, DataFrame, DataFrame, DataFrame, list of dict, dict)
        The matching, prediction strength, shares and outcome tables (all
        methods), the per-method verdicts and the share tests by method.
    """
    matching_rows, ps_tables, share_tables, outcome_tables = [], [], [], []
    methods, tests = [], {}
    for m in fits.methods_compared():
        T = fits.transferred[LABEL_COLUMN[m]].to_numpy()
        R = fits.refit_labels[m].to_numpy()
        match = match_archetypes(R, T)
        orig_ids = sorted(set(fits.seg.labels(m).tolist()) - {NOISE})
        k_refit = len(set(R.tolist()) - {-1})
        rows = _matching_rows(m, R, T, match, orig_ids, igps[m], igp_null)
        matching_rows += rows
        ps, k_note = _prediction_strength_table(m, fits, R, T, len(orig_ids), k_refit)
        ps_tables.append(ps)
        shares, tests[m] = share_changes(fits.held_out[LABEL_COLUMN[m]].to_numpy(), T)
        shares.insert(0, "method", m)
        share_tables.append(shares)
        out = _outcome_differences(m, R, T, match, rows, profiles, outcome_names, y_new)
        outcome_tables.append(out)
        methods.append(_method_verdict(m, len(orig_ids), k_refit, ps, out, k_note))

    matching = _concat([pd.DataFrame(matching_rows)], MATCHING_COLUMNS)
    for c in ("refit_archetype", "original_archetype"):
        matching[c] = matching[c].astype("Int64")
    outcomes = _concat(outcome_tables, OUTCOME_COLUMNS)
    outcomes["refit_archetype"] = outcomes["refit_archetype"].astype("Int64")
    return (matching, _concat(ps_tables, PS_COLUMNS), _concat(share_tables, SHARES_COLUMNS), outcomes,
            methods, tests)


def _concat(frames: list, columns: list) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _overall_verdict(methods: list[dict]) -> tuple:
    """The primary method (HDBSCAN unless it found fewer than two archetypes), whether it replicates, in words.

    Returns
    -------
    (str, bool, str)
    """
    by_method = {v["method"]: v for v in methods}
    primary = "hdbscan" if by_method.get("hdbscan", {}).get("archetypes_original", 0) >= 2 else \
        next((v["method"] for v in methods if v["archetypes_original"] >= 2), "hdbscan")
    head = by_method.get(primary)
    replicated = bool(head and head["replicates"])
    if head is None:
        verdict = "Nothing to compare: the model has no archetypes."
    elif replicated:
        verdict = (f"The archetypes replicate in the new cohort ({primary}: prediction strength "
                   f"{head['prediction_strength']:.2f}).")
    else:
        verdict = (f"The archetypes do not replicate in the new cohort ({primary}: prediction strength "
                   f"{head['prediction_strength']:.2f}, {head['archetypes_refit']} refitted archetype(s) "
                   f"against {head['archetypes_original']}).")
    if head is not None and head["outcome_differences_original"]:
        verdict += (f" {head['outcome_differences_replicated']} of {head['outcome_differences_original']} "
                    "outcome differences of the original cohort replicate.")
    return primary, replicated, verdict


def _summary(fits: _Fits, methods: list[dict], tests: dict, manifest: dict, cohort, analysed: pd.DataFrame,
             reason: pd.Series, timings: dict, warnings: list, note: dict | None) -> dict:
    """What ``replication.json`` holds."""
    primary, replicated, verdict = _overall_verdict(methods)
    return {
        "verdict": verdict, "replicated": replicated, "primary_method": primary,
        "prediction_strength_threshold": PS_THRESHOLD, "alpha": ALPHA, "correction": CORRECTION,
        "min_match_jaccard": MIN_MATCH_JACCARD, "igp_null_draws": IGP_NULL_DRAWS,
        "shares_compared": "the original cohort, each respondent held out and assigned by the model as a new "
                           "respondent is, against the new cohort as the model assigns it",
        "methods": methods, "share_tests": tests,
        "run": {"run_id": manifest.get("run_id"), "model_sha256": manifest["model"]["sha256"],
                "input": manifest.get("input")},
        "new_cohort": {"file": None if cohort.source is None else cohort.source.name,
                       "sha256": cohort.sha256,
                       "codebook": None if cohort.codebook.path is None else cohort.codebook.path.name,
                       "n": cohort.n, "n_analysed": int(len(analysed)),
                       "n_excluded": int((reason != "").sum())},
        "refit_seed": fits.refit_seed,
        "transfer": {"method": "exact nearest training patterns, membership-weighted mean of their "
                               "embedding (UMAP's transform initialisation, no stochastic refinement); "
                               "batch independent",
                     "hdbscan_noise_share": float(np.mean(fits.transferred[LABEL_COLUMN["hdbscan"]] == NOISE))},
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warnings,
        "note": note or {},
    }


def _refit_at_model_k(method, seg, refit, config, ss, k_model, k_refit) -> tuple:
    """Labels of the new cohort clustered at the model's k, for the prediction strength.

    Prediction strength compares two partitions with the same k (Tibshirani &
    Walther, 2005).  The mixture and K-Means are refitted at the model's k in
    the refit's space; HDBSCAN has no k to set, so its refit stays as it is.
    Returns (labels per respondent, k used, note).
    """
    from ..cluster import fit_kmeans, select_gmm
    from ..pipeline import stage_seed

    seed = np.random.SeedSequence(ss.entropy, spawn_key=(0,))
    R = refit.labels(method)
    if method == "hdbscan" or (method == "gmm" and seg.gmm is None):
        return R, k_refit, (f"the refit finds {k_refit} archetype(s) where the model has {k_model}; prediction "
                            f"strength is defined for the same k and {method} cannot be refitted at a given k, "
                            f"so it compares partitions of different k")
    space = refit.X if refit.spaces[method] == "features" else refit.embedding
    if method == "gmm":
        g = select_gmm(space, k=(k_model, k_model), covariance_types=[seg.gmm.model.covariance_type],
                       criterion=config.cluster.gmm.criterion, n_init=config.cluster.gmm.n_init,
                       random_state=stage_seed(seed, 1))
        labels = g.labels
    else:
        labels = fit_kmeans(space, k=k_model, random_state=stage_seed(seed, 2))
    k_ps = int(len(np.unique(labels)))
    return labels[refit.inverse], k_ps, (f"the refit chose k = {k_refit} where the model has k = {k_model}; "
                                         f"prediction strength is computed from a refit at k = {k_model}")


def _method_verdict(method: str, orig_k: int, refit_k: int, ps: pd.DataFrame, out: pd.DataFrame,
                    k_note: str | None = None) -> dict:
    ps_min = float(ps["prediction_strength"].min()) if ps["prediction_strength"].notna().any() else float("nan")
    sig = out[(out["method"] == method) & out["significant_original"]]
    n_rep = int((sig["verdict"] == "replicated").sum())
    if orig_k < 2:
        replicates, text = False, f"{method}: the original model has {orig_k} archetype(s); nothing to replicate."
    elif refit_k == 0:
        replicates, text = False, f"{method}: the refit finds no archetypes in the new cohort: they do not replicate."
    elif refit_k == 1:
        replicates, text = False, (f"{method}: the refit finds a single group where the model has {orig_k} "
                                   f"archetypes (prediction strength {ps_min:.2f}): they do not replicate.")
    elif ps_min >= PS_THRESHOLD:
        replicates, text = True, (f"{method}: the {orig_k} archetypes replicate: prediction strength "
                                  f"{ps_min:.2f} >= {PS_THRESHOLD} over {refit_k} refitted archetypes.")
    else:
        replicates, text = False, (f"{method}: the archetypes do not replicate: prediction strength "
                                   f"{ps_min:.2f} < {PS_THRESHOLD} ({refit_k} refitted archetypes, "
                                   f"{orig_k} in the model).")
    if k_note:
        text += f" Note: {k_note}."
    if len(sig):
        text += (f" {n_rep} of {len(sig)} significant outcome differences replicate (through archetypes "
                 f"matched with Jaccard >= {MIN_MATCH_JACCARD}).")
    return {"method": method, "archetypes_original": orig_k, "archetypes_refit": refit_k,
            "prediction_strength_k": int(ps["k"].iloc[0]) if len(ps) else refit_k, "k_note": k_note or "",
            "prediction_strength": ps_min, "replicates": replicates,
            "outcome_differences_original": int(len(sig)), "outcome_differences_replicated": n_rep,
            "verdict": text}


def split_half(config, *, overrides: dict | None = None, quiet: bool = True,
               write: bool = True, command: str | None = None):
    """Split-half replication: fit on one random half of a cohort, replicate on the other.

    The experiment's cohort is loaded and validated once, its respondents are
    split by a permutation drawn from the experiment's seed into halves A
    (the first ``ceil(n / 2)``) and B; the experiment is run on A (a normal
    run directory) and replicated on B (written into that run's
    ``replications/``).  No answers are written out.

    Returns
    -------
    (Run, Replication)
    """
    from ..config import ExperimentConfig, load_config
    from ..experiment import prepare, run_experiment

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides)
    cohort = prepare(config).cohort
    split_seed = int(config.experiment.seed)
    order = np.random.default_rng(seed_stream(np.random.SeedSequence(split_seed), "split_half")).permutation(cohort.n)
    half = (cohort.n + 1) // 2
    a, b = cohort.ids[np.sort(order[:half])], cohort.ids[np.sort(order[half:])]
    run = run_experiment(config, quiet=quiet, write=write, cohort=cohort.subset(a), command=command)
    if not write:
        raise SegmentError("a split-half replication reads the model from the run directory: use write=True.")
    note = {"split-half": f"seed {split_seed}: {len(a)} respondents fitted (half A), "
                          f"{len(b)} replicated (half B) of {cohort.n} in "
                          f"{cohort.source.name if cohort.source is not None else 'the cohort'}"}
    rep = replicate(run.path, cohort.subset(b), write=write, note=note)
    return run, rep

"""The null reference of a stability analysis: structure-free cohorts, and
the verdicts of the archetypes against them.

A null cohort has the cohort's shape and no clusters (:func:`_permuted`).
Each is fitted like the cohort and resampled; the mean Jaccard of its best
archetype, per method, makes up the null reference.  An archetype's verdict
compares its mean Jaccard with the stability threshold and with that
reference (:func:`_verdicts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .copula import copula_order, unimodal_copula
from .matching import METHODS, _jaccards, _resample_rows, _summaries
from .vocabulary import ARCHETYPE_METHODS as STRUCTURE_METHODS  # the family over which alpha is divided
from .vocabulary import BORDERLINE_DISSOLVED, REFITS, null_model, seed_stream


def _permuted(features: pd.DataFrame, seed: np.random.SeedSequence, how: str) -> pd.DataFrame:
    """A structure-free cohort of the same shape.

    ``how = "permute"``: each column is permuted on its own, so every item
    keeps exactly its answers (and its missing count) and all relations
    between items are gone.  ``how = "correlated"``: numeric columns are
    permuted jointly so that they keep their answers and their rank
    correlations (a Gaussian copula, Iman & Conover 1982); a latent
    continuum survives, and so do the modes of items whose answers are
    multimodal.  ``how = "unimodal"``: the same copula with every numeric
    item's distribution over its levels replaced by the nearest unimodal one
    (:func:`segment.copula.unimodal_copula`), so that the correlations and
    the discreteness survive and the modes do not.  In both copulas a
    multiselect item takes part as one 0/1 indicator per option, so that the
    options keep their shares and their correlations with the other items.
    Other columns (single-choice categories) are permuted independently in
    every case.
    """
    rng = np.random.default_rng(seed)
    out = features.copy()
    n = len(features)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
               and features[c].notna().sum() > 2] if how != "permute" else []
    options = {} if how == "permute" else {c: o for c in features.columns if c not in numeric
                                           and (o := _multiselect_options(features[c]))}
    for col in features.columns:
        if col not in numeric and col not in options:
            out[col] = features[col].to_numpy()[rng.permutation(n)]
    if not numeric and not options:
        return out
    values = features[numeric].copy()
    for col, opts in options.items():
        for i, indicator in enumerate(_option_indicators(features[col], opts, rng).T):
            values[f"{col}\0{i}"] = indicator
    if how == "unimodal":
        drawn = unimodal_copula(values, n, rng)
        columns = {col: drawn[col].to_numpy() for col in values.columns}
    else:
        columns = {col: np.where(order >= 0, values[col].to_numpy(dtype=float)[np.maximum(order, 0)], np.nan)
                   for col, order in copula_order(values, n, rng).items()}
    for col in numeric:
        new = columns[col]
        out[col] = new.astype(features[col].dtype) if np.isfinite(new).all() else new
    for col, opts in options.items():
        chosen = np.column_stack([columns[f"{col}\0{i}"] for i in range(len(opts))]) > 0.5
        answers = pd.Series([tuple(o for o, c in zip(opts, row) if c) for row in chosen], dtype=object,
                            index=out.index)
        missing = int(features[col].map(lambda v: not isinstance(v, tuple)).sum())
        answers.iloc[rng.permutation(n)[:missing]] = np.nan  # missing answers placed at random, as for items
        out[col] = answers
    return out


def _multiselect_options(column: pd.Series) -> list:
    """The options of a multiselect column (every answer a tuple of options), in order of
    first appearance; empty for any other column."""
    answered = [v for v in column if isinstance(v, tuple)]
    if not answered or len(answered) < column.notna().sum():
        return []
    return list(dict.fromkeys(o for v in answered for o in v))


def _option_indicators(column: pd.Series, options: list, rng) -> np.ndarray:
    """0/1 indicators (rows x options) of a multiselect column; an unanswered row
    takes the indicators of a random answered one, so that the copula sees no gaps."""
    answered = column.map(lambda v: isinstance(v, tuple)).to_numpy(bool)
    rows = np.arange(len(column))
    source = rows.copy()
    source[~answered] = rng.choice(rows[answered], int((~answered).sum()))
    values = column.to_numpy()
    return np.array([[o in values[s] for o in options] for s in source], dtype=float)


@dataclass
class _NullRuns:
    """What the null cohorts of an analysis gave.

    Attributes
    ----------
    reference : DataFrame
        ``method, null_cohort, n_archetypes, best_mean_jaccard``: the best
        archetype of every null cohort, per method.
    jaccard : DataFrame
        The Jaccard of every archetype of every null cohort in its resamples.
    rows : list of dict
        The null cohorts' rows of the resamples table.
    failed : int
        Null cohorts whose own fit failed, plus failed resamples of the others.
    """

    reference: pd.DataFrame
    jaccard: pd.DataFrame
    rows: list
    failed: int


def _null_runs(null_fits: dict, results: dict, null_cohorts: int, s) -> _NullRuns:
    """Gather the fits and resamples of the null cohorts (``s`` is ``config.stability``)."""
    null_rows, null_jac_frames, best_rows = [], [], []
    null_failed = 0
    for c in range(null_cohorts):
        fit = null_fits.get(c)
        if fit is None or fit["status"] != "ok":
            null_failed += 1
            continue
        null_orig = {m: fit["labels"][m] for m in METHODS}
        res_c = [results[("null", c, b)] for b in range(s.null_resamples)]
        for r in res_c:
            r["cohort"] = c
        null_failed += sum(r["status"] != "ok" for r in res_c)
        nj = _jaccards(null_orig, res_c)
        nj.insert(0, "null_cohort", c)
        null_jac_frames.append(nj)
        ns = _summaries(nj, null_orig, s.stable, s.dissolved)
        for m in METHODS:
            means = ns.loc[ns["method"] == m, "mean_jaccard"].dropna()
            best_rows.append({"method": m, "null_cohort": c, "n_archetypes": int(len(means)),
                              "best_mean_jaccard": float(means.max()) if len(means) else 0.0})
        null_rows += _resample_rows(null_orig, res_c, "null cohort")
    reference = pd.DataFrame(best_rows, columns=["method", "null_cohort", "n_archetypes", "best_mean_jaccard"])
    if len(null_jac_frames):
        null_jaccard = pd.concat(null_jac_frames, ignore_index=True)
    else:
        null_jaccard = pd.DataFrame(columns=["null_cohort", "method", "resample", "archetype", "jaccard", "matched"])
    return _NullRuns(reference, null_jaccard, null_rows, null_failed)


def _quantile_se(values: np.ndarray, q: float, rng) -> float:
    """Bootstrap standard error of an empirical quantile."""
    if len(values) < 2:
        return np.nan
    draws = rng.choice(values, size=(500, len(values)), replace=True)
    return float(np.std(np.quantile(draws, q, axis=1, method="higher"), ddof=1))


def _verdicts(table: pd.DataFrame, null_reference: pd.DataFrame, s, seed) -> tuple:
    """Each archetype's verdict against the null reference, and the structure test per method.

    An archetype's p-value is the Monte-Carlo p-value of its mean Jaccard
    among the best mean Jaccards of the null cohorts, ``(1 + #{null >= x}) /
    (1 + C)``.  The significance level ``stability.alpha`` is divided over
    the methods that have archetypes (Bonferroni), so that "any method shows
    a stable archetype" keeps its error rate on structure-free data.  The
    structure test of a method is the same comparison for its best archetype.
    """
    rng = np.random.default_rng(seed_stream(seed, "null_reference"))
    table = table.copy()
    assessed = [m for m in STRUCTURE_METHODS if (table["method"] == m).any()]
    alpha_family = s.alpha / max(1, len(assessed))
    table["mean_jaccard_se"] = np.nan
    table["null_reference"] = np.nan
    table["null_reference_se"] = np.nan
    table["p_value"] = np.nan
    structure = []
    for m in METHODS:
        rows = table["method"] == m
        ref_method = REFITS[m]
        null = null_reference.loc[null_reference["method"] == ref_method, "best_mean_jaccard"].to_numpy(float)
        if len(null):
            q = 1 - alpha_family
            table.loc[rows, "null_reference"] = float(np.quantile(null, q, method="higher"))
            table.loc[rows, "null_reference_se"] = _quantile_se(null, q, rng)
            table.loc[rows, "p_value"] = [(1 + np.sum(null >= x)) / (1 + len(null)) if np.isfinite(x) else np.nan
                                          for x in table.loc[rows, "mean_jaccard"]]
        if m in STRUCTURE_METHODS:
            best = table.loc[rows, "mean_jaccard"].max() if rows.any() else 0.0
            best = 0.0 if not np.isfinite(best) else float(best)
            p = (1 + np.sum(null >= best)) / (1 + len(null)) if len(null) else np.nan
            structure.append({"method": m, "statistic": "best archetype's mean Jaccard", "observed": best,
                              "null_cohorts": int(len(null)),
                              "null_mean": float(np.mean(null)) if len(null) else np.nan,
                              "null_q95": float(np.quantile(null, 0.95, method="higher")) if len(null) else np.nan,
                              "p_value": p, "alpha": s.alpha,
                              "reject": bool(p <= s.alpha) if len(null) else False,
                              "test": f"Monte-Carlo test against {null_model(s.null)[0]} of the same shape"})
    jac_sd = table.pop("_jaccard_sd") if "_jaccard_sd" in table else np.nan
    table["mean_jaccard_se"] = jac_sd / np.sqrt(table["n_resamples"].clip(lower=1))
    mean, se = table["mean_jaccard"], table["mean_jaccard_se"].fillna(0.0)
    has_null = table["null_reference"].notna()
    above = has_null & (table["p_value"] <= alpha_family)
    verdict = np.where(mean < s.dissolved, "dissolved", "weak")
    # "dissolved" and "weak" are claims too: within 2 Monte-Carlo errors of the threshold neither is made
    verdict = np.where((mean - s.dissolved).abs() < 2 * se, BORDERLINE_DISSOLVED, verdict)
    verdict = np.where((mean >= s.stable) & ~has_null, "no reference", verdict)
    verdict = np.where((mean >= s.stable) & above, "stable", verdict)
    near_stable = (mean - s.stable).abs() < 2 * se
    ref_se = np.sqrt(se**2 + table["null_reference_se"].fillna(0.0) ** 2)
    near_null = has_null & ((mean - table["null_reference"]).abs() < 2 * ref_se) & (mean >= s.stable - 2 * se)
    borderline = (near_stable | near_null) & np.isin(verdict, ("stable", "weak"))
    verdict = np.where(borderline, "borderline", verdict)
    verdict = np.where(mean.isna(), "not resampled", verdict)
    table["verdict"] = verdict
    return table, pd.DataFrame(structure), alpha_family


def _thresholds(s, null_cohorts: int, alpha_family: float) -> str:
    """The verdict rule in words (the ``thresholds`` column of the stability table)."""
    short, kept = null_model(s.null)
    null_text = (f"its mean Jaccard exceeds the best archetype of structure-free cohorts of the same shape "
                 f"({short}: {kept}; {null_cohorts} cohorts, each fitted once and resampled {s.null_resamples} "
                 f"times) with a Monte-Carlo p-value <= {alpha_family:.3g} ({s.alpha:g} Bonferroni-divided over "
                 f"the methods assessed)" if null_cohorts else
                 "and a null reference exists (stability.null_resamples = 0: there is none, so no archetype "
                 "can be called stable)")
    return (f"stable: mean Jaccard >= {s.stable:g} and {null_text}; borderline: the verdict changes "
            f"within 2 Monte-Carlo standard errors; dissolved: mean Jaccard < {s.dissolved:g}, borderline "
            "dissolved: within 2 Monte-Carlo standard errors of it; weak otherwise")

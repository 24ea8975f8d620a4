"""Whether the archetypes differ in the outcomes the same way in both cohorts.

Each archetype's outcome differences (its mean against the other
archetypes' members, Welch) in the original cohort, in the new cohort as the
model assigns it and in the new cohort as refitted, set side by side.  The
original cohort's differences come from its run's ``profiles.csv``, not from
its answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..vocabulary import NOISE
from ._agreement import ALPHA, MIN_MATCH_JACCARD, _holm

OUTCOME_COLUMNS = ["method", "archetype", "outcome", "refit_archetype", "match_jaccard",
                   "original_n", "original_diff", "original_ci_low", "original_ci_high",
                   "original_p", "original_p_adjusted",
                   "transferred_n", "transferred_diff", "transferred_ci_low", "transferred_ci_high",
                   "transferred_p", "transferred_p_adjusted",
                   "refit_n", "refit_diff", "refit_ci_low", "refit_ci_high", "refit_p", "refit_p_adjusted",
                   "same_sign", "significant_original", "significant_refit", "verdict"]


def _welch_vs_rest(n1, m1, v1, n2, m2, v2) -> dict:
    """Mean difference (group - rest) with a Welch 95% interval and p-value."""
    if n1 < 2 or n2 < 2 or not np.isfinite(v1 + v2):
        return {"n": int(n1), "diff": m1 - m2 if n1 and n2 else np.nan, "ci_low": np.nan,
                "ci_high": np.nan, "p": np.nan}
    se2 = v1 / n1 + v2 / n2
    diff = m1 - m2
    if se2 <= 0:
        return {"n": int(n1), "diff": diff, "ci_low": diff, "ci_high": diff, "p": np.nan}
    df = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    se = np.sqrt(se2)
    q = stats.t.ppf(0.975, df)
    return {"n": int(n1), "diff": diff, "ci_low": diff - q * se, "ci_high": diff + q * se,
            "p": float(2 * stats.t.sf(abs(diff / se), df))}


def summaries_from_values(labels: np.ndarray, y: np.ndarray) -> dict:
    """``{archetype: (n, mean, variance)}`` of an outcome, noise and missing values left out."""
    out = {}
    ok = ~np.isnan(y) & (labels != NOISE)
    for a in sorted(set(labels[ok].tolist())):
        v = y[ok & (labels == a)]
        out[int(a)] = (len(v), float(v.mean()), float(v.var(ddof=1)) if len(v) > 1 else np.nan)
    return out


def effects_vs_rest(summary: dict) -> dict:
    """Per archetype: its mean minus the mean of the other archetypes' members (Welch).

    Computed from group sizes, means and variances, so that the original
    cohort's effects come from its run's ``profiles.csv`` without its raw
    answers.
    """
    out = {}
    for a, (n1, m1, v1) in summary.items():
        rest = [(n, m, v) for b, (n, m, v) in summary.items() if b != a and n > 0]
        n2 = sum(n for n, _, _ in rest)
        if n2 == 0:
            out[a] = _welch_vs_rest(n1, m1, v1, 0, np.nan, np.nan)
            continue
        m2 = sum(n * m for n, m, _ in rest) / n2
        ss = sum((n - 1) * (v if np.isfinite(v) else 0.0) + n * (m - m2) ** 2 for n, m, v in rest)
        v2 = ss / (n2 - 1) if n2 > 1 else np.nan
        out[a] = _welch_vs_rest(n1, m1, v1, n2, m2, v2)
    return out


def original_summaries(profiles: pd.DataFrame, method: str, outcome: str) -> dict:
    """``{archetype: (n, mean, variance)}`` from a run's ``profiles.csv``."""
    p = profiles[(profiles["method"] == method) & (profiles["outcome"] == outcome)
                 & (profiles["archetype"] != NOISE)]
    out = {}
    for a, g in p.groupby("archetype"):
        s = dict(zip(g["statistic"], g["value"]))
        if "n" in s and "mean" in s:
            sd = s.get("sd", np.nan)
            out[int(a)] = (int(s["n"]), float(s["mean"]), float(sd) ** 2 if pd.notna(sd) else np.nan)
    return out


def outcome_replication(method: str, original: dict, transferred: dict, refit: dict,
                        matching: dict, jaccard: dict | None = None,
                        min_jaccard: float = MIN_MATCH_JACCARD) -> pd.DataFrame:
    """Each original archetype's outcome differences, original vs new, side by side.

    Parameters
    ----------
    original, transferred, refit : dict
        ``{outcome: {archetype: (n, mean, variance)}}`` in the original
        cohort, in the new cohort as the saved model assigns it, and in the
        new cohort as refitted.
    matching : dict
        Refitted archetype -> original archetype.
    jaccard : dict, optional
        Refitted archetype -> Jaccard similarity with its original match
        (``match_jaccard``); by default every match counts as 1.
    min_jaccard : float
        Only a refitted archetype matched with at least this Jaccard stands
        for its original one: below it a difference cannot replicate.

    Every effect is the archetype's mean minus the mean of the members of
    the other archetypes (noise left out), with a Welch 95% interval; p
    values are Holm-corrected over archetypes and outcomes within each
    column family.  An original difference replicates when the matched
    refitted archetype, matched with at least ``min_jaccard``, differs in
    the same direction and both are significant after correction.
    """
    to_refit = {o: r for r, o in matching.items()}
    quality = {o: (1.0 if jaccard is None else float(jaccard.get(r, np.nan))) for r, o in matching.items()}
    rows = []
    for outcome in original:
        eo = effects_vs_rest(original[outcome])
        et = effects_vs_rest(transferred.get(outcome, {}))
        er = effects_vs_rest(refit.get(outcome, {}))
        archetypes = sorted(set(eo) | set(et))
        for a in archetypes:
            row = {"method": method, "archetype": a, "outcome": outcome,
                   "refit_archetype": to_refit.get(a, pd.NA), "match_jaccard": quality.get(a, np.nan)}
            for prefix, effects, key in (("original", eo, a), ("transferred", et, a),
                                         ("refit", er, to_refit.get(a))):
                e = effects.get(key, {}) if key is not None else {}
                row[f"{prefix}_n"] = e.get("n", 0)
                for stat in ("diff", "ci_low", "ci_high"):
                    row[f"{prefix}_{stat}"] = e.get(stat, np.nan)
                row[f"{prefix}_p"] = e.get("p", np.nan)
            rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in OUTCOME_COLUMNS
                                      if not c.endswith("_p_adjusted")
                                      and c not in ("same_sign", "significant_original",
                                                    "significant_refit", "verdict")])
    for prefix in ("original", "transferred", "refit"):
        out[f"{prefix}_p_adjusted"] = _holm(out[f"{prefix}_p"].to_numpy()) if len(out) else []
    out["same_sign"] = np.sign(out["original_diff"]) == np.sign(out["refit_diff"])
    out["significant_original"] = out["original_p_adjusted"] < ALPHA
    out["significant_refit"] = out["refit_p_adjusted"] < ALPHA

    def verdict(r) -> str:
        if pd.isna(r["refit_archetype"]):
            return "archetype not found by the refit"
        if not r["match_jaccard"] >= min_jaccard:
            return f"matched archetype too different (Jaccard {r['match_jaccard']:.2f} < {min_jaccard})"
        if not r["significant_original"]:
            return ("difference only in the new cohort" if r["significant_refit"]
                    else "no difference in either cohort")
        if r["same_sign"] and r["significant_refit"]:
            return "replicated"
        if r["same_sign"]:
            return "same direction, not significant in the new cohort"
        return "reversed" if r["significant_refit"] else "not replicated"

    out["verdict"] = [verdict(r) for _, r in out.iterrows()] if len(out) else []
    return out[OUTCOME_COLUMNS]

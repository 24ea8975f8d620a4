"""Carrying a fitted segmentation to a new cohort, refitting there, and comparing.

A replication answers one question: do the archetypes found in one cohort
turn up again in another, and do they differ in anxiety, depression and
sleep the same way?  It has three parts:

1. *Transfer.*  The saved model assigns every new respondent: the feature
   encoder, an embedding into the saved UMAP space, HDBSCAN's approximate
   prediction, the mixture's posteriors and the nearest K-Means centre.
2. *Refit.*  The same experiment (same config, same seed) is fitted on the
   new cohort alone.
3. *Compare.*  Refitted archetypes are matched to transferred ones
   (Hungarian assignment on the contingency table), prediction strength
   (Tibshirani & Walther, 2005) and in-group proportion (Kapp & Tibshirani,
   2007) say whether the structure replicates, archetype shares are compared
   between the cohorts, and the outcome differences of each archetype are
   set side by side.

A new respondent's archetype does not depend on who else is in the batch.
UMAP's own ``transform`` refines new points by stochastic gradient descent
whose random stream and negative samples run over the whole batch, so the
same respondent can land elsewhere when assigned with others.
:func:`embed_new` therefore uses UMAP's initialisation step alone: a new
point is placed at the membership-weighted mean of the training embedding of
its ``n_neighbors`` exact nearest training points (weights from UMAP's own
``smooth_knn_dist`` and ``compute_membership_strengths``, computed for each
point on its own), and a new answer pattern identical to a training one
lands exactly on it.

The model pickle can run code when loaded: :func:`load_model` checks its
SHA-256 against ``manifest.json`` first and refuses a file that does not
match.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment

from .errors import SegmentError
from .predict import (  # noqa: F401 - prediction sits beside the fit; re-exported here
    KNN_CHUNK, TRANSFER_COLUMNS, assign, check_features, embed_new, gmm_posteriors, held_out_transfer,
    model_features, nearest_training, transfer,
)

PS_THRESHOLD = 0.8      # prediction strength at or above which archetypes replicate
MIN_MATCH_JACCARD = 0.5  # a refitted archetype stands for an original one only from this Jaccard on
IGP_NULL_DRAWS = 49     # structure-free versions of the new cohort behind each in-group proportion
ALPHA = 0.05
CORRECTION = "holm"
OUTPUT_FILES = ("transfer_assignments.csv", "matching.csv", "prediction_strength.csv", "shares.csv",
                "outcome_replication.csv", "replication.json", "report.html")

MATCHING_COLUMNS = ["method", "refit_archetype", "original_archetype", "n_refit", "n_transferred",
                    "n_both", "jaccard", "matched", "in_group_proportion", "n_in_group",
                    "igp_null_mean", "igp_null_p95", "igp_null_draws", "igp_p_value"]
PS_COLUMNS = ["method", "k_model", "k_refit", "k", "refit_archetype", "n", "n_pairs",
              "prediction_strength", "is_minimum"]
SHARES_COLUMNS = ["method", "archetype", "group", "n_original", "share_original", "n_new", "share_new",
                  "difference", "ci_low", "ci_high", "z", "p_value", "p_adjusted", "reject"]
OUTCOME_COLUMNS = ["method", "archetype", "outcome", "refit_archetype", "match_jaccard",
                   "original_n", "original_diff", "original_ci_low", "original_ci_high",
                   "original_p", "original_p_adjusted",
                   "transferred_n", "transferred_diff", "transferred_ci_low", "transferred_ci_high",
                   "transferred_p", "transferred_p_adjusted",
                   "refit_n", "refit_diff", "refit_ci_low", "refit_ci_high", "refit_p", "refit_p_adjusted",
                   "same_sign", "significant_original", "significant_refit", "verdict"]


# --------------------------------------------------------------------------
# loading the model

def load_model(run_dir) -> tuple:
    """The fitted :class:`~segment.pipeline.Segmentation` of a run and its manifest.

    The pickle's SHA-256 is checked against ``manifest.json`` before it is
    unpickled (unpickling can run code); a mismatch is refused.

    Returns
    -------
    (Segmentation, dict)

    Raises
    ------
    SegmentError
        The run directory, its manifest or its model is missing, or the model
        file does not match its checksum.
    """
    import json

    import joblib

    from .readers import file_sha256

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise SegmentError(f"{run_dir} is not a run directory: it has no manifest.json. Give the folder "
                           "that 'segment run' wrote (reports/<experiment>/<run id>).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SegmentError(f"{manifest_path}: not valid JSON ({exc}).") from None
    model = manifest.get("model")
    if not model or not model.get("path") or not model.get("sha256"):
        raise SegmentError(f"{manifest_path} records no model: the run fitted none (too few respondents?), "
                           "so there is nothing to replicate.")
    path = (run_dir / model["path"]).resolve()
    if run_dir.resolve() not in path.parents:
        raise SegmentError(f"{manifest_path}: model path {model['path']!r} points outside the run directory; "
                           "refusing to load it.")
    if not path.is_file():
        raise SegmentError(f"model file {path} named in {manifest_path} is missing.")
    found = file_sha256(path)
    if found != model["sha256"]:
        raise SegmentError(
            f"model file {path} does not match its checksum in manifest.json; refusing to load it "
            f"(expected sha256 {model['sha256']}, found {found}). The file was changed after the run: "
            "restore it or run the experiment again.")
    from .pipeline import Segmentation

    try:
        seg = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways; none is the user's code
        raise SegmentError(f"model file {path} cannot be read ({type(exc).__name__}: {exc}).") from None
    if not isinstance(seg, Segmentation):
        raise SegmentError(f"model file {path} holds a {type(seg).__name__}, not a segmentation written by "
                           "'segment run'; run the experiment again.")
    if "pca" not in vars(seg):
        seg.pca = None
    if "spaces" not in vars(seg):  # saved before segmentations recorded them: the run's config says
        cluster = manifest.get("config", {}).get("cluster", {})
        seg.spaces = {"gmm": cluster.get("gmm", {}).get("space", "embedding"),
                      "kmeans": cluster.get("kmeans", {}).get("space", "features")}
    return seg, manifest


# --------------------------------------------------------------------------
# comparison

def _holm(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        from statsmodels.stats.multitest import multipletests
        out[ok] = multipletests(p[ok], method=CORRECTION)[1]
    return out


def contingency_table(refit: np.ndarray, transferred: np.ndarray) -> pd.DataFrame:
    """Counts of refitted (rows) by transferred (columns) archetypes, noise left out."""
    keep = (refit != -1) & (transferred != -1)
    return pd.crosstab(pd.Series(refit[keep], name="refit"), pd.Series(transferred[keep], name="original"))


def match_archetypes(refit: np.ndarray, transferred: np.ndarray) -> dict:
    """Refitted archetype -> original archetype, maximising the respondents they share.

    Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`) on
    the contingency table of respondents neither labeling calls noise.
    """
    table = contingency_table(refit, transferred)
    if table.empty:
        return {}
    rows, cols = linear_sum_assignment(-table.to_numpy())
    return {int(table.index[r]): int(table.columns[c]) for r, c in zip(rows, cols)
            if table.iat[r, c] > 0}


def prediction_strength(refit: np.ndarray, transferred: np.ndarray) -> pd.DataFrame:
    """Prediction strength of each refitted archetype (Tibshirani & Walther, 2005).

    For every refitted archetype, the share of its pairs of members that the
    transferred model also puts in one archetype.  Noise is no archetype: a
    refit-noise respondent belongs to no archetype, and a pair in which the
    transferred model calls a member noise is not co-assigned.  The
    prediction strength of the segmentation is the minimum over archetypes
    (``is_minimum``); archetypes with fewer than two members have none.
    """
    rows = []
    for a in sorted(set(refit.tolist()) - {-1}):
        members = transferred[refit == a]
        n = len(members)
        counts = np.bincount(members[members != -1]) if (members != -1).any() else np.array([0])
        pairs = n * (n - 1)
        together = float((counts * (counts - 1)).sum())
        rows.append({"refit_archetype": int(a), "n": int(n), "n_pairs": int(pairs // 2),
                     "prediction_strength": together / pairs if pairs else float("nan")})
    out = pd.DataFrame(rows, columns=["refit_archetype", "n", "n_pairs", "prediction_strength"])
    ps = out["prediction_strength"]
    out["is_minimum"] = ps.eq(ps.min()) if ps.notna().any() else False
    return out


def in_group_proportion(X: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """In-group proportion of each archetype (Kapp & Tibshirani, 2007).

    The share of an archetype's members whose nearest other respondent (in
    ``X``, Euclidean) has the same archetype.  Noise is not an archetype.
    """
    from sklearn.neighbors import NearestNeighbors

    rows = []
    if len(X) >= 2:
        nn = NearestNeighbors(n_neighbors=2).fit(X)
        _, ind = nn.kneighbors(X)
        idx = np.arange(len(X))
        nearest = np.where(ind[:, 0] == idx, ind[:, 1], ind[:, 0])
        same = labels[nearest] == labels
        for a in sorted(set(labels.tolist()) - {-1}):
            m = labels == a
            rows.append({"archetype": int(a), "n_in_group": int(m.sum()),
                         "in_group_proportion": float(same[m].mean())})
    return pd.DataFrame(rows, columns=["archetype", "n_in_group", "in_group_proportion"])


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return V * np.sqrt(np.clip(w, 0.0, None))


def structure_free(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cohort shaped like ``X`` without clusters: Gaussian, with its mean and covariance.

    Rows are drawn from a multivariate normal and then transformed so that
    their sample mean and covariance equal those of ``X`` exactly.  A
    single Gaussian has no clusters, while the items keep their
    correlations (a continuum survives).  Permuting principal components
    or columns would not do: the scores of a clustered cohort are
    multimodal, and any product of multimodal margins is clustered again.
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Z = rng.standard_normal((n, p))
    Z -= Z.mean(axis=0)
    w, V = np.linalg.eigh(np.cov(Z, rowvar=False).reshape(p, p))
    Z = Z @ (V / np.sqrt(w)) @ V.T  # sample covariance exactly the identity
    return X.mean(axis=0) + Z @ _sqrt_psd(np.cov(X, rowvar=False).reshape(p, p)).T


def in_group_proportion_null(model, X_new: np.ndarray, observed: dict, *, draws: int = IGP_NULL_DRAWS,
                             seed: int = 0) -> pd.DataFrame:
    """In-group proportions of structure-free versions of the new cohort, and p-values.

    Kapp & Tibshirani (2007) judge an in-group proportion against its
    distribution where the new cohort has no clusters.  Each of ``draws``
    null cohorts is :func:`structure_free` (a Gaussian with the mean and
    covariance of the new cohort's encoded features), assigned by the model
    exactly as the new cohort was, and its in-group proportions computed.

    Parameters
    ----------
    model : Segmentation
    X_new : ndarray
        The new cohort's encoded features.
    observed : dict
        ``{(method, archetype): in-group proportion}`` of the new cohort.
    draws : int
    seed : int

    Returns
    -------
    DataFrame
        Columns ``method, archetype, igp_null_mean, igp_null_p95,
        igp_null_draws, igp_p_value``.  A null cohort the model gives no
        member of an archetype has no proportion for it; ``igp_null_draws``
        counts those that have one.  The p-value is ``(1 + #{null >=
        observed}) / (1 + draws used)``.
    """
    col_of = {"hdbscan": "hdbscan_label", "gmm": "gmm_component", "kmeans": "kmeans_cluster"}
    rng = np.random.default_rng(seed)
    null = {key: [] for key in observed}
    methods = sorted({m for m, _ in observed})
    for _ in range(draws):
        Xn = structure_free(X_new, rng)
        E, _ = embed_new(model, Xn)
        labels = assign(model, Xn, E)
        for method in methods:
            if col_of[method] not in labels:
                continue
            igp = in_group_proportion(Xn, labels[col_of[method]].to_numpy()).set_index("archetype")
            for (m, a) in observed:
                if m == method and a in igp.index:
                    null[(m, a)].append(float(igp.loc[a, "in_group_proportion"]))
    rows = []
    for (m, a), obs in observed.items():
        v = np.asarray(null[(m, a)])
        used = int(v.size)
        rows.append({"method": m, "archetype": a,
                     "igp_null_mean": float(v.mean()) if used else np.nan,
                     "igp_null_p95": float(np.quantile(v, 0.95)) if used else np.nan,
                     "igp_null_draws": used,
                     "igp_p_value": (1 + int((v >= obs).sum())) / (1 + used)
                     if used and np.isfinite(obs) else np.nan})
    return pd.DataFrame(rows, columns=["method", "archetype", "igp_null_mean", "igp_null_p95",
                                       "igp_null_draws", "igp_p_value"])


def share_changes(original: np.ndarray, new: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Archetype shares in the original cohort and in the new one.

    Both labelings should come from the same assignment: the original
    cohort held out and transferred (:func:`held_out_transfer`) against the
    new cohort transferred (:func:`transfer`); in-sample labels of the fit
    differ from transferred ones systematically.  Per archetype (noise included as a group of its own): a two-proportion z
    test (pooled standard error) with Holm's correction over the archetypes,
    and a 95% Wald interval of the difference (new - original).  Over all
    archetypes: Pearson's chi-square test of homogeneity of the 2 x K table.
    """
    groups = sorted(set(original.tolist()) | set(new.tolist()))
    n1, n2 = len(original), len(new)
    rows = []
    for g in groups:
        x1, x2 = int((original == g).sum()), int((new == g).sum())
        p1, p2 = x1 / n1 if n1 else np.nan, x2 / n2 if n2 else np.nan
        pooled = (x1 + x2) / (n1 + n2) if n1 + n2 else np.nan
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) if n1 and n2 else np.nan
        se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) if n1 and n2 else np.nan
        z = (p2 - p1) / se0 if se0 and se0 > 0 else np.nan
        rows.append({"archetype": int(g), "group": "noise" if g == -1 else "archetype",
                     "n_original": x1, "share_original": p1, "n_new": x2, "share_new": p2,
                     "difference": p2 - p1, "ci_low": p2 - p1 - 1.959964 * se,
                     "ci_high": p2 - p1 + 1.959964 * se, "z": z,
                     "p_value": 2 * stats.norm.sf(abs(z)) if np.isfinite(z) else np.nan})
    table = pd.DataFrame(rows, columns=SHARES_COLUMNS[1:-2])
    table["p_adjusted"] = _holm(table["p_value"].to_numpy()) if len(table) else []
    table["reject"] = table["p_adjusted"] < ALPHA
    test = {"test": "chi-square test of homogeneity", "statistic": float("nan"), "df": 0,
            "p_value": float("nan")}
    counts = np.array([table["n_original"], table["n_new"]])
    if counts.shape[1] >= 2 and n1 and n2:
        chi2, p, dof, _ = stats.chi2_contingency(counts, correction=False)
        test.update(statistic=float(chi2), df=int(dof), p_value=float(p))
    return table, test


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
    ok = ~np.isnan(y) & (labels != -1)
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
                 & (profiles["archetype"] != -1)]
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


# --------------------------------------------------------------------------
# the replication

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


def _codebook_for(run_dir: Path, manifest: dict, cohort_path, codebook_path):
    from .readers import file_sha256

    if codebook_path is not None:
        return Path(codebook_path)
    name = (manifest.get("input") or {}).get("codebook")
    sha = (manifest.get("input") or {}).get("codebook_sha256")
    places = [run_dir / "codebook.toml", run_dir / "input" / "codebook.toml"]
    if name:
        if cohort_path is not None:
            places.insert(0, Path(cohort_path).parent / name)
        places += [run_dir / name, run_dir / "input" / name]
    for p in places:
        if p.is_file() and (sha is None or file_sha256(p) == sha):
            return p
    raise SegmentError(
        f"the codebook of the new cohort was not given and the run's codebook ({name or 'unknown'}, "
        "same checksum) is neither beside the cohort file nor in the run directory. Give it with "
        "--codebook.")


def _versions_differ(manifest: dict) -> list[str]:
    from .experiment import package_versions

    then, now = manifest.get("packages") or {}, package_versions()
    out = []
    for name in sorted(set(then) | set(now)):
        if name == "segment":
            continue
        if then.get(name) != now.get(name):
            out.append(f"{name} {then.get(name) or 'absent'} when the model was fitted, "
                       f"{now.get(name) or 'absent'} now")
    if out:
        return ["package versions differ from the run's (results may differ for that reason alone): "
                + "; ".join(out) + "."]
    return []


def _refit_at_model_k(method, seg, refit, config, ss, k_model, k_refit) -> tuple:
    """Labels of the new cohort clustered at the model's k, for the prediction strength.

    Prediction strength compares two partitions with the same k (Tibshirani &
    Walther, 2005).  The mixture and K-Means are refitted at the model's k in
    the refit's space; HDBSCAN has no k to set, so its refit stays as it is.
    Returns (labels per respondent, k used, note).
    """
    from .cluster import fit_kmeans, select_gmm
    from .pipeline import stage_seed

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
    from .cohort import Cohort, load_cohort
    from .config import config_from_dict
    from .experiment import exclusions
    from .pipeline import METHODS, fit_segmentation

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if seed is not None and seed < 0:
        raise SegmentError(f"--seed must be >= 0; got {seed}.")
    if not isinstance(cohort_path, Cohort) and not Path(cohort_path).is_file():
        raise SegmentError(f"--cohort: survey file not found: {cohort_path}")
    seg, manifest = load_model(run_dir)
    config = config_from_dict(manifest["config"])
    warn = _versions_differ(manifest)
    timings = {}

    # the new cohort, validated as the original was
    if isinstance(cohort_path, Cohort):
        cohort, cohort_file = cohort_path, None
    else:
        cohort_file = Path(cohort_path)
        codebook = _codebook_for(run_dir, manifest, cohort_file, codebook_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cohort = load_cohort(cohort_file, codebook, resubmissions=config.experiment.resubmissions)
        warn += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    available = pd.concat([cohort.features, cohort.outcomes, cohort.covariates], axis=1)
    available = available.loc[:, ~available.columns.duplicated()]
    where = cohort.source.name if cohort.source is not None else "the new cohort"
    check_features(seg, available.columns, where)
    features = available[model_features(seg)]
    warn += _category_notes(seg, cohort)
    reason = exclusions(features, config)
    fitted_again = int(pd.Index(cohort.ids[(reason == "").to_numpy()]).isin(seg.ids).sum())
    if fitted_again and cohort.sha256 is not None and cohort.sha256 == manifest.get("input", {}).get("sha256"):
        warn.append(f"{fitted_again} respondent(s) of the new cohort are ones the model was fitted on (the same "
                    "file): agreement with itself says nothing about replication. Use a new cohort, or "
                    "--split-half.")
    analysed = features[reason == ""]
    if len(analysed) < 2:
        raise SegmentError(f"{where}: {len(analysed)} respondent(s) can be analysed; a replication needs more.")

    t = time.perf_counter()
    transferred, X_new, _ = transfer(seg, analysed, return_embedding=True)
    timings["transfer_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    refit_seed = int(config.experiment.seed if seed is None else seed)
    ss = np.random.SeedSequence(refit_seed)
    refit = fit_segmentation(analysed, cohort.codebook, config,
                             np.random.SeedSequence(ss.entropy, spawn_key=(0,)))
    timings["refit_seconds"] = time.perf_counter() - t

    # one row per new respondent
    assignments = pd.DataFrame(index=cohort.ids)
    assignments["excluded"] = (reason != "").to_numpy()
    assignments["exclusion_reason"] = reason.to_numpy()
    for c in transferred.columns:
        assignments[c] = transferred[c].reindex(cohort.ids)
    refit_labels = refit.labels_frame()
    for m in refit_labels.columns:
        assignments[f"refit_{m}"] = refit_labels[m].reindex(cohort.ids)
    for c in assignments.columns:
        if c.endswith(("_label", "_component", "_cluster")) or c.startswith("refit_"):
            assignments[c] = assignments[c].astype("Int64")
    assignments.index.name = "respondent"

    profiles_csv = run_dir / "profiles.csv"
    profiles = pd.read_csv(profiles_csv) if profiles_csv.is_file() else pd.DataFrame(
        columns=["method", "archetype", "outcome", "statistic", "value"])
    outcome_names = list(config.profile.outcomes) or sorted(profiles["outcome"].dropna().unique())
    absent = [o for o in outcome_names if o not in cohort.outcomes.columns]
    if absent:
        warn.append(f"outcome(s) {', '.join(absent)} of the original run are not in the new cohort: "
                    "their differences cannot be compared.")
    outcome_names = [o for o in outcome_names if o not in absent]
    y_new = cohort.outcomes.loc[analysed.index]

    t = time.perf_counter()
    held_out = held_out_transfer(seg)
    timings["held_out_transfer_seconds"] = time.perf_counter() - t

    col_of = {"hdbscan": "hdbscan_label", "gmm": "gmm_component", "kmeans": "kmeans_cluster"}
    used = [m for m in METHODS if seg.labels(m) is not None and col_of[m] in transferred
            and m in refit_labels]
    igps = {m: in_group_proportion(X_new, transferred[col_of[m]].to_numpy()).set_index("archetype")
            for m in used}
    t = time.perf_counter()
    igp_null = in_group_proportion_null(
        seg, X_new, {(m, int(a)): float(v) for m in used for a, v in igps[m]["in_group_proportion"].items()},
        seed=int(np.random.SeedSequence(ss.entropy, spawn_key=(1,)).generate_state(1)[0])
    ).set_index(["method", "archetype"])
    timings["igp_null_seconds"] = time.perf_counter() - t

    def null_of(m, o) -> dict:
        cols = ["igp_null_mean", "igp_null_p95", "igp_null_draws", "igp_p_value"]
        if o is None or (m, o) not in igp_null.index:
            return {c: (0 if c == "igp_null_draws" else np.nan) for c in cols}
        return igp_null.loc[(m, o), cols].to_dict()

    matching_rows, ps_tables, share_tables, outcome_tables = [], [], [], []
    methods, tests, k_notes = [], {}, {}
    for m in used:
        original_labels = seg.labels(m)
        T = transferred[col_of[m]].to_numpy()
        R = refit_labels[m].to_numpy()
        match = match_archetypes(R, T)
        table = contingency_table(R, T)
        igp = igps[m]
        refit_ids = sorted(set(R.tolist()) - {-1})
        orig_ids = sorted(set(original_labels.tolist()) - {-1})
        for r in refit_ids:
            o = match.get(r)
            n_both = int(table.loc[r, o]) if o is not None else 0
            n_r, n_t = int((R == r).sum()), int((T == o).sum()) if o is not None else 0
            jac = n_both / (n_r + n_t - n_both) if o is not None else np.nan
            matching_rows.append({"method": m, "refit_archetype": r, "original_archetype": o,
                                  "n_refit": n_r, "n_transferred": n_t, "n_both": n_both,
                                  "jaccard": jac, "matched": bool(jac >= MIN_MATCH_JACCARD),
                                  "in_group_proportion": igp["in_group_proportion"].get(o, np.nan)
                                  if o is not None else np.nan,
                                  "n_in_group": igp["n_in_group"].get(o, 0) if o is not None else 0,
                                  **null_of(m, o)})
        for o in orig_ids:
            if o not in match.values():
                matching_rows.append({"method": m, "refit_archetype": None, "original_archetype": o,
                                      "n_refit": 0, "n_transferred": int((T == o).sum()), "n_both": 0,
                                      "jaccard": 0.0, "matched": False,
                                      "in_group_proportion": igp["in_group_proportion"].get(o, np.nan),
                                      "n_in_group": int(igp["n_in_group"].get(o, 0)), **null_of(m, o)})
        k_refit = len(refit_ids)
        R_ps, k_ps = R, k_refit
        if k_refit != len(orig_ids):
            R_ps, k_ps, k_notes[m] = _refit_at_model_k(m, seg, refit, config, ss, len(orig_ids), k_refit)
        ps = prediction_strength(R_ps, T)
        ps.insert(0, "method", m)
        ps.insert(1, "k_model", len(orig_ids))
        ps.insert(2, "k_refit", k_refit)
        ps.insert(3, "k", k_ps)
        ps_tables.append(ps)
        shares, test = share_changes(held_out[col_of[m]].to_numpy(), T)
        shares.insert(0, "method", m)
        share_tables.append(shares)
        tests[m] = test
        original, trans, refitted = {}, {}, {}
        for o in outcome_names:
            y = y_new[o].to_numpy(dtype=float)
            original[o] = original_summaries(profiles, m, o)
            trans[o] = summaries_from_values(T, y)
            refitted[o] = summaries_from_values(R, y)
        jaccards = {int(r["refit_archetype"]): r["jaccard"] for r in matching_rows
                    if r["method"] == m and r["refit_archetype"] is not None}
        out = outcome_replication(m, original, trans, refitted, match, jaccards)
        outcome_tables.append(out)
        methods.append(_method_verdict(m, len(orig_ids), len(refit_ids), ps, out, k_notes.get(m)))

    def cat(frames, columns):
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)

    matching = cat([pd.DataFrame(matching_rows)], MATCHING_COLUMNS)
    for c in ("refit_archetype", "original_archetype"):
        matching[c] = matching[c].astype("Int64")
    ps_table = cat(ps_tables, PS_COLUMNS)
    shares_table = cat(share_tables, SHARES_COLUMNS)
    outcomes_table = cat(outcome_tables, OUTCOME_COLUMNS)
    outcomes_table["refit_archetype"] = outcomes_table["refit_archetype"].astype("Int64")

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

    summary = {
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
        "refit_seed": refit_seed,
        "transfer": {"method": "exact nearest training patterns, membership-weighted mean of their "
                               "embedding (UMAP's transform initialisation, no stochastic refinement); "
                               "batch independent",
                     "hdbscan_noise_share": float(np.mean(transferred["hdbscan_label"] == -1))},
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warn + list(refit.notes),
        "note": note or {},
    }
    rep = Replication(assignments=assignments, matching=matching, prediction_strength=ps_table,
                      shares=shares_table, outcomes=outcomes_table, summary=summary, verdict=verdict,
                      replicated=replicated, warnings=summary["warnings"])
    if write:
        summary["timings"]["total_seconds"] = round(time.perf_counter() - started, 4)
        rep.path = write_replication(run_dir, rep, config)
    return rep


def _category_notes(seg, cohort) -> list[str]:
    notes = []
    known = {it.name: it for it in cohort.codebook.items}
    for col, cats in list((seg.encoder.categorical or {}).items()) + list((seg.encoder.multiselect or {}).items()):
        item = known.get(col)
        if item is None or not getattr(item, "categories", None):
            continue
        new = [c for c in item.categories if c not in set(cats)]
        if new:
            notes.append(f"'{col}': answer(s) {', '.join(map(repr, new))} of the new codebook were not in "
                         "the model; respondents giving them get no indicator for them.")
    return notes


def write_replication(run_dir: Path, rep: Replication, config=None) -> Path:
    """Write a replication into ``<run_dir>/replications/<id>/`` via a working folder."""
    from .experiment import new_working_folder, write_csv, write_json

    final, tmp = new_working_folder(Path(run_dir) / "replications", datetime.now().strftime("%Y%m%d-%H%M%S"))
    try:
        rep.summary["replication_id"] = final.name
        rep.summary["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_csv(tmp / "transfer_assignments.csv", rep.assignments, index=True)
        write_csv(tmp / "matching.csv", rep.matching)
        write_csv(tmp / "prediction_strength.csv", rep.prediction_strength)
        write_csv(tmp / "shares.csv", rep.shares)
        write_csv(tmp / "outcome_replication.csv", rep.outcomes)
        write_json(tmp / "replication.json", rep.summary)
        min_cell = config.report.min_cell if config is not None else 10
        (tmp / "report.html").write_text(render_report(rep, min_cell=min_cell), encoding="utf-8")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------
# the report

_TEMPLATE = """{% if not fragment %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Replication {{ s.replication_id or "" }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.verdict{font-size:1.1rem;padding:.75rem 1rem;border-left:5px solid}
.yes{border-color:#2a7d2a;background:#eef7ee}.no{border-color:#b03030;background:#fbeeee}
.warn{background:#fff7e0;border-left:5px solid #d9a400;padding:.5rem 1rem}.muted{color:#666;font-size:.85rem}
</style></head><body>{% endif %}
<div class="segment-replication">
<h1>Replication of run {{ s.run.run_id or "" }}</h1>
<p class="verdict {{ 'yes' if rep.replicated else 'no' }}">{{ rep.verdict }}</p>
<p class="muted">New cohort: {{ s.new_cohort.file or "(loaded in memory)" }}, {{ s.new_cohort.n }} respondents,
{{ s.new_cohort.n_analysed }} analysed, {{ s.new_cohort.n_excluded }} excluded. Refit seed {{ s.refit_seed }}.
{% if s.note %}{% for k, v in s.note.items() %}{{ k }}: {{ v }}. {% endfor %}{% endif %}</p>
{% if rep.warnings %}<div class="warn"><strong>Warnings</strong><ul>{% for w in rep.warnings %}<li>{{ w }}</li>{% endfor %}</ul></div>{% endif %}

<h2>Per method</h2>
<table><tr><th class="l">method</th><th>archetypes (model)</th><th>archetypes (refit)</th><th>prediction strength (at k)</th><th class="l">verdict</th></tr>
{% for m in s.methods %}<tr><td class="l">{{ m.method }}</td><td>{{ m.archetypes_original }}</td><td>{{ m.archetypes_refit }}</td>
<td>{{ m.prediction_strength|num(2) }} ({{ m.prediction_strength_k }})</td><td class="l">{{ m.verdict }}</td></tr>{% endfor %}</table>

<h2>Prediction strength</h2>
<p class="muted">For each archetype found by refitting on the new cohort: the share of its pairs of members that the
original model, applied to the same respondents, also puts together (Tibshirani &amp; Walther, 2005). The minimum over
archetypes is the prediction strength; {{ s.prediction_strength_threshold }} or more indicates archetypes that replicate.
It is defined for two partitions with the same k: when the refit chose another k, the mixture and K-Means are refitted
at the model's k for it (column k); HDBSCAN has no k to set, and the verdict says so.</p>
<table><tr><th class="l">method</th><th>k</th><th>refit archetype</th><th>n</th><th>prediction strength</th></tr>
{% for r in ps %}<tr><td class="l">{{ r.method }}</td><td>{{ r.k }}</td><td>{{ r.refit_archetype }}</td><td>{{ r.n|cell }}</td>
<td>{{ r.prediction_strength|num(2) }}{% if r.is_minimum %} (min){% endif %}</td></tr>{% endfor %}</table>

<h2>Matching of refitted to original archetypes</h2>
<p class="muted">Hungarian assignment on the respondents the two labelings share; Jaccard = shared / union; a refitted
archetype stands for its original one only with a Jaccard of at least {{ s.min_match_jaccard }} (matched). In-group
proportion = share of an original archetype's new members whose nearest new respondent (scaled features) has the same
archetype (Kapp &amp; Tibshirani, 2007), against its null reference: {{ s.igp_null_draws }} structure-free versions of the
new cohort (Gaussian, with the new cohort's means and covariances of the encoded features: correlations kept,
clusters gone), assigned by the model the same way; p = (1 + null proportions at least as high) / (1 + null cohorts).</p>
<table><tr><th class="l">method</th><th>refit</th><th>original</th><th>n refit</th><th>n transferred</th><th>shared</th><th>Jaccard</th><th>matched</th><th>in-group proportion</th><th>null mean [95th pct]</th><th>p</th></tr>
{% for r in matching %}<tr><td class="l">{{ r.method }}</td><td>{{ r.refit_archetype|dash }}</td><td>{{ r.original_archetype|dash }}</td>
<td>{{ r.n_refit|cell }}</td><td>{{ r.n_transferred|cell }}</td><td>{{ r.n_both|cell }}</td><td>{{ r.jaccard|num(2) }}</td><td>{{ 'yes' if r.matched else 'no' }}</td><td>{{ r.in_group_proportion|num(2) }}</td>
<td>{{ r.igp_null_mean|num(2) }} [{{ r.igp_null_p95|num(2) }}]</td><td>{{ r.igp_p_value|p }}</td></tr>{% endfor %}</table>

<h2>Archetype shares</h2>
<p class="muted">Shares of the original cohort and of the new cohort, both as the model assigns a new respondent:
each original respondent held out (placed by its nearest other training respondents) and assigned, against the new
cohort transferred, so that like is compared with like. Per archetype a
two-proportion z test, {{ s.correction|capitalize }}-corrected over archetypes, with a 95% Wald interval of the difference;
over all archetypes a chi-square test of homogeneity.</p>
{% for m, t in s.share_tests.items() %}<p>{{ m }}: &chi;&sup2;({{ t.df }}) = {{ t.statistic|num(2) }}, p = {{ t.p_value|p }}</p>{% endfor %}
<table><tr><th class="l">method</th><th>archetype</th><th>share original</th><th>share new</th><th>difference [95% CI]</th><th>p (corrected)</th></tr>
{% for r in shares %}<tr><td class="l">{{ r.method }}</td><td>{{ 'noise' if r.archetype == -1 else r.archetype }}</td>
<td>{{ r.share_original|pct }}</td><td>{{ r.share_new|pct }}</td><td>{{ r.difference|pct }} [{{ r.ci_low|pct }}, {{ r.ci_high|pct }}]</td><td>{{ r.p_adjusted|p }}</td></tr>{% endfor %}</table>

<h2>Outcome differences, original and new</h2>
<p class="muted">Each archetype's mean minus the mean of the other archetypes' members, Welch 95% intervals,
p values {{ s.correction|capitalize }}-corrected over archetypes and outcomes. "Transferred": the new cohort as the original
model assigns it; "refit": the matched archetype of the refit. A difference replicates when the refitted archetype is
matched with a Jaccard of at least {{ s.min_match_jaccard }}, has the same sign and is significant in both cohorts.</p>
<table><tr><th class="l">method</th><th>archetype</th><th class="l">outcome</th><th>original</th><th>transferred</th><th>refit</th><th class="l">verdict</th></tr>
{% for r in outcomes %}<tr><td class="l">{{ r.method }}</td><td>{{ r.archetype }}{% if r.refit_archetype is not none %} &harr; {{ r.refit_archetype }}{% endif %}</td><td class="l">{{ r.outcome }}</td>
<td>{{ r.original_diff|num(2) }} [{{ r.original_ci_low|num(2) }}, {{ r.original_ci_high|num(2) }}]{{ r.original_p_adjusted|star }}</td>
<td>{{ r.transferred_diff|num(2) }} [{{ r.transferred_ci_low|num(2) }}, {{ r.transferred_ci_high|num(2) }}]{{ r.transferred_p_adjusted|star }}</td>
<td>{{ r.refit_diff|num(2) }} [{{ r.refit_ci_low|num(2) }}, {{ r.refit_ci_high|num(2) }}]{{ r.refit_p_adjusted|star }}</td>
<td class="l">{{ r.verdict }}</td></tr>{% endfor %}</table>
<p class="muted">* corrected p &lt; {{ s.alpha }}. Counts below {{ min_cell }} are shown as &lt;{{ min_cell }}.</p>

<h2>Method</h2>
<p class="muted">New respondents were assigned with the saved model: its feature encoder; an embedding at the
membership-weighted mean of the training embedding of each respondent's exact nearest training answer patterns
(UMAP's transform initialisation without its stochastic refinement, so that a respondent's archetype does not depend on
who else is assigned with it); HDBSCAN's approximate prediction; the mixture's posteriors; the nearest K-Means centre.
The same experiment was then fitted on the new cohort alone and compared with the assignment.</p>
</div>
{% if not fragment %}</body></html>{% endif %}
"""


def render_report(rep: Replication, *, fragment: bool = False, min_cell: int = 10) -> str:
    """The replication report: one self-contained HTML page (or a fragment)."""
    import jinja2

    def isnum(v):
        return v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["num"] = lambda v, d=2: f"{v:.{d}f}" if isnum(v) else "–"
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%" if isnum(v) else "–"
    env.filters["p"] = lambda v: ("< 0.001" if v < 0.001 else f"{v:.3f}") if isnum(v) else "–"
    env.filters["star"] = lambda v: "*" if isnum(v) and v < ALPHA else ""
    env.filters["dash"] = lambda v: v if isnum(v) else "–"
    env.filters["cell"] = lambda v: (f"<{min_cell}" if 0 < v < min_cell else v) if isnum(v) else "–"

    def records(frame):
        return [{k: (None if (v is pd.NA or (isinstance(v, float) and np.isnan(v) and k.endswith("archetype")))
                     else v) for k, v in r.items()} for r in frame.to_dict("records")]

    return env.from_string(_TEMPLATE).render(
        rep=rep, s=rep.summary, fragment=fragment, min_cell=min_cell,
        ps=records(rep.prediction_strength), matching=records(rep.matching),
        shares=records(rep.shares), outcomes=records(rep.outcomes))


# --------------------------------------------------------------------------
# split-half replication

def split_half(config, *, seed: int | None = None, overrides: dict | None = None, quiet: bool = True,
               write: bool = True, command: str | None = None):
    """Split-half replication: fit on one random half of a cohort, replicate on the other.

    The experiment's cohort is loaded and validated once, its respondents are
    split by a seeded permutation (``seed``, by default the experiment's
    seed) into halves A (the first ``ceil(n / 2)``) and B; the experiment is
    run on A (a normal run directory) and replicated on B (written into that
    run's ``replications/``).  No answers are written out.

    Returns
    -------
    (Run, Replication)
    """
    from .config import ExperimentConfig, load_config
    from .experiment import prepare, run_experiment

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides)
    if seed is not None and seed < 0:
        raise SegmentError(f"--seed must be >= 0; got {seed}.")
    cohort = prepare(config).cohort
    split_seed = int(config.experiment.seed if seed is None else seed)
    order = np.random.default_rng(split_seed).permutation(cohort.n)
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


__all__ = ["Replication", "replicate", "transfer", "assign", "held_out_transfer", "load_model", "split_half",
           "embed_new", "in_group_proportion_null", "structure_free",
           "prediction_strength", "match_archetypes", "in_group_proportion", "share_changes",
           "outcome_replication", "gmm_posteriors", "check_features", "model_features"]

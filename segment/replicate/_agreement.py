"""Whether the archetypes of one cohort turn up in another: agreement statistics.

Refitted archetypes are matched to transferred ones (Hungarian assignment on
the contingency table), prediction strength (Tibshirani & Walther, 2005) and
in-group proportion (Kapp & Tibshirani, 2007) say whether the structure
replicates, and archetype shares are compared between the cohorts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment

from ..multitest import adjust_p_values
from ..predict import LABEL_COLUMN, assign, embed_new
from ..vocabulary import NOISE, NOISE_NAME

PS_THRESHOLD = 0.8      # prediction strength at or above which archetypes replicate
MIN_MATCH_JACCARD = 0.5  # a refitted archetype stands for an original one only from this Jaccard on
IGP_NULL_DRAWS = 49     # structure-free versions of the new cohort behind each in-group proportion
ALPHA = 0.05
CORRECTION = "holm"
SHARES_COLUMNS = ["method", "archetype", "group", "n_original", "share_original", "n_new", "share_new",
                  "difference", "ci_low", "ci_high", "z", "p_value", "p_adjusted", "reject"]


def _holm(p: np.ndarray) -> np.ndarray:
    return adjust_p_values(p, ALPHA, CORRECTION)[0]


def contingency_table(refit: np.ndarray, transferred: np.ndarray) -> pd.DataFrame:
    """Counts of refitted (rows) by transferred (columns) archetypes, noise left out."""
    keep = (refit != NOISE) & (transferred != NOISE)
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
    for a in sorted(set(refit.tolist()) - {NOISE}):
        members = transferred[refit == a]
        n = len(members)
        counts = np.bincount(members[members != NOISE]) if (members != NOISE).any() else np.array([0])
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
        for a in sorted(set(labels.tolist()) - {NOISE}):
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
    rng = np.random.default_rng(seed)
    null = {key: [] for key in observed}
    methods = sorted({m for m, _ in observed})
    for _ in range(draws):
        Xn = structure_free(X_new, rng)
        E, _ = embed_new(model, Xn)
        labels = assign(model, Xn, E)
        for method in methods:
            if LABEL_COLUMN[method] not in labels:
                continue
            igp = in_group_proportion(Xn, labels[LABEL_COLUMN[method]].to_numpy()).set_index("archetype")
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
    cohort held out and transferred
    (:func:`~segment.predict.held_out_transfer`) against the new cohort
    transferred (:func:`~segment.predict.transfer`); in-sample labels of the
    fit differ from transferred ones systematically.  Per archetype (noise
    included as a group of its own): a two-proportion z test (pooled
    standard error) with Holm's correction over the archetypes, and a 95%
    Wald interval of the difference (new - original).  Over all archetypes:
    Pearson's chi-square test of homogeneity of the 2 x K table.
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
        rows.append({"archetype": int(g), "group": NOISE_NAME if g == NOISE else "archetype",
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

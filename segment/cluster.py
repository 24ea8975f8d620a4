"""Clustering: HDBSCAN, Gaussian mixtures with model selection, K-Means.

Every function takes an array and plain parameters and returns a result
object; none of them knows about cohorts or experiments.  Internal indices
and agreement between methods are reported with the space they were
computed in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture

from .vocabulary import ARCHETYPE_METHODS, NOISE

INDEX_SAMPLE = 5000  # silhouette and DBCV are quadratic: computed on a sample above this


# --------------------------------------------------------------------------
# HDBSCAN

@dataclass
class HDBSCANResult:
    """Labels (noise = -1), membership probabilities and outlier scores."""

    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    min_cluster_size: int
    model: object = None
    soft_labels: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {NOISE}))

    @property
    def noise_share(self) -> float:
        return float(np.mean(self.labels == NOISE)) if len(self.labels) else 0.0


def resolve_min_cluster_size(value, n: int) -> int:
    """An absolute minimum cluster size from an int or a share of ``n``."""
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        if isinstance(value, float) and 0 < value < 1:
            return max(2, int(round(value * n)))
        if float(value).is_integer() and value >= 2:
            return int(value)
    raise ValueError(f"min_cluster_size must be an int >= 2 or a share in (0, 1); got {value!r}.")


def fit_hdbscan(E: np.ndarray, *, min_cluster_size=0.05, min_samples=None,
                selection_method="eom", epsilon=0.0, assign_noise=False) -> HDBSCANResult:
    """Cluster an embedding with HDBSCAN.

    Parameters
    ----------
    E : ndarray of shape (n, d)
    min_cluster_size : int or float
        An int >= 2, or a share of ``n`` in (0, 1).
    min_samples : int or None
        Neighbours of the core distance; 0 or None means ``min_cluster_size``
        (hdbscan's default).
    selection_method : {"eom", "leaf"}
    epsilon : float
        ``cluster_selection_epsilon``.
    assign_noise : bool
        Also compute the most probable archetype of every point from soft
        membership vectors (``soft_labels``), kept beside the labels.
    """
    import hdbscan

    n = len(E)
    mcs = resolve_min_cluster_size(min_cluster_size, n)
    if selection_method not in ("eom", "leaf"):
        raise ValueError(f"selection_method must be 'eom' or 'leaf'; got {selection_method!r}.")
    if n < mcs or n < 3:
        empty = np.full(n, NOISE)
        return HDBSCANResult(empty, np.zeros(n), np.ones(n), mcs, None,
                             empty.copy() if assign_noise else None)
    model = hdbscan.HDBSCAN(
        min_cluster_size=mcs, min_samples=None if not min_samples else int(min(min_samples, n - 1)),
        cluster_selection_method=selection_method, cluster_selection_epsilon=float(epsilon),
        prediction_data=True, core_dist_n_jobs=1,
    ).fit(E)
    labels = model.labels_.astype(int)
    soft = None
    if assign_noise:
        soft = labels.copy()
        if labels.max() >= 0:
            membership = hdbscan.all_points_membership_vectors(model)
            membership = membership.reshape(n, -1)
            soft = np.where(labels == NOISE, membership.argmax(axis=1), labels)
    return HDBSCANResult(labels, model.probabilities_.astype(float),
                         np.nan_to_num(model.outlier_scores_.astype(float)), mcs, model, soft)


# --------------------------------------------------------------------------
# Gaussian mixtures

@dataclass
class GMMResult:
    """The selected mixture, its posteriors and every fit of the grid."""

    labels: np.ndarray
    posteriors: np.ndarray
    model: GaussianMixture
    table: pd.DataFrame
    criterion: str
    warnings: list = field(default_factory=list)

    @property
    def k(self) -> int:
        return int(self.model.n_components)


def _entropy_terms(posteriors: np.ndarray) -> tuple[float, float]:
    """Classification entropy EN and relative entropy (1 = crisp)."""
    p = np.clip(posteriors, 1e-300, 1.0)
    en = float(-(posteriors * np.log(p)).sum())
    n, k = posteriors.shape
    relative = 1.0 if k == 1 else 1.0 - en / (n * np.log(k))
    return en, relative


def _collapsed(model: GaussianMixture, E: np.ndarray, ratio: float = 1e-3) -> bool:
    """Whether a component's variance collapses on some dimension."""
    total = E.var(axis=0) + 1e-12
    cov = model.covariances_
    if model.covariance_type == "full":
        variances = np.array([np.diag(c) for c in cov])
    elif model.covariance_type == "tied":
        variances = np.diag(cov)[None, :]
    elif model.covariance_type == "diag":
        variances = cov
    else:  # spherical
        variances = np.repeat(cov[:, None], E.shape[1], axis=1)
    return bool((variances / total).min() < ratio)


def select_gmm(E: np.ndarray, *, k=(1, 8), covariance_types=("tied",),
               criterion="icl", n_init=3, random_state=0) -> GMMResult:
    """Fit Gaussian mixtures over a grid of k and covariance types; keep the best.

    Parameters
    ----------
    E : ndarray of shape (n, d)
    k : (int, int)
        Smallest and largest number of components searched.
    covariance_types : sequence of str
        Any of ``full``, ``tied``, ``diag``, ``spherical``.
    criterion : {"bic", "icl"}
        Lower is better for both.  ICL = BIC + 2 EN, where EN is the
        classification entropy (Biernacki, Celeux & Govaert, 2000).
    n_init : int
        Initialisations per fit.
    random_state : int
        Seed shared by every fit of the grid.

    Returns
    -------
    GMMResult
        ``table`` has one row per fit: ``k, covariance_type, log_likelihood,
        n_parameters, aic, bic, icl, entropy, smallest_share, converged,
        degenerate, selected``.
    """
    if criterion not in ("bic", "icl"):
        raise ValueError(f"criterion must be 'bic' or 'icl'; got {criterion!r}.")
    bad = [c for c in covariance_types if c not in ("full", "tied", "diag", "spherical")]
    if bad:
        raise ValueError(f"covariance type {bad[0]!r} is not full, tied, diag or spherical.")
    k_lo, k_hi = int(k[0]), int(k[1])
    if not 1 <= k_lo <= k_hi:
        raise ValueError(f"k must be (low, high) with 1 <= low <= high; got {list(k)}.")
    n = len(E)
    k_hi_eff = max(1, min(k_hi, n // 2))
    rows, models = [], []
    for ct in covariance_types:
        for kk in range(min(k_lo, k_hi_eff), k_hi_eff + 1):
            gm = GaussianMixture(n_components=kk, covariance_type=ct, n_init=n_init,
                                 random_state=int(random_state), reg_covar=1e-6)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gm.fit(E)
            post = gm.predict_proba(E)
            en, rel = _entropy_terms(post)
            bic = gm.bic(E)
            labels = post.argmax(axis=1)
            rows.append({
                "k": kk, "covariance_type": ct,
                "log_likelihood": float(gm.score(E) * n),
                "n_parameters": int(gm._n_parameters()),
                "aic": float(gm.aic(E)), "bic": float(bic), "icl": float(bic + 2 * en),
                "entropy": rel,
                "smallest_share": float(np.bincount(labels, minlength=kk).min() / n),
                "converged": bool(gm.converged_), "degenerate": _collapsed(gm, E),
            })
            models.append(gm)
    table = pd.DataFrame(rows)
    best = int(table[criterion].idxmin())
    table["selected"] = False
    table.loc[best, "selected"] = True
    model = models[best]
    notes = []
    chosen_k = int(table.loc[best, "k"])
    if chosen_k == k_hi_eff and k_hi_eff > k_lo:
        notes.append(
            f"{criterion.upper()} chose k = {chosen_k}, the largest searched: the criterion may keep "
            f"improving beyond it. Widen cluster.gmm.k (e.g. [{k_lo}, {k_hi_eff + 4}]) before trusting k."
        )
    if table.loc[best, "degenerate"]:
        notes.append(
            f"the selected mixture (k = {chosen_k}, {table.loc[best, 'covariance_type']}) has a component whose "
            "variance collapses on a dimension (a degenerate fit, common on discrete answers)."
        )
    if k_hi_eff < k_hi:
        notes.append(f"k was searched only up to {k_hi_eff}: the cohort has {n} distinct points.")
    post = model.predict_proba(E)
    return GMMResult(post.argmax(axis=1), post, model, table, criterion, notes)


# --------------------------------------------------------------------------
# K-Means baseline

def fit_kmeans(X: np.ndarray, *, k: int = 6, random_state: int = 0, n_init: int = 10) -> np.ndarray:
    """K-Means labels, as a baseline for comparison with published analyses."""
    k = int(min(k, len(X)))
    if k < 1:
        return np.zeros(len(X), int)
    return KMeans(n_clusters=k, n_init=n_init, random_state=int(random_state)).fit_predict(X)


# --------------------------------------------------------------------------
# agreement and indices

def agreement(a: np.ndarray, b: np.ndarray, *, ignore_noise: bool = True) -> dict:
    """ARI and AMI between two labelings, on respondents that neither calls noise."""
    keep = (a != NOISE) & (b != NOISE) if ignore_noise else np.ones(len(a), bool)
    if keep.sum() < 2:
        return {"ari": float("nan"), "ami": float("nan"), "n": int(keep.sum())}
    return {
        "ari": float(adjusted_rand_score(a[keep], b[keep])),
        "ami": float(adjusted_mutual_info_score(a[keep], b[keep])),
        "n": int(keep.sum()),
    }


def contingency(a: np.ndarray, b: np.ndarray, names=None) -> pd.DataFrame:
    """Cross-table of two labelings (noise included); ``names`` default to the first two methods."""
    names = ARCHETYPE_METHODS[:2] if names is None else names
    return pd.crosstab(pd.Series(a, name=names[0]), pd.Series(b, name=names[1]))


def internal_indices(space: np.ndarray, labels: np.ndarray, *, space_name: str,
                     method: str, random_state: int = 0, dbcv: bool = True) -> list[dict]:
    """Silhouette, DBCV, Calinski–Harabasz and Davies–Bouldin of a labeling.

    Noise is left out.  Silhouette and DBCV are computed on a random sample
    of at most 5,000 points when there are more (stated in ``note``).

    Returns
    -------
    list of dict
        ``method, index, value, space, n, note`` per index.
    """
    keep = labels != NOISE
    X, y = space[keep], labels[keep]
    n_clusters = len(np.unique(y))
    rows = []

    def row(index, value, note=""):
        rows.append({"method": method, "index": index, "value": value,
                     "space": space_name, "n": int(len(y)), "note": note})

    if n_clusters < 2 or n_clusters >= len(y):
        for index in ("silhouette", "dbcv", "calinski_harabasz", "davies_bouldin"):
            row(index, float("nan"), "needs at least 2 clusters")
        return rows
    rng = np.random.default_rng(random_state)
    sample = np.arange(len(y))
    note = ""
    if len(y) > INDEX_SAMPLE:
        sample = np.sort(rng.choice(len(y), INDEX_SAMPLE, replace=False))
        note = f"random sample of {INDEX_SAMPLE} points"
    row("silhouette", float(silhouette_score(X[sample], y[sample])), note)
    if dbcv:
        import hdbscan.validity

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                value = float(hdbscan.validity.validity_index(
                    np.ascontiguousarray(X[sample], dtype=np.float64), y[sample]))
            except (ValueError, ZeroDivisionError, IndexError):
                value = float("nan")
        row("dbcv", value, note)
    row("calinski_harabasz", float(calinski_harabasz_score(X, y)))
    row("davies_bouldin", float(davies_bouldin_score(X, y)))
    return rows

"""Multiple-testing corrections of p-values (the names of statsmodels'
``multipletests``: ``holm``, ``fdr_bh``, ``bonferroni``)."""

from __future__ import annotations

import numpy as np


def adjust_p_values(p, alpha: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values and rejections at ``alpha`` of a family of p-values.

    Parameters
    ----------
    p : array-like of float
        The family's p-values; missing ones (NaN) stay missing and are not
        counted in the family.
    alpha : float
        Family-wise error rate (Holm, Bonferroni) or false discovery rate
        (Benjamini-Hochberg).
    method : {"holm", "fdr_bh", "bonferroni"}

    Returns
    -------
    adjusted : ndarray of float
    reject : ndarray of bool
    """
    p = np.asarray(p, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    ok = ~np.isnan(p)
    if ok.any():
        if method == "holm":
            reject[ok], adjusted[ok] = _holm(p[ok], alpha)
        else:
            from statsmodels.stats.multitest import multipletests

            reject[ok], adjusted[ok] = multipletests(p[ok], alpha=alpha, method=method)[:2]
    return adjusted, reject


def _holm(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down correction, as statsmodels computes it.

    statsmodels' own runs a full garbage collection on every call, which in a
    process holding a fitted run costs about 0.3 s: most of the profile stage.
    """
    order = np.argsort(p)
    sorted_p = p[order]
    m = len(p)
    not_rejected = sorted_p > alpha / np.arange(m, 0, -1)
    first = np.flatnonzero(not_rejected)[0] if not_rejected.any() else m
    reject_sorted = np.arange(m) < first
    adjusted_sorted = np.minimum(np.maximum.accumulate(sorted_p * np.arange(m, 0, -1)), 1.0)
    reject, adjusted = np.empty(m, dtype=bool), np.empty(m)
    reject[order], adjusted[order] = reject_sorted, adjusted_sorted
    return reject, adjusted

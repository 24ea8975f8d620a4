"""Is it a continuum?  What the features explain of each outcome without
clusters (the ``continuum`` table), and features that restate an outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._common import _empty, _frame
from .tables import CONTINUUM_COLUMNS

NEAR_CIRCULAR_COLUMNS = ("feature", "outcome", "spearman", "n")
NEAR_CIRCULAR = 0.5  # |Spearman| of a feature with an outcome that makes profiles near-circular


def _eta_squared(y, groups) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return np.nan
    between = sum(float((groups == g).sum()) * (float(y[groups == g].mean()) - y.mean()) ** 2
                  for g in np.unique(groups))
    return between / total


def _continuum_table(method, y_all, outcome_names, label_arr, analysed, feat, log):
    """What the features explain of each outcome without clusters, beside the archetypes."""
    if feat is None or not feat.shape[1]:
        return _empty(CONTINUUM_COLUMNS)
    F = feat.to_numpy(dtype=float)
    rows = []
    for outcome in outcome_names:
        y = y_all[outcome].to_numpy(dtype=float)
        use = analysed & ~np.isnan(y) & ~np.isnan(F).any(axis=1)
        lab, yy = label_arr[use], y[use]
        present, counts = np.unique(lab, return_counts=True)
        keep = np.isin(lab, present[counts >= 2])
        lab, yy, X = lab[keep], yy[keep], F[use][keep]
        k = int(np.unique(lab).size)
        if k < 2:
            continue
        X = X[:, X.std(axis=0) > 0]
        n, p = X.shape
        note = ""
        r2 = np.nan
        if n > p + 1:
            design = np.column_stack([np.ones(n), X])
            beta, *_ = np.linalg.lstsq(design, yy, rcond=None)
            resid = yy - design @ beta
            r2 = 1 - float(resid @ resid) / float(((yy - yy.mean()) ** 2).sum())
        else:
            note = f"{n} respondents for {p} features: R² not estimated"
        Xc = X - X.mean(axis=0)
        pc1 = Xc @ np.linalg.svd(Xc, full_matrices=False)[2][0] if p else np.zeros(n)
        slices = np.minimum((np.argsort(np.argsort(pc1, kind="stable")) * k) // n, k - 1)
        eta_pc1 = _eta_squared(yy, slices)
        eta_arch = _eta_squared(yy, lab)
        as_good = bool(np.nanmax([r2, eta_pc1]) >= eta_arch) if np.isfinite(eta_arch) else False
        if as_good:
            log.add(f"{method}, {outcome}: the features explain as much of {outcome} without "
                    f"clusters (OLS R² {r2:.2f}; {k} equal slices of their first principal "
                    f"component, η² {eta_pc1:.2f}) as the {k} archetypes do (η² {eta_arch:.2f}): "
                    "the archetype differences may be slices of a continuum.")
        rows.append(dict(method=method, outcome=outcome, n=int(n), k=k,
                         archetype_eta_squared=eta_arch, features_r_squared=r2, n_features=int(p),
                         pc1_slices_eta_squared=eta_pc1, continuum_as_good=as_good, note=note))
    return _frame(rows, CONTINUUM_COLUMNS)


def near_circular_features(features, outcomes, threshold=NEAR_CIRCULAR) -> pd.DataFrame:
    """Features whose rank correlation with an outcome is ``threshold`` or more.

    Parameters
    ----------
    features, outcomes : pandas.DataFrame
        Numeric columns, indexed by respondent id (aligned on the index).
    threshold : float
        Smallest absolute Spearman correlation reported.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`NEAR_CIRCULAR_COLUMNS`, strongest first.  Profiles of
        such an outcome partly restate what was clustered on.
    """
    outcomes = outcomes.reindex(features.index)
    rows = []
    for o in outcomes.columns:
        y = outcomes[o].to_numpy(dtype=float)
        for f in features.columns:
            x = features[f].to_numpy(dtype=float)
            ok = ~np.isnan(x) & ~np.isnan(y)
            if ok.sum() < 3 or np.all(x[ok] == x[ok][0]) or np.all(y[ok] == y[ok][0]):
                continue
            rho = float(stats.spearmanr(x[ok], y[ok])[0])
            if abs(rho) >= threshold:
                rows.append(dict(feature=str(f), outcome=str(o), spearman=rho, n=int(ok.sum())))
    out = _frame(rows, NEAR_CIRCULAR_COLUMNS)
    if len(out):
        out = out.reindex(out["spearman"].abs().sort_values(ascending=False).index)
        out = out.reset_index(drop=True)
    return out


def _circular_warning(row) -> str:
    return (f"Feature {row.feature!r} has a rank correlation of {row.spearman:.2f} with the outcome "
            f"{row.outcome!r} (|Spearman| >= {NEAR_CIRCULAR}): clustering on it partly clusters on "
            f"{row.outcome} itself, so the archetypes' {row.outcome} profile is near-circular.")

"""A Gaussian copula of survey answers: new rows whose items keep their
marginal distributions and their rank correlations, and nothing else.

Used for the structure-free null cohorts of a stability analysis and for the
copula control of the calibration scenarios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def copula_order(values: pd.DataFrame, n: int, rng) -> dict:
    """Row orders that give ``n`` rows a Gaussian copula of ``values``.

    Every column keeps its marginal distribution (resampled to ``n`` when
    ``n`` differs) and the columns their normal-score (rank) correlation,
    with one correction step for the attenuation that ties cause (Iman &
    Conover, 1982).  Missing values are placed at random.

    Returns
    -------
    dict
        Column -> array of ``n`` source row positions (-1: missing).
    """
    from scipy.stats import norm, rankdata

    cols = list(values.columns)
    scores = pd.DataFrame({c: norm.ppf((rankdata(values[c], nan_policy="omit") - 0.5)
                                        / values[c].notna().sum()) for c in cols})
    target = np.array(scores.corr().fillna(0.0).to_numpy(), dtype=float)
    np.fill_diagonal(target, 1.0)
    W = rng.standard_normal((n, len(cols)))

    def draw(R):
        w, V = np.linalg.eigh(R)
        return W @ (V * np.sqrt(np.clip(w, 1e-9, None))).T

    # one correction step: ties and discreteness attenuate the correlation the
    # answers end up with, so aim the normal draws correspondingly higher
    got = np.array(pd.DataFrame(draw(target)).corr(method="spearman").to_numpy(), dtype=float)
    R = np.clip(2 * target - got, -0.99, 0.99)
    np.fill_diagonal(R, 1.0)
    Z = draw(R)
    out = {}
    for j, c in enumerate(cols):
        v = values[c].to_numpy(float)
        present = np.flatnonzero(np.isfinite(v))
        m = int(round(len(present) / len(v) * n))
        source = present if m == len(present) else rng.choice(present, m, replace=True)
        source = source[np.argsort(v[source] + rng.uniform(0, 1e-6, len(source)), kind="stable")]
        rows = np.sort(rng.permutation(n)[:m])
        order = np.full(n, -1)
        order[rows[np.argsort(Z[rows, j], kind="stable")]] = source
        out[c] = order
    return out

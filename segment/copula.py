"""A Gaussian copula of survey answers: new rows whose items keep their
marginal distributions (or the nearest unimodal ones) and their rank
correlations, and nothing else.

Used for the structure-free null cohorts of a stability analysis and for the
copula control of the calibration scenarios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _normal_scores(values: pd.DataFrame) -> pd.DataFrame:
    """Every column's normal scores (van der Waerden; ties share their mean rank, missing stays missing)."""
    from scipy.stats import norm, rankdata

    return pd.DataFrame({c: norm.ppf((rankdata(values[c], nan_policy="omit") - 0.5) / values[c].notna().sum())
                         for c in values.columns})


def _normal_draws(values: pd.DataFrame, n: int, rng, answers=None) -> np.ndarray:
    """``n`` rows of normal scores with the normal-score correlation of ``values``.

    Discreteness attenuates the correlation that answers drawn from normal
    scores end up with.  ``answers`` maps a column position and its normal
    draws to the answers they become; the latent correlation is then
    corrected until the answers' own normal-score correlation is that of
    ``values`` (three steps, NORTA-style; Cario & Nelson 1997).  Without it,
    one step corrects the normal draws' rank correlation only.
    """
    target = np.array(_normal_scores(values).corr().fillna(0.0).to_numpy(), dtype=float)
    np.fill_diagonal(target, 1.0)
    W = rng.standard_normal((n, len(values.columns)))

    def draw(R):
        w, V = np.linalg.eigh(R)
        return W @ (V * np.sqrt(np.clip(w, 1e-9, None))).T

    def correlation(Z):
        if answers is None:
            return pd.DataFrame(Z).corr(method="spearman").to_numpy()
        drawn = pd.DataFrame({j: answers(j, Z[:, j]) for j in range(Z.shape[1])})
        return _normal_scores(drawn).corr().fillna(0.0).to_numpy()

    R = target
    for _ in range(1 if answers is None else 3):
        R = np.clip(R + target - np.asarray(correlation(draw(R)), dtype=float), -0.99, 0.99)
        np.fill_diagonal(R, 1.0)
    return draw(R)


def _answered(v: np.ndarray, n: int) -> int:
    """How many of ``n`` new rows answer: the share of ``v`` that is not missing."""
    return int(round(np.isfinite(v).sum() / len(v) * n))


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
    Z = _normal_draws(values, n, rng)
    out = {}
    for j, c in enumerate(values.columns):
        v = values[c].to_numpy(float)
        present = np.flatnonzero(np.isfinite(v))
        m = _answered(v, n)
        source = present if m == len(present) else rng.choice(present, m, replace=True)
        source = source[np.argsort(v[source] + rng.uniform(0, 1e-6, len(source)), kind="stable")]
        rows = np.sort(rng.permutation(n)[:m])
        order = np.full(n, -1)
        order[rows[np.argsort(Z[rows, j], kind="stable")]] = source
        out[c] = order
    return out


def unimodal_shares(shares: np.ndarray) -> np.ndarray:
    """The unimodal distribution over ordered levels nearest to ``shares``.

    Least squares over every mode: non-decreasing up to the mode and
    non-increasing after it (Stout's unimodal regression, two isotonic fits
    per candidate mode).  Pooling keeps the total, so the result sums to one
    when ``shares`` does; a unimodal ``shares`` is returned unchanged.
    """
    from scipy.optimize import isotonic_regression

    shares = np.asarray(shares, dtype=float)
    k = len(shares)
    if k < 3:
        return shares.copy()
    best, best_err = shares.copy(), np.inf
    for mode in range(k):
        fit = np.empty(k)
        fit[:mode + 1] = isotonic_regression(shares[:mode + 1]).x
        if mode + 1 < k:
            fit[mode + 1:] = isotonic_regression(shares[mode + 1:], increasing=False).x
        err = float(np.sum((fit - shares) ** 2))
        if err < best_err - 1e-15:
            best, best_err = fit, err
    return best


def _level_grid(observed: np.ndarray) -> np.ndarray:
    """The levels an item's answers lie on: the evenly spaced grid from the
    smallest to the largest observed answer when every observed gap is a
    multiple of the smallest (a Likert scale whose middle nobody answered
    still has a middle), else the observed answers themselves."""
    if len(observed) < 3:
        return observed
    gaps = np.diff(observed)
    step = gaps.min()
    ratio = gaps / step
    if np.allclose(ratio, np.round(ratio)) and (observed[-1] - observed[0]) / step <= 100:
        return observed[0] + step * np.arange(int(round((observed[-1] - observed[0]) / step)) + 1)
    return observed


def unimodal_copula(values: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    """``n`` rows of a Gaussian copula of ``values`` with unimodal marginals.

    Like :func:`copula_order`, the columns keep their normal-score
    correlation and their missing share, and every answer is one of the
    column's levels (the grid its answers lie on); each column's
    distribution over its levels is replaced by the nearest unimodal one
    (:func:`unimodal_shares`).  The latent correlation is corrected for the
    attenuation these discrete levels cause, so that the new answers' own
    normal-score correlation is that of ``values``.  The marginals of a
    cohort made of separated archetypes are multimodal, and a copula that
    kept them would keep clusters too; this one keeps the correlations and
    the discreteness of the answers, not their modes.
    """
    marginals = []
    for c in values.columns:
        v = values[c].to_numpy(float)
        observed, counts = np.unique(v[np.isfinite(v)], return_counts=True)
        levels = _level_grid(observed)
        shares = np.zeros(len(levels))
        shares[np.searchsorted(levels, observed - 1e-9)] = counts / counts.sum()
        marginals.append((levels, np.cumsum(unimodal_shares(shares))))

    def answers(j, z):
        """The i-th smallest normal score gets the level at quantile (i - 0.5) / m."""
        levels, cumulative = marginals[j]
        quantiles = (np.arange(len(z)) + 0.5) / max(1, len(z))
        ranked = levels[np.minimum(np.searchsorted(cumulative, quantiles, side="right"), len(levels) - 1)]
        out = np.empty(len(z))
        out[np.argsort(z, kind="stable")] = ranked
        return out

    Z = _normal_draws(values, n, rng, answers)
    out = {}
    for j, c in enumerate(values.columns):
        rows = np.sort(rng.permutation(n)[:_answered(values[c].to_numpy(float), n)])  # missing placed at random
        new = np.full(n, np.nan)
        new[rows] = answers(j, Z[rows, j])
        out[c] = new
    return pd.DataFrame(out, index=values.index if len(values) == n else None)

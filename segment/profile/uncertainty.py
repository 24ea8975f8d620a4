"""Classification uncertainty: archetype means through pseudo-class draws from
the posteriors, combined with Rubin's rules (the ``uncertainty`` table)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SegmentError
from ..vocabulary import NOT_ASSESSED
from ._common import CI_LEVEL, NOISE, _frame
from .tables import UNCERTAINTY_COLUMNS


def _uncertainty_table(method, labels, y_all, outcome_names, posteriors, archetype_ids,
                       m, seed, stab, log) -> pd.DataFrame:
    k = len(archetype_ids)
    post, rows_used = _check_posteriors(posteriors, method, labels, archetype_ids)
    draws = _draw_classes(post, m, seed, k)
    approach = f"pseudo-class draws (m={m}), Rubin's rules"
    rows = []
    for outcome in outcome_names:
        y = y_all[outcome].to_numpy(dtype=float)[rows_used]
        ok = ~np.isnan(y)
        yv = y[ok]
        n = int(yv.size)
        q, u = _draw_estimates(yv, draws, ok, m, k)
        for j, a in enumerate(archetype_ids):
            base = dict(method=method, outcome=outcome, archetype=a, n=n, approach=approach,
                        stability_verdict=stab["per"].get(a, NOT_ASSESSED))
            rows.append(_rubin_row(base, q[:, j], u[:, j], m, n - k, log))
    return _frame(rows, UNCERTAINTY_COLUMNS)


def _check_posteriors(posteriors, method, labels, archetype_ids):
    """The posteriors of the non-noise respondents, rows normalised to sum to 1,
    and the mask of those respondents in ``labels``."""
    post = np.asarray(posteriors, dtype=float)
    n_lab, k = len(labels), len(archetype_ids)
    if post.ndim != 2 or post.shape != (n_lab, k):
        raise SegmentError(
            f"posteriors has shape {post.shape}, but {method} has {n_lab} labelled "
            f"respondents and {k} archetypes {archetype_ids}; pass an n x K array whose "
            "rows follow labels.index and columns the sorted archetypes.")
    label_arr = labels.to_numpy()
    rows_used = label_arr != NOISE
    post = post[rows_used]
    if not np.all(np.isfinite(post)) or np.any(post < 0):
        raise SegmentError("posteriors contain missing, infinite or negative values; pass "
                           "membership probabilities (e.g. GaussianMixture.predict_proba).")
    sums = post.sum(axis=1)
    if np.any(np.abs(sums - 1) > 1e-6):
        bad = int(np.sum(np.abs(sums - 1) > 1e-6))
        raise SegmentError(f"posteriors rows must sum to 1; {bad} row(s) do not. Pass "
                           "membership probabilities (e.g. GaussianMixture.predict_proba).")
    return post / sums[:, None], rows_used


def _draw_classes(post, m, seed, k) -> np.ndarray:
    """``m x n`` classes (column positions) drawn from each respondent's posterior."""
    rng = np.random.default_rng(seed)
    cum = np.cumsum(post, axis=1)
    cum[:, -1] = 1.0
    draws = np.empty((m, post.shape[0]), dtype=np.int64)
    for d in range(m):
        u = rng.random(post.shape[0])
        draws[d] = np.minimum((cum < u[:, None]).sum(axis=1), k - 1)
    return draws


def _draw_estimates(yv, draws, ok, m, k):
    """Per draw and class: the mean of ``yv`` and its OLS variance (pooled residual
    variance / class size); NaN for a class without members in a draw."""
    n = int(yv.size)
    q = np.full((m, k), np.nan)
    u = np.full((m, k), np.nan)
    for d in range(m):
        cls = draws[d][ok]
        counts = np.bincount(cls, minlength=k).astype(float)
        sums_c = np.bincount(cls, weights=yv, minlength=k)
        present = counts > 0
        means = np.divide(sums_c, counts, out=np.full(k, np.nan), where=present)
        resid = yv - means[cls]
        dfr = n - int(present.sum())
        if dfr < 1:
            continue
        s2 = float(resid @ resid) / dfr
        q[d, present] = means[present]
        u[d, present] = s2 / counts[present]
    return q, u


def _rubin_row(base, q, u, m, df_complete, log) -> dict:
    """One archetype's row: its per-draw estimates ``q`` and variances ``u``
    combined with Rubin's rules over the draws in which it was drawn."""
    a, outcome, method = base["archetype"], base["outcome"], base["method"]
    avail = ~np.isnan(q)
    mj = int(avail.sum())
    note = ""
    if mj < m:
        note = f"archetype {a} drawn in only {mj} of {m} draws for {outcome}"
        log.add(f"{method}, {outcome}: archetype {a} received no respondents in "
                f"{m - mj} of {m} pseudo-class draws; Rubin's rules use the "
                f"remaining {mj}.")
    if mj < 2:
        return dict(base, estimate=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan,
                    within_variance=np.nan, between_variance=np.nan,
                    total_variance=np.nan, df=np.nan, m=mj,
                    note=(note + "; " if note else "") + "too few draws for Rubin's rules")
    qj, uj = q[avail], u[avail]
    est = float(qj.mean())
    within = float(uj.mean())
    between = float(qj.var(ddof=1))
    total = within + (1 + 1 / mj) * between
    df = _barnard_rubin_df(within, between, mj, df_complete)
    se = math.sqrt(total)
    tcrit = stats.t.ppf(0.5 + CI_LEVEL / 2, df)
    return dict(base, estimate=est, se=se, ci_low=est - tcrit * se, ci_high=est + tcrit * se,
                within_variance=within, between_variance=between, total_variance=total,
                df=df, m=mj, note=note)


def _barnard_rubin_df(within, between, m, df_complete) -> float:
    """Barnard-Rubin (1999) degrees of freedom for a Rubin's-rules estimate."""
    df_complete = max(float(df_complete), 1.0)
    total = within + (1 + 1 / m) * between
    lam = (1 + 1 / m) * between / total if total > 0 else 0.0
    df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
    if lam <= 0:
        return float(df_obs)
    df_old = (m - 1) / lam ** 2
    if df_obs <= 0:
        return float(df_old)
    return float(df_old * df_obs / (df_old + df_obs))

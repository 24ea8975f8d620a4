"""Covariate-adjusted means: OLS with HC3 standard errors, average predictive
margins per archetype and differences from the reference archetype (the
``adjusted`` table)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SegmentError
from ..multitest import adjust_p_values
from ..vocabulary import CORRECTIONS as _CORRECTIONS
from ..vocabulary import NOT_ASSESSED
from ._common import CI_LEVEL, _group_name, _plural
from .verdicts import _pair_verdict


def _is_categorical(series: pd.Series) -> bool:
    return (not pd.api.types.is_numeric_dtype(series)) or pd.api.types.is_bool_dtype(series)


def _adjusted_rows(method, outcome, y, label_arr, mask, groups, cov_table, cov_names,
                   stab, log):
    import statsmodels.api as sm

    sample = _adjusted_sample(method, outcome, y, label_arr, mask, groups, cov_table,
                              cov_names, log)
    if sample is None:
        return []
    rows_idx, levels = sample
    lab, yy = label_arr[rows_idx], y[rows_idx]
    n = yy.size
    X, used = _design(method, outcome, lab, levels, cov_table, cov_names, rows_idx, log)
    p = X.shape[1]
    if np.linalg.matrix_rank(X) < p:
        raise SegmentError(
            f"{method}, {outcome}: the covariates {used} are collinear with each other or "
            "with archetype membership, so adjusted means are not identified; remove "
            "redundant covariates from config.covariates.")
    if n - p < 1:
        log.add(f"{method}, {outcome}: too few respondents ({n}) for {p} model "
                "parameters; no adjusted means.")
        return []
    fit = sm.OLS(yy, X).fit()
    beta = np.asarray(fit.params)
    cov, n_lev1 = _hc3(X, np.asarray(fit.resid))
    se_type = "HC3"
    note = ""
    if n_lev1:
        note = (f"{_plural(n_lev1, 'respondent')} with leverage 1 (fitted exactly, residual 0) "
                "contribute nothing to the HC3 covariance")
    dfr = float(fit.df_resid)
    cov_text = ", ".join(used) if used else "none"
    base = dict(method=method, outcome=outcome, reference_archetype=int(levels[0]), df=dfr,
                n=int(n), covariates=cov_text, se_type=se_type, note=note)
    return _margin_rows(base, X, beta, cov, levels, dfr, stab)


def _adjusted_sample(method, outcome, y, label_arr, mask, groups, cov_table, cov_names, log):
    """Rows (positions in ``label_arr``) and archetypes of the adjusted model.

    Respondents with a missing covariate and archetypes with fewer than two
    complete respondents are left out (logged); None when fewer than two
    archetypes remain.
    """
    rows_mask = mask & ~np.isnan(y) & np.isin(label_arr, list(groups))
    if cov_table is not None and cov_names:
        cov_missing = cov_table[cov_names].isna().any(axis=1).to_numpy()
        n_dropped = int((rows_mask & cov_missing).sum())
        if n_dropped:
            log.add(f"{method}, {outcome}: {n_dropped} respondent(s) with a missing "
                    "covariate left out of the adjusted model.")
        rows_mask = rows_mask & ~cov_missing
    lab = label_arr[rows_mask]
    levels = []
    for g in groups:
        count = int((lab == g).sum())
        if count >= 2:
            levels.append(g)
        else:
            log.add(f"{method}, {outcome}: {_group_name(g)} has fewer than two respondents "
                    "with complete covariates; left out of the adjusted model.")
    if len(levels) < 2:
        log.add(f"{method}, {outcome}: fewer than two archetypes with complete covariates; "
                "no adjusted means.")
        return None
    keep = np.isin(lab, levels)
    return np.flatnonzero(rows_mask)[keep], levels


def _design(method, outcome, lab, levels, cov_table, cov_names, rows_idx, log):
    """Design matrix (intercept, archetype dummies against ``levels[0]``, covariates)
    and the covariate terms it holds."""
    columns = [np.ones(lab.size)]
    for g in levels[1:]:
        columns.append((lab == g).astype(float))
    used = []
    if cov_table is not None:
        sub = cov_table.iloc[rows_idx]
        for name in cov_names:
            term = _covariate_columns(method, outcome, name, sub[name], log)
            if term is None:
                continue
            columns.extend(term[0])
            used.append(term[1])
    return np.column_stack(columns), used


def _covariate_columns(method, outcome, name, col, log):
    """Design columns and term name of one covariate; None when it does not vary (logged).

    A categorical covariate gives treatment-coded columns against its first
    level (category order, else sorted), a numeric one its values.
    """
    if _is_categorical(col):
        values = col.astype(str).to_numpy()
        if isinstance(col.dtype, pd.CategoricalDtype):
            present = set(values)
            lv = [str(c) for c in col.cat.categories if str(c) in present]
        else:
            lv = sorted(set(values))
        if len(lv) < 2:
            log.add(f"{method}, {outcome}: covariate {name!r} has a single level "
                    f"({lv[0]!r}) among the analysed respondents; dropped from "
                    "the adjusted model.")
            return None
        return [(values == level).astype(float) for level in lv[1:]], f"C({name})"
    x = col.to_numpy(dtype=float)
    if np.all(x == x[0]):
        log.add(f"{method}, {outcome}: covariate {name!r} is constant "
                f"({x[0]:g}) among the analysed respondents; dropped from "
                "the adjusted model.")
        return None
    return [x], str(name)


def _margin_rows(base, X, beta, cov, levels, dfr, stab):
    """Average predictive margin of every archetype and its difference from the reference."""
    tcrit = stats.t.ppf(0.5 + CI_LEVEL / 2, dfr)
    ref = levels[0]
    rows = []
    k = len(levels)
    for i, g in enumerate(levels):
        Xg = X.copy()
        Xg[:, 1:k] = 0.0
        if i > 0:
            Xg[:, i] = 1.0
        grad = Xg.mean(axis=0)
        est = float(grad @ beta)
        se = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
        rows.append(dict(base, archetype=int(g), kind="adjusted_mean", estimate=est,
                         se=se, ci_low=est - tcrit * se, ci_high=est + tcrit * se,
                         p_value=np.nan, stability_verdict=stab["per"].get(g, NOT_ASSESSED)))
    for i, g in enumerate(levels[1:], start=1):
        est = float(beta[i])
        se = float(math.sqrt(cov[i, i]))
        pval = float(2 * stats.t.sf(abs(est / se), dfr)) if se > 0 else np.nan
        rows.append(dict(base, archetype=int(g), kind="difference_vs_reference",
                         estimate=est, se=se, ci_low=est - tcrit * se,
                         ci_high=est + tcrit * se, p_value=pval,
                         stability_verdict=_pair_verdict(stab, g, ref)))
    return rows


def _hc3(X, resid):
    """HC3 covariance of OLS coefficients, and the number of leverage-1 rows.

    HC3 weighs each squared residual by ``1 / (1 - h)^2``.  A row with
    leverage ``h = 1`` (e.g. the only member of a covariate level) is fitted
    exactly, so its residual is zero and its contribution is set to zero
    instead of the undefined 0 / 0; the covariance of the other coefficients
    is then that of the fit without that row and its own parameter.
    """
    xtx_inv = np.linalg.pinv(X.T @ X)
    leverage = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    one = leverage > 1 - 1e-8
    weight = np.zeros(len(resid))
    weight[~one] = resid[~one] ** 2 / (1 - leverage[~one]) ** 2
    meat = (X * weight[:, None]).T @ X
    return xtx_inv @ meat @ xtx_inv, int(one.sum())


def _finish_adjusted(rows, cfg, method) -> None:
    """Correct the differences from the reference over archetypes and outcomes."""
    diffs = [r for r in rows if r["kind"] == "difference_vs_reference"]
    adjusted, _ = adjust_p_values([r["p_value"] for r in diffs], cfg.alpha, cfg.correction)
    n = int((~np.isnan(adjusted)).sum())
    n_out = len({r["outcome"] for r in diffs})
    family = (f"all {n} adjusted differences from the reference archetype across "
              f"{_plural(n_out, 'outcome')} for {method}, {_CORRECTIONS[cfg.correction]} correction")
    for r, pa in zip(diffs, adjusted):
        r.update(p_adjusted=float(pa), correction=cfg.correction, family=family)
    for r in rows:
        if r["kind"] != "difference_vs_reference":
            r.update(p_adjusted=np.nan, correction="", family="")

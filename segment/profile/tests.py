"""Omnibus and pairwise tests of the archetypes, and their multiple-testing
corrections."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ..multitest import adjust_p_values
from ..vocabulary import CORRECTIONS as _CORRECTIONS
from ..vocabulary import GAMES_HOWELL
from ..vocabulary import PAIRWISE_TESTS as _PAIRWISE_TESTS
from ._common import _empty, _frame, _group_name, _members_text, _plural
from .tables import PAIRWISE_COLUMNS
from .verdicts import _pair_verdict

# --------------------------------------------------------------------------
# Omnibus tests
# --------------------------------------------------------------------------


def _collect_groups(y, label_arr, mask):
    """Non-missing outcome values per group within mask; groups with < 2 left out."""
    groups, left_out = {}, {}
    ok = mask & ~np.isnan(y)
    for g in sorted(int(a) for a in np.unique(label_arr[mask])):
        values = y[ok & (label_arr == g)]
        if values.size >= 2:
            groups[g] = values
        elif values.size == 1:
            left_out[g] = 1
        else:
            left_out[g] = 0
    return groups, left_out


def _left_out_note(left_out, outcome) -> str:
    if not left_out:
        return ""
    parts = [f"{_group_name(g)} ({_members_text(count, outcome)})"
             for g, count in left_out.items()]
    return ("left out: " + "; ".join(parts)
            + "; a variance needs at least two respondents")


def _sums_of_squares(groups):
    values = list(groups.values())
    allv = np.concatenate(values)
    grand = allv.mean()
    ss_between = float(sum(v.size * (v.mean() - grand) ** 2 for v in values))
    ss_within = float(sum(((v - v.mean()) ** 2).sum() for v in values))
    return ss_between, ss_within, allv.size, len(values)


def _welch_anova(groups):
    """Welch's heteroscedastic one-way ANOVA; None when a group has zero variance."""
    n = np.array([v.size for v in groups.values()], dtype=float)
    m = np.array([v.mean() for v in groups.values()])
    var = np.array([v.var(ddof=1) for v in groups.values()])
    if np.any(var == 0):
        return None
    k = n.size
    w = n / var
    wsum = w.sum()
    mw = (w * m).sum() / wsum
    a = (w * (m - mw) ** 2).sum() / (k - 1)
    lam = ((1 - w / wsum) ** 2 / (n - 1)).sum()
    f = a / (1 + 2 * (k - 2) / (k ** 2 - 1) * lam)
    df1 = float(k - 1)
    df2 = float((k ** 2 - 1) / (3 * lam))
    return float(f), df1, df2, float(stats.f.sf(f, df1, df2))


def _omnibus_rows(method, outcome, subset, groups, note, stab, log):
    ss_b, ss_w, n, k = _sums_of_squares(groups)
    ss_t = ss_b + ss_w
    df1, df2 = float(k - 1), float(n - k)
    ms_w = ss_w / df2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_b / df1) / ms_w if ms_w > 0 else np.inf
    p = float(stats.f.sf(f, df1, df2)) if np.isfinite(f) else 0.0
    eta2 = ss_b / ss_t
    omega2 = (ss_b - df1 * ms_w) / (ss_t + ms_w)
    base = dict(method=method, outcome=outcome, n=int(n), k=int(k), subset=subset,
                stability_verdict=stab["summary"], interpretation=stab["interpretation"])
    rows = [dict(base, test="one-way ANOVA", statistic=float(f), df1=df1, df2=df2,
                 p_value=p, effect_size_name="eta_squared", effect_size=float(eta2),
                 note=note)]
    welch = _welch_anova(groups)
    if welch is None:
        zero = [_group_name(g) for g, v in groups.items() if v.var(ddof=1) == 0]
        why = (f"Welch's ANOVA undefined: no variance within {', '.join(zero)} "
               f"for {outcome}")
        log.add(f"{method}, {outcome} ({subset}): {why}; not computed.")
        rows.append(dict(base, test="Welch's ANOVA", statistic=np.nan, df1=df1,
                         df2=np.nan, p_value=np.nan, effect_size_name="omega_squared_classical",
                         effect_size=float(omega2),
                         note="; ".join(x for x in (note, why) if x)))
    else:
        wf, wdf1, wdf2, wp = welch
        rows.append(dict(base, test="Welch's ANOVA", statistic=wf, df1=wdf1, df2=wdf2,
                         p_value=wp, effect_size_name="omega_squared_classical",
                         effect_size=float(omega2), note=note))
    try:
        h, hp = stats.kruskal(*groups.values())
        h, hp = float(h), float(hp)
        kw_note = note
    except ValueError as exc:  # every value identical
        h = hp = np.nan
        kw_note = "; ".join(x for x in (note, f"Kruskal-Wallis undefined: {exc}") if x)
        log.add(f"{method}, {outcome} ({subset}): Kruskal-Wallis undefined ({exc}).")
    rows.append(dict(base, test="Kruskal-Wallis", statistic=h, df1=df1, df2=np.nan,
                     p_value=hp, effect_size_name="epsilon_squared",
                     effect_size=h / (n - 1) if np.isfinite(h) else np.nan,
                     note=kw_note))
    return rows


# --------------------------------------------------------------------------
# Pairwise comparisons
# --------------------------------------------------------------------------


def _pairwise_rows(method, outcome, groups, cfg, stab, log):
    k = len(groups)
    test = _PAIRWISE_TESTS[cfg.pairwise]
    rows = []
    for a, b in combinations(sorted(groups), 2):
        xa, xb = groups[a], groups[b]
        na, nb = xa.size, xb.size
        ma, mb = float(xa.mean()), float(xb.mean())
        va, vb = float(xa.var(ddof=1)), float(xb.var(ddof=1))
        diff = ma - mb
        sa, sb = va / na, vb / nb
        se = math.sqrt(sa + sb)
        pooled = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
        j = 1 - 3 / (4 * (na + nb) - 9)
        g = diff / pooled * j if pooled > 0 else np.nan
        note = ""
        if se == 0:
            t = df = p = np.nan
            note = (f"no variance within {_group_name(a)} or {_group_name(b)} for "
                    f"{outcome}: test undefined, left out of the correction")
            log.add(f"{method}, {outcome}: {test} test of archetypes {a} vs {b} undefined "
                    "(no variance within either group); not computed.")
        else:
            t = diff / se
            df = (sa + sb) ** 2 / (sa ** 2 / (na - 1) + sb ** 2 / (nb - 1))
            if cfg.pairwise == GAMES_HOWELL:
                p = float(stats.studentized_range.sf(abs(t) * math.sqrt(2), k, df))
            else:
                p = float(2 * stats.t.sf(abs(t), df))
            p = min(max(p, 0.0), 1.0)
        rows.append(dict(method=method, outcome=outcome, archetype_a=int(a),
                         archetype_b=int(b), test=test, n_a=int(na), n_b=int(nb),
                         mean_a=ma, mean_b=mb, mean_diff=diff, se=se, statistic=t,
                         df=df, p_value=p, hedges_g=g,
                         stability_verdict=_pair_verdict(stab, a, b),
                         interpretation=stab["interpretation"], note=note))
    return rows


# --------------------------------------------------------------------------
# Multiple-testing corrections
# --------------------------------------------------------------------------


def _finish_pairwise(rows, cfg, method, outcome_names) -> pd.DataFrame:
    """Adjust the pairwise p-values over one family per method.

    Games-Howell p-values already control the familywise error over the
    pairs of one outcome (studentized range), so they are not corrected
    again: the family is the pairs of that outcome.  Welch t p-values are
    corrected with ``cfg.correction`` over all pairs and outcomes.
    """
    if not rows:
        return _empty(PAIRWISE_COLUMNS)
    if cfg.pairwise == GAMES_HOWELL:
        for r in rows:
            n_pairs = sum(1 for x in rows if x["outcome"] == r["outcome"])
            r["p_adjusted"] = r["p_value"]
            r["reject"] = bool(r["p_value"] < cfg.alpha) if not np.isnan(r["p_value"]) else False
            r["correction"] = GAMES_HOWELL
            r["family"] = (f"the {_plural(n_pairs, 'pair')} of {method} archetypes on "
                           f"{r['outcome']}, Games-Howell (studentized range) adjustment")
        return _frame(rows, PAIRWISE_COLUMNS)
    adjusted, reject = adjust_p_values([r["p_value"] for r in rows], cfg.alpha, cfg.correction)
    per_outcome = {}
    for r in rows:
        per_outcome[r["outcome"]] = per_outcome.get(r["outcome"], 0) + 1
    total = int((~np.isnan(adjusted)).sum())
    n_out = len(per_outcome)
    counts = set(per_outcome.values())
    corr = _CORRECTIONS[cfg.correction]
    if len(counts) == 1 and total == len(rows):
        pairs = counts.pop()
        family = (f"all {total} pairwise comparisons ({pairs} pairs × "
                  f"{_plural(n_out, 'outcome')}) for {method}, {corr} correction")
    else:
        family = (f"all {total} pairwise comparisons across "
                  f"{_plural(n_out, 'outcome')} for {method}, {corr} correction")
    for r, pa, rj in zip(rows, adjusted, reject):
        r["p_adjusted"] = float(pa)
        r["reject"] = bool(rj)
        r["correction"] = cfg.correction
        r["family"] = family
    return _frame(rows, PAIRWISE_COLUMNS)


def _finish_tests(rows, cfg, method) -> None:
    """Correct the omnibus p-values of each test (and subset) over the outcomes."""
    corr = _CORRECTIONS[cfg.correction]
    for key in dict.fromkeys((r["test"], r["subset"]) for r in rows):
        part = [r for r in rows if (r["test"], r["subset"]) == key]
        adjusted, _ = adjust_p_values([r["p_value"] for r in part], cfg.alpha, cfg.correction)
        n = int((~np.isnan(adjusted)).sum())
        family = (f"{key[0]} ({key[1]}) over {_plural(n, 'outcome')} for {method}, "
                  f"{corr} correction")
        for r, pa in zip(part, adjusted):
            r.update(p_adjusted=float(pa), correction=cfg.correction, family=family)


"""Descriptive statistics of every outcome per archetype (the ``profiles`` table)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..vocabulary import NOT_ASSESSED
from ._common import CI_LEVEL, NOISE, _frame
from .tables import PROFILE_COLUMNS


def _threshold_token(threshold: float) -> str:
    text = f"{threshold:g}".replace("-", "minus_").replace(".", "_").replace("+", "")
    return text


def _profiles_table(method, labels, y_all, outcome_names, cut, stab) -> pd.DataFrame:
    rows = []
    label_arr = labels.to_numpy()
    for g in sorted(int(a) for a in np.unique(label_arr)):
        members = label_arr == g
        group = "noise" if g == NOISE else "archetype"
        verdict = stab["per"].get(g, NOT_ASSESSED)
        for outcome in outcome_names:
            v = y_all[outcome].to_numpy(dtype=float)[members]
            v = v[~np.isnan(v)]
            n = v.size
            note = ""
            if n == 0:
                note = "no non-missing values"
            elif n == 1:
                note = "single member: sd and confidence interval undefined"
            if n:
                mean = float(np.mean(v))
                median = float(np.median(v))
                q1, q3 = (float(q) for q in np.percentile(v, [25, 75]))
            else:
                mean = median = q1 = q3 = np.nan
            if n >= 2:
                sd = float(np.std(v, ddof=1))
                half = stats.t.ppf(0.5 + CI_LEVEL / 2, n - 1) * sd / math.sqrt(n)
                ci_low, ci_high = mean - half, mean + half
            else:
                sd = ci_low = ci_high = np.nan
            values = [("n", float(n)), ("mean", mean), ("sd", sd), ("median", median),
                      ("q1", q1), ("q3", q3), ("iqr", q3 - q1),
                      ("ci_low", ci_low), ("ci_high", ci_high)]
            base = dict(method=method, archetype=g, group=group, outcome=outcome,
                        stability_verdict=verdict, note=note)
            for stat, value in values:
                rows.append(dict(base, statistic=stat, value=value, threshold=np.nan,
                                 cutoff_label=""))
            for threshold, label in cut.get(outcome, []):
                share = float(np.mean(v >= threshold)) if n else np.nan
                rows.append(dict(base, statistic=f"share_at_or_above_{_threshold_token(threshold)}",
                                 value=share, threshold=threshold,
                                 cutoff_label=f"at or above {threshold:g} ({label})"))
    return _frame(rows, PROFILE_COLUMNS)

"""Archetype names: the features that set each archetype apart, the draft names
drawn from them and the names given in the configuration (the ``archetypes``
and ``features`` tables)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import SegmentError
from ..vocabulary import NOT_ASSESSED
from ._common import NOISE, _frame, _group_name
from .tables import ARCHETYPE_COLUMNS


def _check_names(names, method, archetype_ids) -> dict:
    overrides = names.get(method, {}) if names else {}
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise SegmentError(f"config.names[{method!r}] must map archetype numbers to "
                           f"names, not {type(overrides).__name__}.")
    out = {}
    for key, name in overrides.items():
        try:
            a = int(key)
        except (TypeError, ValueError):
            raise SegmentError(f"config.names[{method!r}] has key {key!r}, which is not an "
                               "archetype number.") from None
        if a not in archetype_ids and a != NOISE:
            raise SegmentError(
                f"config.names[{method!r}] names archetype {a}, but {method} has "
                f"archetypes {archetype_ids}; fix or remove that name.")
        out[a] = str(name)
    return out


# --------------------------------------------------------------------------


def _feature_contrasts(feat, members, dropped_constant):
    """``(feature, mean in, mean rest, smd, n in, n rest)`` of the members against the rest.

    Features with a pooled SD of 0 are left out and added to ``dropped_constant``.
    """
    contrasts = []
    for col in feat.columns:
        x = feat[col].to_numpy(dtype=float)
        a, b = x[members], x[~members]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if a.size < 1 or b.size < 1 or a.size + b.size < 3:
            continue
        va = np.var(a, ddof=1) if a.size > 1 else 0.0
        vb = np.var(b, ddof=1) if b.size > 1 else 0.0
        pooled = math.sqrt(((a.size - 1) * va + (b.size - 1) * vb)
                           / (a.size + b.size - 2))
        if pooled == 0:
            dropped_constant.add(str(col))
            continue
        smd = (a.mean() - b.mean()) / pooled
        contrasts.append((str(col), float(a.mean()), float(b.mean()),
                          float(smd), int(a.size), int(b.size)))
    return contrasts


def _draft_name(g, best) -> str:
    """``high x · low y`` from the strongest contrasts (``noise: ...`` for the noise group)."""
    words = " · ".join(
        f"{'high' if c[3] > 0 else 'low'} {c[0].replace('_', ' ')}"
        for c in best)
    return f"noise: {words}" if g == NOISE else words


def _archetypes_table(method, labels, feat, stab, names, top, log):
    label_arr = labels.to_numpy()
    total = len(label_arr)
    rows, feature_rows = [], []
    dropped_constant = set()
    for g in sorted(int(a) for a in np.unique(label_arr)):
        members = label_arr == g
        n = int(members.sum())
        group = "noise" if g == NOISE else "archetype"
        draft = "noise (not assigned to an archetype)" if g == NOISE else f"archetype {g}"
        top_text = ""
        if feat is not None and feat.shape[1]:
            if n == total:
                log.add(f"{method}: {_group_name(g)} holds every respondent, so there is "
                        "no rest of the cohort to contrast it with; it is not described "
                        "by features.")
            else:
                contrasts = _feature_contrasts(feat, members, dropped_constant)
                order = sorted(range(len(contrasts)), key=lambda i: -abs(contrasts[i][3]))
                rank = {i: r + 1 for r, i in enumerate(order)}
                for i, (col, ma, mb, smd, na, nb) in enumerate(contrasts):
                    feature_rows.append(dict(method=method, archetype=g, group=group,
                                             feature=col, mean_in=ma, mean_rest=mb,
                                             smd=smd, n_in=na, n_rest=nb, rank=rank[i]))
                best = [contrasts[i] for i in order[:top]]
                if best:
                    top_text = "; ".join(f"{c[0]} {c[3]:+.1f}" for c in best)
                    draft = _draft_name(g, best)
        rows.append(dict(method=method, archetype=g, group=group, n=n, share=n / total,
                         stability_verdict=stab["per"].get(g, NOT_ASSESSED),
                         name=names.get(g, draft), draft_name=draft, top_features=top_text))
    if dropped_constant:
        log.add(f"{method}: feature(s) {sorted(dropped_constant)} do not vary within the "
                "contrasted groups (pooled SD 0); left out of the archetype descriptions.")
    return _frame(rows, ARCHETYPE_COLUMNS), feature_rows

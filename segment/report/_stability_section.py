"""The report's stability section: cluster-wise stability and the test of structure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import VERDICTS, null_model
from . import _format as fmt
from ._archetypes import hidden_groups, size_text, verdict_class
from ._data import METHOD_LABELS, RunData
from ._verdict import stability_assessed


def stability_section(data: RunData) -> dict:
    """The stability tables: per archetype, per method and the test of structure."""
    if not stability_assessed(data):
        return {"assessed": False}
    st = data.table("stability")
    hidden = hidden_groups(data)
    f = pd.DataFrame({
        "method": st["method"].map(lambda m: METHOD_LABELS.get(m, m)),
        "archetype": st["archetype"].map(fmt.integer),
        "n": [size_text(n, data.min_cell, (str(m).replace("_reselected", ""), int(a)) in hidden)
              for m, a, n in zip(st["method"], st["archetype"], st.get("n", pd.Series(np.nan, index=st.index)))],
        "mean J": st["mean_jaccard"].map(lambda v: fmt.num(v, 2)),
        "MC SE": st.get("mean_jaccard_se", pd.Series(np.nan, index=st.index)).map(lambda v: fmt.num(v, 3)),
        "median J": st.get("median_jaccard", pd.Series(np.nan, index=st.index)).map(lambda v: fmt.num(v, 2)),
        "10th pct J": st.get("p10_jaccard", pd.Series(np.nan, index=st.index)).map(lambda v: fmt.num(v, 2)),
        "dissolved": st.get("share_dissolved", pd.Series(np.nan, index=st.index)).map(fmt.share),
        "recovered": st.get("share_recovered", pd.Series(np.nan, index=st.index)).map(fmt.share),
        "null reference": st.get("null_reference", pd.Series(np.nan, index=st.index)).map(
            lambda v: fmt.num(v, 2)),
        "p (Monte Carlo)": st.get("p_value", pd.Series(np.nan, index=st.index)).map(lambda v: fmt.num(v, 3)),
        "verdict": st["verdict"].astype(str),
    })
    classes = [f"verdict-{verdict_class(v)}" for v in st["verdict"]]
    thr = st["thresholds"].dropna().astype(str).iloc[0] if "thresholds" in st and st["thresholds"].notna().any() else ""
    metrics = data.metrics.get("stability") or {}
    facts = [(k.replace("_", " "), _fact(v)) for k, v in metrics.items() if not isinstance(v, (dict, list))]
    if isinstance(metrics.get("thresholds"), dict):
        facts.append(("thresholds", ", ".join(f"{k} = {v}" for k, v in metrics["thresholds"].items())))
    per_method = None
    pm = metrics.get("per_method")
    if isinstance(pm, dict) and pm:
        rows = []
        for method, d in pm.items():
            if not isinstance(d, dict):
                continue
            rows.append({"method": METHOD_LABELS.get(method, method),
                         "archetypes": fmt.integer(d.get("n_archetypes")),
                         **{v: fmt.integer(d.get(f"n_{v.replace(' ', '_')}")) for v in VERDICTS},
                         "median ARI": fmt.num(d.get("median_ari"), 2), "median AMI": fmt.num(d.get("median_ami"), 2),
                         "null reference": fmt.num(d.get("null_reference"), 2),
                         "structure p": fmt.num(d.get("structure_p_value"), 3)})
        if rows:
            per_method = fmt.table(pd.DataFrame(rows), caption="Stability per method",
                                   numeric=["archetypes", *VERDICTS, "median ARI", "median AMI", "null reference",
                                            "structure p"],
                                   note="Median ARI / AMI: agreement of each resample's partition with the "
                                        "original one on the shared respondents. Null reference: the quantile, "
                                        "at the Bonferroni-divided level, of the best archetype's mean Jaccard "
                                        f"in each structure-free cohort ({null_model(metrics.get('null'))[0]}). "
                                        "Structure p: "
                                        "Monte-Carlo p-value of this method's best archetype against them.")
    return {"assessed": True, "facts": facts, "thresholds": thr, "per_method": per_method,
            "table": fmt.table(f, caption="Cluster-wise stability (Jaccard similarity of each archetype with "
                                          "its best match over resamples; Hennig, 2007)",
                               row_classes=classes,
                               numeric=["n", "mean J", "MC SE", "median J", "10th pct J", "dissolved",
                                        "recovered", "null reference", "p (Monte Carlo)"],
                               note="J: Jaccard similarity. MC SE: Monte-Carlo standard error of the mean J "
                                    "over resamples. Dissolved: share of resamples with J < the dissolved "
                                    "threshold; recovered: share with J ≥ the stable threshold. Null reference: "
                                    "what the best archetype of a structure-free cohort of the same shape "
                                    "reaches (quantile at the Bonferroni-divided level); p: Monte-Carlo p-value "
                                    "of the archetype's mean J among those best archetypes."
                                    + (f" Thresholds: {thr}." if thr else "")),
            "structure": _structure_table(data)}


def _structure_table(data: RunData):
    t = data.table("structure_test")
    if not len(t):
        return None
    short, kept = null_model((data.metrics.get("stability") or {}).get("null"))
    f = pd.DataFrame({
        "method": t["method"].map(lambda m: METHOD_LABELS.get(m, m)),
        "best archetype's mean J": t["observed"].map(lambda v: fmt.num(v, 2)),
        "null cohorts": t["null_cohorts"].map(fmt.integer),
        "null mean": t["null_mean"].map(lambda v: fmt.num(v, 2)),
        "null 95th pct": t["null_q95"].map(lambda v: fmt.num(v, 2)),
        "p (Monte Carlo)": t["p_value"].map(lambda v: fmt.num(v, 3)),
        "structure at α = 0.05": t["reject"].map(lambda v: "yes" if bool(v) else "no"),
    })
    return fmt.table(f, caption="Test of structure per method: is the best archetype more reproducible than "
                                "the best archetype of structure-free cohorts of the same shape?",
                     numeric=["best archetype's mean J", "null cohorts", "null mean", "null 95th pct",
                              "p (Monte Carlo)"],
                     note=f"Null: {short} ({kept}), each fitted and resampled like the "
                          "cohort. p = (1 + null cohorts at least as reproducible) / (1 + null cohorts); "
                          "calibrated on known-truth cohorts in docs/validation.md.")


def _fact(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt.num(v, 3)
    return str(v)

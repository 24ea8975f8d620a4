"""The report's summary dict: everything the template shows, built from the saved files."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pandas as pd

from ..vocabulary import (
    ALL_STABLE,
    GAMES_HOWELL,
    NOISE,
    NOISE_NAME,
    NOT_ASSESSED,
    STABILITY_NOT_ASSESSED,
    STABLE_INTERPRETATION,
)
from . import _format as fmt
from ._data import METHOD_LABELS, RunData
from ._methods import methods_paragraphs, references
from ._suppress import (
    group_sizes_below,
    hidden_sizes,
    small_cell_mask,
    suppress_small_cells,
    suppressed_label,
    withhold_small_groups,
)
from ._verdict import group_warnings, stability_assessed
from ._verdict import verdict as run_verdict

SECTIONS = (
    ("summary", "Summary"), ("data", "Data"), ("model-selection", "Model selection"),
    ("embedding", "Embedding"), ("stability", "Stability"), ("profiles", "Archetype profiles"),
    ("outcomes", "Outcomes"), ("methods", "Methods"), ("reproducibility", "Reproducibility"),
)
_INDEX_LABELS = {"silhouette": "silhouette", "dbcv": "DBCV", "calinski_harabasz": "Calinski–Harabasz",
                 "davies_bouldin": "Davies–Bouldin"}
_EFFECT_LABELS = {"eta_squared": "η²", "omega_squared": "ω²", "omega_squared_classical": "classical ω²",
                  "epsilon_squared": "ε²"}


def label(a) -> str:
    a = int(a)
    return NOISE_NAME if a == NOISE else f"archetype {a}"


def _size_text(n, min_cell: int, hidden: bool) -> str:
    """An archetype's size, or ``"<min_cell"`` when it is suppressed (see
    :func:`~segment.report._suppress.hidden_sizes`)."""
    if fmt.is_missing(n):
        return "—"
    return suppressed_label(min_cell) if hidden else fmt.integer(n)


def _hidden(data: RunData) -> set:
    return hidden_sizes(data.table("archetype_sizes"), data.min_cell) | group_sizes_below(data.tables, data.min_cell)


def _subset_n(n, data: RunData) -> str:
    """A count of a subset of the analysed respondents (e.g. those not noise),
    blank when the rest would be a count below ``min_cell``."""
    total = (data.metrics.get("cohort") or {}).get("n_analysed")
    if fmt.is_missing(n) or total is None:
        return fmt.integer(n)
    return "" if 0 < int(total) - int(n) < data.min_cell else fmt.integer(n)


def _verdicts(data: RunData) -> dict:
    """(method, archetype) -> stability verdict."""
    out = {}
    if stability_assessed(data):
        st = data.table("stability")
        for m, a, v in zip(st["method"], st["archetype"], st["verdict"]):
            out[(str(m), int(a))] = str(v)
    arch = data.table("archetypes")
    if len(arch):
        for m, a, v in zip(arch["method"], arch["archetype"], arch["stability_verdict"]):
            out.setdefault((str(m), int(a)), str(v))
    return out


def verdict_class(verdict: str) -> str:
    v = str(verdict).lower()
    if v.startswith("stable") or v == ALL_STABLE or v == STABLE_INTERPRETATION:
        return "ok"
    if v.startswith("weak"):
        return "warn"
    if v.startswith("dissolved") or v.startswith("not all"):
        return "bad"
    return "muted"


# --------------------------------------------------------------------------
# sections

def _summary_section(data: RunData, verdicts: dict) -> dict:
    mc = data.min_cell
    sizes = data.table("archetype_sizes")
    hidden = _hidden(data)
    rows, classes = [], []
    for method in data.methods:
        part = sizes[sizes["method"] == method].sort_values("archetype")
        arch = part[part["group"] == "archetype"]
        noise = part[part["group"] == "noise"]
        small = [int(a) for a, n in zip(arch["archetype"], arch["n"]) if int(n) < mc]
        txt = ", ".join(f"{int(a)}: {_size_text(n, mc, (method, int(a)) in hidden)}"
                        for a, n in zip(arch["archetype"], arch["n"]))
        if len(noise):
            noise_hidden = (method, int(noise["archetype"].iloc[0])) in hidden
            txt += (f"; noise: {_size_text(noise['n'].iloc[0], mc, noise_hidden)}"
                    + ("" if noise_hidden else f" ({fmt.share(noise['share'].iloc[0], 0)})"))
        vs = [verdicts.get((method, int(a)), NOT_ASSESSED) for a in arch["archetype"]]
        counts = pd.Series(vs).value_counts() if vs else pd.Series(dtype=int)
        vtxt = ", ".join(f"{n} {v}" for v, n in counts.items()) or "—"
        rows.append([METHOD_LABELS.get(method, method), str(len(arch)), txt or "none", vtxt,
                     ", ".join(map(str, small)) or ""])
        classes.append("")
    table = fmt.table(pd.DataFrame(rows, columns=["method", "archetypes", "sizes (n)", "stability",
                                                  f"smaller than {mc}"]),
                      caption="Archetypes found by each method",
                      note=f"Counts below {mc} are shown as {suppressed_label(mc)} (report.min_cell), and so is "
                           "the next smallest size where the number analysed would give a small one back; "
                           f"no statistic of an archetype smaller than {mc} is shown.")
    cohort = data.metrics.get("cohort", {}) or {}
    excl = cohort.get("excluded_by_reason", {}) or {}
    found = run_verdict(data)
    return {"verdict": found.sentences, "verdict_status": found.status,
            "verdict_class": {"stable": "ok", "not stable": "bad"}.get(found.status, "warn"),
            "sentences": group_warnings(data.metrics.get("summary", []) or []), "methods": table,
            "cohort": cohort, "excluded": [{"reason": k, "n": fmt.integer(v)} for k, v in excl.items()],
            "assessed": stability_assessed(data)}


def _data_section(data: RunData) -> dict:
    mc = data.min_cell
    out = {"missingness": None, "answers": None, "answers_frame": None}
    miss = data.table("missingness")
    if len(miss):
        shown = _missing_counts(miss, mc)
        f = pd.DataFrame({
            "item": miss["name"], "role": miss.get("role", ""), "type": miss.get("type", ""),
            "n missing": shown["n_missing"],
            "% missing": [suppressed_label(mc) if h else fmt.share(v)
                          for v, h in zip(miss["share_missing"], shown["n_missing"] == suppressed_label(mc))],
            "coded missing (e.g. “Don't know”)": shown["n_missing_code"],
        })
        out["missingness"] = fmt.table(f, caption="Missing answers per item",
                                       numeric=["n missing", "% missing", "coded missing (e.g. “Don't know”)"],
                                       note=f"Counts from 1 to {mc - 1} are shown as {suppressed_label(mc)}, "
                                            "and so is a coded-missing count that would give the other "
                                            "missing answers back by subtraction.")
    ans = data.table("answers")
    if len(ans):
        sup = suppress_small_cells(ans[["name", "answer", "mapped_to", "n"]], mc, columns=["n"], by="name")
        out["answers_frame"] = sup
        f = sup.rename(columns={"name": "item", "answer": "answer in the file", "mapped_to": "mapped to"})
        f["n"] = [fmt.integer(v) if not isinstance(v, str) else v for v in f["n"]]
        out["answers"] = fmt.table(f, caption="How answers were mapped", numeric=["n"],
                                   note=f"Counts below {mc} are shown as {suppressed_label(mc)}.")
        out["n_answers"] = len(f)
    return out


def _missing_counts(miss: pd.DataFrame, mc: int) -> pd.DataFrame:
    """Shown missing counts per item: a line (coded missing, other missing)
    whose total is the item's missing count."""
    n = pd.to_numeric(miss["n_missing"], errors="coerce").to_numpy(float)
    coded = pd.to_numeric(miss.get("n_missing_code", pd.Series(np.nan, index=miss.index)),
                          errors="coerce").to_numpy(float)
    other = n - np.nan_to_num(coded)
    hide = small_cell_mask(np.column_stack([coded, other]), mc, columns=False, protect_zeros=False)[:, 0]
    hide_n = (n > 0) & (n < mc)
    label = suppressed_label(mc)
    return pd.DataFrame({
        "n_missing": [label if h else fmt.integer(v) for v, h in zip(n, hide_n)],
        "n_missing_code": [label if h or hn else fmt.integer(v) for v, h, hn in zip(coded, hide, hide_n)],
    }, index=miss.index)


def _model_section(data: RunData) -> dict:
    mc = data.min_cell
    out = {}
    ms = data.table("model_selection")
    if len(ms):
        chosen = ms.get("selected", pd.Series(False, index=ms.index)).astype(str).str.lower() == "true"
        f = pd.DataFrame({
            "k": ms["k"].map(fmt.integer), "covariance": ms["covariance_type"],
            "LL": ms["log_likelihood"].map(lambda v: fmt.num(v, 1)),
            "parameters": ms.get("n_parameters", pd.Series(np.nan, index=ms.index)).map(fmt.integer),
            "AIC": ms["aic"].map(lambda v: fmt.num(v, 1)), "BIC": ms["bic"].map(lambda v: fmt.num(v, 1)),
            "ICL": ms["icl"].map(lambda v: fmt.num(v, 1)), "entropy": ms["entropy"].map(lambda v: fmt.num(v, 3)),
            "smallest class": [_smallest_share(v, data) for v in ms["smallest_share"]],
            "converged": ms.get("converged", "").astype(str).str.replace("True", "yes").str.replace("False", "no"),
            "selected": np.where(chosen, "✔ selected", ""),
        })
        crit = str((data.metrics.get("gmm") or {}).get("criterion", "bic")).upper()
        out["gmm"] = fmt.table(
            f, caption=f"Gaussian mixture model selection (chosen by {crit})",
            row_classes=np.where(chosen, "chosen", ""),
            numeric=["k", "LL", "parameters", "AIC", "BIC", "ICL", "entropy", "smallest class"],
            note="LL: log-likelihood. AIC, BIC, ICL (integrated completed likelihood; Biernacki et al., 2000): "
                 "lower is better. Entropy: relative entropy of the posterior classification (1 = crisp). "
                 "Smallest class: share of respondents in the smallest component.")
    hcfg = ((data.config.get("cluster") or {}).get("hdbscan") or {})
    hm = data.metrics.get("hdbscan") or {}
    if hm or hcfg:
        out["hdbscan"] = [
            ("min_cluster_size", f"{hm.get('min_cluster_size', '—')} respondents"
             + (f" (config: {hcfg.get('min_cluster_size')})" if hcfg.get("min_cluster_size") is not None else "")),
            ("min_samples", str(hcfg.get("min_samples") or "= min_cluster_size")),
            ("cluster selection", str(hcfg.get("selection_method", "eom"))),
            ("epsilon", str(hcfg.get("epsilon", 0.0))),
            ("archetypes found", str(hm.get("n_archetypes", "—"))),
            ("noise share", suppressed_label(data.min_cell) + " respondents"
             if ("hdbscan", NOISE) in _hidden(data) else fmt.share(hm.get("noise_share"))),
        ]
    agr = data.table("agreement")
    if len(agr):
        f = pd.DataFrame({"methods": [f"{METHOD_LABELS.get(a, a)} × {METHOD_LABELS.get(b, b)}"
                                      for a, b in zip(agr["method_a"], agr["method_b"])],
                          "ARI": agr["ari"].map(lambda v: fmt.num(v, 3)),
                          "AMI": agr["ami"].map(lambda v: fmt.num(v, 3)),
                          "n": [_subset_n(v, data) for v in agr["n"]], "note": agr.get("note", "")})
        out["agreement"] = fmt.table(f, caption="Agreement between methods", numeric=["ARI", "AMI", "n"],
                                     note="ARI: adjusted Rand index; AMI: adjusted mutual information "
                                          "(0 = chance, 1 = identical partitions).")
    cont = data.table("contingency_hdbscan_gmm")
    if len(cont):
        first = cont.columns[0]
        sup = suppress_small_cells(cont.set_index(first), mc).reset_index()
        out["contingency_frame"] = sup
        f = sup.copy()
        f[first] = [label(a) for a in f[first]]
        f.columns = ["HDBSCAN \\ GMM"] + [f"component {c}" for c in f.columns[1:]]
        for c in f.columns[1:]:
            f[c] = [fmt.integer(v) if not isinstance(v, str) else v for v in f[c]]
        out["contingency"] = fmt.table(f, caption="Respondents by HDBSCAN archetype (rows) and GMM "
                                                  "component (columns)", numeric=list(f.columns[1:]),
                                       note=f"Counts below {mc} (including zeros) are shown as "
                                            f"{suppressed_label(mc)}.")
    ind = data.table("indices")
    if len(ind):
        higher = {"silhouette": "higher is better", "dbcv": "higher is better",
                  "calinski_harabasz": "higher is better", "davies_bouldin": "lower is better"}
        f = pd.DataFrame({"method": ind["method"].map(lambda m: METHOD_LABELS.get(m, m)),
                          "index": [f"{_INDEX_LABELS.get(i, i)} ({s})" for i, s in zip(ind["index"], ind["space"])],
                          "value": ind["value"].map(lambda v: fmt.num(v, 3)),
                          "direction": ind["index"].map(lambda i: higher.get(i, "")),
                          "n": [_subset_n(v, data) for v in ind["n"]], "note": ind.get("note", "")})
        out["indices"] = fmt.table(f, caption="Internal validity indices, each labelled with the space it "
                                              "was computed in", numeric=["value", "n"],
                                   note="HDBSCAN indices leave noise out. Indices in the UMAP embedding favour "
                                        "the density-based picture UMAP draws; those in the scaled feature "
                                        "space are the more honest check.")
    return out


def _smallest_share(share, data: RunData) -> str:
    """The share of the smallest mixture component, blank when it stands for
    fewer than ``min_cell`` respondents."""
    total = (data.metrics.get("cohort") or {}).get("n_analysed")
    if not fmt.is_missing(share) and total is not None and float(share) * int(total) < data.min_cell:
        return f"< {data.min_cell} resp."
    return fmt.share(share)


def _stability_section(data: RunData) -> dict:
    if not stability_assessed(data):
        return {"assessed": False}
    st = data.table("stability")
    hidden = _hidden(data)
    f = pd.DataFrame({
        "method": st["method"].map(lambda m: METHOD_LABELS.get(m, m)),
        "archetype": st["archetype"].map(fmt.integer),
        "n": [_size_text(n, data.min_cell, (str(m).replace("_reselected", ""), int(a)) in hidden)
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
                         "archetypes": fmt.integer(d.get("n_archetypes")), "stable": fmt.integer(d.get("n_stable")),
                         "borderline": fmt.integer(d.get("n_borderline")),
                         "weak": fmt.integer(d.get("n_weak")), "dissolved": fmt.integer(d.get("n_dissolved")),
                         "median ARI": fmt.num(d.get("median_ari"), 2), "median AMI": fmt.num(d.get("median_ami"), 2),
                         "null reference": fmt.num(d.get("null_reference"), 2),
                         "structure p": fmt.num(d.get("structure_p_value"), 3)})
        if rows:
            per_method = fmt.table(pd.DataFrame(rows), caption="Stability per method",
                                   numeric=["archetypes", "stable", "borderline", "weak", "dissolved", "median ARI",
                                            "median AMI", "null reference", "structure p"],
                                   note="Median ARI / AMI: agreement of each resample's partition with the "
                                        "original one on the shared respondents. Null reference: the quantile, "
                                        "at the Bonferroni-divided level, of the best archetype's mean Jaccard "
                                        "in each structure-free (Gaussian-copula) cohort. Structure p: "
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
                     note="Null: Gaussian copulas of the cohort's own answers (every item keeps its answers, "
                          "the items their rank correlations; no modes), each fitted and resampled like the "
                          "cohort. p = (1 + null cohorts at least as reproducible) / (1 + null cohorts); "
                          "calibrated on known-truth cohorts in docs/validation.md.")


def _fact(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt.num(v, 3)
    return str(v)


def _outcome_stats(data: RunData) -> pd.DataFrame:
    prof = data.table("profiles")
    if not len(prof):
        return pd.DataFrame()
    return prof.pivot_table(index=["method", "outcome", "archetype"], columns="statistic", values="value",
                            aggfunc="first").reset_index()


def _profiles_section(data: RunData, verdicts: dict) -> dict:
    mc = data.min_cell
    arch = data.table("archetypes")
    stats_ = _outcome_stats(data)
    prof = data.table("profiles")
    hidden = _hidden(data)
    small_set = group_sizes_below(data.tables, mc)
    methods = []
    for method in data.methods:
        cards = []
        part = arch[arch["method"] == method] if len(arch) else pd.DataFrame()
        for _, r in part.sort_values("archetype").iterrows():
            a = int(r["archetype"])
            n = r.get("n")
            small = (method, a) in small_set
            size_hidden = (method, a) in hidden
            outcomes = []
            if len(stats_):
                s = stats_[(stats_["method"] == method) & (stats_["archetype"] == a)]
                for _, o in s.iterrows():
                    outcomes.append({"outcome": o["outcome"], "mean": fmt.num(o.get("mean"), 2),
                                     "ci": f"{fmt.num(o.get('ci_low'), 2)} to {fmt.num(o.get('ci_high'), 2)}",
                                     "sd": fmt.num(o.get("sd"), 2)})
            cutoffs = []
            if len(prof) and "cutoff_label" in prof:
                cut = prof[(prof["method"] == method) & (prof["archetype"] == a)
                           & prof["statistic"].astype(str).str.startswith("share_at_or_above")]
                for _, c in cut.iterrows():
                    what = c["cutoff_label"] if not fmt.is_missing(c["cutoff_label"]) else f"≥ {c['threshold']:g}"
                    cutoffs.append(f"{c['outcome']}: {_cutoff_share(c['value'], n, mc)} {what}")
            feats = []
            for token in str(r.get("top_features", "") or "").split(";"):
                token = token.strip()
                if token:
                    name, _, value = token.rpartition(" ")
                    feats.append({"feature": name or token, "smd": value.replace("-", "−"),
                                  "sign": "neg" if value.startswith("-") else "pos"})
            verdict = verdicts.get((method, a), str(r.get("stability_verdict", NOT_ASSESSED)))
            cards.append({
                "archetype": a, "title": label(a), "name": str(r.get("name", "") or ""),
                "noise": a == NOISE, "n": _size_text(n, mc, size_hidden),
                "share": "—" if size_hidden else fmt.share(r.get("share")),
                "small": small, "verdict": verdict, "verdict_class": verdict_class(verdict),
                "features": feats, "outcomes": outcomes, "cutoffs": cutoffs,
            })
        if cards:
            methods.append({"method": method, "label": METHOD_LABELS.get(method, method), "cards": cards})
    return {"methods": methods, "crosstabs": _crosstabs(data)}


def _cutoff_share(share, n, mc: int) -> str:
    """The share of an archetype at or above a cutoff, unless it stands for
    (or leaves out) fewer than ``mc`` of its respondents."""
    if fmt.is_missing(share) or fmt.is_missing(n):
        return fmt.share(share, 0)
    above = float(share) * int(n)
    if 0.5 <= above < mc - 0.5 or 0.5 <= int(n) - above < mc - 0.5:
        return f"{'fewer than' if above < mc else 'all but fewer than'} {mc} respondents"
    return fmt.share(share, 0)


def _crosstabs(data: RunData) -> list:
    """Categorical covariate × archetype tables from ``covariate_crosstab.csv`` (suppressed)."""
    ct = data.table("covariate_crosstab")
    need = {"method", "covariate", "level", "archetype", "n"}
    if not len(ct) or not need <= set(ct.columns):
        return []
    mc = data.min_cell
    out = []
    for (method, cov), part in ct.groupby(["method", "covariate"], sort=False):
        wide = part.pivot_table(index="level", columns="archetype", values="n", aggfunc="sum", fill_value=0)
        wide = wide.reindex(columns=sorted(wide.columns))
        sup = suppress_small_cells(wide, mc).reset_index()
        shown = sup.copy()
        shown.columns = [str(cov)] + [label(a) for a in wide.columns]
        for c in shown.columns[1:]:
            shown[c] = [fmt.integer(v) if not isinstance(v, str) else v for v in shown[c]]
        long = sup.melt(id_vars="level", var_name="archetype", value_name="n")
        long.insert(0, "covariate", cov)
        long.insert(0, "method", method)
        out.append({"frame": long, "table": fmt.table(
            shown, caption=f"{cov} by {METHOD_LABELS.get(method, method)} archetype (respondents)",
            numeric=list(shown.columns[1:]),
            note=f"Counts below {mc} (including zeros) are shown as {suppressed_label(mc)}.")})
    return out


def _outcomes_section(data: RunData, verdicts: dict) -> dict:
    tests = data.table("tests")
    pair = data.table("pairwise")
    adj = data.table("adjusted")
    cont = data.table("continuum")
    unc = data.table("uncertainty")
    stats_ = _outcome_stats(data)
    small = group_sizes_below(data.tables, data.min_cell)
    methods, frames = [], []
    for method in data.methods:
        t = tests[(tests["method"] == method)] if len(tests) else pd.DataFrame()
        if not len(t):
            continue
        main = t[t["subset"] == "all assigned"] if "subset" in t else t
        interp = str(main["interpretation"].dropna().iloc[0]) if "interpretation" in main and main[
            "interpretation"].notna().any() else STABILITY_NOT_ASSESSED
        if interp == STABILITY_NOT_ASSESSED and stability_assessed(data):
            interp = _interpretation_from_stability(data, method, interp)
        described = set() if not len(stats_) else set(
            int(a) for a in stats_.loc[(stats_["method"] == method) & (stats_["archetype"] != NOISE), "archetype"])
        archetypes = sorted(described | {a for m, a in small if m == method and a != NOISE})
        p = pair[pair["method"] == method] if len(pair) else pd.DataFrame()
        correction = (str(p["correction"].iloc[0]) if len(p) else "")
        family = (str(p["family"].iloc[0]) if len(p) else "")
        pair_test = (str(p["test"].iloc[0]) if len(p) else "")
        rows = []
        for outcome in dict.fromkeys(main["outcome"]):
            row = {"outcome": outcome}
            for a in archetypes:
                s = stats_[(stats_["method"] == method) & (stats_["outcome"] == outcome)
                           & (stats_["archetype"] == a)] if len(stats_) else stats_
                row[f"{a}: M (SD)"] = (f"{fmt.num(s['mean'].iloc[0])} ({fmt.num(s['sd'].iloc[0])})"
                                       if len(s) else "—")
                if (method, a) in small:
                    row[f"{a}: M (SD)"] = ""
            w = main[(main["outcome"] == outcome) & (main["test"] == "Welch's ANOVA")]
            if len(w):
                w = w.iloc[0]
                row["Welch F (df)"] = f"F({fmt.num(w['df1'], 0)}, {fmt.num(w['df2'], 1)}) = {fmt.num(w['statistic'])}"
                row["p (Welch)"] = fmt.pvalue(w["p_value"])
                if "p_adjusted" in w:
                    row["p adj. (Welch)"] = fmt.pvalue(w["p_adjusted"])
                row["classical ω²"] = fmt.apa(w["effect_size"])
            kw = main[(main["outcome"] == outcome) & (main["test"] == "Kruskal-Wallis")]
            if len(kw):
                kw = kw.iloc[0]
                row["Kruskal–Wallis H (df)"] = f"H({fmt.num(kw['df1'], 0)}) = {fmt.num(kw['statistic'])}"
                row["p (K–W)"] = fmt.pvalue(kw["p_value"])
                if "p_adjusted" in kw:
                    row["p adj. (K–W)"] = fmt.pvalue(kw["p_adjusted"])
                row["ε²"] = fmt.apa(kw["effect_size"])
            c = cont[(cont["method"] == method) & (cont["outcome"] == outcome)] if len(cont) else cont
            if len(c):
                c = c.iloc[0]
                row["η² archetypes"] = fmt.apa(c["archetype_eta_squared"])
                row["R² features"] = fmt.apa(c["features_r_squared"])
                row["η² PC1 slices"] = fmt.apa(c["pc1_slices_eta_squared"])
            if len(p):
                po = p[p["outcome"] == outcome]
                n_sig = int((po["reject"].astype(str).str.lower() == "true").sum())
                row["pairs differing"] = f"{n_sig} of {len(po)}"
            row["stability"] = interp if interp in (STABILITY_NOT_ASSESSED, STABLE_INTERPRETATION) else "NOT STABLE"
            rows.append(row)
        frame = pd.DataFrame(rows)
        frames.append(frame.assign(method=method))
        pair_table = None
        if len(p):
            pf = pd.DataFrame({
                "outcome": p["outcome"],
                "pair": [f"{int(a)} vs {int(b)}" for a, b in zip(p["archetype_a"], p["archetype_b"])],
                "mean difference": p["mean_diff"].map(fmt.num),
                "SE": p["se"].map(fmt.num),
                "statistic (df)": [f"{fmt.num(t_)} ({fmt.num(d, 1)})" for t_, d in zip(p["statistic"], p["df"])],
                "p": p["p_value"].map(fmt.pvalue), "p adjusted": p["p_adjusted"].map(fmt.pvalue),
                "Hedges' g": p["hedges_g"].map(fmt.num),
                "differs": np.where(p["reject"].astype(str).str.lower() == "true", "yes", "no"),
            })
            pair_table = fmt.table(pf, caption=f"{METHOD_LABELS.get(method, method)}: pairwise comparisons",
                                   numeric=["mean difference", "SE", "statistic (df)", "p", "p adjusted",
                                            "Hedges' g"],
                                   note=f"{pair_test} tests; p adjusted by the {{corr}} correction over the "
                                        f"family “{family}”; differs: adjusted p < .05.")
        numeric = [c for c in frame.columns
                   if c.endswith("M (SD)") or c.startswith(("p ", "classical ω", "ε", "η", "R²"))]
        corr_name = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}.get(correction, correction)
        note = ("M (SD): mean (standard deviation) per archetype"
                + ("; the noise group is described but not tested" if method == "hdbscan" else "")
                + ". Welch F: Welch's ANOVA (Welch, 1951), shown with the classical ω² (from the ANOVA sums of "
                  "squares, not Welch-adjusted). Kruskal–Wallis H: rank test, effect size ε². ")
        fam = main["family"].dropna() if "family" in main else pd.Series(dtype=object)
        if len(fam):
            note += (f"p adj.: each test's p-values {main['correction'].iloc[0]}-corrected over the outcomes "
                     f"(family e.g. “{fam.iloc[0]}”). ")
        if len(p) and correction == GAMES_HOWELL:
            note += ("Pairs differing: Games–Howell p-values, adjusted over the pairs of each outcome by the "
                     "studentized range and not corrected again (p < .05; each pair below). ")
            pair_table["note"] = ("Games–Howell tests; p is adjusted over the pairs of the outcome (studentized "
                                  "range), not corrected again; differs: p < .05.")
        elif len(p):
            note += (f"Pairs differing: {pair_test} tests with p adjusted by the {corr_name} correction over the "
                     f"family “{family}” (adjusted p < .05; each pair below). ")
            pair_table["note"] = pair_table["note"].replace("{corr}", corr_name)
        cm = cont[cont["method"] == method] if len(cont) else cont
        if len(cm):
            note += ("η² archetypes, R² features, η² PC1 slices: how much of each outcome the archetypes explain, "
                     "beside the clustering features without clusters (OLS R²) and equal slices of their first "
                     "principal component. ")
            good = [str(o) for o, g in zip(cm["outcome"], cm["continuum_as_good"])
                    if str(g).lower() == "true"]
            if good:
                note += (f"For {', '.join(good)} the features without clusters explain as much as the archetypes "
                         "or more: the differences may be slices of a continuum. ")
        note += "p values are not adjusted across methods."
        withheld = sorted(a for m, a in small if m == method and a != NOISE)
        if withheld:
            note += (f" Archetype(s) {', '.join(map(str, withheld))}: fewer than {data.min_cell} respondents, "
                     "statistics not shown (report.min_cell).")
        adj_m = adj[(adj["method"] == method) & (adj["kind"] == "difference_vs_reference")] if len(adj) else adj
        adj_note = ""
        if len(adj_m):
            covs = str(adj_m["covariates"].dropna().iloc[0]) if adj_m["covariates"].notna().any() else "none"
            se = ", ".join(sorted(set(adj_m["se_type"].dropna().astype(str)))) or "HC3"
            ref = adj_m["reference_archetype"].dropna()
            adj_note = (f"OLS of each outcome on archetype, adjusted for {covs}; {se} robust standard errors "
                        f"(MacKinnon & White, 1985); 95% CIs; differences from archetype "
                        f"{int(ref.iloc[0]) if len(ref) else '?'}.")
            if "family" in adj_m and adj_m["family"].notna().any():
                adj_note += f" p-values of the differences: {adj_m['family'].dropna().iloc[0]}."
            notes = sorted(set(adj_m["note"].dropna().astype(str)) - {""})
            if notes:
                adj_note += " Note: " + "; ".join(notes) + "."
        um = unc[unc["method"] == method] if len(unc) else unc
        unc_table = None
        if len(um):
            uf = pd.DataFrame({"outcome": um["outcome"], "archetype": um["archetype"].map(label),
                               "mean": um["estimate"].map(fmt.num),
                               "95% CI": [f"{fmt.num(lo)} to {fmt.num(hi)}"
                                          for lo, hi in zip(um["ci_low"], um["ci_high"])],
                               "SE": um["se"].map(fmt.num), "draws": um["m"].map(fmt.integer)})
            unc_table = fmt.table(uf, caption=f"{METHOD_LABELS.get(method, method)}: membership uncertainty",
                                  numeric=["mean", "95% CI", "SE", "draws"],
                                  note="Archetype means carrying the uncertainty of mixture membership: "
                                       "pseudo-class draws from the posteriors, combined with Rubin's rules "
                                       "(Barnard–Rubin degrees of freedom).")
        methods.append({
            "method": method, "label": METHOD_LABELS.get(method, method), "interpretation": interp,
            "uncertainty": unc_table,
            "verdict_class": verdict_class(interp),
            "stable": interp == STABLE_INTERPRETATION, "assessed": interp != STABILITY_NOT_ASSESSED,
            "apa": fmt.table(frame, caption=f"{METHOD_LABELS.get(method, method)}: outcomes by archetype",
                             numeric=numeric, note=note,
                             row_classes=["" if r["stability"] != "NOT STABLE" else "verdict-bad" for r in rows]),
            "adjusted_note": adj_note, "pairwise": pair_table,
        })
    return {"methods": methods, "apa_frame": pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()}


def _interpretation_from_stability(data: RunData, method: str, default: str) -> str:
    """The tests' stability interpretation, from ``stability.csv`` when the tests do not carry it."""
    st = data.table("stability")
    st = st[(st["method"] == method) & (st["archetype"] != NOISE)]
    if not len(st):
        return default
    unstable = [(int(a), str(v)) for a, v in zip(st["archetype"], st["verdict"]) if str(v) != "stable"]
    if not unstable:
        return STABLE_INTERPRETATION
    which = "; ".join(f"archetype {a}: {v}" for a, v in unstable)
    return (f"not all archetypes are stable under resampling ({which}): differences may reflect slicing a "
            "continuum rather than distinct groups and are not to be read as findings")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if v is None:
        return '""'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v), ensure_ascii=False)


def config_toml(config: dict) -> str:
    """The resolved config as TOML text."""
    lines = []

    def section(name, table):
        plain = {k: v for k, v in table.items() if not isinstance(v, dict) or not v or name == ""}
        nested = {k: v for k, v in table.items() if isinstance(v, dict) and v}
        if plain or not nested:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in plain.items())
            lines.append("")
        for k, v in nested.items():
            section(f"{name}.{k}", v)

    for name, table in config.items():
        if isinstance(table, dict):
            section(name, table)
    return "\n".join(lines).strip() + "\n"


def _repro_section(data: RunData) -> dict:
    m = data.manifest
    stages = pd.DataFrame(m.get("stages", []) or [])
    stage_table = None
    if len(stages):
        f = pd.DataFrame({"stage": stages["stage"],
                          "wall time (s)": stages["wall_seconds"].map(lambda v: fmt.num(v, 2)),
                          "peak memory (MiB)": stages.get("peak_rss_mib", pd.Series(np.nan, index=stages.index)).map(
                              lambda v: fmt.num(v, 0))})
        stage_table = fmt.table(f, caption="Wall time per stage", numeric=["wall time (s)", "peak memory (MiB)"],
                                note=f"Total wall time {fmt.num(m.get('wall_seconds'), 1)} s; peak memory "
                                     f"{fmt.num(m.get('peak_rss_mib'), 0)} MiB.")
    packages = [(k, str(v) if v else "not installed") for k, v in (m.get("packages") or {}).items()]
    inp = m.get("input") or {}
    facts = [("run", m.get("run_id", "")), ("created", m.get("created", "")), ("command", m.get("command", "")),
             ("config file", m.get("config_file") or "—"), ("seed", str(m.get("seed", ""))),
             ("input file", inp.get("file") or "—"), ("input SHA-256", inp.get("sha256") or "—"),
             ("codebook", inp.get("codebook") or "—"), ("codebook SHA-256", inp.get("codebook_sha256") or "—")]
    model = m.get("model") or {}
    if model:
        facts.append(("model", f"{model.get('path', '')} (SHA-256 {model.get('sha256', '')})"))
    resub = m.get("resubmissions") or {}
    if resub:
        facts.append(("resubmissions", f"policy {resub.get('policy')}, {resub.get('rows_removed', 0)} rows removed"))
    if m.get("unmentioned_columns"):
        facts.append(("columns not in the codebook (ignored)", ", ".join(map(str, m["unmentioned_columns"]))))
    return {"facts": facts, "packages": packages, "stages": stage_table,
            "config": config_toml(data.config) if data.config else ""}


def _embedding_caption(data: RunData) -> str:
    r = data.config.get("reduce") or {}
    n_comp = r.get("n_components", "?")
    return (f"A 2-D UMAP of the respondents, for display only: clustering ran in a {n_comp}-dimensional UMAP "
            f"embedding (n_neighbors = {r.get('n_neighbors', '?')}), so distances and overlaps in this picture "
            "are not what the methods saw. Each point is a distinct answer pattern (larger points stand for "
            "several respondents who answered alike); colour is the archetype, noise is grey. At most 5,000 "
            "points are drawn.")


# --------------------------------------------------------------------------

def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def build_summary(data: RunData, *, figures: bool = True) -> dict:
    """Everything the report shows, as a plain dict (no respondent-level data).

    Parameters
    ----------
    data : RunData
    figures : bool
        Draw the figures (as SVG text under ``"figures"``).

    Returns
    -------
    dict
    """
    data = dataclasses.replace(data, tables=withhold_small_groups(data.tables, data.min_cell))
    verdicts = _verdicts(data)
    m = data.manifest
    exp = (data.config.get("experiment") or {})
    cohort = data.metrics.get("cohort", {}) or {}
    summary = {
        "title": exp.get("title") or exp.get("name") or "segment report",
        "experiment": exp.get("name", ""), "run_id": m.get("run_id", ""), "created": m.get("created", ""),
        "cohort_title": cohort.get("title") or cohort.get("name", ""),
        "min_cell": data.min_cell, "suppressed": suppressed_label(data.min_cell),
        "sections": SECTIONS,
        "summary": _summary_section(data, verdicts),
        "data": _data_section(data),
        "model": _model_section(data),
        "embedding_caption": _embedding_caption(data),
        "stability": _stability_section(data),
        "profiles": _profiles_section(data, verdicts),
        "outcomes": _outcomes_section(data, verdicts),
        "methods_text": methods_paragraphs(data.config, data.metrics),
        "references": references(data.config),
        "reproducibility": _repro_section(data),
        "figures": {},
    }
    if figures:
        summary["figures"] = draw_figures(data)
    return summary


def draw_figures(data: RunData) -> dict:
    """name -> {"svg", "uri", "alt"} for every figure the run can draw."""
    from . import figures as F

    wanted = [("embedding", F.embedding_figure, {}, "2-D UMAP of respondents coloured by archetype"),
              ("model_selection", F.model_selection_figure, {}, "Information criteria by number of components"),
              ("stability", F.stability_figure, {}, "Jaccard similarities per archetype against the null"),
              ("feature_heatmap", F.feature_heatmap_figure, {}, "Standardised feature means per archetype")]
    for method in data.methods:
        wanted.append((f"outcome_means_{method}", F.outcome_means_figure, {"method": method},
                       f"Outcome means with 95% CIs per {METHOD_LABELS.get(method, method)} archetype"))
        wanted.append((f"forest_{method}", F.forest_figure, {"method": method},
                       f"Covariate-adjusted differences per {METHOD_LABELS.get(method, method)} archetype"))
    out = {}
    from matplotlib.figure import Figure  # noqa: F401  (figures are plain Figure objects)
    for name, fn, kwargs, alt in wanted:
        fig = fn(data, **kwargs)
        if fig is None:
            continue
        svg = F.figure_to_svg(fig)
        out[name] = {"svg": svg, "uri": svg_data_uri(svg), "alt": alt}
    return out

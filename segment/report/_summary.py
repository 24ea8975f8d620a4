"""The report's summary dict: everything the template shows, built from the saved files."""

from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pandas as pd

from ..vocabulary import NOISE, NOT_ASSESSED
from . import _format as fmt
from ._archetypes import hidden_groups, label, size_text
from ._data import METHOD_LABELS, RunData
from ._methods import methods_paragraphs, references
from ._outcomes import outcomes_section, profiles_section
from ._repro import repro_section
from ._stability_section import stability_section
from ._suppress import small_cell_mask, suppress_small_cells, suppressed_label, withhold_small_groups
from ._verdict import group_warnings, stability_assessed
from ._verdict import verdict as run_verdict

SECTIONS = (
    ("summary", "Summary"), ("data", "Data"), ("model-selection", "Model selection"),
    ("embedding", "Embedding"), ("stability", "Stability"), ("profiles", "Archetype profiles"),
    ("outcomes", "Outcomes"), ("methods", "Methods"), ("reproducibility", "Reproducibility"),
)
_INDEX_LABELS = {"silhouette": "silhouette", "dbcv": "DBCV", "calinski_harabasz": "Calinski–Harabasz",
                 "davies_bouldin": "Davies–Bouldin"}


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


# --------------------------------------------------------------------------
# sections

def _summary_section(data: RunData, verdicts: dict) -> dict:
    mc = data.min_cell
    sizes = data.table("archetype_sizes")
    hidden = hidden_groups(data)
    rows = []
    for method in data.methods:
        part = sizes[sizes["method"] == method].sort_values("archetype")
        arch = part[part["group"] == "archetype"]
        noise = part[part["group"] == "noise"]
        small = [int(a) for a, n in zip(arch["archetype"], arch["n"]) if int(n) < mc]
        txt = ", ".join(f"{int(a)}: {size_text(n, mc, (method, int(a)) in hidden)}"
                        for a, n in zip(arch["archetype"], arch["n"]))
        if len(noise):
            noise_hidden = (method, int(noise["archetype"].iloc[0])) in hidden
            txt += (f"; noise: {size_text(noise['n'].iloc[0], mc, noise_hidden)}"
                    + ("" if noise_hidden else f" ({fmt.share(noise['share'].iloc[0], 0)})"))
        vs = [verdicts.get((method, int(a)), NOT_ASSESSED) for a in arch["archetype"]]
        counts = pd.Series(vs).value_counts() if vs else pd.Series(dtype=int)
        vtxt = ", ".join(f"{n} {v}" for v, n in counts.items()) or "—"
        rows.append([METHOD_LABELS.get(method, method), str(len(arch)), txt or "none", vtxt,
                     ", ".join(map(str, small)) or ""])
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
             if ("hdbscan", NOISE) in hidden_groups(data) else fmt.share(hm.get("noise_share"))),
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
        "stability": stability_section(data),
        "profiles": profiles_section(data, verdicts),
        "outcomes": outcomes_section(data),
        "methods_text": methods_paragraphs(data.config, data.metrics),
        "references": references(data.config),
        "reproducibility": repro_section(data),
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

"""The report's archetype profiles and outcomes sections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import CORRECTIONS, GAMES_HOWELL, NOISE, NOT_ASSESSED, STABILITY_NOT_ASSESSED, STABLE_INTERPRETATION
from . import _format as fmt
from ._archetypes import hidden_groups, label, size_text, verdict_class
from ._data import METHOD_LABELS, RunData
from ._suppress import group_sizes_below, suppress_small_cells, suppressed_label
from ._verdict import stability_assessed


def _outcome_stats(data: RunData) -> pd.DataFrame:
    prof = data.table("profiles")
    if not len(prof):
        return pd.DataFrame()
    return prof.pivot_table(index=["method", "outcome", "archetype"], columns="statistic", values="value",
                            aggfunc="first").reset_index()


def profiles_section(data: RunData, verdicts: dict) -> dict:
    """One card per archetype and method (size, verdict, features, outcomes), and the covariate crosstabs."""
    mc = data.min_cell
    arch = data.table("archetypes")
    stats_ = _outcome_stats(data)
    prof = data.table("profiles")
    hidden = hidden_groups(data)
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
                "noise": a == NOISE, "n": size_text(n, mc, size_hidden),
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


def outcomes_section(data: RunData) -> dict:
    """Per method: outcomes by archetype with their tests, the pairwise comparisons, the
    covariate-adjusted differences and the membership uncertainty; and the APA table as a frame."""
    tests = data.table("tests")
    stats_ = _outcome_stats(data)
    small = group_sizes_below(data.tables, data.min_cell)
    methods, frames = [], []
    for method in data.methods:
        t = tests[(tests["method"] == method)] if len(tests) else pd.DataFrame()
        if not len(t):
            continue
        main = t[t["subset"] == "all assigned"] if "subset" in t else t
        interp = _interpretation(data, method, main)
        p = _of_method(data.table("pairwise"), method)
        cont = _of_method(data.table("continuum"), method)
        rows = _outcome_rows(method, main, stats_, small, cont, p, interp)
        frame = pd.DataFrame(rows)
        frames.append(frame.assign(method=method))
        numeric = [c for c in frame.columns
                   if c.endswith("M (SD)") or c.startswith(("p ", "classical ω", "ε", "η", "R²"))]
        name = METHOD_LABELS.get(method, method)
        methods.append({
            "method": method, "label": name, "interpretation": interp,
            "uncertainty": _uncertainty_table(_of_method(data.table("uncertainty"), method), name),
            "verdict_class": verdict_class(interp),
            "stable": interp == STABLE_INTERPRETATION, "assessed": interp != STABILITY_NOT_ASSESSED,
            "apa": fmt.table(frame, caption=f"{name}: outcomes by archetype", numeric=numeric,
                             note=_apa_note(data, method, main, p, cont, small),
                             row_classes=["" if r["stability"] != "NOT STABLE" else "verdict-bad" for r in rows]),
            "adjusted_note": _adjusted_note(data.table("adjusted"), method), "pairwise": _pairwise_table(p, name),
        })
    return {"methods": methods, "apa_frame": pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()}


def _of_method(table: pd.DataFrame, method: str) -> pd.DataFrame:
    return table[table["method"] == method] if len(table) else table


def _interpretation(data: RunData, method: str, main: pd.DataFrame) -> str:
    """What the tests say of the archetypes' stability."""
    interp = str(main["interpretation"].dropna().iloc[0]) if "interpretation" in main and main[
        "interpretation"].notna().any() else STABILITY_NOT_ASSESSED
    if interp == STABILITY_NOT_ASSESSED and stability_assessed(data):
        interp = _interpretation_from_stability(data, method, interp)
    return interp


def _outcome_rows(method: str, main: pd.DataFrame, stats_: pd.DataFrame, small: set, cont: pd.DataFrame,
                  p: pd.DataFrame, interp: str) -> list[dict]:
    """One row per outcome: archetype means, omnibus tests, continuum check, pairs differing, stability."""
    described = set() if not len(stats_) else set(
        int(a) for a in stats_.loc[(stats_["method"] == method) & (stats_["archetype"] != NOISE), "archetype"])
    archetypes = sorted(described | {a for m, a in small if m == method and a != NOISE})
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
        row.update(_omnibus_cells(main[main["outcome"] == outcome]))
        c = cont[cont["outcome"] == outcome] if len(cont) else cont
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
    return rows


# test name in tests.csv -> (statistic column, short name, effect-size column, statistic text)
_OMNIBUS = {
    "Welch's ANOVA": ("Welch F (df)", "Welch", "classical ω²",
                      lambda t: f"F({fmt.num(t['df1'], 0)}, {fmt.num(t['df2'], 1)}) = {fmt.num(t['statistic'])}"),
    "Kruskal-Wallis": ("Kruskal–Wallis H (df)", "K–W", "ε²",
                       lambda t: f"H({fmt.num(t['df1'], 0)}) = {fmt.num(t['statistic'])}"),
}


def _omnibus_cells(tests: pd.DataFrame) -> dict:
    """Welch's ANOVA and Kruskal–Wallis cells of one outcome's row."""
    row = {}
    for test, (column, short, effect, statistic) in _OMNIBUS.items():
        found = tests[tests["test"] == test]
        if not len(found):
            continue
        t = found.iloc[0]
        row[column] = statistic(t)
        row[f"p ({short})"] = fmt.pvalue(t["p_value"])
        if "p_adjusted" in t:
            row[f"p adj. ({short})"] = fmt.pvalue(t["p_adjusted"])
        row[effect] = fmt.apa(t["effect_size"])
    return row


def _apa_note(data: RunData, method: str, main: pd.DataFrame, p: pd.DataFrame, cont: pd.DataFrame,
              small: set) -> str:
    """The note under a method's outcomes table: what each column is and how p is adjusted."""
    note = ("M (SD): mean (standard deviation) per archetype"
            + ("; the noise group is described but not tested" if method == "hdbscan" else "")
            + ". Welch F: Welch's ANOVA (Welch, 1951), shown with the classical ω² (from the ANOVA sums of "
              "squares, not Welch-adjusted). Kruskal–Wallis H: rank test, effect size ε². ")
    fam = main["family"].dropna() if "family" in main else pd.Series(dtype=object)
    if len(fam):
        note += (f"p adj.: each test's p-values {main['correction'].iloc[0]}-corrected over the outcomes "
                 f"(family e.g. “{fam.iloc[0]}”). ")
    if len(p) and str(p["correction"].iloc[0]) == GAMES_HOWELL:
        note += ("Pairs differing: Games–Howell p-values, adjusted over the pairs of each outcome by the "
                 "studentized range and not corrected again (p < .05; each pair below). ")
    elif len(p):
        note += (f"Pairs differing: {p['test'].iloc[0]} tests with p adjusted by the {_correction_name(p)} "
                 f"correction over the family “{p['family'].iloc[0]}” (adjusted p < .05; each pair below). ")
    if len(cont):
        note += ("η² archetypes, R² features, η² PC1 slices: how much of each outcome the archetypes explain, "
                 "beside the clustering features without clusters (OLS R²) and equal slices of their first "
                 "principal component. ")
        good = [str(o) for o, g in zip(cont["outcome"], cont["continuum_as_good"])
                if str(g).lower() == "true"]
        if good:
            note += (f"For {', '.join(good)} the features without clusters explain as much as the archetypes "
                     "or more: the differences may be slices of a continuum. ")
    note += "p values are not adjusted across methods."
    withheld = sorted(a for m, a in small if m == method and a != NOISE)
    if withheld:
        note += (f" Archetype(s) {', '.join(map(str, withheld))}: fewer than {data.min_cell} respondents, "
                 "statistics not shown (report.min_cell).")
    return note


def _correction_name(p: pd.DataFrame) -> str:
    correction = str(p["correction"].iloc[0])
    return CORRECTIONS.get(correction, correction)


def _pairwise_table(p: pd.DataFrame, name: str) -> dict | None:
    """A method's pairwise comparisons of archetypes (None without any)."""
    if not len(p):
        return None
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
    if str(p["correction"].iloc[0]) == GAMES_HOWELL:
        note = ("Games–Howell tests; p is adjusted over the pairs of the outcome (studentized range), not "
                "corrected again; differs: p < .05.")
    else:
        note = (f"{p['test'].iloc[0]} tests; p adjusted by the {_correction_name(p)} correction over the family "
                f"“{p['family'].iloc[0]}”; differs: adjusted p < .05.")
    return fmt.table(pf, caption=f"{name}: pairwise comparisons",
                     numeric=["mean difference", "SE", "statistic (df)", "p", "p adjusted", "Hedges' g"], note=note)


def _adjusted_note(adj: pd.DataFrame, method: str) -> str:
    """How a method's covariate-adjusted differences were estimated ("" without any)."""
    adj = adj[(adj["method"] == method) & (adj["kind"] == "difference_vs_reference")] if len(adj) else adj
    if not len(adj):
        return ""
    covs = str(adj["covariates"].dropna().iloc[0]) if adj["covariates"].notna().any() else "none"
    se = ", ".join(sorted(set(adj["se_type"].dropna().astype(str)))) or "HC3"
    ref = adj["reference_archetype"].dropna()
    note = (f"OLS of each outcome on archetype, adjusted for {covs}; {se} robust standard errors "
            f"(MacKinnon & White, 1985); 95% CIs; differences from archetype "
            f"{int(ref.iloc[0]) if len(ref) else '?'}.")
    if "family" in adj and adj["family"].notna().any():
        note += f" p-values of the differences: {adj['family'].dropna().iloc[0]}."
    notes = sorted(set(adj["note"].dropna().astype(str)) - {""})
    if notes:
        note += " Note: " + "; ".join(notes) + "."
    return note


def _uncertainty_table(unc: pd.DataFrame, name: str) -> dict | None:
    """A method's archetype means carrying membership uncertainty (None without any)."""
    if not len(unc):
        return None
    uf = pd.DataFrame({"outcome": unc["outcome"], "archetype": unc["archetype"].map(label),
                       "mean": unc["estimate"].map(fmt.num),
                       "95% CI": [f"{fmt.num(lo)} to {fmt.num(hi)}" for lo, hi in zip(unc["ci_low"], unc["ci_high"])],
                       "SE": unc["se"].map(fmt.num), "draws": unc["m"].map(fmt.integer)})
    return fmt.table(uf, caption=f"{name}: membership uncertainty", numeric=["mean", "95% CI", "SE", "draws"],
                     note="Archetype means carrying the uncertainty of mixture membership: pseudo-class draws "
                          "from the posteriors, combined with Rubin's rules (Barnard–Rubin degrees of freedom).")


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

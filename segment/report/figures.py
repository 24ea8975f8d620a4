"""The report's figures, as matplotlib Figures.

Every function takes a run directory, a :class:`~segment.report.RunData`
or an in-memory ``Run`` and returns a :class:`matplotlib.figure.Figure` (or
``None`` when the run holds nothing to draw).  Figures are built with the
object-oriented API (no pyplot state), so they work under any backend; the
report embeds them as SVG.

Examples
--------
>>> from segment.report import figures
>>> fig = figures.embedding_figure("reports/smmh/20260101-120000")  # doctest: +SKIP
>>> fig.savefig("embedding.png", dpi=150)                           # doctest: +SKIP
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure

from ..vocabulary import ARCHETYPE_METHODS, NOISE, NOISE_NAME
from ._data import METHOD_LABELS, run_data_from

__all__ = [
    "embedding_figure",
    "model_selection_figure",
    "stability_figure",
    "feature_heatmap_figure",
    "outcome_means_figure",
    "forest_figure",
    "archetype_color",
    "figure_to_svg",
]

NOISE_COLOR = "#b4b4b4"
NULL_COLOR = "#9a9a9a"
_PALETTE = colormaps["tab10"].colors + colormaps["Dark2"].colors
_STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "legend.fontsize": 8,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "svg.fonttype": "none",
    "svg.hashsalt": "segment-report", "font.family": "sans-serif",
}


def archetype_color(archetype) -> str | tuple:
    """The colour of an archetype in every figure (noise is grey)."""
    a = int(archetype)
    return NOISE_COLOR if a == NOISE else _PALETTE[a % len(_PALETTE)]


def archetype_label(archetype) -> str:
    a = int(archetype)
    return NOISE_NAME if a == NOISE else f"archetype {a}"


def figure_to_svg(fig: Figure) -> str:
    """The SVG text of a figure, reproducible (no date, fixed ids), text as text."""
    buf = io.StringIO()
    with rc_context(_STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _figure(width: float, height: float) -> Figure:
    with rc_context(_STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def _thresholds(data) -> tuple[float, float]:
    st = (data.config.get("stability") or {})
    return float(st.get("dissolved", 0.5)), float(st.get("stable", 0.75))


# --------------------------------------------------------------------------
# embedding

def embedding_figure(run, methods=None) -> Figure | None:
    """The 2-D UMAP picture of the respondents, one panel per method, coloured by archetype.

    Parameters
    ----------
    run : path, RunData or Run
    methods : list of str, optional
        Methods to draw (default: every method in ``embedding_2d``).

    Returns
    -------
    Figure or None
        ``None`` when the run has no display embedding.

    Notes
    -----
    A point is a distinct answer pattern; its area grows with the number of
    respondents who gave it.  Noise (HDBSCAN label -1) is grey.  The picture
    is for display only: clustering ran in ``reduce.n_components`` dimensions.
    """
    data = run_data_from(run)
    emb = data.table("embedding_2d")
    if not len(emb):
        return None
    methods = [m for m in (methods or ARCHETYPE_METHODS) if m in emb.columns]
    if not methods:
        return None
    with rc_context(_STYLE):
        fig = _figure(3.6 * len(methods) + 0.4, 3.9)
        axes = fig.subplots(1, len(methods), squeeze=False)[0]
        weights = emb["respondents"].to_numpy(float) if "respondents" in emb else np.ones(len(emb))
        size = 4 + 5 * np.sqrt(weights)
        for ax, method in zip(axes, methods):
            labels = emb[method].to_numpy(int)
            for a in sorted(set(labels), key=lambda v: (v == NOISE, v)):
                m = labels == a
                ax.scatter(emb["x"].to_numpy()[m], emb["y"].to_numpy()[m], s=size[m], c=[archetype_color(a)],
                           alpha=0.45 if a == NOISE else 0.8, linewidths=0, label=archetype_label(a),
                           rasterized=True, zorder=1 if a == NOISE else 2)
            ax.set_title(METHOD_LABELS.get(method, method))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("UMAP 1")
            ax.set_ylabel("UMAP 2")
            ax.set_aspect("equal", adjustable="datalim")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, markerscale=1.5,
                      handletextpad=0.2, columnspacing=0.8)
    return fig


# --------------------------------------------------------------------------
# model selection

def model_selection_figure(run) -> Figure | None:
    """Information criteria of the Gaussian mixtures by k and covariance type.

    The selected model is ringed.  Lower is better for AIC, BIC and ICL.
    """
    data = run_data_from(run)
    t = data.table("model_selection")
    if not len(t) or "k" not in t:
        return None
    crits = [c for c in ("bic", "icl", "aic") if c in t]
    with rc_context(_STYLE):
        fig = _figure(3.0 * len(crits) + 0.4, 2.8)
        axes = fig.subplots(1, len(crits), squeeze=False)[0]
        for ax, crit in zip(axes, crits):
            for i, (cov, part) in enumerate(t.groupby("covariance_type", sort=False)):
                part = part.sort_values("k")
                ax.plot(part["k"], part[crit], marker="o", ms=3.5, lw=1.3, color=_PALETTE[i], label=cov)
                chosen = part[part.get("selected", False).astype(str).str.lower() == "true"]
                if len(chosen):
                    ax.scatter(chosen["k"], chosen[crit], s=110, facecolors="none", edgecolors="black",
                               linewidths=1.3, zorder=3, label="selected")
            ax.set_title(crit.upper() + " (lower is better)")
            ax.set_xlabel("number of components k")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend()
    return fig


# --------------------------------------------------------------------------
# stability

def stability_figure(run) -> Figure | None:
    """Per-archetype Jaccard similarities over resamples against the null reference.

    Each archetype's box shows the Jaccard similarity of its best match in
    every resample; the grey box ("null") shows the best archetype's mean
    Jaccard in each structure-free cohort of the null reference, and the
    dotted line is the reference an archetype must exceed.  Dashed lines mark the dissolved (0.5)
    and stable (0.75) thresholds (Hennig, 2007).

    Returns
    -------
    Figure or None
        ``None`` when stability was not assessed (no ``jaccard.csv``).
    """
    data = run_data_from(run)
    jac = data.table("jaccard")
    if not len(jac) or "jaccard" not in jac:
        return None
    null = data.table("null_jaccard")
    dissolved, stable = _thresholds(data)
    methods = [m for m in ARCHETYPE_METHODS if m in set(jac["method"])]
    widths = [len(set(jac.loc[jac["method"] == m, "archetype"])) + 1 for m in methods]
    with rc_context(_STYLE):
        fig = _figure(min(1.0 + 0.75 * sum(widths) + 0.6 * len(methods), 11), 3.2)
        axes = fig.subplots(1, len(methods), squeeze=False, sharey=True, width_ratios=widths)[0]
        stab = data.table("stability")
        for ax, method in zip(axes, methods):
            part = jac[jac["method"] == method]
            archetypes = sorted(set(part["archetype"]))
            for i, a in enumerate(archetypes):
                vals = part.loc[part["archetype"] == a, "jaccard"].dropna().to_numpy(float)
                if len(vals):
                    bp = ax.boxplot(vals, positions=[i], widths=0.55, patch_artist=True,
                                    showfliers=True, flierprops={"markersize": 2})
                    _colour_box(bp, archetype_color(a))
            ticks = [str(a) for a in archetypes]
            nv = np.array([])
            best = data.table("null_reference")
            if len(best) and "best_mean_jaccard" in best:
                nv = best.loc[best["method"] == method, "best_mean_jaccard"].dropna().to_numpy(float)
            elif len(null) and "jaccard" in null:
                nv = null.loc[null["method"] == method, "jaccard"].dropna().to_numpy(float)
            if len(nv):
                bp = ax.boxplot(nv, positions=[len(archetypes)], widths=0.55, patch_artist=True,
                                showfliers=False)
                _colour_box(bp, NULL_COLOR, alpha=0.45)
                ticks.append("null")
            if len(stab) and "null_reference" in stab:
                p95 = stab.loc[stab["method"] == method, "null_reference"].dropna()
                if len(p95):
                    ax.axhline(float(p95.iloc[0]), ls=":", lw=1.1, color=NULL_COLOR)
            for y in (dissolved, stable):
                ax.axhline(y, ls="--", lw=0.9, color="#444444")
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlim(-0.6, len(ticks) - 0.4)
            ax.set_xlabel("archetype")
            ax.set_title(METHOD_LABELS.get(method, method))
            ax.set_ylim(0, 1.02)
        axes[0].set_ylabel("Jaccard similarity with best match")
        axes[-1].text(1.0, stable, f" stable ≥ {stable:g}", transform=axes[-1].get_yaxis_transform(),
                      va="center", ha="left", fontsize=7)
        axes[-1].text(1.0, dissolved, f" dissolved < {dissolved:g}", transform=axes[-1].get_yaxis_transform(),
                      va="center", ha="left", fontsize=7)
        if len(null):
            from matplotlib.lines import Line2D
            from matplotlib.patches import Patch
            axes[0].legend(handles=[Patch(color=NULL_COLOR, alpha=0.45, label="null reference (all archetypes)"),
                                    Line2D([], [], ls=":", color=NULL_COLOR, label="null reference")],
                           loc="lower left")
    return fig


def _colour_box(bp, color, alpha=0.75):
    for box in bp["boxes"]:
        box.set_facecolor(color)
        box.set_alpha(alpha)
        box.set_edgecolor("#333333")
    for key in ("medians",):
        for line in bp[key]:
            line.set_color("#222222")


# --------------------------------------------------------------------------
# profiles

def feature_heatmap_figure(run, methods=None) -> Figure | None:
    """Standardised mean difference of every feature, archetype against the rest.

    One heatmap per method: rows are archetypes (and noise), columns are the
    encoded features, colour is the standardised mean difference (SMD;
    red above the rest of the cohort, blue below).
    """
    data = run_data_from(run)
    feat = data.table("archetype_features")
    if not len(feat) or "smd" not in feat:
        return None
    methods = [m for m in (methods or ARCHETYPE_METHODS) if m in set(feat["method"])]
    order = list(dict.fromkeys(feat["feature"]))
    rows = [len(set(feat.loc[feat["method"] == m, "archetype"])) for m in methods]
    vmax = float(np.nanmax(np.abs(feat["smd"].to_numpy(float)))) if len(feat) else 1.0
    vmax = max(min(vmax, 2.5), 0.5)
    with rc_context(_STYLE):
        fig = _figure(min(2.2 + 0.32 * len(order), 11.5), 1.3 + 0.26 * sum(rows) + 0.45 * len(methods))
        axes = fig.subplots(len(methods), 1, squeeze=False, height_ratios=rows, sharex=True)[:, 0]
        image = None
        for ax, method in zip(axes, methods):
            part = feat[feat["method"] == method]
            grid = part.pivot_table(index="archetype", columns="feature", values="smd", aggfunc="first")
            grid = grid.reindex(columns=order)
            image = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                              interpolation="nearest")
            ax.set_yticks(range(len(grid.index)), [archetype_label(a) for a in grid.index])
            ax.set_title(METHOD_LABELS.get(method, method), loc="left")
            for sp in ax.spines.values():
                sp.set_visible(False)
        axes[-1].set_xticks(range(len(order)), order, rotation=60, ha="right", rotation_mode="anchor")
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="SMD vs rest (SD units)")
    return fig


def _profile_stats(data, method: str) -> pd.DataFrame:
    prof = data.table("profiles")
    if not len(prof):
        return pd.DataFrame()
    part = prof[(prof["method"] == method) & prof["statistic"].isin(["n", "mean", "sd", "ci_low", "ci_high"])]
    if not len(part):
        return pd.DataFrame()
    wide = part.pivot_table(index=["outcome", "archetype"], columns="statistic", values="value",
                            aggfunc="first").reset_index()
    return wide


def _interval_panels(table: pd.DataFrame, estimate: str, *, marker: str, xlabel: str, title: str,
                     zero_line: bool = False) -> Figure:
    """One panel per outcome: per archetype a point estimate and its 95% interval."""
    outcomes = list(dict.fromkeys(table["outcome"]))
    archetypes = sorted(set(table["archetype"]))
    with rc_context(_STYLE):
        fig = _figure(min(1.2 + 2.9 * len(outcomes), 11.5), 1.0 + 0.28 * len(archetypes))
        axes = fig.subplots(1, len(outcomes), squeeze=False, sharey=True)[0]
        for ax, outcome in zip(axes, outcomes):
            rows = table[table["outcome"] == outcome].set_index("archetype")
            if zero_line:
                ax.axvline(0, color="#444444", lw=0.9)
            for i, a in enumerate(archetypes):
                if a not in rows.index:
                    continue
                r = rows.loc[a]
                lo, hi = r.get("ci_low", np.nan), r.get("ci_high", np.nan)
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.plot([lo, hi], [i, i], color=archetype_color(a), lw=2)
                ax.plot([r[estimate]], [i], marker, color=archetype_color(a), ms=5, mec="#222222", mew=0.5)
            ax.set_title(outcome)
            ax.set_xlabel(xlabel)
            ax.grid(axis="x", lw=0.4, color="#dddddd")
        axes[0].set_yticks(range(len(archetypes)), [archetype_label(a) for a in archetypes])
        axes[0].invert_yaxis()
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    return fig


def outcome_means_figure(run, method: str = "hdbscan") -> Figure | None:
    """Outcome means with 95% confidence intervals per archetype, one panel per outcome."""
    wide = _profile_stats(run_data_from(run), method)
    if not len(wide) or "mean" not in wide:
        return None
    return _interval_panels(wide, "mean", marker="o", xlabel="mean (95% CI)",
                            title=METHOD_LABELS.get(method, method))


def forest_figure(run, method: str = "hdbscan") -> Figure | None:
    """Covariate-adjusted differences from the reference archetype (95% CI).

    From ``adjusted.csv`` (kind ``difference_vs_reference``): OLS of the
    outcome on archetype and the covariates, robust (HC3) standard errors.
    """
    adj = run_data_from(run).table("adjusted")
    if not len(adj) or "kind" not in adj:
        return None
    part = adj[(adj["method"] == method) & (adj["kind"] == "difference_vs_reference")]
    part = part.dropna(subset=["estimate"])
    if not len(part):
        return None
    ref = part["reference_archetype"].dropna()
    title = METHOD_LABELS.get(method, method)
    if len(ref):
        title += f": difference from archetype {int(ref.iloc[0])}"
    return _interval_panels(part, "estimate", marker="s", xlabel="adjusted difference (95% CI)",
                            title=title, zero_line=True)

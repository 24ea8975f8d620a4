"""The generated methods paragraph and its references."""

from __future__ import annotations

REFERENCES = {
    "mcinnes2018": "McInnes, L., Healy, J., & Melville, J. (2018). UMAP: Uniform manifold approximation and "
                   "projection for dimension reduction. arXiv:1802.03426.",
    "campello2013": "Campello, R. J. G. B., Moulavi, D., & Sander, J. (2013). Density-based clustering based on "
                    "hierarchical density estimates. In Advances in Knowledge Discovery and Data Mining "
                    "(PAKDD 2013), LNCS 7819, 160–172.",
    "mcinnes2017": "McInnes, L., Healy, J., & Astels, S. (2017). hdbscan: Hierarchical density based "
                   "clustering. Journal of Open Source Software, 2(11), 205.",
    "biernacki2000": "Biernacki, C., Celeux, G., & Govaert, G. (2000). Assessing a mixture model for clustering "
                     "with the integrated completed likelihood. IEEE Transactions on Pattern Analysis and "
                     "Machine Intelligence, 22(7), 719–725.",
    "hennig2007": "Hennig, C. (2007). Cluster-wise assessment of cluster stability. Computational Statistics "
                  "& Data Analysis, 52(1), 258–271.",
    "welch1951": "Welch, B. L. (1951). On the comparison of several mean values: An alternative approach. "
                 "Biometrika, 38(3/4), 330–336.",
    "gameshowell1976": "Games, P. A., & Howell, J. F. (1976). Pairwise multiple comparison procedures with "
                       "unequal n's and/or variances: A Monte Carlo study. Journal of Educational Statistics, "
                       "1(2), 113–125.",
    "holm1979": "Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian "
                "Journal of Statistics, 6(2), 65–70.",
    "bh1995": "Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate: A practical and "
              "powerful approach to multiple testing. Journal of the Royal Statistical Society: Series B, "
              "57(1), 289–300.",
    "mackinnon1985": "MacKinnon, J. G., & White, H. (1985). Some heteroskedasticity-consistent covariance "
                     "matrix estimators with improved finite sample properties. Journal of Econometrics, "
                     "29(3), 305–325.",
}

_CORRECTION = {"holm": ("Holm", "holm1979"), "fdr_bh": ("Benjamini–Hochberg false discovery rate", "bh1995")}
_PAIRWISE = {"games-howell": ("Games–Howell", "gameshowell1976"), "welch": ("Welch t", "welch1951")}


def _list(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def methods_paragraphs(config: dict, metrics: dict) -> list[str]:
    """A description of exactly what was run, ready to adapt for a paper.

    Parameters
    ----------
    config : dict
        The resolved experiment config (``manifest.json["config"]``).
    metrics : dict
        ``metrics.json``.

    Returns
    -------
    list of str
        Paragraphs (plain text; citations as "Author, year").
    """
    f = config.get("features", {}) or {}
    r = config.get("reduce", {}) or {}
    c = config.get("cluster", {}) or {}
    h, g, k = c.get("hdbscan", {}) or {}, c.get("gmm", {}) or {}, c.get("kmeans", {}) or {}
    s = config.get("stability", {}) or {}
    p = config.get("profile", {}) or {}
    cohort = metrics.get("cohort", {}) or {}
    feats = metrics.get("features", []) or []
    paras = []

    imputer = f.get("imputer", "knn")
    imputed = {"knn": f"k-nearest-neighbour imputation (k = {f.get('knn_neighbors', 5)})",
               "drop": "no imputation (respondents with any missing feature were excluded)"}.get(
        imputer, f"{imputer} imputation")
    paras.append(
        f"Of {cohort.get('n', '?')} respondents, {cohort.get('n_analysed', '?')} were analysed; respondents "
        f"missing more than {float(f.get('max_missing_share', 0.5)):.0%} of the clustering features were "
        f"excluded. The {len(feats)} clustering features ({_list(feats)}) were encoded into "
        f"{metrics.get('n_features_encoded', '?')} columns (categorical answers one-hot, multiselect answers "
        f"as indicators), missing answers were filled by {imputed}, and features were scaled "
        f"({f.get('scaler', 'standard')} scaler). Outcomes were not used as clustering features"
        + (f", except {_list(metrics.get('outcome_features'))}, which were used knowingly"
           if metrics.get("outcome_features") else "") + ".")

    used = metrics.get("umap") or {}  # the values fitted, where the cohort forced lower ones
    n_comp = used.get("n_components", r.get("n_components", "?"))
    paras.append(
        f"The feature matrix was reduced with UMAP (McInnes et al., 2018) to {n_comp} dimensions "
        f"(n_neighbors = {used.get('n_neighbors', r.get('n_neighbors', '?'))}, min_dist = {r.get('min_dist', '?')}, "
        f"metric = {r.get('metric', 'euclidean')}), seeded for reproducibility (seed "
        f"{config.get('experiment', {}).get('seed', '?')}). Archetypes were sought in this embedding with "
        f"HDBSCAN (Campello et al., 2013; McInnes et al., 2017; min_cluster_size = "
        f"{(metrics.get('hdbscan') or {}).get('min_cluster_size', h.get('min_cluster_size', '?'))}"
        f"{' (' + format(float(h['min_cluster_size']), '.0%') + ' of respondents)' if isinstance(h.get('min_cluster_size'), float) and h.get('min_cluster_size') < 1 else ''}, "
        f"min_samples = {h.get('min_samples') or 'min_cluster_size'}, cluster selection "
        f"'{h.get('selection_method', 'eom')}'); respondents HDBSCAN assigns to no archetype are reported "
        f"as noise" + (" and then assigned to their nearest archetype" if h.get("assign_noise") else "") + ".")

    if g:
        krange = g.get("k", [1, 8])
        kr = f"{krange[0]} to {krange[1]}" if isinstance(krange, (list, tuple)) and len(krange) == 2 else str(krange)
        crit = str(g.get("criterion", "bic")).upper()
        chosen = metrics.get("gmm") or {}
        paras.append(
            f"As a model-based comparison, Gaussian mixtures with k = {kr} components and "
            f"{_list(g.get('covariance_types', ['full']))} covariance matrices were fitted in the "
            f"{g.get('space', 'embedding')} ({g.get('n_init', 1)} initialisation(s) each) and compared by "
            f"AIC, BIC and the integrated completed likelihood (ICL; Biernacki et al., 2000); the model was "
            f"chosen by {crit}"
            + (f" (k = {chosen.get('k')}, {chosen.get('covariance_type')} covariance)" if chosen.get("k") else "")
            + (f". K-Means with k = {(metrics.get('kmeans') or {}).get('k', k.get('k'))} in the {k.get('space', 'features')} space served as a "
               f"baseline" if k else "")
            + ". Agreement between methods was measured with the adjusted Rand index and adjusted mutual "
              "information; internal validity indices are reported with the space they were computed in.")

    if int(s.get("resamples", 0) or 0) > 0:
        paras.append(
            f"Cluster-wise stability (Hennig, 2007) was assessed over {s.get('resamples')} "
            f"{s.get('scheme', 'subsample')} resamples"
            + (f" ({float(s.get('fraction', 0.8)):.0%} of respondents each)" if s.get("scheme", "subsample") == "subsample" else "")
            + ": every stage (encoding, UMAP and clustering) was refitted on each resample and each archetype "
              "matched to its most similar cluster by the Jaccard similarity. An archetype was called stable "
              f"when its mean Jaccard similarity was at least {s.get('stable', 0.75)} and dissolved below "
              f"{s.get('dissolved', 0.5)}, and it was compared with a null reference of "
              f"{s.get('null_resamples', '?')} resamples in which the structure was destroyed.")
    else:
        paras.append("Stability under resampling was not assessed in this run (stability.resamples = 0); "
                     "the archetypes below are descriptive and their differences are not to be read as findings.")

    if p:
        corr, corr_ref = _CORRECTION.get(p.get("correction", "holm"), (p.get("correction"), None))
        pair, pair_ref = _PAIRWISE.get(p.get("pairwise", "games-howell"), (p.get("pairwise"), None))
        cite = {"holm1979": "Holm, 1979", "bh1995": "Benjamini & Hochberg, 1995",
                "gameshowell1976": "Games & Howell, 1976", "welch1951": "Welch, 1951"}
        covs = list(p.get("covariates", []) or [])
        paras.append(
            f"Archetypes were profiled on {_list(p.get('outcomes', []) or ['the outcomes'])}, which were not "
            "clustered on. For each outcome and method, group means were compared with one-way ANOVA, "
            "Welch's ANOVA (Welch, 1951; effect size ω²) and the Kruskal–Wallis test (ε²), and pairwise with "
            f"{pair} comparisons ({cite.get(pair_ref, '')}), corrected for multiplicity with the {corr} "
            f"procedure ({cite.get(corr_ref, '')}) over all pairs and outcomes of a method; Hedges' g is "
            "given per pair."
            + ("" if p.get("include_noise") else " The HDBSCAN noise group was described but not tested.")
            + (f" Covariate-adjusted marginal means and differences from a reference archetype came from OLS "
               f"models adjusting for {_list(covs)}, with HC3 heteroskedasticity-consistent standard errors "
               f"(MacKinnon & White, 1985)." if covs else "")
            + f" Uncertainty of Gaussian-mixture membership was carried into the archetype means by "
              f"{p.get('pseudo_class_draws', 20)} pseudo-class draws combined with Rubin's rules.")
    return paras


def references(config: dict | None = None) -> list[str]:
    """The references of the methods paragraph, in alphabetical order."""
    return sorted(REFERENCES.values())

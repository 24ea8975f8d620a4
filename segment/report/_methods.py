"""The generated methods paragraph and its references."""

from __future__ import annotations

from ..vocabulary import SPACE_WORDS, null_model

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

_CORRECTION = {"holm": ("Holm", "holm1979"), "fdr_bh": ("Benjamini–Hochberg false discovery rate", "bh1995"),
               "bonferroni": ("Bonferroni", None)}
_PAIRWISE = {"games-howell": ("Games–Howell", "gameshowell1976"), "welch": ("Welch t", "welch1951")}



def _share_of_respondents(min_cluster_size) -> str:
    """" (5% of respondents)" when HDBSCAN's minimum size was given as a share."""
    if isinstance(min_cluster_size, float) and min_cluster_size < 1:
        return f" ({min_cluster_size:.0%} of respondents)"
    return ""

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
    from ..config import config_from_dict

    cfg = config_from_dict(config)  # re-typed: every default is the one the run used
    return [_features_paragraph(cfg, metrics), _embedding_paragraph(cfg, metrics), _mixture_paragraph(cfg, metrics),
            _stability_paragraph(cfg.stability), _profile_paragraph(cfg.profile, metrics)]


def _features_paragraph(cfg, metrics: dict) -> str:
    f = cfg.features
    cohort = metrics.get("cohort") or {}
    feats = metrics.get("features") or []
    imputed = {"knn": f"k-nearest-neighbour imputation (k = {f.knn_neighbors})",
               "drop": "no imputation (respondents with any missing feature were excluded)"}.get(
        f.imputer, f"{f.imputer} imputation")
    return (
        f"Of {cohort.get('n', '?')} respondents, {cohort.get('n_analysed', '?')} were analysed; respondents "
        f"missing more than {float(f.max_missing_share):.0%} of the clustering features were "
        f"excluded. The {len(feats)} clustering features ({_list(feats)}) were encoded into "
        f"{metrics.get('n_features_encoded', '?')} columns (categorical answers one-hot, multiselect answers "
        f"as indicators), missing answers were filled by {imputed}, and features were scaled "
        f"({f.scaler} scaler). Outcomes were not used as clustering features"
        + (f", except {_list(metrics.get('outcome_features'))}, which were used knowingly"
           if metrics.get("outcome_features") else "") + "." + _circular_sentence(metrics))


def _embedding_paragraph(cfg, metrics: dict) -> str:
    r, h = cfg.reduce, cfg.cluster.hdbscan
    used = metrics.get("umap") or {}  # the values fitted, where the cohort forced lower ones
    return (
        f"The feature matrix was reduced with UMAP (McInnes et al., 2018) to "
        f"{used.get('n_components', r.n_components)} dimensions "
        f"(n_neighbors = {used.get('n_neighbors', r.n_neighbors)}, min_dist = {r.min_dist}, "
        f"metric = {r.metric}), seeded for reproducibility (seed "
        f"{cfg.experiment.seed}). Archetypes were sought in this embedding with "
        f"HDBSCAN (Campello et al., 2013; McInnes et al., 2017; min_cluster_size = "
        f"{(metrics.get('hdbscan') or {}).get('min_cluster_size', h.min_cluster_size)}"
        f"{_share_of_respondents(h.min_cluster_size)}, "
        f"min_samples = {h.min_samples or 'min_cluster_size'}, cluster selection "
        f"'{h.selection_method}'); respondents HDBSCAN assigns to no archetype are reported "
        f"as noise" + (" and then assigned to their nearest archetype" if h.assign_noise else "") + ".")


def _mixture_paragraph(cfg, metrics: dict) -> str:
    g, k = cfg.cluster.gmm, cfg.cluster.kmeans
    chosen = metrics.get("gmm") or {}
    return (
        f"As a model-based comparison, Gaussian mixtures with k = {g.k[0]} to {g.k[1]} components and "
        f"{_list(g.covariance_types)} covariance matrices were fitted in the "
        f"{_space_text(g)} ({g.n_init} initialisation(s) each) and compared by "
        f"AIC, BIC and the integrated completed likelihood (ICL; Biernacki et al., 2000); the model was "
        f"chosen by {g.criterion.upper()}"
        + (f" (k = {chosen.get('k')}, {chosen.get('covariance_type')} covariance)" if chosen.get("k") else "")
        + f". K-Means with k = {(metrics.get('kmeans') or {}).get('k', k.k)} in the "
          f"{k.space} space served as a baseline"
        + ". Agreement between methods was measured with the adjusted Rand index and adjusted mutual "
          "information; internal validity indices are reported with the space they were computed in.")


def _stability_paragraph(s) -> str:
    if not s.resamples:
        return ("Stability under resampling was not assessed in this run (stability.resamples = 0); "
                "the archetypes below are descriptive and their differences are not to be read as findings.")
    nulls = s.null_resamples > 0
    return (
        f"Cluster-wise stability (Hennig, 2007) was assessed over {s.resamples} {s.scheme} resamples"
        + (f" ({float(s.fraction):.0%} of respondents each)" if s.scheme == "subsample" else "")
        + ": every stage (encoding, UMAP and clustering) was refitted on each resample and each archetype "
          "matched to its most similar cluster by the Jaccard similarity. An archetype was called stable "
          f"when its mean Jaccard similarity was at least {s.stable}"
        + (" and more reproducible than the best archetype of the structure-free cohorts of the null "
           f"reference, by a Monte-Carlo p-value at most {s.alpha} divided over the methods "
           "assessed (Bonferroni); borderline when that verdict changes within two Monte-Carlo standard "
           "errors of the mean Jaccard and of the reference" if nulls else
           "; without a null reference no archetype can be called stable")
        + f", and dissolved when its mean Jaccard was below {s.dissolved} (borderline dissolved within two "
          "Monte-Carlo standard errors of it). " + _null_sentence(s)
        + (" The same comparison for each method's best archetype is its test of structure." if nulls else ""))


def _space_text(g) -> str:
    if g.space == "pca":
        return f"first {g.pca_components} principal components of the scaled features"
    return SPACE_WORDS.get(g.space, str(g.space))


_CITE = {"holm1979": "Holm, 1979", "bh1995": "Benjamini & Hochberg, 1995",
         "gameshowell1976": "Games & Howell, 1976", "welch1951": "Welch, 1951"}


def _circular_sentence(metrics: dict) -> str:
    prof = metrics.get("profile") or {}
    near = prof.get("near_circular_features") or []
    if not near:
        return ""
    pairs = _list(f"{r['feature']} with {r['outcome']} (ρ = {r['spearman']:.2f})" for r in near)
    return (f" Some clustering features are close to an outcome, however (Spearman |ρ| ≥ "
            f"{prof.get('near_circular_threshold', 0.5)}): {pairs}; the profiles of those outcomes are "
            "near-circular.")


def _null_sentence(s) -> str:
    if not s.null_resamples:
        return "No null reference was built (stability.null_resamples = 0)."
    short, kept = null_model(s.null)
    return (f"The null reference was {s.null_cohorts} structure-free cohort(s) of the same shape ({short}: "
            f"{kept}), "
            f"each fitted once like the cohort (the mixture selecting its own k) and resampled "
            f"{s.null_resamples} times.")


def _profile_paragraph(p, metrics: dict) -> str:
    corr, corr_ref = _CORRECTION.get(p.correction, (p.correction, None))
    corr_text = f"the {corr} procedure" + (f" ({_CITE[corr_ref]})" if corr_ref else "")
    covs = list(p.covariates)
    prof = metrics.get("profile") or {}
    if p.pairwise == "welch":
        pairs = (f"pairwise with Welch t tests (Welch, 1951), corrected with {corr_text} over all pairs and "
                 "outcomes of a method")
    else:
        pairs = ("pairwise with Games–Howell comparisons (Games & Howell, 1976), whose studentized-range "
                 "p-values are adjusted over the pairs of one outcome and were not corrected again")
    text = (
        f"Archetypes were profiled on {_list(p.outcomes or ['the outcomes'])}. For each outcome and "
        "method, group means were compared with one-way ANOVA (effect size η²), Welch's ANOVA (Welch, 1951; "
        "shown with the classical ω² from the ANOVA sums of squares, not a Welch-adjusted one) and the "
        f"Kruskal–Wallis test (ε²), each test's p-values corrected with {corr_text} over the outcomes, and "
        f"{pairs}; Hedges' g is given per pair. p-values are not corrected across methods.")
    if not p.include_noise:
        text += (" The HDBSCAN noise group was left out of the tests; where it had members, the omnibus tests "
                 "and effect sizes are also given with the noise as a group of its own.")
    if covs:
        text += (f" Covariate-adjusted marginal means and differences from a reference archetype came from OLS "
                 f"models adjusting for {_list(covs)}, with HC3 heteroskedasticity-consistent standard errors "
                 "(MacKinnon & White, 1985; a respondent with leverage 1, fitted exactly, contributes zero), the "
                 f"differences corrected with {corr_text} over archetypes and outcomes.")
    if prof.get("uncertainty_methods"):
        text += (" Uncertainty of Gaussian-mixture membership was carried into the archetype means by "
                 f"{p.pseudo_class_draws} pseudo-class draws combined with Rubin's rules (table "
                 "“membership uncertainty”).")
    if not prof:
        return text
    text += (" As a continuum check, each outcome was also regressed on the clustering features without "
             "clusters (OLS R²) and compared across equal slices of the features' first principal component "
             "(η², as many slices as archetypes)")
    good = prof.get("continuum_as_good") or []
    text += (f"; these matched or beat the archetypes for {_list(good)}, whose differences may be slices of a "
             "continuum." if good else "; the archetypes explained more than either.")
    return text


def references(config: dict | None = None) -> list[str]:
    """The references of the methods paragraph, in alphabetical order."""
    return sorted(REFERENCES.values())

"""Profile archetypes: how do they differ in anxiety, depression and sleep?

One call of :func:`profile_archetypes` profiles the archetypes found by one
clustering method.  It returns an :class:`ArchetypeProfiles` holding tidy
(long) :class:`pandas.DataFrame` tables with stable snake_case columns and
unrounded numbers:

``archetypes``
    one row per archetype (and the noise group, if any): size, share,
    stability verdict, a draft name and the features that set it apart.
``features``
    standardised mean difference of every feature, per archetype.
``profiles``
    descriptive statistics of every outcome per archetype.
``tests``
    omnibus tests per outcome: one-way ANOVA, Welch's ANOVA and
    Kruskal-Wallis, with effect sizes, corrected over the outcomes (and a
    core-members sensitivity analysis when core membership is given, and
    the HDBSCAN noise as a group of its own beside the noise-excluded tests).
``pairwise``
    pairwise comparisons: Games-Howell (adjusted within each outcome by the
    studentized range) or Welch t (corrected over all pairs and outcomes).
``adjusted``
    covariate-adjusted (marginal) means per archetype and differences from
    the reference archetype, from OLS with HC3 standard errors; the
    differences corrected over archetypes and outcomes.
``continuum``
    what the features explain of each outcome without clusters, beside the
    archetypes' eta squared.
``uncertainty``
    archetype means that carry classification uncertainty (GMM posteriors)
    through pseudo-class draws combined with Rubin's rules.

Fallbacks (an archetype left out, a covariate dropped, ...) are reported in
``warnings`` and in ``note`` columns; user-fixable problems raise
:class:`~segment.errors.SegmentError`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .config import CORRECTIONS, ProfileConfig
from .errors import SegmentError

__all__ = [
    "ProfileConfig",
    "ArchetypeProfiles",
    "profile_archetypes",
    "concat_profiles",
    "PROFILE_COLUMNS",
    "TEST_COLUMNS",
    "PAIRWISE_COLUMNS",
    "ADJUSTED_COLUMNS",
    "UNCERTAINTY_COLUMNS",
    "ARCHETYPE_COLUMNS",
    "FEATURE_COLUMNS",
    "CONTINUUM_COLUMNS",
    "near_circular_features",
]

NOISE = -1
CI_LEVEL = 0.95

PROFILE_COLUMNS = (
    "method", "archetype", "group", "outcome", "statistic", "value",
    "threshold", "cutoff_label", "stability_verdict", "note",
)
TEST_COLUMNS = (
    "method", "outcome", "test", "statistic", "df1", "df2", "p_value",
    "p_adjusted", "correction", "family",
    "effect_size_name", "effect_size", "n", "k", "subset",
    "stability_verdict", "interpretation", "note",
)
PAIRWISE_COLUMNS = (
    "method", "outcome", "archetype_a", "archetype_b", "test", "n_a", "n_b",
    "mean_a", "mean_b", "mean_diff", "se", "statistic", "df", "p_value",
    "p_adjusted", "correction", "family", "hedges_g", "reject",
    "stability_verdict", "interpretation", "note",
)
ADJUSTED_COLUMNS = (
    "method", "outcome", "archetype", "kind", "reference_archetype",
    "estimate", "se", "ci_low", "ci_high", "p_value", "p_adjusted", "correction",
    "family", "df", "n", "covariates", "se_type", "stability_verdict", "note",
)
UNCERTAINTY_COLUMNS = (
    "method", "outcome", "archetype", "estimate", "se", "ci_low", "ci_high",
    "within_variance", "between_variance", "total_variance", "df", "m", "n",
    "approach", "stability_verdict", "note",
)
ARCHETYPE_COLUMNS = (
    "method", "archetype", "group", "n", "share", "stability_verdict",
    "name", "draft_name", "top_features",
)
FEATURE_COLUMNS = (
    "method", "archetype", "group", "feature", "mean_in", "mean_rest",
    "smd", "n_in", "n_rest", "rank",
)

CONTINUUM_COLUMNS = (
    "method", "outcome", "n", "k", "archetype_eta_squared", "features_r_squared",
    "n_features", "pc1_slices_eta_squared", "continuum_as_good", "note",
)
NEAR_CIRCULAR_COLUMNS = ("feature", "outcome", "spearman", "n")
NEAR_CIRCULAR = 0.5  # |Spearman| of a feature with an outcome that makes profiles near-circular

_TABLES = {
    "profiles": PROFILE_COLUMNS,
    "tests": TEST_COLUMNS,
    "pairwise": PAIRWISE_COLUMNS,
    "adjusted": ADJUSTED_COLUMNS,
    "uncertainty": UNCERTAINTY_COLUMNS,
    "archetypes": ARCHETYPE_COLUMNS,
    "features": FEATURE_COLUMNS,
    "continuum": CONTINUUM_COLUMNS,
}

_CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg FDR",
                     "bonferroni": "Bonferroni"}
_CORRECTIONS = {c: _CORRECTION_NAMES[c] for c in CORRECTIONS}
GAMES_HOWELL = "games-howell"
_PAIRWISE_TESTS = {GAMES_HOWELL: "Games-Howell", "welch": "Welch t"}
# every verdict the stability stage writes
_VERDICTS = ("stable", "borderline", "weak", "dissolved", "no reference", "not resampled")
# Order used to summarise a pair of archetypes by its least stable member.
_VERDICT_RANK = {"stable": 0, "borderline": 1, "not assessed": 2, "not resampled": 2, "no reference": 2,
                 "weak": 3, "dissolved": 4}
NOT_ASSESSED = "stability not assessed"
ALL_STABLE = "all stable"
NOT_ALL_STABLE = "not all archetypes stable"
INTERPRET_STABLE = "archetypes stable under resampling"
SUBSET_ALL = "all assigned"
SUBSET_CORE = "core members"
SUBSET_NOISE = "noise as a group"


# --------------------------------------------------------------------------
# Public data structures
# --------------------------------------------------------------------------


@dataclass
class ArchetypeProfiles:
    """Tables profiling the archetypes of one (or, after
    :func:`concat_profiles`, several) clustering methods.

    Attributes
    ----------
    profiles : pandas.DataFrame
        Columns :data:`PROFILE_COLUMNS`.  Long format: one row per method x
        archetype x outcome x statistic.  ``statistic`` is one of ``n``,
        ``mean``, ``sd``, ``median``, ``q1``, ``q3``, ``iqr``, ``ci_low``,
        ``ci_high`` (95% t interval of the mean) or
        ``share_at_or_above_<threshold>`` (with ``threshold`` and
        ``cutoff_label`` filled in).  ``group`` is ``"noise"`` for archetype
        -1 and ``"archetype"`` otherwise.
    tests : pandas.DataFrame
        Columns :data:`TEST_COLUMNS`.  One row per method x outcome x test x
        subset (``"all assigned"``, ``"core members"`` or ``"noise as a
        group"``); ``p_adjusted`` is corrected over the outcomes of one test
        and subset (the ``family``).  ``df2`` is NaN for
        Kruskal-Wallis (chi-squared reference with ``df1`` degrees of
        freedom).  ``note`` says which archetypes were left out and why.
    pairwise : pandas.DataFrame
        Columns :data:`PAIRWISE_COLUMNS`.  ``mean_diff`` is ``mean_a -
        mean_b``; ``p_value`` is Games-Howell's (already adjusted within the
        outcome) or Welch's t (unadjusted); ``p_adjusted`` is the p-value
        adjusted over the ``family``; ``reject`` is ``p_adjusted < alpha``.
    adjusted : pandas.DataFrame
        Columns :data:`ADJUSTED_COLUMNS`; ``kind`` is ``"adjusted_mean"`` or
        ``"difference_vs_reference"``; the differences' ``p_adjusted`` is
        corrected over all differences of the method (the ``family``).
    uncertainty : pandas.DataFrame
        Columns :data:`UNCERTAINTY_COLUMNS`; empty when no posteriors were
        given.
    archetypes : pandas.DataFrame
        Columns :data:`ARCHETYPE_COLUMNS`.
    features : pandas.DataFrame
        Columns :data:`FEATURE_COLUMNS`; empty when no features were given.
    continuum : pandas.DataFrame
        Columns :data:`CONTINUUM_COLUMNS`: per outcome, the archetypes' eta
        squared beside what the features explain without clusters (OLS R²
        on the features; eta squared of ``k`` equal slices of their first
        principal component); empty when no features were given.
    warnings : list of str
        Fallbacks taken, in plain words.
    """

    profiles: pd.DataFrame
    tests: pd.DataFrame
    pairwise: pd.DataFrame
    adjusted: pd.DataFrame
    uncertainty: pd.DataFrame
    archetypes: pd.DataFrame
    features: pd.DataFrame
    continuum: pd.DataFrame = field(default_factory=lambda: _empty(CONTINUUM_COLUMNS))
    warnings: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        """Verdict-first summary, then the omnibus tests, for notebooks."""
        from .report._notebook import profiles_summary_html

        parts = ['<div class="segment-archetype-profiles">', profiles_summary_html(self), "<h4>Omnibus tests</h4>"]
        if len(self.tests):
            parts.append(self.tests.to_html(index=False))
        else:
            parts.append("<p>No omnibus tests (fewer than two archetypes "
                         "with at least two members).</p>")
        parts.append("</div>")
        return "\n".join(parts)


def concat_profiles(items) -> ArchetypeProfiles:
    """Concatenate the tables of several :class:`ArchetypeProfiles`.

    Parameters
    ----------
    items : iterable of ArchetypeProfiles
        Typically one per clustering method.

    Returns
    -------
    ArchetypeProfiles
        Every table is the row-wise concatenation (fresh integer index) of the
        corresponding tables; ``warnings`` are concatenated in order, without
        duplicates.
    """
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, ArchetypeProfiles):
            raise SegmentError(
                f"concat_profiles: item {i} is a {type(item).__name__}, not "
                "ArchetypeProfiles; pass the results of profile_archetypes."
            )
    tables = {}
    for name, columns in _TABLES.items():
        frames = [getattr(item, name) for item in items]
        frames = [f for f in frames if len(f)]
        if frames:
            tables[name] = pd.concat(frames, ignore_index=True)[list(columns)]
        else:
            tables[name] = _empty(columns)
    warnings: list[str] = []
    for item in items:
        for w in item.warnings:
            if w not in warnings:
                warnings.append(w)
    return ArchetypeProfiles(warnings=warnings, **tables)


# --------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------


def profile_archetypes(labels, outcomes, *, method, features=None, covariates=None,
                       posteriors=None, core=None, cutoffs=None, stability=None,
                       config=None, seed=0) -> ArchetypeProfiles:
    """Profile how archetypes differ in outcomes such as anxiety and sleep.

    Parameters
    ----------
    labels : pandas.Series
        Integer archetype label per respondent, indexed by respondent id;
        -1 marks HDBSCAN noise.  Only respondents in ``labels`` are analysed.
    outcomes : pandas.DataFrame
        Indexed by respondent id (aligned on the index, order does not
        matter); one numeric column per outcome, NaN = missing.  Missing
        values are dropped per outcome.
    method : str
        Clustering method (``"hdbscan"``, ``"gmm"`` or ``"kmeans"``); copied
        into every row.
    features : pandas.DataFrame, optional
        Standardised numeric features indexed by respondent id, used to
        describe and name the archetypes (standardised mean difference of the
        archetype against the rest of the cohort, pooled SD).
    covariates : pandas.DataFrame, optional
        Covariates indexed by respondent id.  Numeric columns enter the
        adjusted model as they are, other columns (object, string, category,
        bool) as treatment-coded factors ``C(column)``.  Respondents with a
        missing covariate are left out of the adjusted model (reported).
    posteriors : numpy.ndarray, optional
        ``n x K`` posterior membership probabilities (GMM), rows in the order
        of ``labels.index``, columns the sorted non-noise archetypes.  Gives
        the ``uncertainty`` table.
    core : pandas.Series of bool, optional
        Core membership per respondent (e.g. HDBSCAN probability above a
        threshold).  The omnibus tests are repeated on core members only
        (``subset == "core members"``) unless every analysed respondent is a
        core member (then a warning says so).
    cutoffs : dict, optional
        ``{outcome: [(threshold, label), ...]}``; the share of each archetype
        at or above each threshold is reported in ``profiles``.
    stability : pandas.DataFrame, optional
        Columns ``archetype`` and ``verdict`` (``"stable"``,
        ``"borderline"``, ``"weak"``, ``"dissolved"`` or ``"not resampled"``)
        for this method; an optional ``method`` column is
        used to select this method's rows.  Drives the ``stability_verdict``
        and ``interpretation`` columns.
    config : ProfileConfig, optional
        Settings (:class:`segment.config.ProfileConfig`); by default every
        column of ``outcomes`` is profiled.
    seed : int
        Seed for the pseudo-class draws (``numpy.random.default_rng(seed)``).

    Returns
    -------
    ArchetypeProfiles
        See :class:`ArchetypeProfiles` for the tables and their columns.

    Raises
    ------
    SegmentError
        For user-fixable input problems: an unknown outcome or covariate, an
        outcome without variance, ids missing from an input table, malformed
        posteriors, cutoffs, stability or name overrides.

    Notes
    -----
    *Groups analysed.*  Tests, pairwise comparisons and adjusted means use the
    archetypes (and the noise group if ``config.include_noise``) with at least
    two non-missing values of the outcome.  An archetype with a single member
    is left out (reported in ``warnings`` and the ``note`` column).  With fewer
    than two such groups there are no tests for that outcome (reported).

    *Omnibus tests.*  One-way ANOVA with eta squared (SS_between / SS_total);
    Welch's ANOVA beside the classical omega squared
    (``omega_squared_classical``, from the ANOVA sums of squares,
    ``(SS_between - (k - 1) MS_within) / (SS_total + MS_within)``, not
    Welch-adjusted; it can be slightly negative when there is no effect and
    is not truncated); Kruskal-Wallis (tie-corrected H, as
    :func:`scipy.stats.kruskal`) with epsilon squared ``H / (n - 1)``.
    ``config.correction`` is applied per test and subset over the outcomes.

    *Pairwise comparisons.*  ``statistic`` is Welch's t of ``a - b`` with
    Welch-Satterthwaite ``df``.  For Games-Howell, ``p_value`` is
    ``studentized_range.sf(|t| * sqrt(2), k, df)``, which already protects
    the pairs of one outcome: ``p_adjusted`` equals it and the family is
    those pairs (not corrected again).  For Welch t, ``p_value`` is the
    two-sided t p-value and ``p_adjusted`` applies ``config.correction``
    over all pairs and all outcomes of the method.  ``hedges_g`` is the
    pooled-SD standardised difference with the small-sample correction
    ``1 - 3 / (4 (n_a + n_b) - 9)``.

    *Adjusted means.*  OLS ``outcome ~ C(archetype) + covariates`` with HC3
    covariance and t inference on the residual degrees of freedom.  A
    respondent with leverage 1 (the only member of a covariate level) is
    fitted exactly; its HC3 term, 0 / 0, is set to zero (noted).  The adjusted mean of an
    archetype is the average prediction over all analysed respondents, with
    their observed covariates and the archetype set to that level (average
    predictive margin); its standard error comes from the delta method
    (gradient = mean design row).  ``difference_vs_reference`` rows are the
    archetype coefficients against the lowest analysed archetype.
    ``p_value`` is not defined for ``adjusted_mean`` rows (NaN);
    ``p_adjusted`` of the differences applies ``config.correction`` over all
    differences of the method.

    *Continuum check.*  With ``features``, per outcome (analysed respondents
    with complete features): the OLS R² of the outcome on all features, and
    eta squared of ``k`` equal-count slices of the features' first principal
    component (``k`` = archetypes tested), beside the archetypes' eta
    squared; a warning when either matches or beats the archetypes.

    *Classification uncertainty.*  For each of ``m`` draws every respondent
    gets a class drawn from its posterior; per outcome the class means and
    their OLS variances (``outcome ~ C(class)``, pooled residual variance /
    class size) are computed, then combined with Rubin's rules: estimate =
    mean over draws, total variance = within + (1 + 1/m) between, with
    Barnard-Rubin degrees of freedom for the 95% interval.
    """
    cfg = _check_config(ProfileConfig() if config is None else config, getattr(outcomes, "columns", ()))
    method = _check_method(method)
    labels = _check_labels(labels)
    log = _Log()
    outcome_names = list(cfg.outcomes)
    y_all = _align_outcomes(labels, outcomes, outcome_names)
    cut = _check_cutoffs(cutoffs, outcome_names)
    core_mask = _align_core(core, labels) if core is not None else None
    cov_table, cov_names = _align_covariates(covariates, cfg.covariates, labels)
    feat = _align_features(features, labels) if features is not None else None

    archetype_ids = sorted(int(a) for a in labels.unique() if a != NOISE)
    stab = _stability(stability, archetype_ids, method, log)
    names = _check_names(cfg.names, method, archetype_ids)

    label_arr = labels.to_numpy()
    analysed = (label_arr != NOISE) if not cfg.include_noise else np.ones(len(labels), bool)
    _check_variance(y_all, outcome_names, analysed)

    cov_names = _drop_constant_covariates(method, cov_table, cov_names, analysed, log)
    profiles = _profiles_table(method, labels, y_all, outcome_names, cut, stab)
    archetypes, feature_rows = _archetypes_table(
        method, labels, feat, stab, names, cfg.top_features, log)

    tests_rows: list[dict] = []
    pair_rows: list[dict] = []
    adj_rows: list[dict] = []
    for outcome in outcome_names:
        y = y_all[outcome].to_numpy(dtype=float)
        subsets = [(SUBSET_ALL, analysed)]
        if core_mask is not None:
            observed = analysed & ~np.isnan(y)
            if np.array_equal(observed & core_mask, observed):
                log.add(f"{method}, {outcome}: every analysed respondent is a core member, so "
                        "the core-member sensitivity analysis would repeat the main one; "
                        "not repeated.")
            else:
                subsets.append((SUBSET_CORE, analysed & core_mask))
        if not cfg.include_noise and (label_arr == NOISE).sum() >= 2:
            subsets.append((SUBSET_NOISE, np.ones(len(label_arr), bool)))
        for subset, mask in subsets:
            groups, left_out = _collect_groups(y, label_arr, mask)
            note = _left_out_note(left_out, outcome)
            for g, count in left_out.items():
                log.add(f"{method}, {outcome} ({subset}): {_group_name(g)} has "
                        f"{_members_text(count, outcome)}; "
                        "left out of the tests"
                        + (" and pairwise comparisons" if subset == SUBSET_ALL else "")
                        + " because a variance cannot be estimated from fewer than "
                        "two respondents.")
            if len(groups) < 2:
                log.add(f"{method}, {outcome} ({subset}): fewer than two archetypes "
                        "with at least two members; no omnibus tests"
                        + (", pairwise comparisons or adjusted means"
                           if subset == SUBSET_ALL else "")
                        + " for this outcome.")
                continue
            tests_rows.extend(_omnibus_rows(method, outcome, subset, groups, note, stab, log))
            if subset == SUBSET_ALL:
                pair_rows.extend(_pairwise_rows(method, outcome, groups, cfg, stab, log))
                adj_rows.extend(_adjusted_rows(
                    method, outcome, y, label_arr, mask, groups, cov_table, cov_names,
                    stab, log))

    pairwise = _finish_pairwise(pair_rows, cfg, method, outcome_names)
    _finish_tests(tests_rows, cfg, method)
    _finish_adjusted(adj_rows, cfg, method)
    uncertainty = _empty(UNCERTAINTY_COLUMNS)
    if posteriors is not None:
        uncertainty = _uncertainty_table(
            method, labels, y_all, outcome_names, posteriors, archetype_ids,
            cfg.pseudo_class_draws, seed, stab, log)

    return ArchetypeProfiles(
        profiles=profiles,
        tests=_frame(tests_rows, TEST_COLUMNS),
        pairwise=pairwise,
        adjusted=_frame(adj_rows, ADJUSTED_COLUMNS),
        uncertainty=uncertainty,
        archetypes=archetypes,
        features=_frame(feature_rows, FEATURE_COLUMNS),
        continuum=_continuum_table(method, y_all, outcome_names, label_arr, analysed, feat, log),
        warnings=list(log.items),
    )


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


class _Log:
    def __init__(self):
        self.items: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _frame(rows, columns) -> pd.DataFrame:
    if not rows:
        return _empty(columns)
    return pd.DataFrame(rows, columns=list(columns))


def _group_name(g: int) -> str:
    return "the noise group (-1)" if g == NOISE else f"archetype {g}"


def _check_config(cfg, outcome_columns) -> ProfileConfig:
    if not isinstance(cfg, ProfileConfig):
        raise SegmentError(
            f"config must be a ProfileConfig, not {type(cfg).__name__}.")
    outcomes = tuple(cfg.outcomes) if not isinstance(cfg.outcomes, str) else (cfg.outcomes,)
    outcomes = outcomes or tuple(map(str, outcome_columns))
    if not outcomes:
        raise SegmentError("config.outcomes is empty; name at least one outcome "
                           "column, e.g. ('anxiety', 'depression', 'sleep').")
    dup = sorted({o for o in outcomes if outcomes.count(o) > 1})
    if dup:
        raise SegmentError(f"config.outcomes names {dup} more than once; list each "
                           "outcome once.")
    correction = str(cfg.correction).lower()
    if correction not in _CORRECTIONS:
        raise SegmentError(f"config.correction is {cfg.correction!r}; use one of "
                           f"{sorted(_CORRECTIONS)}.")
    pairwise = str(cfg.pairwise).lower().replace("_", "-")
    if pairwise not in _PAIRWISE_TESTS:
        raise SegmentError(f"config.pairwise is {cfg.pairwise!r}; use one of "
                           f"{sorted(_PAIRWISE_TESTS)}.")
    m = cfg.pseudo_class_draws
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
        raise SegmentError(f"config.pseudo_class_draws is {m!r}; Rubin's rules need "
                           "an integer of at least 2 (20 is a good default).")
    top = cfg.top_features
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise SegmentError(f"config.top_features is {top!r}; use a positive integer.")
    alpha = cfg.alpha
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise SegmentError(f"config.alpha is {alpha!r}; use a number between 0 and 1, "
                           "e.g. 0.05.")
    if not isinstance(cfg.names, dict):
        raise SegmentError("config.names must be a mapping {method: {archetype: name}}, "
                           f"not {type(cfg.names).__name__}.")
    covs = (cfg.covariates,) if isinstance(cfg.covariates, str) else tuple(cfg.covariates)
    return ProfileConfig(outcomes=outcomes, covariates=covs, correction=correction,
                         pairwise=pairwise, include_noise=bool(cfg.include_noise),
                         pseudo_class_draws=int(m), top_features=int(top),
                         names=cfg.names, alpha=float(alpha))


def _check_method(method) -> str:
    if not isinstance(method, str) or not method.strip():
        raise SegmentError(f"method must be the name of the clustering method "
                           f"(e.g. 'hdbscan', 'gmm', 'kmeans'), not {method!r}.")
    return method.strip()


def _check_labels(labels) -> pd.Series:
    if not isinstance(labels, pd.Series):
        raise SegmentError("labels must be a pandas Series of integer archetype labels "
                           f"indexed by respondent id, not {type(labels).__name__}.")
    if len(labels) == 0:
        raise SegmentError("labels is empty: there are no respondents to profile.")
    if labels.index.has_duplicates:
        dup = labels.index[labels.index.duplicated()].unique()[:5].tolist()
        raise SegmentError(f"labels has duplicated respondent ids (e.g. {dup}); give "
                           "each respondent one label.")
    if labels.isna().any():
        bad = labels.index[labels.isna()][:5].tolist()
        raise SegmentError(f"labels has missing values for respondents {bad}; leave "
                           "excluded respondents out of labels, or label noise -1.")
    if not pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        raise SegmentError(f"labels must be integers (archetype numbers, -1 = noise); "
                           f"got dtype {labels.dtype}.")
    values = labels.to_numpy(dtype=float)
    if not np.all(values == np.round(values)) or np.any(values < NOISE):
        raise SegmentError("labels must be integers >= 0 for archetypes and -1 for "
                           "noise; found other values.")
    return pd.Series(values.astype(np.int64), index=labels.index, name=labels.name)


def _missing_ids(table_index, labels, what) -> None:
    missing = labels.index.difference(table_index)
    if len(missing):
        raise SegmentError(
            f"{what} has no row for {len(missing)} respondent(s) that have an archetype "
            f"label (e.g. ids {missing[:5].tolist()}); give {what} a row for every "
            "labelled respondent (NaN for missing values).")


def _check_frame(table, what) -> None:
    if not isinstance(table, pd.DataFrame):
        raise SegmentError(f"{what} must be a pandas DataFrame indexed by respondent id, "
                           f"not {type(table).__name__}.")
    if table.index.has_duplicates:
        dup = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise SegmentError(f"{what} has duplicated respondent ids (e.g. {dup}); keep one "
                           "row per respondent.")


def _align_outcomes(labels, outcomes, names) -> pd.DataFrame:
    _check_frame(outcomes, "the outcomes table")
    available = [str(c) for c in outcomes.columns]
    for name in names:
        if name not in outcomes.columns:
            raise SegmentError(
                f"outcome {name!r} (config.outcomes) is not a column of the outcomes "
                f"table; available outcome columns: {available}. Fix config.outcomes "
                "or the column name.")
        if not pd.api.types.is_numeric_dtype(outcomes[name]) or \
                pd.api.types.is_bool_dtype(outcomes[name]):
            raise SegmentError(
                f"outcome {name!r} is not numeric (dtype {outcomes[name].dtype}); "
                "convert it to a numeric score (NaN for missing).")
    _missing_ids(outcomes.index, labels, "the outcomes table")
    return outcomes.loc[labels.index, names].astype(float)


def _check_variance(y_all, names, analysed) -> None:
    rows = analysed if analysed.any() else np.ones(len(analysed), bool)
    for name in names:
        v = y_all[name].to_numpy(dtype=float)[rows]
        v = v[~np.isnan(v)]
        if v.size == 0:
            raise SegmentError(
                f"outcome {name!r} has no non-missing values among the analysed "
                "respondents; remove it from config.outcomes or check the data.")
        if np.all(v == v[0]):
            raise SegmentError(
                f"outcome {name!r} has no variance: every analysed respondent has the "
                f"value {v[0]:g}; remove it from config.outcomes or check the scoring.")


def _check_cutoffs(cutoffs, outcome_names) -> dict:
    if cutoffs is None:
        return {}
    if not isinstance(cutoffs, dict):
        raise SegmentError("cutoffs must be a mapping {outcome: [(threshold, label), ...]}, "
                           f"not {type(cutoffs).__name__}.")
    out = {}
    for outcome, items in cutoffs.items():
        if outcome not in outcome_names:
            raise SegmentError(
                f"cutoffs are given for {outcome!r}, which is not among the profiled "
                f"outcomes {outcome_names}; fix the outcome name or add it to "
                "config.outcomes.")
        parsed = []
        for item in items:
            try:
                threshold, label = item
                threshold = float(threshold)
            except (TypeError, ValueError):
                raise SegmentError(
                    f"cutoff {item!r} for outcome {outcome!r} is not a (threshold, label) "
                    "pair with a numeric threshold, e.g. (10, 'moderate').") from None
            if not math.isfinite(threshold):
                raise SegmentError(f"cutoff threshold {threshold} for outcome {outcome!r} "
                                   "is not a finite number.")
            parsed.append((threshold, str(label)))
        out[outcome] = parsed
    return out


def _align_core(core, labels) -> np.ndarray:
    if isinstance(core, np.ndarray) and core.ndim == 1 and len(core) == len(labels):
        core = pd.Series(core, index=labels.index)
    if not isinstance(core, pd.Series):
        raise SegmentError("core must be a pandas Series of booleans indexed by respondent "
                           f"id, not {type(core).__name__}.")
    if core.index.has_duplicates:
        raise SegmentError("core has duplicated respondent ids; keep one value per "
                           "respondent.")
    _missing_ids(core.index, labels, "core")
    values = core.loc[labels.index]
    if values.isna().any():
        raise SegmentError("core has missing values; mark every respondent True (core "
                           "member) or False.")
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    uniq = set(pd.unique(values.to_numpy()).tolist())
    if not uniq <= {0, 1}:
        raise SegmentError("core must hold booleans (True = core member); found values "
                           f"{sorted(map(str, uniq))[:5]}.")
    return values.to_numpy() == 1


def _align_covariates(covariates, wanted, labels):
    wanted = list(wanted)
    if covariates is None:
        if wanted:
            raise SegmentError(
                f"config.covariates names {wanted} but no covariates table was given; "
                "pass covariates=DataFrame or empty config.covariates.")
        return None, []
    _check_frame(covariates, "the covariates table")
    columns = list(covariates.columns)
    if not wanted:
        wanted = columns
    for name in wanted:
        if name not in columns:
            raise SegmentError(
                f"covariate {name!r} (config.covariates) is not a column of the "
                f"covariates table; available columns: {[str(c) for c in columns]}.")
    _missing_ids(covariates.index, labels, "the covariates table")
    return covariates.loc[labels.index, wanted], wanted


def _drop_constant_covariates(method, cov_table, cov_names, analysed, log):
    """Drop covariates with a single level (or constant) among analysed respondents."""
    if cov_table is None or not analysed.any():
        return cov_names
    kept = []
    for name in cov_names:
        col = cov_table[name][analysed].dropna()
        if _is_categorical(col):
            levels = sorted(set(col.astype(str)))
        else:
            levels = sorted(set(col.to_numpy(dtype=float).tolist()))
        if len(levels) == 1:
            log.add(f"{method}: covariate {name!r} has a single value ({levels[0]!r}) "
                    "among the analysed respondents; dropped from the adjusted model.")
            continue
        if not levels:
            log.add(f"{method}: covariate {name!r} is missing for every analysed "
                    "respondent; dropped from the adjusted model.")
            continue
        kept.append(name)
    return kept


def _align_features(features, labels) -> pd.DataFrame:
    _check_frame(features, "the features table")
    for col in features.columns:
        if not pd.api.types.is_numeric_dtype(features[col]) or \
                pd.api.types.is_bool_dtype(features[col]):
            raise SegmentError(f"feature {col!r} is not numeric (dtype "
                               f"{features[col].dtype}); pass the standardised numeric "
                               "features used for clustering.")
    _missing_ids(features.index, labels, "the features table")
    return features.loc[labels.index].astype(float)


def _stability(stability, archetype_ids, method, log) -> dict:
    """Per-archetype verdicts plus the method-level summary and interpretation."""
    verdicts = {NOISE: "not applicable (noise)"}
    if stability is None:
        for a in archetype_ids:
            verdicts[a] = "not assessed"
        return {"per": verdicts, "summary": NOT_ASSESSED, "interpretation": NOT_ASSESSED}
    if not isinstance(stability, pd.DataFrame):
        raise SegmentError("stability must be a DataFrame with columns 'archetype' and "
                           f"'verdict', not {type(stability).__name__}.")
    missing_cols = [c for c in ("archetype", "verdict") if c not in stability.columns]
    if missing_cols:
        raise SegmentError(f"the stability table lacks column(s) {missing_cols}; it needs "
                           "'archetype' and 'verdict' ('stable', 'weak' or 'dissolved').")
    table = stability
    if "method" in table.columns:
        table = table[table["method"].astype(str) == method]
    given = {}
    for a, v in zip(table["archetype"], table["verdict"]):
        try:
            a = int(a)
        except (TypeError, ValueError):
            raise SegmentError(f"the stability table has archetype {a!r}, which is not an "
                               "integer archetype label.") from None
        v = str(v).strip().lower()
        if v not in _VERDICTS:
            raise SegmentError(f"the stability table gives archetype {a} the verdict {v!r}; "
                               f"use one of {list(_VERDICTS)}.")
        if a in given and given[a] != v:
            raise SegmentError(f"the stability table gives archetype {a} two verdicts "
                               f"({given[a]!r} and {v!r}) for {method}; keep one.")
        given[a] = v
    unknown = sorted(a for a in given if a != NOISE and a not in archetype_ids)
    if unknown:
        log.add(f"{method}: the stability table has verdicts for archetype(s) {unknown}, "
                f"which are not among the archetypes {archetype_ids}; ignored.")
    unassessed = [a for a in archetype_ids if a not in given]
    if unassessed:
        log.add(f"{method}: no stability verdict for archetype(s) {unassessed}; marked "
                "'not assessed'.")
    for a in archetype_ids:
        verdicts[a] = given.get(a, "not assessed")
    unstable = [a for a in archetype_ids if verdicts[a] != "stable"]
    if not unstable:
        summary, interpretation = ALL_STABLE, INTERPRET_STABLE
    else:
        which = "; ".join(f"archetype {a}: {verdicts[a]}" for a in unstable)
        summary = NOT_ALL_STABLE
        interpretation = (
            f"not all archetypes are stable under resampling ({which}): differences may "
            "reflect slicing a continuum rather than distinct groups and are not to be "
            "read as findings")
    return {"per": verdicts, "summary": summary, "interpretation": interpretation}


def _pair_verdict(stab, a, b) -> str:
    va, vb = stab["per"].get(a, "not assessed"), stab["per"].get(b, "not assessed")
    return max((va, vb), key=lambda v: _VERDICT_RANK.get(v, 1))


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
# Descriptives and archetype descriptions
# --------------------------------------------------------------------------


def _threshold_token(threshold: float) -> str:
    text = f"{threshold:g}".replace("-", "minus_").replace(".", "_").replace("+", "")
    return text


def _profiles_table(method, labels, y_all, outcome_names, cut, stab) -> pd.DataFrame:
    rows = []
    label_arr = labels.to_numpy()
    for g in sorted(int(a) for a in np.unique(label_arr)):
        members = label_arr == g
        group = "noise" if g == NOISE else "archetype"
        verdict = stab["per"].get(g, "not assessed")
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
                order = sorted(range(len(contrasts)), key=lambda i: -abs(contrasts[i][3]))
                rank = {i: r + 1 for r, i in enumerate(order)}
                for i, (col, ma, mb, smd, na, nb) in enumerate(contrasts):
                    feature_rows.append(dict(method=method, archetype=g, group=group,
                                             feature=col, mean_in=ma, mean_rest=mb,
                                             smd=smd, n_in=na, n_rest=nb, rank=rank[i]))
                best = [contrasts[i] for i in order[:top]]
                if best:
                    top_text = "; ".join(f"{c[0]} {c[3]:+.1f}" for c in best)
                    words = " · ".join(
                        f"{'high' if c[3] > 0 else 'low'} {c[0].replace('_', ' ')}"
                        for c in best)
                    draft = f"noise: {words}" if g == NOISE else words
        rows.append(dict(method=method, archetype=g, group=group, n=n, share=n / total,
                         stability_verdict=stab["per"].get(g, "not assessed"),
                         name=names.get(g, draft), draft_name=draft, top_features=top_text))
    if dropped_constant:
        log.add(f"{method}: feature(s) {sorted(dropped_constant)} do not vary within the "
                "contrasted groups (pooled SD 0); left out of the archetype descriptions.")
    return _frame(rows, ARCHETYPE_COLUMNS), feature_rows


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


def _members_text(count, outcome) -> str:
    if count == 1:
        return f"a single member with a non-missing {outcome} value"
    return f"no member with a non-missing {outcome} value"


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
            if cfg.pairwise == "games-howell":
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


def _correct(p, alpha, correction):
    """Adjusted p-values and rejections of ``correction`` over the non-missing ``p``."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    ok = ~np.isnan(p)
    adjusted = np.full(p.size, np.nan)
    reject = np.zeros(p.size, dtype=bool)
    if ok.any():
        rej, padj, _, _ = multipletests(p[ok], alpha=alpha, method=correction)
        adjusted[ok] = padj
        reject[ok] = rej
    return adjusted, reject


def _plural(n, word) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
    adjusted, reject = _correct([r["p_value"] for r in rows], cfg.alpha, cfg.correction)
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
        adjusted, _ = _correct([r["p_value"] for r in part], cfg.alpha, cfg.correction)
        n = int((~np.isnan(adjusted)).sum())
        family = (f"{key[0]} ({key[1]}) over {_plural(n, 'outcome')} for {method}, "
                  f"{corr} correction")
        for r, pa in zip(part, adjusted):
            r.update(p_adjusted=float(pa), correction=cfg.correction, family=family)


def _finish_adjusted(rows, cfg, method) -> None:
    """Correct the differences from the reference over archetypes and outcomes."""
    diffs = [r for r in rows if r["kind"] == "difference_vs_reference"]
    adjusted, _ = _correct([r["p_value"] for r in diffs], cfg.alpha, cfg.correction)
    n = int((~np.isnan(adjusted)).sum())
    n_out = len({r["outcome"] for r in diffs})
    family = (f"all {n} adjusted differences from the reference archetype across "
              f"{_plural(n_out, 'outcome')} for {method}, {_CORRECTIONS[cfg.correction]} correction")
    for r, pa in zip(diffs, adjusted):
        r.update(p_adjusted=float(pa), correction=cfg.correction, family=family)
    for r in rows:
        if r["kind"] != "difference_vs_reference":
            r.update(p_adjusted=np.nan, correction="", family="")


# --------------------------------------------------------------------------
# Covariate-adjusted means
# --------------------------------------------------------------------------


def _is_categorical(series: pd.Series) -> bool:
    return (not pd.api.types.is_numeric_dtype(series)) or pd.api.types.is_bool_dtype(series)


def _adjusted_rows(method, outcome, y, label_arr, mask, groups, cov_table, cov_names,
                   stab, log):
    import statsmodels.api as sm

    rows_mask = mask & ~np.isnan(y) & np.isin(label_arr, list(groups))
    if cov_table is not None and cov_names:
        cov_missing = cov_table[cov_names].isna().any(axis=1).to_numpy()
        n_dropped = int((rows_mask & cov_missing).sum())
        if n_dropped:
            log.add(f"{method}, {outcome}: {n_dropped} respondent(s) with a missing "
                    "covariate left out of the adjusted model.")
        rows_mask = rows_mask & ~cov_missing
    lab = label_arr[rows_mask]
    yy = y[rows_mask]
    levels = []
    for g in groups:
        count = int((lab == g).sum())
        if count >= 2:
            levels.append(g)
        else:
            log.add(f"{method}, {outcome}: {_group_name(g)} has fewer than two respondents "
                    "with complete covariates; left out of the adjusted model.")
    if len(levels) < 2:
        log.add(f"{method}, {outcome}: fewer than two archetypes with complete covariates; "
                "no adjusted means.")
        return []
    keep = np.isin(lab, levels)
    lab, yy = lab[keep], yy[keep]
    n = yy.size

    columns = [np.ones(n)]
    ref = levels[0]
    for g in levels[1:]:
        columns.append((lab == g).astype(float))
    used = []
    if cov_table is not None:
        sub = cov_table.iloc[np.flatnonzero(rows_mask)[keep]]
        for name in cov_names:
            col = sub[name]
            if _is_categorical(col):
                values = col.astype(str).to_numpy()
                if isinstance(col.dtype, pd.CategoricalDtype):
                    present = set(values)
                    lv = [str(c) for c in col.cat.categories if str(c) in present]
                else:
                    lv = sorted(set(values))
                if len(lv) < 2:
                    log.add(f"{method}, {outcome}: covariate {name!r} has a single level "
                            f"({lv[0]!r}) among the analysed respondents; dropped from "
                            "the adjusted model.")
                    continue
                for level in lv[1:]:
                    columns.append((values == level).astype(float))
                used.append(f"C({name})")
            else:
                x = col.to_numpy(dtype=float)
                if np.all(x == x[0]):
                    log.add(f"{method}, {outcome}: covariate {name!r} is constant "
                            f"({x[0]:g}) among the analysed respondents; dropped from "
                            "the adjusted model.")
                    continue
                columns.append(x)
                used.append(str(name))
    X = np.column_stack(columns)
    p = X.shape[1]
    if np.linalg.matrix_rank(X) < p:
        raise SegmentError(
            f"{method}, {outcome}: the covariates {used} are collinear with each other or "
            "with archetype membership, so adjusted means are not identified; remove "
            "redundant covariates from config.covariates.")
    if n - p < 1:
        log.add(f"{method}, {outcome}: too few respondents ({n}) for {p} model "
                "parameters; no adjusted means.")
        return []
    fit = sm.OLS(yy, X).fit()
    beta = np.asarray(fit.params)
    cov, n_lev1 = _hc3(X, np.asarray(fit.resid))
    se_type = "HC3"
    note = ""
    if n_lev1:
        note = (f"{_plural(n_lev1, 'respondent')} with leverage 1 (fitted exactly, residual 0) "
                "contribute nothing to the HC3 covariance")
    dfr = float(fit.df_resid)
    tcrit = stats.t.ppf(0.5 + CI_LEVEL / 2, dfr)
    cov_text = ", ".join(used) if used else "none"
    rows = []
    base = dict(method=method, outcome=outcome, reference_archetype=int(ref), df=dfr,
                n=int(n), covariates=cov_text, se_type=se_type, note=note)
    k = len(levels)
    for i, g in enumerate(levels):
        Xg = X.copy()
        Xg[:, 1:k] = 0.0
        if i > 0:
            Xg[:, i] = 1.0
        grad = Xg.mean(axis=0)
        est = float(grad @ beta)
        se = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
        rows.append(dict(base, archetype=int(g), kind="adjusted_mean", estimate=est,
                         se=se, ci_low=est - tcrit * se, ci_high=est + tcrit * se,
                         p_value=np.nan, stability_verdict=stab["per"].get(g, "not assessed")))
    for i, g in enumerate(levels[1:], start=1):
        est = float(beta[i])
        se = float(math.sqrt(cov[i, i]))
        pval = float(2 * stats.t.sf(abs(est / se), dfr)) if se > 0 else np.nan
        rows.append(dict(base, archetype=int(g), kind="difference_vs_reference",
                         estimate=est, se=se, ci_low=est - tcrit * se,
                         ci_high=est + tcrit * se, p_value=pval,
                         stability_verdict=_pair_verdict(stab, g, ref)))
    return rows


def _hc3(X, resid):
    """HC3 covariance of OLS coefficients, and the number of leverage-1 rows.

    HC3 weighs each squared residual by ``1 / (1 - h)^2``.  A row with
    leverage ``h = 1`` (e.g. the only member of a covariate level) is fitted
    exactly, so its residual is zero and its contribution is set to zero
    instead of the undefined 0 / 0; the covariance of the other coefficients
    is then that of the fit without that row and its own parameter.
    """
    xtx_inv = np.linalg.pinv(X.T @ X)
    leverage = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    one = leverage > 1 - 1e-8
    weight = np.zeros(len(resid))
    weight[~one] = resid[~one] ** 2 / (1 - leverage[~one]) ** 2
    meat = (X * weight[:, None]).T @ X
    return xtx_inv @ meat @ xtx_inv, int(one.sum())


# --------------------------------------------------------------------------
# Continuum check and near-circular features
# --------------------------------------------------------------------------


def _eta_squared(y, groups) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return np.nan
    between = sum(float((groups == g).sum()) * (float(y[groups == g].mean()) - y.mean()) ** 2
                  for g in np.unique(groups))
    return between / total


def _continuum_table(method, y_all, outcome_names, label_arr, analysed, feat, log):
    """What the features explain of each outcome without clusters, beside the archetypes."""
    if feat is None or not feat.shape[1]:
        return _empty(CONTINUUM_COLUMNS)
    F = feat.to_numpy(dtype=float)
    rows = []
    for outcome in outcome_names:
        y = y_all[outcome].to_numpy(dtype=float)
        use = analysed & ~np.isnan(y) & ~np.isnan(F).any(axis=1)
        lab, yy = label_arr[use], y[use]
        present, counts = np.unique(lab, return_counts=True)
        keep = np.isin(lab, present[counts >= 2])
        lab, yy, X = lab[keep], yy[keep], F[use][keep]
        k = int(np.unique(lab).size)
        if k < 2:
            continue
        X = X[:, X.std(axis=0) > 0]
        n, p = X.shape
        note = ""
        r2 = np.nan
        if n > p + 1:
            design = np.column_stack([np.ones(n), X])
            beta, *_ = np.linalg.lstsq(design, yy, rcond=None)
            resid = yy - design @ beta
            r2 = 1 - float(resid @ resid) / float(((yy - yy.mean()) ** 2).sum())
        else:
            note = f"{n} respondents for {p} features: R² not estimated"
        Xc = X - X.mean(axis=0)
        pc1 = Xc @ np.linalg.svd(Xc, full_matrices=False)[2][0] if p else np.zeros(n)
        slices = np.minimum((np.argsort(np.argsort(pc1, kind="stable")) * k) // n, k - 1)
        eta_pc1 = _eta_squared(yy, slices)
        eta_arch = _eta_squared(yy, lab)
        as_good = bool(np.nanmax([r2, eta_pc1]) >= eta_arch) if np.isfinite(eta_arch) else False
        if as_good:
            log.add(f"{method}, {outcome}: the features explain as much of {outcome} without "
                    f"clusters (OLS R² {r2:.2f}; {k} equal slices of their first principal "
                    f"component, η² {eta_pc1:.2f}) as the {k} archetypes do (η² {eta_arch:.2f}): "
                    "the archetype differences may be slices of a continuum.")
        rows.append(dict(method=method, outcome=outcome, n=int(n), k=k,
                         archetype_eta_squared=eta_arch, features_r_squared=r2, n_features=int(p),
                         pc1_slices_eta_squared=eta_pc1, continuum_as_good=as_good, note=note))
    return _frame(rows, CONTINUUM_COLUMNS)


def near_circular_features(features, outcomes, threshold=NEAR_CIRCULAR) -> pd.DataFrame:
    """Features whose rank correlation with an outcome is ``threshold`` or more.

    Parameters
    ----------
    features, outcomes : pandas.DataFrame
        Numeric columns, indexed by respondent id (aligned on the index).
    threshold : float
        Smallest absolute Spearman correlation reported.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`NEAR_CIRCULAR_COLUMNS`, strongest first.  Profiles of
        such an outcome partly restate what was clustered on.
    """
    outcomes = outcomes.reindex(features.index)
    rows = []
    for o in outcomes.columns:
        y = outcomes[o].to_numpy(dtype=float)
        for f in features.columns:
            x = features[f].to_numpy(dtype=float)
            ok = ~np.isnan(x) & ~np.isnan(y)
            if ok.sum() < 3 or np.all(x[ok] == x[ok][0]) or np.all(y[ok] == y[ok][0]):
                continue
            rho = float(stats.spearmanr(x[ok], y[ok])[0])
            if abs(rho) >= threshold:
                rows.append(dict(feature=str(f), outcome=str(o), spearman=rho, n=int(ok.sum())))
    out = _frame(rows, NEAR_CIRCULAR_COLUMNS)
    if len(out):
        out = out.reindex(out["spearman"].abs().sort_values(ascending=False).index)
        out = out.reset_index(drop=True)
    return out


# --------------------------------------------------------------------------
# Classification uncertainty: pseudo-class draws + Rubin's rules
# --------------------------------------------------------------------------


def _uncertainty_table(method, labels, y_all, outcome_names, posteriors, archetype_ids,
                       m, seed, stab, log) -> pd.DataFrame:
    post = np.asarray(posteriors, dtype=float)
    n_lab, k = len(labels), len(archetype_ids)
    if post.ndim != 2 or post.shape != (n_lab, k):
        raise SegmentError(
            f"posteriors has shape {post.shape}, but {method} has {n_lab} labelled "
            f"respondents and {k} archetypes {archetype_ids}; pass an n x K array whose "
            "rows follow labels.index and columns the sorted archetypes.")
    label_arr = labels.to_numpy()
    rows_used = label_arr != NOISE
    post = post[rows_used]
    if not np.all(np.isfinite(post)) or np.any(post < 0):
        raise SegmentError("posteriors contain missing, infinite or negative values; pass "
                           "membership probabilities (e.g. GaussianMixture.predict_proba).")
    sums = post.sum(axis=1)
    if np.any(np.abs(sums - 1) > 1e-6):
        bad = int(np.sum(np.abs(sums - 1) > 1e-6))
        raise SegmentError(f"posteriors rows must sum to 1; {bad} row(s) do not. Pass "
                           "membership probabilities (e.g. GaussianMixture.predict_proba).")
    post = post / sums[:, None]
    rng = np.random.default_rng(seed)
    cum = np.cumsum(post, axis=1)
    cum[:, -1] = 1.0
    draws = np.empty((m, post.shape[0]), dtype=np.int64)
    for d in range(m):
        u = rng.random(post.shape[0])
        draws[d] = np.minimum((cum < u[:, None]).sum(axis=1), k - 1)
    approach = f"pseudo-class draws (m={m}), Rubin's rules"
    rows = []
    for outcome in outcome_names:
        y = y_all[outcome].to_numpy(dtype=float)[rows_used]
        ok = ~np.isnan(y)
        yv = y[ok]
        n = int(yv.size)
        q = np.full((m, k), np.nan)
        u = np.full((m, k), np.nan)
        for d in range(m):
            cls = draws[d][ok]
            counts = np.bincount(cls, minlength=k).astype(float)
            sums_c = np.bincount(cls, weights=yv, minlength=k)
            present = counts > 0
            means = np.divide(sums_c, counts, out=np.full(k, np.nan), where=present)
            resid = yv - means[cls]
            dfr = n - int(present.sum())
            if dfr < 1:
                continue
            s2 = float(resid @ resid) / dfr
            q[d, present] = means[present]
            u[d, present] = s2 / counts[present]
        for j, a in enumerate(archetype_ids):
            avail = ~np.isnan(q[:, j])
            mj = int(avail.sum())
            note = ""
            verdict = stab["per"].get(a, "not assessed")
            if mj < m:
                note = f"archetype {a} drawn in only {mj} of {m} draws for {outcome}"
                log.add(f"{method}, {outcome}: archetype {a} received no respondents in "
                        f"{m - mj} of {m} pseudo-class draws; Rubin's rules use the "
                        f"remaining {mj}.")
            if mj < 2:
                rows.append(dict(method=method, outcome=outcome, archetype=a,
                                 estimate=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan,
                                 within_variance=np.nan, between_variance=np.nan,
                                 total_variance=np.nan, df=np.nan, m=mj, n=n,
                                 approach=approach, stability_verdict=verdict,
                                 note=(note + "; " if note else "")
                                 + "too few draws for Rubin's rules"))
                continue
            qj, uj = q[avail, j], u[avail, j]
            est = float(qj.mean())
            within = float(uj.mean())
            between = float(qj.var(ddof=1))
            total = within + (1 + 1 / mj) * between
            df = _barnard_rubin_df(within, between, mj, n - k)
            se = math.sqrt(total)
            tcrit = stats.t.ppf(0.5 + CI_LEVEL / 2, df)
            rows.append(dict(method=method, outcome=outcome, archetype=a, estimate=est,
                             se=se, ci_low=est - tcrit * se, ci_high=est + tcrit * se,
                             within_variance=within, between_variance=between,
                             total_variance=total, df=df, m=mj, n=n, approach=approach,
                             stability_verdict=verdict, note=note))
    return _frame(rows, UNCERTAINTY_COLUMNS)


def _barnard_rubin_df(within, between, m, df_complete) -> float:
    """Barnard-Rubin (1999) degrees of freedom for a Rubin's-rules estimate."""
    df_complete = max(float(df_complete), 1.0)
    total = within + (1 + 1 / m) * between
    lam = (1 + 1 / m) * between / total if total > 0 else 0.0
    df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
    if lam <= 0:
        return float(df_obs)
    df_old = (m - 1) / lam ** 2
    if df_obs <= 0:
        return float(df_old)
    return float(df_old * df_obs / (df_old + df_obs))


CORE_PROBABILITY = 0.5  # HDBSCAN membership probability of a "core member"


def profile_stage(*, config, cohort, segmentation, seed, progress, tables, results, **_) -> None:
    """The runner's profiling stage: every method's archetypes against the outcomes.

    Adds the tables ``profiles``, ``tests``, ``pairwise``, ``adjusted``,
    ``uncertainty``, ``archetypes`` and ``archetype_features`` and sets
    ``results["profiles"]`` to the :class:`ArchetypeProfiles` of all methods.
    """
    seg = segmentation
    if seg is None:
        return
    progress("profile")
    pc = config.profile
    outcomes = list(pc.outcomes) or [s.name for s in cohort.codebook.scales if s.role == "outcome"] \
        or list(cohort.outcomes.columns)
    cfg = dataclasses.replace(pc, outcomes=outcomes)
    if not pc.covariates:
        covariates = None
    else:
        unknown = [c for c in pc.covariates if c not in cohort.covariates.columns]
        if unknown:
            raise SegmentError(
                f"config key 'profile.covariates' names {', '.join(map(repr, unknown))}, not a covariate "
                f"of the codebook. Covariates: {', '.join(cohort.covariates.columns) or 'none'}."
            )
        covariates = cohort.covariates.loc[seg.ids, list(pc.covariates)]
    unknown = [o for o in outcomes if o not in cohort.outcomes.columns]
    if unknown:
        raise SegmentError(
            f"config key 'profile.outcomes' names {', '.join(map(repr, unknown))}, not an outcome of the "
            f"codebook. Outcomes: {', '.join(cohort.outcomes.columns) or 'none'}."
        )
    names = [str(n) for n in seg.encoder.feature_names_]
    features = pd.DataFrame(seg.X[seg.inverse], index=seg.ids, columns=names)
    stability = results.get("stability")
    parts = []
    for i, method in enumerate(("hdbscan", "gmm", "kmeans")):
        labels = seg.labels(method)
        if labels is None:
            continue
        stab = None
        if stability is not None and len(stability):
            stab = stability[stability["method"] == method]
        kwargs = {}
        if method == "gmm":
            kwargs["posteriors"] = seg.gmm.posteriors[seg.inverse]
        if method == "hdbscan":
            kwargs["core"] = pd.Series(seg.hdbscan.probabilities[seg.inverse] >= CORE_PROBABILITY,
                                       index=seg.ids)
        parts.append(profile_archetypes(
            pd.Series(labels, index=seg.ids), cohort.outcomes.loc[seg.ids], method=method,
            features=features, covariates=covariates, cutoffs=cohort.codebook.cutoffs() or None,
            stability=stab, config=cfg, seed=int(np.random.SeedSequence(
                seed.entropy, spawn_key=tuple(seed.spawn_key) + (2, i)).generate_state(1)[0]),
            **kwargs))
    profiles = concat_profiles(parts)
    results["profiles"] = profiles
    for name in ("profiles", "tests", "pairwise", "adjusted", "uncertainty", "archetypes",
                 "continuum"):
        tables[name] = getattr(profiles, name)
    tables["archetype_features"] = profiles.features
    circular = near_circular_features(features, cohort.outcomes.loc[seg.ids, outcomes])
    tables["near_circular_features"] = circular
    summary = results.setdefault("summary", [])
    summary.extend(_circular_warning(r) for r in circular.itertuples())
    summary.extend(profiles.warnings)
    results.setdefault("metrics", {})["profile"] = {
        "near_circular_features": circular.to_dict("records"),
        "near_circular_threshold": NEAR_CIRCULAR,
        "uncertainty_methods": sorted(set(profiles.uncertainty["method"])),
        "continuum_as_good": sorted(set(
            f"{r.method}: {r.outcome}" for r in profiles.continuum.itertuples() if r.continuum_as_good)),
    }


def _circular_warning(row) -> str:
    return (f"Feature {row.feature!r} has a rank correlation of {row.spearman:.2f} with the outcome "
            f"{row.outcome!r} (|Spearman| >= {NEAR_CIRCULAR}): clustering on it partly clusters on "
            f"{row.outcome} itself, so the archetypes' {row.outcome} profile is near-circular.")

"""The entry point: :func:`profile_archetypes` profiles the archetypes of one
clustering method against the outcomes."""

from __future__ import annotations

import numpy as np

from ..config import ProfileConfig
from ._common import NOISE, _empty, _frame, _group_name, _Log, _members_text
from .adjusted import _adjusted_rows, _finish_adjusted
from .continuum import _continuum_table
from .descriptives import _profiles_table
from .inputs import (
    _align_core,
    _align_covariates,
    _align_features,
    _align_outcomes,
    _check_config,
    _check_cutoffs,
    _check_labels,
    _check_method,
    _check_variance,
    _drop_constant_covariates,
)
from .naming import _archetypes_table, _check_names
from .tables import (
    ADJUSTED_COLUMNS,
    FEATURE_COLUMNS,
    TEST_COLUMNS,
    UNCERTAINTY_COLUMNS,
    ArchetypeProfiles,
)
from .tests import (
    _collect_groups,
    _finish_pairwise,
    _finish_tests,
    _left_out_note,
    _omnibus_rows,
    _pairwise_rows,
)
from .uncertainty import _uncertainty_table
from .verdicts import _stability

SUBSET_ALL = "all assigned"
SUBSET_CORE = "core members"
SUBSET_NOISE = "noise as a group"


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
        subsets = _subsets(method, outcome, y, label_arr, analysed, core_mask,
                           cfg.include_noise, log)
        tests, pairs, adjusted = _outcome_rows(method, outcome, y, label_arr, subsets, cfg,
                                               cov_table, cov_names, stab, log)
        tests_rows.extend(tests)
        pair_rows.extend(pairs)
        adj_rows.extend(adjusted)

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


def _subsets(method, outcome, y, label_arr, analysed, core_mask, include_noise, log):
    """``(subset, mask)`` of the respondents the omnibus tests of one outcome run on."""
    subsets = [(SUBSET_ALL, analysed)]
    if core_mask is not None:
        observed = analysed & ~np.isnan(y)
        if np.array_equal(observed & core_mask, observed):
            log.add(f"{method}, {outcome}: every analysed respondent is a core member, so "
                    "the core-member sensitivity analysis would repeat the main one; "
                    "not repeated.")
        else:
            subsets.append((SUBSET_CORE, analysed & core_mask))
    if not include_noise and (label_arr == NOISE).sum() >= 2:
        subsets.append((SUBSET_NOISE, np.ones(len(label_arr), bool)))
    return subsets


def _outcome_rows(method, outcome, y, label_arr, subsets, cfg, cov_table, cov_names, stab, log):
    """Omnibus tests of every subset, and pairwise comparisons and adjusted means
    of all assigned respondents, for one outcome."""
    tests, pairs, adjusted = [], [], []
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
        tests.extend(_omnibus_rows(method, outcome, subset, groups, note, stab, log))
        if subset == SUBSET_ALL:
            pairs.extend(_pairwise_rows(method, outcome, groups, cfg, stab, log))
            adjusted.extend(_adjusted_rows(
                method, outcome, y, label_arr, mask, groups, cov_table, cov_names,
                stab, log))
    return tests, pairs, adjusted

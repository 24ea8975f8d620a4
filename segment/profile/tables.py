"""The tables of a profile: their columns, :class:`ArchetypeProfiles` and
:func:`concat_profiles`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import SegmentError
from ._common import _empty

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
        from ..report._notebook import profiles_summary_html

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

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

The work is split by table: :mod:`.tables` (columns and the result
container), :mod:`.inputs` (checks), :mod:`.verdicts` (stability verdicts),
:mod:`.descriptives`, :mod:`.naming`, :mod:`.tests` (omnibus and pairwise
tests, corrections), :mod:`.adjusted`, :mod:`.continuum`,
:mod:`.uncertainty`, :mod:`.core` (:func:`profile_archetypes`) and
:mod:`.stage` (the experiment runner's stage).
"""

from ..config import ProfileConfig
from .continuum import near_circular_features
from .core import profile_archetypes
from .stage import profile_stage  # noqa: F401  (the experiment runner's stage)
from .tables import (
    ADJUSTED_COLUMNS,
    ARCHETYPE_COLUMNS,
    CONTINUUM_COLUMNS,
    FEATURE_COLUMNS,
    PAIRWISE_COLUMNS,
    PROFILE_COLUMNS,
    TEST_COLUMNS,
    UNCERTAINTY_COLUMNS,
    ArchetypeProfiles,
    concat_profiles,
)

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

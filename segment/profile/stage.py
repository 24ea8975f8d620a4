"""The profiling stage of an experiment run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from ..vocabulary import ARCHETYPE_METHODS, seed_stream
from .continuum import NEAR_CIRCULAR, _circular_warning, near_circular_features
from .core import profile_archetypes
from .tables import ArchetypeProfiles, concat_profiles

CORE_PROBABILITY = 0.5  # HDBSCAN membership probability of a "core member"
#: The tables of :class:`ArchetypeProfiles` a run writes under their own names.
PROFILE_TABLES = ("profiles", "tests", "pairwise", "adjusted", "uncertainty", "archetypes", "continuum")


@dataclass(frozen=True)
class ProfileStage:
    """What the profiling stage of a run gives.

    Attributes
    ----------
    profiles : ArchetypeProfiles
        Every method's profiles.
    near_circular : DataFrame
        Features whose rank correlation with an outcome reaches ``NEAR_CIRCULAR``.
    metrics : dict
        The ``profile`` entry of ``metrics.json``.
    summary : list of str
        Sentences for the run's summary (warnings).
    """

    profiles: ArchetypeProfiles
    near_circular: pd.DataFrame
    metrics: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)

    def tables(self) -> dict:
        """The run's tables of this stage, by name."""
        out = {name: getattr(self.profiles, name) for name in PROFILE_TABLES}
        out["archetype_features"] = self.profiles.features
        out["near_circular_features"] = self.near_circular
        return out


def profile_stage(*, config, cohort, segmentation, seed, progress, outcomes, covariates,
                  stability: pd.DataFrame | None = None) -> ProfileStage | None:
    """The runner's profiling stage: every method's archetypes against the outcomes.

    Parameters
    ----------
    config : ExperimentConfig
        The run's settings; ``config.profile`` drives the profiling.
    cohort : Cohort
        The loaded cohort: its outcomes, covariates and codebook.
    segmentation : Segmentation or None
        The fitted segmentation; nothing is done when it is None.
    seed : numpy.random.SeedSequence
        The run's seed; each method's pseudo-class draws get a child of it.
    progress : callable
        Told the stage's name.
    outcomes, covariates : list of str
        What the profiles compare and adjust for, as the run's plan checked
        them against the codebook.
    stability : DataFrame, optional
        The stability analysis's table of archetypes, when it ran.

    Returns
    -------
    ProfileStage or None
        None without a segmentation.
    """
    seg = segmentation
    if seg is None:
        return None
    progress("profile")
    cfg = dataclasses.replace(config.profile, outcomes=list(outcomes))
    covariates = cohort.covariates.loc[seg.ids, list(covariates)] if covariates else None
    names = [str(n) for n in seg.encoder.feature_names_]
    features = pd.DataFrame(seg.X[seg.inverse], index=seg.ids, columns=names)
    parts = []
    for i, method in enumerate(ARCHETYPE_METHODS):
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
            stability=stab, config=cfg, seed=int(seed_stream(seed, "profile", i).generate_state(1)[0]),
            **kwargs))
    profiles = concat_profiles(parts)
    circular = near_circular_features(features, cohort.outcomes.loc[seg.ids, list(outcomes)])
    metrics = {
        "near_circular_features": circular.to_dict("records"),
        "near_circular_threshold": NEAR_CIRCULAR,
        "uncertainty_methods": sorted(set(profiles.uncertainty["method"])),
        "continuum_as_good": sorted(set(
            f"{r.method}: {r.outcome}" for r in profiles.continuum.itertuples() if r.continuum_as_good)),
    }
    summary = [_circular_warning(r) for r in circular.itertuples()] + list(profiles.warnings)
    return ProfileStage(profiles, circular, metrics, summary)

"""The profiling stage of an experiment run."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..errors import SegmentError
from ..vocabulary import ARCHETYPE_METHODS, seed_stream
from .continuum import NEAR_CIRCULAR, _circular_warning, near_circular_features
from .core import profile_archetypes
from .tables import concat_profiles

CORE_PROBABILITY = 0.5  # HDBSCAN membership probability of a "core member"


def profile_stage(*, config, cohort, segmentation, seed, progress, tables, results, **_) -> None:
    """The runner's profiling stage: every method's archetypes against the outcomes.

    Adds the tables ``profiles``, ``tests``, ``pairwise``, ``adjusted``,
    ``uncertainty``, ``archetypes`` and ``archetype_features`` and sets
    ``results["profiles"]`` to the :class:`ArchetypeProfiles` of all methods.

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
    tables : dict
        Tables of the run, by name; the profile tables are added.
    results : dict
        Results of the run; ``profiles``, ``summary`` sentences and
        ``metrics["profile"]`` are set.
    **_
        The other stage arguments, unused.

    Raises
    ------
    SegmentError
        When ``config.profile`` names an outcome or covariate the codebook
        does not have.
    """
    seg = segmentation
    if seg is None:
        return
    progress("profile")
    cfg, outcomes, covariates = _stage_inputs(config.profile, cohort, seg)
    names = [str(n) for n in seg.encoder.feature_names_]
    features = pd.DataFrame(seg.X[seg.inverse], index=seg.ids, columns=names)
    stability = results.get("stability")
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


def _stage_inputs(pc, cohort, seg):
    """The profile settings with their outcomes filled in, the outcomes and the
    covariates table (None without covariates), checked against the codebook."""
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
    return cfg, outcomes, covariates

"""What a run would analyse, checked against the cohort before any fit.

:func:`prepare` loads the cohort and checks every name and setting of the
config against it, so that a mistake is reported before anything is fitted
or written.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from .codebook import load_codebook
from .cohort import Cohort, load_cohort
from .config import ExperimentConfig
from .errors import ConfigError, SegmentError
from .features import missing_share


def select_features(cohort: Cohort, config: ExperimentConfig) -> tuple[pd.DataFrame, list[str]]:
    """The clustering features, with the circularity guard applied.

    Returns the feature frame and the outcome items used as features (empty
    unless ``features.allow_outcome_features``).
    """
    fc = config.features
    features = cohort.features
    flagged = []
    if fc.include:
        available = set(cohort.features.columns) | set(cohort.outcomes.columns) | set(cohort.covariates.columns)
        unknown = [c for c in fc.include if c not in available]
        if unknown:
            raise ConfigError(
                f"config key 'features.include' names {', '.join(map(repr, unknown))}, which the codebook "
                f"does not define. Features: {', '.join(cohort.features.columns)}."
            )
        outcome_like = [c for c in fc.include if c in cohort.outcomes.columns]
        if outcome_like and not fc.allow_outcome_features:
            raise ConfigError(
                f"config key 'features.include' names outcome(s) {', '.join(map(repr, outcome_like))}: "
                "clustering on an outcome and then profiling it is circular. Remove them, or set "
                "features.allow_outcome_features = true to do it knowingly (it is flagged in every output)."
            )
        flagged = outcome_like
        parts = [cohort.features[[c for c in fc.include if c in cohort.features.columns]]]
        if outcome_like:
            parts.append(cohort.outcomes[outcome_like])
        covs = [c for c in fc.include if c in cohort.covariates.columns]
        if covs:
            parts.append(cohort.covariates[covs])
        features = pd.concat(parts, axis=1)
    unknown = [c for c in fc.exclude if c not in features.columns]
    if unknown:
        raise ConfigError(
            f"config key 'features.exclude' names {', '.join(map(repr, unknown))}, not among the features "
            f"({', '.join(features.columns)})."
        )
    features = features.drop(columns=list(fc.exclude))
    if features.shape[1] == 0:
        raise ConfigError("no clustering features are left: check the codebook roles and features.include/exclude.")
    return features, flagged


def exclusions(features: pd.DataFrame, config: ExperimentConfig) -> pd.Series:
    """The reason each respondent is excluded ("" when analysed)."""
    share = missing_share(features)
    reason = pd.Series("", index=features.index, dtype=object)
    limit = config.features.max_missing_share
    reason[share > limit] = f"missing more than {limit:.0%} of features"
    if config.features.imputer == "drop":
        reason[(share > 0) & (reason == "")] = "incomplete answers (features.imputer = drop)"
    return reason


@dataclass
class Plan:
    """What a run would analyse, checked against the cohort before any fit.

    Attributes
    ----------
    config : ExperimentConfig
    cohort : Cohort
    features : DataFrame
        The clustering features of every respondent.
    circular : list of str
        Outcome items used as features (``features.allow_outcome_features``).
    reason : Series
        Why each respondent is excluded ("" when analysed).
    outcomes, covariates : list of str
        What the profiles compare and adjust for.
    warnings : list of str
        Warnings raised while loading (e.g. columns the codebook does not mention).
    """

    config: ExperimentConfig
    cohort: Cohort
    features: pd.DataFrame
    circular: list
    reason: pd.Series
    outcomes: list
    covariates: list
    warnings: list = field(default_factory=list)

    @property
    def analysed(self) -> pd.DataFrame:
        return self.features[self.reason == ""]

    def describe(self) -> list[str]:
        """Plain lines: what the run would analyse."""
        cohort, n_an = self.cohort, len(self.analysed)
        lines = [f"{cohort.n} respondents in {cohort.source.name if cohort.source else 'the cohort'}; "
                 f"{n_an} would be analysed, {cohort.n - n_an} excluded."]
        for why, n in self.reason[self.reason != ""].value_counts().items():
            lines.append(f"  excluded, {why}: {n}")
        lines.append(f"features ({self.features.shape[1]}): {', '.join(self.features.columns)}")
        lines.append(f"outcomes ({len(self.outcomes)}): {', '.join(self.outcomes)}")
        lines.append(f"covariates ({len(self.covariates)}): {', '.join(self.covariates) or 'none'}")
        if self.circular:
            lines.append(f"outcomes used as features (circular): {', '.join(self.circular)}")
        return lines


def load_experiment_cohort(config: ExperimentConfig) -> tuple[Cohort, list[str]]:
    """The experiment's cohort and the warnings its loading raised."""
    if not config.experiment.cohort or not config.experiment.codebook:
        raise ConfigError("config keys 'experiment.cohort' and 'experiment.codebook' must name the "
                          "survey file and its codebook.")
    codebook = load_codebook(config.resolve(config.experiment.codebook))
    cohort_path = config.resolve(config.experiment.cohort)
    if not cohort_path.exists():
        raise ConfigError(f"config key 'experiment.cohort': survey file not found: {cohort_path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = load_cohort(cohort_path, codebook, resubmissions=config.experiment.resubmissions,
                             sheet=config.experiment.sheet)
    return cohort, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _profile_names(cohort: Cohort, config: ExperimentConfig) -> tuple[list[str], list[str]]:
    pc = config.profile
    outcomes = list(pc.outcomes) or [s.name for s in cohort.codebook.scales if s.role == "outcome"] \
        or list(cohort.outcomes.columns)
    if not outcomes:
        raise ConfigError("the codebook defines no outcome (a column or scale with role \"outcome\"), so "
                          "there is nothing to profile the archetypes on.")
    unknown = [o for o in outcomes if o not in cohort.outcomes.columns]
    if unknown:
        raise ConfigError(
            f"config key 'profile.outcomes' names {', '.join(map(repr, unknown))}, not an outcome of the "
            f"codebook. Outcomes: {', '.join(cohort.outcomes.columns) or 'none'}.")
    unknown = [c for c in pc.covariates if c not in cohort.covariates.columns]
    if unknown:
        raise ConfigError(
            f"config key 'profile.covariates' names {', '.join(map(repr, unknown))}, not a covariate "
            f"of the codebook. Covariates: {', '.join(cohort.covariates.columns) or 'none'}.")
    return outcomes, list(pc.covariates)


def _check_analysed(features: pd.DataFrame, reason: pd.Series, config: ExperimentConfig) -> None:
    analysed = features[reason == ""]
    if len(features) and analysed.empty:
        counts = "; ".join(f"{n} {why}" for why, n in reason.value_counts().items())
        raise SegmentError(f"every respondent is excluded ({counts}): there is nothing to analyse. "
                           "Check features.imputer and features.max_missing_share.")
    blank = [c for c in analysed.columns if analysed[c].isna().all()]
    if blank:
        raise SegmentError(
            f"feature(s) {', '.join(map(repr, blank))} have no answer from any analysed respondent: "
            "nothing can be learnt from them or imputed. Leave them out (features.exclude).")
    if len(analysed) >= 2 and len(analysed.astype(str).drop_duplicates()) < 2:
        raise SegmentError(f"all {len(analysed)} analysed respondents gave identical answers on every "
                           "clustering feature: there is nothing to cluster.")


def prepare(config: ExperimentConfig, cohort: Cohort | None = None) -> Plan:
    """Load the cohort and check every name and setting of the config against it.

    Everything ``run`` checks is checked here, before anything is fitted or
    written: the config (already validated on reading), the output folder,
    the survey file and codebook, the features, outcomes and covariates the
    config names, and the respondents left after exclusions.

    Parameters
    ----------
    config : ExperimentConfig
    cohort : Cohort, optional
        An already loaded cohort instead of the config's files.

    Returns
    -------
    Plan

    Raises
    ------
    SegmentError
        Naming the config key, file, column or value at fault.
    """
    caught = []
    if cohort is None:
        cohort, caught = load_experiment_cohort(config)
    features, circular = select_features(cohort, config)
    outcomes, covariates = _profile_names(cohort, config)
    reason = exclusions(features, config)
    _check_analysed(features, reason, config)
    return Plan(config=config, cohort=cohort, features=features, circular=circular, reason=reason,
                outcomes=outcomes, covariates=covariates, warnings=caught)

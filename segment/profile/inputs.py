"""Checks of the inputs of :func:`~segment.profile.profile_archetypes`: user-fixable
problems raise :class:`~segment.errors.SegmentError` naming the table, column or key."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from ..config import ProfileConfig, validate_profile
from ..errors import SegmentError
from ..vocabulary import ARCHETYPE_METHODS
from ._common import NOISE
from .adjusted import _is_categorical


def _check_config(cfg, outcome_columns) -> ProfileConfig:
    """``cfg`` with its defaults filled in from the data, checked by the rules of ``[profile]``."""
    if not isinstance(cfg, ProfileConfig):
        raise SegmentError(f"config must be a ProfileConfig, not {type(cfg).__name__}.")
    outcomes = [cfg.outcomes] if isinstance(cfg.outcomes, str) else list(cfg.outcomes)
    outcomes = outcomes or list(map(str, outcome_columns))
    if not outcomes:
        raise SegmentError("config.outcomes is empty; name at least one outcome "
                           "column, e.g. ('anxiety', 'depression', 'sleep').")
    covariates = [cfg.covariates] if isinstance(cfg.covariates, str) else list(cfg.covariates)
    if not isinstance(cfg.names, dict):
        raise SegmentError("config.names must be a mapping {method: {archetype: name}}, "
                           f"not {type(cfg.names).__name__}.")
    checked = dataclasses.replace(cfg, outcomes=outcomes, covariates=covariates,
                                  correction=str(cfg.correction).lower(),
                                  pairwise=str(cfg.pairwise).lower().replace("_", "-"))
    for key in ("pseudo_class_draws", "top_features"):
        value = getattr(checked, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SegmentError(f"config key 'profile.{key}' must be an integer; got {value!r}.")
    if isinstance(checked.alpha, bool) or not isinstance(checked.alpha, (int, float)):
        raise SegmentError(f"config key 'profile.alpha' must be a number in (0, 1); got {checked.alpha!r}.")
    validate_profile(checked)
    return dataclasses.replace(checked, outcomes=tuple(outcomes), covariates=tuple(covariates),
                               pseudo_class_draws=int(checked.pseudo_class_draws),
                               top_features=int(checked.top_features), alpha=float(checked.alpha))


def _check_method(method) -> str:
    if not isinstance(method, str) or not method.strip():
        raise SegmentError(f"method must be the name of the clustering method "
                           f"(e.g. {', '.join(map(repr, ARCHETYPE_METHODS))}), not {method!r}.")
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

"""Carrying a fitted segmentation to a new cohort, refitting there, and comparing.

A replication answers one question: do the archetypes found in one cohort
turn up again in another, and do they differ in anxiety, depression and
sleep the same way?  It has three parts:

1. *Transfer.*  The saved model assigns every new respondent: the feature
   encoder, an embedding into the saved UMAP space, HDBSCAN's approximate
   prediction, the mixture's posteriors and the nearest K-Means centre
   (:mod:`segment.predict`; a respondent's archetype does not depend on who
   else is in the batch).
2. *Refit.*  The same experiment (same config, same seed) is fitted on the
   new cohort alone.
3. *Compare.*  Refitted archetypes are matched to transferred ones
   (Hungarian assignment on the contingency table), prediction strength
   (Tibshirani & Walther, 2005) and in-group proportion (Kapp & Tibshirani,
   2007) say whether the structure replicates, archetype shares are compared
   between the cohorts, and the outcome differences of each archetype are
   set side by side.

The model pickle can run code when loaded: :func:`load_model` checks its
SHA-256 against ``manifest.json`` first and refuses a file that does not
match.
"""

from __future__ import annotations

from ..predict import (
    KNN_CHUNK,
    TRANSFER_COLUMNS,
    assign,
    check_features,
    embed_new,
    gmm_posteriors,
    held_out_transfer,
    model_features,
    nearest_training,
    transfer,
)
from ._agreement import (
    ALPHA,
    CORRECTION,
    IGP_NULL_DRAWS,
    MIN_MATCH_JACCARD,
    PS_THRESHOLD,
    SHARES_COLUMNS,
    contingency_table,
    in_group_proportion,
    in_group_proportion_null,
    match_archetypes,
    prediction_strength,
    share_changes,
    structure_free,
)
from ._inputs import load_model
from ._outcomes import (
    OUTCOME_COLUMNS,
    effects_vs_rest,
    original_summaries,
    outcome_replication,
    summaries_from_values,
)
from ._replication import (
    MATCHING_COLUMNS,
    PS_COLUMNS,
    Replication,
    _refit_at_model_k,  # noqa: F401 - tests call it on its own
    replicate,
    split_half,
)
from ._report import OUTPUT_FILES, render_report, write_replication

__all__ = [
    "Replication", "replicate", "split_half", "load_model",
    # prediction (segment.predict)
    "transfer", "assign", "held_out_transfer", "embed_new", "nearest_training", "gmm_posteriors",
    "check_features", "model_features", "KNN_CHUNK", "TRANSFER_COLUMNS",
    # agreement
    "prediction_strength", "match_archetypes", "contingency_table", "in_group_proportion",
    "in_group_proportion_null", "structure_free", "share_changes",
    "PS_THRESHOLD", "MIN_MATCH_JACCARD", "IGP_NULL_DRAWS", "ALPHA", "CORRECTION",
    # outcomes
    "outcome_replication", "effects_vs_rest", "summaries_from_values", "original_summaries",
    # tables and report
    "MATCHING_COLUMNS", "PS_COLUMNS", "SHARES_COLUMNS", "OUTCOME_COLUMNS", "OUTPUT_FILES",
    "write_replication", "render_report",
]

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

from ..predict import transfer
from ._agreement import (
    in_group_proportion,
    match_archetypes,
    prediction_strength,
    share_changes,
    structure_free,
)
from ._inputs import load_model
from ._outcomes import outcome_replication
from ._replication import Replication, replicate, split_half

# the replication and its statistics; tables, constants and helpers live in
# the submodules (segment.replicate._agreement, ._outcomes, ._report) and in
# segment.predict
__all__ = [
    "Replication", "replicate", "split_half", "load_model", "transfer",
    "prediction_strength", "match_archetypes", "in_group_proportion", "structure_free", "share_changes",
    "outcome_replication",
]

"""Stability verdicts of the archetypes, as the profile tables report them."""

from __future__ import annotations

import pandas as pd

from ..errors import SegmentError
from ._common import NOISE

# every verdict the stability stage writes
_VERDICTS = ("stable", "borderline", "weak", "dissolved", "no reference", "not resampled")
# Order used to summarise a pair of archetypes by its least stable member.
_VERDICT_RANK = {"stable": 0, "borderline": 1, "not assessed": 2, "not resampled": 2, "no reference": 2,
                 "weak": 3, "dissolved": 4}
NOT_ASSESSED = "stability not assessed"
ALL_STABLE = "all stable"
NOT_ALL_STABLE = "not all archetypes stable"
INTERPRET_STABLE = "archetypes stable under resampling"


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


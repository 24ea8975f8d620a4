"""Stability verdicts of the archetypes, as the profile tables report them."""

from __future__ import annotations

import pandas as pd

from ..errors import SegmentError
from ..vocabulary import (
    ALL_STABLE,
    NOISE_VERDICT,
    NOT_ALL_STABLE,
    NOT_ASSESSED,
    PAIR_VERDICT_RANK,
    STABILITY_NOT_ASSESSED,
    STABLE,
    STABLE_INTERPRETATION,
    VERDICTS,
)
from ._common import NOISE


def _stability(stability, archetype_ids, method, log) -> dict:
    """Per-archetype verdicts plus the method-level summary and interpretation."""
    verdicts = {NOISE: NOISE_VERDICT}
    if stability is None:
        for a in archetype_ids:
            verdicts[a] = NOT_ASSESSED
        return {"per": verdicts, "summary": STABILITY_NOT_ASSESSED, "interpretation": STABILITY_NOT_ASSESSED}
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
        if v not in VERDICTS:
            raise SegmentError(f"the stability table gives archetype {a} the verdict {v!r}; "
                               f"use one of {list(VERDICTS)}.")
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
        verdicts[a] = given.get(a, NOT_ASSESSED)
    unstable = [a for a in archetype_ids if verdicts[a] != STABLE]
    if not unstable:
        summary, interpretation = ALL_STABLE, STABLE_INTERPRETATION
    else:
        which = "; ".join(f"archetype {a}: {verdicts[a]}" for a in unstable)
        summary = NOT_ALL_STABLE
        interpretation = (
            f"not all archetypes are stable under resampling ({which}): differences may "
            "reflect slicing a continuum rather than distinct groups and are not to be "
            "read as findings")
    return {"per": verdicts, "summary": summary, "interpretation": interpretation}


def _pair_verdict(stab, a, b) -> str:
    va, vb = stab["per"].get(a, NOT_ASSESSED), stab["per"].get(b, NOT_ASSESSED)
    return max((va, vb), key=lambda v: PAIR_VERDICT_RANK.get(v, 1))


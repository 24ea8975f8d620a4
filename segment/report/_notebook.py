"""The notebook view: a short, verdict-first summary of a run or of a result.

The verdict comes first, then the archetypes of each method with their
stability verdicts, the test of structure, and the notes grouped so that
sentences repeated per method and outcome are shown once.  No respondent
counts are shown, so nothing here falls under ``report.min_cell``.
"""

from __future__ import annotations

import re
from html import escape

import pandas as pd

from ..vocabulary import ARCHETYPE_METHODS, NO_ARCHETYPES, NOT_ASSESSED, NOT_BEYOND_NULL, STABLE
from ._data import METHOD_LABELS

HEADLINE_METHODS = ARCHETYPE_METHODS  # the k re-selected mixture has the same archetypes as gmm
NOTE_LIMIT = 8
_PREFIX = re.compile(r"^(?P<who>[a-z_]+(?:, [^:]{1,60})?): (?P<rest>.+)$", re.S)
_FINDING = re.compile(r"archetypes? stable \(mean Jaccard|no archetypes to assess|^\d+ respondents in the cohort"
                      r"|found \d+ archetype|selected k = |re-selected k = ")


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _num(v, digits: int = 2) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"


def verdict_sentence(stability: pd.DataFrame, structure: pd.DataFrame, counts: dict) -> str:
    """One or two sentences answering "are there archetypes here?" for a result
    that is not a whole run (a run uses :func:`segment.report.verdict`).

    Parameters
    ----------
    stability : DataFrame
        The stability table (``method``, ``archetype``, ``mean_jaccard``,
        ``null_reference``, ``verdict``); empty when stability was not assessed.
    structure : DataFrame
        The test of structure per method (``method``, ``observed``,
        ``null_cohorts``, ``p_value``); may be empty.
    counts : dict
        Method -> number of archetypes found.

    Returns
    -------
    str
    """
    found = {m: n for m, n in counts.items() if n}
    if not found:
        return f"{NO_ARCHETYPES}."
    assessed = len(stability) and (stability["verdict"].astype(str) != NOT_ASSESSED).any()
    if not assessed:
        listed = ", ".join(f"{_label(m)} {n}" for m, n in found.items())
        return (f"Archetypes found ({listed}), but their stability was not assessed (stability.resamples = 0): "
                "nothing says yet whether they are more than slices of a continuum.")
    st = stability[stability["method"].isin(HEADLINE_METHODS)]
    stable = st[st["verdict"].astype(str) == STABLE]
    if len(stable):
        parts = []
        for m, g in stable.groupby("method", sort=False):
            js = f" (mean Jaccard {', '.join(_num(v) for v in g['mean_jaccard'])})" if "mean_jaccard" in g else ""
            parts.append(f"{_label(m)} {len(g)} of {int((st['method'] == m).sum())}{js}")
        n = len(stable)
        return (f"{'One archetype is' if n == 1 else f'{n} archetypes are'} stable: {'; '.join(parts)} — "
                "reproduced over resamples and more reproducible than structure-free data of the same shape.")
    if "null_reference" in st and st["null_reference"].notna().any():
        backing = ""
        if len(structure):
            s = structure[structure["method"].isin(found)]
            backing = " (" + "; ".join(
                f"{_label(r.method)}: best archetype's mean Jaccard {_num(r.observed)}, p = {_num(r.p_value, 3)} "
                f"against {int(r.null_cohorts)} structure-free cohorts" for r in s.itertuples()) + ")"
        return (f"{NOT_BEYOND_NULL}{backing}; the outcome differences describe slices of a continuum.")
    if "mean_jaccard" not in st:
        return "No archetype is stable."
    best = st.groupby("method", sort=False)["mean_jaccard"].max()
    listed = "; ".join(f"{_label(m)} best mean Jaccard {_num(v)}" for m, v in best.items())
    return (f"No archetype is stable ({listed}); without a null reference (stability.null_resamples = 0) "
            "no archetype can be told apart from structure-free data.")


def structure_line(structure: pd.DataFrame) -> str:
    """The test of structure in one line (empty when there is none)."""
    if structure is None or not len(structure):
        return ""
    parts = [f"{_label(r.method)} p = {_num(r.p_value, 3)}" + (" (structure)" if bool(r.reject) else "")
             for r in structure.itertuples()]
    n = int(structure["null_cohorts"].max())
    return (f"Test of structure (each method's best archetype against {n} structure-free cohorts of the same "
            f"shape): {', '.join(parts)}.")


def group_notes(sentences) -> list[str]:
    """Notes without the findings restated elsewhere, one line per kind of note.

    A note repeated for several methods or outcomes ("hdbscan, anxiety: …",
    "kmeans, sleep: …") is shown once, followed by the others it applies to.
    """
    groups: dict = {}
    for text in sentences:
        if _FINDING.search(text):
            continue
        m = _PREFIX.match(text)
        who, rest = (m["who"], m["rest"]) if m else ("", text)
        key = " ".join(re.sub(r"[\d.]+", "#", rest).split()[:6])
        groups.setdefault(key, []).append((who, text))
    out = []
    for items in groups.values():
        line = items[0][1]
        others = [who for who, _ in items[1:] if who]
        if others:
            line += f" (likewise for {'; '.join(dict.fromkeys(others))})"
        elif len(items) > 1:
            line += f" (×{len(items)})"
        out.append(line)
    return out


def summary_html(*, stability, structure, counts: dict, notes, facts: str = "", headline: str = "") -> str:
    """The verdict-first HTML fragment; ``headline`` is the verdict (by default
    :func:`verdict_sentence` of the tables given)."""
    stability = stability if stability is not None else pd.DataFrame()
    structure = structure if structure is not None else pd.DataFrame()
    headline = headline or verdict_sentence(stability, structure, counts)
    parts = ['<div class="segment-summary" id="summary">', f"<p><strong>{escape(headline)}</strong></p>"]
    if facts:
        parts.append(f"<p>{escape(facts)}</p>")
    rows = []
    for method, n in counts.items():
        verdicts = stability.loc[stability["method"] == method, "verdict"].astype(str) if len(stability) else []
        tally = pd.Series(verdicts, dtype=str).value_counts()
        rows.append({"method": _label(method), "archetypes": int(n),
                     "stability": ", ".join(f"{n} {v}" for v, n in tally.items()) or NOT_ASSESSED})
    if rows:
        parts.append(pd.DataFrame(rows).to_html(index=False, border=0))
    line = structure_line(structure)
    if line:
        parts.append(f"<p>{escape(line)}</p>")
    grouped = group_notes(notes)
    if grouped:
        parts.append(f"<details><summary>Notes ({len(grouped)})</summary><ul>")
        parts += [f"<li>{escape(t)}</li>" for t in grouped[:NOTE_LIMIT]]
        if len(grouped) > NOTE_LIMIT:
            parts.append(f"<li>… {len(grouped) - NOTE_LIMIT} more in the report.</li>")
        parts.append("</ul></details>")
    parts.append("</div>")
    return "\n".join(parts)


def archetype_counts(archetypes: pd.DataFrame) -> dict:
    """Method -> number of archetypes, from a table with ``method``, ``archetype``
    and optionally ``group`` (rows other than ``"archetype"``, e.g. noise, are not counted)."""
    if archetypes is None or not len(archetypes):
        return {}
    a = archetypes[archetypes["group"] == "archetype"] if "group" in archetypes else archetypes
    out = {}
    for m in dict.fromkeys(archetypes["method"]):
        n = int(a.loc[a["method"] == m, "archetype"].nunique())
        # one archetype holding everyone is no partition (a mixture with k = 1)
        everyone = n == 1 and "group" in archetypes and (archetypes.loc[archetypes["method"] == m, "group"]
                                                         == "archetype").all()
        out[m] = 0 if everyone else n
    return out


def run_summary_html(data) -> str:
    """The notebook view of a run (a :class:`RunData`)."""
    counts = archetype_counts(data.table("archetype_sizes"))
    counts = {m: counts.get(m, 0) for m in data.methods} or counts
    cohort = data.metrics.get("cohort") or {}
    facts = ""
    if cohort.get("n") is not None:
        facts = f"{cohort.get('title') or cohort.get('name', 'Cohort')}: {cohort.get('n_analysed', cohort['n'])} " \
                "respondents analysed."
    # a run says what its report says: the report's verdict, with small groups withheld
    from ._verdict import verdict

    return summary_html(stability=data.table("stability"), structure=data.table("structure_test"),
                        counts=counts, notes=data.metrics.get("summary") or [], facts=facts,
                        headline=verdict(data).text)


def stability_summary_html(result) -> str:
    """The notebook view of a :class:`~segment.stability.StabilityResult`."""
    t = result.stability
    counts = {m: int((t["method"] == m).sum()) for m in dict.fromkeys(t["method"])}
    return summary_html(stability=t, structure=result.structure_test, counts=counts, notes=result.summary)


def profiles_summary_html(profiles) -> str:
    """The verdict-first head of an :class:`~segment.profile.ArchetypeProfiles` view."""
    a = profiles.archetypes
    counts = archetype_counts(a)
    if "group" in a:
        a = a[a["group"] == "archetype"]
    verdicts = pd.DataFrame({"method": a.get("method", pd.Series(dtype=str)),
                             "archetype": a.get("archetype", pd.Series(dtype=int)),
                             "verdict": a.get("stability_verdict", pd.Series(dtype=str)).fillna(NOT_ASSESSED)})
    return summary_html(stability=verdicts, structure=None, counts=counts, notes=profiles.warnings)

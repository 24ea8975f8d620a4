"""The answer first: a verdict in one or two sentences, and the run's warnings grouped.

Both the report and ``segment run`` open with :func:`verdict`, computed from
the run's tables alone (``stability.csv``, ``structure_test.csv``,
``archetypes.csv``, ``archetype_sizes.csv``), so a re-rendered report and the
command line say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from ..vocabulary import (
    ARCHETYPE_METHODS,
    NO_ARCHETYPES,
    NOISE,
    NOT_BEYOND_NULL,
    NOT_STABLE_VERDICTS,
    STABLE,
    recommended_method,
)
from . import _format as fmt
from ._data import METHOD_LABELS, RunData, run_data_from
from ._suppress import group_sizes_below, hidden_sizes, suppressed_label, withhold_small_groups

#: Methods whose archetypes the verdict counts (``gmm_reselected`` re-assesses the mixture's own archetypes)
VERDICT_METHODS = ARCHETYPE_METHODS
_WORDS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight",
          9: "Nine", 10: "Ten"}


@dataclass
class Verdict:
    """The run's answer to "are there archetypes here?".

    Attributes
    ----------
    status : {"stable", "not stable", "not assessed", "no archetypes"}
        ``"stable"`` when at least one archetype is stable under resampling
        and more reproducible than structure-free data of the same shape.
    sentences : list of str
        One or two sentences with the numbers that back the verdict.
    recommended : str or None
        The method whose archetypes the run recommends reporting
        (:func:`segment.vocabulary.recommended_method`); None unless an
        archetype is stable.
    """

    status: str
    sentences: list = field(default_factory=list)
    recommended: str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def __str__(self) -> str:
        return self.text


def stability_assessed(data: RunData) -> bool:
    """Whether the run holds stability results (``stability.csv`` and resamples > 0)."""
    st = data.metrics.get("stability") or {}
    resamples = st.get("resamples", (data.config.get("stability") or {}).get("resamples", 0))
    try:
        resamples = int(resamples or 0)
    except (TypeError, ValueError):
        resamples = 0
    return data.has("stability") and resamples > 0


def verdict(data) -> Verdict:
    """The verdict sentence(s) of a run.

    Parameters
    ----------
    data : Run, RunData or path of a run directory
        The run (see :func:`~segment.report.load_run_data`).

    Returns
    -------
    Verdict
        No size below ``report.min_cell`` is shown (nor one that would give
        a small size back by subtraction), and archetypes below it are not
        named.

    Examples
    --------
    >>> from segment.report import load_run_data, verdict
    >>> print(verdict(load_run_data("reports/smmh/20260101-120000")))  # doctest: +SKIP
    No archetype in this cohort is more reproducible than structure-free data of the same shape ...
    """
    data = run_data_from(data)
    data = RunData(tables=withhold_small_groups(data.tables, data.min_cell), metrics=data.metrics,
                   manifest=data.manifest, folder=data.folder)
    counts = _archetype_counts(data)
    if not sum(counts.values()):
        return Verdict("no archetypes", [f"{NO_ARCHETYPES}: every respondent falls in "
                                         "one group (or in HDBSCAN's noise)."])
    if not stability_assessed(data):
        found = "; ".join(f"{METHOD_LABELS.get(m, m)} {n}" for m, n in counts.items() if n)
        return Verdict("not assessed", [
            f"Stability was not assessed (no resampling), so the archetypes found ({found}) are descriptive: "
            "nothing here says they would reappear in another sample of this population."])
    st = data.table("stability")
    st = st[st["method"].isin(VERDICT_METHODS) & (pd.to_numeric(st["archetype"]) != NOISE)]
    stable = st[st["verdict"].astype(str) == STABLE]
    rest = _verdict_counts(st[st["verdict"].astype(str) != STABLE])
    if len(stable):
        n_stable = stable["method"].value_counts().to_dict()
        recommended = recommended_method(n_stable, counts)
        return Verdict("stable", [_stable_sentence(data, stable, counts)]
                       + ([f"The other archetypes are not stable ({rest}): read their outcome differences as "
                           "description."] if rest else [])
                       + ([_recommendation_sentence(recommended, n_stable, counts)] if recommended else []),
                       recommended=recommended)
    return Verdict("not stable", _no_stable_sentences(data, st, rest))


def _archetype_counts(data: RunData) -> dict:
    sizes = data.table("archetype_sizes")
    if not len(sizes):
        return {}
    arch = sizes[sizes["group"] == "archetype"] if "group" in sizes else sizes[sizes["archetype"] != -1]
    return {m: int((arch["method"] == m).sum()) for m in data.methods}


def _verdict_counts(st: pd.DataFrame) -> str:
    """E.g. ``"HDBSCAN: 1 weak, 5 dissolved; K-Means: 2 borderline, 4 weak"``."""
    parts = []
    for m in VERDICT_METHODS:
        v = st.loc[st["method"] == m, "verdict"].astype(str)
        if len(v):
            parts.append(f"{METHOD_LABELS.get(m, m)}: "
                         + ", ".join(f"{int((v == k).sum())} {k}" for k in NOT_STABLE_VERDICTS if (v == k).any()))
    return "; ".join(parts)


def _stable_sentence(data: RunData, stable: pd.DataFrame, counts: dict) -> str:
    what = "stable under resampling and more reproducible than structure-free data of the same shape"
    methods = list(dict.fromkeys(stable["method"]))
    if len(methods) == 1:
        m = methods[0]
        k = len(stable)
        return (f"{_count_word(k)} of the {counts.get(m, k)} {METHOD_LABELS.get(m, m)} archetypes "
                f"{'are' if k > 1 else 'is'} {what}: {_stable_items(data, m, stable)}.")
    return (f"Archetypes {what}: "
            + "; ".join(f"{METHOD_LABELS.get(m, m)}, {int((stable['method'] == m).sum())} of {counts.get(m, '?')}: "
                        f"{_stable_items(data, m, stable[stable['method'] == m])}" for m in methods) + ".")


def _recommendation_sentence(method: str, n_stable: dict, counts: dict) -> str:
    return (f"The archetypes to report are the {METHOD_LABELS.get(method, method)} ones: of the methods that "
            f"find their own number of archetypes, it has the most called stable ({n_stable[method]} of "
            f"{counts.get(method, '?')}; the rule is calibrated on cohorts with known truth).")


def _stable_items(data: RunData, method: str, part: pd.DataFrame) -> str:
    hidden = hidden_sizes(data.table("archetype_sizes"), data.min_cell) | group_sizes_below(data.tables,
                                                                                              data.min_cell)
    arch = data.table("archetypes")
    items = []
    for _, r in part.sort_values("archetype").iterrows():
        a = int(r["archetype"])
        name = ""
        if len(arch):
            row = arch[(arch["method"] == method) & (arch["archetype"] == a)]
            if len(row):
                name = next((str(row[c].iloc[0]) for c in ("name", "draft_name")
                             if c in row and not fmt.is_missing(row[c].iloc[0]) and str(row[c].iloc[0])), "")
        n = suppressed_label(data.min_cell) if (method, a) in hidden else fmt.integer(r.get("n"))
        ref = r.get("null_reference")
        jac = f"mean Jaccard {fmt.num(r['mean_jaccard'], 2)}" + (
            "" if fmt.is_missing(ref) else f" against {fmt.num(ref, 2)} for structure-free data")
        items.append(f"archetype {a}" + (f" “{name}”" if name and name != f"archetype {a}" else "")
                     + f" (n = {n}, {jac})")
    return ", ".join(items)


def _no_stable_sentences(data: RunData, st: pd.DataFrame, rest: str) -> list:
    test = data.table("structure_test")
    if len(test):
        test = test[test["method"].isin(set(st["method"]))]
    numbers = "; ".join(
        f"{METHOD_LABELS.get(m, m)} {fmt.num(o, 2)} against {fmt.num(q, 2)}, p = {fmt.num(p, 3)}"
        for m, o, q, p in zip(test["method"], test["observed"], test["null_q95"], test["p_value"])
    ) if len(test) else ""
    rejected = test[test["reject"].astype(str).str.lower() == "true"] if len(test) else test
    if len(test) and not len(rejected):
        first = (f"{NOT_BEYOND_NULL} "
                 f"(best archetype's mean Jaccard against the 95th percentile of structure-free cohorts: {numbers}); "
                 "the outcome differences below describe slices of a continuum, not distinct groups.")
    else:
        which = (" although the best archetype of "
                 + " and ".join(METHOD_LABELS.get(m, m) for m in rejected["method"])
                 + f" is more reproducible than structure-free data ({numbers})") if len(rejected) else ""
        first = (f"No archetype in this cohort is stable under resampling{which}; the outcome differences below "
                 "are descriptive, not evidence of distinct groups.")
    return [first] + ([f"Verdicts: {rest}."] if rest else [])


def _count_word(n: int) -> str:
    return _WORDS.get(n, str(n))


# --------------------------------------------------------------------------
# warnings

_ITEM_LINE = re.compile(r"^(?P<method>[A-Za-z_]+), (?P<item>[^:()]+?)(?: \((?P<subset>[^)]*)\))?: (?P<rest>.+)$")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%?(?![\w])")


def group_warnings(lines) -> list:
    """The run's summary lines with repeats folded into one line each.

    Lines of the form ``"<method>, <item>: <text>"`` whose text differs only
    in the item's name and in numbers become one line,
    ``"<method> (<item>, <item>, ...): <text>"``, with the numbers that differ
    listed in item order (``"0.52 / 0.52 / 0.32"``).  Exact repeats are
    dropped; other lines are kept as they are, in their order.

    Parameters
    ----------
    lines : iterable of str

    Returns
    -------
    list of str

    Examples
    --------
    >>> group_warnings(["gmm, anxiety: 3 left out.", "gmm, sleep: 4 left out.", "Done."])
    ['gmm (anxiety, sleep): 3 / 4 left out.', 'Done.']
    """
    groups: dict = {}
    order: list = []
    for line in dict.fromkeys(str(x) for x in lines):
        m = _ITEM_LINE.match(line)
        if not m:
            order.append(line)
            continue
        item = m["item"]
        rest = m["rest"].replace(item, "\0")
        key = (m["method"], m["subset"], _NUMBER.sub("\1", rest))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((item, rest))
    return [x if isinstance(x, str) else _merge(x, groups[x]) for x in order]


def _merge(key, members) -> str:
    method, subset, template = key
    items = list(dict.fromkeys(item for item, _ in members))
    if len(members) == 1:
        item, rest = members[0]
        head = f"{method}, {item}" + (f" ({subset})" if subset else "")
        return f"{head}: {rest.replace(chr(0), item)}"
    slots = list(zip(*(_NUMBER.findall(rest) for _, rest in members)))
    pieces = template.split("\1")
    text = pieces[0]
    for values, piece in zip(slots, pieces[1:]):
        distinct = list(dict.fromkeys(values))
        text += (distinct[0] if len(distinct) == 1 else " / ".join(values)) + piece
    text = text.replace("\0", "each")
    return f"{method} ({', '.join(items)}{'; ' + subset if subset else ''}): {text}"


def summary_lines(run) -> list:
    """What ``segment run`` prints at the end: the verdict, then the grouped warnings.

    Parameters
    ----------
    run : Run, RunData or path of a run directory

    Returns
    -------
    list of str
    """
    data = run_data_from(run)
    return [f"Verdict: {verdict(data).text}", *group_warnings(data.metrics.get("summary", []) or [])]

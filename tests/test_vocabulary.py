"""The fixed lists of an analysis are spelled once, in segment.vocabulary."""

import re
from pathlib import Path

import pandas as pd
from conftest import run_dirs

from segment import vocabulary as V

PACKAGE = Path(__file__).resolve().parents[1] / "segment"
_NAMES = "|".join(map(re.escape, V.STABILITY_METHODS))
# innermost bracketed group: a tuple, list or set literal (or a call's arguments)
_GROUP = re.compile(r"[(\[{]([^()\[\]{}]*)[)\]}]")
# an element that is nothing but a quoted method name
_ELEMENT = re.compile(rf"\s*([\"'])({_NAMES})\1\s*")

# a literal of pairs keyed by method: (("hdbscan", ...), ("gmm", ...), ...)
_PAIRS = re.compile(rf"[(\[{{]\s*\(\s*([\"'])(?:{_NAMES})\1\s*,[^()]*\)\s*,\s*\(\s*([\"'])(?:{_NAMES})\2\s*,")


def literal_method_lists(source: str) -> list[int]:
    """Lines where a bracketed literal holds two or more quoted method names."""
    starts = [m.start() for m in _GROUP.finditer(source)
              if sum(bool(_ELEMENT.fullmatch(part)) for part in m.group(1).split(",")) >= 2]
    starts += [m.start() for m in _PAIRS.finditer(source)]
    return sorted({source.count("\n", 0, i) + 1 for i in starts})


def test_the_scan_finds_literal_lists():
    assert literal_method_lists('x = 1\nMETHODS = ("hdbscan", "gmm", "kmeans")\n') == [2]
    assert literal_method_lists('f(["gmm",\n  "gmm_reselected"])\n') == [1]
    assert literal_method_lists('for m, c in (("hdbscan", "a"), ("gmm", "b")):\n') == [1]
    assert literal_method_lists('d = {"hdbscan": 1, "gmm": 2}\nm = ("hdbscan" if x else "gmm")\n') == []


def test_no_module_spells_the_method_list_again():
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}"
             for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "vocabulary.py"
             for line in literal_method_lists(path.read_text(encoding="utf-8"))]
    assert not found, f"method names spelled as a literal list; use segment.vocabulary: {found}"


def test_registry_is_ordered_and_consistent():
    assert V.method_names() == tuple(V.ARCHETYPE_METHODS) == tuple(V.METHODS)
    assert V.STABILITY_METHODS.index(V.GMM_RESELECTED.name) == V.STABILITY_METHODS.index("gmm") + 1
    assert [m for m in V.STABILITY_METHODS if m in V.METHODS] == list(V.ARCHETYPE_METHODS)
    assert [m.name for m in V.METHODS.values() if m.noise] == ["hdbscan"]
    assert V.display_name("unknown") == "unknown"
    assert V.NOT_STABLE_VERDICTS + (V.STABLE,) == V.VERDICTS[1:] + V.VERDICTS[:1]
    assert set(V.VERDICTS) < set(V.PAIR_VERDICT_RANK)


def test_assignment_columns_are_what_a_run_writes(make_study):
    from segment.cli import main

    experiment = make_study(seed=4)
    assert main(["run", str(experiment), "--quiet"]) == 0
    (run,) = run_dirs(experiment)
    columns = list(pd.read_csv(run / "assignments.csv", nrows=1).columns)
    written = [c for c in columns if c in set(V.ASSIGNMENT_COLUMNS.values())]
    assert written == [V.assignment_column(m) for m in V.method_names()]
    assert pd.read_csv(run / "assignments.csv")[V.assignment_column("hdbscan")].min() >= V.NOISE


"""Disclosure control in the shareable files of a run (report.html, tables/,
figures/): no count below report.min_cell can be read or derived by
subtraction, and no statistic of a group below min_cell is shown."""

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from conftest import run_dirs

from segment.cli import main
from segment.report import suppress_small_cells

MIN_CELL = 10
HIDDEN = f"<{MIN_CELL}"


class _Tables(HTMLParser):
    """Every <table> of a page: caption, header and body rows as text, and
    the <article> (archetype card) it sits in."""

    def __init__(self):
        super().__init__()
        self.tables, self.cards, self._stack, self._cell, self._article = [], {}, [], None, None
        self._caption = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self._article = attrs.get("data-archetype")
            self.cards[self._article] = []
        elif tag == "table":
            self._stack.append({"caption": self._caption, "header": [], "rows": [], "card": self._article})
            self._caption = ""
        elif tag == "tr" and self._stack:
            self._stack[-1]["rows"].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = ""
        elif tag == "figcaption":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "article":
            self._article = None
        elif tag == "table" and self._stack:
            t = self._stack.pop()
            if t["rows"]:
                t["header"], t["rows"] = t["rows"][0], [r for r in t["rows"][1:] if r]
            self.tables.append(t)
            if t["card"]:
                self.cards[t["card"]].append(t)
        elif tag in ("td", "th") and self._stack and self._cell is not None:
            self._stack[-1]["rows"][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "figcaption" and self._cell is not None:
            self._caption = self._cell.strip()
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _count(text):
    """A shown count (an integer, thousands separators allowed), or None."""
    text = str(text).strip().replace(",", "").replace("\u2009", "")
    return int(text) if re.fullmatch(r"\d+", text) else None


def _check_lines(wide: pd.DataFrame, where: str):
    """No shown count below MIN_CELL (zeros included), and no row or column
    with exactly one hidden cell (it would follow from the line's total)."""
    cells = wide.astype(str).map(str.strip)
    hidden = cells == HIDDEN
    for value in cells.to_numpy().ravel():
        n = _count(value)
        assert n is None or n >= MIN_CELL, f"{where}: count {n} shown"
    for axis, name in ((1, "row"), (0, "column")):
        if wide.shape[axis] < 2:
            continue
        per_line = hidden.sum(axis=axis)
        assert not (per_line == 1).any(), f"{where}: a {name} with a single suppressed cell\n{wide}"


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """A run whose K-Means has 14 clusters (several below 10 respondents), with a rare covariate level
    and a few "Don't know" answers."""
    from segment.synthetic import experiment_toml, planted_cohort

    folder = tmp_path_factory.mktemp("disclosure")
    cohort = planted_cohort(n=150, seed=3, dont_know_share=0.02)
    csv, book = cohort.write(folder, "cohort")
    extra = "\n[stability]\nresamples = 3\n\n[profile]\ncovariates = [\"gender\"]\n"
    text = experiment_toml(csv.name, book.name, "runs", extra=extra).replace("[cluster.kmeans]\nk = 3",
                                                                             "[cluster.kmeans]\nk = 14")
    experiment = folder / "experiment.toml"
    experiment.write_text(text)
    assert main(["run", str(experiment), "-q"]) == 0
    (run,) = run_dirs(experiment)
    sizes = pd.read_csv(run / "archetype_sizes.csv")
    small = sizes[sizes["n"] < MIN_CELL]
    assert (small["method"] == "kmeans").sum() >= 2  # the cohort does have small groups
    crosstab = pd.read_csv(run / "covariate_crosstab.csv")
    assert crosstab.groupby("level")["n"].sum().min() < 3 * MIN_CELL  # and a rare level
    return run, sizes, small


def test_cross_tables_in_tables_folder(shared_run):
    run, _, _ = shared_run
    ct = pd.read_csv(run / "tables" / "covariate_crosstab_suppressed.csv", dtype=str)
    for (method, cov), part in ct.groupby(["method", "covariate"]):
        _check_lines(part.pivot(index="level", columns="archetype", values="n"), f"crosstab {method} {cov}")
    cont = pd.read_csv(run / "tables" / "contingency_hdbscan_gmm_suppressed.csv", dtype=str)
    _check_lines(cont.set_index(cont.columns[0]), "contingency")
    answers = pd.read_csv(run / "tables" / "answers_suppressed.csv", dtype=str)
    for item, part in answers.groupby("name"):
        _check_lines(part[["n"]].reset_index(drop=True), f"answers of {item}")


def test_no_statistic_of_a_small_group_in_tables(shared_run):
    run, _, small = shared_run
    apa = pd.read_csv(run / "tables" / "outcomes_apa.csv", dtype=str)
    for method, a in zip(small["method"], small["archetype"]):
        column = f"{a}: M (SD)"
        if column in apa:
            assert apa.loc[apa["method"] == method, column].fillna("").eq("").all(), (method, a)


def test_report_html(shared_run):
    run, sizes, small = shared_run
    page = _Tables()
    page.feed((run / "report.html").read_text(encoding="utf-8"))
    n_analysed = int(sizes[sizes["method"] == "kmeans"]["n"].sum())

    checked = set()
    for t in page.tables:
        caption, header = t["caption"], t["header"]
        frame = pd.DataFrame(t["rows"], columns=header) if t["rows"] else pd.DataFrame(columns=header)
        if caption.startswith("Respondents by HDBSCAN") or "archetype (respondents)" in caption:
            _check_lines(frame.set_index(header[0]), caption)
            checked.add("cross-table")
        elif caption == "How answers were mapped":
            for item, part in frame.groupby("item"):
                _check_lines(part[["n"]].reset_index(drop=True), f"answers of {item}")
            checked.add("answers")
        elif caption == "Missing answers per item":
            coded_col = [c for c in header if c.startswith("coded missing")][0]
            for n_text, share, coded_text in zip(frame["n missing"], frame["% missing"], frame[coded_col]):
                n, coded = _count(n_text), _count(coded_text)
                assert n is None or n == 0 or n >= MIN_CELL, f"missing count {n} shown"
                assert coded is None or coded == 0 or coded >= MIN_CELL, f"coded missing {coded} shown"
                if n is not None and coded is not None:
                    assert not 0 < n - coded < MIN_CELL, f"other missing {n - coded} = {n} - {coded}"
                if n_text == HIDDEN:
                    assert share == HIDDEN
            checked.add("missingness")
        elif caption == "Archetypes found by each method":
            for row in t["rows"]:
                shown = dict(re.findall(r"(\d+|noise): ([^,;( ]+)", row[header.index("sizes (n)")]))
                values = [_count(v) for v in shown.values()]
                assert all(v is None or v >= MIN_CELL for v in values), row
                assert sum(v == HIDDEN for v in shown.values()) != 1, f"size follows from the total: {row}"
            checked.add("sizes")
        elif caption.startswith("Cluster-wise stability"):
            for _, part in frame.groupby("method"):
                assert sum(v == HIDDEN for v in part["n"]) != 1 or len(part) == 1, part
        for col in ("n",):
            if col in frame and "stability" not in caption.lower():
                for v in frame[col]:
                    n = _count(v)
                    assert n is None or n >= MIN_CELL or n == n_analysed, f"{caption}: n = {n}"
    assert checked == {"cross-table", "answers", "missingness", "sizes"}

    for method, a in zip(small["method"], small["archetype"]):
        card = f"{method}-{a}"
        assert card in page.cards, card
        assert page.cards[card] == [], f"{card}: a table of statistics in the card of a small group"
        html = (run / "report.html").read_text(encoding="utf-8")
        article = re.search(rf'<article[^>]*data-archetype="{card}".*?</article>', html, re.S).group(0)
        assert not re.search(r"\d\.\d", article), f"{card}: a statistic in the card of a small group"
        assert f"&lt;{MIN_CELL}" in article


def test_figures_show_no_small_group(shared_run):
    run, _, small = shared_run
    for name in ("outcome_means_kmeans", "forest_kmeans", "feature_heatmap"):
        svg = (run / "figures" / f"{name}.svg").read_text(encoding="utf-8")
        for method, a in zip(small["method"], small["archetype"]):
            if method == "kmeans" or name == "feature_heatmap":
                assert not re.search(rf">archetype {a}(?!\d)", svg), (name, method, a)


def test_secondary_suppression_protects_every_line():
    from segment.report._suppress import small_cell_mask

    table = pd.DataFrame({"a": [3, 12, 30], "b": [15, 11, 40], "c": [20, 25, 2]})
    hidden = small_cell_mask(table, MIN_CELL)
    assert hidden[0, 0] and hidden[2, 2]
    assert all(hidden[i].sum() != 1 for i in range(3)) and all(hidden[:, j].sum() != 1 for j in range(3))
    shown = suppress_small_cells(table, MIN_CELL)
    assert (shown == HIDDEN).to_numpy().sum() == hidden.sum()
    # a long table whose lines are groups: one small answer hides the next smallest of its item
    long = pd.DataFrame({"item": ["x", "x", "x", "y", "y"], "n": [4, 50, 12, 60, 70]})
    assert suppress_small_cells(long, MIN_CELL, by="item")["n"].tolist() == [HIDDEN, 50, HIDDEN, 60, 70]
    # nothing to protect: nothing hidden
    assert not small_cell_mask(np.array([[10, 20], [30, 40]]), MIN_CELL).any()


def test_replication_report_hides_small_counts_and_what_gives_them_back(tmp_path):
    from segment.experiment import run_experiment
    from segment.replicate import replicate
    from segment.replicate._report import _DISCLOSED, disclosed, render_report
    from segment.synthetic import experiment_toml, planted_cohort

    cohort = planted_cohort(n=300, k=3, separation=3.5, outcome_means={"anxiety": [0, 1, -1]}, seed=5)
    cohort.write(tmp_path, "cohort")
    cohort.answers.iloc[:150].to_csv(tmp_path / "a.csv", index=False)
    cohort.answers.iloc[150:].to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "exp.toml").write_text(experiment_toml("a.csv", "cohort.toml", "runs",
                                                       extra='[profile]\noutcomes = ["anxiety"]\n'))
    rep = replicate(run_experiment(tmp_path / "exp.toml").path, tmp_path / "b.csv")
    min_cell = 52  # the planted archetypes hold about 50 of 150: most counts are small
    frames = {"prediction_strength": rep.prediction_strength, "matching": rep.matching, "shares": rep.shares}
    hidden_any = 0
    for table, frame in frames.items():
        shown = disclosed(frame, table, min_cell)
        for column in _DISCLOSED[table]:
            counts = pd.to_numeric(frame[column], errors="coerce")
            hidden = shown[column].astype(str) == f"<{min_cell}"
            assert hidden[counts < min_cell].all(), (table, column)
            for _, rows in shown.groupby("method").groups.items():
                assert hidden[rows].sum() != 1, (table, column)  # none follows from the total by subtraction
            for statistic in _DISCLOSED[table][column]:
                assert shown.loc[hidden, statistic].isna().all(), (table, statistic)
            hidden_any += int(hidden.sum())
    assert hidden_any
    shares = disclosed(rep.shares, "shares", min_cell)
    both_shown = ~shares[["n_original", "n_new"]].astype(str).eq(f"<{min_cell}").any(axis=1)
    assert shares.loc[~both_shown, "difference"].isna().all()
    html = render_report(rep, min_cell=min_cell)
    assert f"&lt;{min_cell}" in html
    small = pd.concat([pd.to_numeric(rep.matching[c], errors="coerce") for c in _DISCLOSED["matching"]])
    for v in small[(small >= 3) & (small < min_cell)].astype(int).unique():
        assert f"<td>{v}</td>" not in html

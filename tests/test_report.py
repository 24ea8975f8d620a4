"""The report: rendering, re-rendering, disclosure control and a real browser."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from segment.cli import main
from segment.errors import SegmentError
from segment.experiment import run_experiment
from segment.report import (
    RunData,
    figures,
    group_warnings,
    load_run_data,
    render_run_dir,
    render_summary_html,
    summary_lines,
    suppress_small_cells,
    verdict,
)
from segment.report._summary import SECTIONS
from segment.synthetic import experiment_toml, planted_cohort

ARTIFACTS = Path(__file__).parent / "artifacts"
N = 150
NAMES = [f"Zebulon{i:03d} Quillfeather" for i in range(N)]
EMAILS = [f"zq.person{i:03d}@mailhost-example.org" for i in range(N)]
IDENTIFIER_BLOCKS = (
    '\n[[column]]\ncolumn = "full_name"\nname = "full_name"\nrole = "identifier"\n'
    '\n[[column]]\ncolumn = "email"\nname = "email"\nrole = "identifier"\n'
)
TIME_RE = re.compile(r"<time[^>]*>.*?</time>")
#: Page heights (px, 1280 px wide headless Chromium) of the reports of ``run_dir`` and of its copy with
#: made-up stability, measured before the detail tables were folded behind <details>; the report must
#: now be at most half as tall.
OLD_PAGE_HEIGHT = {"report.png": 14277, "report_stability.png": 14930}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small synthetic run whose survey file holds names and e-mail addresses."""
    folder = tmp_path_factory.mktemp("report")
    cohort = planted_cohort(n=N, k=3, n_features=6, seed=3,
                            outcome_means={"anxiety": [5, 8, 11], "depression": [6, 7, 9]},
                            extra_columns={"full_name": NAMES, "email": EMAILS})
    cohort.codebook += IDENTIFIER_BLOCKS
    csv, book = cohort.write(folder)
    toml = folder / "experiment.toml"
    toml.write_text(experiment_toml(csv.name, book.name, "out", name="reporttest",
                                    extra='\n[profile]\noutcomes = ["anxiety", "depression"]\n'
                                          'covariates = ["age", "gender"]\n'),
                    encoding="utf-8")
    run = run_experiment(toml, quiet=True)
    return run.path


def _with_fake_stability(src: Path, dest: Path) -> Path:
    """A copy of a run with small made-up stability outputs."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("model"))
    sizes = pd.read_csv(dest / "archetype_sizes.csv")
    sizes = sizes[sizes["group"] == "archetype"]
    rng = np.random.default_rng(0)
    rows, null_rows, stab = [], [], []
    for i, (m, a, n) in enumerate(zip(sizes["method"], sizes["archetype"], sizes["n"])):
        centre = (0.9, 0.6, 0.35)[i % 3]
        j = np.clip(rng.normal(centre, 0.08, 20), 0, 1)
        nj = np.clip(rng.normal(0.3, 0.08, 20), 0, 1)
        rows += [{"method": m, "resample": r, "archetype": a, "jaccard": v} for r, v in enumerate(j)]
        null_rows += [{"method": m, "resample": r, "archetype": a, "jaccard": v} for r, v in enumerate(nj)]
        verdict = "stable" if j.mean() >= 0.75 else ("dissolved" if j.mean() < 0.5 else "weak")
        stab.append({"method": m, "archetype": a, "n": n, "mean_jaccard": j.mean(),
                     "median_jaccard": np.median(j), "p10_jaccard": np.quantile(j, 0.1),
                     "share_dissolved": np.mean(j < 0.5), "share_recovered": np.mean(j >= 0.75),
                     "null_mean_jaccard_p95": 0.42, "verdict": verdict,
                     "thresholds": "stable >= 0.75; dissolved < 0.5"})
    pd.DataFrame(rows).to_csv(dest / "jaccard.csv", index=False)
    pd.DataFrame(null_rows).to_csv(dest / "null_jaccard.csv", index=False)
    pd.DataFrame(stab).to_csv(dest / "stability.csv", index=False)
    pd.DataFrame({"resample": range(20), "seed": range(20), "status": "ok"}).to_csv(
        dest / "resamples.csv", index=False)
    metrics = json.loads((dest / "metrics.json").read_text())
    metrics["stability"] = {"resamples": 20, "null_resamples": 20, "scheme": "subsample", "failed": 0}
    (dest / "metrics.json").write_text(json.dumps(metrics))
    return dest


# --------------------------------------------------------------------------

def test_suppress_small_cells_hides_a_cell_of_three():
    table = pd.DataFrame({"gender": ["female", "male", "other"], "0": [25, 31, 3], "1": [14, 12, 0],
                          "2": [40, 45, 20]})
    out = suppress_small_cells(table, 10)
    assert out.loc[2, "0"] == "<10" and out.loc[2, "1"] == "<10"
    # the 3 would follow from the column's total (the archetype's size): the 25 beside it is hidden too,
    # and so on until no row or column has a single hidden cell
    hidden = out[["0", "1", "2"]] == "<10"
    assert not (hidden.sum(axis=0) == 1).any() and not (hidden.sum(axis=1) == 1).any()
    assert out.loc[0, "0"] == "<10" and out.loc[1, "2"] == 45
    assert list(out["gender"]) == ["female", "male", "other"]
    assert 3 not in out.to_numpy().tolist()
    assert suppress_small_cells(table, 5).loc[2, "0"] == "<5"


def test_report_sections_and_disclosure(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for sid, _ in SECTIONS:
        assert f'id="{sid}"' in html
    assert "stability not assessed" in html.lower()
    assert "McInnes" in html and "Games" in html and "Hennig" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the report loads an external resource"
    assert (run_dir / "figures" / "embedding.svg").is_file()
    # no respondent id reaches the report, its figures or the tables it writes
    ids = pd.read_csv(run_dir / "assignments.csv", dtype=str)["respondent"]
    written = [run_dir / "report.html", *(run_dir / "figures").glob("*"), *(run_dir / "tables").glob("*")]
    for path in written:
        text = path.read_text(encoding="utf-8")
        leaked = [i for i in ids if i in text]
        assert not leaked, f"{path.name} holds respondent ids {leaked[:3]}"


def test_identifiers_appear_nowhere_in_the_run(run_dir):
    secrets = [v.encode() for v in NAMES + EMAILS] + [b"Quillfeather", b"mailhost-example"]
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(s in data for s in secrets), f"an identifier value is in {path.name}"
    model = joblib.load(run_dir / "model" / "segmentation.pkl")
    blob = pickle.dumps(model)
    assert not any(s in blob for s in secrets), "an identifier value is in the pickled model"


def test_rerender_changes_only_the_timestamp(run_dir, monkeypatch):
    import segment.experiment
    import segment.pipeline

    def refit(*a, **k):
        raise AssertionError("re-rendering must not refit")

    monkeypatch.setattr(segment.pipeline, "fit_segmentation", refit)
    monkeypatch.setattr(segment.experiment, "run_experiment", refit)
    before = (run_dir / "report.html").read_text(encoding="utf-8")
    start = time.perf_counter()
    assert main(["report", str(run_dir)]) == 0
    elapsed = time.perf_counter() - start
    after = (run_dir / "report.html").read_text(encoding="utf-8")
    assert elapsed < 30
    assert TIME_RE.sub("", before) == TIME_RE.sub("", after)
    assert not list(run_dir.glob(".report.html.*")), "a temporary file was left behind"


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "not a run directory" in err
    with pytest.raises(SegmentError):
        render_run_dir(tmp_path / "missing")


def test_stability_section_renders_when_present(run_dir, tmp_path):
    copy = _with_fake_stability(run_dir, tmp_path / "run")
    render_run_dir(copy)
    html = (copy / "report.html").read_text(encoding="utf-8")
    section = html[html.index('id="stability"'):html.index('id="profiles"')]
    assert "Stability not assessed" not in section
    assert 'data-figure="stability"' in section and "dissolved" in section
    assert figures.stability_figure(copy) is not None
    assert figures.stability_figure(run_dir) is None
    outcomes = html[html.index('id="outcomes"'):html.index('id="methods"')]
    assert "weak" in outcomes or "dissolved" in outcomes or "NOT STABLE" in outcomes


def test_covariate_crosstab_is_suppressed(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("model"))
    pd.DataFrame({"method": "hdbscan", "covariate": "gender", "level": ["female", "male", "other"] * 3,
                  "archetype": [0, 0, 0, 1, 1, 1, 2, 2, 2], "n": [40, 35, 3, 30, 33, 9, 50, 60, 25]}).to_csv(
        copy / "covariate_crosstab.csv", index=False)
    render_run_dir(copy)
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "gender by HDBSCAN archetype" in html
    table = html[html.index("gender by HDBSCAN archetype"):]
    table = table[:table.index("</table>")]
    assert "&lt;10" in table and ">3<" not in table and ">9<" not in table
    # "other" of archetypes 0 and 1 would follow from their sizes: 35 and 30 beside them are hidden,
    # then 40 and 33 beside those in their rows; archetype 2 stays in view
    assert ">40<" not in table and ">35<" not in table and ">50<" in table and ">25<" in table
    written = pd.read_csv(copy / "tables" / "covariate_crosstab_suppressed.csv", dtype=str)
    assert set(written.loc[written["level"] == "other", "n"]) == {"<10", "25"}
    assert set(written.loc[written["archetype"] == "0", "n"]) == {"<10"}


def test_small_archetype_is_flagged(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("model"))
    arch = pd.read_csv(copy / "archetypes.csv")
    row = arch.index[(arch["method"] == "kmeans")][0]
    arch.loc[row, "n"] = 4
    arch.to_csv(copy / "archetypes.csv", index=False)
    render_run_dir(copy)
    html = (copy / "report.html").read_text(encoding="utf-8")
    card = html[html.index(f'data-archetype="kmeans-{arch.loc[row, "archetype"]}"'):]
    card = card[:card.index("</article>")]
    assert "its statistics are not shown" in card and "<table>" not in card


def test_notebook_summary_and_figures(run_dir):
    data = load_run_data(run_dir)
    text = render_summary_html(data)
    assert 'id="summary"' in text and "<html" not in text
    for fn in (figures.embedding_figure, figures.feature_heatmap_figure, figures.model_selection_figure):
        fig = fn(run_dir)
        assert fig is not None and fig.axes
    assert figures.outcome_means_figure(data, "gmm") is not None


def test_report_in_a_real_browser(run_dir, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not on PATH: install Debian's chromium package to run the browser test"
    from playwright.sync_api import sync_playwright

    stab = _with_fake_stability(run_dir, tmp_path / "stab")
    render_run_dir(stab)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            for folder, shot in ((run_dir, "report.png"), (stab, "report_stability.png")):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                errors = []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                requests = []
                page.on("request", lambda r, requests=requests: requests.append(r.url))
                page.goto((folder / "report.html").as_uri())
                page.wait_for_load_state("load")
                assert errors == []
                assert all(u.startswith(("file:", "data:")) for u in requests), requests
                images = page.evaluate(
                    "Array.from(document.images).map(i => [i.dataset.figure || i.src.slice(0, 40), "
                    "i.complete, i.naturalWidth])")
                assert len(images) >= 5
                bad = [i for i in images if not (i[1] and i[2] > 0)]
                assert not bad, f"images not decoded: {bad}"
                svgs = page.evaluate("Array.from(document.querySelectorAll('svg')).map(s => "
                                     "{const r = s.getBoundingClientRect(); return r.width * r.height;})")
                assert all(a > 0 for a in svgs)
                for sid, _ in SECTIONS:
                    assert page.locator(f"section#{sid}").count() == 1, sid
                    assert page.locator(f"section#{sid} h2").is_visible()
                # the first screen answers the question: the verdict and the archetype table
                for selector in ("section#summary #verdict", "section#summary figure.archetypes"):
                    box = page.locator(selector).bounding_box()
                    assert box and box["height"] > 0 and box["y"] + box["height"] <= 1000, (selector, box)
                height = page.evaluate("document.documentElement.scrollHeight")
                assert height <= OLD_PAGE_HEIGHT[shot] / 2, (shot, height)
                # printed, every folded table is shown and the navigation is not
                folded = "section#data details figure"
                assert not page.locator(folded).first.evaluate("e => e.checkVisibility()")
                page.emulate_media(media="print")
                assert page.locator(folded).first.evaluate("e => e.checkVisibility()")
                assert page.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
                assert page.evaluate("document.documentElement.scrollHeight") > height
                page.emulate_media(media="screen")
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                page.close()
        finally:
            browser.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_methods_paragraph_and_report_are_true_of_the_run(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    methods = html[html.index('id="methods"'):html.index('id="reproducibility"')]
    outcomes = html[html.index('id="outcomes"'):html.index('id="methods"')]
    summary = html[html.index('id="summary"'):html.index('id="data"')]
    assert "(1 initialisation(s) each)" in methods  # n_init = 1 in this experiment
    # uncertainty is said to be carried into the means, and the table is shown
    assert "carried into the archetype means" in methods
    assert "Gaussian mixture: membership uncertainty" in outcomes
    assert "classical ω²" in outcomes and "R² features" in outcomes
    circular = pd.read_csv(run_dir / "near_circular_features.csv")
    assert len(circular) and (circular["spearman"].abs() >= 0.5).all()
    first = circular.iloc[0]
    assert f"Feature &#39;{first.feature}&#39; has a rank correlation of {first.spearman:.2f}" in summary
    assert "near-circular" in methods and f"{first.feature} with {first.outcome}" in methods


def test_methods_paragraph_states_defaults_and_the_null_reference_as_built():
    from segment.report._methods import methods_paragraphs

    config = {"cluster": {"gmm": {"k": [1, 4]}}, "stability": {"resamples": 20, "null_resamples": 0},
              "profile": {"outcomes": ["anxiety"]}}
    text = " ".join(methods_paragraphs(config, {}))
    assert "(3 initialisation(s) each)" in text  # the default the run used
    assert "0 resamples" not in text and "No null reference was built" in text
    assert "carried into" not in text  # no uncertainty table: no claim
    config["stability"].update(null_resamples=10, null_cohorts=2)
    text = " ".join(methods_paragraphs(config, {"profile": {"uncertainty_methods": ["gmm"]}}))
    assert "2 structure-free cohort(s)" in text and "resampled 10 times" in text
    assert "carried into the archetype means" in text
    # the null model named is the one the run used
    config["stability"]["null"] = "unimodal"
    text = " ".join(methods_paragraphs(config, {}))
    assert "with unimodal items" in text and "keep their modes" not in text
    config["stability"]["null"] = "correlated"
    text = " ".join(methods_paragraphs(config, {}))
    assert "keep their modes" in text and "unimodal" not in text


# --------------------------------------------------------------------------
# the answer first

def _fake_run(verdicts, *, structure=None, resamples=20, sizes=None, names=None) -> RunData:
    """Tables of an HDBSCAN-only run: archetypes 0, 1, 2 plus noise, with made-up stability."""
    sizes = sizes or {-1: 30, 0: 60, 1: 45, 2: 82}
    names = names or {0: "calm readers", 1: "night scrollers", 2: "busy posters"}
    arch = pd.DataFrame({"method": "hdbscan", "archetype": list(sizes),
                         "group": ["noise" if a == -1 else "archetype" for a in sizes], "n": list(sizes.values())})
    arch["share"] = arch["n"] / arch["n"].sum()
    arch["name"] = [names.get(a, "noise") for a in sizes]
    arch["draft_name"] = arch["name"]
    tables = {"archetype_sizes": arch[["method", "archetype", "group", "n", "share"]], "archetypes": arch}
    if resamples:
        tables["stability"] = pd.DataFrame({
            "method": "hdbscan", "archetype": [0, 1, 2], "n": [sizes[a] for a in (0, 1, 2)],
            "mean_jaccard": [0.91, 0.88, 0.55], "null_reference": 0.64, "p_value": [0.01, 0.02, 0.9],
            "verdict": verdicts})
    if structure is not None:
        tables["structure_test"] = pd.DataFrame({
            "method": ["hdbscan"], "observed": [structure[0]], "null_q95": [structure[1]],
            "p_value": [structure[2]], "reject": [structure[2] <= 0.05]})
    return RunData(tables=tables, metrics={"stability": {"resamples": resamples}},
                   manifest={"config": {"report": {"min_cell": 10}}})


def test_verdict_names_the_stable_archetypes_with_their_numbers():
    found = verdict(_fake_run(["stable", "stable", "weak"], structure=(0.91, 0.66, 0.01)))
    assert found.status == "stable" and len(found.sentences) == 3
    assert found.sentences[0].startswith("Two of the 3 HDBSCAN archetypes are stable under resampling and more "
                                         "reproducible than structure-free data of the same shape")
    assert "archetype 0 “calm readers” (n = 60, mean Jaccard 0.91 against 0.64" in found.text
    assert "archetype 1 “night scrollers” (n = 45, mean Jaccard 0.88" in found.text
    assert "busy posters" not in found.text and "HDBSCAN: 1 weak" in found.sentences[1]
    assert found.recommended == "hdbscan"
    assert found.sentences[2] == ("The archetypes to report are the HDBSCAN ones: of the methods that find their "
                                  "own number of archetypes, it has the most called stable (2 of 3; the rule is "
                                  "calibrated on cohorts with known truth).")


def test_verdict_recommends_the_method_with_most_stable_archetypes_and_never_the_baseline():
    data = _fake_run(["stable", "stable", "weak"])
    st = data.tables["stability"]
    mixture = st.assign(method="gmm", verdict=["stable", "stable", "stable"])
    kmeans = pd.concat([st.assign(method="kmeans", verdict="stable")] * 2)
    sizes = data.tables["archetype_sizes"]
    data.tables["archetype_sizes"] = pd.concat([sizes, sizes[sizes["archetype"] >= 0].assign(method="gmm"),
                                                pd.concat([sizes[sizes["archetype"] >= 0]] * 2).assign(
                                                    method="kmeans")])
    data.tables["stability"] = pd.concat([st, mixture, kmeans])
    found = verdict(data)
    assert found.recommended == "gmm" and "the Gaussian mixture ones" in found.sentences[-1]
    assert "(3 of 3;" in found.sentences[-1]
    # a tie in stable archetypes goes to the larger share of archetypes called stable
    data.tables["stability"] = pd.concat([st.assign(verdict=["stable", "stable", "stable"]), mixture,
                                          mixture.assign(archetype=[3, 4, 5], verdict="weak")])
    data.tables["archetype_sizes"] = pd.concat([sizes, pd.concat([sizes[sizes["archetype"] >= 0]] * 2).assign(
        method="gmm", archetype=range(6))])
    found = verdict(data)
    assert found.recommended == "hdbscan" and "(3 of 3;" in found.sentences[-1]
    # no archetype stable: nothing is recommended
    assert verdict(_fake_run(["weak", "weak", "dissolved"])).recommended is None


def test_verdict_shows_no_size_below_min_cell():
    # archetype 1 has 8 respondents: its size is hidden, and so is the noise (30), the next smallest,
    # which would give the 8 back from the number analysed; its name (built from its means) is not shown
    data = _fake_run(["stable", "stable", "weak"], sizes={-1: 30, 0: 60, 1: 8, 2: 82})
    text = verdict(data).text
    assert "archetype 1 (n = <10," in text and "n = 8" not in text and "night scrollers" not in text
    assert "archetype 0 “calm readers” (n = 60," in text


def test_verdict_without_stable_archetypes_says_continuum():
    found = verdict(_fake_run(["borderline", "weak", "dissolved"], structure=(0.55, 0.86, 0.869)))
    assert found.status == "not stable"
    assert found.sentences == [
        "No archetype in this cohort is more reproducible than structure-free data of the same shape (best "
        "archetype's mean Jaccard against the 95th percentile of structure-free cohorts: HDBSCAN 0.55 against "
        "0.86, p = 0.869); the outcome differences below describe slices of a continuum, not distinct groups.",
        "Verdicts: HDBSCAN: 1 borderline, 1 weak, 1 dissolved."]
    # the best archetype beats structure-free data, but none reaches the stable threshold
    text = verdict(_fake_run(["weak", "weak", "dissolved"], structure=(0.72, 0.60, 0.01))).text
    assert text.startswith("No archetype in this cohort is stable under resampling although the best archetype "
                           "of HDBSCAN is more reproducible than structure-free data (HDBSCAN 0.72 against 0.60, "
                           "p = 0.010)")


def test_verdict_without_resampling_says_descriptive():
    found = verdict(_fake_run(None, resamples=0))
    assert found.status == "not assessed"
    assert "descriptive" in found.text and "(HDBSCAN 3)" in found.text and "stable" not in found.text


def test_repeated_warnings_become_one_line_each():
    lines = [f"{m}, {o}: {n} respondent(s) with a missing covariate left out of the adjusted model."
             for m in ("hdbscan", "gmm", "kmeans") for o, n in (("anxiety", 3), ("depression", 3), ("sleep", 4))]
    lines += [f"kmeans, {o}: the features explain as much of {o} without clusters (OLS R² {r:.2f}) as the 6 "
              f"archetypes do (η² {e:.2f}): the archetype differences may be slices of a continuum."
              for o, r, e in (("anxiety", 0.42, 0.34), ("sleep", 0.20, 0.12))]
    lines += ["481 respondents in the cohort; 481 analysed, 0 excluded.",
              "481 respondents in the cohort; 481 analysed, 0 excluded.",
              "gmm, anxiety (all assigned): fewer than two archetypes; no omnibus tests for this outcome.",
              "gmm, sleep (all assigned): fewer than two archetypes; no omnibus tests for this outcome."]
    assert group_warnings(lines) == [
        "hdbscan (anxiety, depression, sleep): 3 / 3 / 4 respondent(s) with a missing covariate left out of the "
        "adjusted model.",
        "gmm (anxiety, depression, sleep): 3 / 3 / 4 respondent(s) with a missing covariate left out of the "
        "adjusted model.",
        "kmeans (anxiety, depression, sleep): 3 / 3 / 4 respondent(s) with a missing covariate left out of the "
        "adjusted model.",
        "kmeans (anxiety, sleep): the features explain as much of each without clusters (OLS R² 0.42 / 0.20) as "
        "the 6 archetypes do (η² 0.34 / 0.12): the archetype differences may be slices of a continuum.",
        "481 respondents in the cohort; 481 analysed, 0 excluded.",
        "gmm (anxiety, sleep; all assigned): fewer than two archetypes; no omnibus tests for this outcome."]
    # a line with one item keeps its own wording
    assert group_warnings(["gmm, sleep: 4 left out."]) == ["gmm, sleep: 4 left out."]


def test_summary_opens_with_the_verdict_then_the_archetypes_then_the_warnings(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    summary = html[html.index('id="summary"'):html.index('id="data"')]
    data = load_run_data(run_dir)
    assert verdict(data).sentences[0] in summary
    assert (summary.index('id="verdict"') < summary.index("Archetypes found by each method")
            < summary.index("Notes and warnings"))
    # the detail tables are folded away
    assert "<details" not in summary
    for caption in ("<figcaption>Missing answers per item", "<figcaption>Internal validity indices",
                    "<figcaption>Gaussian mixture model selection", "<dt>numpy</dt>", "<pre>[experiment]"):
        before = html[:html.index(caption)]
        assert before.rfind("<details") > before.rfind("</details>"), caption
    lines = summary_lines(run_dir)
    assert lines[0] == f"Verdict: {verdict(data).text}" and len(lines) > 1

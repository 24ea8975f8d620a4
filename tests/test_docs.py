"""Figures quoted in README.md and docs/ are the ones their scripts generate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bundled  # noqa: E402
import calibrate  # noqa: E402
import hdbscan_selection  # noqa: E402
import mixture_selection  # noqa: E402


def _block(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_readme_figures_of_the_bundled_cohort_come_from_its_figures_file():
    figures = json.loads(bundled.FIGURES.read_text(encoding="utf-8"))
    readme = bundled.README.read_text(encoding="utf-8")
    assert _block(readme, bundled.START, bundled.END) == bundled.render(figures)
    # the figures file is the default experiment's: its settings are the shipped ones
    assert figures["null_cohorts"] == 60 and figures["resamples"] == 50


def test_validation_tables_come_from_the_calibration_results():
    docs = calibrate.DOCS.read_text(encoding="utf-8")
    assert _block(docs, calibrate.START, calibrate.END) == calibrate.docs_block().strip()
    assert _block(docs, mixture_selection.START, mixture_selection.END) == mixture_selection.table().strip()
    assert _block(docs, hdbscan_selection.START, hdbscan_selection.END) == hdbscan_selection.table().strip()


def test_calibration_table_counts_what_the_results_hold(tmp_path):
    row = {"cell": "copula-n600", "seed": 0, "kind": "copula", "planted_k": 0, "seconds": 10.0,
           "hdbscan": {"k": 3, "any_stable": True, "structure_p": 0.01},
           "gmm": {"k": 1, "any_stable": False, "structure_p": 1.0},
           "kmeans": {"k": 6, "any_stable": False, "structure_p": 0.5}}
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps({**row, "seed": s, "hdbscan": {**row["hdbscan"], "any_stable": s == 0}})
                              for s in range(4)) + "\n")
    text = calibrate.table(path)
    assert "| copula-n600 | 4 | hdbscan | 1/4 (25%) | 4/4 (100%) | 3 |" in text
    assert "| copula-n600 | 4 | any method | 1/4 (25%) |" in text


def test_benchmark_figures_come_from_the_benchmark_results():
    import suite

    readme = suite.README.read_text(encoding="utf-8")
    results = suite.load_results()
    assert results, "bench/results.jsonl holds no benchmark"
    assert _block(readme, suite.START, suite.END) == suite.block(results).strip()
    assert (suite.BENCH / "scaling.png").exists()


def test_a_cell_short_of_its_seeds_never_meets_a_criterion(tmp_path):
    """A structure-free cell that passes on the seeds it has is still unmet while it lacks seeds."""
    row = {"cell": "continuum-n5000", "kind": "continuum", "planted_k": 0, "n": 5000, "seconds": 600.0,
           **{m: {"k": 1, "any_stable": False, "structure_p": 0.7} for m in calibrate.METHODS}}
    path = tmp_path / "results.jsonl"
    wanted = calibrate.cells()["continuum-n5000"][1]
    for seeds, met in ((wanted - 1, "**no**"), (wanted, "yes")):
        path.write_text("\n".join(json.dumps({**row, "seed": s}) for s in range(seeds)) + "\n")
        lines = [x for x in calibrate.acceptance(path).splitlines() if "continuum-n5000" in x]
        assert len(lines) == 2 and all(x.endswith(f"| {met} |") for x in lines), lines
        assert (f"({seeds} of {wanted} seeds)" in lines[0]) == (seeds < wanted)


def test_another_rule_is_compared_with_the_default_on_the_seeds_both_ran(tmp_path):
    row = {"cell": "sep6-n600", "kind": "archetypes", "planted_k": 5, "n": 600, "seconds": 100.0,
           **{m: {"k": 4, "ari": 0.8, "planted_stable": 3, "any_stable": True, "structure_p": 0.01,
                  "null_best": [0.2, 0.8]} for m in calibrate.METHODS}}
    default, rule = tmp_path / "default.jsonl", tmp_path / "rule.jsonl"
    default.write_text("\n".join(json.dumps({**row, "seed": s}) for s in range(4)) + "\n")
    better = {**row["gmm"], "k": 5, "ari": 0.95, "planted_stable": 5, "null_best": [0.9, 0.95, 0.1]}
    noisier = {**row["hdbscan"], "random_to_noise": 0.6}
    rule.write_text("\n".join(json.dumps({**row, "seed": s, "gmm": better, "hdbscan": noisier, "seconds": 200.0})
                              for s in (2, 3, 7)) + "\n")
    text = calibrate.rule_comparison(default, rule)
    assert "| sep6-n600 | 2 | gmm | 0.80 → 0.95 | 0/2 (0%) → 2/2 (100%) | 6/10 (60%) → 10/10 (100%) | " \
           "2/4 (50%) → 4/6 (67%) | – | – | – | 100 → 200 |" in text
    # a share only one side recorded is shown as missing on the other
    assert "| sep6-n600 | 2 | hdbscan | 0.80 → 0.80 |" in text and "| – → 0.60 |" in text


def test_another_rule_needs_its_own_results_file(tmp_path, capsys):
    import pytest

    results = tmp_path / "rule.jsonl"
    for argv in (["--set", "cluster.gmm.n_init=10", "--cells", "sep6-n600"],
                 ["--resamples", "100", "--cells", "sep6-n600"],
                 ["--set", "cluster.gmm.n_init", "--results", str(results)],
                 ["--set", "stability.null_resamples=1", "--results", str(results)]):
        with pytest.raises(SystemExit) as exit_:
            calibrate.main(argv)
        assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("its own --results file") == 2 and "expected KEY=VALUE" in err
    # a setting every cell's config would refuse is refused before any cell runs
    assert "'stability.null_resamples' must be 0 (no null reference) or >= 2; got 1" in err
    assert not results.exists()

import json

import pandas as pd
import pytest
from conftest import run_dirs

from segment.cli import main
from segment.config import load_config
from segment.errors import ConfigError
from segment.runs import compare_runs, list_runs
from segment.sweep import select_setting, sweep_plan


def _fits_cached(root, function):
    """How many distinct argument sets of a cached stage are in the sweep cache."""
    return sum(1 for p in (root / ".cache").rglob(f"*{function}*") if p.is_dir()
               for h in p.iterdir() if h.is_dir() and (h / "output.pkl").exists())


SWEEP = """
[sweep]
cluster.hdbscan.min_cluster_size = [0.05, 0.1, 0.2]
max_noise = 0.5
select = "dbcv"
"""


def test_sweep_runs_every_setting_and_fits_umap_once_per_umap_setting(make_study, capsys):
    experiment = make_study(seed=6, extra=SWEEP)
    assert main(["run", str(experiment), "-q"]) == 0
    out = capsys.readouterr().out
    root = experiment.parent / "runs" / "synthetic"
    (sweep_dir,) = [p for p in root.iterdir() if p.name.startswith("sweep-")]
    table = pd.read_csv(sweep_dir / "sweep.csv")
    assert list(table["cluster.hdbscan.min_cluster_size"]) == [0.05, 0.1, 0.2]
    for column in ("n_archetypes", "noise_share", "mean_stability", "min_stability", "dbcv",
                   "silhouette", "silhouette_space", "gmm_bic", "selected"):
        assert column in table.columns
    assert table["selected"].sum() == 1 and "Selected: setting-" in out
    ari = pd.read_csv(sweep_dir / "sweep_ari.csv", index_col=0)
    assert ari.shape == (3, 3) and (ari.to_numpy().diagonal() == 1).all()
    for setting in table["setting"]:
        assert (sweep_dir / setting / "report.html").is_file()
    assert "Selection rule" in (sweep_dir / "sweep.html").read_text()
    # three HDBSCAN settings, one UMAP setting: UMAP was fitted once, HDBSCAN three times
    assert _fits_cached(root, "fit_umap") == 1
    assert _fits_cached(root, "fit_hdbscan") == 3
    rule = json.loads((sweep_dir / "sweep.json").read_text())["rule"]
    assert "highest DBCV" in rule and "at most 50%" in rule


def test_cached_stages_give_the_same_results_as_fresh_fits(make_study, capsys):
    experiment = make_study(seed=6, extra=SWEEP.replace("[0.05, 0.1, 0.2]", "[0.1]"))
    assert main(["run", str(experiment), "-q"]) == 0
    assert main(["run", str(experiment), "-q"]) == 0          # second time: from the cache
    assert main(["run", str(experiment), "-q", "--sweep.cache", "false"]) == 0
    root = experiment.parent / "runs" / "synthetic"
    sweeps = sorted(p for p in root.iterdir() if p.name.startswith("sweep-"))
    labels = [(s / "setting-01" / "assignments.csv").read_bytes() for s in sweeps]
    assert labels[0] == labels[1] == labels[2]


def test_selection_rule_respects_the_noise_limit():
    table = pd.DataFrame({"noise_share": [0.1, 0.5, 0.2], "n_archetypes": [3, 4, 1],
                          "min_stability": [0.6, 0.9, 0.95], "mean_stability": [0.7, 0.9, 0.95],
                          "dbcv": [0.2, 0.5, 0.6]})
    assert select_setting(table, "min_stability", 0.3) == 0     # 1 too noisy, 2 has one archetype
    assert select_setting(table, "min_stability", 0.6) == 1
    assert select_setting(table.assign(noise_share=0.9), "dbcv", 0.3) is None


@pytest.mark.parametrize("sweep, message", [
    ("[sweep]\nreduce.n_neighbors = 10\n", "'sweep.reduce.n_neighbors' must be a non-empty list"),
    ("[sweep]\nreduce.n_neighbour = [10, 15]\n", "unknown config key 'reduce.n_neighbour'"),
    ("[sweep]\nreduce.n_neighbors = [10, 1]\n", "'reduce.n_neighbors' must be >= 2"),
    ("[sweep]\nreduce.n_neighbors = [10]\nselect = \"best\"\n", "'sweep.select' must be one of"),
])
def test_bad_sweeps_are_config_errors(make_study, sweep, message):
    experiment = make_study(extra=sweep)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        sweep_plan(load_config(experiment))


def test_runs_lists_and_compare_compares(make_study, capsys):
    experiment = make_study(seed=4)
    assert main(["run", str(experiment), "-q"]) == 0
    assert main(["run", str(experiment), "-q", "--reduce.n_neighbors", "10"]) == 0
    capsys.readouterr()
    a, b = run_dirs(experiment)
    table = list_runs(experiment.parent / "runs")
    assert len(table) == 2 and set(table["n_analysed"]) == {150}
    diff = compare_runs(a, b)
    assert diff["parameters"].to_dict("records") == [{"key": "reduce.n_neighbors", "a": 15, "b": 10}]
    assert set(diff["agreement"]["method"]) == {"hdbscan", "gmm", "kmeans"}
    assert compare_runs(a, a)["agreement"].set_index("method").loc["kmeans", "ari"] == 1.0
    assert main(["runs", str(experiment.parent / "runs")]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert main(["compare", str(a), str(experiment.parent)]) == 2
    assert "is not a run directory" in capsys.readouterr().err

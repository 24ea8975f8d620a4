import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import all_entries, run_dirs

from segment.cli import main


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_a_complete_run_directory(make_study, capsys):
    experiment = make_study(seed=4)
    code, out, err = run_cli(["run", str(experiment), "--quiet"], capsys)
    assert code == 0, err
    (run,) = run_dirs(experiment)
    for name in ("assignments.csv", "model_selection.csv", "metrics.json", "manifest.json",
                 "model/segmentation.pkl", "model/features.json", "report.html"):
        assert (run / name).is_file(), name
    assignments = pd.read_csv(run / "assignments.csv")
    assert len(assignments) == 150
    assert list(assignments.columns[:3]) == ["respondent", "excluded", "exclusion_reason"]
    assert {"hdbscan_label", "hdbscan_probability", "gmm_component", "gmm_posterior"} <= set(assignments.columns)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 1 and len(manifest["input"]["sha256"]) == 64
    assert manifest["config"]["reduce"]["n_components"] == 3
    stages = {s["stage"] for s in manifest["stages"]}
    assert {"load", "features", "umap", "hdbscan", "gmm", "write"} <= stages
    assert all(s["wall_seconds"] >= 0 and s["peak_rss_mib"] > 0 for s in manifest["stages"])
    assert manifest["model"]["sha256"] and "numpy" in manifest["packages"]
    assert "Run written to" in out
    # the answer first: the verdict opens what the command prints
    assert out.splitlines()[0].startswith("Verdict: Stability was not assessed")
    # nothing half-written is left beside it
    assert not [p for p in (experiment.parent / "runs").rglob(".*incomplete")]


def test_same_config_and_seed_give_byte_identical_assignments(make_study, capsys):
    experiment = make_study(seed=8)
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    first, second = run_dirs(experiment)
    assert first != second                                   # never overwritten
    assert (first / "assignments.csv").read_bytes() == (second / "assignments.csv").read_bytes()


def test_dotted_overrides_reach_the_config(make_study, capsys):
    experiment = make_study(seed=8)
    assert run_cli(["run", str(experiment), "-q", "--reduce.n_neighbors", "10",
                    "--cluster.hdbscan.min_cluster_size=20"], capsys)[0] == 0
    (run,) = run_dirs(experiment)
    config = json.loads((run / "manifest.json").read_text())["config"]
    assert config["reduce"]["n_neighbors"] == 10
    assert config["cluster"]["hdbscan"]["min_cluster_size"] == 20


def _bad_answer(frame):
    frame.loc[[4, 9], "Q1"] = "Sometimse"


def _out_of_range(frame):
    frame.loc[2, "age"] = 230


def _duplicate_id(frame):
    frame.loc[7, "respondent_id"] = frame.loc[3, "respondent_id"]


@pytest.mark.parametrize("edit, expected", [
    (_bad_answer, "column 'Q1': answer 'Sometimse' is not in the codebook (rows 5, 10)"),
    (_out_of_range, "column 'age': value '230' is outside the valid range [10, 100] (row 3)"),
    (_duplicate_id, "column 'respondent_id': 1 respondent id(s) occur more than once, e.g. 'S000003' (rows 4, 8)"),
    (lambda f: f.pop("Q2"), "missing from the file:\n  Q2"),
])
def test_bad_survey_data_exits_2_with_a_message_and_no_run_directory(make_study, capsys, edit, expected):
    experiment = make_study(answers=edit)
    code, out, err = run_cli(["run", str(experiment), "-q"], capsys)
    assert code == 2
    assert expected in err and "cohort.csv" in err
    assert "Traceback" not in err
    assert run_dirs(experiment) == [] and not [p for p in all_entries(experiment) if p.name.endswith("incomplete")]


@pytest.mark.parametrize("override, expected", [
    (["--reduce.n_neighbour", "5"], "unknown config key 'reduce.n_neighbour'. Did you mean 'reduce.n_neighbors'?"),
    (["--cluster.hdbscan.min_cluster_size", "1"],
     "cluster.hdbscan.min_cluster_size' must be an int >= 2 or a share in (0, 1); got 1"),
    (["--reduce.n_neighbors", "many"], "config key 'reduce.n_neighbors' must be int; got 'many'"),
    (["--features.imputer", "mean"], "config key 'features.imputer' must be one of knn, median, drop; got 'mean'"),
    (["--profile.outcomes", "['anxiety', 'wellbeing']"], "profile.outcomes' names 'wellbeing'"),
    (["--features.include", "['item_1', 'anxiety']"], "names outcome(s) 'anxiety': clustering on an outcome"),
])
def test_bad_config_exits_2_naming_the_key(make_study, capsys, override, expected):
    experiment = make_study()
    code, out, err = run_cli(["run", str(experiment), "-q", *override], capsys)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err
    assert run_dirs(experiment) == []


def test_missing_experiment_file_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["run", str(tmp_path / "nope.toml")], capsys)
    assert code == 2 and "experiment file not found" in err


def test_outcome_as_feature_is_allowed_knowingly_and_flagged(make_study, capsys):
    experiment = make_study(seed=2)
    code, out, err = run_cli(["run", str(experiment), "-q", "--features.include",
                              "['item_1', 'item_2', 'item_3', 'anxiety']",
                              "--features.allow_outcome_features", "true"], capsys)
    assert code == 0, err
    (run,) = run_dirs(experiment)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["outcome_features"] == ["anxiety"]
    assert any("circular" in s for s in metrics["summary"])


def test_structure_free_cohort_completes_and_says_no_archetypes(make_study, capsys):
    experiment = make_study(n=40, structure=False,
                            extra="\n[profile]\noutcomes = [\"anxiety\"]\n")
    code, out, err = run_cli(["run", str(experiment), "-q", "--cluster.hdbscan.min_cluster_size", "60"], capsys)
    assert code == 0, err
    assert "HDBSCAN found no archetypes" in out
    (run,) = run_dirs(experiment)
    assignments = pd.read_csv(run / "assignments.csv")
    assert (assignments["hdbscan_label"] == -1).all()


def test_too_few_respondents_completes_and_says_no_archetypes(make_study, capsys):
    experiment = make_study(n=6)
    code, out, err = run_cli(["run", str(experiment), "-q"], capsys)
    assert code == 0, err
    assert "No archetypes were found" in out


def test_respondents_missing_too_many_features_are_excluded_and_counted(make_study, capsys):
    def blank(frame):
        frame.loc[[0, 1, 2], ["Q1", "Q2", "Q3", "Q4", "Q5"]] = "Don't know"
    experiment = make_study(answers=blank, seed=3)
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    (run,) = run_dirs(experiment)
    assignments = pd.read_csv(run / "assignments.csv", index_col=0)
    assert assignments["excluded"].sum() == 3
    assert assignments.loc["S000000", "exclusion_reason"] == "missing more than 50% of features"
    assert pd.isna(assignments.loc["S000000", "hdbscan_label"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["excluded_by_reason"] == {"missing more than 50% of features": 3}


def test_console_script_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment]\nseeed = 3\n")
    proc = subprocess.run([sys.executable, "-m", "segment.cli", "run", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown config key 'experiment.seeed'. Did you mean 'experiment.seed'?" in proc.stderr
    assert "Traceback" not in proc.stderr

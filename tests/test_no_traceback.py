"""The catalogue of user mistakes: each is one message and exit code 2, found before
any fit, with no folder left behind; or the run says plainly what it changed."""

import json
import subprocess
import sys

import joblib
import pandas as pd
import pytest
from conftest import all_entries, run_dirs

import segment.experiment
from segment.cli import main
from segment.readers import file_sha256


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_fit(monkeypatch):
    """Any fit fails the test: the mistakes below must be found before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("fitted before the mistake was found")
    monkeypatch.setattr(segment.experiment, "fit_segmentation", refuse)


def _nothing_left(experiment):
    assert not (experiment.parent / "runs").exists(), all_entries(experiment)


@pytest.mark.parametrize("override, expected", [
    (["--cluster.gmm.n_init", "0"], "config key 'cluster.gmm.n_init' must be >= 1; got 0"),
    (["--reduce.metric", "notametric"], "config key 'reduce.metric' must be one of euclidean"),
    (["--cluster.hdbscan.epsilon", "-1"], "config key 'cluster.hdbscan.epsilon' must be >= 0; got -1.0"),
    (["--experiment.seed", "-1"], "config key 'experiment.seed' must be >= 0; got -1"),
    (["--seed", "-5"], "config key 'experiment.seed' must be >= 0; got -5"),
    (["--cluster.kmeans.k", "0"], "config key 'cluster.kmeans.k' must be >= 1; got 0"),
    (["--reduce.min_dist", "nan"], "config key 'reduce.min_dist' must be a finite number; got nan"),
    (["--profile.outcomes", "['anxiety', 'anxeity']"], "config key 'profile.outcomes' names 'anxeity', not an outcome"),
    (["--profile.covariates", "['agee']"], "config key 'profile.covariates' names 'agee', not a covariate"),
    (["--profile.names", "{ gmn = { '0' = 'a' } }"], "config key 'profile.names' must be one of hdbscan, gmm, kmeans"),
    (["--features.exclude", "[1]"], "config key 'features.exclude' must be a list of names (str); got 1"),
])
def test_config_mistakes_exit_2_before_any_fit(make_study, capsys, no_fit, override, expected):
    experiment = make_study()
    code, out, err = run_cli(["run", str(experiment), "-q", *override], capsys)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    _nothing_left(experiment)


def test_bonferroni_correction_is_accepted_as_documented(make_study, capsys):
    experiment = make_study(n=60, seed=3)
    code, out, err = run_cli(["run", str(experiment), "-q", "--profile.correction", "bonferroni"], capsys)
    assert code == 0, err
    (run,) = run_dirs(experiment)
    assert set(pd.read_csv(run / "tests.csv")["correction"]) == {"bonferroni"}


def test_output_that_is_a_file_is_named(make_study, capsys, no_fit):
    experiment = make_study()
    (experiment.parent / "runs").write_text("not a folder")
    code, out, err = run_cli(["run", str(experiment), "-q"], capsys)
    assert code == 2 and "config key 'experiment.output'" in err and "is a file, not a folder" in err
    assert (experiment.parent / "runs").read_text() == "not a folder"


def _edit_csv(experiment, edit):
    csv = experiment.parent / "cohort.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(csv, index=False)


def _identical(frame):
    for c in frame.columns:
        if c != "respondent_id":
            frame[c] = frame[c].iloc[0]


def _blank_column(frame):
    frame["Q3"] = ""


def _header_only(frame):
    frame.drop(frame.index, inplace=True)


@pytest.mark.parametrize("edit, override, expected", [
    (_identical, [], "all 150 analysed respondents gave identical answers on every clustering feature"),
    (_blank_column, [], "feature(s) 'item_3' have no answer from any analysed respondent"),
    (_header_only, [], "cohort.csv: the file has a header row but no respondents"),
])
def test_data_that_cannot_be_analysed_exits_2(make_study, capsys, no_fit, edit, override, expected):
    experiment = make_study()
    _edit_csv(experiment, edit)
    code, out, err = run_cli(["run", str(experiment), "-q", *override], capsys)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    _nothing_left(experiment)


def test_imputer_drop_removing_everyone_exits_2(make_study, capsys, no_fit):
    def one_blank_each(frame):
        for i in range(len(frame)):
            frame.loc[i, f"Q{i % 8 + 1}"] = "Don't know"
    experiment = make_study(answers=one_blank_each)
    code, out, err = run_cli(["run", str(experiment), "-q", "--features.imputer", "drop"], capsys)
    assert code == 2
    assert "every respondent is excluded (150 incomplete answers (features.imputer = drop))" in err
    _nothing_left(experiment)


def test_too_large_settings_are_lowered_and_the_report_states_the_values_used(make_study, capsys):
    experiment = make_study(n=25, seed=5)
    code, out, err = run_cli(["run", str(experiment), "-q", "--reduce.n_neighbors", "60",
                              "--cluster.kmeans.k", "40", "--cluster.hdbscan.min_samples", "500",
                              "--cluster.hdbscan.min_cluster_size", "2"], capsys)
    assert code == 0, err
    (run,) = run_dirs(experiment)
    metrics = json.loads((run / "metrics.json").read_text())
    n = metrics["n_distinct_answer_patterns"]
    assert n < 40
    summary = "\n".join(metrics["summary"])
    assert f"reduce.n_neighbors = 60 was lowered to {n - 1}" in summary
    assert f"cluster.kmeans.k = 40 was lowered to {n}" in summary
    assert "cluster.hdbscan.min_samples = 500 is more than" in summary
    assert "min_cluster_size = 2)" not in summary
    html = (run / "report.html").read_text()
    assert f"(n_neighbors = {n - 1}, min_dist" in html and "(n_neighbors = 60, min_dist" not in html
    assert f"K-Means with k = {metrics['kmeans']['k']} in" in html and "K-Means with k = 40 in" not in html


def test_replicate_blames_the_missing_cohort_file(tmp_path, capsys):
    code, out, err = run_cli(["replicate", str(tmp_path), "--cohort", str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and "--cohort: survey file not found" in err and "nope.csv" in err
    assert "codebook" not in err


def test_replicate_refuses_a_checksum_matching_model_that_is_not_a_segmentation(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    joblib.dump({"not": "a model"}, run / "model" / "segmentation.pkl")
    (run / "manifest.json").write_text(json.dumps({"model": {
        "path": "model/segmentation.pkl", "sha256": file_sha256(run / "model" / "segmentation.pkl")}}))
    cohort = tmp_path / "new.csv"
    cohort.write_text("a\n1\n")
    code, out, err = run_cli(["replicate", str(run), "--cohort", str(cohort)], capsys)
    assert code == 2 and "holds a dict, not a segmentation" in err


def test_runs_lists_a_corrupt_run_as_unreadable(tmp_path, capsys):
    good, bad = tmp_path / "x" / "run-good", tmp_path / "x" / "run-bad"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / "manifest.json").write_text(json.dumps({"created": "2024-01-01T00:00:00", "wall_seconds": 3.0}))
    (good / "metrics.json").write_text(json.dumps({"cohort": {"n_analysed": 42}}))
    (bad / "manifest.json").write_text("{ truncated")
    (bad / "metrics.json").write_text("{}")
    code, out, err = run_cli(["runs", str(tmp_path)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert any("x/run-good" in line and "42" in line and "ok" in line for line in lines)
    assert any("x/run-bad" in line and "unreadable" in line for line in lines)


def test_validate_checks_everything_fits_nothing_and_writes_nothing(make_study, capsys, no_fit):
    def edit(frame):
        frame.loc[[0, 1], ["Q1", "Q2", "Q3", "Q4", "Q5"]] = "Don't know"
    experiment = make_study(answers=edit, extra='\n[profile]\ncovariates = ["age"]\n')
    code, out, err = run_cli(["validate", str(experiment)], capsys)
    assert code == 0, err
    assert "150 respondents in cohort.csv; 148 would be analysed, 2 excluded." in out
    assert "excluded, missing more than 50% of features: 2" in out
    assert "features (8): item_1, item_2" in out
    assert "outcomes (2): anxiety, depression" in out and "covariates (1): age" in out
    _nothing_left(experiment)
    folder = experiment.parent
    code, out, err = run_cli(["validate", "--codebook", str(folder / "cohort.toml"),
                              "--cohort", str(folder / "cohort.csv")], capsys)
    assert code == 0 and "150 respondents in cohort.csv; 148 would be analysed" in out
    code, out, err = run_cli(["validate", str(experiment), "--profile.covariates", "['sex']"], capsys)
    assert code == 2 and "config key 'profile.covariates' names 'sex'" in err


def test_console_script_validate_exits_2_without_traceback(make_study):
    experiment = make_study()
    proc = subprocess.run([sys.executable, "-m", "segment.cli", "validate", str(experiment),
                           "--cluster.gmm.n_init", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "cluster.gmm.n_init" in proc.stderr and "Traceback" not in proc.stderr

"""Run folders: where runs go, two processes on one folder, re-rendering a
report from an incomplete run."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_dirs
from sklearn.metrics import adjusted_rand_score

import segment.checkpoints as checkpoints
from segment.cli import main
from segment.config import load_config
from segment.experiment import open_run_dir
from segment.runs import compare_runs

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["../../x", "..", "ABSOLUTE", "a/b", "a\\b", " "])
def test_experiment_name_that_is_a_path_is_a_config_error(make_study, capsys, tmp_path, name):
    experiment = make_study(seed=4)
    name = str(tmp_path / "elsewhere") if name == "ABSOLUTE" else name
    before = set(experiment.parent.parent.rglob("*"))
    code, _, err = run_cli(["run", str(experiment), "-q", f"--experiment.name={name}"], capsys)
    assert code == 2
    assert "experiment.name" in err and repr(name) in err and "Traceback" not in err
    assert set(experiment.parent.parent.rglob("*")) == before   # nothing written anywhere
    assert not (tmp_path / "elsewhere").exists()


def test_runs_started_at_once_get_separate_folders(make_study):
    config = load_config(make_study(seed=4))
    barrier, folders, errors = threading.Barrier(6), [], []

    def start():
        barrier.wait()
        try:
            folders.append(open_run_dir(config))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len({tmp for _, tmp, _ in folders}) == len({final for final, _, _ in folders}) == 6
    assert all(tmp.is_dir() and not final.exists() for final, tmp, _ in folders)


def _interrupted_run(experiment, capsys, monkeypatch) -> Path:
    """The working folder of a run stopped by Ctrl-C after two resamples."""
    calls = {"n": 0}

    def stop(done, total):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "_after_checkpoint", stop)
    code, _, _ = run_cli(["run", str(experiment), "-q"], capsys)
    monkeypatch.undo()
    assert code == 130
    (tmp,) = (experiment.parent / "runs").glob("*/.*.incomplete")
    return tmp


def test_second_resume_of_a_folder_in_use_exits_2(make_study, capsys, monkeypatch):
    experiment = make_study(seed=3, extra="\n[stability]\nresamples = 24\n")
    tmp = _interrupted_run(experiment, capsys, monkeypatch)
    kept = set((tmp / "work" / "checkpoints").glob("resample_*.npz"))
    first = subprocess.Popen([sys.executable, "-m", "segment.cli", "run", str(experiment), "-q", "--resume", str(tmp)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = 120
        import time

        start = time.monotonic()
        while set((tmp / "work" / "checkpoints").glob("resample_*.npz")) == kept:  # the first is resampling
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - start < deadline
            time.sleep(0.1)
        code, _, err = run_cli(["run", str(experiment), "-q", "--resume", str(tmp)], capsys)
        assert code == 2
        assert "in use by another segment process" in err and str(tmp) in err
        _, first_err = first.communicate(timeout=180)
        assert first.returncode == 0, first_err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=30)
    (run,) = run_dirs(experiment)
    assert (run / "report.html").is_file() and not (run / ".lock").exists()
    assert not list((experiment.parent / "runs").glob("*/.*.incomplete"))
    # the folder has been renamed into place: resuming it again is a message, not a traceback
    code, _, err = run_cli(["run", str(experiment), "-q", "--resume", str(tmp)], capsys)
    assert code == 2 and "Traceback" not in err


def test_report_never_replaces_a_complete_report_by_a_degraded_one(make_study, capsys):
    experiment = make_study(seed=4, extra="\n[stability]\nresamples = 4\n")
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    (run,) = run_dirs(experiment)
    report = (run / "report.html").read_bytes()
    # re-rendering a complete run works (and a deleted per-respondent file is not needed)
    (run / "assignments.csv").unlink()
    code, out, err = run_cli(["report", str(run)], capsys)
    assert code == 0, err
    report = (run / "report.html").read_bytes()
    for name in ("stability.csv", "profiles.csv"):
        (run / name).unlink()
    code, _, err = run_cli(["report", str(run)], capsys)
    assert code == 2
    assert "stability.csv" in err and "profiles.csv" in err and "report.html" in err
    assert (run / "report.html").read_bytes() == report


def test_compare_matches_respondents_by_id_and_says_when_cohorts_differ(make_study, capsys, tmp_path):
    experiment = make_study(seed=4)
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    # the same cohort with its rows in another order, and one without its first 10 respondents
    cohort = pd.read_csv(experiment.parent / "cohort.csv")
    cohort.sample(frac=1.0, random_state=0).to_csv(experiment.parent / "shuffled.csv", index=False)
    cohort.iloc[10:].to_csv(experiment.parent / "fewer.csv", index=False)
    for name in ("shuffled", "fewer"):
        assert run_cli(["run", str(experiment), "-q", f"--experiment.cohort={name}.csv"], capsys)[0] == 0
    runs = {json.loads((p / "manifest.json").read_text())["input"]["file"]: p for p in run_dirs(experiment)}
    original, shuffled, fewer = runs["cohort.csv"], runs["shuffled.csv"], runs["fewer.csv"]

    same = compare_runs(original, shuffled)
    assert same["cohorts"].loc[0, "matched_by"] == "respondent id"
    assert same["cohorts"].loc[0, ["n_in_both", "n_only_in_a", "n_only_in_b"]].tolist() == [150, 0, 0]
    labels = [pd.read_csv(run / "assignments.csv", index_col=0).sort_index()["kmeans_cluster"]
              for run in (original, shuffled)]
    expected = adjusted_rand_score(labels[0], labels[1])
    assert same["agreement"].set_index("method").loc["kmeans", "ari"] == pytest.approx(expected)
    assert expected > 0.5  # K-Means on planted archetypes finds them whatever the row order

    differ = compare_runs(original, fewer)
    row = differ["cohorts"].loc[0]
    assert (row["n_in_both"], row["n_only_in_a"], row["n_only_in_b"]) == (140, 10, 0)
    assert "cohorts differ" in row["note"]
    assert differ["agreement"]["n_shared"].eq(140).all()
    code, out, _ = run_cli(["compare", str(original), str(fewer)], capsys)
    assert code == 0 and "cohorts differ" in out


def test_compare_without_ids_matches_rows_of_the_same_file_only(make_study, capsys):
    experiment = make_study(seed=4)
    book = experiment.parent / "cohort.toml"
    book.write_text(book.read_text().replace('role = "id"', 'role = "identifier"'))
    assert run_cli(["run", str(experiment), "-q"], capsys)[0] == 0
    cohort = pd.read_csv(experiment.parent / "cohort.csv")
    cohort.sample(frac=1.0, random_state=0).to_csv(experiment.parent / "shuffled.csv", index=False)
    assert run_cli(["run", str(experiment), "-q", "--experiment.cohort=shuffled.csv"], capsys)[0] == 0
    a, b = run_dirs(experiment)
    assert compare_runs(a, a)["cohorts"].loc[0, "matched_by"].startswith("row")
    diff = compare_runs(a, b)
    assert diff["cohorts"].loc[0, "matched_by"] == "none" and diff["agreement"].empty
    assert "cannot be matched" in diff["cohorts"].loc[0, "note"]

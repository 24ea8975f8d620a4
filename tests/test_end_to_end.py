"""Whole runs: interrupt and resume, honest profiles, the real cohort."""

import numpy as np
import pandas as pd
import pytest
from conftest import SMMH, run_dirs

import segment.checkpoints as checkpoints
from segment.cli import main

FAST_STABILITY = "\n[stability]\nresamples = 6\nnull_resamples = 2\nnull_cohorts = 3\n"


def test_interrupted_run_resumes_to_the_same_results(make_study, capsys, monkeypatch):
    reference = make_study(seed=3, name="reference", extra=FAST_STABILITY)
    assert main(["run", str(reference), "-q"]) == 0
    (expected,) = run_dirs(reference)

    experiment = make_study(seed=3, name="interrupted", extra=FAST_STABILITY)
    calls = {"n": 0}

    def stop(done, total):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "_after_checkpoint", stop)
    capsys.readouterr()
    assert main(["run", str(experiment), "-q"]) == 130
    err = capsys.readouterr().err
    assert "--resume" in err and run_dirs(experiment) == []
    (work,) = (experiment.parent / "runs").glob("*/.*.incomplete")
    assert len(list(work.rglob("*.npz"))) >= 3

    monkeypatch.setattr(checkpoints, "_after_checkpoint", lambda done, total: None)
    assert main(["run", str(experiment), "-q", "--resume", str(work)]) == 0
    (resumed,) = run_dirs(experiment)
    assert not work.exists()
    for name in ("assignments.csv", "stability.csv", "resamples.csv", "tests.csv"):
        a = pd.read_csv(expected / name)
        b = pd.read_csv(resumed / name)
        a, b = a.drop(columns=["seconds"], errors="ignore"), b.drop(columns=["seconds"], errors="ignore")
        pd.testing.assert_frame_equal(a, b, obj=name)


def test_slicing_a_continuum_is_labelled_not_presented_as_findings(make_study, capsys):
    # no archetypes, outcomes rise along one latent dimension: any "difference" comes from slicing
    experiment = make_study(n=200, structure=False, seed=11, extra=FAST_STABILITY)
    assert main(["run", str(experiment), "-q", "--cluster.hdbscan.min_cluster_size", "0.05"]) == 0
    (run,) = run_dirs(experiment)
    stability = pd.read_csv(run / "stability.csv")
    assert not (stability["verdict"] == "stable").any()
    # BIC over mixtures in the principal components sees one component: no archetypes at all
    assert not (stability["method"] == "gmm").any()
    assert pd.read_csv(run / "assignments.csv")["gmm_component"].nunique() == 1
    # K-Means slices the continuum anyway; its differences are labelled, not presented as findings
    tests = pd.read_csv(run / "tests.csv")
    kmeans = tests[tests["method"] == "kmeans"]
    assert len(kmeans) and (kmeans["stability_verdict"] != "all stable").all()
    assert kmeans["interpretation"].str.contains("not to be read as findings|continuum", regex=True).all()
    # the slices do differ in outcome: exactly why the label is needed
    assert (kmeans.loc[kmeans["test"] == "one-way ANOVA", "p_value"] < 0.05).all()


@pytest.fixture(scope="module")
def smmh_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smmh")
    experiment = (SMMH.parent.parent / "experiments" / "smmh.toml").read_text()
    experiment = (experiment.replace('"../surveys/smmh/', f'"{SMMH}/')
                  .replace('output = "../reports"', f'output = "{folder}"'))
    path = folder / "smmh.toml"
    path.write_text(experiment)
    assert main(["run", str(path), "-q", "--stability.resamples", "0"]) == 0
    (run,) = [p for p in (folder / "smmh").iterdir() if not p.name.startswith(".")]
    return run


def test_real_cohort_profiles_match_a_hand_computation(smmh_run):
    assignments = pd.read_csv(smmh_run / "assignments.csv", index_col="respondent")
    raw = pd.read_csv(SMMH / "smmh.csv", dtype=str)
    worries = raw["13. On a scale of 1 to 5, how much are you bothered by worries?"].astype(float)
    worries.index = np.arange(1, len(raw) + 1)
    profiles = pd.read_csv(smmh_run / "profiles.csv")
    for method, column in (("gmm", "gmm_component"), ("hdbscan", "hdbscan_label")):
        by = worries.groupby(assignments[column])
        got = profiles[(profiles["method"] == method) & (profiles["outcome"] == "anxiety")]
        table = got.pivot(index="archetype", columns="statistic", values="value")
        np.testing.assert_allclose(table["n"], by.size().loc[table.index])
        np.testing.assert_allclose(table["mean"], by.mean().loc[table.index], rtol=1e-5)
        np.testing.assert_allclose(table["sd"], by.std(ddof=1).loc[table.index], rtol=1e-5)
        np.testing.assert_allclose(table["median"], by.median().loc[table.index], rtol=1e-5)


def test_real_cohort_run_never_writes_the_timestamp(smmh_run):
    raw = pd.read_csv(SMMH / "smmh.csv", dtype=str)
    stamps = raw["Timestamp"].head(50)
    for path in smmh_run.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".html", ".svg"):
            text = path.read_text(encoding="utf-8")
            assert not any(s in text for s in stamps), path

"""Replication: transfer a run's model to a new cohort, refit there, compare."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from segment.cohort import load_cohort
from segment.errors import SegmentError
from segment.experiment import run_experiment
from segment.replicate import (
    load_model, match_archetypes, prediction_strength, replicate, share_changes, transfer,
)
from segment.synthetic import planted_cohort

OUTCOMES = {"anxiety": [5, 5, 9], "depression": [6, 9, 6], "sleep": [7, 7, 7]}

EXPERIMENT = """[experiment]
name = "half"
seed = 3
cohort = "half_a.csv"
codebook = "cohort.toml"
output = "runs"

[reduce]
n_neighbors = 15
n_components = 2

[cluster.hdbscan]
min_cluster_size = 0.1

[cluster.gmm]
k = [1, 4]
covariance_types = ["full"]
n_init = 1

[cluster.kmeans]
k = 3

[profile]
outcomes = ["anxiety", "depression", "sleep"]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A planted cohort split in halves; the experiment run on half A."""
    folder = tmp_path_factory.mktemp("replicate")
    cohort = planted_cohort(n=400, separation=3.5, outcome_means=OUTCOMES, seed=11)
    _, codebook = cohort.write(folder, "cohort")
    order = np.random.default_rng(0).permutation(len(cohort.answers))
    cohort.answers.iloc[np.sort(order[:200])].to_csv(folder / "half_a.csv", index=False)
    cohort.answers.iloc[np.sort(order[200:])].to_csv(folder / "half_b.csv", index=False)
    flat = planted_cohort(n=200, structure=False, outcome_means=OUTCOMES, seed=12)
    flat.answers.to_csv(folder / "flat.csv", index=False)
    (folder / "experiment.toml").write_text(EXPERIMENT)
    run = run_experiment(folder / "experiment.toml")
    return {"folder": folder, "run": run.path, "codebook": codebook}


@pytest.fixture(scope="module")
def split_half(study):
    return replicate(study["run"], study["folder"] / "half_b.csv")


def test_split_half_recovers_archetypes(split_half):
    rep = split_half
    assert rep.replicated, rep.verdict
    assert "replicate in the new cohort" in rep.verdict
    hd = rep.prediction_strength[rep.prediction_strength["method"] == "hdbscan"]
    assert len(hd) == 3 and hd["prediction_strength"].min() >= 0.8
    m = rep.matching[rep.matching["method"] == "hdbscan"]
    assert m["jaccard"].min() > 0.8 and m["in_group_proportion"].min() > 0.8
    assert {"method", "archetype", "share_original", "share_new", "p_adjusted"} <= set(rep.shares.columns)


def test_split_half_recovers_outcome_differences(split_half):
    out = split_half.outcomes
    out = out[(out["method"] == "hdbscan") & out["outcome"].isin(["anxiety", "depression"])]
    assert len(out) == 6
    # every planted difference: same direction, significant in both halves
    assert (out["verdict"] == "replicated").all(), out[["archetype", "outcome", "verdict"]]
    assert out["same_sign"].all() and out["significant_original"].all() and out["significant_refit"].all()
    assert (out["original_ci_low"] <= out["original_diff"]).all()
    assert (out["refit_ci_high"] >= out["refit_diff"]).all()
    sleep = split_half.outcomes.query("method == 'hdbscan' and outcome == 'sleep'")
    assert not sleep["significant_original"].any()


def test_replication_folder_is_complete_and_never_overwritten(study, split_half):
    first = split_half.path
    assert first.parent == study["run"] / "replications"
    names = {p.name for p in first.iterdir()}
    assert {"transfer_assignments.csv", "matching.csv", "prediction_strength.csv", "shares.csv",
            "outcome_replication.csv", "replication.json", "report.html"} <= names
    summary = json.loads((first / "replication.json").read_text())
    assert summary["replicated"] is True and summary["methods"]
    html = (first / "report.html").read_text()
    assert "<style>" in html and "prediction strength" in html.lower()
    assert "S000" not in html  # no respondent id reaches the report
    assigned = pd.read_csv(first / "transfer_assignments.csv")
    assert len(assigned) == 200 and {"hdbscan_label", "gmm_component", "refit_hdbscan"} <= set(assigned.columns)
    second = replicate(study["run"], study["folder"] / "half_b.csv")
    assert second.path != first and second.path.is_dir() and first.is_dir()
    assert not [p for p in (study["run"] / "replications").iterdir() if p.name.startswith(".")]


def test_structure_free_cohort_does_not_replicate(study):
    rep = replicate(study["run"], study["folder"] / "flat.csv", study["codebook"], write=False)
    assert not rep.replicated
    assert "do not replicate" in rep.verdict
    hd = rep.summary["methods"][0]
    assert hd["method"] == "hdbscan" and not hd["replicates"]
    ps = hd["prediction_strength"]
    assert np.isnan(ps) or ps < 0.8


def test_transfer_is_batch_independent(study):
    seg, _ = load_model(study["run"])
    new = load_cohort(study["folder"] / "half_b.csv", study["codebook"]).features
    whole = transfer(seg, new)
    rng = np.random.default_rng(5)
    order = rng.permutation(len(new))
    cuts = np.sort(rng.choice(np.arange(1, len(new)), 6, replace=False))
    parts = [transfer(seg, new.iloc[chunk]) for chunk in np.split(order, cuts)]
    pd.testing.assert_frame_equal(pd.concat(parts).loc[whole.index], whole)
    one = transfer(seg, new.iloc[[17]])
    pd.testing.assert_frame_equal(one, whole.iloc[[17]])


def test_transfer_of_the_training_cohort_reproduces_its_labels(study):
    seg, _ = load_model(study["run"])
    train = load_cohort(study["folder"] / "half_a.csv", study["codebook"]).features
    out = transfer(seg, train)
    assert (out["hdbscan_label"].to_numpy() == seg.labels("hdbscan")).all()
    assert (out["gmm_component"].to_numpy() == seg.labels("gmm")).all()
    assert (out["kmeans_cluster"].to_numpy() == seg.labels("kmeans")).all()
    assert (out["distance_to_training"] == 0).all()


def test_tampered_model_is_refused(study, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(study["run"], copy)
    with open(copy / "model" / "segmentation.pkl", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(SegmentError, match="does not match its checksum in manifest.json; refusing to load it"):
        load_model(copy)
    before = sorted((copy / "replications").iterdir()) if (copy / "replications").exists() else []
    with pytest.raises(SegmentError, match="refusing to load it"):
        replicate(copy, study["folder"] / "half_b.csv")
    after = sorted((copy / "replications").iterdir()) if (copy / "replications").exists() else []
    assert after == before


def test_tampered_model_exits_2_on_the_command_line(study, tmp_path, capsys):
    from segment import cli

    copy = tmp_path / "run"
    shutil.copytree(study["run"], copy)
    with open(copy / "model" / "segmentation.pkl", "ab") as fh:
        fh.write(b"\0")
    code = cli.main(["replicate", str(copy), "--cohort", str(study["folder"] / "half_b.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not match its checksum" in err and "Traceback" not in err


def test_cohort_missing_features_is_refused_listing_all(study, tmp_path):
    book = study["codebook"].read_text()
    blocks = book.split("[[column]]")
    kept = [b for b in blocks if 'column = "Q2"' not in b and 'column = "Q5"' not in b]
    (tmp_path / "less.toml").write_text("[[column]]".join(kept))
    answers = pd.read_csv(study["folder"] / "half_b.csv").drop(columns=["Q2", "Q5"])
    answers.to_csv(tmp_path / "less.csv", index=False)
    with pytest.raises(SegmentError) as info:
        replicate(study["run"], tmp_path / "less.csv", tmp_path / "less.toml", write=False)
    msg = str(info.value)
    assert "'item_2'" in msg and "'item_5'" in msg and "2 of the 8" in msg


def test_invalid_answers_fail_as_in_the_original_run(study, tmp_path):
    answers = pd.read_csv(study["folder"] / "half_b.csv")
    answers.loc[3, "Q1"] = "Always"
    answers.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SegmentError, match="'Always' is not in the codebook"):
        replicate(study["run"], tmp_path / "bad.csv", study["codebook"], write=False)


def test_prediction_strength_and_matching_by_hand():
    refit = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    trans = np.array([5, 5, 5, 7, 7, 7, -1, 5])
    ps = prediction_strength(refit, trans).set_index("refit_archetype")
    assert ps.loc[0, "prediction_strength"] == pytest.approx(6 / 12)   # 3 of 4 together: 3*2 / 4*3
    assert ps.loc[1, "prediction_strength"] == pytest.approx(2 / 6)    # a noise member breaks pairs
    assert ps["is_minimum"].tolist() == [False, True]
    assert match_archetypes(refit, trans) == {0: 5, 1: 7}


def test_share_changes_chi_square():
    original = np.repeat([0, 1], [50, 50])
    new = np.repeat([0, 1], [80, 20])
    table, test = share_changes(original, new)
    assert test["df"] == 1 and test["p_value"] < 0.001
    assert table.loc[table["archetype"] == 0, "difference"].item() == pytest.approx(0.3)
    assert table["reject"].all()

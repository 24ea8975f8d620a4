"""Replication: transfer a run's model to a new cohort, refit there, compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segment.cohort import load_cohort
from segment.errors import SegmentError
from segment.experiment import run_experiment
from segment.replicate import (
    load_model,
    match_archetypes,
    outcome_replication,
    prediction_strength,
    replicate,
    share_changes,
    structure_free,
    transfer,
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


def test_in_group_proportion_has_a_null_reference(study, split_half):
    m = split_half.matching
    hd = m[m["method"] == "hdbscan"]
    assert (hd["igp_null_draws"] > 0).all()
    # planted archetypes: every in-group proportion beats all its structure-free versions
    assert (hd["igp_p_value"] == 1 / (1 + hd["igp_null_draws"])).all()
    assert (hd["in_group_proportion"] > hd["igp_null_p95"]).all()
    flat = replicate(study["run"], study["folder"] / "flat.csv", study["codebook"], write=False)
    f = flat.matching[(flat.matching["method"] == "hdbscan") & flat.matching["igp_p_value"].notna()]
    assert len(f) and (f["igp_p_value"] > 0.05).mean() >= 0.5


def test_structure_free_keeps_the_covariance():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (50, 3)), rng.normal(3, 1, (50, 3))])
    null = structure_free(X, np.random.default_rng(1))
    np.testing.assert_allclose(np.cov(null.T), np.cov(X.T), atol=1e-9)
    np.testing.assert_allclose(null.mean(axis=0), X.mean(axis=0), atol=1e-9)
    # the two planted groups are gone: the first coordinate is unimodal
    assert abs(stats.kurtosis(null[:, 0])) < 1 and stats.kurtosis(X[:, 0]) < -1.5


def test_an_outcome_difference_replicates_only_through_a_good_match():
    original = {"anxiety": {0: (100, 9.0, 4.0), 1: (100, 5.0, 4.0)}}
    new = {"anxiety": {0: (100, 9.0, 4.0), 1: (100, 5.0, 4.0)}}
    good = outcome_replication("gmm", original, new, new, {0: 0, 1: 1}, {0: 0.9, 1: 0.9})
    assert (good["verdict"] == "replicated").all()
    sliver = outcome_replication("gmm", original, new, new, {0: 0, 1: 1}, {0: 0.25, 1: 0.9})
    row = sliver.set_index("archetype").loc[0]
    assert row["match_jaccard"] == 0.25
    assert row["verdict"] == "matched archetype too different (Jaccard 0.25 < 0.5)"


def test_prediction_strength_is_computed_at_the_models_k(study):
    from segment.config import config_from_dict
    from segment.pipeline import fit_segmentation
    from segment.replicate._replication import _refit_at_model_k

    seg, manifest = load_model(study["run"])
    config = config_from_dict(manifest["config"])
    cohort = load_cohort(study["folder"] / "half_b.csv", study["codebook"])
    ss = np.random.SeedSequence(3)
    refit = fit_segmentation(cohort.features, cohort.codebook, config,
                             np.random.SeedSequence(ss.entropy, spawn_key=(0,)), gmm_k=2)
    assert seg.gmm.k == 3 and refit.gmm.k == 2
    labels, k, note = _refit_at_model_k("gmm", seg, refit, config, ss, 3, 2)
    assert k == 3 and len(np.unique(labels)) == 3 and len(labels) == cohort.n
    assert "k = 2" in note and "refit at k = 3" in note
    ps = prediction_strength(labels, transfer(seg, cohort.features)["gmm_component"].to_numpy())
    assert ps["prediction_strength"].min() >= 0.8


def test_replicating_onto_other_respondents_of_the_fitted_file_is_not_warned(study):
    _, manifest = load_model(study["run"])
    other = load_cohort(study["folder"] / "half_b.csv", study["codebook"])
    other.sha256 = manifest["input"]["sha256"]  # the other half of the file the model was fitted on
    rep = replicate(study["run"], other, write=False)
    assert not [w for w in rep.warnings if "fitted on" in w]
    same = load_cohort(study["folder"] / "half_a.csv", study["codebook"])
    rep = replicate(study["run"], same, write=False)
    assert [w for w in rep.warnings if w.startswith("200 respondent(s) of the new cohort are ones the model")]


def test_share_test_holds_its_level_on_split_halves(tmp_path):
    """Both halves of one cohort have equal shares by construction: over 20
    split halves the chi-square share test (each method) rejects in at most
    5% when both sides are assigned the same way."""
    from segment.config import ExperimentConfig
    from segment.pipeline import fit_segmentation
    from segment.predict import held_out_transfer

    csv, book = planted_cohort(n=400, k=3, separation=2.0, seed=7).write(tmp_path)
    cohort = load_cohort(csv, book)
    cfg = ExperimentConfig().replace({"reduce.n_components": 3, "cluster.gmm.k": [1, 5], "cluster.gmm.n_init": 1,
                                      "cluster.gmm.covariance_types": ["full"], "cluster.kmeans.k": 3,
                                      "cluster.hdbscan.min_cluster_size": 0.1})
    columns = ("hdbscan_label", "gmm_component", "kmeans_cluster")
    rejections = tests = 0
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(cohort.n)
        a = cohort.features.iloc[np.sort(order[:200])]
        b = cohort.features.iloc[np.sort(order[200:])]
        seg = fit_segmentation(a, cohort.codebook, cfg, seed=seed)
        new, held = transfer(seg, b), held_out_transfer(seg)
        assert held.index.equals(a.index)
        for c in columns:
            rejections += share_changes(held[c].to_numpy(), new[c].to_numpy())[1]["p_value"] < 0.05
            tests += 1
    assert tests == 60 and rejections / tests <= 0.05


def test_split_half_seed_is_the_experiment_seed(tmp_path, capsys):
    """``--seed`` means experiment.seed on every command: with --split-half it seeds the split and the fit."""
    from segment import cli

    cohort = planted_cohort(n=160, k=2, separation=4.0, outcome_means={"anxiety": [5, 8]}, seed=2)
    cohort.write(tmp_path, "cohort")
    (tmp_path / "experiment.toml").write_text(
        EXPERIMENT.replace('"half_a.csv"', '"cohort.csv"').replace('["anxiety", "depression", "sleep"]', '["anxiety"]'))

    def half_a(*args):
        assert cli.main(["replicate", "--split-half", str(tmp_path / "experiment.toml"), "-q", *args]) == 0
        run = capsys.readouterr().out.split("Run on half A written to ")[1].split("\n")[0].strip()
        return pd.read_csv(Path(run) / "assignments.csv")

    by_flag, by_key = half_a("--seed", "5"), half_a("--experiment.seed", "5")
    pd.testing.assert_frame_equal(by_flag, by_key)
    assert set(half_a("--seed", "6")["respondent"]) != set(by_flag["respondent"])


@pytest.mark.filterwarnings("ignore:n_jobs value")  # a seeded UMAP runs single threaded
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_nearest_training_points_are_exact_in_the_models_metric(metric):
    import umap
    from sklearn.metrics import pairwise_distances

    from segment.predict import nearest_training

    rng = np.random.default_rng(0)
    train, new = rng.normal(size=(120, 4)), rng.normal(size=(30, 4))
    model = umap.UMAP(n_neighbors=10, metric=metric, n_epochs=10, random_state=0).fit(train)
    indices, distances = nearest_training(model, train, new, 5)
    full = pairwise_distances(new.astype(np.float32), train.astype(np.float32), metric=metric)
    np.testing.assert_array_equal(indices, np.argsort(full, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(distances, np.sort(full, axis=1)[:, :5], rtol=1e-5)

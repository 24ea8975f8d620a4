"""Known-truth cohorts and a fast slice of the calibration study."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segment.codebook import load_codebook
from segment.cohort import load_cohort
from segment.config import config_from_dict
from segment.features import encoder_for
from segment.pipeline import fit_segmentation
from segment.scenarios import RANDOM_RESPONDER, Scenario, make_cohort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import calibrate  # noqa: E402

# few null cohorts: a level reachable with 6 of them (the study itself runs the defaults)
SLICE = {"stability.null_cohorts": 6, "stability.null_resamples": 2, "stability.alpha": 0.5}


def _load(cohort, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    csv, book = cohort.write(tmp_path, "cohort")
    return load_cohort(csv, load_codebook(book))


def _observed_separation(cohort, loaded) -> float:
    """Nearest-pair Mahalanobis distance of the planted archetypes in the encoded answers."""
    X = encoder_for(loaded.features, loaded.codebook).fit_transform(loaded.features)
    t = cohort.truth
    k = t.max() + 1
    means = np.array([X[t == a].mean(axis=0) for a in range(k)])
    within = sum(np.cov(X[t == a].T) * (np.sum(t == a) - 1) for a in range(k)) / (np.sum(t >= 0) - k)
    inv = np.linalg.pinv(within)
    return min(np.sqrt((means[a] - means[b]) @ inv @ (means[a] - means[b]))
               for a in range(k) for b in range(a + 1, k))


def test_planted_cohort_looks_like_a_survey(tmp_path):
    sc = Scenario(n=3000, separation=4.0, random_share=0.05, missing_share=0.05)
    cohort = make_cohort(sc, seed=1)
    loaded = _load(cohort, tmp_path)
    truth = cohort.truth
    # unequal archetype sizes as planted, and random responders
    shares = np.bincount(truth[truth >= 0]) / np.sum(truth >= 0)
    assert shares == pytest.approx(np.array(sc.shares) / sum(sc.shares), abs=0.03)
    assert np.mean(truth == RANDOM_RESPONDER) == pytest.approx(0.05, abs=0.015)
    # Likert text and numbers, an ordinal time range and a multi-select list, all decoded
    assert set(cohort.answers["Q1"].dropna()) >= {"Never", "Very often", "Don't know"}
    assert set(cohort.answers["Q10"].dropna()) >= {"1", "5"}
    assert loaded.features["daily_time"].dropna().between(0.5, 5.5).all()
    # "Don't know" became a missing value, never a score
    dont_know = (cohort.answers["Q1"] == "Don't know").to_numpy()
    assert dont_know.sum() > 50 and loaded.features["item_1"].isna().to_numpy()[dont_know].all()
    # items correlate within an archetype
    largest = loaded.features[truth == 0][["item_1", "item_2", "item_3", "item_4"]].corr(method="spearman")
    assert largest.to_numpy()[np.triu_indices(4, 1)].mean() > 0.1


def test_separation_is_ordered_on_the_observed_answers(tmp_path):
    far = make_cohort(Scenario(n=2000, separation=6.0), seed=2)
    near = make_cohort(Scenario(n=2000, separation=2.0), seed=2)
    d_far = _observed_separation(far, _load(far, tmp_path / "far"))
    d_near = _observed_separation(near, _load(near, tmp_path / "near"))
    assert d_far > 4.0 > 2.0 > d_near


def test_structure_free_controls_keep_correlations_without_archetypes(tmp_path):
    gaussian = make_cohort(Scenario(kind="gaussian", n=1500), seed=3)
    assert (gaussian.truth == 0).all() and len(gaussian.outcome_means) == 0
    loaded = _load(gaussian, tmp_path / "g")
    corr = loaded.features[[f"item_{j}" for j in range(1, 11)]].corr().to_numpy()
    assert np.abs(corr[np.triu_indices(10, 1)]).mean() > 0.1


def test_copula_of_the_bundled_cohort_keeps_its_answers_and_rank_correlations(tmp_path):
    from conftest import SMMH

    real = load_cohort(SMMH / "smmh.csv", load_codebook(SMMH / "codebook.toml"))
    copula = make_cohort(Scenario(kind="copula", n=481), seed=4)
    fake = _load(copula, tmp_path)
    for item in ("purposeless_use", "comparison", "daily_time"):
        a = real.features[item].value_counts(normalize=True).sort_index()
        b = fake.features[item].value_counts(normalize=True).reindex(a.index, fill_value=0)
        assert np.abs(a - b).max() < 0.06, item
    pair = ["distraction_when_busy", "distractibility"]
    r_real = real.features[pair].corr(method="spearman").iloc[0, 1]
    r_fake = fake.features[pair].corr(method="spearman").iloc[0, 1]
    assert r_real > 0.3 and r_fake == pytest.approx(r_real, abs=0.12)


def _fit(cohort, tmp_path, seed):
    loaded = _load(cohort, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_segmentation(loaded.features, loaded.codebook, config_from_dict({}), seed)


@pytest.mark.parametrize("kind", ["gaussian", "copula"])
def test_mixture_finds_one_component_in_structure_free_cohorts(kind, tmp_path):
    seg = _fit(make_cohort(Scenario(kind=kind, n=600), seed=5), tmp_path, 5)
    assert seg.gmm.k == 1


def test_mixture_and_hdbscan_recover_well_separated_unequal_archetypes(tmp_path):
    # a median over seeds: on a single cohort either method may split or merge one archetype
    aris = {"gmm": [], "hdbscan": []}
    for seed in (0, 1, 2):
        cohort = make_cohort(Scenario(n=600, separation=8.0), seed=seed)
        seg = _fit(cohort, tmp_path / str(seed), seed)
        for method, found in aris.items():
            found.append(adjusted_rand_score(cohort.truth, seg.labels(method)))
    assert np.median(aris["gmm"]) > 0.85, aris
    assert np.median(aris["hdbscan"]) > 0.7, aris


def test_calibration_slice_scores_a_planted_and_a_structure_free_cohort():
    planted = calibrate.evaluate(Scenario(n=300, separation=8.0, shares=(0.5, 0.3, 0.2),
                                          outcome_means=((0.0, 1.5, 0.0),)), seed=1, resamples=6, overrides=SLICE)
    assert planted["gmm"]["ari"] > 0.8 and planted["gmm"]["k"] == 3
    assert planted["gmm"]["planted_stable"] >= 2
    assert planted["gmm"]["structure_p"] <= 0.5
    # anxiety: archetypes 0 and 2 planted equal, 1 apart by 1.5 SD
    assert planted["gmm"]["large_pairs"] == 2 and planted["gmm"]["large_rejected"] == 2
    # judged against what the found archetypes hold, too; and the ceiling of what the answers allow
    assert planted["gmm"]["group_large_pairs"] == 2 and planted["gmm"]["group_large_rejected"] == 2
    assert planted["gmm"]["group_equal_pairs"] == 7  # anxiety 0 and 2; every pair on depression and sleep
    # every pair keeps its true difference, and how many standard errors of its test that is
    pairs = planted["gmm"]["group_pairs"]  # [outcome, |true difference| (SD), true z, rejected]
    assert len(pairs) == 9  # three pairs of archetypes on three outcomes
    assert all(z > 4 for _, d, z, _ in pairs if d >= 0.8)  # 1.5 SD apart in groups of 60 to 150
    # an uncorrected test would reject each equal pair with at least its level, 5 %
    assert 7 * 0.05 <= planted["gmm"]["group_equal_expected"] < 7 * 0.3
    assert planted["observed_separation"] > 4 and planted["oracle_ari"] > 0.95
    null = calibrate.evaluate(Scenario(kind="gaussian", n=300), seed=1, resamples=6, overrides=SLICE)
    assert not any(null[m]["any_stable"] for m in calibrate.METHODS)
    assert null["gmm"]["k"] == 1 and null["gmm"]["n_stable"] == 0  # one component: no archetypes


def test_expected_rejections_of_an_uncorrected_test():
    assert calibrate.uncorrected_power(0.0) == pytest.approx(0.05)
    assert calibrate.uncorrected_power(1.96) == pytest.approx(0.5, abs=1e-3)
    assert calibrate.uncorrected_power(-2.8) == pytest.approx(0.80, abs=0.01)  # two-sided: the sign is no matter
    # the true difference in SD units over the test's standard error in score points
    assert calibrate.true_z(0.2, 0.35) == pytest.approx(2.0)


def test_study_runs_its_cells_on_dask_as_on_joblib_and_resumes(tmp_path):
    from dask.distributed import LocalCluster

    tiny = Scenario(n=200, separation=8.0, shares=(0.6, 0.4), outcome_means=((0.0, 1.0),))
    plan = {"tiny": (tiny, 1, SLICE)}
    on_joblib, on_dask = tmp_path / "joblib.jsonl", tmp_path / "dask.jsonl"
    assert calibrate.run_study(["tiny"], 1, 1, 4, on_joblib, plan=plan) == 1
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        assert calibrate.run_study(["tiny"], 1, 1, 4, on_dask, plan=plan, scheduler=cluster.scheduler_address) == 1
        # a finished cell is not run again
        assert calibrate.run_study(["tiny"], 1, 1, 4, on_dask, plan=plan, scheduler=cluster.scheduler_address) == 0
    a, b = (json.loads(p.read_text()) for p in (on_joblib, on_dask))
    assert "error" not in a and a["gmm"]["ari"] > 0.9
    a.pop("seconds"), b.pop("seconds")
    assert a == b

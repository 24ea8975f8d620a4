"""Stability analysis: matching, Jaccard, verdicts, execution, checkpoints."""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import pytest

from segment import checkpoints
from segment import stability as st
from segment.codebook import load_codebook
from segment.cohort import load_cohort
from segment.config import load_config
from segment.errors import ConfigError, SegmentError
from segment.experiment import select_features
from segment.synthetic import experiment_toml, planted_cohort

# few null cohorts: a level of 0.5 (Bonferroni-divided over 3 methods) is reachable with 6
FAST = "\n[stability]\nresamples = {B}\nnull_resamples = {N}\nnull_cohorts = {C}\nalpha = 0.5\n"


def _setup(tmp_path, *, separation=4.0, structure=True, n=150, B=8, N=4, C=1, seed=3):
    syn = planted_cohort(n=n, k=3, separation=separation, structure=structure, seed=seed)
    csv, toml = syn.write(tmp_path / "cohort")
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment_toml(csv, toml, tmp_path / "out", extra=FAST.format(B=B, N=N, C=C)))
    cfg = load_config(exp)
    codebook = load_codebook(toml)
    features, _ = select_features(load_cohort(csv, codebook), cfg)
    return cfg, codebook, features


def _same(a, b):
    for name, frame in a.tables().items():
        other = b.tables()[name]
        if name == "resamples":
            frame, other = frame.drop(columns="seconds"), other.drop(columns="seconds")
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), other.reset_index(drop=True), obj=name)


# --------------------------------------------------------------------------
# matching and Jaccard on hand-made labelings

def test_jaccard_known_values():
    original = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    resample = np.array([5, 5, 5, 7, 7, 7, 7, 7])
    t = st.jaccard_table(original, resample)
    # cluster 0 = {0,1,2,3}; 5 = {0,1,2}; 7 = {3,4,5,6,7}
    assert t.loc[0, 5] == pytest.approx(3 / 4)
    assert t.loc[0, 7] == pytest.approx(1 / 8)
    # cluster 1 = {4,5,6} (noise row 7 is not a member); 7 holds it and 2 more
    assert t.loc[1, 7] == pytest.approx(3 / 5)
    m = st.match_clusters(original, resample)
    assert m.set_index("archetype").loc[0, "matched"] == 5
    assert m.set_index("archetype").loc[1, "jaccard"] == pytest.approx(3 / 5)


def test_noise_is_not_a_cluster_and_empty_resample_dissolves():
    original = np.array([0, 0, 1, 1, -1, -1])
    resample = np.array([-1, -1, -1, -1, -1, -1])
    m = st.match_clusters(original, resample)
    assert m["jaccard"].tolist() == [0.0, 0.0] and (m["matched"] == -1).all()
    # noise on the resample side leaves members out of its clusters
    m = st.match_clusters(np.array([0, 0, 0, 0]), np.array([1, 1, -1, -1]))
    assert m["jaccard"].iloc[0] == pytest.approx(0.5)
    # an archetype not drawn at all has no Jaccard
    m = st.match_clusters(np.array([0, 0]), np.array([0, 0]), archetypes=[0, 3])
    assert np.isnan(m.set_index("archetype").loc[3, "jaccard"])


def test_identical_partitions_up_to_renaming():
    a = np.array([0, 0, 1, 1, 2, 2])
    b = np.array([2, 2, 0, 0, 1, 1])
    m = st.match_clusters(a, b)
    assert m["jaccard"].tolist() == [1.0, 1.0, 1.0]
    assert m["matched"].tolist() == [2, 0, 1]


def test_exact_knn_is_exact():
    X = np.random.default_rng(0).normal(size=(60, 4))
    idx, d = st.exact_knn(X, 5)
    assert (idx[:, 0] == np.arange(60)).all() and (d[:, 0] == 0).all()
    full = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    expect = np.sort(full, axis=1)[:, :5]
    assert np.allclose(d, expect, atol=1e-5)


def test_unimodal_shares_flatten_modes_and_keep_unimodal_ones():
    from segment.copula import unimodal_shares

    bimodal = np.array([0.4, 0.08, 0.04, 0.08, 0.4])
    flat = unimodal_shares(bimodal)
    assert flat.sum() == pytest.approx(1.0)
    assert np.all(np.diff(flat[np.argmax(flat):]) <= 1e-12) and np.all(np.diff(flat[:np.argmax(flat) + 1]) >= -1e-12)
    assert np.allclose(flat, [0.4, 0.15, 0.15, 0.15, 0.15])
    peaked = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    assert np.allclose(unimodal_shares(peaked), peaked)


def test_unimodal_null_keeps_levels_missing_and_correlation_not_modes():
    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 600)
    # two archetypes: every item answered 1-2 by one and 4-5 by the other
    items = {f"q{j}": np.where(group == 1, rng.integers(4, 6, 600), rng.integers(1, 3, 600)).astype(float)
             for j in range(4)}
    frame = pd.DataFrame(items)
    frame.iloc[:30, 0] = np.nan
    out = st._permuted(frame, np.random.SeedSequence(2), "unimodal")
    assert set(out["q1"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert out["q0"].isna().sum() == 30
    assert out.corr(method="spearman").loc["q1", "q2"] > 0.5   # the items' correlation is kept
    shares = out["q1"].value_counts(normalize=True).reindex([1.0, 2.0, 3.0, 4.0, 5.0], fill_value=0).to_numpy()
    assert shares[2] >= min(shares[1], shares[3]) - 0.02        # the empty middle level is filled: one mode
    assert (frame["q1"] == 3).sum() == 0 and shares[2] > 0.1


def test_unimodal_null_keeps_the_normal_score_correlation_of_coarse_answers():
    from segment.copula import _normal_scores

    rng = np.random.default_rng(1)
    level = rng.normal(size=1000)
    frame = pd.DataFrame({f"q{j}": np.digitize(level + rng.normal(0, 0.5, 1000), [-1.0, 0.0, 1.0]).astype(float)
                          for j in range(4)})
    frame["yes"] = (level + rng.normal(0, 0.5, 1000) > 0.5).astype(float)
    observed = _normal_scores(frame).corr().to_numpy()[np.triu_indices(5, 1)]
    out = st._permuted(frame, np.random.SeedSequence(4), "unimodal")
    kept = _normal_scores(out).corr().to_numpy()[np.triu_indices(5, 1)]
    # four- and two-level answers drawn from the uncorrected latent correlation lose about a tenth of it
    assert np.abs(kept - observed).max() < 0.04 and abs(np.mean(kept - observed)) < 0.015


@pytest.mark.parametrize("how", ["unimodal", "correlated"])
def test_null_keeps_multiselect_options_correlated_with_the_items(how):
    rng = np.random.default_rng(0)
    level = rng.normal(size=800)
    frame = pd.DataFrame({f"q{j}": np.clip(np.round(3 + level + rng.normal(0, 0.7, 800)), 1, 5) for j in range(3)})
    # heavy users pick more platforms: each option's use rises with the items
    picks = [tuple(o for o, p in zip("abcd", rng.random(4) < 1 / (1 + np.exp(-2 * x))) if p) for x in level]
    frame["platforms"] = pd.Series(picks, dtype=object)
    frame.loc[:39, "platforms"] = np.nan
    out = st._permuted(frame, np.random.SeedSequence(3), how)
    count = out["platforms"].map(lambda v: len(v) if isinstance(v, tuple) else np.nan)
    observed = frame["platforms"].map(lambda v: len(v) if isinstance(v, tuple) else np.nan)
    assert out["platforms"].isna().sum() == 40
    assert set().union(*out["platforms"].dropna()) <= set("abcd")
    assert abs(count.mean() - observed.mean()) < 0.1                        # the options keep their shares
    assert count.corr(out["q0"], method="spearman") > 0.6 * observed.corr(frame["q0"], method="spearman") > 0.3
    # permuted on its own, the column would lose its correlation with the items
    alone = st._permuted(frame, np.random.SeedSequence(3), "permute")["platforms"].map(
        lambda v: len(v) if isinstance(v, tuple) else np.nan)
    assert abs(alone.corr(frame["q0"], method="spearman")) < 0.1


def test_weak_and_dissolved_are_only_said_beyond_two_monte_carlo_errors_of_the_threshold():
    from segment.config import StabilityConfig
    from segment.null_reference import _verdicts

    s = StabilityConfig(resamples=20)
    table = pd.DataFrame({"method": "hdbscan", "archetype": [0, 1, 2, 3, 4], "n": 50, "n_resamples": 25,
                          "mean_jaccard": [0.47, 0.47, 0.30, 0.53, 0.62], "_jaccard_sd": [0.20, 0.02, 0.20, 0.20, 0.2]})
    null = pd.DataFrame({"method": "hdbscan", "null_cohort": range(10), "n_archetypes": 2,
                         "best_mean_jaccard": 0.6})
    verdicts = _verdicts(table, null, s, np.random.SeedSequence(0))[0].set_index("archetype")["verdict"]
    # SE 0.04: 0.47 and 0.53 are within two SEs of 0.5; with SE 0.004 0.47 is dissolved, and so is 0.30;
    # 0.62 is more than two SEs above 0.5 and below 0.75
    assert verdicts.tolist() == ["borderline dissolved", "dissolved", "dissolved", "borderline dissolved", "weak"]


def test_permuted_cohort_keeps_every_column():
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4, np.nan, 5], "b": [5.0, 4, 3, 2, 1, 1],
                          "c": list("xyzxyz")})
    for how in ("permute", "correlated"):
        out = st._permuted(frame, np.random.SeedSequence(1), how)
        for col in frame:
            assert sorted(out[col].dropna().tolist()) == sorted(frame[col].dropna().tolist())
            assert out[col].isna().sum() == frame[col].isna().sum()


# --------------------------------------------------------------------------
# the analysis

def test_planted_archetypes_are_stable(tmp_path):
    cfg, codebook, features = _setup(tmp_path, separation=4.0, B=10, N=2, C=6)
    res = st.bootstrap_stability(features, codebook, cfg, cfg.experiment.seed, n_jobs=1)
    h = res.stability[res.stability["method"] == "hdbscan"]
    g = res.stability[res.stability["method"] == "gmm"]
    assert len(h) >= 2 and len(g) == 3
    assert (h["mean_jaccard"] >= 0.85).all() and (g["mean_jaccard"] >= 0.85).all()
    # the mixture selects k = 1 on every null cohort: its archetypes beat them all
    assert (g["verdict"] == "stable").all() and (g["null_reference"] == 0).all()
    # the mixture has the most archetypes called stable: its archetypes are the ones to report
    assert res.metrics["recommended_method"] == "gmm"
    # HDBSCAN's archetypes beat every null cohort too, but 6 cohorts leave the reference uncertain
    assert (h["p_value"] <= res.metrics["alpha_family"]).all()
    assert h["verdict"].isin(["stable", "borderline"]).all()
    assert (h["mean_jaccard_se"] < 0.05).all()
    assert set(res.stability.columns) >= {"method", "archetype", "n", "mean_jaccard", "mean_jaccard_se",
                                          "median_jaccard", "p10_jaccard", "share_dissolved", "share_recovered",
                                          "null_reference", "null_reference_se", "p_value", "verdict",
                                          "thresholds"}
    assert len(res.null_reference) == 6 * 4
    s = res.structure_test.set_index("method")
    assert s.loc["gmm", "reject"] and s.loc["gmm", "p_value"] == pytest.approx(1 / 7)
    r = res.respondent_stability
    assert r["stability"].between(0, 1).all() and (r["n_resamples_drawn"] > 0).all()
    assert set(res.jaccard["method"]) == set(st.METHODS)
    assert any("HDBSCAN" in s and "stable" in s for s in res.summary)


def test_structure_free_cohort_has_no_stable_archetype(tmp_path):
    cfg, codebook, features = _setup(tmp_path, structure=False, n=180, B=10, N=2, C=6)
    res = st.bootstrap_stability(features, codebook, cfg, cfg.experiment.seed, n_jobs=2)
    t = res.stability
    assert len(res.null_jaccard) > 0
    assert not (t["verdict"] == "stable").any() and res.metrics["recommended_method"] is None
    # whatever reaches the Jaccard threshold does so no better than structure-free data
    high = t[t["mean_jaccard"] >= cfg.stability.stable]
    assert len(high) and (high["p_value"] > res.metrics["alpha_family"]).all()
    # K-Means slices a continuum reproducibly; the null reference shows it is no evidence
    k = t[t["method"] == "kmeans"]
    assert (k["null_reference"] >= cfg.stability.stable).all()
    assert any(s.startswith("K-Means") and "no more reproducible than" in s for s in res.summary)


def test_no_null_reference_never_passes(tmp_path):
    cfg, codebook, features = _setup(tmp_path, separation=4.0, B=6, N=0, C=1)
    res = st.bootstrap_stability(features, codebook, cfg, cfg.experiment.seed, n_jobs=1)
    h = res.stability[res.stability["method"] == "hdbscan"]
    assert (h["mean_jaccard"] >= 0.85).all()
    assert (h["verdict"] == "no reference").all()
    assert not (res.stability["verdict"] == "stable").any()


def test_same_numbers_for_any_n_jobs_and_local_dask(tmp_path):
    import distributed  # noqa: F401  (a test dependency: its absence is a failure, not a skip)
    cfg, codebook, features = _setup(tmp_path, B=6, N=3)
    one = st.bootstrap_stability(features, codebook, cfg, 11, n_jobs=1)
    two = st.bootstrap_stability(features, codebook, cfg, 11, n_jobs=2)
    _same(one, two)
    dask = st.bootstrap_stability(features, codebook, cfg, 11, n_jobs=2, scheduler="local")
    _same(one, dask)


def _imported_for_refits() -> bool:
    return all(name in sys.modules for name in ("umap", "hdbscan", "segment.stability"))


def test_local_workers_started_early_have_imported_what_a_refit_needs():
    from segment.executors import local_pool, start_local_workers

    start_local_workers(2)
    pool = local_pool(2)
    assert all(f.result(timeout=120) for f in [pool.submit(_imported_for_refits) for _ in range(4)])


def test_interrupt_and_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg, codebook, features = _setup(tmp_path, B=8, N=3)
    full = st.bootstrap_stability(features, codebook, cfg, 5, n_jobs=1)

    calls = {"n": 0}

    def stop_after_four(done, total):
        calls["n"] += 1
        if calls["n"] == 5:  # the null fit and 4 resamples
            raise KeyboardInterrupt

    work = tmp_path / "work"
    monkeypatch.setattr(checkpoints, "_after_checkpoint", stop_after_four)
    with pytest.raises(st.StabilityInterrupted) as info:
        st.bootstrap_stability(features, codebook, cfg, 5, n_jobs=1, workdir=work)
    assert info.value.kept == 4
    assert len(list((work / "checkpoints").glob("*resample_*.npz"))) == 4

    monkeypatch.setattr(checkpoints, "_after_checkpoint", lambda done, total: None)
    refits = []
    real = st._fit_one
    monkeypatch.setattr(st, "_fit_one", lambda *a, **k: refits.append(1) or real(*a, **k))
    resumed = st.bootstrap_stability(features, codebook, cfg, 5, n_jobs=1, workdir=work)
    assert len(refits) == 8 + 3 - 4  # only what was missing (the null cohort's own fit is kept too)
    assert resumed.metrics["reused_from_checkpoints"] == 4
    _same(full, resumed)

    # another seed does not match the checkpoints
    with pytest.raises(SegmentError, match="fingerprint"):
        st.bootstrap_stability(features, codebook, cfg, 6, n_jobs=1, workdir=work)


def test_failed_resamples_are_recorded(tmp_path, monkeypatch):
    cfg, codebook, features = _setup(tmp_path, B=6, N=0)
    real = st.fit_segmentation

    def flaky(sub, *a, **k):
        if sub.index[0] == features.index[0] and len(sub) < len(features):
            raise RuntimeError("injected failure")
        return real(sub, *a, **k)

    monkeypatch.setattr(st, "fit_segmentation", flaky)
    drawn_first = [0 in st._draw(len(features), "subsample", 0.8, np.random.default_rng(
        np.random.SeedSequence(7, spawn_key=(1, b, 9)))) for b in range(6)]
    n_fail = int(sum(drawn_first))
    cfg = cfg.replace({"stability.max_failed_share": 0.99})
    res = st.bootstrap_stability(features, codebook, cfg, 7, n_jobs=1)
    per = res.resamples.drop_duplicates("resample")
    assert int((per["status"] == "failed").sum()) == n_fail > 0
    assert per.loc[per["status"] == "failed", "reason"].str.contains("injected failure").all()
    assert res.metrics["failed"] == n_fail

    cfg = cfg.replace({"stability.max_failed_share": 0.0})
    with pytest.raises(SegmentError, match="max_failed_share"):
        st.bootstrap_stability(features, codebook, cfg, 7, n_jobs=1)


# --------------------------------------------------------------------------
# bad input

def test_bad_settings(tmp_path):
    cfg, codebook, features = _setup(tmp_path)
    with pytest.raises(ConfigError, match="stability.resamples"):
        cfg.replace({"stability.resamples": 1})
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ConfigError, match="stability.fraction"):
            cfg.replace({"stability.fraction": bad})
    with pytest.raises(ConfigError, match="stability.resamples"):  # B = 0 is valid, but nothing to resample
        st.bootstrap_stability(features, codebook, cfg.replace({"stability.resamples": 0}), 0)


def test_unreachable_scheduler_fails_fast(tmp_path, monkeypatch):
    import distributed  # noqa: F401  (a test dependency: its absence is a failure, not a skip)

    import segment.executors
    monkeypatch.setattr(segment.executors, "SCHEDULER_TIMEOUT", 2)  # the message, not the wait, is tested
    cfg, codebook, features = _setup(tmp_path, B=2, N=0)
    started = time.perf_counter()
    with pytest.raises(SegmentError, match="scheduler"):
        st.bootstrap_stability(features, codebook, cfg, 0, scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - started < 30


def test_stage_does_nothing_without_resamples(tmp_path):
    cfg, codebook, features = _setup(tmp_path)
    cfg = cfg.replace({"stability.resamples": 0})
    assert st.stability_stage(config=cfg, cohort=None, features=features, segmentation=object(), seed=None,
                              progress=lambda name: None) is None

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segment import load_cohort
from segment.cluster import fit_hdbscan, resolve_min_cluster_size, select_gmm
from segment.config import ExperimentConfig
from segment.errors import ConfigError, SegmentError
from segment.features import FeatureEncoder
from segment.pipeline import distinct_rows, fit_segmentation
from segment.synthetic import planted_cohort


def _cohort(tmp_path, **kwargs):
    synthetic = planted_cohort(**kwargs)
    csv, book = synthetic.write(tmp_path)
    return synthetic, load_cohort(csv, book)


def _config(**sections):
    return ExperimentConfig().replace({"reduce.n_components": 3, "cluster.gmm.k": [1, 6], "cluster.gmm.n_init": 1,
                                       "cluster.kmeans.k": 3,
                                       **{dotted.replace("__", "."): v for dotted, v in sections.items()}})


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp("planted"), n=300, k=3, separation=3.0, seed=5,
                   dont_know_share=0.02)


def test_planted_archetypes_are_recovered_by_hdbscan_and_kmeans(planted):
    synthetic, cohort = planted
    seg = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=1)
    assert seg.hdbscan.n_clusters == 3
    assert adjusted_rand_score(synthetic.truth, seg.labels("hdbscan")) >= 0.9
    assert adjusted_rand_score(synthetic.truth, seg.labels("kmeans")) >= 0.9


def test_planted_archetypes_are_recovered_by_the_gaussian_mixture(planted):
    # a mixture of spherical Gaussians in the scaled feature space: BIC selects k = 3
    synthetic, cohort = planted
    cfg = _config(cluster__gmm__space="features", cluster__gmm__covariance_types=["spherical"])
    seg = fit_segmentation(cohort.features, cohort.codebook, cfg, seed=1)
    assert seg.gmm.k == 3
    assert adjusted_rand_score(synthetic.truth, seg.labels("gmm")) >= 0.9


def test_predict_places_each_new_respondent_on_its_own(planted):
    _, cohort = planted
    seg = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=1)
    new = cohort.features.iloc[:40]
    batch = seg.predict(new)
    assert batch.index.equals(new.index)
    pd.testing.assert_frame_equal(pd.concat([seg.predict(new.iloc[[i]]) for i in range(5)]), batch.iloc[:5])
    # respondents the model was fitted on land on their own answer patterns, in their own archetypes
    assert (batch["distance_to_training"] == 0).all()
    for method, column in (("hdbscan", "hdbscan_label"), ("kmeans", "kmeans_cluster")):
        assert (batch[column].to_numpy() == seg.labels(method)[:40]).mean() >= 0.95
    with pytest.raises(SegmentError, match="lacks 1 of"):
        seg.predict(new.drop(columns=new.columns[0]))


def test_same_seed_same_labels_other_seed_runs_too(planted):
    _, cohort = planted
    a = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=7)
    b = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=7)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    pd.testing.assert_frame_equal(a.labels_frame(), b.labels_frame())


def test_identical_answers_get_the_same_archetype_from_every_method(tmp_path):
    synthetic, cohort = _cohort(tmp_path, n=120, k=3, seed=9)
    # every respondent answers exactly like some other respondent, 5 copies of a few
    features = pd.concat([cohort.features, cohort.features.iloc[:40],
                          *[cohort.features.iloc[:3]] * 5])
    features.index = pd.RangeIndex(len(features))
    seg = fit_segmentation(features, cohort.codebook, _config(), seed=3)
    assert len(seg.X) == 120
    labels = seg.labels_frame()
    keys = features.astype(str).agg("|".join, axis=1)
    for method in labels.columns:
        per_pattern = labels[method].groupby(keys.to_numpy()).nunique()
        assert per_pattern.max() == 1, method


def test_distinct_rows_round_trip():
    X = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], float)
    distinct, inverse = distinct_rows(X)
    np.testing.assert_array_equal(distinct, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(distinct[inverse], X)


def test_encoder_keeps_indicators_unscaled_and_imputes_missing_categories():
    frame = pd.DataFrame({
        "likert": [1.0, 2.0, 3.0, 4.0, np.nan, 5.0],
        "colour": ["red", "blue", np.nan, "red", "blue", "red"],
        "apps": [("a",), ("a", "b"), (), ("b",), np.nan, ("a", "b")],
    })
    enc = FeatureEncoder(numeric=["likert"], categorical={"colour": ["red", "blue"]},
                         multiselect={"apps": ["a", "b"]}, categorical_weight=0.5, knn_neighbors=2)
    X = pd.DataFrame(enc.fit_transform(frame), columns=enc.get_feature_names_out())
    assert list(X.columns) == ["likert", "colour=red", "colour=blue", "apps=a", "apps=b", "apps_count"]
    assert set(np.unique(X[["apps=a", "apps=b"]].iloc[[0, 1, 2, 3, 5]])) == {0.0, 1.0}
    assert set(np.unique(X[["colour=red", "colour=blue"]].iloc[[0, 1, 3, 4, 5]])) == {0.0, 0.5}
    assert not X.isna().any().any()                      # imputed, not left missing
    assert abs(X["apps_count"].iloc[[0, 1, 2, 3, 5]].mean()) < 0.5
    observed = X["likert"].iloc[[0, 1, 2, 3, 5]]
    assert observed.iloc[0] < observed.iloc[1] < observed.iloc[2]   # scaled, order kept


def test_min_cluster_size_as_a_share_of_respondents():
    assert resolve_min_cluster_size(0.05, 5000) == 250
    assert resolve_min_cluster_size(15, 5000) == 15
    for bad in (1, 0.0, 1.5, -3, "ten", True):
        with pytest.raises(ValueError, match="min_cluster_size"):
            resolve_min_cluster_size(bad, 100)
        with pytest.raises(ConfigError, match="config key 'cluster.hdbscan.min_cluster_size'"):
            ExperimentConfig().replace({"cluster.hdbscan.min_cluster_size": bad})


def test_hdbscan_noise_and_soft_assignment_reported_beside_labels():
    rng = np.random.default_rng(0)
    E = np.vstack([rng.normal(0, 0.3, (60, 2)), rng.normal(5, 0.3, (60, 2)), rng.uniform(-3, 8, (15, 2))])
    res = fit_hdbscan(E, min_cluster_size=10, assign_noise=True)
    assert res.n_clusters == 2 and 0 < res.noise_share < 0.2
    noise = res.labels == -1
    assert (res.soft_labels[noise] >= 0).all()                 # assigned beside ...
    np.testing.assert_array_equal(res.soft_labels[~noise], res.labels[~noise])
    assert (res.labels[noise] == -1).all()                     # ... never instead


def test_fewer_respondents_than_min_cluster_size_means_no_archetypes():
    res = fit_hdbscan(np.random.default_rng(0).normal(size=(8, 2)), min_cluster_size=10)
    assert res.n_clusters == 0 and res.noise_share == 1.0


def test_gmm_table_and_edge_of_range_warning():
    rng = np.random.default_rng(1)
    E = np.vstack([rng.normal(c, 0.2, (50, 2)) for c in (0, 3, 6, 9)])
    res = select_gmm(E, k=(1, 3), covariance_types=("full",), random_state=0)
    assert list(res.table.columns) == ["k", "covariance_type", "log_likelihood", "n_parameters", "aic",
                                       "bic", "icl", "entropy", "smallest_share", "converged",
                                       "degenerate", "selected"]
    assert res.k == 3 and any("largest searched" in w for w in res.warnings)
    wide = select_gmm(E, k=(1, 6), covariance_types=("full",), random_state=0)
    assert wide.k == 4 and not any("largest searched" in w for w in wide.warnings)
    row = wide.table[wide.table.selected].iloc[0]
    assert row.icl >= row.bic and 0.9 < row.entropy <= 1.0


def test_degenerate_component_is_flagged():
    rng = np.random.default_rng(2)
    # one cluster constant on the second dimension: its variance collapses
    E = np.vstack([np.c_[rng.normal(0, 1, 80), rng.normal(0, 1, 80)],
                   np.c_[rng.normal(8, 1, 80), np.full(80, 3.0)]])
    res = select_gmm(E, k=(2, 2), covariance_types=("diag",), random_state=0)
    assert bool(res.table.degenerate.iloc[0])
    assert any("degenerate" in w for w in res.warnings)


@pytest.mark.parametrize("param, value, message", [
    ("scaler", "minmax", "scaler must be one of standard, robust; got 'minmax'"),
    ("imputer", "mean", "imputer must be one of knn, median, drop; got 'mean'"),
    ("knn_neighbors", 0, "knn_neighbors must be an int >= 1; got 0"),
])
def test_encoder_rejects_a_bad_parameter_in_its_own_words(param, value, message):
    """The config's rules speak of config keys (tests/test_cli.py); the estimator, called directly,
    names its own parameter, as a scikit-learn estimator does."""
    frame = pd.DataFrame({"likert": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=message) as raised:
        FeatureEncoder(numeric=["likert"], **{param: value}).fit(frame)
    assert "features." not in str(raised.value) and "config key" not in str(raised.value)


class _CountingPool:
    """A local pool that records what is submitted to it."""

    def __init__(self, pool):
        self.pool, self.submitted, self.processes = pool, [], []

    def submit(self, fn, *args):
        self.submitted.append(args[0].__name__)
        future = self.pool.submit(fn, *args)
        self.processes = list((self.pool._processes or {}).values())
        return future

    def __getattr__(self, name):
        return getattr(self.pool, name)


def test_the_mixture_and_kmeans_fitted_beside_umap_in_a_worker_give_the_same_numbers(planted, monkeypatch):
    import segment.executors as executors
    import segment.pipeline as pipeline

    _, cohort = planted
    monkeypatch.setattr(pipeline, "FIT_ASIDE_FROM", 100)
    alone = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=4)
    pools = []
    real = executors.local_pool
    monkeypatch.setattr(executors, "local_pool", lambda n: pools.append(_CountingPool(real(n))) or pools[-1])
    beside = fit_segmentation(cohort.features, cohort.codebook, _config(), seed=4, workers=2)
    assert [p.submitted for p in pools] == [["_mixture", "_kmeans"]]
    assert beside.gmm.k == alone.gmm.k >= 2
    np.testing.assert_array_equal(beside.gmm.posteriors, alone.gmm.posteriors)
    np.testing.assert_array_equal(beside.labels("kmeans"), alone.labels("kmeans"))
    np.testing.assert_array_equal(beside.labels("hdbscan"), alone.labels("hdbscan"))


def test_a_fit_that_fails_beside_the_workers_stops_them(planted, monkeypatch):
    import segment.executors as executors
    import segment.pipeline as pipeline

    _, cohort = planted
    monkeypatch.setattr(pipeline, "FIT_ASIDE_FROM", 100)
    pools = []
    real = executors.local_pool
    monkeypatch.setattr(executors, "local_pool", lambda n: pools.append(_CountingPool(real(n))) or pools[-1])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fit_umap", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_segmentation(cohort.features, cohort.codebook, _config(), seed=4, workers=2)
    assert pools[0].submitted == ["_mixture", "_kmeans"] and pools[0].processes
    assert not any(p.is_alive() for p in pools[0].processes)

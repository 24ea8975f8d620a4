"""A clustering method added through the registry alone runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segment.experiment import run_experiment
from segment.synthetic import experiment_toml, planted_cohort
from segment.vocabulary import Method, register, unregister


def _fit(points, random_state):
    """Two archetypes: either side of the median of the points' first coordinate."""
    cut = float(np.median(points[:, 0]))
    return cut, (points[:, 0] > cut).astype(int)


def _predict(cut, points):
    return (points[:, 0] > cut).astype(int)


TOY = Method("halves", "Median split", "halves_cluster", None, "features", False, "Halves",
             fit=_fit, predict=_predict)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister(TOY.name)


def test_a_registered_clusterer_is_fitted_resampled_profiled_and_reported(tmp_path, toy):
    cohort = planted_cohort(n=240, k=3, separation=3.0, outcome_means={"anxiety": [0.0, 1.0, -1.0]}, seed=4)
    csv, book = cohort.write(tmp_path)
    (tmp_path / "exp.toml").write_text(experiment_toml(
        csv.name, book.name, "runs", extra='[profile]\noutcomes = ["anxiety"]\n[stability]\nresamples = 4\n'
                                          'null_cohorts = 3\nn_jobs = 2\n'))
    run = run_experiment(tmp_path / "exp.toml")
    folder = run.path

    assignments = pd.read_csv(folder / "assignments.csv")
    assert set(assignments["halves_cluster"].dropna().unique()) == {0, 1}
    seg = run.segmentation  # the toy's split: the median of the first scaled feature over answer patterns
    expected = (seg.X[:, 0] > np.median(seg.X[:, 0])).astype(int)[seg.inverse]
    assert (assignments.set_index("respondent").loc[seg.ids, "halves_cluster"].to_numpy() == expected).all()

    stability = pd.read_csv(folder / "stability.csv")
    halves = stability[stability["method"] == "halves"]
    assert len(halves) == 2 and halves["mean_jaccard"].between(0, 1).all()
    resamples = pd.read_csv(folder / "resamples.csv")
    assert "halves" in set(resamples["method"])

    profiles = pd.read_csv(folder / "profiles.csv")
    assert {0, 1} <= set(profiles.loc[profiles["method"] == "halves", "archetype"])
    assert "halves" in set(pd.read_csv(folder / "tests.csv")["method"])

    # fit and predict side by side: the fitted model assigns the same respondents to the same halves
    placed = seg.predict(run.cohort.features.loc[seg.ids])
    assert (placed["halves_cluster"].to_numpy() == expected).all()

    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "Median split" in html
    metrics = json.loads((folder / "metrics.json").read_text())
    assert any(r["method"] == "halves" for r in metrics["indices"])


def test_registering_needs_fit_predict_and_a_new_name(toy):
    from segment.vocabulary import ARCHETYPE_METHODS, METHODS

    assert ARCHETYPE_METHODS[-1] == "halves" and METHODS["halves"] is toy
    with pytest.raises(ValueError, match="registered already"):
        register(toy)
    with pytest.raises(ValueError, match="fit and predict"):
        register(Method("other", "Other", "other_cluster", None, "features", False, "Other"))
    with pytest.raises(ValueError, match="not a registered method"):
        unregister("kmeans")

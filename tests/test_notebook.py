"""The notebook view: the verdict first, the archetypes per method, grouped notes."""

import pandas as pd

from segment.report._notebook import archetype_counts, group_notes, summary_html, verdict_sentence
from segment.stability import StabilityResult


def _stability(verdicts, mean_j, null_ref=0.7):
    return pd.DataFrame({"method": [m for m, _ in verdicts], "archetype": range(len(verdicts)),
                         "mean_jaccard": mean_j, "null_reference": null_ref, "verdict": [v for _, v in verdicts]})


STRUCTURE = pd.DataFrame({"method": ["hdbscan", "kmeans"], "observed": [0.62, 0.91], "null_cohorts": [60, 60],
                          "p_value": [0.41, 0.2], "reject": [False, False]})


def test_no_stable_archetype_says_continuum_with_its_numbers():
    st = _stability([("hdbscan", "weak"), ("kmeans", "borderline")], [0.62, 0.91])
    text = verdict_sentence(st, STRUCTURE, {"hdbscan": 1, "kmeans": 1})
    assert text.startswith("No archetype in this cohort is more reproducible than structure-free data")
    assert "K-Means: best archetype's mean Jaccard 0.91, p = 0.200 against 60 structure-free cohorts" in text
    assert text.endswith("slices of a continuum.")


def test_stable_archetypes_are_counted_per_method():
    st = _stability([("hdbscan", "stable"), ("hdbscan", "stable"), ("hdbscan", "weak"), ("gmm", "stable")],
                    [0.95, 0.9, 0.6, 0.88])
    text = verdict_sentence(st, STRUCTURE, {"hdbscan": 3, "gmm": 1})
    assert text.startswith("3 archetypes are stable: HDBSCAN 2 of 3 (mean Jaccard 0.95, 0.90); "
                           "Gaussian mixture 1 of 1 (mean Jaccard 0.88)")


def test_unassessed_and_empty():
    assert verdict_sentence(pd.DataFrame(), pd.DataFrame(), {"gmm": 0}) == "No method found archetypes in this cohort."
    assert "not assessed" in verdict_sentence(pd.DataFrame(), pd.DataFrame(), {"hdbscan": 4})


def test_a_mixture_with_one_component_has_no_archetypes():
    sizes = pd.DataFrame({"method": ["gmm", "hdbscan", "hdbscan"], "archetype": [0, 0, -1],
                          "group": ["archetype", "archetype", "noise"]})
    assert archetype_counts(sizes) == {"gmm": 0, "hdbscan": 1}


def test_notes_repeated_per_method_and_outcome_are_shown_once():
    notes = ["481 respondents in the cohort; 481 analysed, 0 excluded.",
             "hdbscan, anxiety: covariate 'age' is missing for 12 respondents; left out.",
             "hdbscan, sleep: covariate 'age' is missing for 12 respondents; left out.",
             "kmeans, anxiety: covariate 'age' is missing for 12 respondents; left out.",
             "Feature 'x' has a rank correlation of 0.53 with the outcome 'anxiety'."]
    grouped = group_notes(notes)
    assert grouped == [notes[1] + " (likewise for hdbscan, sleep; kmeans, anxiety)", notes[4]]


def test_stability_result_shows_verdict_before_tables():
    st = _stability([("hdbscan", "weak"), ("kmeans", "borderline")], [0.62, 0.91])
    res = StabilityResult(stability=st, respondent_stability=pd.DataFrame(), resamples=pd.DataFrame(),
                          jaccard=pd.DataFrame(), null_jaccard=pd.DataFrame(), structure_test=STRUCTURE,
                          summary=["K-Means: 0 of 1 archetypes stable (mean Jaccard ≥ 0.75 over 4 subsamples)."])
    html = res._repr_html_()
    assert html.index("No archetype in this cohort") < html.index("<table") < html.index("Test of structure")
    assert "<td>1 weak</td>" in html and "<td>1 borderline</td>" in html
    assert "0 of 1 archetypes stable" not in html     # restated by the table, not repeated as a note
    assert "Notes" not in summary_html(stability=st, structure=None, counts={"hdbscan": 1}, notes=[])

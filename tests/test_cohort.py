
import pandas as pd
import pytest
from conftest import SMMH

from segment import load_cohort
from segment.errors import SurveyDataError
from segment.synthetic import planted_cohort


@pytest.fixture(scope="module")
def smmh():
    return load_cohort(SMMH / "smmh.csv", SMMH / "codebook.toml")


def test_real_cohort_loads_with_every_answer_mapped(smmh):
    assert smmh.n == 481
    assert not smmh.answers["mapped_to"].eq("missing").any()
    assert smmh.features.notna().all().all()


def test_real_cohort_values(smmh):
    raw = pd.read_csv(SMMH / "smmh.csv", dtype=str, keep_default_na=False)
    time_col = "8. What is the average time you spend on social media every day?"
    assert raw.loc[0, time_col] == "Between 2 and 3 hours"
    assert smmh.features.loc[1, "daily_time"] == 2.5
    less = raw.index[raw[time_col] == "Less than an Hour"][0] + 1
    assert smmh.features.loc[less, "daily_time"] == 0.5
    # a gender variant with a trailing space
    nonbinary = raw.index[raw["2. Gender"] == "Nonbinary "][0] + 1
    assert smmh.covariates.loc[nonbinary, "gender"] == "nonbinary"
    nb = raw.index[raw["2. Gender"] == "NB"][0] + 1
    assert smmh.covariates.loc[nb, "gender"] == "nonbinary"
    # a multiselect answer becomes its options
    assert smmh.features.loc[1, "platforms"] == (
        "facebook", "twitter", "instagram", "youtube", "discord", "reddit")
    # "N/A" in organisations is a real answer: no affiliation
    org = "5. What type of organizations are you affiliated with?"
    na_row = raw.index[raw[org] == "N/A"][0] + 1
    assert smmh.covariates.loc[na_row, "organisations"] == "none"
    gov = raw.index[raw[org] == "Goverment"][0] + 1
    assert smmh.covariates.loc[gov, "organisations"] == "government"
    assert smmh.outcomes.loc[1, "anxiety"] == float(raw.iloc[0, 13])


def test_identifiers_are_dropped_at_load(smmh):
    for frame in (smmh.features, smmh.outcomes, smmh.covariates):
        assert "timestamp" not in frame.columns
    assert "timestamp" not in set(smmh.answers["name"])


def test_dont_know_becomes_missing_never_a_high_score():
    synthetic = planted_cohort(n=200, dont_know_share=0.1, seed=2)
    cohort = load_cohort(synthetic.answers, _codebook(synthetic))
    dont_know = synthetic.answers["Q1"].eq("Don't know").to_numpy()
    assert dont_know.sum() > 0
    assert cohort.features["item_1"].isna().to_numpy()[dont_know].all()
    assert cohort.features["item_1"].notna().to_numpy()[~dont_know].all()


def _codebook(synthetic, tmp=None):
    import tempfile
    from pathlib import Path
    path = Path(tempfile.mkdtemp()) / "cb.toml"
    path.write_text(synthetic.codebook)
    return path


def test_unmapped_answer_names_column_value_count_and_rows():
    synthetic = planted_cohort(n=40, seed=1)
    synthetic.answers.loc[[3, 17], "Q2"] = "Sometimse"
    with pytest.raises(SurveyDataError) as err:
        load_cohort(synthetic.answers, _codebook(synthetic))
    message = str(err.value)
    assert "column 'Q2'" in message and "'Sometimse'" in message and "rows 4, 18" in message


def test_codebook_column_missing_from_file_is_named():
    synthetic = planted_cohort(n=40, seed=1)
    with pytest.raises(SurveyDataError, match=r"missing from the file:\s+Q3"):
        load_cohort(synthetic.answers.drop(columns=["Q3"]), _codebook(synthetic))


def test_numeric_out_of_range_is_named():
    synthetic = planted_cohort(n=40, seed=1)
    synthetic.answers.loc[5, "age"] = 240
    with pytest.raises(SurveyDataError,
                       match=r"column 'age': value '240' is outside the valid range \[10, 100\] \(row 6\)"):
        load_cohort(synthetic.answers, _codebook(synthetic))


def test_duplicated_respondent_id_and_resubmission_policies():
    synthetic = planted_cohort(n=40, seed=1)
    answers = synthetic.answers
    exact = answers.iloc[[0]]
    changed = answers.iloc[[1]].copy()
    changed["Q1"] = "Never" if changed["Q1"].iloc[0] != "Never" else "Often"
    doubled = pd.concat([answers, exact, changed], ignore_index=True)
    book = _codebook(synthetic)
    with pytest.raises(SurveyDataError, match="respondent id.*more than once.*resubmissions"):
        load_cohort(doubled, book)
    with pytest.raises(SurveyDataError, match="S000001"):  # the changed one is no exact copy
        load_cohort(doubled, book, resubmissions="drop_exact")
    kept = load_cohort(doubled, book, resubmissions="keep_last")
    assert kept.n == 40 and kept.resubmissions == {"policy": "keep_last", "rows_removed": 2}
    assert kept.features.loc["S000001", "item_1"] == {"Never": 1, "Often": 4}[changed["Q1"].iloc[0]]


def test_columns_the_codebook_does_not_mention_are_warned_about():
    synthetic = planted_cohort(n=40, seed=1, extra_columns={"free comment": ["x"] * 40})
    with pytest.warns(UserWarning, match="not in the codebook.*'free comment'"):
        load_cohort(synthetic.answers, _codebook(synthetic))

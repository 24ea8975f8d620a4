"""`segment codebook draft`: a codebook guessed from a survey file."""

import sys

import pandas as pd

from segment.cli import main
from segment.codebook import load_codebook
from segment.cohort import load_cohort
from segment.draft import draft_codebook
from segment.scenarios import Scenario, make_cohort

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from conftest import SMMH


def _draft(survey, tmp_path, **kwargs):
    path = tmp_path / "draft.toml"
    path.write_text(draft_codebook(survey, **kwargs), encoding="utf-8")
    return path


def _order(item) -> list:
    """The answers of a likert or ordinal item, lowest value first."""
    return [text for text, _ in sorted(item.values.items(), key=lambda kv: kv[1])]


def test_bundled_cohort_draft_loads_and_matches_the_shipped_orders(tmp_path):
    path = _draft(SMMH / "smmh.csv", tmp_path)
    draft = load_codebook(path)
    cohort = load_cohort(SMMH / "smmh.csv", draft)
    assert cohort.n == 481
    shipped = load_codebook(SMMH / "codebook.toml")
    by_column = {it.column: it for it in draft.items}
    compared = 0
    for item in shipped.items:
        if item.type not in ("likert", "ordinal"):
            continue
        guess = by_column[item.column]
        assert (guess.role, guess.type) == (item.role, item.type), item.column
        assert _order(guess) == _order(item), item.column
        compared += 1
    assert compared == 13                       # 12 Likert items and the daily time ranges
    assert by_column["Timestamp"].role == "identifier"
    assert "timestamp" not in cohort.features.columns and "timestamp" not in cohort.covariates.columns
    organisations = by_column["5. What type of organizations are you affiliated with?"]
    # "N/A" chosen beside other organisations is an option, not a missing code
    assert organisations.type == "multiselect" and "N/A" in organisations.categories
    assert "n/a" not in organisations.missing


def test_planted_cohort_draft_loads_without_edits(tmp_path):
    truth = make_cohort(Scenario(n=300), seed=0)
    csv, _ = truth.write(tmp_path, "cohort")
    draft = load_codebook(_draft(csv, tmp_path))
    cohort = load_cohort(csv, draft)
    assert cohort.n == 300
    assert list(cohort.ids[:2]) == ["R000000", "R000001"]          # the id column was found
    items = {it.column: it for it in draft.items}
    assert items["Q1"].type == items["Q10"].type == "likert"
    assert _order(items["Q1"]) == ["never", "rarely", "sometimes", "often", "very often"]
    assert items["daily_time"].type == "ordinal"
    assert items["platforms"].type == "multiselect"
    assert {items[f"{o}_score"].role for o in ("anxiety", "depression", "sleep")} == {"outcome"}
    assert cohort.features["q1"].isna().sum() == (truth.answers["Q1"] == "Don't know").sum()
    assert set(cohort.covariates["gender"].dropna()) == {"Female", "Male", "Non-binary"}


KNOWN = pd.DataFrame({
    "Respondent ID": [f"P{i:03d}" for i in range(12)],
    "E-mail": [f"person{i}@example.org" for i in range(12)],
    "Name": ["Ann Lee", "Bo Chen", "Cy Diaz", "Di Egan", "Ed Fox", "Flo Gray", "Gus Hale", "Hal Ives",
             "Ida Jay", "Jo King", "Kim Lowe", "Lu Moss"],
    "Submitted": [f"2024-03-{d:02d} 09:{d:02d}:00" for d in range(1, 13)],
    "I enjoy my work": ["Agree", "Strongly agree", "Disagree", "Don't know", "Agree", "Strongly disagree",
                        "agree", "Agree", "Disagree", "Strongly agree", "Agree", "Disagree"],
    "Which apps do you use?": ["Facebook; Instagram", "Instagram", "TikTok; Instagram", "Facebook",
                               "facebook; TikTok", "Instagram", "TikTok", "Facebook; Instagram; TikTok",
                               "Instagram", "Facebook", "TikTok; Facebook", "Instagram"],
    "Age": ["34", "29", "41", "52", "23", "38", "61", "45", "30", "27", "36", "49"],
    "Gender": ["Male", "male ", "M", "Female", "Female", "F", "Male", "Female", "Male", "female",
               "Prefer not to say", "Male"],
    "Worried in the last two weeks": ["Not at all", "Several days", "2", "Nearly every day", "0",
                                      "More than half the days", "Not at all", "1.0", "Several days",
                                      "Not at all", "3", "Several days"],
    "Sessions per week": ["1.0", "2.0", "3.0", "4.0", "5.0", "2.0", "3.0", "1.0", "4.0", "5.0", "3.0", "2.0"],
})


def test_guesses_on_a_file_with_known_answers(tmp_path):
    csv = tmp_path / "known.csv"
    KNOWN.to_csv(csv, index=False)
    text = draft_codebook(csv)
    columns = {t["column"]: t for t in tomllib.loads(text)["column"]}
    assert columns["Respondent ID"]["role"] == "id"
    for header in ("E-mail", "Name", "Submitted"):
        assert columns[header]["role"] == "identifier", header
    work = columns["I enjoy my work"]
    # no middle answer given: the four-point agreement scale
    assert work["type"] == "likert" and work["levels"] == ["Strongly disagree", "Disagree", "Agree",
                                                          "Strongly agree"]
    assert '"Agree",  # 5' in text                       # "Agree" 4 and "agree" 1, counted together
    apps = columns["Which apps do you use?"]
    assert apps["type"] == "multiselect" and apps["separator"] == ";"
    assert sorted(apps["options"]) == ["Facebook", "Instagram", "TikTok"]
    age = columns["Age"]
    assert (age["type"], age["role"], age["range"]) == ("numeric", "covariate", [23, 61])
    gender = columns["Gender"]
    assert gender["type"] == "categorical" and gender["categories"] == ["Male", "Female"]
    assert gender["aliases"] == {"male": "Male", "M": "Male", "F": "Female", "female": "Female"}
    worry = columns["Worried in the last two weeks"]
    assert worry["role"] == "outcome" and worry["values"] == [0, 1, 2, 3] and worry["numeric_codes"]
    sessions = columns["Sessions per week"]
    assert sessions["type"] == "likert" and sessions["levels"] == ["1", "2", "3", "4", "5"]

    book = tmp_path / "known.toml"
    book.write_text(text, encoding="utf-8")
    cohort = load_cohort(csv, book)
    assert list(cohort.ids[:2]) == ["P000", "P001"]
    for header in ("E-mail", "Name", "Submitted"):
        assert not any(KNOWN[header].isin(frame.astype(str).stack()).any()
                       for frame in (cohort.features, cohort.outcomes, cohort.covariates))
    assert cohort.covariates["gender"].fillna("-").tolist() == (
        ["Male"] * 3 + ["Female"] * 3 + ["Male", "Female", "Male", "Female", "-", "Male"])
    assert cohort.features["enjoy_work"].isna().sum() == 1   # "Don't know" is no answer
    assert cohort.outcomes["worried_last_two_weeks"].tolist() == [0, 1, 2, 3, 0, 2, 0, 1, 1, 0, 3, 1]


def test_na_is_a_missing_code_flagged_as_possibly_real(tmp_path):
    csv = tmp_path / "na.csv"
    pd.DataFrame({"Pet": ["Dog", "Cat", "N/A", "Dog", "Cat", "N/A"]}).to_csv(csv, index=False)
    text = draft_codebook(csv)
    assert "N/A" in tomllib.loads(text)["missing"]["codes"]
    assert 'CHECK: "N/A" is read as no answer' in text


def test_unknown_ordered_answers_are_marked_for_checking(tmp_path):
    csv = tmp_path / "order.csv"
    answers = ["Not so much", "Quite a lot", "Very much", "A little"] * 3
    pd.DataFrame({"Support": answers}).to_csv(csv, index=False)
    text = draft_codebook(csv)
    assert text.index("CHECK THE ORDER") < text.index('column = "Support"')
    assert tomllib.loads(text)["column"][0]["type"] == "categorical"


def test_spss_value_labels_give_the_order(tmp_path):
    import pyreadstat

    sav = tmp_path / "labels.sav"
    frame = pd.DataFrame({"support": [1.0, 3.0, 2.0, 2.0, 3.0, 1.0, 9.0]})
    pyreadstat.write_sav(frame, str(sav), variable_value_labels={
        "support": {1.0: "Not satisfied", 2.0: "Somewhat satisfied", 3.0: "Very satisfied",
                    9.0: "Don't know"}})
    (column,) = tomllib.loads(draft_codebook(sav))["column"]
    assert column["type"] == "likert"
    assert column["levels"] == ["Not satisfied", "Somewhat satisfied", "Very satisfied"]
    assert column["values"] == [1, 2, 3]


def test_cli_prints_the_draft_and_refuses_a_missing_file(tmp_path, capsys):
    assert main(["codebook", "draft", str(SMMH / "smmh.csv")]) == 0
    out, _ = capsys.readouterr()
    assert tomllib.loads(out)["survey"]["name"] == "smmh"
    assert main(["codebook", "draft", str(tmp_path / "absent.csv")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "absent.csv" in err and "Traceback" not in err
    bad = tmp_path / "broken.xlsx"
    bad.write_text("not a workbook")
    assert main(["codebook", "draft", str(bad)]) == 2
    assert "broken.xlsx" in capsys.readouterr().err


def test_stray_text_in_a_numeric_column_is_a_missing_code_of_that_column(tmp_path):
    csv = tmp_path / "hours.csv"
    hours = [str(h) for h in range(3, 43)] + ["unknown", "Don't know"]
    pd.DataFrame({"Hours worked": hours}).to_csv(csv, index=False)
    path = _draft(csv, tmp_path)
    (item,) = load_codebook(path).items
    assert (item.type, item.range) == ("numeric", (3.0, 42.0))
    assert {"unknown", "don't know"} <= set(item.missing)
    assert load_cohort(csv, path).features["hours_worked"].isna().sum() == 2

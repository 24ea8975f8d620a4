"""Messy exports and codebooks: accepted where the meaning is clear, one message where not."""

import numpy as np
import pandas as pd
import pytest
from conftest import SMMH

from segment import load_cohort
from segment.codebook import load_codebook
from segment.errors import CodebookError, SurveyDataError

INSTRUMENTS = SMMH.parent / "instruments"

BOOK = '''
[[column]]
column = "id"
role = "id"

[[column]]
column = "q1"
role = "feature"
type = "likert"
levels = ["1", "2", "3", "4", "5"]

[[column]]
column = "hours"
role = "feature"
type = "ordinal"
map = { "0" = 0, "1" = 1, "2.5" = 2.5 }

[[column]]
column = "score"
role = "outcome"
type = "numeric"
'''


def _book(tmp_path, text=BOOK):
    path = tmp_path / "book.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _frame(**columns):
    n = len(next(iter(columns.values())))
    base = {"id": [f"r{i}" for i in range(n)], "q1": ["1"] * n, "hours": ["0"] * n, "score": ["1"] * n}
    base.update(columns)
    return pd.DataFrame(base, dtype=object)


def test_float_and_decimal_comma_exports_of_numeric_levels_are_accepted(tmp_path):
    frame = _frame(q1=["2.0", "3,0", np.nan, "5", "04"], hours=["1.0", "2,5", "0", np.nan, "2.50"],
                   score=["1,5", "2", "3.25", np.nan, "0"])
    cohort = load_cohort(frame, _book(tmp_path))
    assert cohort.features["q1"].tolist()[:2] == [2.0, 3.0] and np.isnan(cohort.features["q1"].iloc[2])
    assert cohort.features["q1"].iloc[4] == 4.0
    assert cohort.features["hours"].tolist()[:3] == [1.0, 2.5, 0.0]
    assert cohort.outcomes["score"].iloc[0] == 1.5


def test_unmapped_answer_in_a_column_with_blanks_gets_the_normal_message(tmp_path):
    frame = _frame(q1=["2.5", np.nan, "Often", "1", np.nan])
    with pytest.raises(SurveyDataError) as err:
        load_cohort(frame, _book(tmp_path))
    message = str(err.value)
    assert "column 'q1': answer '2.5' is not in the codebook (row 1)" in message
    assert "column 'q1': answer 'Often' is not in the codebook (row 3)" in message


def test_infinite_number_is_named_not_passed_to_the_fit(tmp_path):
    frame = _frame(score=["1", "inf", np.nan, "-Infinity", "2"])
    with pytest.raises(SurveyDataError) as err:
        load_cohort(frame, _book(tmp_path))
    assert "column 'score': answer 'inf' is not in the codebook (row 2). It is not a finite number" in str(err.value)


def test_header_only_file_is_an_error(tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("id,q1,hours,score\n")
    with pytest.raises(SurveyDataError, match="empty.csv: the file has a header row but no respondents"):
        load_cohort(csv, _book(tmp_path))


def _gad7_book(tmp_path):
    book = tmp_path / "gad.toml"
    columns = ", ".join(f'gad7_{i} = "GAD{i}"' for i in range(1, 8))
    book.write_text('[[column]]\ncolumn = "id"\nrole = "id"\n\n'
                    f'[[instrument]]\nuse = "{INSTRUMENTS / "gad7.toml"}"\nscale_name = "anxiety"\n'
                    f'columns = {{ {columns} }}\n')
    return book


@pytest.mark.parametrize("instrument, n_items", [("gad7", 7), ("phq9", 9)])
def test_instruments_accept_numeric_coding_as_well_as_labels(tmp_path, instrument, n_items):
    book = tmp_path / "book.toml"
    book.write_text(f'[[column]]\ncolumn = "id"\nrole = "id"\n\n[[instrument]]\n'
                    f'use = "{INSTRUMENTS / (instrument + ".toml")}"\n')
    items = [f"{instrument}_{i}" for i in range(1, n_items + 1)]
    frame = pd.DataFrame({"id": ["a", "b", "c"]})
    for j, item in enumerate(items):
        frame[item] = ["3", "2.0" if j % 2 else "Several days", "0,0" if j else np.nan]
    cohort = load_cohort(frame, book)
    scores = cohort.outcomes[instrument]
    assert scores["a"] == 3 * n_items
    assert scores["b"] == sum(2 if j % 2 else 1 for j in range(n_items))
    assert np.isnan(scores["c"])                       # one item blank: the scale needs all
    assert cohort.outcomes.loc["c", f"{instrument}_2"] == 0.0


def test_numeric_code_outside_the_instrument_is_still_refused(tmp_path):
    frame = pd.DataFrame({"id": ["a"], **{f"GAD{i}": ["4"] for i in range(1, 8)}})
    with pytest.raises(SurveyDataError, match="column 'GAD1': answer '4' is not in the codebook"):
        load_cohort(frame, _gad7_book(tmp_path))


@pytest.mark.parametrize("edit, expected", [
    (('levels = ["1", "2", "3", "4", "5"]', 'levels = "1-5"'),
     "column 'q1': 'levels' must be a list of answer texts"),
    (('levels = ["1", "2", "3", "4", "5"]', 'levels = ["1", "2"]\nvalues = "1, 2"'),
     "column 'q1': 'values' must be a list of numbers; got '1, 2'"),
    (('type = "numeric"', 'type = "numeric"\nrange = [0, "ten"]'),
     "column 'score': 'range' must be [low, high] with two numbers"),
    (('type = "numeric"', 'type = "categorical"\ncategories = 3'),
     "column 'score': 'categories' must be a list of answer texts"),
    (('role = "outcome"', 'role = "outcome"\nmissing = "Don\'t know"'),
     "column 'score': 'missing' must be a list of answer texts, e.g. [\"Never\", \"Rarely\"]; got \"Don't know\""),
    (('type = "numeric"', 'type = "numeric"\nreverse = "yes"'), "column 'score': 'reverse' must be true or false"),
    (('map = { "0" = 0, "1" = 1, "2.5" = 2.5 }', 'map = { "0" = "none" }'),
     "column 'hours': 'map' must be a table of answer = number"),
    (('', '[[scale]]\nname = "s"\nitems = ["q1"]\nmin_answered = "all"\n'),
     "scale 's': 'min_answered' must be an integer; got 'all'"),
    (('', '[[scale]]\nname = "s"\nitems = ["q1"]\ncutoffs = [5, 10]\n'),
     "scale 's': 'cutoffs' must be a list of [threshold, label] pairs"),
    ((None, 'column = "oops"\n'), "the top level: 'column' must be an array of tables"),
    ((None, '[missing]\ncodes = "NA"\n' + BOOK), "[missing]: 'codes' must be a list of answer texts"),
])
def test_codebook_values_of_the_wrong_type_are_named(tmp_path, edit, expected):
    old, new = edit
    text = new if old is None else BOOK.replace(old, new, 1) if old else BOOK + new
    with pytest.raises(CodebookError) as err:
        load_codebook(_book(tmp_path, text))
    assert expected in str(err.value)


def test_xlsx_sheet_is_chosen_and_named(tmp_path):
    from segment.config import config_from_dict
    from segment.experiment import prepare

    xlsx = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(xlsx) as writer:
        pd.DataFrame({"note": ["exported 2024"]}).to_excel(writer, sheet_name="About", index=False)
        _frame(q1=["1", "2", "3"]).to_excel(writer, sheet_name="Data", index=False)
    book = _book(tmp_path)
    with pytest.raises(SurveyDataError) as err:
        load_cohort(xlsx, book)
    assert "cohort.xlsx (sheet 'About'): 4 column(s) of the codebook are missing" in str(err.value)
    assert load_cohort(xlsx, book, sheet="Data").features["q1"].tolist() == [1.0, 2.0, 3.0]
    config = config_from_dict({"experiment": {"cohort": str(xlsx), "codebook": str(book), "sheet": 1}})
    assert prepare(config).cohort.n == 3

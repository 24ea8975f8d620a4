import numpy as np
import pandas as pd
import pytest
from conftest import SMMH

from segment import load_codebook, load_cohort
from segment.errors import CodebookError

INSTRUMENTS = SMMH.parent / "instruments"


def test_bundled_codebook_covers_every_column_of_the_real_cohort():
    book = load_codebook(SMMH / "codebook.toml")
    header = pd.read_csv(SMMH / "smmh.csv", nrows=0).columns
    assert [it.column for it in book.items] == list(header)
    assert {s.name for s in book.scales} == {"anxiety", "depression", "sleep"}
    roles = {it.name: it.role for it in book.items}
    assert roles["worries"] == roles["depressed"] == roles["sleep_issues"] == "outcome"
    assert roles["gender"] == roles["age"] == "covariate"
    assert roles["timestamp"] == "identifier"


def test_unknown_key_is_named_with_the_closest_valid_one(tmp_path):
    path = tmp_path / "book.toml"
    path.write_text('[[column]]\ncolumn = "Q1"\nname = "q1"\nrole = "feature"\ntype = "likert"\n'
                    'levels = ["1", "2"]\nrevers = true\n')
    with pytest.raises(CodebookError, match=r"unknown key 'revers'.*Did you mean 'reverse'"):
        load_codebook(path)


def test_missing_code_that_is_also_an_answer_is_refused(tmp_path):
    path = tmp_path / "book.toml"
    path.write_text('[[column]]\ncolumn = "Q1"\nname = "q1"\nrole = "feature"\ntype = "categorical"\n'
                    'categories = ["yes", "no", "N/A"]\nmissing = ["N/A"]\n')
    with pytest.raises(CodebookError, match="both a missing code and a valid answer"):
        load_codebook(path)


def _gad7_cohort(tmp_path, answers):
    book = tmp_path / "cohort.toml"
    columns = ", ".join(f'gad7_{i} = "GAD item {i}"' for i in range(1, 8))
    book.write_text(
        '[[column]]\ncolumn = "id"\nname = "id"\nrole = "id"\n\n'
        '[[column]]\ncolumn = "use"\nname = "use"\nrole = "feature"\ntype = "numeric"\n\n'
        f'[[instrument]]\nuse = "{INSTRUMENTS / "gad7.toml"}"\nscale_name = "anxiety"\n'
        f'columns = {{ {columns} }}\n'
    )
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(answers))], "use": range(len(answers))})
    for i in range(7):
        frame[f"GAD item {i + 1}"] = [row[i] for row in answers]
    return load_cohort(frame, book)


def test_gad7_instrument_scores_sum_and_cutoffs(tmp_path):
    levels = ["Not at all", "Several days", "More than half the days", "Nearly every day"]
    complete = [levels[3]] * 3 + [levels[1]] * 4          # 9 + 4 = 13
    partial = [levels[2]] * 6 + ["Don't know"]             # one item unanswered
    cohort = _gad7_cohort(tmp_path, [complete, partial])
    assert cohort.outcomes.loc["r0", "anxiety"] == 13
    assert np.isnan(cohort.outcomes.loc["r1", "anxiety"])   # GAD-7 needs all 7 items
    assert cohort.codebook.cutoffs()["anxiety"] == [(5.0, "mild"), (10.0, "moderate"), (15.0, "severe")]


def test_phq9_instrument_defines_nine_items_and_four_bands():
    from segment.codebook import _read_toml
    doc = _read_toml(INSTRUMENTS / "phq9.toml")
    assert len(doc["column"]) == 9
    assert [c[0] for c in doc["scale"][0]["cutoffs"]] == [5, 10, 15, 20]

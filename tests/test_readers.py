"""Tests for segment.readers: survey files of every format as answer text."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from segment.errors import SegmentError, SurveyDataError
from segment.readers import file_sha256, read_survey


def _assert_answer_frame(df: pd.DataFrame) -> None:
    assert isinstance(df.index, pd.RangeIndex)
    assert list(df.index) == list(range(len(df)))
    for name in df.columns:
        assert df[name].dtype == object, name
        for value in df[name]:
            assert isinstance(value, str) or pd.isna(value), (name, value)


# ---------------------------------------------------------------- CSV

COMMA = (
    "id,gender,q1,comment\r\n"
    "1,Nonbinary ,N/A,\"fine, thanks\"\r\n"
    "2,Woman,,None\r\n"
    "3,Man,NA,\r\n"
)
SEMICOLON = (
    "id;gender;q1;comment\n"
    "1;Nonbinary ;N/A;fine, thanks\n"
    "2;Woman;;None\n"
    "3;Man;NA;\n"
)


def test_comma_bom_and_semicolon_csv_read_identically(tmp_path):
    comma = tmp_path / "comma.csv"
    comma.write_bytes(b"\xef\xbb\xbf" + COMMA.encode("utf-8"))
    semi = tmp_path / "semi.CSV"
    semi.write_text(SEMICOLON, encoding="utf-8")

    a = read_survey(comma)
    b = read_survey(str(semi))
    pd.testing.assert_frame_equal(a, b)
    _assert_answer_frame(a)

    assert list(a.columns) == ["id", "gender", "q1", "comment"]  # no BOM in "id"
    assert a.attrs["format"] == "csv"
    assert a.loc[0, "gender"] == "Nonbinary "  # trailing space kept
    assert a.loc[0, "q1"] == "N/A"
    assert a.loc[2, "q1"] == "NA"
    assert a.loc[1, "comment"] == "None"
    assert a.loc[0, "comment"] == "fine, thanks"
    assert pd.isna(a.loc[1, "q1"])  # empty cell is missing
    assert pd.isna(a.loc[2, "comment"])
    assert a["id"].tolist() == ["1", "2", "3"]


def test_tab_separated_txt(tmp_path):
    path = tmp_path / "survey.TXT"
    path.write_text("id\tq1\n1\tOften\n2\t\n", encoding="utf-8")
    df = read_survey(path)
    assert list(df.columns) == ["id", "q1"]
    assert df.loc[0, "q1"] == "Often"
    assert pd.isna(df.loc[1, "q1"])


def test_trailing_empty_rows_and_unnamed_empty_columns_dropped(tmp_path):
    path = tmp_path / "excel_saved.csv"
    path.write_text("id,q1,\n1,Yes,\n2,No,\n,,\n,,\n", encoding="utf-8")
    df = read_survey(path)
    assert list(df.columns) == ["id", "q1"]
    assert len(df) == 2


def test_unnamed_column_with_answers_rejected(tmp_path):
    path = tmp_path / "noname.csv"
    path.write_text("id,,q2\n1,Yes,No\n", encoding="utf-8")
    with pytest.raises(SurveyDataError, match="noname.csv.*column 2"):
        read_survey(path)


def test_header_only_csv_gives_empty_frame(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("id,q1\n", encoding="utf-8")
    df = read_survey(path)
    assert list(df.columns) == ["id", "q1"]
    assert len(df) == 0


# ---------------------------------------------------------------- Qualtrics


def test_qualtrics_export_drops_extra_header_rows(tmp_path):
    path = tmp_path / "qualtrics.csv"
    text = (
        "ResponseId,Q1,Q2\n"
        '"Response ID","How often do you exercise?","Gender, as you describe it"\n'
        '"{""ImportId"":""_recordId""}","{""ImportId"":""QID1""}","{""ImportId"":""QID2_TEXT""}"\n'
        "R_1,Never,Nonbinary \n"
        "R_2,Very often,\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    df = read_survey(path)
    _assert_answer_frame(df)
    assert df.attrs["format"] == "qualtrics-csv"
    assert list(df.columns) == ["ResponseId", "Q1", "Q2"]
    assert len(df) == 2
    assert df["Q1"].tolist() == ["Never", "Very often"]
    assert df.loc[0, "Q2"] == "Nonbinary "
    assert pd.isna(df.loc[1, "Q2"])
    assert df.attrs["column_labels"]["Q1"] == "How often do you exercise?"


# ---------------------------------------------------------------- XLSX


def test_xlsx_integral_numbers_read_without_decimal(tmp_path):
    path = tmp_path / "survey.xlsx"
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "score": [3.0, 2.5, np.nan],
            "answer": ["Nonbinary ", "N/A", None],
            "when": [dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2, 9, 30), None],
        }
    )
    frame.to_excel(path, index=False, sheet_name="answers")
    df = read_survey(path)
    _assert_answer_frame(df)
    assert df.attrs["format"] == "xlsx"
    assert list(df.columns) == ["id", "score", "answer", "when"]
    assert df["id"].tolist() == ["1", "2", "3"]
    assert df.loc[0, "score"] == "3"
    assert df.loc[1, "score"] == "2.5"
    assert pd.isna(df.loc[2, "score"])
    assert df.loc[0, "answer"] == "Nonbinary "
    assert df.loc[1, "answer"] == "N/A"
    assert pd.isna(df.loc[2, "answer"])
    assert df.loc[0, "when"] == "2024-03-01"
    assert df.loc[1, "when"] == "2024-03-02T09:30:00"


def test_xlsx_sheet_selection(tmp_path):
    import openpyxl
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "notes"
    wb.active.append(["text"])
    wb.active.append(["hello"])
    ws = wb.create_sheet("data")
    ws.append(["id", "q1"])
    ws.append([7, 4.0])
    wb.save(path)

    assert list(read_survey(path).columns) == ["text"]
    for sheet in ("data", 1):
        df = read_survey(path, sheet=sheet)
        assert df.to_dict("records") == [{"id": "7", "q1": "4"}]
    with pytest.raises(SurveyDataError, match="book.xlsx.*'missing'"):
        read_survey(path, sheet="missing")
    with pytest.raises(SurveyDataError, match="book.xlsx"):
        read_survey(path, sheet=5)


# ---------------------------------------------------------------- SPSS / Stata

LABELS = {"freq": {1: "Never", 2: "Rarely", 5: "Very often"}}


def _stat_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "freq": [1.0, 5.0, 3.0, np.nan],
            "score": [2.5, 4.0, np.nan, 1.0],
            "name": ["Nonbinary ", "Woman", "", "Man"],
        }
    )


def _check_stat(df: pd.DataFrame, fmt: str) -> None:
    _assert_answer_frame(df)
    assert df.attrs["format"] == fmt
    assert list(df.columns) == ["freq", "score", "name"]
    assert df.loc[0, "freq"] == "Never"
    assert df.loc[1, "freq"] == "Very often"
    assert df.loc[2, "freq"] == "3"  # unlabelled value
    assert pd.isna(df.loc[3, "freq"])
    assert df["score"].tolist()[:2] == ["2.5", "4"]
    assert pd.isna(df.loc[2, "score"])
    # SPSS pads strings with blanks, so trailing spaces do not survive there
    assert df.loc[0, "name"] == ("Nonbinary" if fmt == "spss" else "Nonbinary ")
    assert pd.isna(df.loc[2, "name"])  # empty string is missing
    assert df.attrs["column_labels"]["freq"] == "How often?"


def test_spss_value_labels_applied(tmp_path):
    import pyreadstat
    path = tmp_path / "survey.sav"
    pyreadstat.write_sav(
        _stat_frame(),
        str(path),
        column_labels={"freq": "How often?", "score": "Score", "name": "Name"},
        variable_value_labels=LABELS,
    )
    _check_stat(read_survey(path), "spss")


def test_stata_value_labels_applied(tmp_path):
    import pyreadstat
    path = tmp_path / "survey.dta"
    pyreadstat.write_dta(
        _stat_frame(),
        str(path),
        column_labels={"freq": "How often?", "score": "Score", "name": "Name"},
        variable_value_labels=LABELS,
    )
    _check_stat(read_survey(path), "stata")


# ---------------------------------------------------------------- errors


def test_non_utf8_csv_names_file_and_offset(tmp_path):
    path = tmp_path / "latin.csv"
    data = "id,city\n1,Montréal\n".encode("cp1252")
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    with pytest.raises(SurveyDataError, match="latin.csv") as info:
        read_survey(path)
    message = str(info.value)
    assert f"offset {offset}" in message
    assert "UTF-8" in message


def test_unsupported_extension(tmp_path):
    path = tmp_path / "survey.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(SurveyDataError, match=r"survey\.json.*\.csv.*\.xlsx.*\.sav.*\.dta"):
        read_survey(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(SurveyDataError, match="survey file not found: .*nowhere.csv"):
        read_survey(path)


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SurveyDataError, match="empty.csv"):
        read_survey(path)


def test_duplicate_header_names(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("id,q1,q2,q1\n1,a,b,c\n", encoding="utf-8")
    with pytest.raises(SurveyDataError, match="dupes.csv.*'q1'"):
        read_survey(path)


def test_ragged_row_rejected(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,q1\n1,a\n2,b,extra\n", encoding="utf-8")
    with pytest.raises(SurveyDataError, match="ragged.csv"):
        read_survey(path)


def test_errors_are_segment_errors():
    assert issubclass(SurveyDataError, SegmentError)


# ---------------------------------------------------------------- hashing


def test_file_sha256(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 10_000  # several chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    with pytest.raises(SegmentError, match="not found"):
        file_sha256(tmp_path / "missing.bin")

"""segment export: assignments as SPSS, Stata, CSV and XLSX, merged into the survey file, tables as a workbook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from segment.cli import main
from segment.experiment import run_experiment
from segment.synthetic import experiment_toml, planted_cohort

N = 150
NAMES = [f"Zebulon{i:03d} Quillfeather" for i in range(N)]
EMAILS = [f"zq.person{i:03d}@mailhost-example.org" for i in range(N)]
LONG = "How often did you feel rested this week (please answer honestly)?"
IDENTIFIER_BLOCKS = (
    '\n[[column]]\ncolumn = "full_name"\nname = "full_name"\nrole = "identifier"\n'
    '\n[[column]]\ncolumn = "email"\nname = "email"\nrole = "identifier"\n'
    f'\n[[column]]\ncolumn = "{LONG}"\nname = "rested"\nrole = "ignore"\n'
)
STABILITY = "\n[stability]\nresamples = 4\nnull_resamples = 2\nnull_cohorts = 3\n"


def _study(folder: Path, *, id_column: bool, extra: str) -> Path:
    cohort = planted_cohort(n=N, k=3, n_features=6, seed=3,
                            extra_columns={"full_name": NAMES, "email": EMAILS, LONG: np.arange(N) % 4})
    cohort.codebook += IDENTIFIER_BLOCKS
    if not id_column:
        cohort.codebook = cohort.codebook.replace('name = "respondent_id"\nrole = "id"',
                                                  'name = "respondent_id"\nrole = "ignore"')
    csv, book = cohort.write(folder)
    toml = folder / "experiment.toml"
    toml.write_text(experiment_toml(csv.name, book.name, "out", extra=extra), encoding="utf-8")
    return run_experiment(toml, quiet=True).path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run of a cohort with an id column, names, e-mail addresses and a long column header."""
    return _study(tmp_path_factory.mktemp("export"), id_column=True, extra=STABILITY)


@pytest.fixture(scope="module")
def rowwise_run(tmp_path_factory) -> Path:
    """A run of a cohort whose codebook names no id column: respondents are data row numbers."""
    return _study(tmp_path_factory.mktemp("rowwise"), id_column=False, extra="")


def _cohort_file(run: Path) -> Path:
    return run.parents[2] / "cohort.csv"


def _expected(run: Path) -> tuple[pd.DataFrame, dict, dict]:
    """assignments.csv by respondent, archetype names and verdicts per method."""
    assignments = pd.read_csv(run / "assignments.csv", dtype={"respondent": str}).set_index("respondent")
    archetypes = pd.read_csv(run / "archetypes.csv")
    names, verdicts = {}, {}
    for method, rows in archetypes.groupby("method"):
        assert rows["name"].notna().all()
        names[method] = dict(zip(rows["archetype"].astype(int), rows["name"]))
        verdicts[method] = dict(zip(rows["archetype"].astype(int), rows["stability_verdict"]))
    names["hdbscan"][-1] = "noise"
    return assignments, names, verdicts


def _export(run: Path, capsys, *args) -> Path:
    assert main(["export", str(run), *args]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith("Written to ")
    return Path(out.split("Written to ", 1)[1].strip()).resolve()


def _check_assignments(frame: pd.DataFrame, run: Path, id_col: str) -> None:
    """Every respondent's archetype, probability, noise flag and verdict as in the run."""
    assignments, _, verdicts = _expected(run)
    frame = frame.set_index(frame[id_col].astype(str))
    assert set(frame.index) == set(assignments.index)
    frame = frame.loc[assignments.index]
    np.testing.assert_array_equal(frame["hdbscan"].astype(int), assignments["hdbscan_label"])
    np.testing.assert_array_equal(frame["gmm"].astype(int), assignments["gmm_component"])
    np.testing.assert_array_equal(frame["kmeans"].astype(int), assignments["kmeans_cluster"])
    np.testing.assert_allclose(frame["hdbscan_probability"], assignments["hdbscan_probability"], atol=1e-6)
    np.testing.assert_allclose(frame["gmm_posterior"], assignments["gmm_posterior"], atol=1e-6)
    np.testing.assert_array_equal(frame["hdbscan_noise"].astype(int), assignments["hdbscan_label"] == -1)
    for method, col in (("hdbscan", "hdbscan_label"), ("gmm", "gmm_component"), ("kmeans", "kmeans_cluster")):
        expected = [verdicts[method].get(a, "") for a in assignments[col]]
        assert list(frame[f"{method}_verdict"].fillna("")) == expected


# --------------------------------------------------------------------------


def test_sav_round_trip_keeps_archetype_names_as_value_labels(run_dir, capsys):
    path = _export(run_dir, capsys, "--format", "sav")
    assert path == (run_dir / "export" / "assignments.sav").resolve()
    frame, meta = pyreadstat.read_sav(str(path))
    _, names, _ = _expected(run_dir)
    for method in ("hdbscan", "gmm", "kmeans"):
        assert {int(k): v for k, v in meta.variable_value_labels[method].items()} == names[method]
    labels = dict(zip(meta.column_names, meta.column_labels))
    assert labels["hdbscan_noise"] == "HDBSCAN noise (1 = noise)"
    _check_assignments(frame, run_dir, "respondent")
    # the labels read back give each respondent's archetype name
    named, _ = pyreadstat.read_sav(str(path), apply_value_formats=True)
    assignments, _, _ = _expected(run_dir)
    assert list(named["gmm"]) == [names["gmm"][a] for a in assignments["gmm_component"]]


def test_dta_round_trip_with_stata_names_and_integer_labels(run_dir, capsys):
    path = _export(run_dir, capsys, "--format", "dta", "--cohort", str(_cohort_file(run_dir)))
    frame, meta = pyreadstat.read_dta(str(path))
    assert all(len(c) <= 32 and c.replace("_", "a").isalnum() and c[0].isalpha() for c in meta.column_names)
    labels = dict(zip(meta.column_names, meta.column_labels))
    long = [c for c, lab in labels.items() if lab == LONG]
    assert len(long) == 1 and len(long[0]) <= 32
    _, names, _ = _expected(run_dir)
    for method in ("hdbscan", "gmm", "kmeans"):
        assert meta.variable_value_labels[method] == names[method]
    _check_assignments(frame, run_dir, "respondent_id")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_csv_and_xlsx_carry_names_beside_numbers(run_dir, capsys, tmp_path, fmt):
    path = _export(run_dir, capsys, "--format", fmt, "--output", str(tmp_path / f"a.{fmt}"))
    frame = (pd.read_csv(path, dtype={"respondent": str}) if fmt == "csv"
             else pd.read_excel(path, dtype={"respondent": str}))
    _check_assignments(frame, run_dir, "respondent")
    _, names, _ = _expected(run_dir)
    assert list(frame["kmeans_name"]) == [names["kmeans"][a] for a in frame["kmeans"]]
    assert list(frame["hdbscan_name"]) == [names["hdbscan"][a] for a in frame["hdbscan"]]


def test_cohort_merge_matches_respondent_ids_in_a_shuffled_file(run_dir, capsys):
    original = pd.read_csv(_cohort_file(run_dir), dtype=str)
    shuffled = original.sample(frac=1, random_state=5)
    assert list(shuffled.index) != list(original.index)
    # beside the original, so that the run's codebook is found there
    path = _cohort_file(run_dir).parent / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    out = _export(run_dir, capsys, "--format", "csv", "--cohort", str(path))
    assert out.name == "shuffled_archetypes.csv"
    merged = pd.read_csv(out, dtype={"respondent_id": str})
    assert list(merged["respondent_id"]) == list(shuffled["respondent_id"])  # the file's own order
    assert list(merged["Q1"]) == list(shuffled["Q1"])
    _check_assignments(merged, run_dir, "respondent_id")


def test_no_identifier_in_any_export(run_dir, capsys, tmp_path):
    secrets = [b"Quillfeather", b"mailhost-example"]
    cohort = str(_cohort_file(run_dir))
    written = [_export(run_dir, capsys, "--format", fmt, "--output", str(tmp_path / f"{i}.{fmt}"), *more)
               for i, (fmt, more) in enumerate([(f, m) for f in ("sav", "dta", "csv", "xlsx")
                                                for m in ([], ["--cohort", cohort])])]
    written.append(_export(run_dir, capsys, "--format", "xlsx", "--tables", "--output", str(tmp_path / "t.xlsx")))
    for path in written:
        data = path.read_bytes()
        assert not any(s in data for s in secrets), f"an identifier is in {path.name}"
        frame = {".sav": lambda p: pyreadstat.read_sav(str(p))[0], ".dta": lambda p: pyreadstat.read_dta(str(p))[0],
                 ".csv": pd.read_csv, ".xlsx": pd.read_excel}[path.suffix](path)
        assert not {"full_name", "email"} & set(frame.columns), path.name
        text = frame.astype(str).to_string()
        assert "Quillfeather" not in text and "mailhost" not in text


def test_tables_workbook_has_one_sheet_per_shareable_table(run_dir, capsys):
    path = _export(run_dir, capsys, "--format", "xlsx", "--tables")
    tables = sorted((run_dir / "tables").glob("*.csv"))
    book = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
    assert sorted(book) == sorted(t.stem.removesuffix("_suppressed") for t in tables)
    crosstab = pd.read_csv(run_dir / "tables" / "covariate_crosstab_suppressed.csv", dtype=str,
                           keep_default_na=False)
    pd.testing.assert_frame_equal(book["covariate_crosstab"], crosstab)


def test_rowwise_run_merges_its_own_file_by_row(rowwise_run, capsys):
    frame = pd.read_csv(_export(rowwise_run, capsys, "--format", "csv"), dtype={"respondent": str})
    assert list(frame["respondent"]) == [str(i) for i in range(1, N + 1)]
    merged = pd.read_csv(_export(rowwise_run, capsys, "--format", "csv", "--cohort",
                                 str(_cohort_file(rowwise_run))))
    assignments, _, verdicts = _expected(rowwise_run)
    np.testing.assert_array_equal(merged["gmm"], assignments["gmm_component"])
    assert set(merged["gmm_verdict"]) == {"not assessed"} == set(verdicts["gmm"].values())


def test_rowwise_run_refuses_another_file(rowwise_run, capsys):
    original = _cohort_file(rowwise_run)
    other = original.parent / "other.csv"
    pd.read_csv(original, dtype=str).iloc[::-1].to_csv(other, index=False)
    assert main(["export", str(rowwise_run), "--format", "sav", "--cohort", str(other)]) == 2
    err = capsys.readouterr().err
    assert "other.csv" in err and "SHA-256" in err and "no id column" in err
    assert not (rowwise_run / "export" / "other_archetypes.sav").exists()


def test_user_mistakes_exit_2_and_write_nothing(run_dir, capsys, tmp_path):
    cohort = pd.read_csv(_cohort_file(run_dir), dtype=str)
    elsewhere = tmp_path / "cohort.csv"
    cohort.to_csv(elsewhere, index=False)
    out = tmp_path / "x.sav"
    # the codebook is not beside this copy
    assert main(["export", str(run_dir), "--format", "sav", "--cohort", str(elsewhere), "-o", str(out)]) == 2
    assert "--codebook" in capsys.readouterr().err
    # a column the export would add is already there
    cohort.assign(hdbscan="x").to_csv(elsewhere, index=False)
    book = _cohort_file(run_dir).with_suffix(".toml")
    assert main(["export", str(run_dir), "--format", "sav", "--cohort", str(elsewhere), "--codebook", str(book),
                 "-o", str(out)]) == 2
    assert "hdbscan" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "dta", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "x.sav" in err and ".dta" in err
    assert main(["export", str(tmp_path), "--format", "csv"]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [elsewhere]


def test_failed_write_leaves_no_partial_file(run_dir, capsys, tmp_path, monkeypatch):
    def broken(frame, path, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pyreadstat, "write_sav", broken)
    out = tmp_path / "a.sav"
    assert main(["export", str(run_dir), "--format", "sav", "-o", str(out)]) == 2
    assert "a.sav" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_spss_cohort_keeps_its_own_types_and_labels(run_dir, capsys):
    shuffled = pd.read_csv(_cohort_file(run_dir)).sample(frac=1, random_state=2)
    source = _cohort_file(run_dir).parent / "survey.sav"
    pyreadstat.write_sav(shuffled.drop(columns=[LONG]), str(source), column_labels={"age": "Age in years"},
                         variable_value_labels={"age": {18: "eighteen"}})
    frame, meta = pyreadstat.read_sav(str(_export(run_dir, capsys, "--format", "sav", "--cohort", str(source))))
    assert dict(zip(meta.column_names, meta.column_labels))["age"] == "Age in years"
    assert meta.variable_value_labels["age"] == {18: "eighteen"}
    assert frame["age"].dtype == float and "email" not in frame and "full_name" not in frame
    assert list(frame["respondent_id"]) == list(shuffled["respondent_id"])
    _check_assignments(frame, run_dir, "respondent_id")

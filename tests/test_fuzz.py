"""Property-based fuzz of loading and of configs.

From a valid small cohort, codebook and experiment, random mutations of the
kind real exports and hand-written files hold: loading and checking either
succeed or raise :class:`~segment.errors.SegmentError` (which the command line
turns into one message and exit code 2) — never any other exception.  The
examples are derandomised: the same cases run every time, and a failing one
is printed by hypothesis.
"""

import copy
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segment.config import ExperimentConfig, config_from_dict, load_config
from segment.errors import ConfigError, SegmentError
from segment.experiment import prepare

FUZZ = settings(max_examples=500, derandomize=True, deadline=None, print_blob=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LIKERT = ["Never", "Rarely", "Sometimes", "Often", "Very often"]
HEADER = ["id", "q1", "q2", "hours", "age", "gender", "platforms", "score"]


def _rows():
    rows = []
    for i in range(14):
        rows.append([f"r{i:02d}", LIKERT[i % 5], str(1 + (i * 3) % 5), ["0", "1", "2.5"][i % 3],
                     str(18 + i), ["F", "male", "other"][i % 3], ["a", "a,b", "b, c", ""][i % 4],
                     f"{(i * 7) % 22 / 2:g}"])
    return rows


def _codebook():
    return {
        "survey": {"name": "fuzz"},
        "column": [
            {"column": "id", "role": "id"},
            {"column": "q1", "role": "feature", "type": "likert", "levels": list(LIKERT)},
            {"column": "q2", "role": "feature", "type": "likert", "levels": ["1", "2", "3", "4", "5"],
             "missing": ["Don't know"]},
            {"column": "hours", "role": "feature", "type": "ordinal", "map": {"0": 0, "1": 1, "2.5": 2.5}},
            {"column": "age", "role": "covariate", "type": "numeric", "range": [10, 100]},
            {"column": "gender", "role": "covariate", "type": "categorical",
             "categories": ["female", "male", "other"], "aliases": {"F": "female"}},
            {"column": "platforms", "role": "feature", "type": "multiselect", "options": ["a", "b", "c"]},
            {"column": "score", "role": "outcome", "type": "numeric"},
        ],
        "scale": [{"name": "total", "items": ["q1", "q2"], "method": "sum", "min_answered": 1,
                   "cutoffs": [[4, "high"]], "role": "outcome"}],
    }


def _experiment():
    return {"experiment": {"name": "fuzz", "cohort": "cohort.csv", "codebook": "book.toml", "seed": 1},
            "reduce": {"n_neighbors": 5, "n_components": 2},
            "cluster": {"hdbscan": {"min_cluster_size": 3, "min_samples": 2}, "gmm": {"k": [1, 3]},
                        "kmeans": {"k": 2}},
            "profile": {"outcomes": ["score", "total"], "covariates": ["age"]}}


# --------------------------------------------------------------------------
# writing TOML (values of any type, as a careless hand would write them)

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _toml(doc: dict, prefix: str = "") -> str:
    lines, tables = [], []
    for key, value in doc.items():
        if isinstance(value, dict) and value and all(isinstance(x, dict) for x in value.values()) is False \
                and prefix == "" and key in ("survey", "missing", "experiment", "features", "reduce",
                                             "stability", "profile", "report", "sweep"):
            tables.append(f"\n[{key}]\n" + _toml(value, key + "."))
        elif isinstance(value, dict) and prefix == "" and key == "cluster":
            tables.append(f"\n[{key}]\n" + _toml(value, key + "."))
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value) and prefix == "":
            for table in value:
                tables.append(f"\n[[{key}]]\n" + _toml(table, key + "."))
        else:
            lines.append(f"{json.dumps(str(key))} = {_toml_value(value)}")
    return "\n".join(lines) + "\n" + "".join(tables)


# --------------------------------------------------------------------------
# mutations

ODD_ANSWERS = ["", " ", "2.0", "2,0", "3.5", " NEVER ", "very  OFTEN", "Sometimse", "inf", "-inf", "nan",
               "NaN", "-1", "1e400", "0x1F", "N/A", "Don't know", "\u00e9t\u00e9", "\u00a0", "\"", "a;b",
               "a,,b", "x" * 300, "1_000", "TRUE", "2024-01-01", "\ufeff1"]
ODD_VALUES = ["text", "", "1-5", 0, -1, 3, 2.5, float("nan"), float("inf"), True, [], ["a"], [1, 2], [0, "x"],
              [[1, "a"]], [1.0, 2.0, 3.0], {}, {"a": 1}, {"a": "b"}, {"x": {"y": 1}}, "Don't know"]

cell_edit = st.tuples(st.just("cell"), st.integers(0, 13), st.integers(0, len(HEADER) - 1),
                      st.sampled_from(ODD_ANSWERS))
row_edit = st.tuples(st.sampled_from(["duplicate_id", "empty_id", "drop_row", "short_row", "long_row"]),
                     st.integers(0, 13), st.integers(0, 13))
column_edit = st.tuples(st.sampled_from(["drop_column", "extra_column", "blank_column", "rename_column"]),
                        st.integers(0, len(HEADER) - 1), st.sampled_from(["", "q1", "extra", " id"]))
book_edit = st.tuples(st.just("book"), st.integers(0, 7),
                      st.sampled_from(["column", "name", "role", "type", "levels", "values", "map",
                                       "categories", "options", "aliases", "missing", "missing_indicator",
                                       "reverse", "numeric_codes", "range", "separator", "label", "nonsense"]),
                      st.sampled_from(ODD_VALUES + ["<delete>"]))
scale_edit = st.tuples(st.just("scale"), st.sampled_from(["name", "items", "method", "min_answered", "cutoffs",
                                                          "role", "label", "extra"]),
                       st.sampled_from(ODD_VALUES + ["<delete>"]))
top_edit = st.tuples(st.just("top"), st.sampled_from(["survey", "missing", "column", "scale", "instrument", "x"]),
                     st.sampled_from(ODD_VALUES + [{"codes": "NA"}, {"codes": ["NA"]}, [{"use": 3}]]))
file_format = st.fixed_dictionaries({
    "encoding": st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]),
    "delimiter": st.sampled_from([",", ";", "\t", "|"]),
    "newline": st.sampled_from(["\n", "\r\n"]),
    "truncate": st.integers(0, 30),
})


def _apply_data(header, rows, edit):
    kind = edit[0]
    if kind == "cell" and edit[1] < len(rows) and edit[2] < len(rows[edit[1]]):
        rows[edit[1]][edit[2]] = edit[3]
    elif kind == "duplicate_id" and rows:
        rows[edit[1] % len(rows)][0] = rows[edit[2] % len(rows)][0]
    elif kind == "empty_id" and rows:
        rows[edit[1] % len(rows)][0] = ""
    elif kind == "drop_row" and rows:
        del rows[edit[1] % len(rows)]
    elif kind == "short_row" and rows:
        rows[edit[1] % len(rows)] = rows[edit[1] % len(rows)][:-2]
    elif kind == "long_row" and rows:
        rows[edit[1] % len(rows)].append("surplus")
    elif kind in ("drop_column", "blank_column", "rename_column") and edit[1] < len(header):
        j = edit[1]
        if kind == "drop_column":
            del header[j]
            for r in rows:
                if j < len(r):
                    del r[j]
        elif kind == "blank_column":
            for r in rows:
                if j < len(r):
                    r[j] = ""
        else:
            header[j] = edit[2]
    elif kind == "extra_column":
        header.append(edit[2] or "extra")
        for r in rows:
            r.append("x")


def _apply_book(book, edit):
    kind = edit[0]
    tables = book.get("column" if kind == "book" else "scale")
    if kind in ("book", "scale") and not (isinstance(tables, list) and tables and
                                          all(isinstance(t, dict) for t in tables)):
        return  # replaced by an earlier edit
    if kind == "book":
        target = tables[edit[1] % len(tables)]
        key, value = edit[2], edit[3]
    elif kind == "scale":
        target, key, value = tables[0], edit[1], edit[2]
    else:
        target, key, value = book, edit[1], edit[2]
    if value == "<delete>":
        target.pop(key, None)
    else:
        target[key] = copy.deepcopy(value)


def _csv_text(header, rows, delimiter, newline):
    def cell(v):
        v = str(v)
        if any(c in v for c in (delimiter, '"', "\n", "\r")):
            v = '"' + v.replace('"', '""') + '"'
        return v
    return newline.join(delimiter.join(cell(v) for v in r) for r in [header, *rows]) + newline


def _write_study(folder: Path, header, rows, book, fmt, experiment=None):
    text = _csv_text(header, rows, fmt["delimiter"], fmt["newline"])
    if fmt["truncate"]:
        text = text[:-fmt["truncate"]]
    try:
        data = text.encode(fmt["encoding"])
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    (folder / "cohort.csv").write_bytes(data)
    (folder / "book.toml").write_text(_toml(book), encoding="utf-8")
    (folder / "experiment.toml").write_text(_toml(experiment or _experiment()), encoding="utf-8")
    return folder / "experiment.toml"


def _load_and_check(experiment: Path):
    """What `segment validate` and the start of `segment run` do, in process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(load_config(experiment))


def test_the_unmutated_study_is_valid(tmp_path):
    plan = _load_and_check(_write_study(tmp_path, list(HEADER), _rows(), _codebook(),
                                        {"encoding": "utf-8", "delimiter": ",", "newline": "\n", "truncate": 0}))
    assert plan.cohort.n == 14 and len(plan.analysed) == 14
    assert list(plan.features.columns) == ["q1", "q2", "hours", "platforms"]
    assert plan.outcomes == ["score", "total"]


@FUZZ
@given(data_edits=st.lists(st.one_of(cell_edit, row_edit, column_edit), max_size=6),
       book_edits=st.lists(st.one_of(book_edit, scale_edit, top_edit), max_size=2),
       fmt=file_format)
def test_loading_a_mutated_study_succeeds_or_raises_a_user_error(data_edits, book_edits, fmt):
    header, rows, book = list(HEADER), _rows(), _codebook()
    for edit in data_edits:
        _apply_data(header, rows, edit)
    for edit in book_edits:
        _apply_book(book, edit)
    with tempfile.TemporaryDirectory() as folder:
        experiment = _write_study(Path(folder), header, rows, book, fmt)
        try:
            _load_and_check(experiment)
            event("valid")
        except SegmentError as exc:
            event(type(exc).__name__)
            assert str(exc).strip()


# --------------------------------------------------------------------------
# configs: every key

def _leaf_keys(cls=ExperimentConfig, prefix=""):
    for f in dataclasses.fields(cls):
        if f.name in ("path", "sweep"):
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _leaf_keys(type(default), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


KEYS = list(_leaf_keys())
BAD_VALUES = ODD_VALUES + [-5, 10**9, -0.5, 1.5, 1e-12, ["full", "nope"], [3, 1], [1, 2, 3], ["x", "x"]]


def _set(data, dotted, value):
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def test_every_key_is_covered():
    assert len(KEYS) > 50 and "cluster.gmm.n_init" in KEYS and "experiment.sheet" in KEYS


@pytest.mark.parametrize("key", KEYS)
def test_a_wrong_value_of_any_key_is_an_error_naming_it(key):
    for value in BAD_VALUES:
        data = _experiment()
        _set(data, key, copy.deepcopy(value))
        try:
            config_from_dict(data)
        except ConfigError as exc:
            assert key in str(exc), (key, value, str(exc))
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{key} = {value!r}: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("key", KEYS)
def test_an_unknown_key_beside_any_key_is_named(key):
    data = _experiment()
    _set(data, key.rsplit(".", 1)[0] + ".colour", 1)
    with pytest.raises(ConfigError, match=f"unknown config key '{key.rsplit('.', 1)[0]}.colour'"):
        config_from_dict(data)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(KEYS + ["reduce.nneighbors", "cluster.x.y", "profile.names.gmm"]),
                                st.sampled_from(BAD_VALUES)), min_size=1, max_size=3))
def test_a_mutated_config_is_valid_or_rejected_before_any_fit(tmp_path_factory, edits):
    data = _experiment()
    for key, value in edits:
        _set(data, key, copy.deepcopy(value))
    folder = tmp_path_factory.mktemp("study")
    experiment = _write_study(folder, list(HEADER), _rows(), _codebook(),
                              {"encoding": "utf-8", "delimiter": ",", "newline": "\n", "truncate": 0}, data)
    try:
        _load_and_check(experiment)
        event("valid")
    except ConfigError as exc:
        event("ConfigError")
        assert any(key.split(".")[-1] in str(exc) or key in str(exc) for key, _ in edits) \
            or "experiment.cohort" in str(exc) or "experiment.codebook" in str(exc), str(exc)
    except SegmentError as exc:
        event(type(exc).__name__)
        assert str(exc).strip()
    assert not (folder / "reports").exists()


# --------------------------------------------------------------------------
# the command line: exit code 2 and no traceback

@pytest.mark.parametrize("book_edit, cell", [
    (None, (3, 1, "Sometimse")),
    (("book", 1, "levels", "1-5"), None),
    (("book", 2, "missing", "Don't know"), None),
    (("scale", "min_answered", "all"), None),
    (None, (2, 4, "inf")),
])
def test_cli_exits_2_without_traceback(tmp_path, book_edit, cell):
    header, rows, book = list(HEADER), _rows(), _codebook()
    if book_edit:
        _apply_book(book, book_edit)
    if cell:
        rows[cell[0]][cell[1]] = cell[2]
    experiment = _write_study(tmp_path, header, rows, book,
                              {"encoding": "utf-8", "delimiter": ";", "newline": "\r\n", "truncate": 0})
    for command in (["validate", str(experiment)], ["run", str(experiment), "-q"]):
        proc = subprocess.run([sys.executable, "-m", "segment.cli", *command], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("segment: error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "reports").exists()

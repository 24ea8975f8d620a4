"""Archetype assignments and shareable tables in the researcher's own formats.

:func:`export_assignments` writes, per respondent, each method's archetype
(with the archetype names as value labels), its membership probability, the
noise flag and the stability verdict, as SPSS, Stata, CSV or XLSX; given the
original survey file, it merges them into a copy of it (identifiers
dropped). :func:`export_tables` writes the disclosure-controlled tables of a
run as one XLSX workbook.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SegmentError
from .vocabulary import METHODS, NOISE, NOISE_NAME

FORMATS = ("sav", "dta", "csv", "xlsx")
# method -> (label column, membership probability column) in assignments.csv
_METHODS = {m.name: (m.column, m.probability) for m in METHODS.values()}
_NAME_LIMIT = {"sav": 64, "dta": 32}
_LABEL_LIMIT = {"sav": 120, "dta": 80}


def export_assignments(run_dir, fmt: str, output=None, *, cohort=None, codebook=None) -> Path:
    """Write each respondent's archetypes, ready to merge into the survey file.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``segment run``.
    fmt : {"sav", "dta", "csv", "xlsx"}
        SPSS, Stata, CSV or Excel. SPSS and Stata files carry the archetype
        names as value labels and a label for every variable.
    output : str or Path, optional
        The file to write; by default ``<run_dir>/export/assignments.<fmt>``
        (``<cohort name>_archetypes.<fmt>`` with ``cohort``).
    cohort : str or Path, optional
        The original survey file: the columns are merged into a copy of it,
        matched on the codebook's id column, or by row when the codebook has
        none and the file is the one the run read (same SHA-256). Columns with
        role ``identifier`` are left out of the copy.
    codebook : str or Path, optional
        The cohort's codebook; by default the run's codebook, found (same
        SHA-256) beside the cohort file or in the run directory.

    Returns
    -------
    Path
        The file written. It appears complete or not at all.

    Raises
    ------
    SegmentError
        If ``run_dir`` is not a run directory, the format is unknown, the
        cohort's respondents cannot be matched to the run's, or the codebook
        cannot be found.

    Notes
    -----
    Per method ``m`` (those the run fitted): ``m`` the archetype number
    (HDBSCAN noise is -1), ``m_name`` its name (CSV and XLSX; value labels in
    SPSS and Stata), ``m_verdict`` its stability verdict; and
    ``hdbscan_probability``, ``hdbscan_noise`` (1 for noise) and
    ``gmm_posterior``. Excluded respondents have ``excluded`` = 1 and no
    archetype.
    """
    run_dir = Path(run_dir)
    fmt = _check_format(fmt)
    manifest = _read_manifest(run_dir)
    table, value_labels, variable_labels = _assignment_table(run_dir)
    if cohort is None:
        frame = table.reset_index()
        variable_labels = {"respondent": "respondent id (data row number when the survey has no id column)",
                           **variable_labels}
        default = run_dir / "export" / f"assignments.{fmt}"
    else:
        cohort = Path(cohort)
        frame, cohort_labels, cohort_values = _merged(run_dir, manifest, table, cohort, codebook)
        variable_labels = {**cohort_labels, **variable_labels}
        value_labels = {**cohort_values, **value_labels}
        default = run_dir / "export" / f"{cohort.stem}_archetypes.{fmt}"
    path = _output_path(output, default, fmt)
    _write(frame, path, fmt, value_labels, variable_labels)
    return path


def export_tables(run_dir, output=None) -> Path:
    """Write the run's shareable tables (its ``tables/`` folder) as one XLSX workbook.

    Parameters
    ----------
    run_dir : str or Path
        A run directory whose report has been rendered.
    output : str or Path, optional
        The workbook; by default ``<run_dir>/export/tables.xlsx``.

    Returns
    -------
    Path
        The workbook written: one sheet per table, named after its file.

    Raises
    ------
    SegmentError
        If ``run_dir`` is not a run directory or has no ``tables/`` folder.
    """
    run_dir = Path(run_dir)
    _read_manifest(run_dir)
    files = sorted((run_dir / "tables").glob("*.csv"))
    if not files:
        raise SegmentError(f"{run_dir} has no tables/ folder with CSV tables: render its report first "
                           f"(segment report {run_dir}).")
    path = _output_path(output, run_dir / "export" / "tables.xlsx", "xlsx")
    sheets, used = {}, set()
    for file in files:
        name = _unique(re.sub(r"[\[\]:*?/\\]", "_", file.stem.removesuffix("_suppressed"))[:31], used, 31)
        sheets[name] = pd.read_csv(file, dtype=str, keep_default_na=False)
    with _atomic(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for name, sheet in sheets.items():
                sheet.to_excel(writer, sheet_name=name, index=False)
    return path


# --------------------------------------------------------------------------
# the run's assignments


def _check_format(fmt: str) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise SegmentError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}.")
    return fmt


def _read_manifest(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise SegmentError(f"{run_dir} is not a run directory: it has no manifest.json.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SegmentError(f"{path}: not valid JSON ({exc}).") from None


def _read_csv(run_dir: Path, name: str, **kwargs) -> pd.DataFrame:
    path = run_dir / name
    if not path.is_file():
        raise SegmentError(f"{run_dir} has no {name}: it is not a complete run directory.")
    return pd.read_csv(path, **kwargs)


def _assignment_table(run_dir: Path) -> tuple[pd.DataFrame, dict, dict]:
    """The export columns indexed by respondent id, their value labels and variable labels."""
    assignments = _read_csv(run_dir, "assignments.csv", dtype={"respondent": str}, keep_default_na=False,
                            na_values=[""])
    archetypes = _read_csv(run_dir, "archetypes.csv", keep_default_na=False, na_values=[""])
    excluded = assignments["excluded"].astype(str).str.lower().isin(["true", "1"])
    out = pd.DataFrame({"excluded": excluded.astype(int).to_numpy()},
                       index=pd.Index(assignments["respondent"].to_numpy(), name="respondent"))
    value_labels, variable_labels = {}, {"excluded": "excluded from the analysis (1 = yes)"}
    for method, (label_col, prob_col) in _METHODS.items():
        if label_col not in assignments:
            continue
        labels = pd.to_numeric(assignments[label_col], errors="coerce").to_numpy()
        rows = archetypes[archetypes["method"] == method]
        names = {int(a): _archetype_name(a, n) for a, n in zip(rows["archetype"], rows["name"])}
        verdicts = {int(a): v for a, v in zip(rows["archetype"], rows["stability_verdict"]) if isinstance(v, str)}
        noise = METHODS[method].noise
        if noise:
            names[NOISE] = NOISE_NAME
        present = {int(v) for v in labels[~np.isnan(labels)]}
        names.update({a: f"archetype {a}" for a in present - set(names)})
        out[method] = pd.array(labels, dtype="Int64")
        out[f"{method}_name"] = [names.get(int(v)) if not np.isnan(v) else None for v in labels]
        value_labels[method] = names
        variable_labels[method] = f"{method} archetype" + (" (-1 = noise)" if noise else "")
        variable_labels[f"{method}_name"] = f"{method} archetype name"
        if prob_col and prob_col in assignments:
            out[prob_col] = pd.to_numeric(assignments[prob_col], errors="coerce").to_numpy()
            variable_labels[prob_col] = ("HDBSCAN membership probability" if method == "hdbscan"
                                         else "GMM posterior probability of the assigned component")
        if noise:
            out["hdbscan_noise"] = pd.array(np.where(np.isnan(labels), np.nan, labels == NOISE), dtype="Int64")
            variable_labels["hdbscan_noise"] = "HDBSCAN noise (1 = noise)"
        out[f"{method}_verdict"] = [verdicts.get(int(v)) if not np.isnan(v) else None for v in labels]
        variable_labels[f"{method}_verdict"] = f"stability verdict of the {method} archetype"
    return out, value_labels, variable_labels


def _archetype_name(archetype, name) -> str:
    return name if isinstance(name, str) and name.strip() else f"archetype {int(archetype)}"


# --------------------------------------------------------------------------
# merging into the original survey file


def _merged(run_dir: Path, manifest: dict, table: pd.DataFrame, cohort: Path, codebook) -> tuple:
    """The cohort file's columns (identifiers dropped) with the export columns, row for row."""
    from .codebook import load_codebook
    from .readers import file_sha256, read_survey

    inputs = manifest.get("input") or {}
    sheet = ((manifest.get("config") or {}).get("experiment") or {}).get("sheet")
    raw = read_survey(cohort, sheet=sheet)
    book = load_codebook(_find_codebook(run_dir, manifest, cohort, codebook))
    frame, labels, values = _native(cohort, raw)
    ids = [it.column for it in book.items_with_role("id")]
    if ids:
        if ids[0] not in raw:
            raise SegmentError(f"{cohort}: the codebook's id column '{ids[0]}' is not in the file.")
        keys = raw[ids[0]].astype(str).to_numpy()
        matched = pd.Index(keys).isin(table.index)
        if not matched.any():
            raise SegmentError(f"{cohort}: no respondent id in column '{ids[0]}' is one of the run's "
                               f"respondents: is it the run's survey file?")
    else:
        if file_sha256(cohort) != inputs.get("sha256"):
            raise SegmentError(
                f"{cohort}: the codebook names no id column (role \"id\"), so respondents are matched by "
                f"row, and this file is not the one the run read ({inputs.get('file', 'unknown')}, "
                "different SHA-256). Export without --cohort, or give the run's own survey file.")
        keys = (np.arange(len(raw)) + 1).astype(str)
    identifiers = {it.column for it in book.items_with_role("identifier")}
    frame = frame.drop(columns=[c for c in frame.columns if c in identifiers])
    added = table.reindex(keys).reset_index(drop=True)
    clash = [c for c in added.columns if c in frame.columns]
    if clash:
        raise SegmentError(f"{cohort} already has column(s) {', '.join(clash)}: rename them before exporting.")
    merged = pd.concat([frame.reset_index(drop=True), added], axis=1)
    return merged, {c: v for c, v in labels.items() if c in merged}, {c: v for c, v in values.items() if c in merged}


def _native(cohort: Path, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
    """The survey file with its own types, variable labels and value labels where it has them."""
    suffix = cohort.suffix.lower()
    if suffix in (".sav", ".dta"):
        import pyreadstat

        reader = pyreadstat.read_sav if suffix == ".sav" else pyreadstat.read_dta
        frame, meta = reader(str(cohort))
        if len(frame) != len(raw):
            raise SegmentError(f"{cohort}: could not read its rows consistently.")
        labels = {c: lab for c, lab in zip(meta.column_names, meta.column_labels) if lab}
        return frame, labels, dict(meta.variable_value_labels)
    frame = raw.copy()
    for col in frame.columns:
        numbers = pd.to_numeric(frame[col], errors="coerce")
        if numbers.notna().sum() == frame[col].notna().sum():
            frame[col] = numbers
    return frame, dict(raw.attrs.get("column_labels") or {}), {}


def _find_codebook(run_dir: Path, manifest: dict, cohort: Path, codebook) -> Path:
    from .readers import file_sha256

    if codebook is not None:
        if not Path(codebook).is_file():
            raise SegmentError(f"codebook not found: {codebook}")
        return Path(codebook)
    inputs = manifest.get("input") or {}
    config = (manifest.get("config") or {}).get("experiment") or {}
    places = []
    if config.get("codebook") and config.get("cohort"):
        # both are relative to the experiment file: the codebook's place relative to the cohort's
        rel = os.path.relpath(config["codebook"], os.path.dirname(config["cohort"]) or ".")
        places.append(cohort.parent / rel)
    if inputs.get("codebook"):
        places += [cohort.parent / inputs["codebook"], run_dir / inputs["codebook"]]
    places.append(run_dir / "codebook.toml")
    sha = inputs.get("codebook_sha256")
    for place in places:
        if place.is_file() and (sha is None or file_sha256(place) == sha):
            return place
    raise SegmentError(f"the run's codebook ({inputs.get('codebook', 'unknown')}, same SHA-256) is not beside "
                       f"{cohort}: give it with --codebook BOOK.toml.")


# --------------------------------------------------------------------------
# writing


def _output_path(output, default: Path, fmt: str) -> Path:
    path = Path(output) if output is not None else default
    if path.suffix.lower() != f".{fmt}":
        raise SegmentError(f"output file {path} does not end in .{fmt}, the format asked for.")
    if path.is_dir():
        raise SegmentError(f"output {path} is a folder: give a file name ending in .{fmt}.")
    return path


class _atomic:
    """A temporary file beside ``path``, renamed to it only when the block succeeds."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SegmentError(f"cannot create the folder of {self.path}: {exc.strerror}.") from None
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}-", suffix=self.path.suffix,
                                        dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes files private
            os.replace(self.tmp, self.path)
            return False
        Path(self.tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SegmentError(f"cannot write {self.path}: {exc}") from None
        return False


def _write(frame: pd.DataFrame, path: Path, fmt: str, value_labels: dict, variable_labels: dict) -> None:
    if fmt in ("csv", "xlsx"):
        with _atomic(path) as tmp:
            if fmt == "csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.to_excel(tmp, index=False, engine="openpyxl", sheet_name="assignments")
        return
    _write_labelled(frame.drop(columns=[c for c in frame.columns if c.endswith("_name")
                                        and c.removesuffix("_name") in _METHODS]),
                    path, fmt, value_labels, variable_labels)


def _write_labelled(frame: pd.DataFrame, path: Path, fmt: str, value_labels: dict, variable_labels: dict) -> None:
    import pyreadstat

    used, names = set(), {}
    for col in frame.columns:
        names[col] = _unique(_variable_name(str(col)), used, _NAME_LIMIT[fmt])
    frame = frame.rename(columns=names)
    labels = {names[c]: str(variable_labels.get(c, c if names[c] != c else ""))[:_LABEL_LIMIT[fmt]]
              for c in names}
    values = {}
    for col, mapping in value_labels.items():
        if col not in names or not mapping:
            continue
        codes = {}
        for code, text in mapping.items():
            number = float(code)
            if fmt == "dta" and not number.is_integer():
                break  # Stata labels integers only
            codes[int(number) if number.is_integer() else number] = str(text)[:_LABEL_LIMIT[fmt]]
        else:
            values[names[col]] = codes
    for col in frame.columns:
        if str(frame[col].dtype) == "Int64":
            frame[col] = frame[col].astype("float64")
        elif frame[col].dtype == object:
            frame[col] = frame[col].where(frame[col].notna(), "").astype(str)
    writer = pyreadstat.write_sav if fmt == "sav" else pyreadstat.write_dta
    with _atomic(path) as tmp:
        try:
            writer(frame, tmp, column_labels=[labels[c] for c in frame.columns], variable_value_labels=values)
        except Exception as exc:  # pyreadstat raises its own error types
            raise SegmentError(f"cannot write {path} as {fmt}: {exc}") from None


def _variable_name(name: str) -> str:
    """A name SPSS and Stata both accept: letters, digits and underscores, starting with a letter."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if re.match(r"[A-Za-z]", clean) else f"v{clean}"


def _unique(name: str, used: set, limit: int) -> str:
    candidate, i = name[:limit], 1
    while candidate.lower() in used:
        i += 1
        candidate = f"{name[:limit - len(str(i)) - 1]}_{i}"
    used.add(candidate.lower())
    return candidate

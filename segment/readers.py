"""Read survey exports into a frame of answer text.

Every reader returns the answers exactly as the respondent's export holds
them: each cell is a ``str`` (raw text, nothing stripped, so codebooks can
map exact variants such as ``"Nonbinary "``) or missing (``NaN``) where the
cell is empty. Numbers become text too (``3`` and ``3.0`` both read as
``"3"``), and value labels of SPSS and Stata files are applied, so that the
codebook decides what every answer means.

Supported formats, chosen by the file extension (case-insensitive), and the
name each records in ``df.attrs["format"]``:

- ``.csv``, ``.txt``: comma, semicolon or tab separated UTF-8 text
  (``"csv"``); Qualtrics exports are recognised and their question-text and
  import-id rows dropped (``"qualtrics-csv"``).
- ``.xlsx``: one sheet of an Excel workbook (``"xlsx"``).
- ``.sav``: SPSS, value labels applied (``"spss"``).
- ``.dta``: Stata, value labels applied (``"stata"``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import math
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import SegmentError, SurveyDataError

__all__ = ["read_survey", "file_sha256", "SUPPORTED_EXTENSIONS"]

#: Extensions :func:`read_survey` accepts, mapped to the reader's format name.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".sav": "spss",
    ".dta": "stata",
}

_DELIMITERS = (",", ";", "\t")
_BOM = b"\xef\xbb\xbf"
_QUALTRICS_MARK = '{"ImportId"'
_CHUNK = 1 << 20


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def read_survey(path: str | Path, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a survey export into a frame of answer text.

    Parameters
    ----------
    path : str or Path
        The survey file. Its extension picks the reader: ``.csv`` or
        ``.txt`` (comma, semicolon or tab separated, UTF-8 with or without a
        byte order mark; Qualtrics exports are recognised), ``.xlsx``,
        ``.sav`` (SPSS) or ``.dta`` (Stata).
    sheet : str or int, optional
        For ``.xlsx`` files, the sheet to read, by name or 0-based position.
        Defaults to the first sheet. Ignored for other formats.

    Returns
    -------
    pandas.DataFrame
        One row per respondent with a ``RangeIndex`` 0..n-1 (row ``i`` is
        data row ``i + 1``), one column per header cell, named exactly as in
        the file. Every column has dtype ``object``; every cell is a ``str``
        holding the raw answer text or ``NaN`` where the answer is missing
        (an empty cell, or a system or user missing value in SPSS/Stata).
        ``df.attrs["format"]`` names the format read (``"csv"``,
        ``"qualtrics-csv"``, ``"xlsx"``, ``"spss"`` or ``"stata"``) and
        ``df.attrs["column_labels"]`` maps column names to their variable
        labels (SPSS/Stata) or question texts (Qualtrics); it is empty for
        plain CSV and XLSX files.

    Raises
    ------
    SurveyDataError
        If the file does not exist, has an unsupported extension, is empty
        or has no header row, is not valid UTF-8 (text files), has duplicate
        or blank column names, or cannot be parsed.

    Notes
    -----
    Text such as ``"N/A"``, ``"NA"`` or ``"None"`` is kept as text: in some
    surveys these are real answers. Only empty cells are missing.
    Integral numbers read as ``"3"`` (never ``"3.0"``), other numbers in
    their shortest exact decimal form (``"2.5"``), dates as ISO 8601 text
    (``"2024-03-01"``, or ``"2024-03-01T09:30:00"`` when a time of day is
    set) and Excel booleans as ``"TRUE"``/``"FALSE"``. Trailing rows in
    which every cell is empty (left behind by spreadsheet programs) are
    dropped from CSV and XLSX files.

    Examples
    --------
    >>> df = read_survey("cohort.csv")  # doctest: +SKIP
    >>> df.attrs["format"]  # doctest: +SKIP
    'csv'
    """
    path = Path(path)
    if not path.exists():
        raise SurveyDataError(f"survey file not found: {path}")
    if not path.is_file():
        raise SurveyDataError(f"survey file {path} is not a file (is it a folder?)")
    fmt = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise SurveyDataError(
            f"survey file {path}: unsupported file type "
            f"{path.suffix or '(no extension)'!r}; supported extensions are "
            f"{supported}"
        )
    if path.stat().st_size == 0:
        raise SurveyDataError(f"survey file {path} is empty: it has no header row")

    if fmt == "csv":
        df = _read_csv(path)
    elif fmt == "xlsx":
        df = _read_xlsx(path, sheet)
    else:
        df = _read_stat(path, fmt)
    return df


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 digest of a file's bytes.

    The file is read in chunks, so large files need little memory.

    Parameters
    ----------
    path : str or Path
        The file to hash.

    Returns
    -------
    str
        The digest as 64 lowercase hexadecimal characters.

    Raises
    ------
    SegmentError
        If the file does not exist or cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise SegmentError(f"file not found: {path}") from None
    except OSError as exc:
        raise SegmentError(f"cannot read file {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


# --------------------------------------------------------------------------
# CSV and Qualtrics CSV
# --------------------------------------------------------------------------


def _decode_utf8(path: Path, data: bytes) -> str:
    """Decode ``data`` as UTF-8 (BOM optional) or fail naming the offset."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        bad = data[offset : offset + 1].hex()
        raise SurveyDataError(
            f"survey file {path} is not valid UTF-8: byte 0x{bad} at byte offset "
            f"{offset} (line {line}) cannot be decoded. Re-save the file as UTF-8 "
            f"(in Excel: 'CSV UTF-8 (Comma delimited)')"
        ) from None


def _count_outside_quotes(line: str, char: str) -> int:
    count = 0
    quoted = False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _detect_delimiter(text: str) -> str:
    """Pick the delimiter from the header line, sniffing only to break ties."""
    header = text.split("\n", 1)[0].rstrip("\r")
    counts = {d: _count_outside_quotes(header, d) for d in _DELIMITERS}
    best = max(counts.values())
    if best == 0:
        return ","
    tied = [d for d in _DELIMITERS if counts[d] == best]
    if len(tied) == 1:
        return tied[0]
    sample = "\n".join(text.splitlines()[:20])
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(tied)).delimiter
    except csv.Error:
        return tied[0]
    return sniffed if sniffed in tied else tied[0]


def _read_csv(path: Path) -> pd.DataFrame:
    text = _decode_utf8(path, path.read_bytes())
    if text.startswith("\ufeff"):  # a second BOM left by careless re-encoding
        text = text[1:]
    if not text.strip():
        raise SurveyDataError(f"survey file {path} is empty: it has no header row")
    delimiter = _detect_delimiter(text)
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise SurveyDataError(f"survey file {path} is empty: it has no header row") from None
    except pd.errors.ParserError as exc:
        raise SurveyDataError(
            f"survey file {path} cannot be read as {_delimiter_name(delimiter)}-separated "
            f"text: {exc}. Check that every row has as many cells as the header"
        ) from None
    cells = raw.to_numpy(dtype=object)
    if cells.shape[0] == 0:
        raise SurveyDataError(f"survey file {path} is empty: it has no header row")

    header = [_header_name(v) for v in cells[0]]
    body = cells[1:]
    fmt = "csv"
    labels: dict[str, str] = {}
    if _is_qualtrics(cells):
        fmt = "qualtrics-csv"
        labels = {
            name: str(text_)
            for name, text_ in zip(header, cells[1])
            if isinstance(text_, str) and text_ != "" and name != ""
        }
        body = cells[3:]
    return _finish_table(path, header, body, fmt, labels, texts_only=True)


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}[delimiter]


def _is_qualtrics(cells: np.ndarray) -> bool:
    """Qualtrics exports: ids, question texts, then ``{"ImportId":...}`` cells."""
    if cells.shape[0] < 3:
        return False
    third = [v for v in cells[2] if isinstance(v, str) and v != ""]
    return bool(third) and all(v.lstrip().startswith(_QUALTRICS_MARK) for v in third)


# --------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------


def _read_xlsx(path: Path, sheet: str | int | None) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SurveyDataError(
            f"survey file {path} cannot be read as an Excel .xlsx workbook ({exc}); "
            f"re-save it from Excel as .xlsx or export it as CSV UTF-8"
        ) from None
    with book:
        names = list(book.sheet_names)
        if sheet is None:
            sheet = 0
        if isinstance(sheet, bool) or not isinstance(sheet, (str, int)):
            raise SurveyDataError(
                f"survey file {path}: sheet must be a sheet name or a 0-based position, "
                f"not {sheet!r}"
            )
        if isinstance(sheet, str) and sheet not in names:
            raise SurveyDataError(
                f"survey file {path} has no sheet named {sheet!r}; its sheets are "
                + ", ".join(repr(n) for n in names)
            )
        if isinstance(sheet, int) and not 0 <= sheet < len(names):
            raise SurveyDataError(
                f"survey file {path} has no sheet at position {sheet} (0-based); it has "
                f"{len(names)} sheet(s): " + ", ".join(repr(n) for n in names)
            )
        sheet_name = sheet if isinstance(sheet, str) else names[sheet]
        try:
            raw = pd.read_excel(
                book,
                sheet_name=sheet_name,
                header=None,
                dtype=object,
                keep_default_na=False,
                na_filter=False,
            )
        except Exception as exc:  # openpyxl raises a wide variety on bad files
            raise SurveyDataError(
                f"survey file {path}: sheet {sheet_name!r} cannot be read ({exc})"
            ) from None
    cells = raw.to_numpy(dtype=object)
    if cells.shape[0] == 0 or cells.shape[1] == 0:
        raise SurveyDataError(
            f"survey file {path}: sheet {sheet_name!r} is empty: it has no header row"
        )
    header = [_header_name(v) for v in cells[0]]
    df = _finish_table(path, header, cells[1:], "xlsx", {})
    df.attrs["sheet"] = sheet_name
    return df


# --------------------------------------------------------------------------
# SPSS and Stata
# --------------------------------------------------------------------------


def _read_stat(path: Path, fmt: str) -> pd.DataFrame:
    import pyreadstat

    reader = pyreadstat.read_sav if fmt == "spss" else pyreadstat.read_dta
    kind = "an SPSS .sav" if fmt == "spss" else "a Stata .dta"
    try:
        raw, meta = reader(str(path), apply_value_formats=True, formats_as_category=False)
    except Exception as exc:  # pyreadstat raises ReadstatError/PyreadstatError
        raise SurveyDataError(
            f"survey file {path} cannot be read as {kind} file ({exc})"
        ) from None
    header = [str(c) for c in raw.columns]
    _check_header(path, header)
    data = {
        name: pd.Series(
            [_cell_text(v) for v in raw.iloc[:, j].tolist()], dtype=object
        )
        for j, name in enumerate(header)
    }
    df = pd.DataFrame(data, columns=header, index=pd.RangeIndex(len(raw)), dtype=object)
    labels = {
        str(k): str(v)
        for k, v in (meta.column_names_to_labels or {}).items()
        if v not in (None, "")
    }
    df.attrs["format"] = fmt
    df.attrs["column_labels"] = labels
    return df


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------


def _header_name(value: Any) -> str:
    text = _cell_text(value)
    return "" if not isinstance(text, str) else text


def _check_header(path: Path, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
    dupes = [name for name, n in seen.items() if n > 1 and name != ""]
    if dupes:
        raise SurveyDataError(
            f"survey file {path} has duplicate column names in its header: "
            + ", ".join(repr(d) for d in dupes)
            + "; every column needs a unique name"
        )


def _finish_table(
    path: Path,
    header: list[str],
    body: np.ndarray,
    fmt: str,
    labels: dict[str, str],
    *,
    texts_only: bool = False,
) -> pd.DataFrame:
    """Turn raw header + body cells into the answer-text frame."""
    if header:
        header[0] = header[0].lstrip("\ufeff")
    n_cols = len(header)
    if texts_only:
        # every cell is already a str (or NaN padding a short row)
        body = body.copy()
        body[pd.isna(body) | (body == "")] = np.nan
        columns: list[list[Any]] = [body[:, j].tolist() for j in range(n_cols)]
    else:
        columns = [[_cell_text(v) for v in body[:, j]] for j in range(n_cols)]
    n_rows = body.shape[0]
    # drop trailing all-empty rows (spreadsheet leftovers)
    while n_rows and all(_is_missing(col[n_rows - 1]) for col in columns):
        n_rows -= 1
    columns = [col[:n_rows] for col in columns]

    # columns with a blank header: tolerated (and dropped) only when empty
    keep: list[int] = []
    for j, name in enumerate(header):
        if name == "":
            if all(_is_missing(v) for v in columns[j]):
                continue
            raise SurveyDataError(
                f"survey file {path}: column {j + 1} has no name in the header row "
                f"but holds answers; give it a name"
            )
        keep.append(j)
    names = [header[j] for j in keep]
    if not names:
        raise SurveyDataError(f"survey file {path} has no column names in its header row")
    _check_header(path, names)

    data = {header[j]: pd.Series(columns[j], dtype=object) for j in keep}
    df = pd.DataFrame(data, columns=names, index=pd.RangeIndex(n_rows), dtype=object)
    df.attrs["format"] = fmt
    df.attrs["column_labels"] = {k: v for k, v in labels.items() if k in data}
    return df


def _is_missing(value: Any) -> bool:
    return not isinstance(value, str)


def _cell_text(value: Any) -> Any:
    """Raw cell value -> answer text, or ``NaN`` when missing."""
    if value is None:
        return np.nan
    if isinstance(value, str):
        return value if value != "" else np.nan
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return np.nan
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if float(value).is_integer():
            return str(int(value))
        return np.format_float_positional(value, unique=True, trim="-")
    if isinstance(value, Decimal):
        if value.is_nan():
            return np.nan
        return str(int(value)) if value == value.to_integral_value() else str(value)
    try:
        if pd.isna(value):  # NaT, pd.NA
            return np.nan
    except (TypeError, ValueError):
        pass
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None and value.time() == _dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return _cell_text(pd.Timestamp(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace") or np.nan
    return str(value)

"""Applying a codebook to a survey file: the :class:`Cohort`.

Loading validates every answer before anything is fitted.  Problems are
collected over the whole file and reported together, each naming the column,
the value, how many rows and the first row numbers (data rows, 1 = the first
row after the header).  Direct identifiers never leave this module.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .codebook import Codebook, Item, as_number, load_codebook, normalise_answer
from .errors import SegmentError, SurveyDataError
from .readers import file_sha256, read_survey

RESUBMISSION_POLICIES = ("error", "drop_exact", "keep_last")
MAX_PROBLEMS_SHOWN = 12


@dataclass
class Cohort:
    """Respondents of one survey, decoded by a codebook, identifiers dropped.

    All frames share one index: the respondent id (the id column's value,
    or the data row number when the codebook names no id column).

    Attributes
    ----------
    codebook : Codebook
    features : DataFrame
        Clustering features: numbers for likert, ordinal and numeric items,
        a category for categorical items, a tuple of options for
        multiselect items (missing answers are NaN).
    outcomes : DataFrame
        Outcome items and outcome scales as numbers.
    covariates : DataFrame
        Covariate items and scales (categoricals as text, multiselects as
        text joined with ``"; "``).
    source : Path or None
        The survey file.
    sha256 : str or None
        Checksum of the survey file.
    answers : DataFrame
        Every distinct answer text of a mapped column and what it became
        (``column, name, answer, mapped_to, n``).
    missingness : DataFrame
        Missing answers per item (``name, role, n_missing, share_missing``).
    resubmissions : dict
        What the resubmission policy removed (``policy, rows_removed``).
    unmentioned_columns : list of str
        Columns of the file the codebook does not mention.
    """

    codebook: Codebook
    features: pd.DataFrame
    outcomes: pd.DataFrame
    covariates: pd.DataFrame
    source: Path | None = None
    sha256: str | None = None
    answers: pd.DataFrame = field(default_factory=pd.DataFrame)
    missingness: pd.DataFrame = field(default_factory=pd.DataFrame)
    resubmissions: dict = field(default_factory=dict)
    unmentioned_columns: list = field(default_factory=list)

    @property
    def ids(self) -> pd.Index:
        return self.features.index

    @property
    def n(self) -> int:
        return len(self.features)

    def subset(self, ids) -> Cohort:
        """The same cohort restricted to some respondents (in that order)."""
        return Cohort(
            codebook=self.codebook,
            features=self.features.loc[ids], outcomes=self.outcomes.loc[ids],
            covariates=self.covariates.loc[ids], source=self.source,
            sha256=self.sha256, answers=self.answers, missingness=self.missingness,
            resubmissions=self.resubmissions,
            unmentioned_columns=self.unmentioned_columns,
        )


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask) + 1
    shown = ", ".join(str(r) for r in rows[:5])
    more = f", ... ({len(rows)} rows)" if len(rows) > 5 else ""
    plural = "rows" if len(rows) > 1 else "row"
    return f"{plural} {shown}{more}"


def _numeric_levels(item: Item) -> dict:
    """Number -> value of the levels (map keys) that are numbers, and of the values
    themselves with ``numeric_codes``: ``"2.0"`` is level ``"2"``."""
    numbers = {as_number(text): v for text, v in item.values.items() if as_number(text) is not None}
    if item.numeric_codes:
        numbers.update({v: v for v in item.values.values()})
    return numbers


def _decode_item(item: Item, raw: pd.Series, problems: list) -> tuple[pd.Series, pd.Series]:
    """Decode one column. Returns (decoded values, missing-code mask)."""
    text = raw.astype("string")
    norm = text.map(lambda v: normalise_answer(v) if v is not pd.NA else v, na_action="ignore")
    blank = text.isna() | (norm == "")
    coded_missing = norm.isin(item.missing).fillna(False).to_numpy(bool)
    missing = blank.to_numpy(bool) | coded_missing
    decoded = pd.Series(np.nan, index=raw.index, dtype=object)

    def report_unmapped(bad: np.ndarray, values: pd.Series, hint: str) -> None:
        for value in pd.unique(values[bad]):
            rows = bad & (values == value).fillna(False).to_numpy(bool)
            problems.append(
                f"column '{item.column}': answer {value!r} is not in the codebook "
                f"({_rows(rows)}). {hint}"
            )

    if item.type in ("likert", "ordinal"):
        mapped = norm.map(item.values).astype(float)
        numbers = _numeric_levels(item)
        unmapped = mapped.isna() & ~pd.Series(missing, index=raw.index)
        if numbers and unmapped.any():
            mapped[unmapped] = np.array([numbers.get(as_number(v), np.nan) for v in norm[unmapped]], float)
        bad = ~missing & mapped.isna().to_numpy(bool)
        key = "levels" if item.type == "likert" else "map"
        report_unmapped(bad, text, f"Add it to '{key}' or to 'missing' of '{item.name}'.")
        values = mapped.astype(float)
        if item.reverse:
            lo, hi = min(item.values.values()), max(item.values.values())
            values = lo + hi - values
        decoded = values.where(~missing)
    elif item.type == "numeric":
        values = pd.Series([np.nan if m else as_number(v) for v, m in zip(text, missing)],
                           index=raw.index, dtype=float)
        bad = ~missing & values.isna().to_numpy(bool)
        report_unmapped(bad, text, f"It is not a finite number; add it to 'missing' of '{item.name}' if it "
                                   "means no answer.")
        if item.range is not None:
            lo, hi = item.range
            out = (~values.isna() & ((values < lo) | (values > hi))).to_numpy(bool)
            for value in pd.unique(text[out]):
                rows = out & (text == value).fillna(False).to_numpy(bool)
                problems.append(
                    f"column '{item.column}': value {value!r} is outside the valid range "
                    f"[{lo:g}, {hi:g}] ({_rows(rows)})."
                )
        decoded = values.astype(float)
    elif item.type == "categorical":
        mapped = norm.map(item.aliases)
        bad = ~missing & mapped.isna().to_numpy(bool)
        report_unmapped(bad, text, f"Add it to 'categories' or 'aliases' of '{item.name}'.")
        decoded = mapped.astype(object).where(~missing, np.nan)
    elif item.type == "multiselect":
        out = []
        for i, (value, miss) in enumerate(zip(text, missing)):
            if miss:
                out.append(np.nan)
                continue
            chosen = set()
            for part in str(value).split(item.separator):
                key = normalise_answer(part)
                if not key:
                    continue
                option = item.aliases.get(key)
                if option is None:
                    problems.append(("multi", item, part.strip(), i))
                    continue
                chosen.add(option)
            out.append(tuple(o for o in item.categories if o in chosen))
        decoded = pd.Series(out, index=raw.index, dtype=object)
    else:  # text: kept only for its missingness
        decoded = text.astype(object).where(~missing, np.nan)
    return decoded, pd.Series(coded_missing, index=raw.index)


def _collapse_multiselect_problems(problems: list) -> list[str]:
    out, grouped = [], {}
    for p in problems:
        if isinstance(p, tuple):
            _, item, value, row = p
            grouped.setdefault((item.column, item.name, value), []).append(row)
        else:
            out.append(p)
    for (column, name, value), rows in grouped.items():
        mask = np.zeros(max(rows) + 1, bool)
        mask[rows] = True
        out.append(
            f"column '{column}': option {value!r} is not in the codebook ({_rows(mask)}). "
            f"Add it to 'options' or 'aliases' of '{name}'."
        )
    return out


def _apply_resubmissions(frame: pd.DataFrame, id_column: str, policy: str, source) -> tuple[pd.DataFrame, dict]:
    if policy not in RESUBMISSION_POLICIES:
        raise SegmentError(
            f"resubmission policy '{policy}' is unknown; use one of {', '.join(RESUBMISSION_POLICIES)}."
        )
    ids = frame[id_column]
    removed = 0
    if policy == "drop_exact":
        exact = frame.duplicated(keep="first")
        removed = int(exact.sum())
        frame = frame[~exact]
    elif policy == "keep_last":
        dup = frame.duplicated(subset=[id_column], keep="last")
        removed = int(dup.sum())
        frame = frame[~dup]
    ids = frame[id_column]
    rows = frame.index.to_numpy()

    def mask_of(selected: pd.Series) -> np.ndarray:
        full = np.zeros(rows.max() + 1, bool)
        full[rows[selected.to_numpy(bool)]] = True
        return full

    empty = ids.isna()
    if empty.any():
        raise SurveyDataError(
            f"{source}: column '{id_column}': respondent id is empty ({_rows(mask_of(empty))})."
        )
    dup = ids.duplicated(keep=False)
    if dup.any():
        first = ids[dup].iloc[0]
        raise SurveyDataError(
            f"{source}: column '{id_column}': {ids[dup].nunique()} respondent id(s) occur more "
            f"than once, e.g. {first!r} ({_rows(mask_of(ids == first))}). Name a resubmission "
            f"policy in the experiment ([experiment] resubmissions = \"drop_exact\" or \"keep_last\")."
        )
    return frame, {"policy": policy, "rows_removed": removed}


def _score_scale(scale, items: pd.DataFrame) -> pd.Series:
    answered = items.notna().sum(axis=1)
    mean = items.mean(axis=1, skipna=True)
    score = mean * len(scale.items) if scale.method == "sum" else mean
    return score.where(answered >= scale.min_answered)


def load_cohort(
    survey: str | Path | pd.DataFrame,
    codebook: Codebook | str | Path,
    *,
    resubmissions: str = "error",
    sheet: str | int | None = None,
) -> Cohort:
    """Read a survey file and decode it with a codebook.

    Parameters
    ----------
    survey : str, Path or DataFrame
        A survey file (CSV, Qualtrics CSV, XLSX, SPSS ``.sav``, Stata
        ``.dta``) or a DataFrame of answer text.
    codebook : Codebook, str or Path
        The codebook, or the path of its TOML file.
    resubmissions : {"error", "drop_exact", "keep_last"}
        What to do with a respondent id that occurs more than once.
    sheet : str or int, optional
        For an XLSX file, the sheet to read (name or 0-based position);
        the first by default.  Messages name the sheet read.

    Returns
    -------
    Cohort

    Raises
    ------
    SurveyDataError
        Listing every unmapped answer, out-of-range number, codebook column
        missing from the file and duplicated respondent id; or the file
        holds no respondents.
    """
    if not isinstance(codebook, Codebook):
        codebook = load_codebook(codebook)
    frame, source, sha, where = _read(survey, sheet)
    unmentioned = _check_columns(frame, codebook, where)
    frame, ids, resub = _respondents(frame, codebook, resubmissions, where)
    decoded, answers, missingness = _decode_answers(frame, codebook, where)
    table = pd.DataFrame(decoded)
    table.index = ids
    for scale in codebook.scales:
        table[scale.name] = _score_scale(scale, table[list(scale.items)].astype(float))
    features, outcomes, covariates = _split_by_role(table, codebook)
    return Cohort(
        codebook=codebook, features=features, outcomes=outcomes, covariates=covariates,
        source=source, sha256=sha,
        answers=pd.DataFrame(answers, columns=["name", "answer", "mapped_to", "n"]),
        missingness=pd.DataFrame(missingness),
        resubmissions=resub,
        unmentioned_columns=unmentioned,
    )


def _read(survey: str | Path | pd.DataFrame, sheet) -> tuple[pd.DataFrame, Path | None, str | None, str]:
    """The answer text, the survey file and its checksum, and how messages name the survey."""
    if isinstance(survey, pd.DataFrame):
        frame, source, sha = survey.reset_index(drop=True), None, None
    else:
        source = Path(survey)
        frame = read_survey(source, sheet=sheet)
        sha = file_sha256(source)
    where = source.name if source is not None else "survey"
    if "sheet" in frame.attrs:
        where += f" (sheet {frame.attrs['sheet']!r})"
    if len(frame) == 0:
        raise SurveyDataError(f"{where}: the file has a header row but no respondents.")
    return frame, source, sha, where


def _check_columns(frame: pd.DataFrame, codebook: Codebook, where: str) -> list[str]:
    """Every column of the codebook must be in the file; the columns of the file the
    codebook does not mention are warned about and returned."""
    absent = [it.column for it in codebook.items if it.column not in frame.columns]
    if absent:
        listing = "\n  ".join(absent)
        raise SurveyDataError(
            f"{where}: {len(absent)} column(s) of the codebook are missing from the file:\n  {listing}"
        )
    mentioned = {it.column for it in codebook.items}
    unmentioned = [c for c in frame.columns if c not in mentioned]
    if unmentioned:
        warnings.warn(
            f"{where}: {len(unmentioned)} column(s) are not in the codebook and are ignored: "
            + ", ".join(repr(c) for c in unmentioned),
            stacklevel=3,  # the caller of load_cohort
        )
    return unmentioned


def _respondents(frame: pd.DataFrame, codebook: Codebook, resubmissions: str,
                 where: str) -> tuple[pd.DataFrame, pd.Index, dict]:
    """The rows kept by the resubmission policy, identifiers dropped and rows numbered
    from 0; the respondent ids; and what the policy removed."""
    id_items = codebook.items_with_role("id")
    resub = {"policy": resubmissions, "rows_removed": 0}
    if id_items:
        frame, resub = _apply_resubmissions(frame, id_items[0].column, resubmissions, where)
    # identifiers are dropped before anything else looks at the rows
    frame = frame.drop(columns=[it.column for it in codebook.items_with_role("identifier")])
    positions = pd.RangeIndex(len(frame))
    ids = (
        pd.Index(frame[id_items[0].column].astype(str).to_numpy(), name="respondent")
        if id_items else pd.Index(frame.index.to_numpy() + 1, name="respondent")
    )
    return frame.set_axis(positions), ids, resub


def _decode_answers(frame: pd.DataFrame, codebook: Codebook, where: str) -> tuple[dict, list, list]:
    """Every item decoded (by name), the rows of the answers and missingness tables.

    Raises
    ------
    SurveyDataError
        Listing the problems found over the whole file.
    """
    problems: list = []
    decoded, answers, missingness = {}, [], []
    for item in codebook.items:
        if item.role in ("identifier", "id"):
            continue
        values, coded = _decode_item(item, frame[item.column], problems)
        decoded[item.name] = values
        n_missing = int(values.isna().sum())
        missingness.append({
            "name": item.name, "role": item.role, "type": item.type,
            "n_missing": n_missing, "share_missing": n_missing / max(len(frame), 1),
            "n_missing_code": int(coded.sum()),
        })
        if item.missing_indicator:
            decoded[f"{item.name}_missing"] = coded.astype(float)
        if item.type in ("likert", "ordinal", "categorical", "multiselect"):
            answers += _answer_rows(item, frame[item.column], values)
    problems = _collapse_multiselect_problems(problems)
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        raise SurveyDataError(
            f"{where}: {len(problems)} problem(s) with answers (rows are data rows, 1 = first row "
            f"after the header):\n  " + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    return decoded, answers, missingness


def _answer_rows(item: Item, raw: pd.Series, values: pd.Series) -> list[dict]:
    """Each distinct answer text of a mapped column, what it became and how often it was given."""
    rows = []
    for answer, n in raw.value_counts(dropna=False).items():
        mapped = values[(raw == answer) if not pd.isna(answer) else raw.isna()]
        target = mapped.iloc[0] if len(mapped) else np.nan
        rows.append({
            "name": item.name, "answer": "" if pd.isna(answer) else str(answer),
            "mapped_to": "missing" if (not isinstance(target, tuple) and pd.isna(target))
            else "; ".join(target) if isinstance(target, tuple) else str(target),
            "n": int(n),
        })
    return rows


def _split_by_role(table: pd.DataFrame, codebook: Codebook) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The decoded items and scale scores as features, outcomes and covariates."""
    def columns_for(role: str) -> list[str]:
        names = [it.name for it in codebook.items_with_role(role)]
        if role == "feature":
            names += [f"{it.name}_missing" for it in codebook.items_with_role(role) if it.missing_indicator]
        return names + [s.name for s in codebook.scales if s.role == role]

    covariates = table[columns_for("covariate")].copy()
    for it in codebook.items_with_role("covariate"):
        if it.type == "multiselect":
            covariates[it.name] = covariates[it.name].map(
                lambda v: "; ".join(v) if isinstance(v, tuple) else v
            )
    return table[columns_for("feature")].copy(), table[columns_for("outcome")].astype(float), covariates

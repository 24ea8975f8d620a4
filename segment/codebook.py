"""Codebooks: what every column of a survey file means.

A codebook is a TOML file with one ``[[column]]`` table per column of the
survey file, optional ``[[scale]]`` tables (scores computed from items) and
optional ``[[instrument]]`` tables that pull in a standard instrument (GAD-7,
PHQ-9, ...) defined in its own codebook file.  The format is documented with
every key in ``docs/codebook.md``.

Nothing here reads survey data: :func:`load_codebook` parses and validates the
codebook itself, and :mod:`segment.cohort` applies it to a file.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import CodebookError

ROLES = ("id", "identifier", "feature", "outcome", "covariate", "ignore")
TYPES = ("likert", "ordinal", "numeric", "categorical", "multiselect", "text")
DEFAULT_MISSING_CODES = ("Don't know", "Prefer not to say", "Not applicable")


def normalise_answer(text: str) -> str:
    """The form in which answers are matched: stripped and case-folded."""
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class Item:
    """One column of a survey file and how to read it.

    Attributes
    ----------
    column : str
        The column header exactly as in the file.
    name : str
        A short snake_case name used everywhere downstream.
    role : str
        One of ``id``, ``identifier``, ``feature``, ``outcome``,
        ``covariate``, ``ignore``.
    type : str
        One of ``likert``, ``ordinal``, ``numeric``, ``categorical``,
        ``multiselect``, ``text``.
    values : dict
        For ``likert`` and ``ordinal``: normalised answer text -> number.
    categories : tuple
        For ``categorical``: the canonical categories; for ``multiselect``:
        the canonical options.
    aliases : dict
        Normalised answer text -> canonical category or option.
    missing : tuple
        Normalised answer texts that mean "no answer".
    missing_indicator : bool
        Whether a missing answer also becomes a 0/1 feature of its own.
    reverse : bool
        Reverse-code a likert item: ``min + max - value``.
    range : tuple or None
        Valid ``(low, high)`` for a numeric item.
    separator : str
        Separator of a multiselect answer.
    label : str
        Human-readable description (defaults to the column header).
    """

    column: str
    name: str
    role: str
    type: str = "text"
    values: dict = field(default_factory=dict)
    categories: tuple = ()
    aliases: dict = field(default_factory=dict)
    missing: tuple = ()
    missing_indicator: bool = False
    reverse: bool = False
    range: tuple | None = None
    separator: str = ","
    label: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.type in ("likert", "ordinal", "numeric")


@dataclass(frozen=True)
class Scale:
    """A score computed from items (e.g. the GAD-7 sum).

    Attributes
    ----------
    name : str
        Name of the score.
    items : tuple of str
        Item names it is computed from.
    method : str
        ``sum`` or ``mean``.  A sum over partly answered items is prorated
        (mean of answered items times the number of items).
    min_answered : int
        Fewer answered items give a missing score.
    cutoffs : tuple of (float, str)
        Thresholds (score at or above) and their labels.
    role : str
        ``outcome`` (default), ``feature`` or ``covariate``.
    label : str
        Human-readable description.
    """

    name: str
    items: tuple
    method: str = "mean"
    min_answered: int = 1
    cutoffs: tuple = ()
    role: str = "outcome"
    label: str = ""


@dataclass(frozen=True)
class Codebook:
    """A validated codebook.

    Attributes
    ----------
    name : str
        Short name of the survey.
    title : str
        Human-readable title.
    items : tuple of Item
        One per column of the file, in file order.
    scales : tuple of Scale
        Scores computed from items.
    path : Path or None
        The file the codebook was read from.
    """

    name: str
    title: str
    items: tuple
    scales: tuple = ()
    path: Path | None = None

    def item(self, name: str) -> Item:
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(name)

    def items_with_role(self, role: str) -> list[Item]:
        return [it for it in self.items if it.role == role]

    def cutoffs(self) -> dict[str, list[tuple[float, str]]]:
        """Clinical cutoffs per scale name."""
        return {s.name: list(s.cutoffs) for s in self.scales if s.cutoffs}


# --------------------------------------------------------------------------
# parsing

_ITEM_KEYS = {
    "column", "name", "role", "type", "levels", "values", "map", "categories",
    "options", "aliases", "missing", "missing_indicator", "reverse", "range",
    "separator", "label",
}
_SCALE_KEYS = {"name", "items", "method", "min_answered", "cutoffs", "role", "label"}
_INSTRUMENT_KEYS = {"use", "prefix", "columns", "role", "scale_name", "missing"}
_TOP_KEYS = {"survey", "missing", "column", "scale", "instrument"}


def _unknown(keys, allowed, where: str, path) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise CodebookError(
                f"{path}: unknown key '{key}' in {where}.{hint} "
                f"Valid keys: {', '.join(sorted(allowed))}."
            )


def _require(table: dict, key: str, where: str, path) -> Any:
    if key not in table:
        raise CodebookError(f"{path}: {where} has no '{key}'.")
    return table[key]


def _parse_item(table: dict, index: int, default_missing: tuple, path) -> Item:
    where = f"[[column]] #{index + 1}"
    _unknown(table, _ITEM_KEYS, where, path)
    column = str(_require(table, "column", where, path))
    where = f"column '{column}'"
    name = str(table.get("name", column))
    role = table.get("role", "ignore")
    if role not in ROLES:
        raise CodebookError(f"{path}: {where}: role '{role}' is not one of {', '.join(ROLES)}.")
    type_ = table.get("type", "text")
    if type_ not in TYPES:
        raise CodebookError(f"{path}: {where}: type '{type_}' is not one of {', '.join(TYPES)}.")

    values: dict = {}
    categories: tuple = ()
    aliases: dict = {}
    if type_ == "likert":
        levels = _require(table, "levels", where, path)
        nums = table.get("values", list(range(1, len(levels) + 1)))
        if len(nums) != len(levels):
            raise CodebookError(
                f"{path}: {where}: {len(levels)} levels but {len(nums)} values."
            )
        values = {normalise_answer(lv): float(v) for lv, v in zip(levels, nums)}
    elif type_ == "ordinal":
        mapping = _require(table, "map", where, path)
        values = {normalise_answer(k): float(v) for k, v in mapping.items()}
    elif type_ in ("categorical", "multiselect"):
        key = "categories" if type_ == "categorical" else "options"
        categories = tuple(str(c) for c in _require(table, key, where, path))
        for c in categories:
            aliases[normalise_answer(c)] = c
        for alias, target in table.get("aliases", {}).items():
            if target not in categories:
                raise CodebookError(
                    f"{path}: {where}: alias '{alias}' points to '{target}', "
                    f"which is not among {key} {list(categories)}."
                )
            aliases[normalise_answer(alias)] = target
    for key in ("reverse",):
        if table.get(key) and type_ != "likert":
            raise CodebookError(f"{path}: {where}: 'reverse' applies to likert items only.")
    range_ = table.get("range")
    if range_ is not None:
        if type_ != "numeric" or len(range_) != 2 or range_[0] > range_[1]:
            raise CodebookError(
                f"{path}: {where}: 'range' must be [low, high] on a numeric item."
            )
        range_ = (float(range_[0]), float(range_[1]))
    missing = tuple(normalise_answer(m) for m in table.get("missing", default_missing))
    clash = [m for m in missing if m in values or m in aliases]
    if clash:
        raise CodebookError(
            f"{path}: {where}: answer '{clash[0]}' is both a missing code and a valid answer."
        )
    return Item(
        column=column, name=name, role=role, type=type_, values=values,
        categories=categories, aliases=aliases, missing=missing,
        missing_indicator=bool(table.get("missing_indicator", False)),
        reverse=bool(table.get("reverse", False)), range=range_,
        separator=str(table.get("separator", ",")),
        label=str(table.get("label", column)),
    )


def _parse_scale(table: dict, index: int, path, prefix: str = "") -> Scale:
    where = f"[[scale]] #{index + 1}"
    _unknown(table, _SCALE_KEYS, where, path)
    name = str(_require(table, "name", where, path))
    method = table.get("method", "mean")
    if method not in ("sum", "mean"):
        raise CodebookError(f"{path}: scale '{name}': method must be 'sum' or 'mean', got '{method}'.")
    items = tuple(prefix + str(i) for i in _require(table, "items", f"scale '{name}'", path))
    cutoffs = tuple((float(c[0]), str(c[1])) for c in table.get("cutoffs", []))
    role = table.get("role", "outcome")
    if role not in ("outcome", "feature", "covariate"):
        raise CodebookError(f"{path}: scale '{name}': role must be outcome, feature or covariate.")
    return Scale(
        name=name, items=items, method=method,
        min_answered=int(table.get("min_answered", len(items))),
        cutoffs=cutoffs, role=role, label=str(table.get("label", name)),
    )


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CodebookError(f"codebook not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CodebookError(f"{path}: not valid TOML: {exc}") from None


def _instrument(table: dict, index: int, default_missing: tuple, path: Path):
    where = f"[[instrument]] #{index + 1}"
    _unknown(table, _INSTRUMENT_KEYS, where, path)
    use = Path(str(_require(table, "use", where, path)))
    ipath = use if use.is_absolute() else (path.parent / use)
    doc = _read_toml(ipath)
    prefix = str(table.get("prefix", ""))
    columns = table.get("columns", {})
    role = table.get("role")
    items = []
    for i, raw in enumerate(doc.get("column", [])):
        raw = dict(raw)
        item_id = str(raw.get("name", raw["column"]))
        raw["name"] = prefix + item_id
        raw["column"] = columns.get(item_id, raw["column"])
        if role:
            raw["role"] = role
        if "missing" in table:
            raw["missing"] = table["missing"]
        items.append(_parse_item(raw, i, default_missing, ipath))
    unknown_cols = set(columns) - {str(r.get("name", r["column"])) for r in doc.get("column", [])}
    if unknown_cols:
        raise CodebookError(
            f"{path}: {where}: 'columns' names items that {ipath.name} does not define: "
            f"{', '.join(sorted(unknown_cols))}."
        )
    scales = []
    for i, raw in enumerate(doc.get("scale", [])):
        scale = _parse_scale(raw, i, ipath, prefix)
        if "scale_name" in table and i == 0:
            scale = Scale(**{**scale.__dict__, "name": str(table["scale_name"])})
        scales.append(scale)
    return items, scales


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook file.

    Parameters
    ----------
    path : str or Path
        A TOML codebook.

    Returns
    -------
    Codebook

    Raises
    ------
    CodebookError
        When the file is missing, is not TOML, has an unknown key, or is
        inconsistent (duplicate names, a scale over an unknown item, ...).
    """
    path = Path(path)
    doc = _read_toml(path)
    _unknown(doc, _TOP_KEYS, "the top level", path)
    survey = doc.get("survey", {})
    _unknown(survey, {"name", "title"}, "[survey]", path)
    default_missing = tuple(doc.get("missing", {}).get("codes", DEFAULT_MISSING_CODES))
    _unknown(doc.get("missing", {}), {"codes"}, "[missing]", path)

    items = [_parse_item(t, i, default_missing, path) for i, t in enumerate(doc.get("column", []))]
    scales = [_parse_scale(t, i, path) for i, t in enumerate(doc.get("scale", []))]
    for i, table in enumerate(doc.get("instrument", [])):
        more_items, more_scales = _instrument(table, i, default_missing, path)
        items += more_items
        scales += more_scales
    if not items:
        raise CodebookError(f"{path}: the codebook defines no [[column]].")

    for attr in ("column", "name"):
        seen: dict = {}
        for it in items:
            key = getattr(it, attr)
            if key in seen:
                raise CodebookError(f"{path}: {attr} '{key}' is defined twice.")
            seen[key] = it
    names = {it.name for it in items}
    for s in scales:
        if s.name in names:
            raise CodebookError(f"{path}: scale '{s.name}' has the name of an item.")
        missing = [i for i in s.items if i not in names]
        if missing:
            raise CodebookError(
                f"{path}: scale '{s.name}' uses items the codebook does not define: "
                f"{', '.join(missing)}."
            )
        bad = [i for i in s.items if not next(it for it in items if it.name == i).is_numeric]
        if bad:
            raise CodebookError(f"{path}: scale '{s.name}': items {bad} are not numeric.")
        if not 1 <= s.min_answered <= len(s.items):
            raise CodebookError(
                f"{path}: scale '{s.name}': min_answered must be in [1, {len(s.items)}]."
            )
    if len([it for it in items if it.role == "id"]) > 1:
        raise CodebookError(f"{path}: more than one column has role 'id'.")
    return Codebook(
        name=str(survey.get("name", path.stem)),
        title=str(survey.get("title", survey.get("name", path.stem))),
        items=tuple(items), scales=tuple(scales), path=path,
    )

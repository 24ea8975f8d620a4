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
import math
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


def as_number(text) -> float | None:
    """The finite number an answer text writes (``"2"``, ``"2.0"``, ``"2,0"``), or None.

    Exports write an integer column holding blanks as floats, and some
    locales write a decimal comma.
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        t = str(text).strip()
        if t.count(",") == 1 and "." not in t:
            t = t.replace(",", ".")
        try:
            value = float(t)
        except ValueError:
            return None
    return value if math.isfinite(value) else None


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
    numeric_codes : bool
        A likert item also accepts the number of each level as its answer
        (``"2"``, ``"2.0"``, ``"2,0"``).
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
    numeric_codes: bool = False

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
    "separator", "label", "numeric_codes",
}
_SCALE_KEYS = {"name", "items", "method", "min_answered", "cutoffs", "role", "label"}
_INSTRUMENT_KEYS = {"use", "prefix", "columns", "role", "scale_name", "missing"}
_TOP_KEYS = {"survey", "missing", "column", "scale", "instrument"}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_label(v) -> bool:
    """An answer text as a codebook may write it: a str, or a number for numeric codes."""
    return isinstance(v, str) or _is_number(v)


_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "labels": (lambda v: isinstance(v, list) and all(_is_label(x) for x in v),
               'a list of answer texts, e.g. ["Never", "Rarely"]'),
    "strings": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                'a list of strings, e.g. ["a", "b"]'),
    "numbers": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of numbers"),
    "range": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and v[0] <= v[1],
              "[low, high] with two numbers, low <= high"),
    "map": (lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
            'a table of answer = number, e.g. { "Less than 1 hour" = 0.5 }'),
    "aliases": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                'a table of answer = category, e.g. { "NB" = "nonbinary" }'),
    "cutoffs": (lambda v: isinstance(v, list) and all(
        isinstance(c, list) and len(c) == 2 and _is_number(c[0]) and isinstance(c[1], str) for c in v),
        'a list of [threshold, label] pairs, e.g. [[5, "mild"], [10, "moderate"]]'),
    "table": (lambda v: isinstance(v, dict), "a table"),
    "tables": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
               "an array of tables ([[...]])"),
}


def _check_types(table: dict, kinds: dict, where: str, path) -> None:
    """Every key present in ``table`` holds a value of its kind, or fail naming it."""
    for key, kind in kinds.items():
        if key in table:
            test, wanted = _KINDS[kind]
            if not test(table[key]):
                raise CodebookError(f"{path}: {where}: '{key}' must be {wanted}; got {table[key]!r}.")


_ITEM_KINDS = {
    "column": "str", "name": "str", "role": "str", "type": "str", "levels": "labels", "values": "numbers",
    "map": "map", "categories": "labels", "options": "labels", "aliases": "aliases", "missing": "labels",
    "missing_indicator": "bool", "reverse": "bool", "numeric_codes": "bool", "range": "range",
    "separator": "str", "label": "str",
}
_SCALE_KINDS = {"name": "str", "items": "strings", "method": "str", "min_answered": "int",
                "cutoffs": "cutoffs", "role": "str", "label": "str"}
_INSTRUMENT_KINDS = {"use": "str", "prefix": "str", "columns": "aliases", "role": "str",
                     "scale_name": "str", "missing": "labels"}


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
    _check_types(table, {"column": "str"}, where, path)
    column = _require(table, "column", where, path)
    where = f"column '{column}'"
    _check_types(table, _ITEM_KINDS, where, path)
    if not column or not str(table.get("name", column)):
        raise CodebookError(f"{path}: {where}: 'column' and 'name' must not be empty.")
    if "separator" in table and not table["separator"]:
        raise CodebookError(f"{path}: {where}: 'separator' must not be empty.")
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
        if not levels:
            raise CodebookError(f"{path}: {where}: 'levels' is empty; list the answer labels in order.")
        nums = table.get("values", list(range(1, len(levels) + 1)))
        if len(nums) != len(levels):
            raise CodebookError(
                f"{path}: {where}: {len(levels)} levels but {len(nums)} values."
            )
        values = {normalise_answer(lv): float(v) for lv, v in zip(levels, nums)}
        if table.get("numeric_codes"):
            clash = [lv for lv, v in zip(levels, nums) if as_number(lv) not in (None, float(v))]
            if clash:
                raise CodebookError(
                    f"{path}: {where}: level {clash[0]!r} is a number other than its value, so with "
                    "'numeric_codes' an answer of that number would be ambiguous.")
    elif type_ == "ordinal":
        mapping = _require(table, "map", where, path)
        values = {normalise_answer(k): float(v) for k, v in mapping.items()}
    elif type_ in ("categorical", "multiselect"):
        key = "categories" if type_ == "categorical" else "options"
        categories = tuple(str(c) for c in _require(table, key, where, path))
        if not categories:
            raise CodebookError(f"{path}: {where}: '{key}' is empty.")
        for c in categories:
            aliases[normalise_answer(c)] = c
        for alias, target in table.get("aliases", {}).items():
            if target not in categories:
                raise CodebookError(
                    f"{path}: {where}: alias '{alias}' points to '{target}', "
                    f"which is not among {key} {list(categories)}."
                )
            aliases[normalise_answer(alias)] = target
    for key in ("reverse", "numeric_codes"):
        if table.get(key) and type_ != "likert":
            raise CodebookError(f"{path}: {where}: '{key}' applies to likert items only.")
    range_ = table.get("range")
    if range_ is not None:
        if type_ != "numeric":
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
        numeric_codes=bool(table.get("numeric_codes", False)),
        separator=str(table.get("separator", ",")),
        label=str(table.get("label", column)),
    )


def _parse_scale(table: dict, index: int, path, prefix: str = "") -> Scale:
    where = f"[[scale]] #{index + 1}"
    _unknown(table, _SCALE_KEYS, where, path)
    _check_types(table, {"name": "str"}, where, path)
    name = _require(table, "name", where, path)
    _check_types(table, _SCALE_KINDS, f"scale '{name}'", path)
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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CodebookError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise CodebookError(f"cannot read codebook {path}: {exc.strerror or exc}") from None


def _instrument(table: dict, index: int, default_missing: tuple, path: Path):
    where = f"[[instrument]] #{index + 1}"
    _unknown(table, _INSTRUMENT_KEYS, where, path)
    _check_types(table, _INSTRUMENT_KINDS, where, path)
    use = Path(str(_require(table, "use", where, path)))
    ipath = use if use.is_absolute() else (path.parent / use)
    doc = _read_toml(ipath)
    _check_types(doc, {"column": "tables", "scale": "tables"}, "the top level", ipath)
    for i, raw in enumerate(doc.get("column", [])):
        _require(raw, "column", f"[[column]] #{i + 1}", ipath)
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
    _check_types(doc, {"survey": "table", "missing": "table", "column": "tables", "scale": "tables",
                       "instrument": "tables"}, "the top level", path)
    survey = doc.get("survey", {})
    _unknown(survey, {"name", "title"}, "[survey]", path)
    _check_types(survey, {"name": "str", "title": "str"}, "[survey]", path)
    _unknown(doc.get("missing", {}), {"codes"}, "[missing]", path)
    _check_types(doc.get("missing", {}), {"codes": "labels"}, "[missing]", path)
    default_missing = tuple(str(m) for m in doc.get("missing", {}).get("codes", DEFAULT_MISSING_CODES))

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

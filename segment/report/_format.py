"""Number formatting and the plain table structure the template renders."""

from __future__ import annotations

import math

import pandas as pd


def is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() == "" or v.strip().lower() == "nan"
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def num(v, digits: int = 2) -> str:
    """A number with ``digits`` decimals ("—" when missing; text passes through)."""
    if is_missing(v):
        return "—"
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return v
    v = float(v)
    if not math.isfinite(v):
        return "—"
    if abs(v) >= 10 ** 6:
        return f"{v:.3g}"
    return f"{v:,.{digits}f}".replace("-", "−")


def integer(v) -> str:
    if is_missing(v):
        return "—"
    if isinstance(v, str):
        return v
    return f"{int(round(float(v))):,}"


def share(v, digits: int = 1) -> str:
    if is_missing(v):
        return "—"
    return f"{100 * float(v):.{digits}f}%"


def apa(v, digits: int = 2) -> str:
    """A bounded statistic without its leading zero, as APA style has it (.45, −.12)."""
    text = num(v, digits)
    return text.replace("0.", ".", 1) if text.lstrip("−").startswith("0.") else text


def pvalue(p) -> str:
    """APA p value: "< .001", ".032", "1.000" is shown as "> .999"."""
    if is_missing(p):
        return "—"
    p = float(p)
    if p < 0.001:
        return "< .001"
    if p > 0.999:
        return "> .999"
    return f"{p:.3f}".lstrip("0")


def table(frame: pd.DataFrame, *, caption: str = "", note: str = "", row_classes=None,
          numeric=None) -> dict:
    """The plain structure rendered by the template's ``table`` macro.

    Cells are shown as given (format them first); ``numeric`` names the
    columns aligned right.
    """
    cols = [str(c) for c in frame.columns]
    numeric = set(numeric or [])
    rows = [["" if is_missing(v) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return {"columns": cols, "rows": rows, "caption": caption, "note": note,
            "row_classes": list(row_classes) if row_classes is not None else [""] * len(rows),
            "numeric": [c in numeric for c in cols]}

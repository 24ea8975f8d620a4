"""The saved results of a run, read back from its run directory.

The report is rendered from these files only, so rendering a fresh run and
re-rendering a saved one are the same code.  Files that hold one row per
respondent (``assignments.csv``, ``respondent_stability.csv``) are never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import SegmentError
from ..vocabulary import ARCHETYPE_METHODS as METHODS
from ..vocabulary import DISPLAY_NAMES as METHOD_LABELS  # noqa: F401 - the report modules read it here

#: Files that hold respondent identifiers or one row per respondent; the report never reads them.
PER_RESPONDENT = frozenset({"assignments", "respondent_stability"})
DEFAULT_MIN_CELL = 10


@dataclass
class RunData:
    """Tables, metrics and manifest of one run (never a per-respondent table).

    Attributes
    ----------
    tables : dict of DataFrame
        Every CSV table of the run directory by file stem, except
        per-respondent tables.
    metrics : dict
        ``metrics.json``.
    manifest : dict
        ``manifest.json``.
    folder : Path or None
        The run directory the data was read from.
    """

    tables: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    folder: Path | None = None

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name`` (an empty frame when the run did not write it)."""
        t = self.tables.get(name)
        return t if t is not None else pd.DataFrame()

    def has(self, name: str) -> bool:
        t = self.tables.get(name)
        return t is not None and len(t) > 0

    @property
    def config(self) -> dict:
        return self.manifest.get("config", {}) or {}

    @property
    def min_cell(self) -> int:
        value = (self.config.get("report") or {}).get("min_cell", DEFAULT_MIN_CELL)
        try:
            return max(int(value), 1)
        except (TypeError, ValueError):
            return DEFAULT_MIN_CELL

    @property
    def methods(self) -> list[str]:
        sizes = self.table("archetype_sizes")
        found = set(sizes["method"]) if "method" in sizes else set()
        return [m for m in METHODS if m in found]


def is_run_dir(folder) -> bool:
    folder = Path(folder)
    return folder.is_dir() and (folder / "manifest.json").is_file() and (folder / "metrics.json").is_file()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SegmentError(f"{path}: cannot be read as JSON ({exc}). Is this run directory complete?") from exc


def load_run_data(folder) -> RunData:
    """Read a run directory.

    Parameters
    ----------
    folder : str or Path
        A run directory written by ``segment run``.

    Returns
    -------
    RunData

    Raises
    ------
    SegmentError
        When ``folder`` is not a run directory (no ``manifest.json`` and
        ``metrics.json``).
    """
    folder = Path(folder)
    if not is_run_dir(folder):
        what = "does not exist" if not folder.exists() else (
            "is not a folder" if not folder.is_dir() else "holds no manifest.json and metrics.json")
        raise SegmentError(f"{folder} is not a run directory: it {what}. Give the folder that "
                           f"'segment run' wrote (reports/<experiment>/<run id>).")
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        if path.stem in PER_RESPONDENT:
            continue
        try:
            tables[path.stem] = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            tables[path.stem] = pd.DataFrame()
    return RunData(tables=tables, metrics=_read_json(folder / "metrics.json"),
                   manifest=_read_json(folder / "manifest.json"), folder=folder)


def run_data_from(obj) -> RunData:
    """A :class:`RunData` from a run directory, a ``RunData`` or an in-memory ``Run``."""
    if isinstance(obj, RunData):
        return obj
    if isinstance(obj, (str, Path)):
        return load_run_data(obj)
    if hasattr(obj, "tables") and hasattr(obj, "metrics"):
        tables = {k: v for k, v in obj.tables.items() if k not in PER_RESPONDENT}
        manifest = dict(getattr(obj, "manifest", {}) or {})
        if "config" not in manifest and getattr(obj, "config", None) is not None:
            try:
                manifest["config"] = obj.config.to_dict()
            except AttributeError:
                pass
        return RunData(tables=tables, metrics=obj.metrics, manifest=manifest,
                       folder=getattr(obj, "path", None))
    raise TypeError(f"expected a run directory, RunData or Run; got {type(obj).__name__}")

"""Run directories: made, locked, written, renamed into place and read back.

An output folder (a run, a sweep) is written to a hidden working folder
``.<name>.incomplete`` beside its final place and renamed into place only
when every file is written, so an output folder that exists is complete.
An existing folder is never overwritten.  Every table is written with one
precision rule: six significant digits in CSV, exact numbers in JSON with
NaN and infinities as null.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ExperimentConfig
from .errors import ConfigError, SegmentError
from .progress import peak_rss_mib
from .readers import file_sha256

PACKAGES = ("segment", "numpy", "scipy", "pandas", "scikit-learn", "umap-learn", "hdbscan",
            "numba", "statsmodels", "matplotlib", "jinja2", "joblib")
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
ASSIGNMENTS_FILE = "assignments.csv"


def timestamp() -> str:
    """Local time as a folder name, e.g. ``20240131-142501``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def utc_timestamp() -> str:
    """UTC time to the second in ISO 8601, as recorded in a manifest."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict:
    """Versions of Python and of every package a run depends on (None when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# --------------------------------------------------------------------------
# tables and JSON

def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def _finite(obj):
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def write_json(path: Path, data) -> None:
    """Write ``data`` as indented JSON; NaN and infinities become null."""
    text = json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_csv(path: Path, frame: pd.DataFrame, index: bool = False) -> None:
    """Write a table with numbers to six significant digits."""
    frame.to_csv(path, index=index, float_format="%.6g", lineterminator="\n")


def read_json(path: Path) -> dict:
    """Read a JSON file of a run directory.

    Raises
    ------
    SegmentError
        When the file is missing (the folder is not a run directory) or is
        not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentError(f"{path.parent} is not a run directory: it has no {path.name}.") from None
    except json.JSONDecodeError as exc:
        raise SegmentError(f"{path}: not valid JSON ({exc}).") from None


# --------------------------------------------------------------------------
# folders

def check_output(config: ExperimentConfig) -> None:
    """The run folder can be made: ``experiment.output`` is a writable folder (or can become one)."""
    target = config.resolve(config.experiment.output) / config.experiment.name
    place = target
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise ConfigError(f"config key 'experiment.output': {place} is a file, not a folder; runs are "
                          f"written to {target}.")
    if not os.access(place, os.W_OK | os.X_OK):
        raise ConfigError(f"config key 'experiment.output': cannot write into {place} (permission denied); "
                          "choose a folder you can write to.")


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return those made, outermost first.

    Raises
    ------
    ConfigError
        When a file stands in the way or the place is not writable.
    """
    missing = []
    place = Path(folder)
    while not place.exists() and place != place.parent:
        missing.append(place)
        place = place.parent
    made = []
    try:
        for p in reversed(missing):
            try:
                p.mkdir()
            except FileExistsError:
                if p.is_dir():  # another run made it at the same moment: not ours to remove
                    continue
                raise
            made.append(p)
    except OSError as exc:
        for p in reversed(made):
            p.rmdir()
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            raise ConfigError(f"config key 'experiment.output': cannot make folder {folder}: a file of that "
                              "name is in the way.") from None
        raise ConfigError(f"config key 'experiment.output': cannot make folder {folder} "
                          f"({exc.strerror or exc}).") from None
    return made


def new_working_folder(parent: Path, stamp: str) -> tuple[Path, Path]:
    """(final, working) paths of a new output folder ``parent/<stamp>``.

    The hidden working folder ``.<name>.incomplete`` is created here; a name
    taken by a finished folder or by another process's working folder gets
    a suffix ``-2``, ``-3`` ... (``mkdir`` decides, so two processes
    starting in the same second never share a folder).
    """
    parent.mkdir(parents=True, exist_ok=True)
    i = 1
    while True:
        final = parent / (stamp if i == 1 else f"{stamp}-{i}")
        tmp = parent / f".{final.name}.incomplete"
        i += 1
        if final.exists():
            continue
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return final, tmp


def discard(tmp: Path, made: list[Path] = ()) -> None:
    """Remove an unfinished working folder and the folders made for it
    (innermost first, stopping at the first that holds something else)."""
    shutil.rmtree(tmp, ignore_errors=True)
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            break


def open_run_dir(config: ExperimentConfig, resume=None, place=None) -> tuple[Path, Path, list]:
    """(final, working) paths of a run directory, and the folders made for it.

    A new run gets a fresh hidden working folder beside its final place,
    ``<output>/<name>/<timestamp>`` unless ``place`` gives ``(folder, name)``.
    To resume, ``resume`` names the working folder of an interrupted run.
    """
    if resume is not None:
        tmp = Path(resume)
        if not tmp.is_dir() or not tmp.name.endswith(".incomplete"):
            raise SegmentError(f"--resume: {resume} is not the working folder of an interrupted run "
                               f"(a folder named .<run id>.incomplete).")
        return tmp.parent / tmp.name[1:-len(".incomplete")], tmp, []
    if place is not None:
        made = make_folders(Path(place[0]))
        return (*new_working_folder(Path(place[0]), place[1]), made)
    output = config.resolve(config.experiment.output)
    parent = output / config.experiment.name
    if Path(os.path.normpath(parent)).parent != Path(os.path.normpath(output)):
        raise ConfigError(f"config key 'experiment.name' must be a plain folder name: the run is written to "
                          f"<output>/<name>/. Got {config.experiment.name!r}.")
    made = make_folders(parent)
    return (*new_working_folder(parent, timestamp()), made)


class FolderLock:
    """An exclusive lock on a run's working folder, held while the run works in it.

    A second process resuming the same folder gets a :class:`SegmentError`
    instead of writing into it at the same time.  The lock is released when
    the process ends, however it ends.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.fd = None

    def acquire(self) -> FolderLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise SegmentError(f"--resume: {self.folder} no longer exists (the run it held has finished "
                               "or was removed).") from None
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock on this platform: no protection, as before
            pass
        except OSError:
            os.close(fd)
            raise SegmentError(f"{self.folder} is in use by another segment process (it holds "
                               f"{self.path.name}). Wait for it to finish or stop it; one process at a "
                               "time can work in a run's folder.") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # the run that held it finished and moved its folder meanwhile
            os.close(fd)
            raise SegmentError(f"--resume: {self.folder} no longer holds an interrupted run (it finished "
                               "or was removed meanwhile).")
        self.fd = fd
        return self

    def release(self, remove: bool = False, where: Path | None = None) -> None:
        """Release the lock; ``remove`` deletes the lock file (found in
        ``where`` when the folder was renamed while locked)."""
        if self.fd is None:
            return
        if remove:
            try:
                os.unlink(Path(where or self.folder) / LOCK_FILE)
            except FileNotFoundError:
                pass
        os.close(self.fd)
        self.fd = None


# --------------------------------------------------------------------------
# the manifest

def manifest(run, run_id: str, model: dict | None, started: float, command: str | None) -> dict:
    """What ``manifest.json`` of a run directory records.

    Parameters
    ----------
    run : Run
        The finished run (:class:`segment.experiment.Run`), its stages timed.
    run_id : str
        The name of the run directory.
    model : dict or None
        Path and checksum of the saved model.
    started : float
        ``time.perf_counter()`` when the run started.
    command : str, optional
        The command line; this process's arguments by default.
    """
    config, cohort, codebook = run.config, run.cohort, run.cohort.codebook
    return {
        "run_id": run_id,
        "created": utc_timestamp(),
        "command": command or " ".join(sys.argv),
        "config": config.to_dict(),
        "config_file": None if config.path is None else config.path.name,
        "seed": int(config.experiment.seed),
        "input": {"file": None if cohort.source is None else cohort.source.name,
                  "sha256": cohort.sha256,
                  "codebook": None if codebook.path is None else codebook.path.name,
                  "codebook_sha256": None if codebook.path is None else file_sha256(codebook.path),
                  "id_column": next((it.column for it in codebook.items_with_role("id")), None)},
        "resubmissions": cohort.resubmissions,
        "excluded_by_reason": run.metrics["cohort"]["excluded_by_reason"],
        "unmentioned_columns": cohort.unmentioned_columns,
        "packages": package_versions(),
        "model": model,
        "files": [ASSIGNMENTS_FILE, *(f"{name}.csv" for name in run.tables), METRICS_FILE],
        "stages": run.progress.stages,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
    }


def write_run(folder: Path, run) -> None:
    """Write a run's assignments, tables and metrics into ``folder``."""
    write_csv(folder / ASSIGNMENTS_FILE, run.assignments, index=True)
    for name, table in run.tables.items():
        write_csv(folder / f"{name}.csv", table)
    write_json(folder / METRICS_FILE, run.metrics)

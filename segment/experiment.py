"""The experiment runner: compose the stages and write a run directory.

A run is written to a hidden temporary folder beside its final place and
renamed into place only when every file is written, so a run directory that
exists is complete.  An existing run is never overwritten.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from tqdm import tqdm

from .cohort import Cohort, load_cohort
from .codebook import load_codebook
from .config import ExperimentConfig, load_config
from .errors import ConfigError, SegmentError
from .features import missing_share
from .pipeline import NOISE, Segmentation, evaluate, fit_segmentation, stage_seed

PACKAGES = ("segment", "numpy", "scipy", "pandas", "scikit-learn", "umap-learn", "hdbscan",
            "numba", "statsmodels", "matplotlib", "jinja2", "joblib")
MODEL_FILE = "model/segmentation.pkl"
WORK_FOLDER = "work"  # checkpoints of an unfinished run; removed when it completes
DISPLAY_POINTS = 5000


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread beside the worker processes


class Progress:
    """Stage timings (wall time, peak memory) and progress on stderr.

    A stage prints its name when it starts; a stage that reports counts
    (:meth:`count`) shows a bar with elapsed time and an estimate of the time
    left.  Nothing is shown with ``quiet`` or when stderr is not a terminal.
    Used as a context manager, an open bar is closed however the block ends.
    """

    def __init__(self, quiet: bool = False):
        self.show = not quiet and sys.stderr.isatty()
        self.stages: list[dict] = []
        self._current = None
        self._bar = None
        self._sigint = None

    def __call__(self, name: str) -> None:
        self.end()
        self._current = (name, time.perf_counter())
        if self.show:
            print(f"segment: {name} ...", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close_bar()

    def end(self) -> None:
        self.close_bar()
        if self._current is not None:
            name, start = self._current
            self.stages.append({"stage": name, "wall_seconds": time.perf_counter() - start,
                                "peak_rss_mib": peak_rss_mib()})
            self._current = None

    def count(self, done: int, total: int) -> None:
        """Progress within a long stage (e.g. resamples finished)."""
        if not self.show or self._current is None:
            return
        if self._bar is None:
            self._open_bar(done, total)
        else:
            self._bar.total = total
            self._bar.update(done - self._bar.n)
        if done >= total:
            self.close_bar()

    def _open_bar(self, done: int, total: int) -> None:
        # the first count ends the first piece of work, begun when the stage began
        self._bar = _Bar(total=total, initial=max(done - 1, 0), desc=f"segment: {self._current[0]}",
                         unit="fit", file=sys.stderr, leave=True, dynamic_ncols=True, delay=1e-9)
        self._bar.start_t = self._bar.last_print_t = time.time() - (time.perf_counter() - self._current[1])
        self._bar.update(done - self._bar.n)
        try:  # on Ctrl-C, end the bar's line before anything reports the interruption
            self._sigint = signal.signal(signal.SIGINT, self._interrupted)
        except ValueError:  # not the main thread: no signal handler can be set
            self._sigint = None

    def _interrupted(self, signum, frame):
        previous = self._sigint
        self.close_bar()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.default_int_handler(signum, frame)

    def close_bar(self) -> None:
        """Close an open bar (its line stays, ended) and restore Ctrl-C."""
        bar, self._bar = self._bar, None
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        if bar is not None:
            bar.close()

    @contextmanager
    def stage(self, name: str):
        self(name)
        yield
        self.end()


@dataclass
class Run:
    """The result of :func:`run_experiment`.

    Attributes
    ----------
    config : ExperimentConfig
    cohort : Cohort
    segmentation : Segmentation
    assignments : DataFrame
        One row per respondent of the cohort.
    tables : dict of DataFrame
        Every table written to the run directory, by file stem.
    metrics : dict
        What ``metrics.json`` holds.
    manifest : dict
        What ``manifest.json`` holds.
    path : Path or None
        The run directory.
    """

    config: ExperimentConfig
    cohort: Cohort
    segmentation: Segmentation | None
    assignments: pd.DataFrame
    tables: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    path: Path | None = None
    progress: Progress | None = None

    @property
    def summary(self) -> list[str]:
        return self.metrics.get("summary", [])

    def _repr_html_(self) -> str:
        from .report import render_summary_html
        return render_summary_html(self)


# --------------------------------------------------------------------------
# stages composed

def select_features(cohort: Cohort, config: ExperimentConfig) -> tuple[pd.DataFrame, list[str]]:
    """The clustering features, with the circularity guard applied.

    Returns the feature frame and the outcome items used as features (empty
    unless ``features.allow_outcome_features``).
    """
    fc = config.features
    features = cohort.features
    flagged = []
    if fc.include:
        available = set(cohort.features.columns) | set(cohort.outcomes.columns) | set(cohort.covariates.columns)
        unknown = [c for c in fc.include if c not in available]
        if unknown:
            raise ConfigError(
                f"config key 'features.include' names {', '.join(map(repr, unknown))}, which the codebook "
                f"does not define. Features: {', '.join(cohort.features.columns)}."
            )
        outcome_like = [c for c in fc.include if c in cohort.outcomes.columns]
        if outcome_like and not fc.allow_outcome_features:
            raise ConfigError(
                f"config key 'features.include' names outcome(s) {', '.join(map(repr, outcome_like))}: "
                "clustering on an outcome and then profiling it is circular. Remove them, or set "
                "features.allow_outcome_features = true to do it knowingly (it is flagged in every output)."
            )
        flagged = outcome_like
        parts = [cohort.features[[c for c in fc.include if c in cohort.features.columns]]]
        if outcome_like:
            parts.append(cohort.outcomes[outcome_like])
        covs = [c for c in fc.include if c in cohort.covariates.columns]
        if covs:
            parts.append(cohort.covariates[covs])
        features = pd.concat(parts, axis=1)
    unknown = [c for c in fc.exclude if c not in features.columns]
    if unknown:
        raise ConfigError(
            f"config key 'features.exclude' names {', '.join(map(repr, unknown))}, not among the features "
            f"({', '.join(features.columns)})."
        )
    features = features.drop(columns=list(fc.exclude))
    if features.shape[1] == 0:
        raise ConfigError("no clustering features are left: check the codebook roles and features.include/exclude.")
    return features, flagged


def exclusions(features: pd.DataFrame, config: ExperimentConfig) -> pd.Series:
    """The reason each respondent is excluded ("" when analysed)."""
    share = missing_share(features)
    reason = pd.Series("", index=features.index, dtype=object)
    limit = config.features.max_missing_share
    reason[share > limit] = f"missing more than {limit:.0%} of features"
    if config.features.imputer == "drop":
        reason[(share > 0) & (reason == "")] = "incomplete answers (features.imputer = drop)"
    return reason


@dataclass
class Plan:
    """What a run would analyse, checked against the cohort before any fit.

    Attributes
    ----------
    config : ExperimentConfig
    cohort : Cohort
    features : DataFrame
        The clustering features of every respondent.
    circular : list of str
        Outcome items used as features (``features.allow_outcome_features``).
    reason : Series
        Why each respondent is excluded ("" when analysed).
    outcomes, covariates : list of str
        What the profiles compare and adjust for.
    warnings : list of str
        Warnings raised while loading (e.g. columns the codebook does not mention).
    """

    config: ExperimentConfig
    cohort: Cohort
    features: pd.DataFrame
    circular: list
    reason: pd.Series
    outcomes: list
    covariates: list
    warnings: list = field(default_factory=list)

    @property
    def analysed(self) -> pd.DataFrame:
        return self.features[self.reason == ""]

    def describe(self) -> list[str]:
        """Plain lines: what the run would analyse."""
        cohort, n_an = self.cohort, len(self.analysed)
        lines = [f"{cohort.n} respondents in {cohort.source.name if cohort.source else 'the cohort'}; "
                 f"{n_an} would be analysed, {cohort.n - n_an} excluded."]
        for why, n in self.reason[self.reason != ""].value_counts().items():
            lines.append(f"  excluded, {why}: {n}")
        lines.append(f"features ({self.features.shape[1]}): {', '.join(self.features.columns)}")
        lines.append(f"outcomes ({len(self.outcomes)}): {', '.join(self.outcomes)}")
        lines.append(f"covariates ({len(self.covariates)}): {', '.join(self.covariates) or 'none'}")
        if self.circular:
            lines.append(f"outcomes used as features (circular): {', '.join(self.circular)}")
        return lines


def load_experiment_cohort(config: ExperimentConfig) -> tuple[Cohort, list[str]]:
    """The experiment's cohort and the warnings its loading raised."""
    if not config.experiment.cohort or not config.experiment.codebook:
        raise ConfigError("config keys 'experiment.cohort' and 'experiment.codebook' must name the "
                          "survey file and its codebook.")
    codebook = load_codebook(config.resolve(config.experiment.codebook))
    cohort_path = config.resolve(config.experiment.cohort)
    if not cohort_path.exists():
        raise ConfigError(f"config key 'experiment.cohort': survey file not found: {cohort_path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = load_cohort(cohort_path, codebook, resubmissions=config.experiment.resubmissions,
                             sheet=config.experiment.sheet)
    return cohort, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


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


def _profile_names(cohort: Cohort, config: ExperimentConfig) -> tuple[list[str], list[str]]:
    pc = config.profile
    outcomes = list(pc.outcomes) or [s.name for s in cohort.codebook.scales if s.role == "outcome"] \
        or list(cohort.outcomes.columns)
    if not outcomes:
        raise ConfigError("the codebook defines no outcome (a column or scale with role \"outcome\"), so "
                          "there is nothing to profile the archetypes on.")
    unknown = [o for o in outcomes if o not in cohort.outcomes.columns]
    if unknown:
        raise ConfigError(
            f"config key 'profile.outcomes' names {', '.join(map(repr, unknown))}, not an outcome of the "
            f"codebook. Outcomes: {', '.join(cohort.outcomes.columns) or 'none'}.")
    unknown = [c for c in pc.covariates if c not in cohort.covariates.columns]
    if unknown:
        raise ConfigError(
            f"config key 'profile.covariates' names {', '.join(map(repr, unknown))}, not a covariate "
            f"of the codebook. Covariates: {', '.join(cohort.covariates.columns) or 'none'}.")
    return outcomes, list(pc.covariates)


def _check_analysed(features: pd.DataFrame, reason: pd.Series, config: ExperimentConfig) -> None:
    analysed = features[reason == ""]
    if len(features) and analysed.empty:
        counts = "; ".join(f"{n} {why}" for why, n in reason.value_counts().items())
        raise SegmentError(f"every respondent is excluded ({counts}): there is nothing to analyse. "
                           "Check features.imputer and features.max_missing_share.")
    blank = [c for c in analysed.columns if analysed[c].isna().all()]
    if blank:
        raise SegmentError(
            f"feature(s) {', '.join(map(repr, blank))} have no answer from any analysed respondent: "
            "nothing can be learnt from them or imputed. Leave them out (features.exclude).")
    if len(analysed) >= 2 and len(analysed.astype(str).drop_duplicates()) < 2:
        raise SegmentError(f"all {len(analysed)} analysed respondents gave identical answers on every "
                           "clustering feature: there is nothing to cluster.")


def prepare(config: ExperimentConfig, cohort: Cohort | None = None) -> Plan:
    """Load the cohort and check every name and setting of the config against it.

    Everything ``run`` checks is checked here, before anything is fitted or
    written: the config (already validated on reading), the output folder,
    the survey file and codebook, the features, outcomes and covariates the
    config names, and the respondents left after exclusions.

    Parameters
    ----------
    config : ExperimentConfig
    cohort : Cohort, optional
        An already loaded cohort instead of the config's files.

    Returns
    -------
    Plan

    Raises
    ------
    SegmentError
        Naming the config key, file, column or value at fault.
    """
    caught = []
    if cohort is None:
        cohort, caught = load_experiment_cohort(config)
    features, circular = select_features(cohort, config)
    outcomes, covariates = _profile_names(cohort, config)
    reason = exclusions(features, config)
    _check_analysed(features, reason, config)
    return Plan(config=config, cohort=cohort, features=features, circular=circular, reason=reason,
                outcomes=outcomes, covariates=covariates, warnings=caught)


def assignments_table(cohort: Cohort, reason: pd.Series, seg: Segmentation | None) -> pd.DataFrame:
    """One row per respondent of the cohort: labels, probabilities, exclusion."""
    out = pd.DataFrame(index=cohort.ids)
    out["excluded"] = reason != ""
    out["exclusion_reason"] = reason
    cols = ["hdbscan_label", "hdbscan_probability", "hdbscan_outlier_score", "hdbscan_soft_label",
            "gmm_component", "gmm_posterior", "kmeans_cluster"]
    for c in cols:
        out[c] = pd.NA
    if seg is not None:
        ids = seg.ids
        inv = seg.inverse
        out.loc[ids, "hdbscan_label"] = seg.hdbscan.labels[inv]
        out.loc[ids, "hdbscan_probability"] = seg.hdbscan.probabilities[inv]
        out.loc[ids, "hdbscan_outlier_score"] = seg.hdbscan.outlier_scores[inv]
        if seg.hdbscan.soft_labels is not None:
            out.loc[ids, "hdbscan_soft_label"] = seg.hdbscan.soft_labels[inv]
        if seg.gmm is not None:
            out.loc[ids, "gmm_component"] = seg.gmm.labels[inv]
            out.loc[ids, "gmm_posterior"] = seg.gmm.posteriors.max(axis=1)[inv]
        if seg.kmeans is not None:
            out.loc[ids, "kmeans_cluster"] = seg.kmeans[inv]
    if seg is None or seg.hdbscan.soft_labels is None:
        out = out.drop(columns=["hdbscan_soft_label"])
    for c in out.columns:
        if c.endswith(("_label", "_component", "_cluster")):
            out[c] = out[c].astype("Int64")
        elif c not in ("excluded", "exclusion_reason"):
            out[c] = pd.to_numeric(out[c]).astype(float)
    out.index.name = "respondent"
    return out


def covariate_crosstab(cohort: Cohort, assignments: pd.DataFrame) -> pd.DataFrame:
    """Counts of each level of each categorical covariate per archetype (long form).

    Shareable only after small-cell suppression, which the report applies.
    """
    rows = []
    analysed = assignments[~assignments["excluded"]]
    categorical = [c for c in cohort.covariates.columns if cohort.covariates[c].dtype == object]
    for method, col in (("hdbscan", "hdbscan_label"), ("gmm", "gmm_component"), ("kmeans", "kmeans_cluster")):
        if col not in analysed or analysed[col].isna().all():
            continue
        for cov in categorical:
            table = pd.crosstab(cohort.covariates.loc[analysed.index, cov], analysed[col].astype(int))
            rows += [{"method": method, "covariate": cov, "level": str(level), "archetype": int(a), "n": int(n)}
                     for level, counts in table.iterrows() for a, n in counts.items()]
    return pd.DataFrame(rows, columns=["method", "covariate", "level", "archetype", "n"])


def archetype_sizes(assignments: pd.DataFrame) -> pd.DataFrame:
    rows = []
    analysed = assignments[~assignments["excluded"]]
    for method, col in (("hdbscan", "hdbscan_label"), ("gmm", "gmm_component"), ("kmeans", "kmeans_cluster")):
        counts = analysed[col].value_counts(dropna=True).sort_index()
        for label, n in counts.items():
            rows.append({"method": method, "archetype": int(label), "n": int(n),
                         "share": n / max(len(analysed), 1),
                         "group": "noise" if label == NOISE else "archetype"})
    return pd.DataFrame(rows, columns=["method", "archetype", "n", "share", "group"])


def summary_sentences(cohort: Cohort, assignments: pd.DataFrame, seg: Segmentation | None,
                      results: dict, min_cell: int = 1) -> list[str]:
    n_ex = int(assignments["excluded"].sum())
    lines = [f"{cohort.n} respondents in the cohort; {cohort.n - n_ex} analysed, {n_ex} excluded."]
    if seg is None:
        lines.append("No archetypes were found: too few respondents to cluster.")
        return lines
    h = seg.hdbscan
    if h.n_clusters == 0:
        cause = next((n.split(" = ")[0] for n in seg.notes if n.startswith("cluster.hdbscan.min_samples")),
                     f"min_cluster_size = {h.min_cluster_size}")
        lines.append(f"HDBSCAN found no archetypes: every respondent is noise ({cause}).")
    else:
        n_noise = int(np.sum(seg.labels("hdbscan") == NOISE))
        noise = (f"{n_noise / len(seg.labels('hdbscan')):.0%} of respondents are" if not 0 < n_noise < min_cell
                 else f"fewer than {min_cell} respondents are")
        lines.append(f"HDBSCAN found {h.n_clusters} archetype(s); {noise} noise (belong to none).")
    if seg.gmm is not None:
        if seg.gmm.k == 1:
            lines.append(f"The Gaussian mixture selected k = 1 by {seg.gmm.criterion.upper()}: no archetypes.")
        else:
            lines.append(f"The Gaussian mixture selected k = {seg.gmm.k} "
                         f"({seg.gmm.model.covariance_type} covariance) by {seg.gmm.criterion.upper()}.")
        lines += seg.gmm.warnings
    if h.n_clusters == 0 and (seg.gmm is None or seg.gmm.k == 1):
        lines.append("No archetypes were found in this cohort.")
    lines += seg.notes
    return lines


# --------------------------------------------------------------------------
# the run directory

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
    text = json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_csv(path: Path, frame: pd.DataFrame, index: bool = False) -> None:
    frame.to_csv(path, index=index, float_format="%.6g", lineterminator="\n")


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


LOCK_FILE = ".lock"


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

    def acquire(self) -> "FolderLock":
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
    return (*new_working_folder(parent, datetime.now().strftime("%Y%m%d-%H%M%S")), made)


UMAP_TRAINING_STATE = ("_knn_search_index", "knn_search_index", "_rp_forest", "graph_", "graph_dists_",
                       "_raw_data", "knn_indices", "knn_dists", "_knn_indices", "_knn_dists", "embedding_")


def _without_training_graph(seg: Segmentation) -> Segmentation:
    """The segmentation to save: UMAP keeps its parameters but not its training
    graph and search index (building the index to pickle it takes minutes on
    a large cohort).  New respondents are placed by
    :func:`segment.replicate.embed_new` from the saved distinct feature
    vectors and their embedding, not by ``UMAP.transform``.
    """
    if seg.umap is None:
        return seg
    light = copy.copy(seg.umap)
    for attr in UMAP_TRAINING_STATE:
        if attr in vars(light):
            setattr(light, attr, None)
    return dataclasses.replace(seg, umap=light)


def save_model(run_dir: Path, seg: Segmentation) -> dict:
    """The fitted model: plain data where it can be, a pickle where it must be."""
    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    enc = seg.encoder
    encode = enc.pipeline_.named_steps["encode"]
    plain = {"feature_names": list(map(str, enc.feature_names_)),
             "numeric": list(enc.numeric), "categorical": enc.categorical or {},
             "multiselect": enc.multiselect or {}, "scaler": enc.scaler, "imputer": enc.imputer}
    if "numeric" in encode.named_transformers_:
        sc = encode.named_transformers_["numeric"]
        plain["numeric_center"] = list(map(float, getattr(sc, "mean_", getattr(sc, "center_", []))))
        plain["numeric_scale"] = list(map(float, sc.scale_))
    write_json(model_dir / "features.json", plain)
    if seg.gmm is not None:
        gm = seg.gmm.model
        np.savez(model_dir / "gmm.npz", weights=gm.weights_, means=gm.means_,
                 covariances=gm.covariances_, covariance_type=np.array(gm.covariance_type))
    path = run_dir / MODEL_FILE
    joblib.dump(_without_training_graph(seg), path, compress=3)
    from .readers import file_sha256
    return {"path": MODEL_FILE, "sha256": file_sha256(path)}


def write_run(tmp: Path, run: Run) -> None:
    """Write every output file of a run into ``tmp``."""
    write_csv(tmp / "assignments.csv", run.assignments, index=True)
    for name, table in run.tables.items():
        write_csv(tmp / f"{name}.csv", table)
    write_json(tmp / "metrics.json", run.metrics)


def run_experiment(config: ExperimentConfig | str | Path, *, overrides: dict | None = None,
                   quiet: bool = True, write: bool = True, command: str | None = None,
                   cohort: Cohort | None = None, resume: str | Path | None = None,
                   memory=None, place: tuple | None = None) -> Run:
    """Run an experiment end to end and write its run directory.

    Parameters
    ----------
    config : ExperimentConfig, str or Path
        The experiment, or the path of its TOML file.
    overrides : dict, optional
        Dotted keys, e.g. ``{"reduce.n_neighbors": 30}``.
    quiet : bool
        No progress lines on stderr.
    write : bool
        Write a run directory (otherwise only return the results).
    command : str, optional
        The command line recorded in the manifest.
    cohort : Cohort, optional
        An already loaded cohort instead of the config's files.
    resume : str or Path, optional
        The working folder of an interrupted run whose finished resamples
        are reused.
    memory : joblib.Memory, optional
        Content-addressed cache of fitted stages (used by sweeps).
    place : (Path, str), optional
        Folder and name of the run directory instead of
        ``<output>/<name>/<timestamp>``.

    Returns
    -------
    Run
    """
    started = time.perf_counter()
    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides)
    elif overrides:
        raise ConfigError("overrides apply to a config file; edit the ExperimentConfig directly.")
    load_started = time.perf_counter()
    if write and place is None and resume is None:
        check_output(config)
    plan = prepare(config, cohort)
    if not quiet:
        for w in plan.warnings:
            print(f"segment: warning: {w}", file=sys.stderr)
    load_seconds = time.perf_counter() - load_started
    final = tmp = lock = None
    made = []
    if write:
        final, tmp, made = open_run_dir(config, resume, place)
        try:
            lock = FolderLock(tmp).acquire()
        except BaseException:
            if resume is None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
    try:
        work = None if tmp is None else tmp / WORK_FOLDER
        run = _run(plan, quiet=quiet, workdir=work, resume=resume, memory=memory, load_seconds=load_seconds)
        if write:
            _finish_run(run, final, tmp, started, command)
            lock.release(remove=True, where=final)
    except KeyboardInterrupt:
        if tmp is not None:
            print(f"segment: interrupted. Finished work is kept in {tmp}; continue with "
                  f"--resume {tmp}", file=sys.stderr)
        raise
    except BaseException:
        if tmp is not None and resume is None:
            shutil.rmtree(tmp, ignore_errors=True)
            for folder in reversed(made):  # folders this run created, if nothing else is in them
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    finally:
        if lock is not None:
            lock.release()
    return run


def _run(plan: Plan, *, quiet: bool, workdir: Path | None, resume, memory=None,
         load_seconds: float = 0.0) -> Run:
    progress = Progress(quiet)
    progress.stages.append({"stage": "load", "wall_seconds": load_seconds, "peak_rss_mib": peak_rss_mib()})
    with progress:
        return _stages(plan, progress, workdir=workdir, resume=resume, memory=memory)


def _stages(plan: Plan, progress: Progress, *, workdir: Path | None, resume, memory=None) -> Run:
    config, cohort, features, circular, reason = plan.config, plan.cohort, plan.features, plan.circular, plan.reason
    seed = np.random.SeedSequence(int(config.experiment.seed))
    analysed = plan.analysed

    seg = None
    if len(analysed) >= 2:
        seg = fit_segmentation(analysed, cohort.codebook, config, _child(seed, 0), progress=progress,
                               memory=memory)
    progress("evaluate")
    evaluation = evaluate(seg, dbcv=config.cluster.dbcv, seed=stage_seed(_child(seed, 0), 9)) if seg else \
        {"agreement": [], "indices": [], "contingency": pd.DataFrame()}
    progress.end()
    assignments = assignments_table(cohort, reason, seg)

    results: dict = {}
    tables = {
        "model_selection": seg.gmm.table if seg is not None and seg.gmm is not None else pd.DataFrame(),
        "archetype_sizes": archetype_sizes(assignments),
        "agreement": pd.DataFrame(evaluation["agreement"]),
        "indices": pd.DataFrame(evaluation["indices"]),
        "missingness": cohort.missingness,
        "answers": cohort.answers,
    }
    tables["covariate_crosstab"] = covariate_crosstab(cohort, assignments)
    if len(evaluation["contingency"]):
        c = evaluation["contingency"]
        tables["contingency_hdbscan_gmm"] = c.rename_axis(index="hdbscan", columns=None).reset_index()

    stage_args = dict(config=config, cohort=cohort, features=analysed, segmentation=seg, seed=seed,
                      progress=progress, tables=tables, results=results, assignments=assignments,
                      workdir=workdir, resume=resume, memory=memory)
    if config.stability.resamples > 0 and seg is not None:
        from .stability import stability_stage
        stability_stage(**stage_args)
    from .profile import profile_stage
    profile_stage(**stage_args)
    if seg is not None:
        with progress.stage("display embedding"):
            tables["embedding_2d"] = display_embedding(seg, config, _child(seed, 4))
    progress.end()

    excluded_counts = reason[reason != ""].value_counts().to_dict()
    metrics = {
        "cohort": {"name": cohort.codebook.name, "title": cohort.codebook.title, "n": cohort.n,
                   "n_analysed": int(len(analysed)), "n_excluded": int((reason != "").sum()),
                   "excluded_by_reason": excluded_counts},
        "features": list(features.columns),
        "outcome_features": circular,
        "n_features_encoded": 0 if seg is None else int(seg.X.shape[1]),
        "n_distinct_answer_patterns": 0 if seg is None else int(len(seg.X)),
        "hdbscan": {} if seg is None else {
            "n_archetypes": seg.hdbscan.n_clusters,
            "noise_share": float(np.mean(seg.labels("hdbscan") == NOISE)),
            "min_cluster_size": seg.hdbscan.min_cluster_size},
        "gmm": {} if seg is None or seg.gmm is None else {
            "k": seg.gmm.k, "covariance_type": seg.gmm.model.covariance_type,
            "criterion": seg.gmm.criterion, "warnings": seg.gmm.warnings},
        "kmeans": {} if seg is None or seg.kmeans is None else {"k": int(len(np.unique(seg.kmeans))),
                                                                  "space": config.cluster.kmeans.space},
        "umap": {} if seg is None or seg.umap is None else {"n_neighbors": int(seg.umap.n_neighbors),
                                                             "n_components": int(seg.umap.n_components)},
        "agreement": evaluation["agreement"],
        "indices": evaluation["indices"],
    }
    metrics.update(results.get("metrics", {}))
    run = Run(config=config, cohort=cohort, segmentation=seg, assignments=assignments,
              tables=tables, metrics=metrics, results=results)
    run.progress = progress
    metrics["summary"] = summary_sentences(cohort, assignments, seg, results,
                                           config.report.min_cell) + results.get("summary", [])
    if circular:
        metrics["summary"].append(
            f"Outcome item(s) {', '.join(circular)} were used as clustering features "
            "(features.allow_outcome_features): their profiles are circular.")
    return run


def _finish_run(run: Run, final: Path, tmp: Path, started: float, command: str | None) -> None:
    """Write every file into the working folder, then rename it into place."""
    progress, config, cohort = run.progress, run.config, run.cohort
    with progress.stage("write"):
        write_run(tmp, run)
        model = save_model(tmp, run.segmentation) if run.segmentation is not None else None
    run.manifest = {
        "run_id": final.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "config": config.to_dict(),
        "config_file": None if config.path is None else config.path.name,
        "seed": int(config.experiment.seed),
        "input": {"file": None if cohort.source is None else cohort.source.name,
                  "sha256": cohort.sha256,
                  "codebook": None if cohort.codebook.path is None else cohort.codebook.path.name,
                  "codebook_sha256": None if cohort.codebook.path is None else _sha(cohort.codebook.path),
                  "id_column": next((it.column for it in cohort.codebook.items_with_role("id")), None)},
        "resubmissions": cohort.resubmissions,
        "excluded_by_reason": run.metrics["cohort"]["excluded_by_reason"],
        "unmentioned_columns": cohort.unmentioned_columns,
        "packages": package_versions(),
        "model": model,
        "files": ["assignments.csv", *(f"{name}.csv" for name in run.tables), "metrics.json"],
        "stages": progress.stages,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
    }
    write_json(tmp / "manifest.json", run.manifest)
    run.path = final
    from .report import render_run
    render_run(run, tmp)
    shutil.rmtree(tmp / WORK_FOLDER, ignore_errors=True)
    os.rename(tmp, final)


def display_embedding(seg: Segmentation, config: ExperimentConfig, seed) -> pd.DataFrame:
    """2-D coordinates of (a sample of) the distinct points, for the report's picture.

    The clustering embedding is used when it is 2-D; otherwise a 2-D UMAP
    with the same parameters is fitted on at most 5,000 distinct points.
    No respondent id is kept: only coordinates and labels.
    """
    rng = np.random.default_rng(stage_seed(seed, 0))
    n = len(seg.X)
    sample = np.sort(rng.choice(n, DISPLAY_POINTS, replace=False)) if n > DISPLAY_POINTS else np.arange(n)
    if seg.umap is None:
        xy = np.zeros((len(sample), 2))
        xy[:, : min(2, seg.embedding.shape[1])] = seg.embedding[sample, :2]
    elif seg.embedding.shape[1] == 2:
        xy = seg.embedding[sample]
    else:
        from .reduce import fit_umap
        rc = config.reduce
        _, xy = fit_umap(seg.X[sample], random_state=stage_seed(seed, 1), n_neighbors=rc.n_neighbors,
                         min_dist=max(rc.min_dist, 0.1), n_components=2, metric=rc.metric)
    weights = np.bincount(seg.inverse, minlength=n)[sample]
    out = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "respondents": weights,
                        "hdbscan": seg.hdbscan.labels[sample]})
    if seg.gmm is not None:
        out["gmm"] = seg.gmm.labels[sample]
    if seg.kmeans is not None:
        out["kmeans"] = seg.kmeans[sample]
    return out


def _sha(path: Path) -> str:
    from .readers import file_sha256
    return file_sha256(path)


def _child(seed: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (i,))

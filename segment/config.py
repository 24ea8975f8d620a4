"""The experiment configuration: its schema, defaults and validation.

An experiment is a TOML file whose tables mirror the dataclasses below.
Every key is documented in ``docs/experiment.md``.  Unknown keys are errors
that name the key and suggest the closest valid one; values of the wrong
type are errors that name the key, the expected type and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError
from .vocabulary import ARCHETYPE_METHODS as METHODS
from .vocabulary import CORRECTIONS as _CORRECTION_NAMES
from .vocabulary import IMPUTERS, NULL_MODELS, PAIRWISE_TESTS, SCALERS

# multiple-comparison corrections (statsmodels ``multipletests`` names) that profiling applies
CORRECTIONS = tuple(_CORRECTION_NAMES)


@dataclass(frozen=True)
class ExperimentSection:
    """``[experiment]``: what is analysed and where the run goes."""

    name: str = "experiment"
    title: str = ""
    seed: int = 0
    cohort: str = ""
    codebook: str = ""
    output: str = "reports"
    resubmissions: str = "error"
    sheet: str | int = 0


@dataclass(frozen=True)
class FeaturesConfig:
    """``[features]``: which items are clustered on and how they are prepared."""

    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    imputer: str = "knn"
    knn_neighbors: int = 5
    scaler: str = "standard"
    categorical_weight: float = 1.0
    scale_indicators: bool = False
    max_missing_share: float = 0.5
    allow_outcome_features: bool = False


@dataclass(frozen=True)
class ReduceConfig:
    """``[reduce]``: UMAP parameters."""

    n_neighbors: int = 15
    min_dist: float = 0.0
    n_components: int = 5
    metric: str = "euclidean"
    n_epochs: int = 200


@dataclass(frozen=True)
class HDBSCANConfig:
    """``[cluster.hdbscan]``."""

    min_cluster_size: int | float = 0.05
    min_samples: int = 10
    selection_method: str = "eom"
    epsilon: float = 0.0
    assign_noise: bool = False


@dataclass(frozen=True)
class GMMConfig:
    """``[cluster.gmm]``."""

    k: list = field(default_factory=lambda: [1, 8])
    covariance_types: list = field(default_factory=lambda: ["tied"])
    criterion: str = "icl"
    n_init: int = 3
    space: str = "pca"
    pca_components: int = 5


@dataclass(frozen=True)
class KMeansConfig:
    """``[cluster.kmeans]``: the baseline."""

    k: int = 6
    space: str = "features"


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``."""

    hdbscan: HDBSCANConfig = field(default_factory=HDBSCANConfig)
    gmm: GMMConfig = field(default_factory=GMMConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    dbcv: bool = True


@dataclass(frozen=True)
class StabilityConfig:
    """``[stability]``: resampling (B = 0 skips the analysis)."""

    resamples: int = 0
    scheme: str = "subsample"
    fraction: float = 0.8
    null_resamples: int = 3
    null_cohorts: int = 60
    alpha: float = 0.05
    null: str = "unimodal"
    n_jobs: int = 1
    scheduler: str = ""
    max_failed_share: float = 0.2
    stable: float = 0.75
    dissolved: float = 0.5
    precompute_knn: bool = True


@dataclass(frozen=True)
class ProfileConfig:
    """``[profile]``: outcome profiling (also the settings of
    :func:`segment.profile.profile_archetypes`).

    Parameters
    ----------
    outcomes : list of str
        Outcomes to profile.  Empty: in a run, the codebook's outcome scales
        (or outcome items when it has no scales); in
        :func:`~segment.profile.profile_archetypes`, every column of the
        outcomes table.
    covariates : list of str
        Covariates of the adjusted models.  Empty: in a run, none; in
        :func:`~segment.profile.profile_archetypes`, every column of the
        covariates table passed (none if no table is passed).
    correction : {"holm", "fdr_bh", "bonferroni"}
        Multiple-comparison correction (names as in
        :func:`statsmodels.stats.multitest.multipletests`) of the omnibus
        tests (over outcomes), the adjusted differences (over archetypes and
        outcomes) and the Welch t pairs (over pairs and outcomes) of a
        method; Games-Howell pairs are adjusted within each outcome by the
        studentized range instead.
    pairwise : {"games-howell", "welch"}
        Pairwise test.
    include_noise : bool
        Analyse the HDBSCAN noise group (-1) as a group of its own in the
        tests; it is always described.
    pseudo_class_draws : int
        Draws ``m`` (at least 2) from GMM posteriors, combined by Rubin's rules.
    top_features : int
        Features that describe and name an archetype.
    names : dict
        ``{method: {archetype: name}}`` overriding the draft names; archetype
        keys may be ints or their string form (as read from TOML).
    alpha : float
        Significance level of the ``reject`` column of pairwise comparisons.
    """

    outcomes: list = field(default_factory=list)
    covariates: list = field(default_factory=list)
    correction: str = "holm"
    pairwise: str = "games-howell"
    include_noise: bool = False
    pseudo_class_draws: int = 20
    top_features: int = 3
    names: dict = field(default_factory=dict)
    alpha: float = 0.05


@dataclass(frozen=True)
class ReportConfig:
    """``[report]``."""

    min_cell: int = 10


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment.

    Attributes
    ----------
    path : Path or None
        The file it was read from; relative paths in it are resolved against
        its folder.
    """

    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    reduce: ReduceConfig = field(default_factory=ReduceConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sweep: dict = field(default_factory=dict)
    path: Path | None = None

    def resolve(self, relative: str) -> Path:
        """A path of the config, relative to the config file's folder."""
        p = Path(relative)
        if p.is_absolute() or self.path is None:
            return p
        return (self.path.parent / p)

    def to_dict(self) -> dict:
        """The settings as nested dicts, as an experiment file holds them."""
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    def replace(self, settings: dict) -> ExperimentConfig:
        """A copy with dotted keys set (``{"stability.resamples": 100}``), validated.

        A config is frozen: this is how a changed one is made, by the same
        rules as an override on the command line.
        """
        data = self.to_dict()
        for key, value in settings.items():
            set_dotted(data, key, value)
        return config_from_dict(data, self.path)


_SCHEMA_SKIP = {"path"}


def _type_name(tp) -> str:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _check_value(tp, value, key: str):
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number; got {value!r}.")
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }
    union = isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
    options = typing.get_args(tp) if union else (tp,)
    for option in options:
        if ok[option](value):
            return float(value) if option is float and isinstance(value, int) and len(options) == 1 else value
    raise ConfigError(f"config key '{key}' must be {_type_name(tp)}; got {value!r}.")


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' must be a table; got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _SCHEMA_SKIP]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown config key '{prefix}{key}'.{hint} Valid keys here: {', '.join(names)}."
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_value(tp, value, prefix + key)
    return cls(**kwargs)


def parse_value(text: str):
    """A command-line value as TOML would read it (``30``, ``0.1``, ``[10, 15]``),
    or the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(data: dict, dotted: str, value) -> None:
    """Set ``a.b.c = value`` in nested dicts."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{dotted}': '{part}' is not a table.")
    node[parts[-1]] = value


def config_from_dict(data: dict, path: Path | None = None) -> ExperimentConfig:
    """Validate a nested dict as an :class:`ExperimentConfig`."""
    cfg = dataclasses.replace(_build(ExperimentConfig, copy.deepcopy(data), ""),
                              path=Path(path) if path is not None else None)
    validate(cfg)
    return cfg


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    """Read an experiment file, apply dotted overrides and validate.

    Parameters
    ----------
    path : str or Path
        The TOML experiment file.
    overrides : dict, optional
        ``{"reduce.n_neighbors": 30, ...}``, applied before validation.

    Raises
    ------
    ConfigError
        Naming the file and the offending key.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc.strerror or exc}") from None
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    try:
        return config_from_dict(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


#: UMAP metrics that need no parameters and suit real-valued, scaled features.
METRICS = ("euclidean", "l2", "manhattan", "l1", "taxicab", "chebyshev", "linf", "linfty", "linfinity",
           "canberra", "braycurtis", "cosine", "correlation")


def _in(value, allowed, key):
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, allowed))}; got {value!r}.")


def _folder_name(name: str, key: str) -> None:
    """A name that becomes one folder under ``experiment.output``, never a path."""
    bad = (not name.strip() or name.strip(".") == "" or any(sep in name for sep in ("/", "\\", "\0"))
           or Path(name).is_absolute() or Path(name).drive or name != name.strip())
    if bad:
        raise ConfigError(f"config key '{key}' must be a plain folder name (no '/', '\\', '..' or leading or "
                          f"trailing spaces): the run is written to <output>/<name>/. Got {name!r}.")


def _at_least(value, low, key, note: str = ""):
    if value < low:
        raise ConfigError(f"config key '{key}' must be >= {low}{note}; got {value!r}.")


def _names(values, key):
    """A list of names: every element a non-empty str, none twice."""
    bad = [v for v in values if not isinstance(v, str) or not v]
    if bad:
        raise ConfigError(f"config key '{key}' must be a list of names (str); got {bad[0]!r} in {values!r}.")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ConfigError(f"config key '{key}' names {', '.join(map(repr, twice))} more than once.")


def _validate_experiment(e: ExperimentSection) -> None:
    _folder_name(e.name, "experiment.name")
    _at_least(e.seed, 0, "experiment.seed")
    _in(e.resubmissions, ("error", "drop_exact", "keep_last"), "experiment.resubmissions")
    if isinstance(e.sheet, int):
        _at_least(e.sheet, 0, "experiment.sheet", " (a 0-based sheet position) or a sheet name")


def _validate_features(f: FeaturesConfig) -> None:
    _names(f.include, "features.include")
    _names(f.exclude, "features.exclude")
    _in(f.imputer, IMPUTERS, "features.imputer")
    _in(f.scaler, SCALERS, "features.scaler")
    _at_least(f.knn_neighbors, 1, "features.knn_neighbors")
    if not f.categorical_weight > 0:
        raise ConfigError(f"config key 'features.categorical_weight' must be > 0; got {f.categorical_weight}.")
    if not 0 < f.max_missing_share <= 1:
        raise ConfigError(f"config key 'features.max_missing_share' must be in (0, 1]; got {f.max_missing_share}.")


def _validate_reduce(r: ReduceConfig) -> None:
    _at_least(r.n_neighbors, 2, "reduce.n_neighbors")
    _at_least(r.n_components, 1, "reduce.n_components")
    _at_least(r.n_epochs, 0, "reduce.n_epochs", " (0 for umap-learn's default)")
    _at_least(r.min_dist, 0, "reduce.min_dist")
    _in(r.metric, METRICS, "reduce.metric")


def _validate_cluster(c: ClusterConfig) -> None:
    mcs = c.hdbscan.min_cluster_size
    if isinstance(mcs, bool) or not isinstance(mcs, (int, float)) \
            or not ((isinstance(mcs, float) and 0 < mcs < 1) or (float(mcs).is_integer() and mcs >= 2)):
        raise ConfigError(f"config key 'cluster.hdbscan.min_cluster_size' must be an int >= 2 or a share in (0, 1); "
                          f"got {mcs!r}.")
    _at_least(c.hdbscan.min_samples, 0, "cluster.hdbscan.min_samples", " (0 for min_cluster_size)")
    _in(c.hdbscan.selection_method, ("eom", "leaf"), "cluster.hdbscan.selection_method")
    _at_least(c.hdbscan.epsilon, 0, "cluster.hdbscan.epsilon")
    g = c.gmm
    _in(g.criterion, ("bic", "icl"), "cluster.gmm.criterion")
    k = g.k
    if len(k) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in k) \
            or not 1 <= k[0] <= k[1]:
        raise ConfigError(f"config key 'cluster.gmm.k' must be [low, high] with 1 <= low <= high; got {k}.")
    if not g.covariance_types:
        raise ConfigError("config key 'cluster.gmm.covariance_types' must list at least one of full, tied, "
                          "diag, spherical.")
    for ct in g.covariance_types:
        _in(ct, ("full", "tied", "diag", "spherical"), "cluster.gmm.covariance_types")
    _names(g.covariance_types, "cluster.gmm.covariance_types")
    _at_least(g.n_init, 1, "cluster.gmm.n_init")
    _in(g.space, ("pca", "features", "embedding"), "cluster.gmm.space")
    _at_least(g.pca_components, 1, "cluster.gmm.pca_components")
    _at_least(c.kmeans.k, 1, "cluster.kmeans.k")
    _in(c.kmeans.space, ("features", "embedding"), "cluster.kmeans.space")


def _validate_stability(s: StabilityConfig) -> None:
    _in(s.scheme, ("subsample", "bootstrap"), "stability.scheme")
    if s.resamples != 0 and s.resamples < 2:
        raise ConfigError("config key 'stability.resamples' must be 0 (no stability analysis) or >= 2; "
                          f"got {s.resamples}.")
    if not 0 < s.fraction <= 1:
        raise ConfigError(f"config key 'stability.fraction' must be in (0, 1]; got {s.fraction}.")
    if s.n_jobs == 0 or s.n_jobs < -1:
        raise ConfigError(f"config key 'stability.n_jobs' must be >= 1 or -1 (all cores); got {s.n_jobs}.")
    if s.null_resamples != 0 and s.null_resamples < 2:
        raise ConfigError(f"config key 'stability.null_resamples' must be 0 (no null reference) or >= 2; "
                          f"got {s.null_resamples}.")
    _in(s.null, tuple(NULL_MODELS), "stability.null")
    _at_least(s.null_cohorts, 1, "stability.null_cohorts")
    if not 0 < s.alpha < 1:
        raise ConfigError(f"config key 'stability.alpha' must be in (0, 1); got {s.alpha}.")
    if not 0 <= s.max_failed_share < 1:
        raise ConfigError(f"config key 'stability.max_failed_share' must be in [0, 1); got {s.max_failed_share}.")
    if not 0 < s.dissolved <= s.stable <= 1:
        raise ConfigError(f"config keys 'stability.dissolved' and 'stability.stable' must satisfy "
                          f"0 < dissolved <= stable <= 1; got {s.dissolved} and {s.stable}.")
    if s.scheduler and s.scheduler != "local" and "://" not in s.scheduler and ":" not in s.scheduler:
        raise ConfigError(f"config key 'stability.scheduler' must be \"\" (this machine), \"local\" (a local "
                          f"dask cluster) or a scheduler address such as \"tcp://host:8786\"; got {s.scheduler!r}.")


def validate_profile(p: ProfileConfig) -> None:
    """The rules of ``[profile]`` (also of a :class:`ProfileConfig` passed to the profiles directly)."""
    _names(p.outcomes, "profile.outcomes")
    _names(p.covariates, "profile.covariates")
    _in(p.correction, CORRECTIONS, "profile.correction")
    _in(p.pairwise, tuple(PAIRWISE_TESTS), "profile.pairwise")
    _at_least(p.pseudo_class_draws, 2, "profile.pseudo_class_draws")
    _at_least(p.top_features, 1, "profile.top_features")
    if not 0 < p.alpha < 1:
        raise ConfigError(f"config key 'profile.alpha' must be in (0, 1); got {p.alpha}.")
    for method, names in p.names.items():
        _in(method, METHODS, "profile.names")
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            raise ConfigError(f"config key 'profile.names.{method}' must be a table of archetype -> name, "
                              f"e.g. {{ \"0\" = \"heavy scrollers\" }}; got {names!r}.")
        for archetype in names:
            try:
                int(archetype)
            except ValueError:
                raise ConfigError(f"config key 'profile.names.{method}': {archetype!r} is not an archetype "
                                  "number (0, 1, ...).") from None


def validate(cfg: ExperimentConfig) -> None:
    """Range and choice checks that the types alone do not catch.

    Everything that can be checked without the cohort is checked here, so
    that a mistake is found before anything is loaded or fitted; the names
    the config gives (features, outcomes, covariates) are checked against
    the cohort by :func:`segment.experiment.prepare`.
    """
    _validate_experiment(cfg.experiment)
    _validate_features(cfg.features)
    _validate_reduce(cfg.reduce)
    _validate_cluster(cfg.cluster)
    _validate_stability(cfg.stability)
    validate_profile(cfg.profile)
    _at_least(cfg.report.min_cell, 1, "report.min_cell")

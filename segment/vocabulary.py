"""The fixed words of an analysis, spelled once.

The clustering methods and what belongs to each (the name a user writes,
the name the report shows, the column of ``assignments.csv``, the space it
clusters in, whether it has a noise label); the noise label; the verdicts
of the stability analysis and of the profiles; the corrections and
pairwise tests the configuration accepts.  The order of :data:`METHODS` is
the order methods appear in every table, report and figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: The label of respondents HDBSCAN leaves in no archetype.
NOISE = -1
NOISE_NAME = "noise"

#: How the configuration names a space, and how the report words it.
# The streams of the experiment seed: every random draw of a run comes from
# one of these children of ``np.random.SeedSequence(experiment.seed)``, so a
# draw does not depend on how many others came before it or where it ran.
SEED_STREAMS = {
    "fit": 0,             # the segmentation of the cohort
    "resamples": 1,       # (1, b): stability resample b
    "profile": 2,         # (2, i): the profiles of method i
    "null_cohorts": 3,    # (3, j): null cohort j, its fit and its resamples
    "display": 4,         # the 2-D picture of the report
    "null_reference": 5,  # the bootstrap of the null reference
    "split_half": 7,      # the split of a split-half replication
}


def seed_stream(seed, name: str, *more: int):
    """The child of ``seed`` (a ``SeedSequence``) for the stream ``name``, extended by ``more``."""
    import numpy as np

    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, SEED_STREAMS[name], *more))


SPACE_WORDS = {"features": "scaled feature space", "embedding": "UMAP embedding"}


@dataclass(frozen=True)
class Method:
    """One clustering method and the words that go with it.

    Attributes
    ----------
    name : str
        As the configuration, the tables and the command line write it.
    display : str
        As the report names it.
    column : str
        Its archetype column in ``assignments.csv``.
    probability : str or None
        Its column of membership probabilities in ``assignments.csv``, if any.
    space : str
        The space it clusters in by default (a key of :data:`SPACE_WORDS`).
    noise : bool
        Whether it leaves respondents in :data:`NOISE`.
    short : str
        As the stability summary sentences name it.
    refits : str or None
        For a variant of the stability analysis only: the method whose
        archetypes it assesses.
    fit : callable or None
        For a method added with :func:`register`: ``fit(points, random_state)
        -> (model, labels)`` on the distinct points of its space (labels are
        ints from 0, and :data:`NOISE` if ``noise``).  The built-in methods
        are fitted by :func:`segment.pipeline.fit_segmentation` itself.
    predict : callable or None
        For a method added with :func:`register`: ``predict(model, points)
        -> labels`` for new points of the same space.
    """

    name: str
    display: str
    column: str
    probability: str | None
    space: str
    noise: bool
    short: str
    refits: str | None = None
    fit: Callable | None = None
    predict: Callable | None = None

    @property
    def space_words(self) -> str:
        """The default space as the report words it."""
        return SPACE_WORDS[self.space]


_ALL = (
    Method("hdbscan", "HDBSCAN", "hdbscan_label", "hdbscan_probability", "embedding", True, "HDBSCAN"),
    Method("gmm", "Gaussian mixture", "gmm_component", "gmm_posterior", "embedding", False, "GMM (fixed k)"),
    Method("kmeans", "K-Means", "kmeans_cluster", None, "features", False, "K-Means"),
)

#: The methods of a fit, in output order (:func:`register` adds one).
METHODS = {m.name: m for m in _ALL}
#: Their names: the methods that give archetypes.
ARCHETYPE_METHODS = list(METHODS)

#: The mixture refitted with its k selected again on every resample, assessed beside the mixture at fixed k.
GMM_RESELECTED = Method("gmm_reselected", "Gaussian mixture (k re-selected per resample)", "gmm_component",
                        "gmm_posterior", "embedding", False, "GMM (k re-selected)", refits="gmm")
#: The variants the stability analysis adds, each right after the method it refits.
STABILITY_VARIANTS = {GMM_RESELECTED.name: GMM_RESELECTED}
#: Every labeling the stability analysis assesses, in output order.
STABILITY_METHODS = [name for m in ARCHETYPE_METHODS
                     for name in (m, *(v.name for v in STABILITY_VARIANTS.values() if v.refits == m))]

#: Method -> its column of ``assignments.csv``.
ASSIGNMENT_COLUMNS = {m.name: m.column for m in METHODS.values()}

#: Method (stability variants included) -> the name the report gives it.
DISPLAY_NAMES = {m.name: m.display for m in (*METHODS.values(), *STABILITY_VARIANTS.values())}
#: Method (stability variants included) -> the name the stability summary gives it.
SHORT_NAMES = {m.name: m.short for m in (*METHODS.values(), *STABILITY_VARIANTS.values())}
#: The method whose archetypes a labeling of the stability analysis assesses.
REFITS = {**{m: m for m in METHODS}, **{v.name: v.refits for v in STABILITY_VARIANTS.values()}}


def method_names() -> tuple[str, ...]:
    """The names of the methods, in output order."""
    return tuple(ARCHETYPE_METHODS)


def registered_methods() -> tuple[Method, ...]:
    """The methods added with :func:`register`, in the order they were added."""
    return tuple(m for m in METHODS.values() if m.fit is not None)


def register(new: Method) -> Method:
    """Add a clustering method to every analysis from now on.

    The method is fitted on every fit and refit (stability resamples, null
    cohorts), profiled, written to ``assignments.csv`` and shown in the
    report beside the built-in ones.

    Parameters
    ----------
    new : Method
        With ``fit`` and ``predict``; its ``name`` and ``column`` are new.

    Returns
    -------
    Method
        ``new``.

    Examples
    --------
    >>> from sklearn.cluster import AgglomerativeClustering
    >>> def fit(points, random_state):
    ...     labels = AgglomerativeClustering(4).fit_predict(points)
    ...     return (points, labels), labels
    >>> def predict(model, points):                      # nearest fitted point
    ...     train, labels = model
    ...     return labels[((points[:, None] - train[None]) ** 2).sum(-1).argmin(1)]
    >>> register(Method("ward", "Ward", "ward_cluster", None, "features", False, "Ward",
    ...                 fit=fit, predict=predict))        # doctest: +SKIP
    """
    if new.fit is None or new.predict is None:
        raise ValueError(f"method {new.name!r} needs fit and predict to be registered.")
    taken = {m.column for m in METHODS.values()}
    if new.name in METHODS or new.name in STABILITY_VARIANTS or new.column in taken:
        raise ValueError(f"method {new.name!r} (column {new.column!r}) is registered already.")
    if new.space not in SPACE_WORDS:
        raise ValueError(f"space must be one of {', '.join(SPACE_WORDS)}; got {new.space!r}.")
    METHODS[new.name] = new
    ARCHETYPE_METHODS.append(new.name)
    STABILITY_METHODS.append(new.name)
    ASSIGNMENT_COLUMNS[new.name] = new.column
    DISPLAY_NAMES[new.name] = new.display
    SHORT_NAMES[new.name] = new.short
    REFITS[new.name] = new.name
    return new


def unregister(name: str) -> None:
    """Remove a method added with :func:`register`."""
    if name not in METHODS or METHODS[name].fit is None:
        raise ValueError(f"{name!r} is not a registered method.")
    del METHODS[name]
    for names in (ARCHETYPE_METHODS, STABILITY_METHODS):
        names.remove(name)
    for table in (ASSIGNMENT_COLUMNS, DISPLAY_NAMES, SHORT_NAMES, REFITS):
        del table[name]


def method(name: str) -> Method:
    """The :class:`Method` called ``name`` (a stability variant included)."""
    return METHODS[name] if name in METHODS else STABILITY_VARIANTS[name]


def assignment_column(name: str) -> str:
    """The column of ``assignments.csv`` that holds the archetypes of ``name``."""
    return METHODS[name].column


def display_name(name: str) -> str:
    """The name the report gives ``name`` (an unknown name is returned as it is)."""
    return DISPLAY_NAMES.get(name, name)


# --------------------------------------------------------------------------
# verdicts

STABLE = "stable"
#: Weak or dissolved: the mean Jaccard is within two Monte-Carlo standard errors of the dissolved threshold.
BORDERLINE_DISSOLVED = "borderline dissolved"
#: Every verdict the stability analysis gives an archetype, the best first.
VERDICTS = (STABLE, "borderline", "weak", BORDERLINE_DISSOLVED, "dissolved", "no reference", "not resampled")
#: The verdicts that are not :data:`STABLE`, in the order summaries count them.
NOT_STABLE_VERDICTS = VERDICTS[1:]
#: An archetype without a verdict (stability not run, or no row for it).
NOT_ASSESSED = "not assessed"
#: The verdict of the noise group.
NOISE_VERDICT = "not applicable (noise)"
#: A pair of archetypes is summarised by its least stable member: the higher the rank, the less stable.
PAIR_VERDICT_RANK = {STABLE: 0, "borderline": 1, NOT_ASSESSED: 2, "not resampled": 2, "no reference": 2,
                     "weak": 3, BORDERLINE_DISSOLVED: 4, "dissolved": 5}

#: The methods whose archetypes a run may recommend, preferred in this order when the evidence ties:
#: the calibration's order (docs/validation.md). K-Means is a baseline: its k is set, not found.
RECOMMENDABLE = ("gmm", "hdbscan")


def recommended_method(n_stable: dict, n_archetypes: dict, methods: tuple = RECOMMENDABLE) -> str | None:
    """The method whose archetypes a run recommends reporting.

    Among ``methods`` with at least one archetype called stable: the one
    with the most; a tie goes to the larger share of its archetypes called
    stable, then to the order of ``methods``.
    The rule was chosen against others on the calibration's planted cohorts
    (docs/validation.md, *Which archetypes a run recommends*).

    Parameters
    ----------
    n_stable, n_archetypes : dict
        Method -> archetypes called stable, and archetypes found (noise not counted).
    methods : tuple of str
        The candidates, preferred in this order; other rules are studied with other tuples.

    Returns
    -------
    str or None
        None when no such method has a stable archetype: the run then recommends none.

    Examples
    --------
    >>> recommended_method({"hdbscan": 3, "gmm": 3, "kmeans": 6}, {"hdbscan": 3, "gmm": 4, "kmeans": 6})
    'hdbscan'
    >>> recommended_method({"hdbscan": 0, "gmm": 0}, {"hdbscan": 4, "gmm": 1}) is None
    True
    """
    candidates = [m for m in methods if n_stable.get(m, 0) > 0]
    if not candidates:
        return None
    return min(candidates, key=lambda m: (-n_stable[m], -n_stable[m] / max(n_archetypes.get(m, 0), 1),
                                          methods.index(m)))


#: The stability of a method's archetypes, as the profile tables and the report summarise it.
STABILITY_NOT_ASSESSED = "stability not assessed"
ALL_STABLE = "all stable"
NOT_ALL_STABLE = "not all archetypes stable"
STABLE_INTERPRETATION = "archetypes stable under resampling"

#: The opening of the verdict when no method found an archetype.
NO_ARCHETYPES = "No method found archetypes in this cohort"
#: The opening of the verdict when no archetype beats the null reference.
NOT_BEYOND_NULL = "No archetype in this cohort is more reproducible than structure-free data of the same shape"

#: The structure-free cohorts a null reference can be built from (``stability.null``):
#: a short name for tables, and what such a cohort keeps of the cohort.
NULL_MODELS = {
    "unimodal": ("Gaussian copulas of the cohort with unimodal items",
                 "every numeric item and every option of a multiselect item keeps its levels and its missing "
                 "share, the items their normal-score correlations (corrected for the coarseness of the "
                 "answers), and each item's distribution over its levels is the unimodal one nearest to its "
                 "own, so that no item keeps the modes that archetypes give it"),
    "correlated": ("Gaussian copulas of the cohort",
                   "every item keeps its answers, numeric items and the options of multiselect items their "
                   "rank correlations; items whose answers are multimodal keep their modes"),
    "permute": ("independently permuted cohorts",
                "every column permuted on its own: every item keeps its answers and no relation between "
                "items survives"),
}


def null_model(name: str | None) -> tuple[str, str]:
    """The short name and the description of the null model ``name`` (runs
    written before the choice was recorded used the Gaussian copula)."""
    return NULL_MODELS[name or "correlated"]


# --------------------------------------------------------------------------
# features

#: How missing answers are filled and how features are scaled (``[features]``).
IMPUTERS = ("knn", "median", "drop")
SCALERS = ("standard", "robust")


# --------------------------------------------------------------------------
# tests of the profiles

#: Multiple-testing corrections the configuration accepts, and their names.
CORRECTIONS = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg FDR", "bonferroni": "Bonferroni"}
GAMES_HOWELL = "games-howell"
#: Pairwise tests the configuration accepts, and their names.
PAIRWISE_TESTS = {GAMES_HOWELL: "Games-Howell", "welch": "Welch t"}

__all__ = ["Method", "METHODS", "ARCHETYPE_METHODS", "GMM_RESELECTED", "STABILITY_VARIANTS", "STABILITY_METHODS",
           "method_names", "registered_methods", "register", "unregister", "method", "assignment_column",
           "display_name", "ASSIGNMENT_COLUMNS", "DISPLAY_NAMES",
           "SHORT_NAMES", "REFITS", "NOISE", "NOISE_NAME", "SPACE_WORDS", "STABLE", "BORDERLINE_DISSOLVED", "VERDICTS",
           "NOT_STABLE_VERDICTS", "NOT_ASSESSED", "NOISE_VERDICT", "PAIR_VERDICT_RANK", "STABILITY_NOT_ASSESSED",
           "RECOMMENDABLE", "recommended_method",
           "ALL_STABLE", "NOT_ALL_STABLE", "STABLE_INTERPRETATION", "NO_ARCHETYPES", "NOT_BEYOND_NULL",
           "NULL_MODELS", "null_model", "IMPUTERS", "SCALERS", "CORRECTIONS", "GAMES_HOWELL", "PAIRWISE_TESTS"]

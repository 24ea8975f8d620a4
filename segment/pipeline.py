"""One fit of the whole segmentation: features → UMAP → HDBSCAN, GMM, K-Means.

:func:`fit_segmentation` is what a run does once on the cohort and what the
stability analysis does again on every resample.  It fits on the distinct
feature vectors only and carries labels back, so that respondents with
identical answers always share an archetype and copies made by resampling
with replacement do not inflate densities.  :meth:`Segmentation.predict`
places new respondents into a fit (:mod:`segment.predict`).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from .cluster import (
    NOISE,
    GMMResult,
    HDBSCANResult,
    agreement,
    fit_hdbscan,
    fit_kmeans,
    internal_indices,
    select_gmm,
)
from .features import FeatureEncoder, encoder_for
from .reduce import fit_umap
from .vocabulary import ARCHETYPE_METHODS as METHODS
from .vocabulary import METHODS as REGISTRY
from .vocabulary import SPACE_WORDS, registered_methods

MIN_POINTS_TO_EMBED = 10
#: The first stage seed of the methods added to the registry (the built-in stages use 0 to 9).
REGISTERED_STAGES = 10
#: Distinct points from which a fit with workers fits the mixture and K-Means beside UMAP (in process
#: they take 1.5 s of a 31 s run at 10,000, 11 s of 109 s at 100,000: bench/results.jsonl).
FIT_ASIDE_FROM = 20_000


def stage_seed(seed, stage: int) -> int:
    """An int seed for one stage, derived from an int or a SeedSequence.

    The derivation does not depend on how often it is called or in which
    process, so results do not depend on the number of workers.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    child = np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (stage,))
    return int(child.generate_state(1, dtype=np.uint32)[0] % (2**31 - 1))


@dataclass
class Segmentation:
    """Everything one fit produced, per distinct feature vector.

    Attributes
    ----------
    ids : Index
        Respondents fitted, in order.
    encoder : FeatureEncoder
    X : ndarray (n_distinct, p)
        Distinct encoded feature vectors.
    inverse : ndarray (n,)
        Row of ``X`` of every respondent.
    umap : umap.UMAP or None
        None when the cohort was too small to embed.
    embedding : ndarray (n_distinct, d)
    hdbscan : HDBSCANResult
    gmm : GMMResult or None
    kmeans : ndarray (n_distinct,) or None
    notes : list of str
    spaces : dict
        The space (``"pca"``, ``"features"`` or ``"embedding"``) the mixture
        and K-Means were fitted in.
    pca : sklearn.decomposition.PCA or None
        The principal components of the scaled features that the mixture
        was fitted on (space ``"pca"``).
    registered : dict
        The methods added with :func:`segment.vocabulary.register`, by name:
        ``(model, labels per distinct answer pattern)``.
    """

    ids: pd.Index
    encoder: FeatureEncoder
    X: np.ndarray
    inverse: np.ndarray
    umap: object
    embedding: np.ndarray
    hdbscan: HDBSCANResult
    gmm: GMMResult | None
    kmeans: np.ndarray | None
    notes: list = field(default_factory=list)
    pca: object = None
    spaces: dict = field(default_factory=lambda: {"gmm": "embedding", "kmeans": "features"})
    registered: dict = field(default_factory=dict)

    def point_labels(self, method: str) -> np.ndarray | None:
        """Labels per distinct answer pattern (noise = -1 for HDBSCAN); None when not fitted."""
        if method in self.registered:
            return self.registered[method][1]
        return {"hdbscan": self.hdbscan.labels,
                "gmm": None if self.gmm is None else self.gmm.labels,
                "kmeans": self.kmeans}.get(method)

    def labels(self, method: str) -> np.ndarray:
        """Labels per respondent (noise = -1 for HDBSCAN)."""
        per_point = self.point_labels(method)
        return None if per_point is None else per_point[self.inverse]

    def labels_frame(self) -> pd.DataFrame:
        """Labels of every method per respondent."""
        return pd.DataFrame({m: self.labels(m) for m in METHODS if self.labels(m) is not None},
                            index=self.ids)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Assign new respondents to the archetypes of this fit.

        Each respondent is placed on its own (see :mod:`segment.predict`),
        so a row does not depend on the other rows of ``features``.

        Parameters
        ----------
        features : DataFrame
            Decoded features of the new respondents (``Cohort.features``),
            indexed by respondent; it must hold every column the fit used.

        Returns
        -------
        DataFrame
            Indexed like ``features``, one column per label of every method
            and ``distance_to_training``; see
            :func:`segment.predict.transfer`.

        Raises
        ------
        SegmentError
            ``features`` lacks a column the fit used.
        """
        from .predict import transfer  # numba and hdbscan load only when predicting

        return transfer(self, features)


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``X`` in order of first appearance, and the inverse map."""
    _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return X[np.sort(first)], rank[inverse.ravel()]


def principal_components(X: np.ndarray, n_components: int):
    """The leading principal components of the scaled features: ``(pca, scores)``.

    The mixture is fitted here by default: in the UMAP embedding BIC chose
    the largest k searched on every cohort, structure-free ones included; in
    five components a tied-covariance mixture selected by ICL recovers planted
    archetypes best and chooses k = 1 on structure-free cohorts (the mixture
    selection study in ``docs/validation.md``).
    """
    from sklearn.decomposition import PCA

    d = int(max(1, min(n_components, X.shape[1], len(X) - 1)))
    pca = PCA(n_components=d, svd_solver="full").fit(X)
    return pca, pca.transform(X)


def _fit_encoder(encoder: FeatureEncoder, features: pd.DataFrame):
    return encoder, encoder.fit_transform(features)


def _mixture(X, embedding, g, k_range, cov_types, random_state, memory):
    """``(pca, GMMResult)``: the mixture in its space (None for fewer than two distinct points)."""
    if len(X) < 2:  # a mixture needs two distinct points
        return None, None
    pca, space = None, {"features": X, "embedding": embedding}.get(g.space)
    if g.space == "pca":
        pca, space = principal_components(X, g.pca_components)
    return pca, _cached(select_gmm, memory)(space, k=k_range, covariance_types=cov_types, criterion=g.criterion,
                                            n_init=g.n_init, random_state=random_state)


def _kmeans(space, k, random_state, memory):
    """K-Means labels per distinct point (None for fewer than two)."""
    return _cached(fit_kmeans, memory)(space, k=k, random_state=random_state) if len(space) >= 2 else None


def _cached(func, memory):
    return func if memory is None else memory.cache(func)


@contextlib.contextmanager
def _workers_stopped_on_error(pool):
    """Stop the workers of fits running aside when the fit beside them fails or is interrupted."""
    try:
        yield
    except BaseException:
        if pool is not None:
            from .executors import stop_local_pool

            stop_local_pool(pool)
        raise


def _one_thread(func, *args):
    """``func(*args)`` on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return func(*args)


def fit_segmentation(features: pd.DataFrame, codebook, config, seed, *,
                     progress=None, gmm_k: int | None = None, gmm_covariance: str | None = None,
                     precomputed_knn=None, memory=None, workers: int = 1) -> Segmentation:
    """Fit features, UMAP, HDBSCAN, GMM and K-Means on a feature frame.

    Parameters
    ----------
    features : DataFrame
        Decoded features of the respondents to fit (``Cohort.features``,
        excluded respondents already removed).
    codebook : Codebook
    config : ExperimentConfig
    seed : int or numpy.random.SeedSequence
        All randomness of the fit derives from it.
    progress : callable, optional
        ``progress(stage_name)`` is called before each stage.
    gmm_k, gmm_covariance : optional
        Fit the mixture at this k and covariance type instead of selecting.
    precomputed_knn : callable, optional
        ``precomputed_knn(X) -> (indices, distances)``: the nearest
        neighbours of the distinct encoded rows ``X``, to skip UMAP's own
        search (None: UMAP searches).
    memory : joblib.Memory, optional
        A content-addressed cache: a stage whose inputs and parameters are
        unchanged is read from it instead of refitted (a sweep over HDBSCAN
        parameters fits UMAP once).
    workers : int
        Local worker processes the run may use.  With two or more, on
        ``FIT_ASIDE_FROM`` distinct points or more, the mixture (unless fitted
        in the embedding) and K-Means (in the features) are fitted in a worker
        while UMAP fits; the numbers are the same.

    Returns
    -------
    Segmentation
    """
    step = progress or (lambda name: None)
    fc, rc, cc = config.features, config.reduce, config.cluster
    cached = functools.partial(_cached, memory=memory)
    step("features")
    encoder = encoder_for(features, codebook, scaler=fc.scaler,
                          imputer="median" if fc.imputer == "drop" else fc.imputer,
                          knn_neighbors=fc.knn_neighbors, categorical_weight=fc.categorical_weight,
                          scale_indicators=fc.scale_indicators)
    encoder, X_all = cached(_fit_encoder)(encoder, features)
    X, inverse = distinct_rows(X_all)

    notes = []
    g = cc.gmm
    if len(X) < MIN_POINTS_TO_EMBED:
        k_range, cov_types = (1, 1), [g.covariance_types[0]]
    elif gmm_k is not None:
        k_range, cov_types = (gmm_k, gmm_k), [gmm_covariance or g.covariance_types[0]]
    else:
        k_range, cov_types = tuple(g.k), list(g.covariance_types)
    mixture_args = (g, k_range, cov_types, stage_seed(seed, 1), memory)
    kmeans_args = (cc.kmeans.k, stage_seed(seed, 2), memory)
    aside, pool = {}, None
    if workers > 1 and len(X) >= FIT_ASIDE_FROM:
        # the second core idles while UMAP lays out its graph on one thread
        from .executors import local_pool

        pool = local_pool(workers)
        if g.space != "embedding":
            aside[_mixture] = pool.submit(_one_thread, _mixture, X, None, *mixture_args)
        if cc.kmeans.space == "features":
            aside[_kmeans] = pool.submit(_one_thread, _kmeans, X, *kmeans_args)

    def fit_beside_umap(func, *args):
        """From ``FIT_ASIDE_FROM`` points on one BLAS thread, in a worker or not: the same numbers."""
        if len(X) < FIT_ASIDE_FROM:
            return func(*args)
        return aside[func].result() if func in aside else _one_thread(func, *args)

    with _workers_stopped_on_error(pool):
        step("umap")
        if len(X) >= MIN_POINTS_TO_EMBED:
            given = None if precomputed_knn is None else precomputed_knn(X)
            knn = (None, None, None) if given is None else (*given, None)
            umap_model, embedding = cached(fit_umap)(
                X, random_state=stage_seed(seed, 0), n_neighbors=rc.n_neighbors,
                min_dist=rc.min_dist, n_components=rc.n_components, metric=rc.metric,
                n_epochs=rc.n_epochs, precomputed_knn=knn)
            for key in ("n_neighbors", "n_components"):
                used, asked = getattr(umap_model, key), getattr(rc, key)
                if used != asked:
                    notes.append(f"reduce.{key} = {asked} was lowered to {used}: the cohort has only "
                                 f"{len(X)} distinct answer patterns.")
        else:
            umap_model, embedding = None, X.copy()
            notes.append(f"only {len(X)} distinct answer patterns: too few to embed or cluster.")

        step("hdbscan")
        h = cc.hdbscan
        hres = cached(fit_hdbscan)(embedding, min_cluster_size=h.min_cluster_size, min_samples=h.min_samples,
                           selection_method=h.selection_method, epsilon=h.epsilon,
                           assign_noise=h.assign_noise)

        if h.min_samples and h.min_samples > len(embedding) - 1 and len(embedding) >= 3:
            notes.append(f"cluster.hdbscan.min_samples = {h.min_samples} is more than the cohort's "
                         f"{len(embedding)} distinct answer patterns allow: it was lowered to {len(embedding) - 1}, "
                         "and every point's neighbourhood spans almost the whole cohort.")

        step("gmm")
        pca, gres = fit_beside_umap(_mixture, X, embedding, *mixture_args)

        step("kmeans")
        kmeans = fit_beside_umap(_kmeans, X if cc.kmeans.space == "features" else embedding, *kmeans_args)
    if kmeans is not None and cc.kmeans.k > len(X):
        notes.append(f"cluster.kmeans.k = {cc.kmeans.k} was lowered to {len(X)}: the cohort has only "
                     f"{len(X)} distinct answer patterns.")

    registered = {}
    for i, method in enumerate(registered_methods()):
        step(method.name)
        if len(X) >= 2:
            model, labels = method.fit(X if method.space == "features" else embedding,
                                       stage_seed(seed, REGISTERED_STAGES + i))
            registered[method.name] = (model, np.asarray(labels, dtype=np.int64))

    return Segmentation(ids=features.index, encoder=encoder, X=X, inverse=inverse,
                        umap=umap_model, embedding=embedding, hdbscan=hres, gmm=gres,
                        kmeans=kmeans, notes=notes, pca=pca,
                        spaces={"gmm": g.space, "kmeans": cc.kmeans.space,
                                **{m.name: m.space for m in registered_methods()}},
                        registered=registered)


def evaluate(seg: Segmentation, *, dbcv: bool = True, seed: int = 0) -> dict:
    """Agreement between methods and internal indices, each with its space.

    Returns
    -------
    dict
        ``{"agreement": [...], "indices": [...], "contingency": DataFrame}``.
    """
    rows = []
    per_respondent = {m: seg.labels(m) for m in METHODS}
    for a, b in combinations(METHODS, 2):
        la, lb = per_respondent[a], per_respondent[b]
        if la is None or lb is None:
            continue
        res = agreement(la, lb)
        noise = REGISTRY[a].noise or REGISTRY[b].noise
        rows.append({"method_a": a, "method_b": b, **res,
                     "note": "respondents that HDBSCAN calls noise are left out" if noise else ""})
    indices = []
    # per distinct point: indices describe the geometry the clusterers saw
    for method in METHODS:
        labels = seg.point_labels(method)
        if labels is None:
            continue
        indices += internal_indices(seg.embedding, labels, space_name=SPACE_WORDS["embedding"],
                                    method=method, random_state=seed, dbcv=dbcv)
        indices += internal_indices(seg.X, labels, space_name=SPACE_WORDS["features"],
                                    method=method, random_state=seed, dbcv=False)
    from .cluster import contingency
    h, g = per_respondent["hdbscan"], per_respondent["gmm"]
    table = contingency(h, g) if g is not None else pd.DataFrame()
    return {"agreement": rows, "indices": indices, "contingency": table}


__all__ = ["Segmentation", "fit_segmentation", "principal_components", "evaluate", "stage_seed", "distinct_rows",
           "NOISE", "METHODS"]

"""Placing new respondents into a fitted segmentation.

:meth:`Segmentation.predict <segment.pipeline.Segmentation.predict>` (and
:func:`transfer`) assigns every new respondent with a fitted model: the
feature encoder, an embedding into the saved UMAP space, HDBSCAN's
approximate prediction, the mixture's posteriors and the nearest K-Means
centre.

A new respondent's archetype does not depend on who else is in the batch.
UMAP's own ``transform`` refines new points by stochastic gradient descent
whose random stream and negative samples run over the whole batch, so the
same respondent can land elsewhere when assigned with others.
:func:`embed_new` therefore uses UMAP's initialisation step alone: a new
point is placed at the membership-weighted mean of the training embedding of
its ``n_neighbors`` exact nearest training points (weights from UMAP's own
``smooth_knn_dist`` and ``compute_membership_strengths``, computed for each
point on its own), and a new answer pattern identical to a training one
lands exactly on it.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pandas as pd
from umap.distances import euclidean as _euclidean

from .errors import SegmentError
from .vocabulary import ASSIGNMENT_COLUMNS as LABEL_COLUMN
from .vocabulary import NOISE, registered_methods

KNN_CHUNK = 256
TRANSFER_COLUMNS = ["hdbscan_label", "hdbscan_probability", "hdbscan_soft_label", "gmm_component",
                    "gmm_posterior", "kmeans_cluster", "distance_to_training"]


@numba.njit(cache=True)
def _keep_nearest(row, k, indices, distances, i):
    order = np.argsort(row, kind="mergesort")[:k]  # stable: ties go to the lower index
    for a in range(k):
        indices[i, a] = order[a]
        distances[i, a] = row[order[a]]


@numba.njit
def _knn(X_new, X_train, k, dist):
    # a function passed as an argument cannot be cached on disk: compiled in every process
    n, m = X_new.shape[0], X_train.shape[0]
    indices, distances = np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)
    row = np.empty(m, dtype=np.float32)
    for i in range(n):
        for j in range(m):
            row[j] = dist(X_new[i], X_train[j])
        _keep_nearest(row, k, indices, distances, i)
    return indices, distances


@numba.njit(cache=True)
def _knn_euclidean(X_new, X_train, k):
    # _knn with umap-learn's euclidean called by name, which numba can cache on disk
    n, m = X_new.shape[0], X_train.shape[0]
    indices, distances = np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)
    row = np.empty(m, dtype=np.float32)
    for i in range(n):
        for j in range(m):
            row[j] = _euclidean(X_new[i], X_train[j])
        _keep_nearest(row, k, indices, distances, i)
    return indices, distances


def nearest_training(umap_model, X_train: np.ndarray, X_new: np.ndarray, k: int) -> tuple:
    """Exact ``k`` nearest training points of each new point, in UMAP's metric.

    Each row is computed on its own (no batch statistics, stable tie
    order), so the result of a point does not depend on the batch.
    """
    if umap_model is not None and getattr(umap_model, "_metric_kwds", None):
        raise SegmentError("the model's UMAP metric takes parameters; transfer supports metrics without "
                           "parameters only.")
    if umap_model is None:
        dist = _euclidean
    else:
        dist = getattr(umap_model, "_input_distance_func", None)
        if dist is None or not hasattr(dist, "py_func"):
            from umap.distances import named_distances
            if umap_model.metric not in named_distances:
                raise SegmentError(f"the model's UMAP metric {umap_model.metric!r} cannot be used to place "
                                   "new respondents; use a named metric such as 'euclidean'.")
            dist = named_distances[umap_model.metric]
    k = int(min(k, len(X_train)))
    A = np.ascontiguousarray(X_new, dtype=np.float32)
    B = np.ascontiguousarray(X_train, dtype=np.float32)
    idx, dst = [], []
    for start in range(0, len(A), KNN_CHUNK):
        chunk = A[start:start + KNN_CHUNK]
        i, d = _knn_euclidean(chunk, B, k) if dist is _euclidean else _knn(chunk, B, k, dist)
        idx.append(i)
        dst.append(d)
    if not idx:
        return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    return np.vstack(idx), np.vstack(dst)


@numba.njit(cache=True)
def _place(indices, distances, E, k, local_connectivity):
    # per point, as umap.umap_.smooth_knn_dist, compute_membership_strengths
    # (bipartite) and init_graph_transform; the only change: the fallback
    # scale uses the point's own mean distance, not the mean of the batch
    n, m = indices.shape
    d_out = E.shape[1]
    out = np.full((n, d_out), np.nan)
    target = np.log2(k)
    for i in range(n):
        row = distances[i]
        nz = row[row > 0.0]
        rho = 0.0
        if nz.shape[0] >= local_connectivity:
            index = int(np.floor(local_connectivity))
            interp = local_connectivity - index
            if index > 0:
                rho = nz[index - 1]
                if interp > 1e-5:
                    rho += interp * (nz[index] - nz[index - 1])
            elif nz.shape[0] > 0:
                rho = interp * nz[0]
        elif nz.shape[0] > 0:
            rho = np.max(nz)
        lo, hi, mid = 0.0, np.inf, 1.0
        for _ in range(64):
            psum = 0.0
            for j in range(1, m):
                d = row[j] - rho
                psum += np.exp(-(d / mid)) if d > 0 else 1.0
            if np.fabs(psum - target) < 1e-5:
                break
            if psum > target:
                hi = mid
                mid = (lo + hi) / 2.0
            else:
                lo = mid
                mid = mid * 2 if hi == np.inf else (lo + hi) / 2.0
        floor = 1e-3 * np.mean(row)
        sigma = mid if mid >= floor else floor
        total = 0.0
        acc = np.zeros(d_out)
        exact = -1
        for j in range(m):
            t = indices[i, j]
            if t < 0:
                continue
            if row[j] - rho <= 0.0 or sigma == 0.0:
                w = 1.0
            else:
                w = np.exp(-((row[j] - rho) / sigma))
            if row[j] == 0.0:
                exact = t
                break
            total += w
            for c in range(d_out):
                acc[c] += w * E[t, c]
        if exact >= 0:
            out[i] = E[exact]
        elif total > 0:
            out[i] = acc / total
    return out


def embed_new(seg, X_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New points in the model's embedding, independent of the batch.

    Every point is placed at the membership-weighted mean of the training
    embedding of its exact nearest training points (UMAP's ``transform``
    initialisation, without the stochastic refinement); a point identical
    to a training pattern lands on it.  Returns the embedding (NaN for a
    point with no neighbour within UMAP's disconnection distance) and the
    distance of each point to its nearest training pattern.
    """
    u = seg.umap
    if u is None:  # too few points to embed: the model clustered the features themselves
        _, dst = nearest_training(None, seg.X, X_new, 1)
        return np.asarray(X_new, dtype=np.float64).copy(), dst[:, 0].astype(float)
    k = int(u._n_neighbors)
    idx, dst = nearest_training(u, seg.X, X_new, k)
    idx = idx.copy()
    idx[dst >= u._disconnection_distance] = -1
    E = _place(idx, dst.astype(np.float64), np.ascontiguousarray(seg.embedding, dtype=np.float64),
               float(k), float(max(0.0, u.local_connectivity - 1.0)))
    return E, dst[:, 0].astype(float)


def model_features(seg) -> list[str]:
    """The input columns the model's feature encoder needs."""
    enc = seg.encoder
    return list(enc.numeric) + list((enc.categorical or {}).keys()) + list((enc.multiselect or {}).keys())


def check_features(seg, available, where: str = "the new cohort") -> None:
    """Raise a :class:`SegmentError` listing every model feature ``available`` lacks."""
    needed = model_features(seg)
    have = set(available)
    missing = [c for c in needed if c not in have]
    if missing:
        raise SegmentError(
            f"{where} lacks {len(missing)} of the {len(needed)} feature(s) the model was fitted on: "
            + ", ".join(repr(c) for c in missing)
            + ". Its codebook must define every one of them (under the same names) to be assigned.")


def _space_of(seg, what: str) -> str:
    """The space (``"pca"``, ``"features"`` or ``"embedding"``) a clusterer of the model was fitted in."""
    return seg.spaces[what]


def _centres(S: np.ndarray, labels: np.ndarray) -> np.ndarray:
    ks = np.unique(labels)
    centres = np.zeros((int(ks.max()) + 1, S.shape[1]))
    for k in ks:
        centres[k] = S[labels == k].mean(axis=0)
    return centres


def _nearest_centre(S: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = np.zeros((len(S), len(centres)))
    for j in range(S.shape[1]):  # elementwise only: a row's result does not depend on the batch
        d += (S[:, j:j + 1] - centres[None, :, j]) ** 2
    return d.argmin(axis=1)


def gmm_posteriors(gm, S: np.ndarray) -> np.ndarray:
    """Posteriors of a fitted :class:`~sklearn.mixture.GaussianMixture`, row by row.

    The same numbers as ``predict_proba`` up to rounding, computed with
    elementwise operations only, so that a row's posteriors do not depend on
    the other rows of the batch (a matrix product may round differently with
    the batch's shape).
    """
    n, d = S.shape
    K = gm.n_components
    P = gm.precisions_cholesky_
    ct = gm.covariance_type
    lp = np.zeros((n, K))
    for k in range(K):
        diff = S - gm.means_[k][None, :]
        if ct in ("full", "tied"):
            Pk = P[k] if ct == "full" else P
            y2 = np.zeros(n)
            for c in range(d):
                y = np.zeros(n)
                for j in range(d):
                    y += diff[:, j] * Pk[j, c]
                y2 += y * y
            log_det = float(np.sum(np.log(np.diag(Pk))))
        elif ct == "diag":
            y2 = np.zeros(n)
            for j in range(d):
                y2 += (diff[:, j] * P[k, j]) ** 2
            log_det = float(np.sum(np.log(P[k])))
        else:  # spherical
            y2 = np.zeros(n)
            for j in range(d):
                y2 += (diff[:, j] * P[k]) ** 2
            log_det = d * float(np.log(P[k]))
        lp[:, k] = -0.5 * (d * np.log(2 * np.pi) + y2) + log_det + np.log(gm.weights_[k])
    top = lp[:, 0].copy()
    for k in range(1, K):
        top = np.maximum(top, lp[:, k])
    total = np.zeros(n)
    for k in range(K):
        total += np.exp(lp[:, k] - top)
    return np.exp(lp - top[:, None]) / total[:, None]


def transfer(model, features: pd.DataFrame, *, return_embedding: bool = False):
    """Assign new respondents with a fitted segmentation.

    Parameters
    ----------
    model : Segmentation
        From :func:`~segment.pipeline.fit_segmentation` or
        :func:`~segment.replicate.load_model`.
    features : DataFrame
        Decoded features of the new respondents (``Cohort.features``),
        indexed by respondent; it must hold every column the model was
        fitted on.
    return_embedding : bool
        Also return the new points' embedding (rows as ``features``).

    Returns
    -------
    DataFrame
        Indexed like ``features``: ``hdbscan_label`` (-1 = noise),
        ``hdbscan_probability``, ``hdbscan_soft_label`` (most probable
        archetype, noise included; only if the model assigned noise),
        ``gmm_component``, ``gmm_posterior`` (of that component),
        ``kmeans_cluster`` (nearest centre) and ``distance_to_training``
        (to the nearest training answer pattern, scaled feature space).
        A respondent's row does not depend on the other rows.
    """
    check_features(model, features.columns)
    X_new = model.encoder.transform(features[model_features(model)])
    E_new, nearest = embed_new(model, X_new)
    out = assign(model, X_new, E_new, features.index)
    out["distance_to_training"] = nearest
    if return_embedding:
        return out, X_new, E_new
    return out


def assign(model, X_new: np.ndarray, E_new: np.ndarray, index=None) -> pd.DataFrame:
    """Labels of every method for encoded points and their embedding (see :func:`transfer`)."""
    n = len(X_new)
    out = pd.DataFrame(index=pd.RangeIndex(n) if index is None else index)
    h = model.hdbscan
    placed = ~np.isnan(E_new).any(axis=1)
    labels = np.full(n, NOISE)
    prob = np.zeros(n)
    soft = None
    if h.model is not None and n and placed.any():
        import hdbscan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab, pr = hdbscan.approximate_predict(h.model, E_new[placed])
        labels[placed], prob[placed] = lab, pr
        if h.soft_labels is not None:
            soft = labels.copy()
            if h.n_clusters > 0:
                mv = np.asarray(hdbscan.membership_vector(h.model, E_new[placed])).reshape(int(placed.sum()), -1)
                soft[placed] = np.where(labels[placed] == NOISE, mv.argmax(axis=1), labels[placed])
    elif h.soft_labels is not None:
        soft = labels.copy()
    out["hdbscan_label"] = labels
    out["hdbscan_probability"] = prob
    if soft is not None:
        out["hdbscan_soft_label"] = soft
    if model.gmm is not None:
        gspace = _space_of(model, "gmm")
        space = {"embedding": E_new, "features": X_new}.get(gspace)
        ok = ~np.isnan(X_new).any(axis=1) & ~np.isnan(E_new).any(axis=1)
        if gspace == "pca":
            space = np.full((n, model.pca.n_components_), np.nan)
            space[ok] = model.pca.transform(X_new[ok])
        post = np.full((n, model.gmm.k), np.nan)
        ok = ~np.isnan(space).any(axis=1)
        if ok.any():
            post[ok] = gmm_posteriors(model.gmm.model, space[ok])
        comp = np.where(ok, np.nan_to_num(post, nan=-1).argmax(axis=1), -1)
        out["gmm_component"] = comp
        out["gmm_posterior"] = np.where(ok, np.nan_to_num(post, nan=-1).max(axis=1), np.nan)
    if model.kmeans is not None:
        kspace = _space_of(model, "kmeans")
        S_train, S_new = (model.X, X_new) if kspace == "features" else (model.embedding, E_new)
        centres = _centres(S_train, model.kmeans)
        ok = ~np.isnan(S_new).any(axis=1)
        km = np.full(n, -1)
        if ok.any():
            km[ok] = _nearest_centre(S_new[ok], centres)
        out["kmeans_cluster"] = km
    for method in registered_methods():
        if method.name not in getattr(model, "registered", {}):
            continue
        points = X_new if method.space == "features" else E_new
        ok = ~np.isnan(points).any(axis=1)
        labels = np.full(n, NOISE)
        if ok.any():
            labels[ok] = method.predict(model.registered[method.name][0], points[ok])
        out[method.column] = labels
    out.index.name = "respondent"
    return out


def held_out_transfer(model) -> pd.DataFrame:
    """The model's own cohort assigned as if it were new, each respondent held out.

    Every distinct training answer pattern is placed, like a new respondent,
    at the membership-weighted mean of the embedding of its nearest
    *other* training patterns, and assigned from there.  Comparing these
    labels with a new cohort's transferred labels compares like with like:
    in-sample labels come from the fit itself, transferred ones from
    :func:`embed_new`, and the two differ systematically (a thin archetype
    loses members to its dense neighbours when points are placed by their
    neighbours).

    Returns
    -------
    DataFrame
        One row per respondent of the model (``model.ids``), the columns of
        :func:`assign`.
    """
    u = model.umap
    if u is None:
        E = np.asarray(model.X, dtype=np.float64).copy()
    else:
        k = min(int(u._n_neighbors), len(model.X) - 1)
        idx, dst = nearest_training(u, model.X, model.X, k + 1)
        idx, dst = _drop_self(idx, dst, k)
        idx[dst >= u._disconnection_distance] = -1
        E = _place(idx, dst.astype(np.float64), np.ascontiguousarray(model.embedding, dtype=np.float64),
                   float(k), float(max(0.0, u.local_connectivity - 1.0)))
    out = assign(model, model.X, E)
    out = out.iloc[model.inverse]
    out.index = model.ids
    out.index.name = "respondent"
    return out


def _drop_self(idx: np.ndarray, dst: np.ndarray, k: int) -> tuple:
    """Each row's ``k`` nearest neighbours other than the row itself."""
    n = len(idx)
    own = idx == np.arange(n)[:, None]
    missing = ~own.any(axis=1)
    own[missing, -1] = True  # the row itself fell beyond k + 1 (ties): drop the farthest
    keep = ~own
    return idx[keep].reshape(n, k), dst[keep].reshape(n, k)


__all__ = ["transfer", "assign", "held_out_transfer", "embed_new", "nearest_training", "gmm_posteriors",
           "check_features", "model_features", "KNN_CHUNK", "LABEL_COLUMN", "TRANSFER_COLUMNS"]

"""Dimension reduction with UMAP.

A seeded UMAP is deterministic and runs single threaded; parallelism belongs
at the level of resamples (see :mod:`segment.stability`).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

_NUMBA_CACHE_ENABLED = False


def enable_numba_cache() -> None:
    """Cache umap-learn's numba compilations on disk, once per process.

    umap-learn compiles a few hundred numba functions on first use (about
    13 s here) and caches almost none of them; with caching on, every later
    process (a new run, a resampling worker) loads them in well under a
    second.  A function that cannot be cached is compiled as before.
    """
    global _NUMBA_CACHE_ENABLED
    if _NUMBA_CACHE_ENABLED:
        return
    _NUMBA_CACHE_ENABLED = True
    # functions that use dynamic globals are compiled per process, as before
    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
    import umap  # noqa: F401  (imports pynndescent too)
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("umap", "pynndescent")):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache):
                try:
                    obj.enable_caching()
                except Exception:  # noqa: BLE001 - e.g. no writable cache folder: compile as before
                    pass


#: umap-learn computes every distance below this many points and searches
#: approximately (NN-descent) from it on.
EXACT_NEIGHBOURS_BELOW = 4096


def make_umap(*, n_neighbors: int = 15, min_dist: float = 0.0, n_components: int = 5,
              metric: str = "euclidean", n_epochs: int = 0, random_state: int = 0,
              n_samples: int | None = None, precomputed_knn=(None, None, None)):
    """A configured, unfitted :class:`umap.UMAP`.

    Parameters
    ----------
    n_neighbors, min_dist, n_components, metric
        As in umap-learn.
    n_epochs : int
        Epochs of the layout optimisation; 0 keeps umap-learn's default (500
        up to 10,000 points, 200 above).  The experiment default is 200.  The optimisation is the single
        threaded floor of every fit.  ``n_neighbors`` is lowered to ``n_samples - 1``
        on cohorts smaller than it.
    random_state : int
        The seed; makes the embedding reproducible.
    n_samples : int or None
        Number of points that will be fitted, used to clamp parameters.
    precomputed_knn : tuple
        ``(knn_indices, knn_dists, None)`` computed elsewhere, as umap-learn
        accepts it.
    """
    import umap  # imported late: numba compilation is paid only when used

    enable_numba_cache()
    if n_samples is not None:
        n_neighbors = max(2, min(n_neighbors, n_samples - 1))
        n_components = max(1, min(n_components, n_samples - 2))
    return umap.UMAP(
        n_neighbors=n_neighbors, min_dist=min_dist, n_components=n_components,
        metric=metric, n_epochs=int(n_epochs) or None, random_state=int(random_state), n_jobs=1,
        precomputed_knn=precomputed_knn, transform_seed=int(random_state) % (2**31),
    )


def fit_umap(X: np.ndarray, *, random_state: int, **params):
    """Fit UMAP on ``X`` and return ``(model, embedding)``.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Feature matrix (distinct rows).
    random_state : int
        The seed.
    **params
        ``n_neighbors``, ``min_dist``, ``n_components``, ``metric``,
        ``precomputed_knn``.
    """
    model = make_umap(random_state=random_state, n_samples=len(X), **params)
    with warnings.catch_warnings():
        # seeded UMAP announces that it runs single threaded; that is the point
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
        embedding = model.fit_transform(X)
    return model, np.asarray(embedding, dtype=np.float64)

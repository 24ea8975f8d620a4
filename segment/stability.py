"""Stability of archetypes under resampling, and against structure-free data.

Every resample refits the whole segmentation (features, UMAP, HDBSCAN, the
Gaussian mixture with k re-selected, K-Means) on the distinct respondents it
drew, and separately the mixture at the originally selected k and
covariance type in the same space.  Each original archetype is then
matched, as in Hennig's ``fpc::clusterboot``, to the most similar cluster of
the resample by the Jaccard similarity computed on the respondents present
in both; noise (-1) is not a cluster.

The null reference is a distribution of structure-free cohorts of the same
shape: ``stability.null_cohorts`` cohorts drawn as ``stability.null`` says
(:data:`segment.vocabulary.NULL_MODELS`; by default Gaussian copulas of the
cohort whose items keep their rank correlations and their levels but not
their modes), each
fitted like the cohort (the mixture selecting its own k) and resampled
``stability.null_resamples`` times.  Each contributes the mean Jaccard of its
best archetype.  An archetype is stable when its mean Jaccard reaches
``stability.stable`` and its Monte-Carlo p-value among those best archetypes
is at most ``stability.alpha`` divided over the methods that have archetypes;
borderline when that verdict changes within two Monte-Carlo standard errors.
The same comparison for a method's best archetype is its test of structure.
The rule and its defaults are calibrated in ``docs/validation.md``.

Execution: every resample's randomness derives from the experiment seed by
fixed ``SeedSequence`` spawn keys and every refit runs with one BLAS thread,
so the numbers do not depend on ``n_jobs`` or on where the refits run
(in process, a local worker pool, or a dask cluster).  Finished resamples
are checkpointed one file each, and a run interrupted with Ctrl-C resumes
where it stopped.

The parts live beside this module: matching archetypes to resample clusters
in :mod:`segment.matching`, the null cohorts and the verdicts in
:mod:`segment.null_reference`, where the refits run in
:mod:`segment.executors`, and the checkpoints in :mod:`segment.checkpoints`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd

from .checkpoints import _Checkpoints, _Tasks, fingerprint
from .cluster import NOISE, select_gmm
from .errors import ConfigError, SegmentError
from .executors import _Dask, _executor, _n_jobs  # noqa: F401 - _Dask: importable from here
from .matching import (
    METHODS,
    _jaccards,
    _original_labels,
    _resample_rows,
    _respondent_table,
    _summaries,
    jaccard_table,
    match_clusters,
)
from .null_reference import _null_runs, _permuted, _thresholds, _verdicts
from .pipeline import MIN_POINTS_TO_EMBED, fit_segmentation, stage_seed
from .reduce import EXACT_NEIGHBOURS_BELOW
from .vocabulary import (
    GMM_RESELECTED,
    NOT_STABLE_VERDICTS,
    SEED_STREAMS,
    STABLE,
    VERDICTS,
    recommended_method,
    register,
    registered_methods,
    seed_stream,
)
from .vocabulary import METHODS as REGISTRY
from .vocabulary import SHORT_NAMES as METHOD_NAMES


class StabilityInterrupted(KeyboardInterrupt):
    """Ctrl-C during the resampling: finished resamples are kept on disk.

    Attributes
    ----------
    kept, total : int
        Resamples checkpointed so far, and planned.
    folder : Path or None
        The working folder to resume from.
    """

    def __init__(self, message: str, kept: int, total: int, folder):
        super().__init__(message)
        self.kept, self.total, self.folder = kept, total, folder



@dataclass
class StabilityResult:
    """Tables of a stability analysis (see :func:`bootstrap_stability`)."""

    stability: pd.DataFrame
    respondent_stability: pd.DataFrame
    resamples: pd.DataFrame
    jaccard: pd.DataFrame
    null_jaccard: pd.DataFrame
    null_reference: pd.DataFrame = field(default_factory=pd.DataFrame)
    structure_test: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)

    def tables(self) -> dict:
        return {"stability": self.stability, "respondent_stability": self.respondent_stability,
                "resamples": self.resamples, "jaccard": self.jaccard, "null_jaccard": self.null_jaccard,
                "null_reference": self.null_reference, "structure_test": self.structure_test}

    def _repr_html_(self) -> str:
        from .report._notebook import stability_summary_html

        return stability_summary_html(self)


# --------------------------------------------------------------------------
# one refit (runs in a worker)

@dataclass
class _Context:
    """What every refit needs; sent to each worker once per task."""

    features: pd.DataFrame
    codebook: object
    config: object
    entropy: int
    spawn_key: tuple
    fixed_k: int | None
    fixed_cov: str | None
    precompute_knn: bool = True
    cache: str | None = None  # folder of a joblib.Memory shared by the refits (sweeps)
    registered: tuple = ()  # methods added to the registry: a worker process registers them too



def exact_knn(X: np.ndarray, k: int, *, chunk_bytes: float = 2e8) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours of every row, itself first.

    Ties are broken by row index.  Returns ``(indices int64, distances float32)``
    in the layout umap-learn accepts as ``precomputed_knn``.
    """
    from scipy.spatial.distance import cdist

    n = len(X)
    k = int(min(k, n))
    indices = np.empty((n, k), np.int64)
    dists = np.empty((n, k), np.float32)
    step = max(1, int(chunk_bytes // (8 * max(n, 1))))
    for start in range(0, n, step):
        stop = min(n, start + step)
        D = cdist(X[start:stop], X)
        rows = np.arange(stop - start)
        D[rows, np.arange(start, stop)] = -1.0  # itself first, always
        part = np.argpartition(D, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(rows), 1))
        pd_ = np.take_along_axis(D, part, axis=1)
        order = np.lexsort((part, pd_), axis=1)
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        dists[start:stop] = np.maximum(np.take_along_axis(pd_, order, axis=1), 0.0)
    return indices, dists


def gmm_space(seg, config) -> np.ndarray:
    """The points (one per distinct answer pattern) the mixture of ``seg`` was fitted on."""
    space = seg.spaces.get("gmm", config.cluster.gmm.space)
    if space == "pca":
        return seg.pca.transform(seg.X)
    return seg.X if space == "features" else seg.embedding


def _fit_one(ctx: _Context, drawn: np.ndarray, seed: np.random.SeedSequence, reselect: bool = True) -> dict:
    """Refit everything on ``features.iloc[drawn]``: labels per method, per drawn respondent.

    With ``reselect`` the mixture's k is selected again (and the mixture at
    the original k and covariance is fitted beside it); without, only the
    mixture at ``ctx.fixed_k`` is fitted (resamples of a null cohort).
    """
    cfg = ctx.config
    sub = ctx.features.iloc[drawn]
    knn = None
    if ctx.precompute_knn and cfg.reduce.metric == "euclidean":
        # the resample's own exact neighbours in its own re-scaled space: the
        # graph UMAP builds for itself below its size limit, without its slower
        # loop; above it UMAP's own approximate search, as in the original fit
        def knn(X):
            if len(X) >= EXACT_NEIGHBOURS_BELOW:
                return None
            return exact_knn(X, max(2, min(cfg.reduce.n_neighbors, len(X) - 1)))
    memory = None if ctx.cache is None else joblib.Memory(ctx.cache, verbose=0)
    fixed = {} if reselect or ctx.fixed_k is None else {"gmm_k": ctx.fixed_k, "gmm_covariance": ctx.fixed_cov}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = fit_segmentation(sub, ctx.codebook, cfg, seed, precomputed_knn=knn, memory=memory, **fixed)
        labels = {"hdbscan": seg.labels("hdbscan"), "kmeans": seg.labels("kmeans"),
                  **{m.name: seg.labels(m.name) for m in ctx.registered}}
        selected_k = seg.gmm.k if seg.gmm is not None else 0
        labels[GMM_RESELECTED.name] = seg.labels("gmm")
        if reselect and ctx.fixed_k is not None and seg.gmm is not None and len(seg.X) >= MIN_POINTS_TO_EMBED:
            g = cfg.cluster.gmm
            fixed_fit = select_gmm(gmm_space(seg, cfg), k=(ctx.fixed_k, ctx.fixed_k),
                                   covariance_types=[ctx.fixed_cov], criterion=g.criterion, n_init=g.n_init,
                                   random_state=stage_seed(seed, 1))
            labels["gmm"] = fixed_fit.labels[seg.inverse]
        else:
            labels["gmm"] = labels[GMM_RESELECTED.name]
    out = {m: (np.full(len(drawn), NOISE) if v is None else np.asarray(v, np.int64)) for m, v in labels.items()}
    return {"labels": out, "selected_k": int(selected_k),
            "covariance_type": "" if seg.gmm is None else str(seg.gmm.model.covariance_type)}


def _draw(n: int, scheme: str, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted distinct positions of the respondents a resample refits on."""
    if scheme == "bootstrap":
        return np.unique(rng.integers(0, n, n))
    m = max(2, int(round(fraction * n)))
    return np.sort(rng.choice(n, size=min(m, n), replace=False))


def _task(ctx: _Context, kind: str, cohort_index: int, b: int, null_model=None) -> dict:
    """One unit of work: a resample (``kind`` = "resample" / "null") or a
    null cohort's own fit (``kind`` = "null_fit").  ``null_model`` is the
    mixture ``(k, covariance type)`` selected on the null cohort, which its
    resamples refit."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    for method in ctx.registered:
        if method.name not in REGISTRY:
            register(method)
    base = tuple(ctx.spawn_key)
    if kind == "resample":
        key = base + (SEED_STREAMS["resamples"], b)
        features = ctx.features
    else:
        key = base + (SEED_STREAMS["null_cohorts"], cohort_index)
        features = _permuted(ctx.features, np.random.SeedSequence(ctx.entropy, spawn_key=key + (0,)),
                             ctx.config.stability.null)
        key = key + ((1,) if kind == "null_fit" else (2, b))
    seed = np.random.SeedSequence(ctx.entropy, spawn_key=key)
    n = len(features)
    if kind == "null_fit":
        drawn = np.arange(n)
    else:
        rng = np.random.default_rng(np.random.SeedSequence(ctx.entropy, spawn_key=key + (9,)))
        drawn = _draw(n, ctx.config.stability.scheme, ctx.config.stability.fraction, rng)
    result = {"kind": kind, "cohort": cohort_index, "resample": b, "drawn": drawn,
              "status": "ok", "reason": "", "labels": {}, "selected_k": -1, "covariance_type": ""}
    try:
        with threadpool_limits(1):
            local = dataclasses.replace(ctx, features=features,
                                        cache=ctx.cache if kind == "resample" else None)
            if kind == "null_fit":  # a null cohort selects its own mixture, as the cohort did
                local = dataclasses.replace(local, fixed_k=None, fixed_cov=None)
            elif kind == "null":
                local = dataclasses.replace(local, fixed_k=null_model[0], fixed_cov=null_model[1])
            result.update(_fit_one(local, drawn, seed, reselect=kind != "null"))
    except Exception as exc:  # noqa: BLE001 - a failed refit is recorded, not fatal
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"[:500]
    result["seconds"] = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------
# the analysis

def _as_seed(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed))


def _context(features: pd.DataFrame, codebook, config, seed, original, memory) -> _Context:
    """What the refits of ``original`` need: the mixture to refit at is the one it selected."""
    fixed_k = fixed_cov = None
    if original.gmm is not None:
        fixed_k, fixed_cov = original.gmm.k, str(original.gmm.model.covariance_type)
    return _Context(features, codebook, config, int(seed.entropy), tuple(seed.spawn_key), fixed_k, fixed_cov,
                    bool(getattr(config.stability, "precompute_knn", True)),
                    None if memory is None else str(memory.location), registered_methods())


def bootstrap_stability(features: pd.DataFrame, codebook, config, seed, *, n_jobs=None, scheduler=None,
                        workdir=None, original=None, cohort_sha: str = "", progress=None,
                        memory=None) -> StabilityResult:
    """Resample, refit everything, and match archetypes to the original fit.

    Parameters
    ----------
    features : DataFrame
        Decoded features of the analysed respondents, indexed by respondent id.
    codebook : Codebook
    config : ExperimentConfig
        ``config.stability`` sets B, the plan, the null reference and the
        thresholds.
    seed : int or numpy.random.SeedSequence
        The experiment seed.  The original fit uses its child ``(0,)`` (as
        the experiment runner does), resample ``b`` the child ``(1, b)``,
        permuted cohort ``c`` the child ``(3, c)``.
    n_jobs : int, optional
        Worker processes (default ``config.stability.n_jobs``; -1 = all cores).
    scheduler : str, optional
        ``""`` (local), ``"local"`` (a LocalCluster of ``n_jobs`` workers) or
        a dask scheduler address (default ``config.stability.scheduler``).
    workdir : path, optional
        Working folder: finished resamples are checkpointed in
        ``workdir/checkpoints`` and reused when the same analysis runs again.
    original : Segmentation, optional
        The fit to assess (default: fitted here).
    memory : joblib.Memory, optional
        A content-addressed cache of the resamples' stages (sweeps: settings
        that differ only in clustering parameters share each resample's
        encoding and UMAP fit).

    Returns
    -------
    StabilityResult

    Raises
    ------
    ConfigError
        Invalid ``stability`` settings.
    SegmentError
        Unreachable scheduler, mismatching checkpoints, or more failed
        resamples than ``stability.max_failed_share``.
    StabilityInterrupted
        On Ctrl-C, after saving what finished.
    """
    from .config import validate

    validate(config)
    s = config.stability
    if int(s.resamples) == 0:
        raise ConfigError("config key 'stability.resamples' is 0: there is nothing to resample. Set it to >= 2.")
    seed = _as_seed(seed)
    step = progress or (lambda name: None)
    started = time.perf_counter()
    n_jobs = _n_jobs(s.n_jobs if n_jobs is None else n_jobs)
    scheduler = s.scheduler if scheduler is None else scheduler
    if original is None:
        step("stability: original fit")
        original = fit_segmentation(features, codebook, config,
                                    seed_stream(seed, "fit"))
    if list(map(str, original.ids)) != list(map(str, features.index)):
        raise SegmentError("the original segmentation was fitted on other respondents than these features.")
    tasks = _Tasks(_context(features, codebook, config, seed, original, memory),
                   _Checkpoints(workdir, fingerprint(config, features, seed, cohort_sha)),
                   getattr(progress, "count", None))
    step("stability: resamples")
    executor = _executor(n_jobs, scheduler)
    _run(executor, tasks)
    result = _assemble(tasks, original, seed)
    result.metrics.update(executor=executor.name, wall_seconds=time.perf_counter() - started)
    return result


def _run(executor, tasks: _Tasks) -> None:
    """Run the planned refits; on Ctrl-C, say what was kept and raise :class:`StabilityInterrupted`."""
    try:
        executor.run(_task, tasks.todo, tasks.on_result)
    except KeyboardInterrupt:
        folder = tasks.checkpoints.folder
        where = "" if folder is None else f" in {folder}; resume from that folder to finish the rest"
        message = (f"stability analysis interrupted: {tasks.kept} of {tasks.planned} "
                   f"resamples finished and kept{where}.")
        print(f"segment: {message}", file=sys.stderr)
        raise StabilityInterrupted(message, tasks.kept, tasks.planned, folder) from None
    finally:
        executor.close()


def _assemble(tasks: _Tasks, original, seed) -> StabilityResult:
    """The tables, metrics and summary of a finished resampling."""
    s, B, fixed_k = tasks.ctx.config.stability, tasks.B, tasks.ctx.fixed_k
    observed = [tasks.results[("resample", 0, b)] for b in range(B)]
    failed = [r for r in observed if r["status"] != "ok"]
    if len(failed) > s.max_failed_share * B:
        reasons = sorted({r["reason"] for r in failed})
        raise SegmentError(
            f"{len(failed)} of {B} resamples failed to refit (more than stability.max_failed_share = "
            f"{s.max_failed_share:.0%}). First reason: {reasons[0]}")
    orig_labels = _original_labels(original)
    jac = _jaccards(orig_labels, observed)
    null = _null_runs(tasks.null_fits, tasks.results, tasks.null_cohorts, s)
    table, structure, alpha_family = _verdicts(_summaries(jac, orig_labels, s.stable, s.dissolved),
                                               null.reference, s, seed)
    table["thresholds"] = _thresholds(s, tasks.null_cohorts, alpha_family)
    resamples = pd.DataFrame(_resample_rows(orig_labels, observed, "cohort") + null.rows)
    ok = resamples[(resamples["sample"] == "cohort") & (resamples["status"] == "ok")]
    summary, per_method = _method_summaries(table, structure, ok, s, alpha_family)
    ks = ok.loc[ok["method"] == GMM_RESELECTED.name, "selected_k"].astype(int)
    k_dist = {int(k): float(v) for k, v in ks.value_counts(normalize=True).sort_index().items()}
    if len(ks) and fixed_k is not None:
        summary.append(f"The mixture's criterion re-selected k = {fixed_k} (the original k) in "
                       f"{k_dist.get(fixed_k, 0.0):.0%} of resamples; k ranged {ks.min()}–{ks.max()}.")
    if failed:
        summary.append(f"{len(failed)} of {B} resamples failed to refit and were left out (see resamples.csv).")
    metrics = {
        "resamples": B, "scheme": s.scheme, "fraction": s.fraction if s.scheme == "subsample" else 1.0,
        "failed": len(failed), "reused_from_checkpoints": tasks.reused,
        "null_cohorts": tasks.null_cohorts, "null_resamples": s.null_resamples, "null_failed": null.failed,
        "null": s.null,
        "thresholds": {"stable": s.stable, "dissolved": s.dissolved},
        "selected_k_distribution": k_dist, "original_k": fixed_k, "per_method": per_method,
        "recommended_method": recommended_method({m: v["n_stable"] for m, v in per_method.items()},
                                                 {m: v["n_archetypes"] for m, v in per_method.items()}),
        "alpha": s.alpha, "alpha_family": alpha_family,
        "structure_test": structure.to_dict(orient="records"),
    }
    table = table[["method", "archetype", "n", "n_resamples", "mean_jaccard", "mean_jaccard_se", "median_jaccard",
                   "p10_jaccard", "share_dissolved", "share_recovered", "null_reference", "null_reference_se",
                   "p_value", "verdict", "thresholds"]]
    respondent = _respondent_table(tasks.ids, orig_labels, jac, observed)
    return StabilityResult(stability=table, respondent_stability=respondent, resamples=resamples,
                           jaccard=jac, null_jaccard=null.jaccard, null_reference=null.reference,
                           structure_test=structure, metrics=metrics, summary=summary)


def _method_summaries(table: pd.DataFrame, structure: pd.DataFrame, ok: pd.DataFrame, s,
                      alpha_family: float) -> tuple[list, dict]:
    """Summary sentences and metrics per method (``ok``: the cohort's refitted resamples)."""
    B = int(s.resamples)
    plan = (f"{B} subsamples of {s.fraction:.0%}" if s.scheme == "subsample"
            else f"{B} bootstrap resamples (refitted on the distinct respondents drawn)")
    summary, per_method = [], {}
    for m in METHODS:
        t = table[table["method"] == m]
        counts = {v: int((t["verdict"] == v).sum()) for v in VERDICTS}
        okm = ok[ok["method"] == m]
        st = structure[structure["method"] == m]
        per_method[m] = {
            "n_archetypes": int(len(t)), **{f"n_{k.replace(' ', '_')}": v for k, v in counts.items()},
            "median_ari": float(okm["ari"].median()) if len(okm) else np.nan,
            "median_ami": float(okm["ami"].median()) if len(okm) else np.nan,
            "null_reference": float(t["null_reference"].iloc[0]) if len(t) else np.nan,
            "structure_p_value": float(st["p_value"].iloc[0]) if len(st) else np.nan,
            "n_clusters_distribution": {int(k): float(v) for k, v in
                                        okm["n_clusters"].value_counts(normalize=True).sort_index().items()},
        }
        if not len(t):
            summary.append(f"{METHOD_NAMES[m]}: no archetypes to assess (the fit has none).")
            continue
        ref = t["null_reference"].iloc[0]
        ref_text = ("no null reference" if np.isnan(ref) else
                    f"the best archetype of structure-free cohorts reaches {ref:.2f} at the "
                    f"{1 - alpha_family:.1%} level")
        parts = [f"{counts[v]} {v}" for v in NOT_STABLE_VERDICTS if counts[v]]
        summary.append(
            f"{METHOD_NAMES[m]}: {counts[STABLE]} of {len(t)} archetypes stable (mean Jaccard ≥ {s.stable:g} over "
            f"{plan}, and above structure-free data: {ref_text})" + (f"; {', '.join(parts)}." if parts else "."))
        if counts[STABLE] == 0 and (t["mean_jaccard"] >= s.stable).any() and not np.isnan(ref):
            summary.append(f"{METHOD_NAMES[m]}: archetypes reach the Jaccard threshold but are no more "
                           "reproducible than the archetypes of structure-free data of the same shape: "
                           "they do not show archetypes.")
    return summary, per_method


def stability_stage(*, config, cohort, features, segmentation, seed, progress, workdir=None,
                    memory=None) -> StabilityResult | None:
    """The stability stage of an experiment run (None when B = 0 or nothing was fitted).

    Checkpoints go to ``workdir``, the run's working folder; when the run
    resumes an interrupted one, that folder already holds the finished
    resamples and they are not redone.
    """
    if config.stability.resamples == 0 or segmentation is None:
        return None
    progress("stability")
    return bootstrap_stability(features, cohort.codebook, config, seed, workdir=workdir, original=segmentation,
                               cohort_sha=getattr(cohort, "sha256", "") or "", memory=memory,
                               progress=progress)


__all__ = ["StabilityResult", "StabilityInterrupted", "bootstrap_stability", "stability_stage",
           "jaccard_table", "match_clusters", "exact_knn", "METHODS"]

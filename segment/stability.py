"""Stability of archetypes under resampling, and against structure-free data.

Every resample refits the whole segmentation (features, UMAP, HDBSCAN, the
Gaussian mixture with k re-selected, K-Means) on the distinct respondents it
drew, and separately the mixture at the originally selected k and
covariance type in the same space.  Each original archetype is then
matched, as in Hennig's ``fpc::clusterboot``, to the most similar cluster of
the resample by the Jaccard similarity computed on the respondents present
in both; noise (-1) is not a cluster.

The null reference is a distribution of structure-free cohorts of the same
shape: ``stability.null_cohorts`` Gaussian copulas of the cohort (every item
keeps its answers, numeric items their rank correlations; no modes), each
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
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import os
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from .cluster import NOISE, agreement, select_gmm
from .errors import ConfigError, SegmentError
from .pipeline import MIN_POINTS_TO_EMBED, fit_segmentation, stage_seed

METHODS = ("hdbscan", "gmm", "gmm_reselected", "kmeans")
METHOD_NAMES = {"hdbscan": "HDBSCAN", "gmm": "GMM (fixed k)", "gmm_reselected": "GMM (k re-selected)",
                "kmeans": "K-Means"}
CHECKPOINT_DIR = "checkpoints"
FINGERPRINT_FILE = "fingerprint.json"
FORMAT_VERSION = 1
SCHEDULER_TIMEOUT = 10  # seconds to reach a dask scheduler


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


# --------------------------------------------------------------------------
# matching and Jaccard

def jaccard_table(original: np.ndarray, resample: np.ndarray) -> pd.DataFrame:
    """Jaccard similarity of every original cluster with every resample cluster.

    Both labelings are of the same respondents (those present in both).
    Noise (-1) belongs to no cluster on either side.

    Returns
    -------
    DataFrame
        Rows: original clusters present among the respondents; columns:
        resample clusters (none when the resample found no cluster).
    """
    original, resample = np.asarray(original), np.asarray(resample)
    if original.shape != resample.shape:
        raise ValueError("the two labelings must be of the same respondents.")
    a = np.unique(original[original != NOISE])
    b = np.unique(resample[resample != NOISE])
    if len(a) == 0 or len(b) == 0:
        return pd.DataFrame(np.zeros((len(a), len(b))), index=a, columns=b)
    ia = np.searchsorted(a, original)
    ib = np.searchsorted(b, resample)
    keep = (original != NOISE) & (resample != NOISE)
    inter = np.zeros((len(a), len(b)))
    np.add.at(inter, (ia[keep], ib[keep]), 1)
    size_a = np.array([(original == x).sum() for x in a], float)
    size_b = np.array([(resample == x).sum() for x in b], float)
    union = size_a[:, None] + size_b[None, :] - inter
    return pd.DataFrame(inter / union, index=a, columns=b)


def match_clusters(original: np.ndarray, resample: np.ndarray, archetypes=None) -> pd.DataFrame:
    """The most similar resample cluster of every original archetype.

    Parameters
    ----------
    original, resample : array of int
        Labels of the respondents present in both fits.
    archetypes : sequence of int, optional
        Original archetypes to report (all non-noise labels of ``original``
        by default); one absent from these respondents gets NaN.

    Returns
    -------
    DataFrame
        ``archetype, jaccard, matched`` (matched = -1 when the resample
        found no cluster; jaccard is then 0). Ties go to the lowest label.
    """
    table = jaccard_table(original, resample)
    if archetypes is None:
        archetypes = table.index.tolist()
    rows = []
    for arch in archetypes:
        if arch not in table.index:
            rows.append({"archetype": int(arch), "jaccard": np.nan, "matched": NOISE})
        elif table.shape[1] == 0:
            rows.append({"archetype": int(arch), "jaccard": 0.0, "matched": NOISE})
        else:
            row = table.loc[arch].to_numpy()
            j = int(np.argmax(row))
            rows.append({"archetype": int(arch), "jaccard": float(row[j]), "matched": int(table.columns[j])})
    return pd.DataFrame(rows, columns=["archetype", "jaccard", "matched"])


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
        # the resample's own exact neighbours in its own re-scaled space:
        # the graph UMAP builds for itself, without its slower search
        def knn(X):
            return exact_knn(X, max(2, min(cfg.reduce.n_neighbors, len(X) - 1)))
    memory = None if ctx.cache is None else joblib.Memory(ctx.cache, verbose=0)
    fixed = {} if reselect or ctx.fixed_k is None else {"gmm_k": ctx.fixed_k, "gmm_covariance": ctx.fixed_cov}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = fit_segmentation(sub, ctx.codebook, cfg, seed, precomputed_knn=knn, memory=memory, **fixed)
        labels = {"hdbscan": seg.labels("hdbscan"), "kmeans": seg.labels("kmeans")}
        selected_k = seg.gmm.k if seg.gmm is not None else 0
        labels["gmm_reselected"] = seg.labels("gmm")
        if reselect and ctx.fixed_k is not None and seg.gmm is not None and len(seg.X) >= MIN_POINTS_TO_EMBED:
            g = cfg.cluster.gmm
            fixed_fit = select_gmm(gmm_space(seg, cfg), k=(ctx.fixed_k, ctx.fixed_k),
                                   covariance_types=[ctx.fixed_cov], criterion=g.criterion, n_init=g.n_init,
                                   random_state=stage_seed(seed, 1))
            labels["gmm"] = fixed_fit.labels[seg.inverse]
        else:
            labels["gmm"] = labels["gmm_reselected"]
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
    base = tuple(ctx.spawn_key)
    if kind == "resample":
        key = base + (1, b)
        features = ctx.features
    else:
        key = base + (3, cohort_index)
        features = _permuted(ctx.features, np.random.SeedSequence(ctx.entropy, spawn_key=key + (0,)),
                             getattr(ctx.config.stability, "null", "correlated"))
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


def _permuted(features: pd.DataFrame, seed: np.random.SeedSequence, how: str = "correlated") -> pd.DataFrame:
    """A structure-free cohort of the same shape: every column is permuted, so
    every item keeps exactly its answers (and its missing count).

    ``how = "permute"``: each column independently; all relations between
    items are gone.  ``how = "correlated"``: numeric columns are permuted
    jointly so that they keep their rank correlations (Iman & Conover, 1982:
    the ranks follow a multivariate normal with the items' normal-score
    correlation); a latent continuum survives, clusters do not.  Other
    columns are permuted independently in both cases.
    """
    rng = np.random.default_rng(seed)
    out = features.copy()
    n = len(features)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
               and features[c].notna().sum() > 2] if how == "correlated" else []
    for col in features.columns:
        if col not in numeric:
            out[col] = features[col].to_numpy()[rng.permutation(n)]
    if not numeric:
        return out
    from scipy.stats import norm, rankdata

    scores = pd.DataFrame({c: norm.ppf((rankdata(features[c], nan_policy="omit") - 0.5)
                                        / features[c].notna().sum()) for c in numeric},
                          index=features.index)
    target = np.array(scores.corr().fillna(0.0).to_numpy(), dtype=float)
    np.fill_diagonal(target, 1.0)
    W = rng.standard_normal((n, len(numeric)))

    def draw(R):
        w, V = np.linalg.eigh(R)
        return W @ (V * np.sqrt(np.clip(w, 1e-9, None))).T

    # one correction step: ties and discreteness attenuate the correlation the
    # answers end up with, so aim the normal draws correspondingly higher
    Z = draw(target)
    got = np.array(pd.DataFrame(Z).corr(method="spearman").to_numpy(), dtype=float)
    R = np.clip(2 * target - got, -0.99, 0.99)
    np.fill_diagonal(R, 1.0)
    Z = draw(R)
    for j, col in enumerate(numeric):
        values = features[col].to_numpy(dtype=float)
        present = np.isfinite(values)
        rows = np.sort(rng.permutation(n)[:present.sum()])  # where answers land; the rest stay missing
        new = np.full(n, np.nan)
        order = rows[np.argsort(Z[rows, j], kind="stable")]
        new[order] = np.sort(values[present])
        out[col] = new.astype(features[col].dtype) if present.all() else new
    return out


# --------------------------------------------------------------------------
# executors: in process, a local worker pool, a dask cluster

class _Serial:
    name = "in process"

    def run(self, fn, tasks, on_result):
        queue = list(tasks)
        while queue:
            args = queue.pop(0)
            queue.extend(on_result(fn(*args)) or [])

    def close(self):
        pass


class _Loky:
    def __init__(self, n_jobs: int):
        from joblib.externals.loky import get_reusable_executor

        self.n_jobs = n_jobs
        self.name = f"{n_jobs} local worker processes"
        self.executor = get_reusable_executor(max_workers=n_jobs, timeout=300, initializer=_worker_init,
                                              initargs=(os.getpid(),))

    def run(self, fn, tasks, on_result):
        running = {self.executor.submit(fn, *args) for args in tasks}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    for args in on_result(fut.result()) or []:
                        running.add(self.executor.submit(fn, *args))
        except BaseException:
            with _no_interrupt():
                self._stop()
            raise

    def _stop(self):
        """Kill the workers, then let the pool wind down as after a crash.

        (Cancelling the futures or ``shutdown(kill_workers=True)`` races with
        loky's manager thread, which then dies with a traceback and leaves
        the workers running.)
        """
        from joblib.externals.loky.backend.utils import kill_process_tree

        for process in list(getattr(self.executor, "_processes", {}).values()):
            try:
                kill_process_tree(process)
            except (ProcessLookupError, OSError):
                pass
        self.executor.shutdown(wait=True)

    def close(self):
        pass


PARENT_POLL_SECONDS = 1.0


def _worker_init(parent: int) -> None:
    """Initializer of every local worker process.

    Ctrl-C is the parent's to handle (it stops the workers and keeps what
    finished), and a worker ends as soon as its parent is gone, even when
    the parent was killed without a chance to stop it: on Linux the kernel
    sends it SIGKILL (``PR_SET_PDEATHSIG``); everywhere a thread watches the
    parent's process id.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # UMAP's (silent) progress bar would make a process-shared lock, which a killed worker leaks
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    except ImportError:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # gone before the death signal was armed
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="segment-parent-watch", daemon=True).start()


class _no_interrupt:
    """Hold back Ctrl-C while workers are being stopped (a second Ctrl-C
    must not leave them running); it is delivered once they are."""

    def __enter__(self):
        import signal
        import threading

        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame):
        self.pending = True

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.pending and exc[0] is None:
            raise KeyboardInterrupt
        return False


class _Dask:
    RESUBMISSIONS = 3

    def __init__(self, scheduler: str, n_jobs: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SegmentError(
                f"stability.scheduler = {scheduler!r} needs dask.distributed, which is not installed. "
                "Install it with: pip install 'segment[dask]' (or set stability.scheduler = \"\")."
            ) from None
        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, host="127.0.0.1",
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
            self.name = f"a local dask cluster of {n_jobs} workers"
        else:
            try:
                self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError ...
                raise SegmentError(
                    f"could not reach the dask scheduler at stability.scheduler = {scheduler!r} within "
                    f"{SCHEDULER_TIMEOUT} s ({type(exc).__name__}: {exc}). Start the scheduler and its "
                    "workers (dask scheduler; dask worker ADDRESS), check the address, or set "
                    "stability.scheduler = \"local\" to use this machine."
                ) from None
            self.name = f"the dask cluster at {scheduler}"

    def run(self, fn, tasks, on_result):
        """Run the tasks; a task whose worker died under it is submitted again.

        The scheduler itself reruns a task whose worker was lost, up to its
        ``distributed.scheduler.allowed-failures`` times, then fails it with
        ``KilledWorker``; a task whose scattered context was lost with every
        worker holding it is cancelled.  Both are resubmitted here, up to
        ``RESUBMISSIONS`` times per task (a refit that kills every worker it
        runs on, e.g. out of memory, is an error).
        """
        from concurrent.futures import CancelledError

        from distributed import KilledWorker, as_completed

        scattered, pending, lost = {}, {}, {}

        def submit(args):
            ctx, rest = args[0], args[1:]
            if id(ctx) not in scattered or scattered[id(ctx)].status != "finished":
                self._wait_for_a_worker()
                scattered[id(ctx)] = self.client.scatter(ctx, broadcast=True)
            fut = self.client.submit(fn, scattered[id(ctx)], *rest, pure=False)
            pending[fut.key] = (fut, args)
            return fut

        ac = as_completed([submit(a) for a in tasks])
        try:
            for fut in ac:
                _, args = pending.pop(fut.key)
                try:
                    res = fut.result()
                except (KilledWorker, CancelledError) as exc:
                    kind, c, b = args[1:4]
                    lost[kind, c, b] = lost.get((kind, c, b), 0) + 1
                    if lost[kind, c, b] > self.RESUBMISSIONS:
                        what = {"resample": f"resample {b}", "null": f"resample {b} of null cohort {c}",
                                "null_fit": f"the fit of null cohort {c}"}[kind]
                        raise SegmentError(
                            f"the dask workers running {what} died {lost[kind, c, b]} times "
                            f"({type(exc).__name__}); see the workers' logs, e.g. for a memory limit.") from None
                    ac.add(submit(args))
                    continue
                for new in on_result(res) or []:
                    ac.add(submit(new))
        except BaseException:
            self.client.cancel([f for f, _ in pending.values()])
            raise

    def _wait_for_a_worker(self):
        """Wait, saying so, while no worker is connected (batch jobs may still
        be queued); Ctrl-C stops the wait."""
        try:
            self.client.wait_for_workers(1, timeout=SCHEDULER_TIMEOUT)
        except TimeoutError:
            print(f"segment: no worker is connected to {self.name}; waiting for one "
                  "(start workers with: dask worker ADDRESS).", file=sys.stderr, flush=True)
            self.client.wait_for_workers(1)

    def close(self):
        try:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        except Exception:  # noqa: BLE001
            pass


def _executor(n_jobs: int, scheduler: str):
    if scheduler:
        return _Dask(scheduler, n_jobs)
    if n_jobs == 1:
        return _Serial()
    return _Loky(n_jobs)


# --------------------------------------------------------------------------
# checkpoints

def _frame_sha(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(json.dumps([str(i) for i in frame.index]).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return h.hexdigest()


def fingerprint(config, features: pd.DataFrame, seed: np.random.SeedSequence, cohort_sha: str = "") -> dict:
    """What must match for checkpoints to be reused: the settings that shape a
    refit, the seed, and the respondents' answers (not n_jobs or scheduler)."""
    cfg = config.to_dict()
    stab = {k: v for k, v in cfg["stability"].items()
            if k in ("resamples", "scheme", "fraction", "null_resamples", "null_cohorts", "null",
                     "precompute_knn")}
    shaped = {"features": cfg["features"], "reduce": cfg["reduce"], "cluster": cfg["cluster"],
              "stability": stab, "seed": [int(seed.entropy), list(map(int, seed.spawn_key))]}
    text = json.dumps(shaped, sort_keys=True, default=str)
    return {"format": FORMAT_VERSION,
            "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "features_sha256": _frame_sha(features), "cohort_sha256": cohort_sha or ""}


class _Checkpoints:
    """One ``.npz`` per finished resample in ``<folder>/checkpoints``."""

    def __init__(self, folder, stamp: dict):
        self.folder = None if folder is None else Path(folder)
        if self.folder is None:
            return
        self.dir = self.folder / CHECKPOINT_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / FINGERPRINT_FILE
        if path.exists():
            found = json.loads(path.read_text(encoding="utf-8"))
            diff = [k for k in stamp if found.get(k) != stamp[k]]
            if diff:
                raise SegmentError(
                    f"the checkpoints in {self.dir} were made with a different "
                    f"{' and '.join(d.replace('_sha256', '') for d in diff)} (fingerprint mismatch): they "
                    "cannot be reused. Resume with the same experiment and cohort, or start a fresh run."
                )
        else:
            path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def _name(kind, cohort, b):
        if kind == "null_fit":
            return f"null{cohort}_fit.npz"
        return f"resample_{b:04d}.npz" if kind == "resample" else f"null{cohort}_resample_{b:04d}.npz"

    def load(self, kind, cohort, b, ids) -> dict | None:
        if self.folder is None:
            return None
        path = self.dir / self._name(kind, cohort, b)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                labels = {m: z[m].astype(np.int64) for m in METHODS if m in z.files}
                drawn_ids = z["ids"].tolist()
                drawn = z["drawn"].astype(np.int64)
        except Exception:  # noqa: BLE001 - a torn file is redone
            return None
        if [str(ids[i]) for i in drawn] != drawn_ids:
            raise SegmentError(f"checkpoint {path} holds other respondents than this cohort; start a fresh run.")
        return {**meta, "drawn": drawn, "labels": labels}

    def save(self, res: dict, ids) -> None:
        if self.folder is None:
            return
        path = self.dir / self._name(res["kind"], res["cohort"], res["resample"])
        meta = {k: res[k] for k in ("kind", "cohort", "resample", "status", "reason", "selected_k",
                                    "covariance_type", "seconds")}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), drawn=res["drawn"],
                 ids=np.array([str(ids[i]) for i in res["drawn"]]),
                 **{m: v for m, v in res["labels"].items()})
        os.replace(tmp, path)


def _after_checkpoint(n_done: int, n_total: int) -> None:
    """Called after every finished resample (a seam for tests and progress)."""


# --------------------------------------------------------------------------
# summaries

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


def _original_labels(seg, fixed_labels=None) -> dict:
    out = {"hdbscan": seg.labels("hdbscan"), "gmm": seg.labels("gmm"),
           "gmm_reselected": seg.labels("gmm"), "kmeans": seg.labels("kmeans")}
    if fixed_labels is not None:
        out["gmm"] = fixed_labels
    n = len(seg.ids)
    return {m: np.full(n, NOISE) if v is None else np.asarray(v, np.int64) for m, v in out.items()}


def _archetypes(labels: np.ndarray) -> list[int]:
    """Archetypes of a labeling; none when one cluster holds everyone (no partition)."""
    arch = sorted(set(labels.tolist()) - {NOISE})
    if len(arch) == 1 and not (labels == NOISE).any():
        return []
    return arch


def _jaccards(original: dict, results: list[dict]) -> pd.DataFrame:
    """Long table ``method, resample, archetype, jaccard, matched`` over ok resamples."""
    rows = []
    for res in results:
        if res["status"] != "ok":
            continue
        for m in METHODS:
            o = original[m][res["drawn"]]
            matched = match_clusters(o, res["labels"][m], _archetypes(original[m]))
            for r in matched.itertuples(index=False):
                rows.append({"method": m, "resample": res["resample"], "archetype": r.archetype,
                             "jaccard": r.jaccard, "matched": r.matched})
    return pd.DataFrame(rows, columns=["method", "resample", "archetype", "jaccard", "matched"])


def _summaries(jac: pd.DataFrame, original: dict, stable: float, dissolved: float) -> pd.DataFrame:
    rows = []
    for m in METHODS:
        for arch in _archetypes(original[m]):
            j = jac.loc[(jac["method"] == m) & (jac["archetype"] == arch), "jaccard"].dropna().to_numpy()
            has = len(j) > 0
            rows.append({"method": m, "archetype": arch, "n": int((original[m] == arch).sum()),
                         "n_resamples": int(len(j)),
                         "mean_jaccard": float(j.mean()) if has else np.nan,
                         "_jaccard_sd": float(j.std(ddof=1)) if len(j) > 1 else np.nan,
                         "median_jaccard": float(np.median(j)) if has else np.nan,
                         "p10_jaccard": float(np.percentile(j, 10)) if has else np.nan,
                         "share_dissolved": float(np.mean(j < dissolved)) if has else np.nan,
                         "share_recovered": float(np.mean(j >= stable)) if has else np.nan})
    return pd.DataFrame(rows, columns=["method", "archetype", "n", "n_resamples", "mean_jaccard", "_jaccard_sd",
                                       "median_jaccard", "p10_jaccard", "share_dissolved", "share_recovered"])


VERDICTS = ("stable", "borderline", "weak", "dissolved", "no reference", "not resampled")
STRUCTURE_METHODS = ("hdbscan", "gmm", "kmeans")  # the family over which alpha is divided


def _quantile_se(values: np.ndarray, q: float, rng) -> float:
    """Bootstrap standard error of an empirical quantile."""
    if len(values) < 2:
        return np.nan
    draws = rng.choice(values, size=(500, len(values)), replace=True)
    return float(np.std(np.quantile(draws, q, axis=1, method="higher"), ddof=1))


def _verdicts(table: pd.DataFrame, null_reference: pd.DataFrame, s, seed) -> tuple:
    """Each archetype's verdict against the null reference, and the structure test per method.

    An archetype's p-value is the Monte-Carlo p-value of its mean Jaccard
    among the best mean Jaccards of the null cohorts, ``(1 + #{null >= x}) /
    (1 + C)``.  The significance level ``stability.alpha`` is divided over
    the methods that have archetypes (Bonferroni), so that "any method shows
    a stable archetype" keeps its error rate on structure-free data.  The
    structure test of a method is the same comparison for its best archetype.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (5,)))
    table = table.copy()
    assessed = [m for m in STRUCTURE_METHODS if (table["method"] == m).any()]
    alpha_family = s.alpha / max(1, len(assessed))
    table["mean_jaccard_se"] = np.nan
    table["null_reference"] = np.nan
    table["null_reference_se"] = np.nan
    table["p_value"] = np.nan
    structure = []
    for m in METHODS:
        rows = table["method"] == m
        ref_method = "gmm" if m == "gmm_reselected" else m
        null = null_reference.loc[null_reference["method"] == ref_method, "best_mean_jaccard"].to_numpy(float)
        if len(null):
            q = 1 - alpha_family
            table.loc[rows, "null_reference"] = float(np.quantile(null, q, method="higher"))
            table.loc[rows, "null_reference_se"] = _quantile_se(null, q, rng)
            table.loc[rows, "p_value"] = [(1 + np.sum(null >= x)) / (1 + len(null)) if np.isfinite(x) else np.nan
                                          for x in table.loc[rows, "mean_jaccard"]]
        if m in STRUCTURE_METHODS:
            best = table.loc[rows, "mean_jaccard"].max() if rows.any() else 0.0
            best = 0.0 if not np.isfinite(best) else float(best)
            p = (1 + np.sum(null >= best)) / (1 + len(null)) if len(null) else np.nan
            structure.append({"method": m, "statistic": "best archetype's mean Jaccard", "observed": best,
                              "null_cohorts": int(len(null)),
                              "null_mean": float(np.mean(null)) if len(null) else np.nan,
                              "null_q95": float(np.quantile(null, 0.95, method="higher")) if len(null) else np.nan,
                              "p_value": p, "alpha": s.alpha,
                              "reject": bool(p <= s.alpha) if len(null) else False,
                              "test": "Monte-Carlo test against Gaussian-copula cohorts of the same shape"})
    jac_sd = table.pop("_jaccard_sd") if "_jaccard_sd" in table else np.nan
    table["mean_jaccard_se"] = jac_sd / np.sqrt(table["n_resamples"].clip(lower=1))
    mean, se = table["mean_jaccard"], table["mean_jaccard_se"].fillna(0.0)
    has_null = table["null_reference"].notna()
    above = has_null & (table["p_value"] <= alpha_family)
    verdict = np.where(mean < s.dissolved, "dissolved", "weak")
    verdict = np.where((mean >= s.stable) & ~has_null, "no reference", verdict)
    verdict = np.where((mean >= s.stable) & above, "stable", verdict)
    near_stable = (mean - s.stable).abs() < 2 * se
    ref_se = np.sqrt(se**2 + table["null_reference_se"].fillna(0.0) ** 2)
    near_null = has_null & ((mean - table["null_reference"]).abs() < 2 * ref_se) & (mean >= s.stable - 2 * se)
    borderline = (near_stable | near_null) & np.isin(verdict, ("stable", "weak"))
    verdict = np.where(borderline, "borderline", verdict)
    verdict = np.where(mean.isna(), "not resampled", verdict)
    table["verdict"] = verdict
    return table, pd.DataFrame(structure), alpha_family


def _respondent_table(ids, original: dict, jac: pd.DataFrame, results: list[dict]) -> pd.DataFrame:
    frames = []
    n = len(ids)
    ok = [r for r in results if r["status"] == "ok"]
    for m in METHODS:
        o = original[m]
        archs = _archetypes(o)
        if not archs:
            continue
        drawn_count = np.zeros(n)
        hits = np.zeros(n)
        sub = jac[jac["method"] == m].set_index(["resample", "archetype"])["matched"]
        for res in ok:
            d = res["drawn"]
            drawn_count[d] += 1
            matched = np.full(max(archs) + 2, -2)
            for a in archs:
                matched[a] = sub.get((res["resample"], a), -2)
            od = o[d]
            in_arch = od != NOISE
            hit = np.zeros(len(d), bool)
            hit[in_arch] = res["labels"][m][in_arch] == matched[od[in_arch]]
            hits[d] += hit
        keep = o != NOISE
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(drawn_count > 0, hits / np.maximum(drawn_count, 1), np.nan)
        frames.append(pd.DataFrame({"respondent": np.asarray(ids)[keep], "method": m, "archetype": o[keep],
                                    "n_resamples_drawn": drawn_count[keep].astype(int),
                                    "stability": share[keep]}))
    cols = ["respondent", "method", "archetype", "n_resamples_drawn", "stability"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def _resample_rows(original: dict, results: list[dict], sample: str) -> list[dict]:
    rows = []
    for res in sorted(results, key=lambda r: (r["cohort"], r["resample"])):
        for m in METHODS:
            row = {"sample": sample, "null_cohort": res["cohort"] if sample == "null cohort" else -1,
                   "resample": res["resample"], "status": res["status"], "reason": res["reason"],
                   "seconds": res["seconds"], "n_drawn": int(len(res["drawn"])), "method": m,
                   "ari": np.nan, "ami": np.nan, "n_clusters": np.nan, "selected_k": np.nan}
            if res["status"] == "ok":
                lab = res["labels"][m]
                ag = agreement(original[m][res["drawn"]], lab)
                row.update(ari=ag["ari"], ami=ag["ami"], n_clusters=len(set(lab.tolist()) - {NOISE}),
                           selected_k=res["selected_k"])
            rows.append(row)
    return rows


# --------------------------------------------------------------------------
# the analysis

def _as_seed(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed))


def _n_jobs(n_jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))


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
    B = int(s.resamples)
    if B == 0:
        raise ConfigError("config key 'stability.resamples' is 0: there is nothing to resample. Set it to >= 2.")
    seed = _as_seed(seed)
    step = progress or (lambda name: None)
    tick = getattr(progress, "count", lambda done, total: None)
    started = time.perf_counter()
    n_jobs = _n_jobs(s.n_jobs if n_jobs is None else n_jobs)
    scheduler = s.scheduler if scheduler is None else scheduler
    if original is None:
        step("stability: original fit")
        original = fit_segmentation(features, codebook, config,
                                    np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (0,)))
    if list(map(str, original.ids)) != list(map(str, features.index)):
        raise SegmentError("the original segmentation was fitted on other respondents than these features.")
    ids = features.index
    fixed_k = fixed_cov = None
    if original.gmm is not None:
        fixed_k, fixed_cov = original.gmm.k, str(original.gmm.model.covariance_type)
    ctx = _Context(features, codebook, config, int(seed.entropy), tuple(seed.spawn_key), fixed_k, fixed_cov,
                   bool(getattr(s, "precompute_knn", True)),
                   None if memory is None else str(memory.location))
    orig_labels = _original_labels(original)
    null_cohorts = int(getattr(s, "null_cohorts", 1)) if s.null_resamples else 0

    ckpt = _Checkpoints(workdir, fingerprint(config, features, seed, cohort_sha))
    results: dict = {}
    todo = []
    for b in range(B):
        got = ckpt.load("resample", 0, b, ids)
        if got is None:
            todo.append((ctx, "resample", 0, b))
        else:
            results[("resample", 0, b)] = got
    reused = len(results)
    null_fits: dict = {}
    for c in range(null_cohorts):
        got = ckpt.load("null_fit", c, -1, ids)
        if got is None:
            todo.insert(c, (ctx, "null_fit", c, -1))
        else:
            null_fits[c] = got
    total = B + null_cohorts * (1 + s.null_resamples)
    state = {"done": reused + len(null_fits)}

    def null_tasks(c, null_model):
        out = []
        for b in range(s.null_resamples):
            got = ckpt.load("null", c, b, ids)
            if got is None:
                out.append((ctx, "null", c, b, null_model))
            else:
                results[("null", c, b)] = got
                state["done"] += 1
        return out

    def on_result(res):
        key = (res["kind"], res["cohort"], res["resample"])
        state["done"] += 1
        if res["kind"] == "null_fit":
            null_fits[res["cohort"]] = res
            ckpt.save(res, ids)
            _after_checkpoint(state["done"], total)
            tick(state["done"], total)
            null_model = (res["selected_k"], res["covariance_type"] or None)
            return null_tasks(res["cohort"], null_model) if res["status"] == "ok" else []
        results[key] = res
        ckpt.save(res, ids)
        _after_checkpoint(state["done"], total)
        tick(state["done"], total)
        return []

    for c, fit in sorted(null_fits.items()):
        if fit["status"] == "ok":
            todo += null_tasks(c, (fit["selected_k"], fit["covariance_type"] or None))
    step("stability: resamples")
    executor = _executor(n_jobs, scheduler)
    try:
        executor.run(_task, todo, on_result)
    except KeyboardInterrupt:
        kept = sum(1 for k in results if k[0] in ("resample", "null"))
        where = "" if ckpt.folder is None else f" in {ckpt.folder}; resume from that folder to finish the rest"
        message = (f"stability analysis interrupted: {kept} of {B + null_cohorts * s.null_resamples} "
                   f"resamples finished and kept{where}.")
        print(f"segment: {message}", file=sys.stderr)
        raise StabilityInterrupted(message, kept, B + null_cohorts * s.null_resamples, ckpt.folder) from None
    finally:
        executor.close()

    observed = [results[("resample", 0, b)] for b in range(B)]
    failed = [r for r in observed if r["status"] != "ok"]
    if len(failed) > s.max_failed_share * B:
        reasons = sorted({r["reason"] for r in failed})
        raise SegmentError(
            f"{len(failed)} of {B} resamples failed to refit (more than stability.max_failed_share = "
            f"{s.max_failed_share:.0%}). First reason: {reasons[0]}")

    # ---- observed
    jac = _jaccards(orig_labels, observed)
    table = _summaries(jac, orig_labels, s.stable, s.dissolved)

    # ---- null reference: the best archetype of every null cohort, per method
    null_rows, null_jac_frames, best_rows = [], [], []
    null_failed = 0
    for c in range(null_cohorts):
        fit = null_fits.get(c)
        if fit is None or fit["status"] != "ok":
            null_failed += 1
            continue
        null_orig = {m: fit["labels"][m] for m in METHODS}
        res_c = [results[("null", c, b)] for b in range(s.null_resamples)]
        for r in res_c:
            r["cohort"] = c
        null_failed += sum(r["status"] != "ok" for r in res_c)
        nj = _jaccards(null_orig, res_c)
        nj.insert(0, "null_cohort", c)
        null_jac_frames.append(nj)
        ns = _summaries(nj, null_orig, s.stable, s.dissolved)
        for m in METHODS:
            means = ns.loc[ns["method"] == m, "mean_jaccard"].dropna()
            best_rows.append({"method": m, "null_cohort": c, "n_archetypes": int(len(means)),
                              "best_mean_jaccard": float(means.max()) if len(means) else 0.0})
        null_rows += _resample_rows(null_orig, res_c, "null cohort")
    null_reference = pd.DataFrame(best_rows, columns=["method", "null_cohort", "n_archetypes", "best_mean_jaccard"])
    table, structure, alpha_family = _verdicts(table, null_reference, s, seed)
    null_text = (f"its mean Jaccard exceeds the best archetype of structure-free cohorts of the same shape "
                 f"(Gaussian copulas of the cohort: every item keeps its answers, the items their rank "
                 f"correlations; {null_cohorts} cohorts, each fitted once and resampled {s.null_resamples} "
                 f"times) with a Monte-Carlo p-value <= {alpha_family:.3g} ({s.alpha:g} Bonferroni-divided over "
                 f"the methods assessed)" if null_cohorts else
                 "and a null reference exists (stability.null_resamples = 0: there is none, so no archetype "
                 "can be called stable)")
    table["thresholds"] = (f"stable: mean Jaccard >= {s.stable:g} and {null_text}; borderline: the verdict changes "
                           f"within 2 Monte-Carlo standard errors; dissolved: mean Jaccard < {s.dissolved:g}; "
                           "weak otherwise")
    if len(null_jac_frames):
        null_jaccard = pd.concat(null_jac_frames, ignore_index=True)
    else:
        null_jaccard = pd.DataFrame(columns=["null_cohort", "method", "resample", "archetype", "jaccard", "matched"])

    resamples = pd.DataFrame(_resample_rows(orig_labels, observed, "cohort") + null_rows)
    respondent = _respondent_table(ids, orig_labels, jac, observed)

    plan = (f"{B} subsamples of {s.fraction:.0%}" if s.scheme == "subsample"
            else f"{B} bootstrap resamples (refitted on the distinct respondents drawn)")
    ok = resamples[(resamples["sample"] == "cohort") & (resamples["status"] == "ok")]
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
        parts = [f"{counts[v]} {v}" for v in ("borderline", "weak", "dissolved", "no reference", "not resampled")
                 if counts[v]]
        summary.append(
            f"{METHOD_NAMES[m]}: {counts['stable']} of {len(t)} archetypes stable (mean Jaccard ≥ {s.stable:g} over "
            f"{plan}, and above structure-free data: {ref_text})" + (f"; {', '.join(parts)}." if parts else "."))
        if counts["stable"] == 0 and (t["mean_jaccard"] >= s.stable).any() and not np.isnan(ref):
            summary.append(f"{METHOD_NAMES[m]}: archetypes reach the Jaccard threshold but are no more "
                           "reproducible than the archetypes of structure-free data of the same shape: "
                           "they do not show archetypes.")
    ks = ok.loc[ok["method"] == "gmm_reselected", "selected_k"].astype(int)
    k_dist = {int(k): float(v) for k, v in ks.value_counts(normalize=True).sort_index().items()}
    if len(ks) and fixed_k is not None:
        summary.append(f"The mixture's criterion re-selected k = {fixed_k} (the original k) in "
                       f"{k_dist.get(fixed_k, 0.0):.0%} of resamples; k ranged {ks.min()}–{ks.max()}.")
    if failed:
        summary.append(f"{len(failed)} of {B} resamples failed to refit and were left out (see resamples.csv).")
    metrics = {
        "resamples": B, "scheme": s.scheme, "fraction": s.fraction if s.scheme == "subsample" else 1.0,
        "failed": len(failed), "reused_from_checkpoints": reused,
        "null_cohorts": null_cohorts, "null_resamples": s.null_resamples, "null_failed": null_failed,
        "thresholds": {"stable": s.stable, "dissolved": s.dissolved},
        "selected_k_distribution": k_dist, "original_k": fixed_k, "per_method": per_method,
        "alpha": s.alpha, "alpha_family": alpha_family,
        "structure_test": structure.to_dict(orient="records"),
        "executor": executor.name, "wall_seconds": time.perf_counter() - started,
    }
    table = table[["method", "archetype", "n", "n_resamples", "mean_jaccard", "mean_jaccard_se", "median_jaccard",
                   "p10_jaccard", "share_dissolved", "share_recovered", "null_reference", "null_reference_se",
                   "p_value", "verdict", "thresholds"]]
    return StabilityResult(stability=table, respondent_stability=respondent, resamples=resamples,
                           jaccard=jac, null_jaccard=null_jaccard, null_reference=null_reference,
                           structure_test=structure, metrics=metrics, summary=summary)


def stability_stage(*, config, cohort, features, segmentation, seed, progress, tables, results,
                    assignments, resume=None, workdir=None, memory=None) -> None:
    """The stability stage of an experiment run (does nothing when B = 0).

    Adds the tables ``stability``, ``respondent_stability``, ``resamples``,
    ``jaccard`` and ``null_jaccard``; sets ``results["stability"]``,
    ``results["metrics"]["stability"]`` and appends summary sentences.
    Checkpoints go to ``workdir``, the run's working folder; when the run
    resumes an interrupted one, that folder already holds the finished
    resamples and they are not redone.
    """
    if config.stability.resamples == 0 or segmentation is None:
        return
    progress("stability")
    folder = workdir
    res = bootstrap_stability(features, cohort.codebook, config, seed, workdir=folder, original=segmentation,
                              cohort_sha=getattr(cohort, "sha256", "") or "", memory=memory,
                              progress=progress)
    tables.update(res.tables())
    results["stability"] = res.stability
    results.setdefault("metrics", {})["stability"] = res.metrics
    results.setdefault("summary", []).extend(res.summary)


__all__ = ["StabilityResult", "StabilityInterrupted", "bootstrap_stability", "stability_stage",
           "jaccard_table", "match_clusters", "exact_knn", "METHODS"]

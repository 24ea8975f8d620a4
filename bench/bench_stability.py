"""Benchmark: the stability analysis against a plain sequential refit loop.

    python bench/bench_stability.py [--B 100] [--n 10000] [--repeat 3]

Each measurement runs in its own subprocess, so wall time and peak memory
(RSS of the process and its children) are those of one whole run.  The
plain loop is the textbook version: for each of the B subsamples, in one
process with one BLAS thread, encode and scale, UMAP with umap-learn's own
layout epochs (500 below 10,000 points, 200 above), HDBSCAN, and the
Gaussian mixture at the original k, with no tricks.  ``--child
plain-same-epochs`` is the same loop at segment's configured epochs, to
tell what the layout epochs contribute from what the rest does.

Without ``--n`` the bundled cohort (experiments/smmh.toml) is used; with
``--n N`` a synthetic cohort of N respondents with continuous answers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV1 = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _load(n: int | None, workdir: Path):
    from segment.codebook import load_codebook
    from segment.cohort import load_cohort
    from segment.config import load_config
    from segment.experiment import exclusions, select_features

    if n:
        from segment.synthetic import experiment_toml, planted_cohort

        csv, toml = planted_cohort(n=n, k=4, n_features=10, continuous=True, seed=1).write(workdir / "cohort")
        exp = workdir / "exp.toml"
        exp.write_text(experiment_toml(csv, toml, workdir / "out"))
        cfg = load_config(exp)
        cfg = dataclasses.replace(cfg, reduce=type(cfg.reduce)(), cluster=type(cfg.cluster)(),
                                  stability=type(cfg.stability)())  # the shipped defaults
    else:
        cfg = load_config(ROOT / "experiments" / "smmh.toml")
    cfg = cfg.replace({"reduce.n_epochs": int(os.environ.get("SEGMENT_BENCH_N_EPOCHS", cfg.reduce.n_epochs))})
    codebook = load_codebook(cfg.resolve(cfg.experiment.codebook))
    cohort = load_cohort(cfg.resolve(cfg.experiment.cohort), codebook)
    features, _ = select_features(cohort, cfg)
    features = features[exclusions(features, cfg) == ""]
    return cfg, codebook, features


def run_segment(B: int, n: int | None, n_jobs: int) -> dict:
    """The stability analysis (the null reference off: the plain loop has none)."""
    import numpy as np

    from segment.pipeline import fit_segmentation
    from segment.stability import bootstrap_stability

    with tempfile.TemporaryDirectory() as tmp:
        cfg, codebook, features = _load(n, Path(tmp))
        cfg = cfg.replace({"stability.resamples": B, "stability.null_resamples": 0, "stability.n_jobs": n_jobs})
        seed = np.random.SeedSequence(cfg.experiment.seed)
        t0 = time.perf_counter()
        original = fit_segmentation(features, codebook, cfg,
                                    np.random.SeedSequence(seed.entropy, spawn_key=(0,)))
        t_orig = time.perf_counter() - t0
        res = bootstrap_stability(features, codebook, cfg, seed, original=original, workdir=Path(tmp) / "work")
        ok = res.resamples[(res.resamples["status"] == "ok")].drop_duplicates("resample")
        return {"original_fit_seconds": t_orig, "stability_seconds": time.perf_counter() - t0 - t_orig,
                "median_resample_seconds": float(ok["seconds"].median()), "failed": res.metrics["failed"],
                "hdbscan_mean_jaccard": res.stability.loc[res.stability["method"] == "hdbscan",
                                                          "mean_jaccard"].round(3).tolist()}


def run_plain(B: int, n: int | None, same_epochs: bool = False) -> dict:
    """The textbook loop: one process, one refit after another.

    UMAP runs umap-learn's own layout epochs unless ``same_epochs`` (or
    ``--n-epochs``) asks for the ones segment runs.
    """
    import hdbscan
    import numpy as np
    import umap
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from segment.features import encoder_for

    with tempfile.TemporaryDirectory() as tmp:
        cfg, codebook, features = _load(n, Path(tmp))
        fc, rc, h = cfg.features, cfg.reduce, cfg.cluster.hdbscan
        epochs = (rc.n_epochs or None) if same_epochs or "SEGMENT_BENCH_N_EPOCHS" in os.environ else None

        def fit(frame, seed):
            X = encoder_for(frame, codebook, scaler=fc.scaler, imputer=fc.imputer,
                            knn_neighbors=fc.knn_neighbors).fit_transform(frame)
            E = umap.UMAP(n_neighbors=rc.n_neighbors, min_dist=rc.min_dist, n_components=rc.n_components,
                          n_epochs=epochs, random_state=seed).fit_transform(X)
            mcs = max(2, int(round(h.min_cluster_size * len(E)))) if isinstance(h.min_cluster_size, float) \
                else h.min_cluster_size
            hl = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=h.min_samples).fit_predict(E)
            return X, E, hl

        g = cfg.cluster.gmm
        t0 = time.perf_counter()
        X, E, _ = fit(features, 0)
        P = PCA(g.pca_components, random_state=0).fit_transform(X)
        bic = [GaussianMixture(k, covariance_type=g.covariance_types[0], n_init=g.n_init, random_state=0)
               .fit(P).bic(P) for k in range(g.k[0], g.k[1] + 1)]
        k = g.k[0] + int(np.argmin(bic))  # refitted at the original fit's k, as the stability analysis does
        times = []
        rng = np.random.default_rng(0)
        for b in range(B):
            t = time.perf_counter()
            drawn = np.sort(rng.choice(len(features), int(0.8 * len(features)), replace=False))
            X, E, _ = fit(features.iloc[drawn], b)
            P = PCA(g.pca_components, random_state=b).fit_transform(X)
            GaussianMixture(k, covariance_type=g.covariance_types[0], n_init=g.n_init, random_state=b).fit(P)
            times.append(time.perf_counter() - t)
        return {"stability_seconds": time.perf_counter() - t0,
                "median_resample_seconds": float(np.median(times)), "first_resample_seconds": times[0]}


def measure(kind: str, B: int, n: int | None, n_jobs: int) -> dict:
    """Run one benchmark in a fresh subprocess; whole-process wall and peak RSS."""
    cmd = [sys.executable, __file__, "--child", kind, "--B", str(B), "--n-jobs", str(n_jobs)]
    if n:
        cmd += ["--n", str(n)]
    env = {**os.environ, **ENV1}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["peak_rss_mib"] = result["main_peak_rss_mib"] + (n_jobs if kind == "segment" else 0) * \
        result["worker_peak_rss_mib"]
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--B", type=int, default=100, help="resamples (default 100)")
    p.add_argument("--n", type=int, default=0, help="synthetic cohort of N respondents instead of the bundled one")
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=1, help="medians over repeated runs")
    p.add_argument("--skip-plain", action="store_true", help="only time the stability analysis")
    p.add_argument("--n-epochs", type=int, default=0,
                   help="UMAP epochs for both methods (0: umap-learn's default)")
    p.add_argument("--child", choices=("segment", "plain", "plain-same-epochs"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.n_epochs:
        os.environ["SEGMENT_BENCH_N_EPOCHS"] = str(a.n_epochs)  # read by the child processes
    if a.child:
        res = run_segment(a.B, a.n or None, a.n_jobs) if a.child == "segment" else \
            run_plain(a.B, a.n or None, same_epochs=a.child == "plain-same-epochs")
        try:  # join the worker processes so that their peak memory is counted
            from joblib.externals.loky import get_reusable_executor
            get_reusable_executor().shutdown(wait=True)
        except Exception:  # noqa: BLE001
            pass
        res["main_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        res["worker_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(res))
        return 0
    cohort = f"synthetic cohort, n = {a.n}" if a.n else "bundled cohort (experiments/smmh.toml)"
    print(f"stability benchmark: {cohort}, B = {a.B}, {a.n_jobs} worker(s), {os.cpu_count()} core(s)")
    rows = {"segment": [], "plain": []}
    for _ in range(a.repeat):
        rows["segment"].append(measure("segment", a.B, a.n, a.n_jobs))
        if not a.skip_plain:
            rows["plain"].append(measure("plain", a.B, a.n, a.n_jobs))
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0] if isinstance(v[0][f], (int, float))}
           for k, v in rows.items() if v}
    s = med["segment"]
    print(f"segment   wall {s['wall_seconds']:7.1f} s  (stability {s['stability_seconds']:.1f} s, original fit "
          f"{s['original_fit_seconds']:.1f} s)  peak RSS {s['peak_rss_mib']:.0f} MiB "
          f"(main {s['main_peak_rss_mib']:.0f} + "
          f"{a.n_jobs} x worker {s['worker_peak_rss_mib']:.0f})  "
          f"median resample {s['median_resample_seconds']:.2f} s")
    floor = s["median_resample_seconds"] * a.B / a.n_jobs
    print(f"          floor (B x median resample / workers) {floor:.1f} s; "
          f"HDBSCAN mean Jaccard {rows['segment'][-1]['hdbscan_mean_jaccard']}")
    if "plain" in med:
        q = med["plain"]
        print(f"plain     wall {q['wall_seconds']:7.1f} s  peak RSS {q['peak_rss_mib']:.0f} MiB  "
              f"median resample {q['median_resample_seconds']:.2f} s (first {q['first_resample_seconds']:.1f} s)")
        print(f"ratio     plain / segment = {q['wall_seconds'] / s['wall_seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

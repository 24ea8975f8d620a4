"""Benchmark: one run of the pipeline (no resampling) on a large synthetic cohort.

Runs ``segment run`` on N synthetic respondents with P features in a fresh
process, and in the same benchmark a reference: the plain library calls
(StandardScaler, UMAP, HDBSCAN, a GMM sweep) in a fresh process, on the same
data. Prints whole-process wall time and peak memory (medians over
``--repeat`` runs), their ratio, and the per-stage times of the last run.

    python bench/bench_pipeline.py --n 100000 --features 20 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = textwrap.dedent("""
    import sys, time
    import numpy as np, pandas as pd
    from sklearn.preprocessing import StandardScaler
    from sklearn.mixture import GaussianMixture
    import umap, hdbscan
    t = time.perf_counter()
    data = pd.read_csv(sys.argv[1])
    X = StandardScaler().fit_transform(data.filter(regex=r"^Q").to_numpy(float))
    E = umap.UMAP(n_neighbors=15, min_dist=0.0, n_components=5, random_state=1).fit_transform(X)
    labels = hdbscan.HDBSCAN(min_cluster_size=int(0.05 * len(X)), min_samples=10).fit_predict(E)
    bic = [GaussianMixture(k, covariance_type=ct, n_init=3, random_state=1).fit(E).bic(E)
           for ct in ("full", "diag") for k in range(1, 9)]
    print(time.perf_counter() - t)
""")


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a command run in its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()

    from segment.synthetic import experiment_toml, planted_cohort

    folder = Path(tempfile.mkdtemp(prefix="segment-bench-"))
    cohort = planted_cohort(n=args.n, k=4, n_features=args.features, separation=3.0, seed=1, continuous=True)
    csv, book = cohort.write(folder, "cohort")
    experiment = folder / "experiment.toml"
    experiment.write_text(experiment_toml(csv.name, book.name, "runs", name="bench", extra=textwrap.dedent("""
        [reduce]
        n_components = 5
        [cluster.hdbscan]
        min_cluster_size = 0.05
        [cluster.gmm]
        k = [1, 8]
        covariance_types = ["full", "diag"]
        n_init = 3
        [cluster.kmeans]
        k = 6
        [profile]
        outcomes = ["anxiety", "depression"]
        covariates = ["age", "gender"]
        """)).replace("[reduce]\nn_neighbors = 15\nn_components = 3\n", "")
        .replace("[cluster.hdbscan]\nmin_cluster_size = 0.1\n", "")
        .replace('[cluster.gmm]\nk = [1, 5]\ncovariance_types = ["full"]\nn_init = 1\n', "")
        .replace("[cluster.kmeans]\nk = 3\n", ""))
    (folder / "reference.py").write_text(REFERENCE)
    print(f"cohort: {args.n} respondents x {args.features} features, repeats: {args.repeat}")

    runs, refs = [], []
    for _ in range(args.repeat):
        runs.append(measure([sys.executable, "-m", "segment.cli", "run", str(experiment), "-q"]))
        if not args.no_reference:
            refs.append(measure([sys.executable, str(folder / "reference.py"), str(csv)]))
    manifest = json.loads(sorted((folder / "runs" / "bench").glob("*/manifest.json"))[-1].read_text())

    wall = statistics.median(w for w, _ in runs)
    peak = statistics.median(m for _, m in runs)
    print(f"segment run:      wall {wall:7.1f} s (runs: {', '.join(f'{w:.1f}' for w, _ in runs)}), "
          f"peak RSS {peak:.0f} MiB")
    if refs:
        ref = statistics.median(w for w, _ in refs)
        ref_peak = statistics.median(m for _, m in refs)
        print(f"plain library:    wall {ref:7.1f} s (runs: {', '.join(f'{w:.1f}' for w, _ in refs)}), "
              f"peak RSS {ref_peak:.0f} MiB")
        print(f"ratio segment / plain: {wall / ref:.2f}")
    print("stages of the last run (wall s, process peak RSS MiB at its end):")
    for stage in manifest["stages"]:
        print(f"  {stage['stage']:<18} {stage['wall_seconds']:8.1f} {stage['peak_rss_mib']:8.0f}")


if __name__ == "__main__":
    main()

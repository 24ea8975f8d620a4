"""The benchmarks whose figures bench/README.md quotes.

    python bench/suite.py                 # every benchmark not yet in bench/results.jsonl
    python bench/suite.py bundled fit-100000 --repeat 3
    python bench/suite.py --docs          # bench/README.md's table and bench/scaling.png from the results

Every measurement is a whole process started fresh: ``segment run`` on a
cohort, and beside it, in the same benchmark, the plain-library reference on
the same file.  Wall time and peak resident memory (of the largest process of
the tree) are taken as the process ends; a benchmark's figures are medians
over ``--repeat`` runs, with the segment run and its reference alternating.
One JSON line per benchmark is appended to ``bench/results.jsonl`` as it
finishes, so a stopped suite resumes with the benchmarks it has not done.

Benchmarks:

``bundled``
    The bundled cohort (experiments/smmh.toml), B = 100, the shipped null
    reference, profiles and report, on 2 workers and on 1; the plain
    sequential loop of B refits (bench_stability.py) beside it, with
    umap-learn's own layout epochs and again with segment's.  The floor
    is the time of every refit on one worker / workers plus the original fit
    (:func:`bundled_figures`).
``resample-10000``
    10,000 synthetic respondents: the median resample time of ``segment``'s
    stability analysis against the plain loop on the same subsamples (both
    epoch choices, as above).
``fit-N``
    N synthetic respondents x 20 features (N = 1,000 ... 100,000), one run
    without resampling on two workers (the plain library calls use both
    cores where they can: BLAS, hdbscan's core distances), against the
    plain library calls.
``b20-N``
    The same cohorts with B = 20 resamples (null reference off, as the plain
    loop has none), against the plain loop of 20 refits.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
RESULTS = BENCH / "results.jsonl"
ENV1 = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1"}
SIZES = (1_000, 5_000, 10_000, 50_000, 100_000)
RESAMPLED_SIZES = (1_000, 5_000, 10_000)

# The plain library calls of one fit with the shipped defaults, and of B refits
# on 80 % subsamples: no precomputed neighbours, no worker pool, no caching.
PLAIN = textwrap.dedent("""
    import sys, time
    import numpy as np, pandas as pd
    import hdbscan, umap
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    def fit(data, seed):
        X = StandardScaler().fit_transform(data.filter(regex=r"^Q").to_numpy(float))
        E = umap.UMAP(n_neighbors=15, min_dist=0.0, n_components=5, n_epochs=200,
                      random_state=seed).fit_transform(X)
        hdbscan.HDBSCAN(min_cluster_size=max(2, round(0.05 * len(X))), min_samples=10).fit_predict(E)
        P = PCA(5, random_state=seed).fit_transform(X)
        for k in range(1, 9):
            GaussianMixture(k, covariance_type="tied", n_init=3, random_state=seed).fit(P)
        KMeans(6, n_init=10, random_state=seed).fit(X)

    data = pd.read_csv(sys.argv[1])
    fit(data, 0)
    rng = np.random.default_rng(0)
    for b in range(int(sys.argv[2])):
        t = time.perf_counter()
        fit(data.iloc[np.sort(rng.choice(len(data), int(0.8 * len(data)), replace=False))], b + 1)
        print(time.perf_counter() - t)
""")


def _run(cmd: list[str], env: dict | None = None) -> dict:
    """Wall seconds, peak RSS (MiB, largest process of its tree) and output of one command."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
        return {"wall_seconds": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "stdout": out.read()}


def _child_result(m: dict) -> dict:
    """The JSON line a benchmark child printed last (taken out of ``m``)."""
    return json.loads(m.pop("stdout").strip().splitlines()[-1])


def _segment_run(experiment: Path, output: Path, *args: str, env: dict | None = None) -> dict:
    """``segment run`` in a fresh process, with the figures its run directory records."""
    m = _run([sys.executable, "-m", "segment.cli", "run", str(experiment), "-q",
              "--experiment.output", str(output), *args], env)
    run = sorted(p for p in output.rglob("manifest.json"))[-1].parent
    manifest = json.loads((run / "manifest.json").read_text())
    stages = {s["stage"]: s["wall_seconds"] for s in manifest["stages"]}
    fit_stages = ("load", "features", "umap", "hdbscan", "gmm", "kmeans", "evaluate")
    m.pop("stdout")
    m["stages"] = stages
    m["original_fit_seconds"] = sum(stages.get(s, 0.0) for s in fit_stages)
    resamples = run / "resamples.csv"
    if resamples.exists():
        import pandas as pd

        r = pd.read_csv(resamples)
        cohort = r[(r["sample"] == "cohort") & (r["status"] == "ok")].drop_duplicates("resample")
        m["median_resample_seconds"] = float(cohort["seconds"].median())
        m["refits"] = int(len(r.drop_duplicates(["null_cohort", "resample"])))  # resamples
        m["null_cohorts"] = int(r.loc[r["sample"] != "cohort", "null_cohort"].nunique())
    shutil.rmtree(output, ignore_errors=True)
    return m


def _plain(csv: Path, B: int, env: dict | None = None) -> dict:
    script = BENCH / ".plain_reference.py"
    script.write_text(PLAIN)
    try:
        m = _run([sys.executable, str(script), str(csv), str(B)], env)
    finally:
        script.unlink(missing_ok=True)
    times = [float(x) for x in m.pop("stdout").split()]
    if times:
        m["median_resample_seconds"] = statistics.median(times)
    return m


def _synthetic(n: int, folder: Path) -> tuple[Path, Path]:
    """A cohort of n respondents x 20 continuous features, four archetypes; an experiment of shipped defaults."""
    from segment.synthetic import planted_cohort

    csv, book = planted_cohort(n=n, k=4, n_features=20, separation=3.0, seed=1, continuous=True).write(folder)
    experiment = folder / "experiment.toml"
    experiment.write_text(f'[experiment]\nname = "bench"\nseed = 1\ncohort = "{csv.name}"\n'
                          f'codebook = "{book.name}"\noutput = "runs"\n\n[profile]\n'
                          'outcomes = ["anxiety", "depression"]\ncovariates = ["age", "gender"]\n')
    return csv, experiment


PROFILED = {"_task": "whole resample", "_fit_encoder": "encode, impute, scale", "exact_knn": "exact neighbours",
            "fit_umap": "UMAP (graph and layout)", "optimize_layout_euclidean": "… of which the layout",
            "fit_hdbscan": "HDBSCAN", "select_gmm": "mixture (sweep and fixed k)", "fit_kmeans": "K-Means"}


def _profile_child(n: int, resamples: int = 5) -> dict:
    """Seconds per resample in each step, from cProfile over ``resamples`` resamples (after one to warm up)."""
    import cProfile
    import pstats

    import bench_stability
    import numpy as np

    from segment.pipeline import fit_segmentation
    from segment.stability import _context, _task
    from segment.vocabulary import seed_stream

    with tempfile.TemporaryDirectory() as tmp:
        cfg, codebook, features = bench_stability._load(n or None, Path(tmp))
        seed = np.random.SeedSequence(cfg.experiment.seed)
        original = fit_segmentation(features, codebook, cfg, seed_stream(seed, "fit"))
        ctx = _context(features, codebook, cfg, seed, original, None)
        _task(ctx, "resample", -1, 0)
        profile = cProfile.Profile()
        profile.enable()
        for b in range(1, resamples + 1):
            _task(ctx, "resample", -1, b)
        profile.disable()
    stats = pstats.Stats(profile).stats
    seconds = {name: 0.0 for name in PROFILED}
    for (_, _, func), (_, _, _, cumulative, _) in stats.items():
        if func in seconds:
            seconds[func] += cumulative / resamples
    return {"n": len(features), "drawn": int(round(cfg.stability.fraction * len(features))),
            "step_seconds": seconds}


def bench_profile(n: int, repeat: int, tmp: Path) -> dict:
    m = _run([sys.executable, __file__, "--profile-child", str(n)], ENV1)
    return _child_result(m)


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def _stability_child(kind: str, B: int, *args: str) -> dict:
    """One child of bench_stability.py (``segment`` or a plain loop), with its median resample time."""
    m = _run([sys.executable, str(BENCH / "bench_stability.py"), "--child", kind, "--B", str(B), *args], ENV1)
    m["median_resample_seconds"] = _child_result(m)["median_resample_seconds"]
    return m


def bench_bundled(repeat: int, tmp: Path) -> dict:
    experiment = ROOT / "experiments" / "smmh.toml"
    B = 100
    runs = {"segment_2_workers": [], "segment_1_worker": [], "plain": [], "plain_same_epochs": []}
    for _ in range(repeat):
        runs["segment_2_workers"].append(_segment_run(experiment, tmp / "out", "--resamples", str(B),
                                                      "--n-jobs", "2", env=ENV1))
        runs["segment_1_worker"].append(_segment_run(experiment, tmp / "out", "--resamples", str(B),
                                                     "--n-jobs", "1", env=ENV1))
        for kind in PLAIN_LOOPS:
            runs[kind.replace("-", "_")].append(_stability_child(kind, B))
    return {"B": B, "runs": runs, "median": {k: _medians(v) for k, v in runs.items()}}


# The textbook loop with umap-learn's own layout epochs (500 below 10,000 points), and the same
# loop at segment's configured epochs, which tells the epochs' share of a ratio from the rest.
PLAIN_LOOPS = ("plain", "plain-same-epochs")
LOOP_EPOCHS = ", umap-learn's layout epochs"
RESAMPLING = "stability: resamples"  # the stage of every refit: the cohort's resamples and the null reference's


def bundled_figures(b: dict) -> dict:
    """The bundled benchmark's ratios, from the medians of its runs.

    The floor of a 2-worker run is every refit's time as the 1-worker run
    measured it (its resampling stage: the cohort's resamples, the null
    cohorts' fits and their resamples), halved, plus the original fit.
    """
    s2, s1, plain = (b["median"][k] for k in ("segment_2_workers", "segment_1_worker", "plain"))
    resampling = {k: statistics.median(r["stages"][RESAMPLING] for r in b["runs"][k])
                  for k in ("segment_2_workers", "segment_1_worker")}
    floor = resampling["segment_1_worker"] / 2 + s2["original_fit_seconds"]
    return {"resampling_1_worker": resampling["segment_1_worker"], "floor_seconds": floor,
            "ratio_over_floor": s2["wall_seconds"] / floor,
            "ratio_plain_over_segment": plain["wall_seconds"] / s2["wall_seconds"],
            "ratio_plain_same_epochs_over_segment": (b["median"]["plain_same_epochs"]["wall_seconds"]
                                                     / s2["wall_seconds"]
                                                     if b["median"].get("plain_same_epochs") else None),
            "speedup_2_over_1_worker": s1["wall_seconds"] / s2["wall_seconds"],
            "resampling_speedup": resampling["segment_1_worker"] / resampling["segment_2_workers"]}


def bench_resample_10000(repeat: int, tmp: Path) -> dict:
    B, n = 10, 10_000
    runs = {"segment": [], "plain": [], "plain_same_epochs": []}
    for _ in range(repeat):
        for kind in ("segment", *PLAIN_LOOPS):
            runs[kind.replace("-", "_")].append(_stability_child(kind, B, "--n", str(n), "--n-jobs", "2"))
    med = {k: _medians(v) for k, v in runs.items()}
    return {"B": B, "n": n, "runs": runs, "median": med}


def bench_fit(n: int, repeat: int, tmp: Path, B: int = 0) -> dict:
    csv, experiment = _synthetic(n, tmp / "cohort")
    args = ["--n-jobs", "2"] + (["--resamples", str(B), "--stability.null_resamples", "0"] if B else [])
    runs = {"segment": [], "plain": []}
    for _ in range(repeat):
        runs["segment"].append(_segment_run(experiment, tmp / "out", *args, env=ENV1 if B else None))
        runs["plain"].append(_plain(csv, B, env=ENV1 if B else None))
    med = {k: _medians(v) for k, v in runs.items()}
    return {"n": n, "features": 20, "B": B, "runs": runs, "median": med}


def bench_null_10000(repeat: int, tmp: Path) -> dict:
    """10,000 respondents, B = 100 with the shipped null reference, 2 workers: the whole run's wall time."""
    B = 100
    csv, experiment = _synthetic(10_000, tmp / "cohort")
    runs = [_segment_run(experiment, tmp / "out", "--resamples", str(B), "--n-jobs", "2", env=ENV1)
            for _ in range(repeat)]
    return {"B": B, "n": 10_000, "runs": runs, "median": _medians(runs)}


BENCHMARKS = {"profile-480": lambda r, t: bench_profile(0, r, t),
              "profile-10000": lambda r, t: bench_profile(10_000, r, t),
              "bundled": bench_bundled, "resample-10000": bench_resample_10000, "null-10000": bench_null_10000,
              **{f"fit-{n}": (lambda r, t, n=n: bench_fit(n, r, t)) for n in SIZES},
              **{f"b20-{n}": (lambda r, t, n=n: bench_fit(n, r, t, B=20)) for n in RESAMPLED_SIZES}}


def load_results(path: Path = RESULTS) -> dict:
    """The latest result of every benchmark in the results file."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["benchmark"]: r for r in rows}


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip()


def run(names: list[str], repeat: int, path: Path = RESULTS, rerun: bool = False) -> None:
    done = {} if rerun else load_results(path)
    for name in names:
        if name in done:
            print(f"{name}: in {path.name} already")
            continue
        print(f"{name}: running ({repeat} repeats)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = BENCHMARKS[name](repeat, Path(tmp))
        row = {"benchmark": name, "date": datetime.date.today().isoformat(), "commit": _commit(),
               "cores": os.cpu_count(), "repeat": repeat, "seconds": time.perf_counter() - t0, **result}
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name}: done in {row['seconds']:.0f} s", flush=True)


def table(results: dict) -> str:
    """bench/README.md's table: every figure from the results file."""
    def fmt(x, spec=".1f"):
        return "–" if x is None else format(x, spec)

    lines = ["| benchmark | segment | plain reference | ratio | peak RSS (segment / plain) | runs |",
             "|---|---|---|---|---|---|"]
    b = results.get("bundled")
    if b:
        s2, s1, p = b["median"]["segment_2_workers"], b["median"]["segment_1_worker"], b["median"]["plain"]
        f = bundled_figures(b)
        lines.append(f"| bundled cohort, B = 100, whole `segment run` (null reference, profiles, report), "
                     f"2 workers | {fmt(s2['wall_seconds'])} s | {fmt(p['wall_seconds'])} s (sequential "
                     f"loop of 100 refits{LOOP_EPOCHS}) | plain / segment "
                     f"{fmt(f['ratio_plain_over_segment'], '.2f')} | "
                     f"{fmt(s2['peak_rss_mib'], '.0f')} / {fmt(p['peak_rss_mib'], '.0f')} MiB | {b['repeat']} |")
        lines.append(f"| … its floor (the resampling stage on 1 worker, {fmt(f['resampling_1_worker'])} s: "
                     f"the {b['B']} resamples and the null cohorts' fits and resamples, / 2 workers, + original fit "
                     f"{fmt(s2['original_fit_seconds'])} s) | {fmt(f['floor_seconds'])} s | | "
                     f"run / floor {fmt(f['ratio_over_floor'], '.2f')} | | |")
        lines.append(f"| … on 1 worker | {fmt(s1['wall_seconds'])} s | | 1 / 2 workers "
                     f"{fmt(f['speedup_2_over_1_worker'], '.2f')}; the refits alone "
                     f"{fmt(f['resampling_speedup'], '.2f')} | {fmt(s1['peak_rss_mib'], '.0f')} MiB | "
                     f"{b['repeat']} |")
        same = b["median"].get("plain_same_epochs")
        if same:
            lines.append(f"| … the plain loop at segment's layout epochs | | {fmt(same['wall_seconds'])} s | "
                         f"plain / segment (2 workers) {fmt(f['ratio_plain_same_epochs_over_segment'], '.2f')} | "
                         f"{fmt(same['peak_rss_mib'], '.0f')} MiB | {b['repeat']} |")
    def pair_row(label: str, result: dict, figure: str, spec: str) -> str:
        """A row of a segment run beside its plain reference: ``figure`` of both, their ratio, peak memory."""
        s, p = result["median"]["segment"], result["median"]["plain"]
        return (f"| {label} | {fmt(s[figure], spec)} s | {fmt(p[figure], spec)} s | segment / plain "
                f"{fmt(s[figure] / p[figure], '.2f')} | {fmt(s['peak_rss_mib'], '.0f')} / "
                f"{fmt(p['peak_rss_mib'], '.0f')} MiB | {result['repeat']} |")

    r = results.get("resample-10000")
    if r:
        lines.append(pair_row(f"10,000 respondents, median resample time (B = {r['B']}, 2 workers; plain: "
                              f"the loop{LOOP_EPOCHS})", r, "median_resample_seconds", ".2f"))
        same = r["median"].get("plain_same_epochs")
        if same:
            ratio = r["median"]["segment"]["median_resample_seconds"] / same["median_resample_seconds"]
            lines.append(f"| … the plain loop at segment's layout epochs | | "
                         f"{fmt(same['median_resample_seconds'], '.2f')} s | segment / plain {fmt(ratio, '.2f')}"
                         f" | {fmt(same['peak_rss_mib'], '.0f')} MiB | {r['repeat']} |")
    r = results.get("null-10000")
    if r:
        m = r["median"]
        alone = r["B"] * m["median_resample_seconds"] / 2 + m["original_fit_seconds"]
        lines.append(f"| 10,000 × 20, B = {r['B']}, whole `segment run` with the shipped null reference "
                     f"({int(m['null_cohorts'])} null cohorts, {int(m['refits'] + m['null_cohorts'])} refits in all), "
                     f"2 workers | {fmt(m['wall_seconds'])} s | {fmt(alone)} s (the cohort's {r['B']} resamples "
                     f"alone: B × median resample {fmt(m['median_resample_seconds'], '.2f')} s / 2 workers + "
                     f"original fit) | run / resamples alone {fmt(m['wall_seconds'] / alone, '.2f')} | "
                     f"{fmt(m['peak_rss_mib'], '.0f')} MiB | {r['repeat']} |")
    for prefix, words in (("fit", "one run, no resampling"), ("b20", "B = 20, 2 workers, null reference off")):
        lines += [pair_row(f"{n:,} × 20, {words}", results[f"{prefix}-{n}"], "wall_seconds", ".1f")
                  for n in SIZES if f"{prefix}-{n}" in results]
    profiles = [results[k] for k in ("profile-480", "profile-10000") if k in results]
    if profiles:
        lines += ["", "Where one resample's time goes (cProfile, seconds per resample, mean of 5 after one to warm "
                  "up, one thread):", "",
                  "| step | " + " | ".join(f"{r['drawn']:,} of {r['n']:,} respondents" for r in profiles) + " |",
                  "|---|" + "---|" * len(profiles)]
        for func, words in PROFILED.items():
            lines.append(f"| {words} | " + " | ".join(f"{r['step_seconds'][func]:.2f}" for r in profiles) + " |")
    commits = sorted({r["commit"] for r in results.values()})
    dates = sorted({r["date"] for r in results.values()})
    lines.append("")
    cores = next(iter(results.values()))["cores"] if results else "?"
    lines.append(f"Medians over the runs counted in the last column; {cores} cores; "
                 f"measured {', '.join(dates)} at commit {', '.join(commits)} "
                 "with `python bench/suite.py` (results in `bench/results.jsonl`).")
    return "\n".join(lines)


def figure(results: dict, path: Path) -> None:
    """Wall time against n (with and without resampling) and against workers, beside the references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    for prefix, label, marker in (("fit", "one run", "o"), ("b20", "B = 20", "s")):
        rows = [(n, results[f"{prefix}-{n}"]) for n in SIZES if f"{prefix}-{n}" in results]
        if rows:
            ns = [n for n, _ in rows]
            ax.plot(ns, [r["median"]["segment"]["wall_seconds"] for _, r in rows], marker=marker,
                    label=f"segment, {label}")
            ax.plot(ns, [r["median"]["plain"]["wall_seconds"] for _, r in rows], marker=marker, ls="--",
                    label=f"plain library, {label}")
    ax.set(xscale="log", yscale="log", xlabel="respondents (20 features)", ylabel="wall time, s (whole process)")
    ax.legend(fontsize=8)
    b = results.get("bundled")
    if b:
        m = b["median"]
        bx.bar(["segment\n1 worker", "segment\n2 workers", "plain loop\n(no null\nreference)"],
               [m["segment_1_worker"]["wall_seconds"], m["segment_2_workers"]["wall_seconds"],
                m["plain"]["wall_seconds"]], color=["C0", "C0", "C1"])
        bx.axhline(bundled_figures(b)["floor_seconds"], color="k", lw=0.8, ls=":", label="floor, 2 workers")
        bx.set(ylabel="wall time, s", title="bundled cohort, B = 100")
        bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


START, END = "<!-- figures:start -->", "<!-- figures:end -->"
README = BENCH / "README.md"


def block(results: dict) -> str:
    """What bench/README.md holds between its figure markers."""
    return f"{table(results)}\n\n![wall time against respondents and workers](scaling.png)"


def write_docs(results: dict) -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{block(results)}\n{END}{rest.split(END, 1)[1]}")
    figure(results, BENCH / "scaling.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmarks", nargs="*", help=f"default: all of {', '.join(BENCHMARKS)}")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--rerun", action="store_true", help="run the benchmarks named even if they have results "
                                                          "(the newest result of a benchmark is the one shown)")
    p.add_argument("--docs", action="store_true", help="write bench/README.md's table and bench/scaling.png")
    p.add_argument("--profile-child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.profile_child is not None:
        sys.path.insert(0, str(BENCH))
        print(json.dumps(_profile_child(a.profile_child)))
        return 0
    if a.docs:
        write_docs(load_results(a.results))
        return 0
    unknown = sorted(set(a.benchmarks) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    run(a.benchmarks or list(BENCHMARKS), a.repeat, a.results, a.rerun)
    return 0


if __name__ == "__main__":
    sys.exit(main())

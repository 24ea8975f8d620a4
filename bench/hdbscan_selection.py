"""Which space and parameters HDBSCAN should cluster with.

For every (scenario, seed) of the planted cells of ``bench/calibrate.py`` the
cohort is encoded as ``segment run`` encodes it, embedded with UMAP (5
dimensions, ``min_dist`` 0, 200 layout epochs) at several neighbourhood
sizes, and clustered by HDBSCAN over a grid of ``min_samples`` and
``min_cluster_size``; the first five principal components of the scaled
features stand beside the embeddings as the space without UMAP.  One JSON
line per (cell, seed, space, min_samples, min_cluster_size) is appended to the
results file; the study resumes by (cell, seed).  This is the clustering step
alone, without resampling, so that every setting is compared on the same
cohorts in minutes; a setting becomes the default only when the full
calibration confirms it.

    python bench/hdbscan_selection.py --seeds 20
    python bench/hdbscan_selection.py --docs      # the table into docs/validation.md
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "hdbscan_selection.jsonl"
START, END = "<!-- hdbscan-selection:start -->", "<!-- hdbscan-selection:end -->"
PLANTED = ("sep4-n600", "sep6-n600", "hard-n600")
NEIGHBOURS = (15, 30, 60)
MIN_SAMPLES = (5, 10, 15, 20, 30)
MIN_CLUSTER_SIZES = (0.03, 0.05, 0.08)


def evaluate(name: str, scenario, seed: int) -> list[dict]:
    """Every (space, min_samples, min_cluster_size) on one cohort."""
    from mixture_selection import encoded
    from sklearn.metrics import adjusted_rand_score

    from segment.cluster import NOISE, fit_hdbscan
    from segment.pipeline import principal_components
    from segment.reduce import fit_umap

    X, truth = encoded(scenario, seed)
    planted = truth >= 0
    spaces = {f"UMAP, {nn} neighbours": fit_umap(X, random_state=seed, n_neighbors=nn, min_dist=0.0,
                                                 n_components=5, n_epochs=200)[1] for nn in NEIGHBOURS}
    spaces["5 PCs"] = principal_components(X, 5)[1]
    rows = []
    for space, E in spaces.items():
        for ms in MIN_SAMPLES:
            for mcs in MIN_CLUSTER_SIZES:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    labels = fit_hdbscan(E, min_cluster_size=mcs, min_samples=ms).labels
                rows.append({
                    "cell": name, "seed": seed, "space": space, "min_samples": ms, "min_cluster_size": mcs,
                    # noise is a group of its own, as in the calibration: noise is not free
                    "ari": float(adjusted_rand_score(truth[planted], labels[planted])),
                    "k": int(len(set(labels.tolist()) - {NOISE})),
                    "planted_noise": float(np.mean(labels[planted] == NOISE)),
                    "random_noise": float(np.mean(labels[~planted] == NOISE)) if (~planted).any() else None,
                })
    return rows


def run(seeds: int, path: Path = RESULTS) -> None:
    from calibrate import cells

    plan = cells()
    done = set()
    if path.exists():
        done = {(r["cell"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
    with path.open("a", encoding="utf-8") as fh:
        for seed in range(seeds):
            for name in PLANTED:
                if (name, seed) in done:
                    continue
                for row in evaluate(name, plan[name][0], seed):
                    fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(f"{name} seed {seed}", file=sys.stderr)


def table(path: Path = RESULTS) -> str:
    """Per setting: median ARI and k = planted on the planted cells, noise shares in the hard cell."""
    d = pd.read_json(path, lines=True).drop_duplicates(["cell", "seed", "space", "min_samples", "min_cluster_size"])
    lines = ["| space | min_samples | min_cluster_size | seeds | "
             + " | ".join(f"ARI {c.split('-')[0]}" for c in PLANTED)
             + " | " + " | ".join(f"k = 5, {c.split('-')[0]}" for c in PLANTED[:2])
             + " | hard: random responders in noise | hard: planted respondents in noise |",
             "|" + "---|" * (4 + len(PLANTED) + 2 + 2)]
    spaces = [f"UMAP, {nn} neighbours" for nn in NEIGHBOURS] + ["5 PCs"]
    for space in spaces:
        for ms in MIN_SAMPLES:
            for mcs in MIN_CLUSTER_SIZES:
                g = d[(d.space == space) & (d.min_samples == ms) & (d.min_cluster_size == mcs)]
                by = {c: g[g.cell == c] for c in PLANTED}
                seeds = min(len(v) for v in by.values())
                if not seeds:
                    continue
                hard = by["hard-n600"]
                cells_ = [f"{by[c].ari.median():.2f}" for c in PLANTED]
                cells_ += [f"{(by[c].k == 5).mean():.0%}" for c in PLANTED[:2]]
                cells_ += [f"{hard.random_noise.median():.0%}", f"{hard.planted_noise.median():.0%}"]
                lines.append(f"| {space} | {ms} | {mcs:.0%} | {seeds} | " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the Markdown table of the results")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/validation.md")
    args = parser.parse_args(argv)
    if args.table or args.docs:
        from calibrate import show_table

        return show_table(table(args.results), START, END, args.docs)
    run(args.seeds, args.results)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())

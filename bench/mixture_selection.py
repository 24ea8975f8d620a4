"""How the Gaussian mixture should choose its model: space, covariance family, criterion.

For every (scenario, seed) the cohort of ``bench/calibrate.py`` is drawn and
encoded as ``segment run`` encodes it; mixtures with k = 1..8 are fitted in the
first ``d`` principal components of the scaled features (``d = all``: every
component, the feature space rotated) with each covariance family, and each
criterion picks its k.  One JSON line per (cell, seed, d, covariance,
criterion, EM starts) is appended to the results file; the study resumes by
(cell, seed).  ``--n-init`` sets the EM starts of every fit (each from its own
k-means initialisation, the best likelihood kept): rows written before the
option existed had 3.
This is the mixture step alone, so hundreds of cohorts cost minutes, not hours;
the chosen rule then goes through the full calibration.

    python bench/mixture_selection.py --seeds 20
    python bench/mixture_selection.py --dims 5 6 8 10 12 --covariances tied full --seeds 24
    python bench/mixture_selection.py --dims 5 8 --covariances tied --n-init 10
    python bench/mixture_selection.py --docs      # the table into docs/validation.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "mixture_selection.jsonl"
START, END = "<!-- mixture-selection:start -->", "<!-- mixture-selection:end -->"
#: Planted cells and their short names in the table; the first three are the calibration's own
PLANTED = {"sep4-n600": "sep4", "sep6-n600": "sep6", "hard-n600": "hard",
           "sep6-k3-n600": "sep6, 3 archetypes", "sep6-k7-n600": "sep6, 7 archetypes"}
CONTROLS = ("continuum-n600", "gaussian-n600", "copula-n600")


def encoded(scenario, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The cohort's scaled features as ``segment run`` builds them, and its truth."""
    from calibrate import encoded_answers

    from segment.scenarios import make_cohort

    truth_cohort = make_cohort(scenario, seed)
    folder = Path(tempfile.mkdtemp(prefix="segment-mixture-"))
    try:
        return encoded_answers(truth_cohort, folder), np.asarray(truth_cohort.truth)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def evaluate(name: str, scenario, seed: int, dims, covariances, n_init: int = 3) -> list[dict]:
    """Every (d, covariance, criterion) choice on one cohort."""
    from sklearn.metrics import adjusted_rand_score

    from segment.cluster import select_gmm
    from segment.pipeline import principal_components

    X, truth = encoded(scenario, seed)
    planted = truth >= 0
    rows = []
    for d in dims:
        _, Z = principal_components(X, X.shape[1] if d == "all" else int(d))
        for cov in covariances:
            for criterion in ("bic", "icl"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = select_gmm(Z, k=(1, 8), covariance_types=[cov], criterion=criterion,
                                     n_init=n_init, random_state=seed)
                ari = adjusted_rand_score(truth[planted], fit.labels[planted]) if truth.max() > 0 else None
                rows.append({"cell": name, "seed": seed, "d": str(d), "p": X.shape[1], "cov": cov,
                             "crit": criterion, "n_init": n_init, "k": fit.k, "ari": ari})
    return rows


def run(seeds: int, dims, covariances, path: Path, n_init: int = 3) -> None:
    from calibrate import cells

    plan = cells()
    done = set()
    if path.exists():
        done = {(r["cell"], r["seed"], r["d"], r["cov"], r.get("n_init", 3))
                for r in map(json.loads, path.read_text().splitlines())}
    with path.open("a", encoding="utf-8") as fh:
        for seed in range(seeds):
            for name in (*PLANTED, *CONTROLS):
                todo_dims = [d for d in dims if any((name, seed, str(d), c, n_init) not in done for c in covariances)]
                if not todo_dims:
                    continue
                for row in evaluate(name, plan[name][0], seed, todo_dims, covariances, n_init):
                    if (name, seed, row["d"], row["cov"], n_init) not in done:
                        fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(f"{name} seed {seed}", file=sys.stderr)


def table(path: Path = RESULTS) -> str:
    """Per rule: median ARI and k = planted on planted cells, k = 1 on the controls ("–": not run)."""
    from calibrate import cells

    d = pd.read_json(path, lines=True, dtype={"d": str})
    d["n_init"] = d["n_init"].fillna(3).astype(int) if "n_init" in d else 3
    d = d.drop_duplicates(["cell", "seed", "d", "cov", "crit", "n_init"])
    plan = cells()
    planted_k = {c: len(plan[c][0].shares) for c in PLANTED}
    counted = [c for c in PLANTED if c != "hard-n600"]
    lines = ["| space | covariance | criterion | EM starts | seeds | "
             + " | ".join(f"ARI {PLANTED[c]}" for c in PLANTED)
             + " | " + " | ".join(f"k = {planted_k[c]}, {PLANTED[c]}" for c in counted)
             + " | " + " | ".join(f"k = 1, {c.split('-')[0]}" for c in CONTROLS) + " |",
             "|" + "---|" * (5 + len(PLANTED) + len(counted) + len(CONTROLS))]
    order = sorted(d.groupby(["d", "cov", "crit", "n_init"]).groups,
                   key=lambda g: (g[0] != "all", _dim(g[0]), g[1], g[2], g[3]))
    for key in order:
        g = d[(d.d == key[0]) & (d["cov"] == key[1]) & (d.crit == key[2]) & (d.n_init == key[3])]
        by = {c: g[g.cell == c] for c in (*PLANTED, *CONTROLS)}
        seeds = min(len(v) for v in by.values() if len(v))
        space = "scaled features" if key[0] == "all" else f"{key[0]} PCs"
        cells_ = [f"{by[c].ari.median():.2f}" if len(by[c]) else "–" for c in PLANTED]
        cells_ += [f"{(by[c].k == planted_k[c]).mean():.0%}" if len(by[c]) else "–" for c in counted]
        cells_ += [f"{(by[c].k == 1).mean():.0%}" for c in CONTROLS]
        lines.append(f"| {space} | {key[1]} | {key[2].upper()} | {key[3]} | {seeds} | " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def _dim(d: str) -> int:
    return 10**6 if d == "all" else int(d)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--dims", nargs="*", default=["5", "8", "all"])
    parser.add_argument("--covariances", nargs="*", default=["full", "tied", "diag"])
    parser.add_argument("--n-init", type=int, default=3, help="EM starts of every fit")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the Markdown table of the results")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/validation.md")
    args = parser.parse_args(argv)
    if args.table or args.docs:
        from calibrate import show_table

        return show_table(table(args.results), START, END, args.docs)
    run(args.seeds, args.dims, args.covariances, args.results, args.n_init)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())

"""What the default run of the bundled cohort says, as figures for README.md.

    python bench/bundled.py                # run experiments/smmh.toml, then write the figures
    python bench/bundled.py --from RUN_DIR # read an existing run of it

Writes ``docs/bundled.json`` (the figures, read from the run's files) and
rewrites the block of README.md between ``<!-- bundled:start -->`` and
``<!-- bundled:end -->`` from it.  ``tests/test_docs.py`` checks that the
block is what the JSON file gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "bundled.json"
README = ROOT / "README.md"
START, END = "<!-- bundled:start -->", "<!-- bundled:end -->"
NAMES = {"hdbscan": "HDBSCAN", "gmm": "the Gaussian mixture", "kmeans": "K-Means"}


def figures(run_dir: Path) -> dict:
    """The key figures of a run of the bundled cohort, from its files."""
    import pandas as pd

    from segment.vocabulary import VERDICTS

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    stability = pd.read_csv(run_dir / "stability.csv")
    structure = pd.read_csv(run_dir / "structure_test.csv")
    s = metrics["stability"]
    out = {"run_id": manifest["run_id"], "n": metrics["cohort"]["n_analysed"],
           "resamples": s["resamples"], "fraction": s["fraction"], "null_cohorts": s["null_cohorts"],
           "null_resamples": s["null_resamples"], "null": s.get("null"),
           "alpha_family": s["alpha_family"],
           "hdbscan_noise_share": metrics["hdbscan"]["noise_share"],
           "gmm_k": metrics["gmm"]["k"], "gmm_criterion": metrics["gmm"]["criterion"],
           "wall_seconds": manifest["wall_seconds"], "methods": {}}
    for m in NAMES:
        t = stability[stability["method"] == m]
        st = structure[structure["method"] == m]
        out["methods"][m] = {
            "archetypes": int(len(t)),
            "verdicts": {v: int((t["verdict"] == v).sum()) for v in VERDICTS if (t["verdict"] == v).any()},
            "best_mean_jaccard": float(t["mean_jaccard"].max()) if len(t) else None,
            "null_reference": float(t["null_reference"].iloc[0]) if len(t) else None,
            "structure_p": float(st["p_value"].iloc[0]) if len(st) else None,
        }
    return out


def render(f: dict) -> str:
    """The README paragraph for the figures."""
    from segment.vocabulary import null_model

    m = f["methods"]
    parts = []
    for key, name in NAMES.items():
        d = m[key]
        if not d["archetypes"]:
            parts.append(f"{name} finds no archetypes ({f['gmm_criterion'].upper()} selects k = {f['gmm_k']})"
                         if key == "gmm"
                         else f"{name} finds no archetypes")
            continue
        extra = f" ({f['hdbscan_noise_share']:.0%} of respondents are noise)" if key == "hdbscan" else ""
        verdicts = ", ".join(f"{count} {v}" for v, count in d["verdicts"].items())
        parts.append(f"{name} finds {d['archetypes']} archetypes{extra}: {verdicts}; its best archetype's mean Jaccard "
                     f"is {d['best_mean_jaccard']:.2f} against {d['null_reference']:.2f} reached by the best "
                     f"archetype of structure-free cohorts (structure test p = {d['structure_p']:.2f})")
    any_stable = any(m[k]["verdicts"].get("stable") for k in NAMES)
    verdict = ("Some archetypes are more reproducible than structure-free data of the same shape."
               if any_stable else
               "No archetype is more reproducible than structure-free data of the same shape: the groups "
               "below describe slices of a continuum, not distinct types.")
    return (f"The default run of the bundled cohort ({f['n']} respondents; {f['resamples']} subsamples of "
            f"{f['fraction']:.0%}; a null reference of {f['null_cohorts']} structure-free cohorts, "
            f"{null_model(f.get('null'))[0]}, "
            f"{f['null_resamples']} resamples each) says: " + "; ".join(parts) + ". " + verdict
            + f" (Run {f['run_id']}, {f['wall_seconds']:.0f} s on 2 cores; figures from "
              "[`docs/bundled.json`](docs/bundled.json), written by `python bench/bundled.py`.)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="run_dir", type=Path, help="an existing run of experiments/smmh.toml")
    args = parser.parse_args(argv)
    run_dir = args.run_dir
    if run_dir is None:
        from segment.experiment import run_experiment

        run_dir = run_experiment(ROOT / "experiments" / "smmh.toml", quiet=False).path
    f = figures(Path(run_dir))
    FIGURES.write_text(json.dumps(f, indent=2) + "\n", encoding="utf-8")
    from calibrate import rewrite_block

    README.write_text(rewrite_block(README.read_text(encoding="utf-8"), render(f) + "\n", START, END),
                      encoding="utf-8")
    print(render(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())

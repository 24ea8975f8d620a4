"""Calibration of segment's verdicts on cohorts with known truth.

Every (scenario, seed) cell draws a survey-like cohort (``segment.scenarios``),
writes it as a survey file with its codebook, and runs the whole
``segment run`` path on it with the shipped defaults (stated overrides only).
What the run says is compared with what was planted, and one JSON line per
cell is appended to the results file, so that the study can be stopped and
resumed at any time.  ``--table`` turns the results into the table of
``docs/validation.md``.

    python bench/calibrate.py --jobs 2                 # the full study, resumable
    python bench/calibrate.py --cells sep4-n600 --seeds 3
    python bench/calibrate.py --docs                   # the table into docs/validation.md
    python bench/calibrate.py --cells sep6-n600 --seeds 12 --set cluster.gmm.n_init=10 \
        --results bench/calibration-mixture-10starts.jsonl   # another rule, beside the default

A rule other than the shipped default (``--set KEY=VALUE``, any config key)
is studied into its own results file; listed in ``RULES``, its table sets it
beside the shipped default on the (cell, seed) pairs both ran.

Cells run on a local pool of ``--jobs`` worker processes (each run single threaded),
or with ``--scheduler tcp://host:port`` on a Dask cluster (docs/cluster.md);
every cell's numbers depend only on its scenario and seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "calibration.jsonl"
STUDY_RESAMPLES = 20  # stability resamples of every run of the study
DOCS = ROOT / "docs" / "validation.md"
START, END = "<!-- calibration:start -->", "<!-- calibration:end -->"
METHODS = ("hdbscan", "gmm", "kmeans")
LABEL_COLUMNS = {"hdbscan": "hdbscan_label", "gmm": "gmm_component", "kmeans": "kmeans_cluster"}
MATCH_JACCARD = 0.5  # a found archetype stands for a planted one when their Jaccard reaches this


def cells() -> dict:
    """The scenarios of the study and the seeds each gets."""
    from segment.scenarios import Scenario

    out = {}
    for sep in (2.0, 3.0, 4.0, 6.0):
        out[f"sep{sep:g}-n600"] = (Scenario(separation=sep, n=600), 20, {})
    out["hard-n600"] = (Scenario(separation=2.5, random_share=0.05, n=600), 20, {})
    # fewer and more archetypes than the five the defaults were studied on
    out["sep6-k3-n600"] = (Scenario(separation=6.0, n=600, shares=(0.50, 0.30, 0.20)), 20, {})
    out["sep6-k7-n600"] = (Scenario(separation=6.0, n=600, shares=(0.25, 0.20, 0.15, 0.12, 0.10, 0.10, 0.08)),
                           20, {})
    for kind in ("continuum", "gaussian", "copula"):
        out[f"{kind}-n600"] = (Scenario(kind=kind, n=600), 20, {})
    # the layout epochs: umap-learn's own 500 below 10,000 points against the default 200
    out["sep4-n600-epochs500"] = (Scenario(separation=4.0, n=600), 20, {"reduce.n_epochs": 500})
    out["copula-n600-epochs500"] = (Scenario(kind="copula", n=600), 20, {"reduce.n_epochs": 500})
    for sep in (4.0, 6.0):
        out[f"sep{sep:g}-n5000"] = (Scenario(separation=sep, n=5000), 5, {})
    for kind in ("continuum", "gaussian", "copula"):
        out[f"{kind}-n5000"] = (Scenario(kind=kind, n=5000), 5, {})
    return out


EXPERIMENT = """[experiment]
name = "cell"
seed = {seed}
cohort = "cohort.csv"
codebook = "cohort.toml"
output = "runs"

[stability]
resamples = {resamples}
n_jobs = 1

[profile]
outcomes = ["anxiety", "depression", "sleep"]
"""


def evaluate(scenario, seed: int, resamples: int, overrides: dict | None = None) -> dict:
    """Draw one cohort of ``scenario``, run ``segment run`` on it and score the run."""
    from segment.experiment import run_experiment
    from segment.scenarios import make_cohort

    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="segment-calibration-"))
    try:
        truth_cohort = make_cohort(scenario, seed)
        truth_cohort.write(folder, "cohort")
        (folder / "experiment.toml").write_text(EXPERIMENT.format(seed=seed, resamples=resamples))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = run_experiment(folder / "experiment.toml", overrides=overrides, quiet=True, write=True)
        row = score(run, truth_cohort)
        row.update(ceiling(truth_cohort, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row.update(cell=scenario.label, seed=seed, n=scenario.n, kind=scenario.kind, separation=scenario.separation,
               random_share=scenario.random_share, planted_k=scenario.k, resamples=resamples,
               overrides=overrides or {},
               seconds=time.perf_counter() - started)
    return row


def encoded_answers(truth_cohort, folder: Path) -> np.ndarray:
    """The cohort's scaled features as ``segment run`` builds them from its survey file and codebook."""
    from segment.codebook import load_codebook
    from segment.cohort import load_cohort
    from segment.features import encoder_for

    csv, book = truth_cohort.write(folder, "encoded")
    cohort = load_cohort(csv, load_codebook(book))
    return np.asarray(encoder_for(cohort.features, cohort.codebook).fit_transform(cohort.features), dtype=float)


def ceiling(truth_cohort, folder: Path) -> dict:
    """What the answers allow: the nearest planted pair's Mahalanobis distance in
    the encoded answers the methods see, and the ARI of linear discriminant
    analysis fitted with the truth (in sample), which no unsupervised method
    can be expected to beat.  Empty for a structure-free control."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.metrics import adjusted_rand_score

    truth = np.asarray(truth_cohort.truth)
    if truth.max() <= 0:
        return {}
    X = encoded_answers(truth_cohort, folder)
    planted = truth >= 0
    X, t = X[planted], truth[planted]
    k = t.max() + 1
    means = np.array([X[t == a].mean(axis=0) for a in range(k)])
    within = sum(np.cov(X[t == a].T) * (np.sum(t == a) - 1) for a in range(k)) / (len(t) - k)
    inv = np.linalg.pinv(within)
    separation = min(np.sqrt((means[a] - means[b]) @ inv @ (means[a] - means[b]))
                     for a in range(k) for b in range(a + 1, k))
    oracle = LinearDiscriminantAnalysis().fit(X, t).predict(X)
    return {"observed_separation": round(float(separation), 3),
            "oracle_ari": round(float(adjusted_rand_score(t, oracle)), 4)}


def backfill_ceiling(path: Path) -> None:
    """Add :func:`ceiling` to result lines that lack it (it depends on the cohort only)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        rec = json.loads(line)
        if "error" not in rec and rec.get("kind") == "archetypes" and "oracle_ari" not in rec:
            from segment.scenarios import make_cohort

            folder = Path(tempfile.mkdtemp(prefix="segment-ceiling-"))
            try:
                rec.update(ceiling(make_cohort(cells()[rec["cell"]][0], rec["seed"]), folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        out.append(json.dumps(rec, default=float))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    tmp.replace(path)


def outcome_truth(cell: str, seed: int) -> dict:
    """The outcome tests of one planted cell, each with its pair's true difference.

    For runs recorded before ``group_pairs`` was: the cell is run again
    without resampling (the labels and the outcome tests do not depend on
    it); the counts it also returns let :func:`backfill_outcome_truth` check
    that the run is the one recorded.
    """
    scenario, _, overrides = cells()[cell]
    row = evaluate(scenario, seed, resamples=0, overrides=overrides)
    keep = ("ari", "group_equal_pairs", "group_equal_rejected", "group_large_pairs", "group_large_rejected",
            "group_equal_expected", "group_pairs")
    return {"cell": cell, "seed": seed, **{m: {k: row[m][k] for k in keep} for m in METHODS}}


def outcome_truth_path(results: Path) -> Path:
    """Where the pairs' true differences of the runs in ``results`` that lack them are kept."""
    return results.with_name(f"{results.stem}-outcome-truth.jsonl")


def backfill_outcome_truth(path: Path) -> int:
    """Append :func:`outcome_truth` to :func:`outcome_truth_path` for the planted runs of
    ``path`` that lack ``group_pairs`` (resumable), after checking it against what the run
    recorded."""
    out = outcome_truth_path(path)
    by_cell, _ = _by_cell(path)
    have = done_cells(out)
    todo = [(c, r) for c, rs in by_cell.items() for r in rs if r["kind"] == "archetypes"
            and "group_pairs" not in r[METHODS[0]] and (c, r["seed"]) not in have]
    print(f"{len(todo)} runs to recompute", file=sys.stderr)
    for c, rec in todo:
        truth = outcome_truth(c, rec["seed"])
        for m in METHODS:
            same = abs(truth[m]["ari"] - rec[m]["ari"]) < 1e-9 and all(
                truth[m][k] == rec[m][k] for k in ("group_equal_pairs", "group_equal_rejected",
                                                    "group_large_pairs", "group_large_rejected") if k in rec[m])
            if not same:
                raise SystemExit(f"{c} seed {rec['seed']}, {m}: the run without resampling is not the one "
                                 "recorded (its ARI or its outcome tests differ)")
        with out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(truth, default=float) + "\n")
    return len(todo)


def _with_outcome_truth(by_cell: dict, results: Path) -> dict:
    """``by_cell`` with the recomputed pair truths kept beside ``results`` filled into the runs that lack them."""
    path = outcome_truth_path(results)
    if not path.exists():
        return by_cell
    truths = {(t["cell"], t["seed"]): t for t in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
    for c, rs in by_cell.items():
        for r in rs:
            t = truths.get((c, r["seed"]))
            if t is not None and "group_pairs" not in r[METHODS[0]]:
                for m in METHODS:
                    r[m] = {**r[m], **t[m]}
    return by_cell


def _planted_matches(truth: np.ndarray, labels: np.ndarray) -> dict:
    """Planted archetype -> (found archetype, Jaccard) of its best match (noise is no archetype)."""
    out = {}
    for a in sorted(set(truth.tolist()) - {-1}):
        best, best_j = -1, 0.0
        in_a = truth == a
        for f in sorted(set(labels.tolist()) - {-1}):
            in_f = labels == f
            j = (in_a & in_f).sum() / (in_a | in_f).sum()
            if j > best_j:
                best, best_j = f, j
        out[a] = (best, float(best_j))
    return out


def score(run, truth_cohort) -> dict:
    """Per method: recovery, k, verdicts, structure test and outcome tests against the truth."""
    from sklearn.metrics import adjusted_rand_score

    truth = np.asarray(truth_cohort.truth)
    assignments = run.assignments.reindex(truth_cohort.answers["respondent_id"].astype(str)) \
        if "respondent_id" in truth_cohort.answers else run.assignments
    stab = run.tables.get("stability", pd.DataFrame())
    structure = run.tables.get("structure_test", pd.DataFrame())
    pairwise = run.tables.get("pairwise", pd.DataFrame())
    planted_means = truth_cohort.outcome_means
    row = {}
    for m in METHODS:
        labels = pd.to_numeric(assignments[LABEL_COLUMNS[m]], errors="coerce").fillna(-1).astype(int).to_numpy()
        found = sorted(set(labels.tolist()) - {-1})
        verdicts = {}
        if len(stab):
            t = stab[stab["method"] == m]
            verdicts = dict(zip(t["archetype"].astype(int), t["verdict"].astype(str)))
        r = {"k": len(found), "n_stable": sum(v == "stable" for v in verdicts.values()),
             "n_borderline": sum(v == "borderline" for v in verdicts.values()),
             "any_stable": any(v == "stable" for v in verdicts.values())}
        st = structure[structure["method"] == m] if len(structure) else structure
        r["structure_p"] = float(st["p_value"].iloc[0]) if len(st) else None
        # the raw numbers behind the verdicts, so that other rules can be scored from the same runs
        if len(stab):
            t = stab[stab["method"] == m]
            r["archetypes"] = {c: [None if isinstance(v, float) and np.isnan(v) else v for v in t[c].tolist()]
                               for c in ("archetype", "n", "mean_jaccard", "mean_jaccard_se", "p_value")}
        nref = run.tables.get("null_reference", pd.DataFrame())
        if len(nref):
            r["null_best"] = nref.loc[nref["method"] == m, "best_mean_jaccard"].round(4).tolist()
        if (truth >= 0).all() and truth.max() == 0:  # a structure-free control
            row[m] = r
            continue
        planted = truth >= 0
        r["ari"] = float(adjusted_rand_score(truth[planted], labels[planted]))
        matches = _planted_matches(truth, labels)
        r["planted_stable"] = sum(j >= MATCH_JACCARD and verdicts.get(f) == "stable" for f, j in matches.values())
        r["planted_recovered"] = sum(j >= MATCH_JACCARD for f, j in matches.values())
        if m == "hdbscan" and (truth == -1).any():
            r["random_to_noise"] = float(np.mean(labels[truth == -1] == -1))
        # outcome pairs of found archetypes that stand for two different planted ones
        stands_for = {f: a for a, (f, j) in matches.items() if j >= MATCH_JACCARD}
        tests = {"equal_pairs": 0, "equal_rejected": 0, "large_pairs": 0, "large_rejected": 0}
        if len(pairwise) and len(planted_means):
            pw = pairwise[(pairwise["method"] == m)]
            for p in pw.itertuples(index=False):
                a, b = stands_for.get(int(p.archetype_a)), stands_for.get(int(p.archetype_b))
                if a is None or b is None or a == b or p.outcome not in planted_means:
                    continue
                d = abs(planted_means.loc[a, p.outcome] - planted_means.loc[b, p.outcome])
                rejected = bool(p.reject)
                if d == 0:
                    tests["equal_pairs"] += 1
                    tests["equal_rejected"] += rejected
                elif d >= 0.8:
                    tests["large_pairs"] += 1
                    tests["large_rejected"] += rejected
        r.update(tests)
        r.update(_group_truth_tests(pairwise[pairwise["method"] == m] if len(pairwise) else pairwise,
                                    labels, truth_cohort.expected_outcomes))
        row[m] = r
    return row


def _group_truth_tests(pairwise: pd.DataFrame, labels: np.ndarray, expected: pd.DataFrame) -> dict:
    """Outcome tests judged against what the found archetypes truly hold.

    A found archetype's true mean on an outcome is the mean of its members'
    expected outcomes (``TruthCohort.expected_outcomes``), so a found
    archetype that mixes planted ones, or splits one along the answers'
    common factor, is judged as the group it is.  A pair counts as equal when
    the true means differ by less than 0.2 SD (Cohen's "small"; the members'
    own draws of the common factor move a planted-equal pair's means by up to
    about 0.15), and as large when by 0.8 SD or more.
    """
    out = {"group_equal_pairs": 0, "group_equal_rejected": 0, "group_large_pairs": 0, "group_large_rejected": 0,
           "group_equal_expected": 0.0, "group_pairs": []}
    if not len(pairwise) or not len(expected):
        return out
    truly = {o: {f: float(expected[o].to_numpy()[labels == f].mean()) for f in set(labels.tolist()) - {-1}}
             for o in expected.columns}
    for p in pairwise.itertuples(index=False):
        means = truly.get(p.outcome, {})
        a, b = means.get(int(p.archetype_a)), means.get(int(p.archetype_b))
        if a is None or b is None:
            continue
        d = abs(a - b)
        z = true_z(d, float(p.se))
        out["group_pairs"].append([p.outcome, round(d, 4), round(z, 3), int(bool(p.reject))])
        kind = "equal" if d < 0.2 else "large" if d >= 0.8 else None
        if kind:
            out[f"group_{kind}_pairs"] += 1
            out[f"group_{kind}_rejected"] += bool(p.reject)
        if kind == "equal":
            out["group_equal_expected"] += uncorrected_power(z)
    return out


def true_z(difference_sd: float, se_points: float) -> float:
    """A pair's true difference over the standard error its test estimated.

    The true difference is in SD units of the outcome, the standard error in
    score points (``SCORE_POINTS_PER_SD`` of them per SD; the scores' rounding
    and their floor at 0 make that a slight overstatement).
    """
    from segment.scenarios import SCORE_POINTS_PER_SD

    return SCORE_POINTS_PER_SD * difference_sd / se_points if se_points > 0 else float("inf")


def uncorrected_power(z: float, alpha: float = 0.05) -> float:
    """Chance that a two-sided z-test at ``alpha``, with no correction for
    multiple tests, rejects a difference whose true value is ``z`` standard
    errors: an upper bound on what a test corrected within a family rejects."""
    from scipy.stats import norm

    c = norm.isf(alpha / 2)
    return float(norm.sf(c - z) + norm.cdf(-c - z))


def done_cells(path: Path) -> set:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a killed run is redone
        out.add((rec["cell"], rec["seed"]))
    return out


def run_study(names, seeds: int, jobs: int, resamples: int, path: Path, *,
              scheduler: str | None = None, plan: dict | None = None) -> int:
    """Run the (cell, seed) pairs not yet in ``path``, appending each result as it comes.

    Cells run on a local pool of ``jobs`` worker processes, or on the Dask cluster at
    ``scheduler`` (a lost worker's cell is run again elsewhere); every cell's
    numbers depend only on its scenario and seed, never on where it ran.
    Returns the number of cells run.
    """
    plan = plan or cells()
    todo = [(name, s) for s in range(max(seeds or plan[n][1] for n in names)) for name in names
            if s < (seeds or plan[name][1])]
    finished = done_cells(path)
    todo = [t for t in todo if t not in finished]
    print(f"{len(todo)} cells to run ({len(finished)} already in {path.name})", file=sys.stderr)
    tasks = [(name, plan[name][0], plan[name][2], s, resamples) for name, s in todo]
    done = 0
    with path.open("a", encoding="utf-8") as fh:
        def record(rec: dict) -> None:
            nonlocal done
            done += 1
            fh.write(json.dumps(rec, default=float) + "\n")
            fh.flush()
            print(f"[{done}/{len(todo)}] {rec['cell']} seed {rec['seed']}: {rec.get('seconds', 0):.0f} s"
                  + (f" FAILED {rec['error']}" if "error" in rec else ""), file=sys.stderr)

        _run_cells(tasks, jobs, scheduler, record)
    return len(todo)


def _run_cells(tasks: list, jobs: int, scheduler: str | None, record) -> None:
    """``record(_safe_cell(*task))`` for every task, in the order they finish.

    Locally the cells run on segment's own worker pool: a stopped or killed
    study leaves no worker behind (a worker ends with its parent).
    """
    if scheduler:
        from dask.distributed import Client, as_completed

        with Client(scheduler, timeout="10s") as client:
            futures = [client.submit(_safe_cell, *task, pure=False, retries=2) for task in tasks]
            for future in as_completed(futures):
                record(future.result())
        return
    from segment.executors import _executor

    _executor(jobs, "").run(_safe_cell, tasks, record)


def _safe_cell(name, scenario, overrides, seed, resamples):
    """One cell of the study: what the run said against the truth (a failure is recorded, not raised)."""
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(1):  # one cell per core
            row = evaluate(scenario, seed, resamples, overrides)
        row["cell"] = name
        return row
    except Exception as exc:  # noqa: BLE001 - a failed cell is recorded and the study goes on
        return {"cell": name, "seed": seed, "error": f"{type(exc).__name__}: {exc}"[:300]}


# --------------------------------------------------------------------------
# the table

def _rate(num, den):
    return f"{num}/{den} ({num / den:.0%})" if den else "–"


def _sums(values, *keys) -> tuple:
    return tuple(sum(x.get(key, 0) for x in values) for key in keys)


def _median(recs, key) -> str:
    values = [r[key] for r in recs if key in r]
    return f"{np.median(values):.2f}" if values else "–"


def _by_cell(path: Path) -> tuple[dict, list]:
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_cell: dict = {}
    for r in recs:
        if "error" not in r:
            by_cell.setdefault(r["cell"], []).append(r)
    return by_cell, [r for r in recs if "error" in r]


WELL_SEPARATED = ("sep4-n600", "sep6-n600", "sep4-n5000", "sep6-n5000")
CONTROLS = ("continuum-n600", "gaussian-n600", "copula-n600", "continuum-n5000", "gaussian-n5000", "copula-n5000")


def _recommended(run: dict, methods: tuple | None = None) -> str | None:
    """The method whose archetypes the run recommends, by the package's rule on the run's recorded verdicts
    (among ``methods`` instead of the shipped candidates, to study another rule)."""
    from segment.vocabulary import RECOMMENDABLE, recommended_method

    return recommended_method({m: run[m]["n_stable"] for m in METHODS}, {m: run[m]["k"] for m in METHODS},
                              methods or RECOMMENDABLE)


def _first_stable(order: tuple):
    """Rule: the first method of ``order`` with a stable archetype."""
    return lambda run: next((m for m in order if run[m]["n_stable"] > 0), None)


#: Rules a run could use to recommend one method's archetypes, the shipped one first.
RECOMMENDATION_RULES = (
    ("most archetypes stable, then the larger share stable, then the mixture (shipped)", _recommended),
    ("the same, K-Means included", lambda run: _recommended(run, ("gmm", "hdbscan", "kmeans"))),
    ("the mixture whenever it has a stable archetype, else HDBSCAN", _first_stable(("gmm", "hdbscan"))),
    ("HDBSCAN whenever it has a stable archetype, else the mixture", _first_stable(("hdbscan", "gmm"))),
)


def recommendation_table(path: Path) -> str:
    """Per rule of recommendation and planted cell: the median ARI of the archetypes recommended (0 where
    none is) and the share of planted archetypes that the recommended method calls stable."""
    by_cell, _ = _by_cell(path)
    planted = [c for c in cells() if c in by_cell and by_cell[c][0]["kind"] == "archetypes"]
    lines = ["| rule | " + " | ".join(planted) + " |", "|---" * (len(planted) + 1) + "|"]
    for title, rule in RECOMMENDATION_RULES:
        row = []
        for c in planted:
            rs = by_cell[c]
            chosen = [rule(r) for r in rs]
            ari = np.median([r[m]["ari"] if m else 0.0 for r, m in zip(rs, chosen)])
            stable = sum(r[m]["planted_stable"] for r, m in zip(rs, chosen) if m) / sum(r["planted_k"] for r in rs)
            row.append(f"{ari:.2f}, {stable:.0%}")
        lines.append(f"| {title} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def acceptance(path: Path, consistency_path: Path | None = None) -> str:
    """The acceptance criteria of the calibration, each with what the results measure."""
    by_cell = _with_outcome_truth(_by_cell(path)[0], path)
    rows = []

    def add(criterion, target, cell, measured, met):
        rows.append(f"| {criterion} | {cell} | {measured} | {target} | {'yes' if met else '**no**'} |")

    plan = cells()

    def seeds(c: str, rs: list) -> tuple[str, bool]:
        """The cell's name with its seeds, and whether it has the seeds the study asks of it."""
        wanted = plan[c][1]
        return (f"{c} ({len(rs)} seeds)" if len(rs) >= wanted else f"{c} ({len(rs)} of {wanted} seeds)",
                len(rs) >= wanted)

    for c in WELL_SEPARATED:
        rs = by_cell.get(c)
        if not rs:
            add("well separated: ARI of the archetypes the run recommends", "≥ 0.90", c, "not run", False)
            continue
        name, enough = seeds(c, rs)
        chosen = [_recommended(r) for r in rs]
        choices = ", ".join(f"{m or 'none'} {n}" for m, n in Counter(chosen).most_common())
        ari = float(np.median([r[m]["ari"] if m else 0.0 for r, m in zip(rs, chosen)]))
        add("well separated: ARI of the archetypes the run recommends (median; none recommended: 0)", "≥ 0.90",
            name, f"{ari:.2f} ({choices}); ceiling {_median(rs, 'oracle_ari')}", enough and ari >= 0.9)
        k_rate = np.mean([r["gmm"]["k"] == r["planted_k"] for r in rs])
        add("well separated: mixture's k = planted k", "≥ 80 %", name, f"{k_rate:.0%}", enough and k_rate >= 0.8)
        stable = (sum(r[m]["planted_stable"] for r, m in zip(rs, chosen) if m)
                  / sum(r["planted_k"] for r in rs))
        add("well separated: planted archetypes called stable (the recommended method)", "≥ 90 %", name,
            f"{stable:.0%}", enough and stable >= 0.9)
    for c in CONTROLS:
        rs = by_cell.get(c)
        if not rs:
            add("structure-free: no archetype of any method stable", "≥ 95 % of seeds", c, "not run", False)
            continue
        name, enough = seeds(c, rs)
        clean = np.mean([not any(r[m]["any_stable"] for m in METHODS) for r in rs])
        add("structure-free: no archetype of any method stable", "≥ 95 % of seeds", name, f"{clean:.0%}",
            enough and clean >= 0.95)
        rates = {m: np.mean([r[m]["structure_p"] <= 0.05 for r in rs if r[m]["structure_p"] is not None] or [0])
                 for m in METHODS}
        worst = max(rates, key=rates.get)
        add("structure-free: structure test rejects (worst method)", "≤ 5 %", name,
            f"{rates[worst]:.0%} ({worst})", enough and rates[worst] <= 0.05)
    rs = by_cell.get("hard-n600")
    if rs:
        name, enough = seeds("hard-n600", rs)
        aris = {m: float(np.median([r[m]["ari"] for r in rs])) for m in METHODS}
        best = max(aris, key=aris.get)
        add("hard: ARI of the best method (median)", "≥ 0.60", name,
            f"{aris[best]:.2f} ({best}); ceiling {_median(rs, 'oracle_ari')}", enough and aris[best] >= 0.6)
        noise = float(np.mean([r["hdbscan"]["random_to_noise"] for r in rs]))
        add("hard: HDBSCAN sends random responders to noise", "> 50 %", name, f"{noise:.0%}",
            enough and noise > 0.5)
    # outcome tests per cohort size: a difference too small to matter at n = 600 is found at n = 5,000
    planted_runs = [r for rs in by_cell.values() for r in rs if r["kind"] == "archetypes"]
    for n in sorted({r["n"] for r in planted_runs}):
        every = [r for r in planted_runs if r["n"] == n]
        judged = (("planted-equal", "planted", "", every),
                  ("truly equal", "truly", "group_", [r for r in every if "group_equal_pairs" in r[METHODS[0]]]))
        for equal, large, prefix, runs in judged:
            where = f"planted cells, n = {n:,} ({len(runs)} runs)"
            for m in (METHODS if runs else ()):
                eq = _sums([r[m] for r in runs], f"{prefix}equal_rejected", f"{prefix}equal_pairs")
                big = _sums([r[m] for r in runs], f"{prefix}large_rejected", f"{prefix}large_pairs")
                add(f"outcomes: {equal} pairs rejected ({m})", "≤ 5 %", where, _rate(*eq),
                    eq[1] and eq[0] / eq[1] <= 0.05)
                add(f"outcomes: {large} d ≥ 0.8 pairs found ({m})", "≥ 80 %", where, _rate(*big),
                    big[1] and big[0] / big[1] >= 0.8)
        # the yardstick that does not move with n: a true difference below one standard error of its test
        runs = [r for r in every if "group_pairs" in r[METHODS[0]]]
        for m in (METHODS if runs else ()):
            small = [p for r in runs for p in r[m]["group_pairs"] if abs(p[2]) < 1]
            rejected = sum(p[3] for p in small)
            add(f"outcomes: pairs truly less than one standard error apart rejected ({m})", "≤ 5 %",
                f"planted cells, n = {n:,} ({len(runs)} runs)", _rate(rejected, len(small)),
                bool(small) and rejected / len(small) <= 0.05)
    if consistency_path is not None and consistency_path.exists():
        for r in (json.loads(x) for x in consistency_path.read_text(encoding="utf-8").splitlines() if x.strip()):
            vs = list(r["verdicts"].values())
            held = sum(max(v.count(x) for x in set(v)) >= 0.9 * len(v) or _borderline(v) for v in vs)
            add("one cohort, 10 stability seeds: same verdict in ≥ 9, or borderline", "every archetype",
                f"{r['cell']} seed {r['seed']}", f"{held} of {len(vs)}", held == len(vs))
            called = sum(max(sum(x == "stable" for x in v), sum(x != "stable" for x in v)) >= 0.9 * len(v)
                         or "borderline" in v for v in vs)
            add("one cohort, 10 stability seeds: stable or not the same in ≥ 9, or borderline", "every archetype",
                f"{r['cell']} seed {r['seed']}", f"{called} of {len(vs)}", called == len(vs))
    return ("| criterion | cell | measured | target | met |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def table(path: Path) -> str:
    """The calibration tables as Markdown."""
    by_cell, failed = _by_cell(path)
    order = [c for c in cells() if c in by_cell]
    from segment.config import StabilityConfig

    stable = StabilityConfig().stable  # the shipped threshold of the mean Jaccard
    lines = ["### Planted archetypes", "",
             "| cell | seeds | observed separation (median) | ARI ceiling (median) | method | median ARI | "
             "k found (median) | k = planted | planted archetypes "
             "called stable | HDBSCAN random responders in noise | equal pairs rejected | "
             "d ≥ 0.8 pairs found | truly equal pairs rejected | truly d ≥ 0.8 pairs found | median s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    limits = ["", "### What stands between a recovered archetype and a stable verdict", "",
              "| cell | method | planted archetypes recovered (Jaccard ≥ 0.5) | found archetypes with mean "
              f"Jaccard ≥ {stable:g} | planted archetypes called stable | runs whose null reference holds a stable "
              f"archetype (a null cohort's best ≥ {stable:g}) | null cohorts with a stable archetype (all runs) |",
              "|---|---|---|---|---|---|---|"]
    for c in order:
        rs = by_cell[c]
        if rs[0]["kind"] != "archetypes":
            continue
        k = rs[0]["planted_k"]
        for m in METHODS:
            v = [r[m] for r in rs]
            noise = [x["random_to_noise"] for x in v if "random_to_noise" in x]
            called_stable = _rate(sum(x['planted_stable'] for x in v), k * len(v))
            lines.append(
                f"| {c} | {len(rs)} | {_median(rs, 'observed_separation')} | {_median(rs, 'oracle_ari')} | "
                f"{m} | {np.median([x['ari'] for x in v]):.2f} | "
                f"{np.median([x['k'] for x in v]):g} | {_rate(sum(x['k'] == k for x in v), len(v))} | "
                f"{called_stable} | "
                f"{'–' if not noise else f'{np.mean(noise):.0%}'} | "
                f"{_rate(sum(x['equal_rejected'] for x in v), sum(x['equal_pairs'] for x in v))} | "
                f"{_rate(sum(x['large_rejected'] for x in v), sum(x['large_pairs'] for x in v))} | "
                f"{_rate(*_sums(v, 'group_equal_rejected', 'group_equal_pairs'))} | "
                f"{_rate(*_sums(v, 'group_large_rejected', 'group_large_pairs'))} | "
                f"{np.median([r['seconds'] for r in rs]):.0f} |")
            jaccards = [j for x in v for j in (x.get("archetypes") or {}).get("mean_jaccard", [])]
            nulls = [np.asarray(x.get("null_best") or [], dtype=float) for x in v]
            limits.append(
                f"| {c} | {m} | {_rate(sum(x.get('planted_recovered', 0) for x in v), k * len(v))} | "
                f"{_rate(sum(j is not None and j >= stable for j in jaccards), len(jaccards))} | "
                f"{called_stable} | "
                f"{_rate(sum(bool((b >= stable).any()) for b in nulls), len(v))} | "
                f"{_rate(sum(int((b >= stable).sum()) for b in nulls), sum(len(b) for b in nulls))} |")
    lines += limits
    lines += ["", outcome_truth_table(_with_outcome_truth(by_cell, path))]
    lines += ["", "### Structure-free controls", "",
              "| cell | seeds | method | seeds with an archetype called stable | structure test rejects "
              "(α = 0.05) | k found (median) | median s |",
              "|---|---|---|---|---|---|---|"]
    for c in order:
        rs = by_cell[c]
        if rs[0]["kind"] == "archetypes":
            continue
        for m in METHODS:
            v = [r[m] for r in rs]
            ps = [x["structure_p"] for x in v if x["structure_p"] is not None]
            lines.append(f"| {c} | {len(rs)} | {m} | {_rate(sum(x['any_stable'] for x in v), len(v))} | "
                         f"{_rate(sum(p <= 0.05 for p in ps), len(ps))} | {np.median([x['k'] for x in v]):g} | "
                         f"{np.median([r['seconds'] for r in rs]):.0f} |")
        lines.append(f"| {c} | {len(rs)} | any method | "
                     f"{_rate(sum(any(r[m]['any_stable'] for m in METHODS) for r in rs), len(rs))} | | | |")
    if failed:
        lines += ["", f"{len(failed)} cell(s) failed: " + "; ".join(f"{r['cell']} seed {r['seed']}: {r['error']}"
                                                                    for r in failed[:5])]
    return "\n".join(lines) + "\n"


def outcome_truth_table(by_cell: dict) -> str:
    """Outcome tests of the planted cells against every pair's true difference.

    Per cohort size and method, over the runs that know each pair's true
    difference: how often the pairwise test rejects pairs that are truly
    equal (less than 0.2 SD apart) and pairs whose true difference is below
    one standard error of the test, beside how many of them a two-sided test
    at α = 0.05 *without* correction would reject given those true
    differences (the expected count; a test corrected within a family
    rejects fewer if it is calibrated).
    """
    lines = ["### Outcome tests against the true differences", "",
             "| cohort size | method | runs | truly equal pairs (< 0.2 SD): rejected | the same, expected of an "
             "uncorrected test | pairs below one standard error: rejected | the same, expected of an uncorrected "
             "test | pairs 0.2 SD apart or more: rejected |",
             "|---|---|---|---|---|---|---|---|"]
    runs = [r for rs in by_cell.values() for r in rs if r["kind"] == "archetypes" and "group_pairs" in r[METHODS[0]]]
    if not runs:
        return lines[0] + "\n\nNo run records its pairs' true differences yet (`--outcome-truth`).\n"
    for n in sorted({r["n"] for r in runs}):
        sized = [r for r in runs if r["n"] == n]
        for m in METHODS:
            pairs = [p for r in sized for p in r[m]["group_pairs"]]  # [outcome, |difference|, true z, rejected]
            equal = [p for p in pairs if p[1] < 0.2]
            small = [p for p in pairs if abs(p[2]) < 1]
            apart = [p for p in pairs if p[1] >= 0.2]
            lines.append(
                f"| {n:,} | {m} | {len(sized)} | {_rate(sum(p[3] for p in equal), len(equal))} | "
                f"{sum(uncorrected_power(p[2]) for p in equal):.1f} | {_rate(sum(p[3] for p in small), len(small))} | "
                f"{sum(uncorrected_power(p[2]) for p in small):.1f} | {_rate(sum(p[3] for p in apart), len(apart))} |")
    return "\n".join(lines) + "\n"


CONSISTENCY = ROOT / "bench" / "consistency.jsonl"
#: Earlier studies of the same cells under earlier null references, each beside the study that replaced
#: it: (title, name of the earlier null, name of the later one, earlier results, later results).
NULL_HISTORY = (
    ("copula against unimodal copula", "copula", "unimodal",
     ROOT / "bench" / "calibration-copula-null.jsonl", ROOT / "bench" / "calibration-uncorrected-null.jsonl"),
    ("the unimodal copula before and after its corrections", "uncorrected", "corrected",
     ROOT / "bench" / "calibration-uncorrected-null.jsonl", RESULTS),
)


def null_comparison(previous: Path, current: Path, before: str = "before", after: str = "after") -> str:
    """Two null references side by side, on the (cell, seed) pairs both studies ran.

    For planted cells: planted archetypes called stable, and the null cohorts
    whose best archetype reaches the stable threshold; for the controls: seeds
    with an archetype called stable, and the structure test's rejections.
    """
    from segment.config import StabilityConfig

    stable = StabilityConfig().stable
    arrow = f"{before} → {after}"
    lines = [f"| cell | seeds | method | planted archetypes called stable: {arrow} | null cohorts with "
             f"a stable archetype (best ≥ {stable:g}): {arrow} | seeds with an archetype called stable: "
             f"{arrow} | structure test rejects (α = 0.05): {arrow} |",
             "|---|---|---|---|---|---|---|"]

    def columns(v, recs, planted):
        if planted:
            return (_rate(sum(x["planted_stable"] for x in v), sum(r["planted_k"] for r in recs)),
                    _null_stable(v, stable), "–", "–")
        ps = [x["structure_p"] for x in v if x["structure_p"] is not None]
        return "–", "–", _rate(sum(x["any_stable"] for x in v), len(v)), _rate(sum(p <= 0.05 for p in ps), len(ps))

    return "\n".join(lines + _paired_rows(previous, current, columns)) + "\n"


def _paired_rows(first: Path, second: Path, columns) -> list[str]:
    """Table rows ``cell | seeds | method | first → second ...`` on the seeds both studies ran;
    ``columns(runs of a method, runs, planted)`` gives one study's cells."""
    rows = []
    for c, seeds, pair in _on_common_seeds(first, second):
        planted = pair[0][0]["kind"] == "archetypes"
        for m in METHODS:
            cols = [columns([r[m] for r in recs], recs, planted) for recs in pair]
            rows.append(f"| {c} | {len(seeds)} | {m} | {_arrows(*cols)} |")
    return rows


def _on_common_seeds(first: Path, second: Path):
    """``(cell, seeds, (first's runs, second's runs))`` for every cell both studies ran, on the seeds both ran."""
    first_runs, _ = _by_cell(first)
    second_runs, _ = _by_cell(second)
    for c in [c for c in cells() if c in first_runs and c in second_runs]:
        seeds = sorted({r["seed"] for r in first_runs[c]} & {r["seed"] for r in second_runs[c]})
        yield c, seeds, [[r for r in recs if r["seed"] in seeds] for recs in (first_runs[c], second_runs[c])]


def _null_stable(method_results: list, stable: float) -> str:
    """How many of the runs' null cohorts had a best archetype at or above ``stable``."""
    nulls = [np.asarray(x.get("null_best") or [], dtype=float) for x in method_results]
    return _rate(sum(int((b >= stable).sum()) for b in nulls), sum(len(b) for b in nulls))


def _arrows(before: tuple, after: tuple) -> str:
    """Table cells ``before → after``; a column that applies to neither ("–") stays a dash."""
    return " | ".join(a if a == b == "–" else f"{a} → {b}" for a, b in zip(before, after))


#: Studies of another rule than the shipped default, run with ``--set`` on some cells and seeds:
#: (title, results). Each is set beside the shipped default on the (cell, seed) pairs both ran.
RULES = (
    ("the mixture in 8 principal components with 10 EM starts",
     ROOT / "bench" / "calibration-mixture-8pcs-10starts.jsonl"),
    ("UMAP's layout in 100 epochs", ROOT / "bench" / "calibration-100-epochs.jsonl"),
    ("stability from 100 resamples", ROOT / "bench" / "calibration-100-resamples.jsonl"),
)


def rule_comparison(default: Path, rule: Path) -> str:
    """A rule's study beside the shipped default's, cell by cell, on the seeds both ran."""
    from segment.config import StabilityConfig

    stable = StabilityConfig().stable
    lines = ["| cell | seeds | method | median ARI | k = planted | planted archetypes called stable | "
             f"null cohorts with a stable archetype (best ≥ {stable:g}) | random responders in noise (mean) | "
             "seeds with an archetype called stable | structure test rejects (α = 0.05) | median s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def columns(v, recs, planted):
        ps = [x["structure_p"] for x in v if x["structure_p"] is not None]
        noise = [x["random_to_noise"] for x in v if "random_to_noise" in x]
        return (f"{np.median([x['ari'] for x in v]):.2f}" if planted else "–",
                _rate(sum(x["k"] == r["planted_k"] for x, r in zip(v, recs)), len(v)) if planted else "–",
                _rate(sum(x["planted_stable"] for x in v), sum(r["planted_k"] for r in recs)) if planted else "–",
                _null_stable(v, stable) if planted else "–",
                f"{np.mean(noise):.2f}" if noise else "–",
                "–" if planted else _rate(sum(x["any_stable"] for x in v), len(v)),
                "–" if planted else _rate(sum(p <= 0.05 for p in ps), len(ps)),
                f"{np.median([r['seconds'] for r in recs]):.0f}")

    return "\n".join(lines + _paired_rows(default, rule, columns)) + "\n"


def consistency(name: str, seed: int, stability_seeds: int, resamples: int) -> dict:
    """One fitted cohort, its stability analysed with ``stability_seeds`` different seeds:
    the verdict of every archetype under each.  ``name`` is a cell of the study, or
    ``smmh`` for the bundled cohort as ``experiments/smmh.toml`` analyses it."""
    from segment.config import load_config
    from segment.experiment import load_experiment_cohort, select_features
    from segment.pipeline import fit_segmentation
    from segment.scenarios import make_cohort
    from segment.stability import bootstrap_stability

    folder = Path(tempfile.mkdtemp(prefix="segment-consistency-"))
    try:
        settings = {"stability.resamples": resamples, "stability.n_jobs": 1}
        if name == "smmh":
            config = load_config(ROOT / "experiments" / "smmh.toml", settings)
        else:
            scenario, _, overrides = cells()[name]
            make_cohort(scenario, seed).write(folder, "cohort")
            (folder / "experiment.toml").write_text(EXPERIMENT.format(seed=seed, resamples=resamples))
            config = load_config(folder / "experiment.toml", {**overrides, **settings})
        cohort, _ = load_experiment_cohort(config)
        features, _ = select_features(cohort, config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original = fit_segmentation(features, cohort.codebook, config, np.random.SeedSequence(seed, spawn_key=(0,)))
            verdicts: dict = {}
            numbers: dict = {}
            for s in range(stability_seeds):
                res = bootstrap_stability(features, cohort.codebook, config,
                                          np.random.SeedSequence(seed, spawn_key=(100 + s,)),
                                          original=original, n_jobs=1)
                for r in res.stability.itertuples(index=False):
                    if r.method in METHODS:
                        key = f"{r.method}:{r.archetype}"
                        verdicts.setdefault(key, []).append(r.verdict)
                        # the numbers behind each verdict, so that other rules can be scored offline
                        for column in ("mean_jaccard", "mean_jaccard_se", "null_reference", "p_value"):
                            value = float(getattr(r, column))
                            numbers.setdefault(column, {}).setdefault(key, []).append(
                                None if np.isnan(value) else round(value, 4))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"cell": name, "seed": seed, "stability_seeds": stability_seeds, "verdicts": verdicts, **numbers}


def _borderline(verdicts: list) -> bool:
    """Whether one of an archetype's verdicts says it is near a threshold (borderline or borderline dissolved)."""
    return any(v.startswith("borderline") for v in verdicts)


def consistency_table(path: Path) -> str:
    """How often an archetype's verdict holds over stability seeds."""
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = ["| cohort | archetypes | same verdict in ≥ 9 of 10 seeds | otherwise borderline at least once | "
             "flips stable ↔ weak/dissolved with no borderline |", "|---|---|---|---|---|"]
    for r in recs:
        vs = list(r["verdicts"].values())
        same = sum(max(v.count(x) for x in set(v)) >= 0.9 * len(v) for v in vs)
        unsure = [v for v in vs if max(v.count(x) for x in set(v)) < 0.9 * len(v)]
        border = sum(_borderline(v) for v in unsure)
        flips = sum("borderline" not in v and "stable" in v and len(set(v)) > 1 for v in unsure)
        lines.append(f"| {r['cell']} seed {r['seed']} | {len(vs)} | {same} | {border} | {flips} |")
    return "\n".join(lines) + "\n"


def cost(path: Path) -> str:
    """What the study's runs cost: their number and summed wall time, per cohort size."""
    by_cell, _ = _by_cell(path)
    lines = ["| respondents | runs | summed wall time of the runs | median per run |", "|---|---|---|---|"]
    for n in sorted({r["n"] for rs in by_cell.values() for r in rs}):
        secs = [r["seconds"] for rs in by_cell.values() for r in rs if r["n"] == n and "seconds" in r]
        lines.append(f"| {n:,} | {len(secs)} | {sum(secs) / 3600:.1f} h | {np.median(secs) / 60:.1f} min |")
    return ("\n".join(lines) + "\n\nEach run is single threaded and two ran at once on 2 cores, so the study "
            "took about half the summed time.\n")


def docs_block(results: Path = RESULTS, consistency_path: Path = CONSISTENCY) -> str:
    """Everything docs/validation.md shows of the study: acceptance, the tables, the consistency study."""
    text = "### Acceptance\n\n" + acceptance(results, consistency_path) + "\n" + table(results)
    text += ("\n### Which archetypes a run recommends\n\nEach cell: the median ARI of the archetypes the rule "
             "recommends (0 when it recommends none), and the share of planted archetypes the recommended method "
             "calls stable.\n\n" + recommendation_table(results))
    text += "\n### What the study cost\n\n" + cost(results)
    if consistency_path.exists():
        text += "\n### The same cohort, ten stability seeds\n\n" + consistency_table(consistency_path)
    if results == RESULTS:
        for title, rule in RULES:
            if rule.exists():
                text += (f"\n### Another rule: {title}\n\nShipped default → this rule, on the seeds both "
                         f"ran (`{rule.relative_to(ROOT)}`).\n\n" + rule_comparison(results, rule))
        for title, before, after, earlier, later in NULL_HISTORY:
            if earlier.exists() and later.exists():
                text += f"\n### The null reference: {title}\n\n" + null_comparison(earlier, later, before, after)
    return text


def rewrite_block(text: str, block: str, start: str = START, end: str = END) -> str:
    """``text`` with the generated block between the markers ``start`` and ``end`` replaced."""
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def show_table(text: str, start: str, end: str, docs: bool) -> int:
    """Print a generated table and, with ``docs``, write it into docs/validation.md between its markers."""
    if docs:
        DOCS.write_text(rewrite_block(DOCS.read_text(encoding="utf-8"), text, start, end), encoding="utf-8")
    print(text)
    return 0


def _setting(text: str, parser) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--set``, the value read as TOML (a number, a string in quotes, a list)."""
    import tomllib

    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key.strip(), tomllib.loads(f"v = {value.strip()}")["v"]
    except (ValueError, tomllib.TOMLDecodeError):
        parser.error(f"--set {text!r}: expected KEY=VALUE with a TOML value, e.g. cluster.gmm.n_init=10")


def _check_settings(settings: dict, parser) -> None:
    """Refuse, before any cell runs, settings the config would refuse in every cell."""
    from segment.config import ExperimentConfig, validate
    from segment.errors import ConfigError

    try:
        validate(ExperimentConfig().replace(settings))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        parser.error(f"--set: {exc}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", help="cells to run (default: all)")
    parser.add_argument("--seeds", type=int, default=0, help="seeds per cell (default: the study's)")
    parser.add_argument("--jobs", type=int, default=2, help="cells run at once")
    parser.add_argument("--scheduler", help="run the cells on this Dask scheduler (tcp://host:port) instead")
    parser.add_argument("--resamples", type=int, default=STUDY_RESAMPLES, help="stability resamples per run")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting other than the shipped default for every cell (e.g. "
                             "cluster.gmm.n_init=10); needs its own --results file")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of the results")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/validation.md")
    parser.add_argument("--ceiling", action="store_true",
                        help="add the observed separation and the ARI ceiling to results that lack them")
    parser.add_argument("--outcome-truth", action="store_true",
                        help="recompute, without resampling, every pair's true difference for the planted runs "
                             "that lack it (appended to calibration-outcome-truth.jsonl beside the results)")
    parser.add_argument("--consistency", nargs=2, metavar=("CELL", "SEED"),
                        help="the verdicts of one cohort over 10 stability seeds, appended to "
                             "bench/consistency.jsonl")
    args = parser.parse_args(argv)
    if args.consistency:
        rec = consistency(args.consistency[0], int(args.consistency[1]), 10, args.resamples)
        with CONSISTENCY.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        return 0
    if args.ceiling:
        backfill_ceiling(args.results)
        return 0
    if args.outcome_truth:
        backfill_outcome_truth(args.results)
        return 0
    if args.table or args.docs:
        return show_table(docs_block(args.results), START, END, args.docs)
    names = args.cells or list(cells())
    unknown = [c for c in names if c not in cells()]
    if unknown:
        parser.error(f"unknown cell(s) {unknown}; known: {', '.join(cells())}")
    plan = cells()
    if (args.set or args.resamples != STUDY_RESAMPLES) and args.results.resolve() == RESULTS.resolve():
        parser.error("--set or --resamples runs another rule than the study's: give it its own --results file")
    if args.set:
        settings = dict(_setting(text, parser) for text in args.set)
        _check_settings(settings, parser)
        plan = {name: (scenario, n, {**overrides, **settings}) for name, (scenario, n, overrides) in plan.items()}
    run_study(names, args.seeds, args.jobs, args.resamples, args.results, scheduler=args.scheduler, plan=plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Listing run directories and comparing two runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cluster import agreement
from .errors import SegmentError
from .rundir import ASSIGNMENTS_FILE, MANIFEST_FILE, METRICS_FILE, read_json
from .vocabulary import ASSIGNMENT_COLUMNS


def _stability_figures(run_dir: Path) -> dict:
    path = run_dir / "stability.csv"
    if not path.exists():
        return {"min_stability": float("nan"), "n_stable": None}
    table = pd.read_csv(path)
    h = table[table["method"] == "hdbscan"]
    return {"min_stability": float(h["mean_jaccard"].min()) if len(h) else float("nan"),
            "n_stable": int((h["verdict"] == "stable").sum()) if len(h) else 0}


def list_runs(root: str | Path = "reports") -> pd.DataFrame:
    """Every complete run directory under ``root`` with its key figures.

    Returns
    -------
    DataFrame
        ``run, created, experiment, n_analysed, hdbscan_archetypes,
        noise_share, gmm_k, min_stability, n_stable, wall_seconds, status``,
        newest first; a run whose files cannot be read is listed last with
        ``status`` saying why.
    """
    root = Path(root)
    if not root.is_dir():
        raise SegmentError(f"no such folder: {root}")
    rows = []
    for manifest_path in sorted(root.rglob(MANIFEST_FILE)):
        run = manifest_path.parent
        if any(part.startswith(".") for part in run.relative_to(root).parts):
            continue  # an unfinished run
        try:
            manifest = read_json(manifest_path)
            metrics = read_json(run / METRICS_FILE)
            if not isinstance(manifest, dict) or not isinstance(metrics, dict):
                raise SegmentError("manifest.json or metrics.json does not hold a table")
            row = _run_row(root, run, manifest, metrics)
        except (SegmentError, OSError, UnicodeDecodeError, AttributeError, ValueError, KeyError) as exc:
            row = {"run": str(run.relative_to(root)), "status": f"unreadable: {exc}"}
        rows.append(row)
    columns = ["run", "created", "experiment", "n_analysed", "hdbscan_archetypes", "noise_share",
               "gmm_k", "min_stability", "n_stable", "wall_seconds", "status"]
    return pd.DataFrame(rows, columns=columns).sort_values("created", ascending=False, ignore_index=True,
                                                           na_position="last")


def _run_row(root: Path, run: Path, manifest: dict, metrics: dict) -> dict:
    return {
        "run": str(run.relative_to(root)), "created": manifest.get("created"),
        "experiment": manifest.get("config", {}).get("experiment", {}).get("name"),
        "n_analysed": metrics.get("cohort", {}).get("n_analysed"),
        "hdbscan_archetypes": metrics.get("hdbscan", {}).get("n_archetypes"),
        "noise_share": metrics.get("hdbscan", {}).get("noise_share"),
        "gmm_k": metrics.get("gmm", {}).get("k"),
        **_stability_figures(run),
        "wall_seconds": manifest.get("wall_seconds"),
        "status": "ok",
    }


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _assignments(run_dir: Path) -> pd.DataFrame:
    path = run_dir / ASSIGNMENTS_FILE
    if not path.is_file():
        raise SegmentError(f"{run_dir} has no assignments.csv: its respondents cannot be compared.")
    table = pd.read_csv(path, dtype={"respondent": str})
    return table.set_index(table.columns[0])


def _has_ids(inputs: dict, assignments: pd.DataFrame) -> bool:
    """Whether a run's respondents carry ids from an id column (not row numbers)."""
    if "id_column" in inputs:
        return bool(inputs["id_column"])
    rows = [str(i) for i in range(1, len(assignments) + 1)]  # runs that did not record it
    return list(assignments.index) != rows


def _match_respondents(ma: dict, mb: dict, la: pd.DataFrame, lb: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """How the two runs' respondents correspond, and the ids analysed in both.

    Respondent ids are matched when both codebooks name an id column.
    Without one, respondents are numbered by row, and rows correspond only
    when both runs read the same file.
    """
    ia, ib = ma.get("input", {}), mb.get("input", {})
    by_id = _has_ids(ia, la) and _has_ids(ib, lb)
    same_file = bool(ia.get("sha256")) and ia.get("sha256") == ib.get("sha256")
    if by_id:
        matched_by = "respondent id"
    elif same_file:
        matched_by = "row (no id column; both runs read the same file)"
    else:
        matched_by = "none"
    only_a = la.index.difference(lb.index)
    only_b = lb.index.difference(la.index)
    if matched_by == "none":
        note = ("respondents cannot be matched: the codebook names no id column (role \"id\") and the two "
                "runs read different files, so row numbers do not identify the same respondent; no agreement "
                "is computed.")
        shared = la.index[:0]
        n_both = 0
    else:
        both = la.index.intersection(lb.index)
        shared = both[(~la.loc[both, "excluded"].astype(bool)) & (~lb.loc[both, "excluded"].astype(bool))]
        n_both = len(both)
        note = ("the cohorts differ: agreement is computed on the respondents in both."
                if len(only_a) or len(only_b) else "the same respondents.")
    cohorts = pd.DataFrame([{"matched_by": matched_by, "n_a": len(la), "n_b": len(lb), "n_in_both": n_both,
                             "n_only_in_a": len(only_a) if matched_by != "none" else None,
                             "n_only_in_b": len(only_b) if matched_by != "none" else None,
                             "n_compared": len(shared), "note": note}])
    return cohorts, shared


def compare_runs(a: str | Path, b: str | Path) -> dict:
    """Compare two runs: parameters, archetypes, stability and profiles.

    Returns
    -------
    dict of DataFrame
        ``parameters`` (keys whose values differ), ``cohorts`` (how
        respondents were matched: by respondent id, or by row when the
        codebook names no id column and both runs read the same file; how
        many are in both runs and in one only), ``agreement`` (ARI and AMI
        between the two runs' labels per method, on the matched respondents
        analysed in both), ``stability`` (mean Jaccard per
        archetype side by side, when both runs assessed it) and ``profiles``
        (omnibus effect sizes per method, outcome and test side by side).
    """
    a, b = Path(a), Path(b)
    ma, mb = read_json(a / MANIFEST_FILE), read_json(b / MANIFEST_FILE)
    fa, fb = _flat(ma.get("config", {})), _flat(mb.get("config", {}))
    params = pd.DataFrame(
        [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)],
        columns=["key", "a", "b"])
    if ma.get("input", {}).get("sha256") != mb.get("input", {}).get("sha256"):
        params.loc[len(params)] = ["input.sha256", ma["input"]["sha256"], mb["input"]["sha256"]]

    la, lb = _assignments(a), _assignments(b)
    cohorts, shared = _match_respondents(ma, mb, la, lb)
    rows = []
    for method, col in ASSIGNMENT_COLUMNS.items():
        if col in la and col in lb and len(shared):
            res = agreement(la.loc[shared, col].to_numpy(int), lb.loc[shared, col].to_numpy(int))
            rows.append({"method": method, **res, "n_shared": int(len(shared))})
    out = {"parameters": params, "cohorts": cohorts,
           "agreement": pd.DataFrame(rows, columns=["method", "ari", "ami", "n_shared"])}

    if (a / "stability.csv").exists() and (b / "stability.csv").exists():
        sa, sb = pd.read_csv(a / "stability.csv"), pd.read_csv(b / "stability.csv")
        keep = ["method", "archetype", "mean_jaccard", "verdict"]
        out["stability"] = sa[keep].merge(sb[keep], on=["method", "archetype"], how="outer", suffixes=("_a", "_b"))
    if (a / "tests.csv").exists() and (b / "tests.csv").exists():
        ta, tb = pd.read_csv(a / "tests.csv"), pd.read_csv(b / "tests.csv")
        keep = ["method", "outcome", "test", "subset", "effect_size_name", "effect_size", "p_value"]
        out["profiles"] = ta[keep].merge(tb[keep], on=keep[:5], how="outer", suffixes=("_a", "_b"))
    return out

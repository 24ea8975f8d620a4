"""Listing run directories and comparing two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .cluster import agreement
from .errors import SegmentError


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentError(f"{path.parent} is not a run directory: it has no {path.name}.") from None
    except json.JSONDecodeError as exc:
        raise SegmentError(f"{path}: not valid JSON ({exc}).") from None


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
    for manifest_path in sorted(root.rglob("manifest.json")):
        run = manifest_path.parent
        if any(part.startswith(".") for part in run.relative_to(root).parts):
            continue  # an unfinished run
        try:
            manifest = _read_json(manifest_path)
            metrics = _read_json(run / "metrics.json")
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


def compare_runs(a: str | Path, b: str | Path) -> dict:
    """Compare two runs: parameters, archetypes, stability and profiles.

    Returns
    -------
    dict of DataFrame
        ``parameters`` (keys whose values differ), ``agreement`` (ARI and AMI
        between the two runs' labels per method, on respondents analysed in
        both and not noise in either), ``stability`` (mean Jaccard per
        archetype side by side, when both runs assessed it) and ``profiles``
        (omnibus effect sizes per method, outcome and test side by side).
    """
    a, b = Path(a), Path(b)
    ma, mb = _read_json(a / "manifest.json"), _read_json(b / "manifest.json")
    fa, fb = _flat(ma.get("config", {})), _flat(mb.get("config", {}))
    params = pd.DataFrame(
        [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)],
        columns=["key", "a", "b"])
    if ma.get("input", {}).get("sha256") != mb.get("input", {}).get("sha256"):
        params.loc[len(params)] = ["input.sha256", ma["input"]["sha256"], mb["input"]["sha256"]]

    la = pd.read_csv(a / "assignments.csv", index_col=0)
    lb = pd.read_csv(b / "assignments.csv", index_col=0)
    shared = la.index.intersection(lb.index)
    shared = shared[(~la.loc[shared, "excluded"]) & (~lb.loc[shared, "excluded"])]
    rows = []
    for method, col in (("hdbscan", "hdbscan_label"), ("gmm", "gmm_component"), ("kmeans", "kmeans_cluster")):
        if col in la and col in lb:
            res = agreement(la.loc[shared, col].to_numpy(int), lb.loc[shared, col].to_numpy(int))
            rows.append({"method": method, **res, "n_shared": int(len(shared))})
    out = {"parameters": params, "agreement": pd.DataFrame(rows)}

    if (a / "stability.csv").exists() and (b / "stability.csv").exists():
        sa, sb = pd.read_csv(a / "stability.csv"), pd.read_csv(b / "stability.csv")
        keep = ["method", "archetype", "mean_jaccard", "verdict"]
        out["stability"] = sa[keep].merge(sb[keep], on=["method", "archetype"], how="outer", suffixes=("_a", "_b"))
    if (a / "tests.csv").exists() and (b / "tests.csv").exists():
        ta, tb = pd.read_csv(a / "tests.csv"), pd.read_csv(b / "tests.csv")
        keep = ["method", "outcome", "test", "subset", "effect_size_name", "effect_size", "p_value"]
        out["profiles"] = ta[keep].merge(tb[keep], on=keep[:5], how="outer", suffixes=("_a", "_b"))
    return out

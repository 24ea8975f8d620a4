"""Matching the archetypes of the original fit to the clusters of a resample.

Each original archetype is matched, as in Hennig's ``fpc::clusterboot``, to
the most similar cluster of the resample by the Jaccard similarity computed
on the respondents present in both; noise (-1) is not a cluster.  From the
matches come the per-archetype summaries, the per-respondent stability and
the per-resample agreement of a stability analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cluster import NOISE, agreement
from .vocabulary import REFITS
from .vocabulary import STABILITY_METHODS as METHODS


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


def _original_labels(seg, fixed_labels=None) -> dict:
    out = {m: seg.labels(REFITS[m]) for m in METHODS}
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

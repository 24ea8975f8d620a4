"""Checkpoints of a stability analysis, and resuming from them.

Every finished refit is saved to one ``.npz`` file in ``<folder>/checkpoints``
as it arrives, beside a fingerprint of what shaped the refits.  A run of the
same analysis in that folder loads them and plans only the refits missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SegmentError
from .matching import METHODS

CHECKPOINT_DIR = "checkpoints"
FINGERPRINT_FILE = "fingerprint.json"
FORMAT_VERSION = 1


def _frame_sha(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(json.dumps([str(i) for i in frame.index]).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return h.hexdigest()


def fingerprint(config, features: pd.DataFrame, seed: np.random.SeedSequence, cohort_sha: str = "") -> dict:
    """What must match for checkpoints to be reused: the settings that shape a
    refit, the seed, and the respondents' answers (not n_jobs or scheduler)."""
    cfg = config.to_dict()
    stab = {k: v for k, v in cfg["stability"].items()
            if k in ("resamples", "scheme", "fraction", "null_resamples", "null_cohorts", "null",
                     "precompute_knn")}
    shaped = {"features": cfg["features"], "reduce": cfg["reduce"], "cluster": cfg["cluster"],
              "stability": stab, "seed": [int(seed.entropy), list(map(int, seed.spawn_key))]}
    text = json.dumps(shaped, sort_keys=True, default=str)
    return {"format": FORMAT_VERSION,
            "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "features_sha256": _frame_sha(features), "cohort_sha256": cohort_sha or ""}


class _Checkpoints:
    """One ``.npz`` per finished resample in ``<folder>/checkpoints``."""

    def __init__(self, folder, stamp: dict):
        self.folder = None if folder is None else Path(folder)
        if self.folder is None:
            return
        self.dir = self.folder / CHECKPOINT_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / FINGERPRINT_FILE
        if path.exists():
            found = json.loads(path.read_text(encoding="utf-8"))
            diff = [k for k in stamp if found.get(k) != stamp[k]]
            if diff:
                raise SegmentError(
                    f"the checkpoints in {self.dir} were made with a different "
                    f"{' and '.join(d.replace('_sha256', '') for d in diff)} (fingerprint mismatch): they "
                    "cannot be reused. Resume with the same experiment and cohort, or start a fresh run."
                )
        else:
            path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def _name(kind, cohort, b):
        if kind == "null_fit":
            return f"null{cohort}_fit.npz"
        return f"resample_{b:04d}.npz" if kind == "resample" else f"null{cohort}_resample_{b:04d}.npz"

    def load(self, kind, cohort, b, ids) -> dict | None:
        if self.folder is None:
            return None
        path = self.dir / self._name(kind, cohort, b)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                labels = {m: z[m].astype(np.int64) for m in METHODS if m in z.files}
                drawn_ids = z["ids"].tolist()
                drawn = z["drawn"].astype(np.int64)
        except Exception:  # noqa: BLE001 - a torn file is redone
            return None
        if [str(ids[i]) for i in drawn] != drawn_ids:
            raise SegmentError(f"checkpoint {path} holds other respondents than this cohort; start a fresh run.")
        return {**meta, "drawn": drawn, "labels": labels}

    def save(self, res: dict, ids) -> None:
        if self.folder is None:
            return
        path = self.dir / self._name(res["kind"], res["cohort"], res["resample"])
        meta = {k: res[k] for k in ("kind", "cohort", "resample", "status", "reason", "selected_k",
                                    "covariance_type", "seconds")}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), drawn=res["drawn"],
                 ids=np.array([str(ids[i]) for i in res["drawn"]]),
                 **{m: v for m, v in res["labels"].items()})
        os.replace(tmp, path)


def _after_checkpoint(n_done: int, n_total: int) -> None:
    """Called after every finished resample (a seam for tests and progress)."""



class _Tasks:
    """The refits of one analysis, planned around its checkpoints.

    The refits already checkpointed are loaded, the others make up
    ``todo``: tuples of arguments of ``segment.stability._task``.  Each
    result is checkpointed as it arrives (:meth:`on_result`), and the fit of
    a null cohort plans that cohort's resamples.

    Attributes
    ----------
    results : dict
        Finished resamples by ``(kind, cohort, resample)``.
    null_fits : dict
        The own fit of every null cohort that finished, by cohort.
    reused : int
        Resamples of the cohort loaded from checkpoints.
    """

    def __init__(self, ctx, checkpoints: _Checkpoints, tick=None):
        s = ctx.config.stability
        self.ctx, self.checkpoints, self.ids = ctx, checkpoints, ctx.features.index
        self.B, self.null_resamples = int(s.resamples), s.null_resamples
        self.null_cohorts = int(getattr(s, "null_cohorts", 1)) if s.null_resamples else 0
        self.total = self.B + self.null_cohorts * (1 + self.null_resamples)
        self.planned = self.B + self.null_cohorts * self.null_resamples  # resamples, without the null fits
        self.tick = tick or (lambda done, total: None)
        self.results: dict = {}
        self.null_fits: dict = {}
        self.todo = self._plan()

    def _plan(self) -> list:
        todo = []
        for b in range(self.B):
            got = self.checkpoints.load("resample", 0, b, self.ids)
            if got is None:
                todo.append((self.ctx, "resample", 0, b))
            else:
                self.results[("resample", 0, b)] = got
        self.reused = len(self.results)
        for c in range(self.null_cohorts):
            got = self.checkpoints.load("null_fit", c, -1, self.ids)
            if got is None:
                todo.insert(c, (self.ctx, "null_fit", c, -1))
            else:
                self.null_fits[c] = got
        self.done = self.reused + len(self.null_fits)
        for c, fit in sorted(self.null_fits.items()):
            if fit["status"] == "ok":
                todo += self._null_tasks(c, fit)
        return todo

    def _null_tasks(self, c: int, fit: dict) -> list:
        """The resamples of null cohort ``c`` not checkpointed yet; they refit
        the mixture its own fit selected."""
        null_model = (fit["selected_k"], fit["covariance_type"] or None)
        out = []
        for b in range(self.null_resamples):
            got = self.checkpoints.load("null", c, b, self.ids)
            if got is None:
                out.append((self.ctx, "null", c, b, null_model))
            else:
                self.results[("null", c, b)] = got
                self.done += 1
        return out

    def on_result(self, res: dict) -> list:
        """Record and checkpoint a finished refit; returns the tasks it makes possible."""
        self.done += 1
        if res["kind"] == "null_fit":
            self.null_fits[res["cohort"]] = res
        else:
            self.results[(res["kind"], res["cohort"], res["resample"])] = res
        self.checkpoints.save(res, self.ids)
        _after_checkpoint(self.done, self.total)
        self.tick(self.done, self.total)
        if res["kind"] == "null_fit" and res["status"] == "ok":
            return self._null_tasks(res["cohort"], res)
        return []

    @property
    def kept(self) -> int:
        """Resamples finished so far (loaded or run)."""
        return sum(1 for k in self.results if k[0] in ("resample", "null"))

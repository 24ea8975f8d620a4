"""Shared fixtures: small synthetic cohorts written as real survey files."""

from __future__ import annotations

import os

# pytest runs one process per core: BLAS and OpenMP threads in each would fight
# over the cores (K-Means and the mixture run several times slower than on one thread).
# The variables reach libraries loaded later and the subprocesses tests start.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from segment.synthetic import experiment_toml, planted_cohort  # noqa: E402

SMMH = Path(__file__).resolve().parents[1] / "surveys" / "smmh"


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_process():
    """The libraries loaded before the variables above were set get one thread too."""
    with threadpool_limits(1):
        yield


@pytest.fixture
def make_study(tmp_path):
    """Write a synthetic cohort, its codebook and an experiment; return the experiment path.

    Keyword arguments go to :func:`segment.synthetic.planted_cohort`; ``extra``
    is appended to the experiment file; ``answers`` (a callable) may edit
    the answer frame before it is written.
    """

    def make(extra: str = "", answers=None, name: str = "study", **kwargs):
        cohort = planted_cohort(**{"n": 150, **kwargs})
        if answers is not None:
            answers(cohort.answers)
        folder = tmp_path / name
        csv, codebook = cohort.write(folder, "cohort")
        experiment = folder / "experiment.toml"
        experiment.write_text(experiment_toml(csv.name, codebook.name, "runs", extra=extra))
        make.cohort = cohort
        return experiment

    return make


def run_dirs(experiment: Path) -> list[Path]:
    """Completed run directories of an experiment (hidden working folders excluded)."""
    root = experiment.parent / "runs"
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")) if root.exists() else []


def all_entries(experiment: Path) -> list[Path]:
    root = experiment.parent / "runs"
    return sorted(root.rglob("*")) if root.exists() else []


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")

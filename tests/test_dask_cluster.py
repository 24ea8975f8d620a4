"""`segment run` against a real dask cluster: a scheduler and two workers,
each its own process on 127.0.0.1, as `dask scheduler` and `dask worker`
start them on a cluster's nodes.  The stability tables must equal those of
the same run in process (``--n-jobs 1``), also when a worker dies mid-run."""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import wait_for

from segment.synthetic import experiment_toml, planted_cohort

ROOT = Path(__file__).resolve().parents[1]
STABILITY = "\n[stability]\nresamples = 10\nnull_cohorts = 3\nnull_resamples = 2\n"
TABLES = ("stability.csv", "null_reference.csv", "structure_test.csv", "assignments.csv")
RUN_TIMEOUT = 300  # seconds for one `segment run`
START_TIMEOUT = 120  # seconds for the scheduler and its workers to come up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    """The workers import this checkout's ``segment``, as the client does."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}



class Cluster:
    """``dask scheduler`` and two ``dask worker`` processes, each in its own
    process group (a worker's nanny and worker die together)."""

    def __init__(self, folder: Path, allowed_failures: int | None = None):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        env = _env() if allowed_failures is None else _env(
            DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(allowed_failures))
        # --idle-timeout: should the test process itself be killed, the scheduler
        # ends on its own and the workers follow it (--death-timeout)
        self.scheduler = self._start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard",
             "--idle-timeout", "600"], "scheduler", env)

    def add_workers(self):
        for i in range(2):
            self.workers.append(self._start(
                ["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--death-timeout", "60", "--local-directory", str(self.folder / f"worker{i}")],
                f"worker{i}", _env()))

    def _start(self, args, name, env) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=self.folder, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=START_TIMEOUT)

    def wait_for_workers(self):
        with self.client() as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    started = []

    def start(workers: bool = True, **kwargs) -> Cluster:
        folder = tmp_path / f"cluster{len(started)}"
        folder.mkdir()
        started.append(Cluster(folder, **kwargs))
        if workers:
            started[-1].add_workers()
            started[-1].wait_for_workers()
        return started[-1]

    try:
        yield start
    finally:
        for c in started:
            c.stop()


def _study(folder: Path) -> Path:
    cohort = planted_cohort(n=150, seed=3)
    folder.mkdir(parents=True)
    csv, codebook = cohort.write(folder, "cohort")
    experiment = folder / "experiment.toml"
    experiment.write_text(experiment_toml(csv.name, codebook.name, "runs", extra=STABILITY))
    return experiment


def _segment_run(experiment: Path, *args) -> subprocess.Popen:
    """``segment run`` in its own process group; its stderr goes to stderr.txt beside the experiment."""
    with open(experiment.parent / "stderr.txt", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "segment.cli", "run", str(experiment), "-q", *args],
                                cwd=experiment.parent, stdout=subprocess.DEVNULL, stderr=err,
                                env=_env(), start_new_session=True)


def _stderr(proc: subprocess.Popen) -> str:
    return (Path(proc.args[4]).parent / "stderr.txt").read_text()


def _stop(proc: subprocess.Popen):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _finish(proc: subprocess.Popen) -> Path:
    """Wait for a run; return its run folder."""
    try:
        proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop(proc)
        pytest.fail(f"segment run did not finish within {RUN_TIMEOUT} s")
    err = _stderr(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    runs = [p for p in (Path(proc.args[4]).parent / "runs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1 and not runs[0].name.startswith("."), runs
    return runs[0]


def _tables(run: Path) -> dict:
    out = {name: (run / name).read_text() for name in TABLES}
    out["resamples.csv"] = pd.read_csv(run / "resamples.csv").drop(columns="seconds")
    return out


def _assert_same(got: dict, expected: dict):
    for name in TABLES:
        assert got[name] == expected[name], name
    pd.testing.assert_frame_equal(got["resamples.csv"], expected["resamples.csv"], check_exact=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study, and the tables of its run in process (--n-jobs 1)."""
    experiment = _study(tmp_path_factory.mktemp("reference") / "study")
    run = _finish(_segment_run(experiment, "--n-jobs", "1"))
    tables = _tables(run)
    n = len(tables["resamples.csv"][["sample", "null_cohort", "resample"]].drop_duplicates())
    assert n == 10 + 3 * 2  # the cohort's resamples and the null cohorts' resamples
    return experiment, tables


def _copy(experiment: Path, folder: Path) -> Path:
    shutil.copytree(experiment.parent, folder, ignore=shutil.ignore_patterns("runs"))
    return folder / experiment.name


def test_run_on_a_cluster_equals_the_run_in_process(reference, cluster, tmp_path):
    """The run starts before its workers (as batch jobs may) and waits for them."""
    experiment, expected = reference
    c = cluster(workers=False)
    proc = _segment_run(_copy(experiment, tmp_path / "study"), "--scheduler", c.address)
    try:
        wait_for(lambda: "waiting for one" in _stderr(proc) or proc.poll() is not None, RUN_TIMEOUT,
                  "the run to wait for a worker")
        assert proc.poll() is None, _stderr(proc)
        assert f"no worker is connected to the dask cluster at {c.address}" in _stderr(proc)
        c.add_workers()
    except BaseException:
        _stop(proc)
        raise
    run = _finish(proc)
    _assert_same(_tables(run), expected)
    metrics = (run / "metrics.json").read_text()
    assert f"the dask cluster at {c.address}" in metrics
    with c.client() as client:  # both workers refitted
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and min(executed.values()) > 0, executed


def test_a_worker_killed_mid_run_changes_nothing(reference, cluster, tmp_path):
    """SIGKILL to a worker (nanny and worker process) running a refit.  The
    scheduler gives up on a task at the first worker lost under it
    (``allowed-failures = 0``: what a task meets after its workers were lost
    several times, e.g. preempted batch jobs), so the run resubmits it."""
    experiment, expected = reference
    c = cluster(allowed_failures=0)
    with c.client() as client:
        pgid = {addr: os.getpgid(pid) for addr, pid in client.run(os.getpid).items()}
        study = _copy(experiment, tmp_path / "study")
        proc = _segment_run(study, "--scheduler", c.address)
        try:
            wait_for(lambda: list((study.parent / "runs").glob("*/.*.incomplete/work/checkpoints/*.npz"))
                      or proc.poll() is not None, RUN_TIMEOUT, "a first finished refit")
            assert proc.poll() is None, "the run finished before a worker could be killed"
            busy = wait_for(lambda: [a for a, keys in client.processing().items() if keys], 30,
                             "a worker running a refit")
            victim = next(w for w in c.workers if w.pid == pgid[busy[0]])
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=30)
        except BaseException:
            _stop(proc)
            raise
        run = _finish(proc)
    _assert_same(_tables(run), expected)
    # the kill did hit a refit, which the run itself had to submit again
    assert "marked as failed because 1 workers died while trying to run it" in c.log("scheduler")


def test_a_refit_that_kills_every_worker_is_an_error_not_a_loop():
    import dask

    from segment.errors import SegmentError
    from segment.stability import _Dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        executor = _Dask("local", 1)
        try:
            with pytest.raises(SegmentError, match=r"running resample 4 died 4 times \(KilledWorker\)"):
                executor.run(lambda ctx, *rest: os._exit(1), [("context", "resample", 0, 4)], lambda res: [])
        finally:
            executor.close()

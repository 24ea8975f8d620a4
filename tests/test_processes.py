"""A run stopped from outside: Ctrl-C and SIGKILL with worker processes, two
resumes of one folder at once.  Each test starts ``segment run`` as a real
process and bounds every wait."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
STABILITY = "\n[stability]\nresamples = 40\nnull_resamples = 4\nn_jobs = 2\n"


def _children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                out.append(int(entry))
    return out


def _alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive



def _sigint_default():
    """A run started from a background job inherits an ignored SIGINT; a user's terminal does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    """``segment run`` in its own process group, killed with everything it
    started when the test ends."""

    def __init__(self, experiment: Path, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segment.cli", "run", str(experiment), "-q", *args],
            cwd=experiment.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True, preexec_fn=_sigint_default)
        self.seen: set[int] = set()

    def wait_for_checkpoint(self, folder: Path, timeout: float = 120) -> Path:
        def found():
            self.seen.update(_children(self.proc.pid))
            return sorted(folder.glob("**/checkpoints/resample_*.npz"))

        return wait_for(found, timeout, "a first finished resample")[0]

    def workers(self) -> list[int]:
        self.seen.update(_children(self.proc.pid))
        return sorted(self.seen)

    def communicate(self, timeout: float):
        return self.proc.communicate(timeout=timeout)

    def cleanup(self):
        for pid in [self.proc.pid, *self.seen]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.communicate(timeout=30)


@pytest.fixture
def started():
    runs = []

    def start(experiment, *args):
        runs.append(Run(experiment, *args))
        return runs[-1]

    yield start
    for run in runs:
        run.cleanup()


def test_ctrl_c_with_two_workers_exits_130_promptly_and_leaves_no_process(make_study, started):
    experiment = make_study(seed=3, extra=STABILITY)
    run = started(experiment)
    run.wait_for_checkpoint(experiment.parent / "runs")
    workers = run.workers()
    assert len(workers) >= 2
    os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    stopped = time.monotonic()
    try:
        _, err = run.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("segment run still running 10 s after Ctrl-C")
    assert time.monotonic() - stopped < 10
    assert run.proc.returncode == 130, err
    assert "Traceback" not in err and "Warning" not in err, err
    assert "--resume" in err and ".incomplete" in err
    wait_for(lambda: not _alive(workers), 5, "the worker processes to end")


def test_ctrl_c_to_the_main_process_alone_stops_its_workers(make_study, started):
    experiment = make_study(seed=3, extra=STABILITY)
    run = started(experiment)
    run.wait_for_checkpoint(experiment.parent / "runs")
    workers = run.workers()
    run.proc.send_signal(signal.SIGINT)  # e.g. kill -INT from another shell
    try:
        _, err = run.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("segment run still running 10 s after SIGINT")
    assert run.proc.returncode == 130, err
    assert "Traceback" not in err, err
    wait_for(lambda: not _alive(workers), 5, "the worker processes to end")


def test_workers_end_when_the_main_process_is_killed(make_study, started):
    experiment = make_study(seed=3, extra=STABILITY)
    run = started(experiment)
    run.wait_for_checkpoint(experiment.parent / "runs")
    workers = run.workers()
    assert len(workers) >= 2
    run.proc.send_signal(signal.SIGKILL)
    run.communicate(timeout=10)
    wait_for(lambda: not _alive(workers), 30, f"workers {_alive(workers)} to end after their parent was killed")

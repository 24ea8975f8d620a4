"""Where the refits of a stability analysis run: in process, a local worker
pool, or a dask cluster.

Every executor has ``run(fn, tasks, on_result)``: it calls ``fn(*args)`` for
every ``args`` of ``tasks``, hands each result to ``on_result`` as it comes,
and runs the further tasks ``on_result`` returns.  On Ctrl-C the workers are
stopped before the interruption goes on, so no refit keeps running.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, wait

from .errors import SegmentError

SCHEDULER_TIMEOUT = 10  # seconds to reach a dask scheduler
PARENT_POLL_SECONDS = 1.0


def _n_jobs(n_jobs: int) -> int:
    """Worker processes to use: ``-1`` means one per core."""
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))


class _Serial:
    name = "in process"

    def run(self, fn, tasks, on_result):
        queue = list(tasks)
        while queue:
            args = queue.pop(0)
            queue.extend(on_result(fn(*args)) or [])

    def close(self):
        pass


def local_pool(n_jobs: int):
    """The local pool of ``n_jobs`` worker processes (loky's reusable executor:
    asked for again with the same arguments, the running pool is returned)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=n_jobs, timeout=300, initializer=_worker_init,
                                 initargs=(os.getpid(),))


def local_workers(stability) -> int:
    """The local worker processes a run may use: ``stability.n_jobs``, or one when refits go to a cluster."""
    return 1 if stability.scheduler else _n_jobs(stability.n_jobs)


def start_local_workers(n_jobs: int, scheduler: str = "") -> None:
    """Start the local worker processes of a coming stability analysis now.

    A worker spends seconds importing the fitting libraries before its first
    refit; started before the original fit, it does so while that fit runs.
    Nothing happens for one worker (refits run in process) or on a dask
    cluster.
    """
    n_jobs = _n_jobs(n_jobs)
    if scheduler or n_jobs == 1:
        return
    local_pool(n_jobs).submit(int)  # the pool starts its processes with its first task


class _Loky:
    def __init__(self, n_jobs: int):
        self.n_jobs = n_jobs
        self.name = f"{n_jobs} local worker processes"
        self.executor = local_pool(n_jobs)

    def run(self, fn, tasks, on_result):
        running = {self.executor.submit(fn, *args) for args in tasks}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    for args in on_result(fut.result()) or []:
                        running.add(self.executor.submit(fn, *args))
        except BaseException:
            stop_local_pool(self.executor)
            raise

    def close(self):
        pass


def stop_local_pool(executor) -> None:
    """Kill the workers of a local pool, then let it wind down as after a crash.

    (Cancelling the futures or ``shutdown(kill_workers=True)`` races with
    loky's manager thread, which then dies with a traceback and leaves the
    workers running.)
    """
    from joblib.externals.loky.backend.utils import kill_process_tree

    with _no_interrupt():
        for process in list(getattr(executor, "_processes", {}).values()):
            try:
                kill_process_tree(process)
            except (ProcessLookupError, OSError):
                pass
        executor.shutdown(wait=True)


def _worker_init(parent: int) -> None:
    """Initializer of every local worker process.

    Ctrl-C is the parent's to handle (it stops the workers and keeps what
    finished), and a worker ends as soon as its parent is gone, even when
    the parent was killed without a chance to stop it: on Linux the kernel
    sends it SIGKILL (``PR_SET_PDEATHSIG``); everywhere a thread watches the
    parent's process id.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # UMAP's (silent) progress bar would make a process-shared lock, which a killed worker leaks
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    except ImportError:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # gone before the death signal was armed
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="segment-parent-watch", daemon=True).start()
    # what every refit needs, imported before the first one arrives (see start_local_workers)
    import hdbscan  # noqa: F401
    import umap  # noqa: F401

    from . import stability  # noqa: F401


class _no_interrupt:
    """Hold back Ctrl-C while workers are being stopped (a second Ctrl-C
    must not leave them running); it is delivered once they are."""

    def __enter__(self):
        import signal
        import threading

        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame):
        self.pending = True

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.pending and exc[0] is None:
            raise KeyboardInterrupt
        return False


class _Dask:
    RESUBMISSIONS = 3

    def __init__(self, scheduler: str, n_jobs: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SegmentError(
                f"stability.scheduler = {scheduler!r} needs dask.distributed, which is not installed. "
                "Install it with: pip install 'segment[dask]' (or set stability.scheduler = \"\")."
            ) from None
        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, host="127.0.0.1",
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
            self.name = f"a local dask cluster of {n_jobs} workers"
        else:
            try:
                self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError ...
                raise SegmentError(
                    f"could not reach the dask scheduler at stability.scheduler = {scheduler!r} within "
                    f"{SCHEDULER_TIMEOUT} s ({type(exc).__name__}: {exc}). Start the scheduler and its "
                    "workers (dask scheduler; dask worker ADDRESS), check the address, or set "
                    "stability.scheduler = \"local\" to use this machine."
                ) from None
            self.name = f"the dask cluster at {scheduler}"

    def run(self, fn, tasks, on_result):
        """Run the tasks; a task whose worker died under it is submitted again.

        The scheduler itself reruns a task whose worker was lost, up to its
        ``distributed.scheduler.allowed-failures`` times, then fails it with
        ``KilledWorker``; a task whose scattered context was lost with every
        worker holding it is cancelled.  Both are resubmitted here, up to
        ``RESUBMISSIONS`` times per task (a refit that kills every worker it
        runs on, e.g. out of memory, is an error).
        """
        from concurrent.futures import CancelledError

        from distributed import KilledWorker, as_completed

        scattered, pending, lost = {}, {}, {}

        def submit(args):
            ctx, rest = args[0], args[1:]
            if id(ctx) not in scattered or scattered[id(ctx)].status != "finished":
                self._wait_for_a_worker()
                scattered[id(ctx)] = self.client.scatter(ctx, broadcast=True)
            fut = self.client.submit(fn, scattered[id(ctx)], *rest, pure=False)
            pending[fut.key] = (fut, args)
            return fut

        ac = as_completed([submit(a) for a in tasks])
        try:
            for fut in ac:
                _, args = pending.pop(fut.key)
                try:
                    res = fut.result()
                except (KilledWorker, CancelledError) as exc:
                    kind, c, b = args[1:4]
                    lost[kind, c, b] = lost.get((kind, c, b), 0) + 1
                    if lost[kind, c, b] > self.RESUBMISSIONS:
                        what = {"resample": f"resample {b}", "null": f"resample {b} of null cohort {c}",
                                "null_fit": f"the fit of null cohort {c}"}[kind]
                        raise SegmentError(
                            f"the dask workers running {what} died {lost[kind, c, b]} times "
                            f"({type(exc).__name__}); see the workers' logs, e.g. for a memory limit.") from None
                    ac.add(submit(args))
                    continue
                for new in on_result(res) or []:
                    ac.add(submit(new))
        except BaseException:
            self.client.cancel([f for f, _ in pending.values()])
            raise

    def _wait_for_a_worker(self):
        """Wait, saying so, while no worker is connected (batch jobs may still
        be queued); Ctrl-C stops the wait."""
        try:
            self.client.wait_for_workers(1, timeout=SCHEDULER_TIMEOUT)
        except TimeoutError:
            print(f"segment: no worker is connected to {self.name}; waiting for one "
                  "(start workers with: dask worker ADDRESS).", file=sys.stderr, flush=True)
            self.client.wait_for_workers(1)

    def close(self):
        try:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        except Exception:  # noqa: BLE001
            pass


def _executor(n_jobs: int, scheduler: str):
    if scheduler:
        return _Dask(scheduler, n_jobs)
    if n_jobs == 1:
        return _Serial()
    return _Loky(n_jobs)

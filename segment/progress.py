"""Stage timings and progress of a run on stderr."""

from __future__ import annotations

import resource
import signal
import sys
import time
from contextlib import contextmanager

from tqdm import tqdm


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread beside the worker processes


class Progress:
    """Stage timings (wall time, peak memory) and progress on stderr.

    A stage prints its name when it starts; a stage that reports counts
    (:meth:`count`) shows a bar with elapsed time and an estimate of the time
    left.  Nothing is shown with ``quiet`` or when stderr is not a terminal.
    Used as a context manager, an open bar is closed however the block ends.
    """

    def __init__(self, quiet: bool = False):
        self.show = not quiet and sys.stderr.isatty()
        self.stages: list[dict] = []
        self._current = None
        self._bar = None
        self._sigint = None

    def __call__(self, name: str) -> None:
        self.end()
        self._current = (name, time.perf_counter())
        if self.show:
            print(f"segment: {name} ...", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close_bar()

    def end(self) -> None:
        self.close_bar()
        if self._current is not None:
            name, start = self._current
            self.stages.append({"stage": name, "wall_seconds": time.perf_counter() - start,
                                "peak_rss_mib": peak_rss_mib()})
            self._current = None

    def count(self, done: int, total: int) -> None:
        """Progress within a long stage (e.g. resamples finished)."""
        if not self.show or self._current is None:
            return
        if self._bar is None:
            self._open_bar(done, total)
        else:
            self._bar.total = total
            self._bar.update(done - self._bar.n)
        if done >= total:
            self.close_bar()

    def _open_bar(self, done: int, total: int) -> None:
        # the first count ends the first piece of work, begun when the stage began
        self._bar = _Bar(total=total, initial=max(done - 1, 0), desc=f"segment: {self._current[0]}",
                         unit="fit", file=sys.stderr, leave=True, dynamic_ncols=True, delay=1e-9)
        self._bar.start_t = self._bar.last_print_t = time.time() - (time.perf_counter() - self._current[1])
        self._bar.update(done - self._bar.n)
        try:  # on Ctrl-C, end the bar's line before anything reports the interruption
            self._sigint = signal.signal(signal.SIGINT, self._interrupted)
        except ValueError:  # not the main thread: no signal handler can be set
            self._sigint = None

    def _interrupted(self, signum, frame):
        previous = self._sigint
        self.close_bar()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.default_int_handler(signum, frame)

    def close_bar(self) -> None:
        """Close an open bar (its line stays, ended) and restore Ctrl-C."""
        bar, self._bar = self._bar, None
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        if bar is not None:
            bar.close()

    @contextmanager
    def stage(self, name: str):
        self(name)
        yield
        self.end()

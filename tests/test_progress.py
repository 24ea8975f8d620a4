"""Progress on a terminal: a bar with elapsed and remaining time; silence otherwise."""

import os
import re
import signal
import sys

import pytest

import segment.checkpoints as checkpoints
from segment import run_experiment

FAST = {"stability.resamples": 4, "stability.null_cohorts": 1, "stability.null_resamples": 2,
        "stability.n_jobs": 1}
TOTAL = 4 + 1 * (1 + 2)  # resamples, then each null cohort's own fit and its resamples


class FakeStderr:
    """A stderr that records what is written and says whether it is a terminal."""

    def __init__(self, tty: bool):
        self.tty, self.parts = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)



@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Python's own Ctrl-C handler, also when the tests run in a background job (which ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)

def _run(experiment, monkeypatch, *, tty: bool, quiet: bool = False) -> FakeStderr:
    err = FakeStderr(tty)
    monkeypatch.setattr(sys, "stderr", err)
    run_experiment(experiment, overrides=FAST, quiet=quiet, write=False)
    monkeypatch.undo()
    return err


def test_terminal_shows_a_bar_with_elapsed_and_remaining_time(make_study, monkeypatch):
    err = _run(make_study(seed=3), monkeypatch, tty=True)
    text = err.text
    assert "segment: umap ..." in text
    bar = [line for line in re.split(r"[\r\n]", text) if line.startswith("segment: stability: resamples")]
    assert bar, text
    # counts, elapsed<remaining and a rate, as tqdm writes them
    assert any(re.search(rf"\| ?\d/{TOTAL} \[\d\d:\d\d<\d\d:\d\d, ", line) for line in bar), bar
    final = f"{TOTAL}/{TOTAL} ["
    assert final in bar[-1] and ("fit/s" in bar[-1] or "s/fit" in bar[-1])
    # the finished bar's line is ended before the next stage speaks
    after = text[text.rindex(final):]
    assert after.index("\n") < after.index("segment: profile ...")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("tty, quiet", [(False, False), (True, True)])
def test_no_terminal_or_quiet_shows_no_progress(make_study, monkeypatch, tty, quiet):
    err = _run(make_study(seed=3), monkeypatch, tty=tty, quiet=quiet)
    assert "segment: stability" not in err.text and "\r" not in err.text and "it/s" not in err.text
    if quiet:
        assert err.text == ""


def test_ctrl_c_ends_the_bar_line_before_the_interruption_is_reported(make_study, monkeypatch):
    experiment = make_study(seed=3)

    def press_ctrl_c(done, total):
        if done == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(checkpoints, "_after_checkpoint", press_ctrl_c)
    err = FakeStderr(True)
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, overrides=FAST, quiet=False, write=False)
    monkeypatch.undo()
    text = err.text
    report = text.index("segment: stability analysis interrupted")
    last_bar = text.rindex(f"/{TOTAL} [", 0, report)
    assert text[last_bar - 1] == "2"  # the bar stopped where the run did (before the third was counted)
    assert text[last_bar:report].endswith("\n") and "\r" not in text[last_bar:report]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

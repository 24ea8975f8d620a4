"""The ``segment`` command line: a thin layer over the library.

Each command parses its arguments, calls one library function and turns a
user's mistake (:class:`~segment.errors.SegmentError`) into one message on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings

from .errors import ConfigError, SegmentError

EXIT_USER_ERROR = 2


def _dotted_overrides(extra: list[str]) -> dict:
    """``--reduce.n_neighbors 30`` and ``--reduce.n_neighbors=30`` pairs."""
    from .config import parse_value

    out, i = {}, 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or "." not in arg:
            raise ConfigError(f"unrecognised argument '{arg}'. Config overrides look like --reduce.n_neighbors 30.")
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise ConfigError(f"override '{arg}' has no value.")
            value = extra[i + 1]
            i += 2
        out[key.replace("-", "_")] = parse_value(value)
    return out


def _cmd_run(args, extra) -> int:
    from .experiment import run_experiment

    overrides = _dotted_overrides(extra)
    if args.seed is not None:
        overrides["experiment.seed"] = args.seed
    if args.resamples is not None:
        overrides["stability.resamples"] = args.resamples
    if args.n_jobs is not None:
        overrides["stability.n_jobs"] = args.n_jobs
    if args.scheduler is not None:
        overrides["stability.scheduler"] = args.scheduler
    command = "segment " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run = run_experiment(args.config, overrides=overrides, quiet=args.quiet, command=command,
                         resume=args.resume)
    for line in run.summary:
        print(line)
    print(f"Run written to {run.path}")
    return 0


def _cmd_report(args, extra) -> int:
    from .report import render_run_dir

    path = render_run_dir(args.run_dir)
    print(f"Report written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segment", description="Archetypes in survey cohorts.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment and write a run directory",
                         description="Run an experiment. Any config key can be overridden with "
                                     "--section.key value, e.g. --reduce.n_neighbors 30.")
    run.add_argument("config", help="experiment file (TOML)")
    run.add_argument("--seed", type=int, help="override experiment.seed")
    run.add_argument("--resamples", "-B", type=int, help="override stability.resamples")
    run.add_argument("--n-jobs", type=int, help="override stability.n_jobs")
    run.add_argument("--scheduler", help="dask scheduler address (tcp://host:8786) or 'local'")
    run.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="re-render report.html of a run without refitting")
    report.add_argument("run_dir")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return args.func(args, extra)
    except SegmentError as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("segment: interrupted; no run directory was written for the unfinished run.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

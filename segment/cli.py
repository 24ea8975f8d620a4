"""The ``segment`` command line: a thin layer over the library.

Each command parses its arguments, calls one library function and turns a
user's mistake (:class:`~segment.errors.SegmentError`) into one message on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
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
    from .config import load_config
    from .experiment import run_experiment
    from .report import summary_lines
    from .sweep import run_sweep

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
    config = load_config(args.config, overrides)
    if config.sweep:
        sweep = run_sweep(config, quiet=args.quiet, command=command)
        print(sweep.table.drop(columns=["run", "silhouette_space"]).to_string(index=False))
        print(sweep.rule)
        chosen = "none" if sweep.selected is None else sweep.table.loc[sweep.selected, "setting"]
        print(f"Selected: {chosen}")
        print(f"Sweep written to {os.path.relpath(sweep.path)}")
        return 0
    run = run_experiment(config, quiet=args.quiet, command=command, resume=args.resume)
    for line in summary_lines(run.path):
        print(line)
    print(f"Run written to {os.path.relpath(run.path)}")
    return 0


def _cmd_validate(args, extra) -> int:
    from .config import ExperimentConfig, load_config
    from .experiment import check_output, prepare

    if args.experiment:
        if args.cohort or args.codebook or args.sheet is not None:
            raise ConfigError("give an experiment file, or --codebook and --cohort (with --sheet), not both.")
        config = load_config(args.experiment, _dotted_overrides(extra))
        check_output(config)
    else:
        if extra:
            raise ConfigError(f"unrecognised arguments: {' '.join(extra)} (config overrides need an experiment).")
        if not args.cohort or not args.codebook:
            raise ConfigError("segment validate needs an experiment file, or both --codebook BOOK.toml and "
                              "--cohort SURVEY_FILE.")
        sheet = {} if args.sheet is None else {"experiment.sheet": int(args.sheet) if args.sheet.isdigit()
                                                else args.sheet}
        config = ExperimentConfig().replace({"experiment.cohort": args.cohort, "experiment.codebook": args.codebook,
                                             **sheet})
    plan = prepare(config)
    for warning in plan.warnings:
        print(f"segment: warning: {warning}", file=sys.stderr)
    for line in plan.describe():
        print(line)
    if config.sweep:
        from .sweep import setting_config, sweep_plan

        settings, options = sweep_plan(config)
        for setting in settings:
            try:
                prepare(setting_config(config, setting, options), plan.cohort)
            except SegmentError as exc:
                raise type(exc)(f"sweep setting {setting}: {exc}") from None
        print(f"sweep: {len(settings)} settings, every one valid")
    print("Valid: nothing was fitted or written.")
    return 0


def _cmd_codebook_draft(args, extra) -> int:
    from .draft import draft_codebook

    sheet = int(args.sheet) if args.sheet is not None and args.sheet.isdigit() else args.sheet
    sys.stdout.write(draft_codebook(args.survey, sheet=sheet))
    return 0


def _cmd_runs(args, extra) -> int:
    from .runs import list_runs

    table = list_runs(args.folder)
    if table.empty:
        print(f"no runs under {args.folder}")
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def _cmd_compare(args, extra) -> int:
    from .runs import compare_runs

    for name, table in compare_runs(args.a, args.b).items():
        print(f"\n{name}")
        print("  (no differences)" if table.empty else table.to_string(index=False))
    return 0


def _cmd_report(args, extra) -> int:
    from .report import render_run_dir

    path = render_run_dir(args.run_dir)
    print(f"Report written to {path}")
    return 0


def _cmd_replicate(args, extra) -> int:
    from .replicate import replicate, split_half

    command = "segment " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.split_half:
        if args.cohort or args.codebook:
            raise ConfigError("--split-half replicates on half of the experiment's own cohort: "
                              "leave out --cohort and --codebook.")
        overrides = _dotted_overrides(extra)
        if args.seed is not None:
            overrides["experiment.seed"] = args.seed
        run, rep = split_half(args.target, overrides=overrides,
                              quiet=args.quiet, command=command)
        print(f"Run on half A written to {os.path.relpath(run.path)}")
    else:
        if extra:
            raise ConfigError(f"unrecognised arguments: {' '.join(extra)} "
                              "(config overrides apply to --split-half only).")
        if not args.cohort:
            raise ConfigError("segment replicate RUN_DIR needs --cohort NEW_SURVEY_FILE "
                              "(or: segment replicate --split-half EXPERIMENT.toml).")
        rep = replicate(args.target, args.cohort, args.codebook, seed=args.seed)
    for warning in rep.warnings:
        print(f"segment: warning: {warning}", file=sys.stderr)
    for method in rep.summary["methods"]:
        print(method["verdict"])
    print(rep.verdict)
    print(f"Replication written to {os.path.relpath(rep.path)}")
    return 0


def _cmd_export(args, extra) -> int:
    from .export import export_assignments, export_tables

    if args.tables:
        if args.format != "xlsx" or args.cohort or args.codebook:
            raise ConfigError("--tables writes the shareable tables as one workbook: use it with --format xlsx "
                              "and without --cohort or --codebook.")
        path = export_tables(args.run_dir, args.output)
    else:
        if args.codebook and not args.cohort:
            raise ConfigError("--codebook is the codebook of --cohort FILE: give both.")
        path = export_assignments(args.run_dir, args.format, args.output, cohort=args.cohort,
                                  codebook=args.codebook)
    print(f"Written to {os.path.relpath(path)}")
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

    rep = sub.add_parser(
        "replicate", help="carry a run's model to a new cohort, refit there and compare",
        description="Assign a new cohort with a run's saved model, fit the same experiment on the new "
                    "cohort alone, and compare: prediction strength, matched archetypes, shares and "
                    "outcome differences. Written to RUN_DIR/replications/<id>/. With --split-half, "
                    "TARGET is an experiment file: it is run on a seeded random half of its cohort "
                    "and replicated on the other half (config overrides as for 'run').")
    rep.add_argument("target", metavar="RUN_DIR", help="run directory (with --split-half: experiment file)")
    rep.add_argument("--cohort", help="the new cohort's survey file")
    rep.add_argument("--codebook", help="its codebook (default: the run's, found by checksum beside the "
                                        "survey file or in the run directory)")
    rep.add_argument("--split-half", action="store_true",
                     help="split the experiment's cohort in two halves: fit on one, replicate on the other")
    rep.add_argument("--seed", type=int, help="override experiment.seed: of the refit on the new cohort, or "
                                              "with --split-half of the whole analysis, split included")
    rep.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    rep.set_defaults(func=_cmd_replicate)

    val = sub.add_parser(
        "validate", help="check an experiment (or a codebook and cohort) as 'run' would, without fitting",
        description="Every check of 'segment run' without fitting anything: the config, the codebook, "
                    "every answer of the survey file, and the names the config gives. Prints the "
                    "respondents, features, outcomes, covariates and exclusions a run would analyse.")
    val.add_argument("experiment", nargs="?", help="experiment file (TOML); config overrides as for 'run'")
    val.add_argument("--codebook", help="a codebook, to check with --cohort without an experiment")
    val.add_argument("--cohort", help="a survey file, to check with --codebook")
    val.add_argument("--sheet", help="the sheet of an XLSX cohort (name or 0-based position)")
    val.set_defaults(func=_cmd_validate)

    exp = sub.add_parser(
        "export", help="each respondent's archetypes as SPSS, Stata, CSV or XLSX (or the tables as a workbook)",
        description="Write, per respondent, each method's archetype (names as value labels), membership "
                    "probability, noise flag and stability verdict. With --cohort, merged into a copy of the "
                    "survey file (identifiers left out). With --tables, the run's shareable tables as one "
                    "XLSX workbook.")
    exp.add_argument("run_dir")
    exp.add_argument("--format", required=True, choices=["sav", "dta", "csv", "xlsx"])
    exp.add_argument("--cohort", help="the original survey file, to merge the columns into a copy of it")
    exp.add_argument("--codebook", help="its codebook (default: the run's, found by checksum beside the survey "
                                        "file or in the run directory)")
    exp.add_argument("--tables", action="store_true", help="the shareable tables as one workbook (--format xlsx)")
    exp.add_argument("--output", "-o", help="the file to write (default: in RUN_DIR/export/)")
    exp.set_defaults(func=_cmd_export)

    book = sub.add_parser("codebook", help="codebook tools: 'segment codebook draft SURVEY_FILE'")
    book_sub = book.add_subparsers(dest="codebook_command", required=True)
    draft = book_sub.add_parser(
        "draft", help="print a draft codebook guessed from a survey file",
        description="Print a draft codebook (TOML) for a survey file: every column with its role and "
                    "type guessed and the answer counts beside each level; guesses to check are marked "
                    "CHECK. Redirect it into a file: segment codebook draft survey.csv > codebook.toml")
    draft.add_argument("survey", metavar="SURVEY_FILE", help="CSV, Qualtrics CSV, XLSX, SPSS .sav or Stata .dta")
    draft.add_argument("--sheet", help="the sheet of an XLSX file (name or 0-based position)")
    draft.set_defaults(func=_cmd_codebook_draft)

    runs = sub.add_parser("runs", help="list runs with their key figures")
    runs.add_argument("folder", nargs="?", default="reports")
    runs.set_defaults(func=_cmd_runs)

    compare = sub.add_parser("compare", help="compare two runs: parameters, archetypes, stability, profiles")
    compare.add_argument("a")
    compare.add_argument("b")
    compare.set_defaults(func=_cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("run", "replicate", "validate"):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return args.func(args, extra)
    except SegmentError as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("segment: interrupted; the unfinished run was not written as a run directory.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

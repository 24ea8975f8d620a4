"""The shape of the house: small modules, short entry points, stages that do not reach up to the runner."""

import ast
import inspect
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "segment"
RUNNERS = {"experiment", "cli", "sweep"}  # modules that run whole experiments
STAGES = ["features", "reduce", "cluster", "pipeline", "predict", "stability", "matching", "null_reference",
          "checkpoints", "executors", "profile", "report"]


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, long


def test_entry_points_are_short():
    from segment.cohort import load_cohort
    from segment.replicate import replicate
    from segment.stability import bootstrap_stability

    for func in (bootstrap_stability, replicate, load_cohort):
        assert len(inspect.getsource(func).splitlines()) < 80, func.__name__


def _imported(path: Path) -> set:
    """segment modules a file imports (first component below the package)."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-node.level]) if node.level <= len(rel) else []
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [a.name for a in node.names]
            elif node.module and node.module.startswith("segment."):
                names = [node.module.split(".")[1]]
            else:
                continue
            out.update(names)
    return out


def test_stages_never_import_the_runner():
    offenders = []
    for stage in STAGES:
        module = PACKAGE / f"{stage}.py"
        files = [module] if module.exists() else sorted((PACKAGE / stage).glob("*.py"))
        for path in files:
            reached = _imported(path) & RUNNERS
            if reached:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {sorted(reached)}")
    assert not offenders, offenders

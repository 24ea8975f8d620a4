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


def _module_file(parts: list[str]) -> Path | None:
    path = PACKAGE.joinpath(*parts)
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return None


def _top_level_imports(path: Path) -> set[Path]:
    """The segment modules a file imports when it is imported (imports inside functions are not counted)."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    out = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = base + (node.module.split(".") if node.module else [])
        elif node.module and node.module.startswith("segment"):
            target = node.module.split(".")[1:]
        else:
            continue
        submodules = [_module_file(target + [alias.name]) for alias in node.names]
        if all(submodules):  # ``from .package import module``: the modules named
            out.update(submodules)
        elif _module_file(target) not in (None, path):
            out.add(_module_file(target))
    return out


def test_no_import_cycle():
    graph = {p: _top_level_imports(p) for p in _modules()}
    assert PACKAGE / "cluster.py" in graph[PACKAGE / "pipeline.py"]  # the scan sees the imports
    assert PACKAGE / "report" / "_format.py" in graph[PACKAGE / "report" / "_render.py"]
    state: dict = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycle = trail[trail.index(nxt):] + [nxt]
                raise AssertionError(" -> ".join(str(p.relative_to(PACKAGE)) for p in cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])

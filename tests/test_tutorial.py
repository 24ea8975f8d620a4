"""docs/tutorial.md runs as written, from the bundled survey file to exported assignments."""

import re
import shutil
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_runs_and_exports_the_assignments(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) >= 5
    (tmp_path / "surveys").symlink_to(ROOT / "surveys")
    (tmp_path / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "smmh.toml", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/tutorial.md", "exec"), namespace)

    run = namespace["run"]
    assert run.path.resolve().is_relative_to(tmp_path.resolve())   # written where the tutorial said
    html = run._repr_html_()
    assert html.index("structure-free") < html.index("<table")      # the verdict comes first
    exported = pd.read_csv(tmp_path / "smmh_archetypes.csv")
    assert len(exported) == 481 and exported.columns[0] == "respondent"
    assert {"hdbscan_verdict", "kmeans_verdict"} <= set(exported.columns)
    assert set(exported["kmeans_verdict"].dropna()) <= set(run.tables["stability"]["verdict"])

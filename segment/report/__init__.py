"""The archetype report (a placeholder until the full report lands)."""

from __future__ import annotations

import html
from pathlib import Path


def render_run(run, folder: Path) -> Path:
    path = Path(folder) / "report.html"
    lines = "".join(f"<li>{html.escape(s)}</li>" for s in run.summary)
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>segment report</title><ul>{lines}</ul>",
                    encoding="utf-8")
    return path


def render_summary_html(run) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in run.summary) + "</ul>"

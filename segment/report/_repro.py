"""The report's reproducibility section and the resolved config as TOML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import _format as fmt
from ._data import RunData


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if v is None:
        return '""'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v), ensure_ascii=False)


def config_toml(config: dict) -> str:
    """The resolved config as TOML text."""
    lines = []

    def section(name, table):
        plain = {k: v for k, v in table.items() if not isinstance(v, dict) or not v or name == ""}
        nested = {k: v for k, v in table.items() if isinstance(v, dict) and v}
        if plain or not nested:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in plain.items())
            lines.append("")
        for k, v in nested.items():
            section(f"{name}.{k}", v)

    for name, table in config.items():
        if isinstance(table, dict):
            section(name, table)
    return "\n".join(lines).strip() + "\n"


def repro_section(data: RunData) -> dict:
    """The run's facts, package versions, stage timings and resolved config."""
    m = data.manifest
    stages = pd.DataFrame(m.get("stages", []) or [])
    stage_table = None
    if len(stages):
        f = pd.DataFrame({"stage": stages["stage"],
                          "wall time (s)": stages["wall_seconds"].map(lambda v: fmt.num(v, 2)),
                          "peak memory (MiB)": stages.get("peak_rss_mib", pd.Series(np.nan, index=stages.index)).map(
                              lambda v: fmt.num(v, 0))})
        stage_table = fmt.table(f, caption="Wall time per stage", numeric=["wall time (s)", "peak memory (MiB)"],
                                note=f"Total wall time {fmt.num(m.get('wall_seconds'), 1)} s; peak memory "
                                     f"{fmt.num(m.get('peak_rss_mib'), 0)} MiB.")
    packages = [(k, str(v) if v else "not installed") for k, v in (m.get("packages") or {}).items()]
    inp = m.get("input") or {}
    facts = [("run", m.get("run_id", "")), ("created", m.get("created", "")), ("command", m.get("command", "")),
             ("config file", m.get("config_file") or "—"), ("seed", str(m.get("seed", ""))),
             ("input file", inp.get("file") or "—"), ("input SHA-256", inp.get("sha256") or "—"),
             ("codebook", inp.get("codebook") or "—"), ("codebook SHA-256", inp.get("codebook_sha256") or "—")]
    model = m.get("model") or {}
    if model:
        facts.append(("model", f"{model.get('path', '')} (SHA-256 {model.get('sha256', '')})"))
    resub = m.get("resubmissions") or {}
    if resub:
        facts.append(("resubmissions", f"policy {resub.get('policy')}, {resub.get('rows_removed', 0)} rows removed"))
    if m.get("unmentioned_columns"):
        facts.append(("columns not in the codebook (ignored)", ", ".join(map(str, m["unmentioned_columns"]))))
    return {"facts": facts, "packages": packages, "stages": stage_table,
            "config": config_toml(data.config) if data.config else ""}

"""Writing a replication: its tables, ``replication.json`` and an HTML report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import rundir
from ._agreement import ALPHA

if TYPE_CHECKING:
    from ._replication import Replication

OUTPUT_FILES = ("transfer_assignments.csv", "matching.csv", "prediction_strength.csv", "shares.csv",
                "outcome_replication.csv", "replication.json", "report.html")


def write_replication(run_dir: Path, rep: Replication, config=None) -> Path:
    """Write a replication into ``<run_dir>/replications/<id>/`` via a working folder."""
    final, tmp = rundir.new_working_folder(Path(run_dir) / "replications", rundir.timestamp())
    try:
        rep.summary["replication_id"] = final.name
        rep.summary["created"] = rundir.utc_timestamp()
        rundir.write_csv(tmp / "transfer_assignments.csv", rep.assignments, index=True)
        rundir.write_csv(tmp / "matching.csv", rep.matching)
        rundir.write_csv(tmp / "prediction_strength.csv", rep.prediction_strength)
        rundir.write_csv(tmp / "shares.csv", rep.shares)
        rundir.write_csv(tmp / "outcome_replication.csv", rep.outcomes)
        rundir.write_json(tmp / "replication.json", rep.summary)
        min_cell = config.report.min_cell if config is not None else 10
        (tmp / "report.html").write_text(render_report(rep, min_cell=min_cell), encoding="utf-8")
        os.rename(tmp, final)
    except BaseException:
        rundir.discard(tmp)
        raise
    return final


_TEMPLATE = """{% if not fragment %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Replication {{ s.replication_id or "" }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.verdict{font-size:1.1rem;padding:.75rem 1rem;border-left:5px solid}
.yes{border-color:#2a7d2a;background:#eef7ee}.no{border-color:#b03030;background:#fbeeee}
.warn{background:#fff7e0;border-left:5px solid #d9a400;padding:.5rem 1rem}.muted{color:#666;font-size:.85rem}
</style></head><body>{% endif %}
<div class="segment-replication">
<h1>Replication of run {{ s.run.run_id or "" }}</h1>
<p class="verdict {{ 'yes' if rep.replicated else 'no' }}">{{ rep.verdict }}</p>
<p class="muted">New cohort: {{ s.new_cohort.file or "(loaded in memory)" }}, {{ s.new_cohort.n }} respondents,
{{ s.new_cohort.n_analysed }} analysed, {{ s.new_cohort.n_excluded }} excluded. Refit seed {{ s.refit_seed }}.
{% if s.note %}{% for k, v in s.note.items() %}{{ k }}: {{ v }}. {% endfor %}{% endif %}</p>
{% if rep.warnings %}<div class="warn"><strong>Warnings</strong><ul>{% for w in rep.warnings %}<li>{{ w }}</li>{% endfor %}</ul></div>{% endif %}

<h2>Per method</h2>
<table><tr><th class="l">method</th><th>archetypes (model)</th><th>archetypes (refit)</th><th>prediction strength (at k)</th><th class="l">verdict</th></tr>
{% for m in s.methods %}<tr><td class="l">{{ m.method }}</td><td>{{ m.archetypes_original }}</td><td>{{ m.archetypes_refit }}</td>
<td>{{ m.prediction_strength|num(2) }} ({{ m.prediction_strength_k }})</td><td class="l">{{ m.verdict }}</td></tr>{% endfor %}</table>

<h2>Prediction strength</h2>
<p class="muted">For each archetype found by refitting on the new cohort: the share of its pairs of members that the
original model, applied to the same respondents, also puts together (Tibshirani &amp; Walther, 2005). The minimum over
archetypes is the prediction strength; {{ s.prediction_strength_threshold }} or more indicates archetypes that replicate.
It is defined for two partitions with the same k: when the refit chose another k, the mixture and K-Means are refitted
at the model's k for it (column k); HDBSCAN has no k to set, and the verdict says so.</p>
<table><tr><th class="l">method</th><th>k</th><th>refit archetype</th><th>n</th><th>prediction strength</th></tr>
{% for r in ps %}<tr><td class="l">{{ r.method }}</td><td>{{ r.k }}</td><td>{{ r.refit_archetype }}</td><td>{{ r.n|cell }}</td>
<td>{{ r.prediction_strength|num(2) }}{% if r.is_minimum %} (min){% endif %}</td></tr>{% endfor %}</table>

<h2>Matching of refitted to original archetypes</h2>
<p class="muted">Hungarian assignment on the respondents the two labelings share; Jaccard = shared / union; a refitted
archetype stands for its original one only with a Jaccard of at least {{ s.min_match_jaccard }} (matched). In-group
proportion = share of an original archetype's new members whose nearest new respondent (scaled features) has the same
archetype (Kapp &amp; Tibshirani, 2007), against its null reference: {{ s.igp_null_draws }} structure-free versions of the
new cohort (Gaussian, with the new cohort's means and covariances of the encoded features: correlations kept,
clusters gone), assigned by the model the same way; p = (1 + null proportions at least as high) / (1 + null cohorts).</p>
<table><tr><th class="l">method</th><th>refit</th><th>original</th><th>n refit</th><th>n transferred</th><th>shared</th><th>Jaccard</th><th>matched</th><th>in-group proportion</th><th>null mean [95th pct]</th><th>p</th></tr>
{% for r in matching %}<tr><td class="l">{{ r.method }}</td><td>{{ r.refit_archetype|dash }}</td><td>{{ r.original_archetype|dash }}</td>
<td>{{ r.n_refit|cell }}</td><td>{{ r.n_transferred|cell }}</td><td>{{ r.n_both|cell }}</td><td>{{ r.jaccard|num(2) }}</td><td>{{ 'yes' if r.matched else 'no' }}</td><td>{{ r.in_group_proportion|num(2) }}</td>
<td>{{ r.igp_null_mean|num(2) }} [{{ r.igp_null_p95|num(2) }}]</td><td>{{ r.igp_p_value|p }}</td></tr>{% endfor %}</table>

<h2>Archetype shares</h2>
<p class="muted">Shares of the original cohort and of the new cohort, both as the model assigns a new respondent:
each original respondent held out (placed by its nearest other training respondents) and assigned, against the new
cohort transferred, so that like is compared with like. Per archetype a
two-proportion z test, {{ s.correction|capitalize }}-corrected over archetypes, with a 95% Wald interval of the difference;
over all archetypes a chi-square test of homogeneity.</p>
{% for m, t in s.share_tests.items() %}<p>{{ m }}: &chi;&sup2;({{ t.df }}) = {{ t.statistic|num(2) }}, p = {{ t.p_value|p }}</p>{% endfor %}
<table><tr><th class="l">method</th><th>archetype</th><th>share original</th><th>share new</th><th>difference [95% CI]</th><th>p (corrected)</th></tr>
{% for r in shares %}<tr><td class="l">{{ r.method }}</td><td>{{ 'noise' if r.archetype == -1 else r.archetype }}</td>
<td>{{ r.share_original|pct }}</td><td>{{ r.share_new|pct }}</td><td>{{ r.difference|pct }} [{{ r.ci_low|pct }}, {{ r.ci_high|pct }}]</td><td>{{ r.p_adjusted|p }}</td></tr>{% endfor %}</table>

<h2>Outcome differences, original and new</h2>
<p class="muted">Each archetype's mean minus the mean of the other archetypes' members, Welch 95% intervals,
p values {{ s.correction|capitalize }}-corrected over archetypes and outcomes. "Transferred": the new cohort as the original
model assigns it; "refit": the matched archetype of the refit. A difference replicates when the refitted archetype is
matched with a Jaccard of at least {{ s.min_match_jaccard }}, has the same sign and is significant in both cohorts.</p>
<table><tr><th class="l">method</th><th>archetype</th><th class="l">outcome</th><th>original</th><th>transferred</th><th>refit</th><th class="l">verdict</th></tr>
{% for r in outcomes %}<tr><td class="l">{{ r.method }}</td><td>{{ r.archetype }}{% if r.refit_archetype is not none %} &harr; {{ r.refit_archetype }}{% endif %}</td><td class="l">{{ r.outcome }}</td>
<td>{{ r.original_diff|num(2) }} [{{ r.original_ci_low|num(2) }}, {{ r.original_ci_high|num(2) }}]{{ r.original_p_adjusted|star }}</td>
<td>{{ r.transferred_diff|num(2) }} [{{ r.transferred_ci_low|num(2) }}, {{ r.transferred_ci_high|num(2) }}]{{ r.transferred_p_adjusted|star }}</td>
<td>{{ r.refit_diff|num(2) }} [{{ r.refit_ci_low|num(2) }}, {{ r.refit_ci_high|num(2) }}]{{ r.refit_p_adjusted|star }}</td>
<td class="l">{{ r.verdict }}</td></tr>{% endfor %}</table>
<p class="muted">* corrected p &lt; {{ s.alpha }}. Counts below {{ min_cell }} are shown as &lt;{{ min_cell }}.</p>

<h2>Method</h2>
<p class="muted">New respondents were assigned with the saved model: its feature encoder; an embedding at the
membership-weighted mean of the training embedding of each respondent's exact nearest training answer patterns
(UMAP's transform initialisation without its stochastic refinement, so that a respondent's archetype does not depend on
who else is assigned with it); HDBSCAN's approximate prediction; the mixture's posteriors; the nearest K-Means centre.
The same experiment was then fitted on the new cohort alone and compared with the assignment.</p>
</div>
{% if not fragment %}</body></html>{% endif %}
"""


def render_report(rep: Replication, *, fragment: bool = False, min_cell: int = 10) -> str:
    """The replication report: one self-contained HTML page (or a fragment)."""
    import jinja2

    def isnum(v):
        return v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["num"] = lambda v, d=2: f"{v:.{d}f}" if isnum(v) else "–"
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%" if isnum(v) else "–"
    env.filters["p"] = lambda v: ("< 0.001" if v < 0.001 else f"{v:.3f}") if isnum(v) else "–"
    env.filters["star"] = lambda v: "*" if isnum(v) and v < ALPHA else ""
    env.filters["dash"] = lambda v: v if isnum(v) else "–"
    env.filters["cell"] = lambda v: (f"<{min_cell}" if 0 < v < min_cell else v) if isnum(v) else "–"

    def records(frame):
        return [{k: (None if (v is pd.NA or (isinstance(v, float) and np.isnan(v) and k.endswith("archetype")))
                     else v) for k, v in r.items()} for r in frame.to_dict("records")]

    return env.from_string(_TEMPLATE).render(
        rep=rep, s=rep.summary, fragment=fragment, min_cell=min_cell,
        ps=records(rep.prediction_strength), matching=records(rep.matching),
        shares=records(rep.shares), outcomes=records(rep.outcomes))

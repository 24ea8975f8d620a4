"""The experiment runner: compose the stages and write a run directory.

A run is written to a hidden temporary folder beside its final place and
renamed into place only when every file is written, so a run directory that
exists is complete.  An existing run is never overwritten.  The checks made
before any fit are in :mod:`segment.plan`; making, locking and writing the
folder in :mod:`segment.rundir`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from .cohort import Cohort
from .config import ExperimentConfig, load_config
from .errors import ConfigError
from .executors import local_workers, start_local_workers
from .pipeline import NOISE, Segmentation, evaluate, fit_segmentation, stage_seed

# imported from here by other modules
from .plan import Plan, exclusions, load_experiment_cohort, prepare, select_features  # noqa: F401
from .progress import Progress, peak_rss_mib
from .rundir import (  # noqa: F401
    MANIFEST_FILE,
    FolderLock,
    check_output,
    discard,
    make_folders,
    manifest,
    new_working_folder,
    open_run_dir,
    package_versions,
    write_csv,
    write_json,
    write_run,
)
from .vocabulary import ASSIGNMENT_COLUMNS, registered_methods, seed_stream

MODEL_FILE = "model/segmentation.pkl"
WORK_FOLDER = "work"  # checkpoints of an unfinished run; removed when it completes
DISPLAY_POINTS = 5000


@dataclass
class Run:
    """The result of :func:`run_experiment`.

    Attributes
    ----------
    config : ExperimentConfig
    cohort : Cohort
    segmentation : Segmentation
    assignments : DataFrame
        One row per respondent of the cohort.
    tables : dict of DataFrame
        Every table written to the run directory, by file stem.
    metrics : dict
        What ``metrics.json`` holds.
    manifest : dict
        What ``manifest.json`` holds.
    stability : StabilityResult or None
        The stability analysis, when it ran.
    profiles : ArchetypeProfiles or None
        Every method's outcome profiles.
    path : Path or None
        The run directory.
    """

    config: ExperimentConfig
    cohort: Cohort
    segmentation: Segmentation | None
    assignments: pd.DataFrame
    tables: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    stability: object = None
    profiles: object = None
    path: Path | None = None
    progress: Progress | None = None

    @property
    def summary(self) -> list[str]:
        return self.metrics.get("summary", [])

    def _repr_html_(self) -> str:
        from .report import render_summary_html
        return render_summary_html(self)


def assignments_table(cohort: Cohort, reason: pd.Series, seg: Segmentation | None) -> pd.DataFrame:
    """One row per respondent of the cohort: labels, probabilities, exclusion."""
    out = pd.DataFrame(index=cohort.ids)
    out["excluded"] = reason != ""
    out["exclusion_reason"] = reason
    cols = ["hdbscan_label", "hdbscan_probability", "hdbscan_outlier_score", "hdbscan_soft_label",
            "gmm_component", "gmm_posterior", "kmeans_cluster"]
    for c in cols:
        out[c] = pd.NA
    if seg is not None:
        ids = seg.ids
        inv = seg.inverse
        out.loc[ids, "hdbscan_label"] = seg.hdbscan.labels[inv]
        out.loc[ids, "hdbscan_probability"] = seg.hdbscan.probabilities[inv]
        out.loc[ids, "hdbscan_outlier_score"] = seg.hdbscan.outlier_scores[inv]
        if seg.hdbscan.soft_labels is not None:
            out.loc[ids, "hdbscan_soft_label"] = seg.hdbscan.soft_labels[inv]
        if seg.gmm is not None:
            out.loc[ids, "gmm_component"] = seg.gmm.labels[inv]
            out.loc[ids, "gmm_posterior"] = seg.gmm.posteriors.max(axis=1)[inv]
        if seg.kmeans is not None:
            out.loc[ids, "kmeans_cluster"] = seg.kmeans[inv]
    for method in registered_methods():
        out[method.column] = pd.NA
        if seg is not None and seg.point_labels(method.name) is not None:
            out.loc[seg.ids, method.column] = seg.labels(method.name)
    if seg is None or seg.hdbscan.soft_labels is None:
        out = out.drop(columns=["hdbscan_soft_label"])
    for c in out.columns:
        if c.endswith(("_label", "_component", "_cluster")) or c in ASSIGNMENT_COLUMNS.values():
            out[c] = out[c].astype("Int64")
        elif c not in ("excluded", "exclusion_reason"):
            out[c] = pd.to_numeric(out[c]).astype(float)
    out.index.name = "respondent"
    return out


def covariate_crosstab(cohort: Cohort, assignments: pd.DataFrame) -> pd.DataFrame:
    """Counts of each level of each categorical covariate per archetype (long form).

    Shareable only after small-cell suppression, which the report applies.
    """
    rows = []
    analysed = assignments[~assignments["excluded"]]
    categorical = [c for c in cohort.covariates.columns if cohort.covariates[c].dtype == object]
    for method, col in ASSIGNMENT_COLUMNS.items():
        if col not in analysed or analysed[col].isna().all():
            continue
        for cov in categorical:
            table = pd.crosstab(cohort.covariates.loc[analysed.index, cov], analysed[col].astype(int))
            rows += [{"method": method, "covariate": cov, "level": str(level), "archetype": int(a), "n": int(n)}
                     for level, counts in table.iterrows() for a, n in counts.items()]
    return pd.DataFrame(rows, columns=["method", "covariate", "level", "archetype", "n"])


def archetype_sizes(assignments: pd.DataFrame) -> pd.DataFrame:
    rows = []
    analysed = assignments[~assignments["excluded"]]
    for method, col in ASSIGNMENT_COLUMNS.items():
        counts = analysed[col].value_counts(dropna=True).sort_index()
        for label, n in counts.items():
            rows.append({"method": method, "archetype": int(label), "n": int(n),
                         "share": n / max(len(analysed), 1),
                         "group": "noise" if label == NOISE else "archetype"})
    return pd.DataFrame(rows, columns=["method", "archetype", "n", "share", "group"])


def summary_sentences(cohort: Cohort, assignments: pd.DataFrame, seg: Segmentation | None,
                      min_cell: int = 1) -> list[str]:
    n_ex = int(assignments["excluded"].sum())
    lines = [f"{cohort.n} respondents in the cohort; {cohort.n - n_ex} analysed, {n_ex} excluded."]
    if seg is None:
        lines.append("No archetypes were found: too few respondents to cluster.")
        return lines
    h = seg.hdbscan
    if h.n_clusters == 0:
        cause = next((n.split(" = ")[0] for n in seg.notes if n.startswith("cluster.hdbscan.min_samples")),
                     f"min_cluster_size = {h.min_cluster_size}")
        lines.append(f"HDBSCAN found no archetypes: every respondent is noise ({cause}).")
    else:
        n_noise = int(np.sum(seg.labels("hdbscan") == NOISE))
        noise = (f"{n_noise / len(seg.labels('hdbscan')):.0%} of respondents are" if not 0 < n_noise < min_cell
                 else f"fewer than {min_cell} respondents are")
        lines.append(f"HDBSCAN found {h.n_clusters} archetype(s); {noise} noise (belong to none).")
    if seg.gmm is not None:
        if seg.gmm.k == 1:
            lines.append(f"The Gaussian mixture selected k = 1 by {seg.gmm.criterion.upper()}: no archetypes.")
        else:
            lines.append(f"The Gaussian mixture selected k = {seg.gmm.k} "
                         f"({seg.gmm.model.covariance_type} covariance) by {seg.gmm.criterion.upper()}.")
        lines += seg.gmm.warnings
    if h.n_clusters == 0 and (seg.gmm is None or seg.gmm.k == 1):
        lines.append("No archetypes were found in this cohort.")
    lines += seg.notes
    return lines


UMAP_TRAINING_STATE = ("_knn_search_index", "knn_search_index", "_rp_forest", "graph_", "graph_dists_",
                       "_raw_data", "knn_indices", "knn_dists", "_knn_indices", "_knn_dists", "embedding_")


def _without_training_graph(seg: Segmentation) -> Segmentation:
    """The segmentation to save: UMAP keeps its parameters but not its training
    graph and search index (building the index to pickle it takes minutes on
    a large cohort).  New respondents are placed by
    :func:`segment.predict.embed_new` from the saved distinct feature
    vectors and their embedding, not by ``UMAP.transform``.
    """
    if seg.umap is None:
        return seg
    light = copy.copy(seg.umap)
    for attr in UMAP_TRAINING_STATE:
        if attr in vars(light):
            setattr(light, attr, None)
    return dataclasses.replace(seg, umap=light)


def save_model(run_dir: Path, seg: Segmentation) -> dict:
    """The fitted model: plain data where it can be, a pickle where it must be."""
    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    enc = seg.encoder
    encode = enc.pipeline_.named_steps["encode"]
    plain = {"feature_names": list(map(str, enc.feature_names_)),
             "numeric": list(enc.numeric), "categorical": enc.categorical or {},
             "multiselect": enc.multiselect or {}, "scaler": enc.scaler, "imputer": enc.imputer}
    if "numeric" in encode.named_transformers_:
        sc = encode.named_transformers_["numeric"]
        plain["numeric_center"] = list(map(float, getattr(sc, "mean_", getattr(sc, "center_", []))))
        plain["numeric_scale"] = list(map(float, sc.scale_))
    write_json(model_dir / "features.json", plain)
    if seg.gmm is not None:
        gm = seg.gmm.model
        np.savez(model_dir / "gmm.npz", weights=gm.weights_, means=gm.means_,
                 covariances=gm.covariances_, covariance_type=np.array(gm.covariance_type))
    path = run_dir / MODEL_FILE
    joblib.dump(_without_training_graph(seg), path, compress=3)
    from .readers import file_sha256
    return {"path": MODEL_FILE, "sha256": file_sha256(path)}


def run_experiment(config: ExperimentConfig | str | Path, *, overrides: dict | None = None,
                   quiet: bool = True, write: bool = True, command: str | None = None,
                   cohort: Cohort | None = None, resume: str | Path | None = None,
                   memory=None, place: tuple | None = None) -> Run:
    """Run an experiment end to end and write its run directory.

    Parameters
    ----------
    config : ExperimentConfig, str or Path
        The experiment, or the path of its TOML file.
    overrides : dict, optional
        Dotted keys, e.g. ``{"reduce.n_neighbors": 30}``.
    quiet : bool
        No progress lines on stderr.
    write : bool
        Write a run directory (otherwise only return the results).
    command : str, optional
        The command line recorded in the manifest.
    cohort : Cohort, optional
        An already loaded cohort instead of the config's files.
    resume : str or Path, optional
        The working folder of an interrupted run whose finished resamples
        are reused.
    memory : joblib.Memory, optional
        Content-addressed cache of fitted stages (used by sweeps).
    place : (Path, str), optional
        Folder and name of the run directory instead of
        ``<output>/<name>/<timestamp>``.

    Returns
    -------
    Run
    """
    started = time.perf_counter()
    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides)
    elif overrides:
        raise ConfigError("overrides apply to a config file; edit the ExperimentConfig directly.")
    load_started = time.perf_counter()
    if write and place is None and resume is None:
        check_output(config)
    plan = prepare(config, cohort)
    if not quiet:
        for w in plan.warnings:
            print(f"segment: warning: {w}", file=sys.stderr)
    load_seconds = time.perf_counter() - load_started
    final = tmp = lock = None
    made = []
    if write:
        final, tmp, made, lock = _open_locked(config, resume, place)
    try:
        work = None if tmp is None else tmp / WORK_FOLDER
        run = _run(plan, quiet=quiet, workdir=work, resume=resume, memory=memory, load_seconds=load_seconds)
        if write:
            _finish_run(run, final, tmp, started, command)
            lock.release(remove=True, where=final)
    except KeyboardInterrupt:
        if tmp is not None:
            print(f"segment: interrupted. Finished work is kept in {tmp}; continue with "
                  f"--resume {tmp}", file=sys.stderr)
        raise
    except BaseException:
        if tmp is not None and resume is None:
            discard(tmp, made)
        raise
    finally:
        if lock is not None:
            lock.release()
    return run


def _open_locked(config: ExperimentConfig, resume, place) -> tuple[Path, Path, list, FolderLock]:
    """The run directory's (final, working) paths, the folders made for it, and the
    lock on its working folder (a new working folder is removed if it cannot be locked)."""
    final, tmp, made = open_run_dir(config, resume, place)
    try:
        lock = FolderLock(tmp).acquire()
    except BaseException:
        if resume is None:
            discard(tmp)
        raise
    return final, tmp, made, lock


def _run(plan: Plan, *, quiet: bool, workdir: Path | None, resume, memory=None,
         load_seconds: float = 0.0) -> Run:
    progress = Progress(quiet)
    progress.stages.append({"stage": "load", "wall_seconds": load_seconds, "peak_rss_mib": peak_rss_mib()})
    with progress:
        return _stages(plan, progress, workdir=workdir, resume=resume, memory=memory)


def _stages(plan: Plan, progress: Progress, *, workdir: Path | None, resume, memory=None) -> Run:
    config, cohort, circular, reason = plan.config, plan.cohort, plan.circular, plan.reason
    seed = np.random.SeedSequence(int(config.experiment.seed))
    analysed = plan.analysed

    seg = None
    if len(analysed) >= 2:
        if config.stability.resamples > 0:
            start_local_workers(config.stability.n_jobs, config.stability.scheduler)
        seg = fit_segmentation(analysed, cohort.codebook, config, seed_stream(seed, "fit"), progress=progress,
                               memory=memory, workers=local_workers(config.stability))
    progress("evaluate")
    evaluation = evaluate(seg, dbcv=config.cluster.dbcv, seed=stage_seed(seed_stream(seed, "fit"), 9)) if seg else \
        {"agreement": [], "indices": [], "contingency": pd.DataFrame()}
    progress.end()
    assignments = assignments_table(cohort, reason, seg)

    tables = _clustering_tables(cohort, seg, evaluation, assignments)
    stability = None
    if config.stability.resamples > 0 and seg is not None:
        from .stability import stability_stage
        stability = stability_stage(config=config, cohort=cohort, features=analysed, segmentation=seg, seed=seed,
                                    progress=progress, workdir=workdir, memory=memory)
    from .profile import profile_stage
    profiles = profile_stage(config=config, cohort=cohort, segmentation=seg, seed=seed, progress=progress,
                             outcomes=plan.outcomes, covariates=plan.covariates,
                             stability=None if stability is None else stability.stability)
    stages = [(name, result) for name, result in (("stability", stability), ("profile", profiles))
              if result is not None]
    for _, result in stages:
        tables.update(result.tables())
    if seg is not None:
        with progress.stage("display embedding"):
            tables["embedding_2d"] = display_embedding(seg, config, seed_stream(seed, "display"))
    progress.end()

    metrics = _metrics(plan, seg, evaluation)
    metrics.update({name: result.metrics for name, result in stages})
    run = Run(config=config, cohort=cohort, segmentation=seg, assignments=assignments, tables=tables,
              metrics=metrics, stability=stability, profiles=None if profiles is None else profiles.profiles)
    run.progress = progress
    metrics["summary"] = summary_sentences(cohort, assignments, seg, config.report.min_cell) + \
        [line for _, result in stages for line in result.summary]
    if circular:
        metrics["summary"].append(
            f"Outcome item(s) {', '.join(circular)} were used as clustering features "
            "(features.allow_outcome_features): their profiles are circular.")
    return run


def _clustering_tables(cohort: Cohort, seg: Segmentation | None, evaluation: dict,
                       assignments: pd.DataFrame) -> dict:
    """The tables of the clustering and its evaluation, before the stability and profile stages add theirs."""
    tables = {
        "model_selection": seg.gmm.table if seg is not None and seg.gmm is not None else pd.DataFrame(),
        "archetype_sizes": archetype_sizes(assignments),
        "agreement": pd.DataFrame(evaluation["agreement"]),
        "indices": pd.DataFrame(evaluation["indices"]),
        "missingness": cohort.missingness,
        "answers": cohort.answers,
    }
    tables["covariate_crosstab"] = covariate_crosstab(cohort, assignments)
    if len(evaluation["contingency"]):
        c = evaluation["contingency"]
        tables["contingency_hdbscan_gmm"] = c.rename_axis(index="hdbscan", columns=None).reset_index()
    return tables


def _metrics(plan: Plan, seg: Segmentation | None, evaluation: dict) -> dict:
    """The figures of ``metrics.json`` that the cohort, the clustering and its evaluation give."""
    config, cohort, reason = plan.config, plan.cohort, plan.reason
    excluded_counts = reason[reason != ""].value_counts().to_dict()
    return {
        "cohort": {"name": cohort.codebook.name, "title": cohort.codebook.title, "n": cohort.n,
                   "n_analysed": int(len(plan.analysed)), "n_excluded": int((reason != "").sum()),
                   "excluded_by_reason": excluded_counts},
        "features": list(plan.features.columns),
        "outcome_features": plan.circular,
        "n_features_encoded": 0 if seg is None else int(seg.X.shape[1]),
        "n_distinct_answer_patterns": 0 if seg is None else int(len(seg.X)),
        "hdbscan": {} if seg is None else {
            "n_archetypes": seg.hdbscan.n_clusters,
            "noise_share": float(np.mean(seg.labels("hdbscan") == NOISE)),
            "min_cluster_size": seg.hdbscan.min_cluster_size},
        "gmm": {} if seg is None or seg.gmm is None else {
            "k": seg.gmm.k, "covariance_type": seg.gmm.model.covariance_type,
            "criterion": seg.gmm.criterion, "warnings": seg.gmm.warnings},
        "kmeans": {} if seg is None or seg.kmeans is None else {"k": int(len(np.unique(seg.kmeans))),
                                                                  "space": config.cluster.kmeans.space},
        "umap": {} if seg is None or seg.umap is None else {"n_neighbors": int(seg.umap.n_neighbors),
                                                             "n_components": int(seg.umap.n_components)},
        "agreement": evaluation["agreement"],
        "indices": evaluation["indices"],
    }


def _finish_run(run: Run, final: Path, tmp: Path, started: float, command: str | None) -> None:
    """Write every file into the working folder, then rename it into place."""
    with run.progress.stage("write"):
        write_run(tmp, run)
        model = save_model(tmp, run.segmentation) if run.segmentation is not None else None
    run.manifest = manifest(run, final.name, model, started, command)
    write_json(tmp / MANIFEST_FILE, run.manifest)
    run.path = final
    from .report import render_run
    render_run(run, tmp)
    shutil.rmtree(tmp / WORK_FOLDER, ignore_errors=True)
    os.rename(tmp, final)


def display_embedding(seg: Segmentation, config: ExperimentConfig, seed) -> pd.DataFrame:
    """2-D coordinates of (a sample of) the distinct points, for the report's picture.

    The clustering embedding is used when it is 2-D; otherwise a 2-D UMAP
    with the same parameters (its layout epochs included) is fitted on at most
    5,000 distinct points.
    No respondent id is kept: only coordinates and labels.
    """
    rng = np.random.default_rng(stage_seed(seed, 0))
    n = len(seg.X)
    sample = np.sort(rng.choice(n, DISPLAY_POINTS, replace=False)) if n > DISPLAY_POINTS else np.arange(n)
    if seg.umap is None:
        xy = np.zeros((len(sample), 2))
        xy[:, : min(2, seg.embedding.shape[1])] = seg.embedding[sample, :2]
    elif seg.embedding.shape[1] == 2:
        xy = seg.embedding[sample]
    else:
        from .reduce import fit_umap
        rc = config.reduce
        _, xy = fit_umap(seg.X[sample], random_state=stage_seed(seed, 1), n_neighbors=rc.n_neighbors,
                         min_dist=max(rc.min_dist, 0.1), n_components=2, metric=rc.metric, n_epochs=rc.n_epochs)
    weights = np.bincount(seg.inverse, minlength=n)[sample]
    out = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "respondents": weights,
                        "hdbscan": seg.hdbscan.labels[sample]})
    if seg.gmm is not None:
        out["gmm"] = seg.gmm.labels[sample]
    if seg.kmeans is not None:
        out["kmeans"] = seg.kmeans[sample]
    return out


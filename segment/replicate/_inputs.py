"""What a replication reads: the saved model, the new cohort and the original outcomes.

The model pickle can run code when loaded: :func:`load_model` checks its
SHA-256 against ``manifest.json`` first and refuses a file that does not
match.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..errors import SegmentError
from ..predict import check_features, model_features


def load_model(run_dir) -> tuple:
    """The fitted :class:`~segment.pipeline.Segmentation` of a run and its manifest.

    The pickle's SHA-256 is checked against ``manifest.json`` before it is
    unpickled (unpickling can run code); a mismatch is refused.

    Returns
    -------
    (Segmentation, dict)

    Raises
    ------
    SegmentError
        The run directory, its manifest or its model is missing, or the model
        file does not match its checksum.
    """
    import json

    import joblib

    from ..readers import file_sha256

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise SegmentError(f"{run_dir} is not a run directory: it has no manifest.json. Give the folder "
                           "that 'segment run' wrote (reports/<experiment>/<run id>).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SegmentError(f"{manifest_path}: not valid JSON ({exc}).") from None
    model = manifest.get("model")
    if not model or not model.get("path") or not model.get("sha256"):
        raise SegmentError(f"{manifest_path} records no model: the run fitted none (too few respondents?), "
                           "so there is nothing to replicate.")
    path = (run_dir / model["path"]).resolve()
    if run_dir.resolve() not in path.parents:
        raise SegmentError(f"{manifest_path}: model path {model['path']!r} points outside the run directory; "
                           "refusing to load it.")
    if not path.is_file():
        raise SegmentError(f"model file {path} named in {manifest_path} is missing.")
    found = file_sha256(path)
    if found != model["sha256"]:
        raise SegmentError(
            f"model file {path} does not match its checksum in manifest.json; refusing to load it "
            f"(expected sha256 {model['sha256']}, found {found}). The file was changed after the run: "
            "restore it or run the experiment again.")
    from ..pipeline import Segmentation

    try:
        seg = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways; none is the user's code
        raise SegmentError(f"model file {path} cannot be read ({type(exc).__name__}: {exc}).") from None
    if not isinstance(seg, Segmentation):
        raise SegmentError(f"model file {path} holds a {type(seg).__name__}, not a segmentation written by "
                           "'segment run'; run the experiment again.")
    if "pca" not in vars(seg):
        seg.pca = None
    if "spaces" not in vars(seg):  # saved before segmentations recorded them: the run's config says
        cluster = manifest.get("config", {}).get("cluster", {})
        seg.spaces = {"gmm": cluster.get("gmm", {}).get("space", "embedding"),
                      "kmeans": cluster.get("kmeans", {}).get("space", "features")}
    return seg, manifest


def read_new_cohort(run_dir: Path, manifest: dict, cohort_path, codebook_path, config) -> tuple:
    """The new cohort, validated as the original was, and the warnings its loading raised.

    Returns
    -------
    (Cohort, list of str)
    """
    from ..cohort import Cohort, load_cohort

    if isinstance(cohort_path, Cohort):
        return cohort_path, []
    cohort_file = Path(cohort_path)
    codebook = _codebook_for(run_dir, manifest, cohort_file, codebook_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = load_cohort(cohort_file, codebook, resubmissions=config.experiment.resubmissions)
    return cohort, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _codebook_for(run_dir: Path, manifest: dict, cohort_path, codebook_path):
    from ..readers import file_sha256

    if codebook_path is not None:
        return Path(codebook_path)
    name = (manifest.get("input") or {}).get("codebook")
    sha = (manifest.get("input") or {}).get("codebook_sha256")
    places = [run_dir / "codebook.toml", run_dir / "input" / "codebook.toml"]
    if name:
        if cohort_path is not None:
            places.insert(0, Path(cohort_path).parent / name)
        places += [run_dir / name, run_dir / "input" / name]
    for p in places:
        if p.is_file() and (sha is None or file_sha256(p) == sha):
            return p
    raise SegmentError(
        f"the codebook of the new cohort was not given and the run's codebook ({name or 'unknown'}, "
        "same checksum) is neither beside the cohort file nor in the run directory. Give it with "
        "--codebook.")


def versions_differ(manifest: dict) -> list[str]:
    from ..rundir import package_versions

    then, now = manifest.get("packages") or {}, package_versions()
    out = []
    for name in sorted(set(then) | set(now)):
        if name == "segment":
            continue
        if then.get(name) != now.get(name):
            out.append(f"{name} {then.get(name) or 'absent'} when the model was fitted, "
                       f"{now.get(name) or 'absent'} now")
    if out:
        return ["package versions differ from the run's (results may differ for that reason alone): "
                + "; ".join(out) + "."]
    return []


def analysed_features(seg, cohort, manifest: dict, config) -> tuple:
    """The model's features of the new cohort's respondents that are analysed.

    Returns
    -------
    (Series, DataFrame, list of str)
        The exclusion reason of every respondent (empty when analysed), the
        features of those analysed, and warnings.

    Raises
    ------
    SegmentError
        The cohort lacks a feature of the model, or fewer than two
        respondents can be analysed.
    """
    from ..plan import exclusions

    available = pd.concat([cohort.features, cohort.outcomes, cohort.covariates], axis=1)
    available = available.loc[:, ~available.columns.duplicated()]
    where = cohort.source.name if cohort.source is not None else "the new cohort"
    check_features(seg, available.columns, where)
    features = available[model_features(seg)]
    warn = _category_notes(seg, cohort)
    reason = exclusions(features, config)
    fitted_again = int(pd.Index(cohort.ids[(reason == "").to_numpy()]).isin(seg.ids).sum())
    if fitted_again and cohort.sha256 is not None and cohort.sha256 == manifest.get("input", {}).get("sha256"):
        warn.append(f"{fitted_again} respondent(s) of the new cohort are ones the model was fitted on (the same "
                    "file): agreement with itself says nothing about replication. Use a new cohort, or "
                    "--split-half.")
    analysed = features[reason == ""]
    if len(analysed) < 2:
        raise SegmentError(f"{where}: {len(analysed)} respondent(s) can be analysed; a replication needs more.")
    return reason, analysed, warn


def _category_notes(seg, cohort) -> list[str]:
    notes = []
    known = {it.name: it for it in cohort.codebook.items}
    for col, cats in list((seg.encoder.categorical or {}).items()) + list((seg.encoder.multiselect or {}).items()):
        item = known.get(col)
        if item is None or not getattr(item, "categories", None):
            continue
        new = [c for c in item.categories if c not in set(cats)]
        if new:
            notes.append(f"'{col}': answer(s) {', '.join(map(repr, new))} of the new codebook were not in "
                         "the model; respondents giving them get no indicator for them.")
    return notes


def original_outcomes(run_dir: Path, config, cohort) -> tuple:
    """The original run's ``profiles.csv`` and the outcomes both cohorts hold.

    Returns
    -------
    (DataFrame, list of str, list of str)
        The profiles (empty without the file), the outcome names to
        compare, and a warning naming outcomes the new cohort lacks.
    """
    profiles_csv = run_dir / "profiles.csv"
    profiles = pd.read_csv(profiles_csv) if profiles_csv.is_file() else pd.DataFrame(
        columns=["method", "archetype", "outcome", "statistic", "value"])
    outcome_names = list(config.profile.outcomes) or sorted(profiles["outcome"].dropna().unique())
    absent = [o for o in outcome_names if o not in cohort.outcomes.columns]
    warn = []
    if absent:
        warn.append(f"outcome(s) {', '.join(absent)} of the original run are not in the new cohort: "
                    "their differences cannot be compared.")
    return profiles, [o for o in outcome_names if o not in absent], warn

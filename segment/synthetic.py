"""Synthetic cohorts with known structure, for tests, benchmarks and demos.

:func:`planted_cohort` writes answers the way a survey export holds them
(text labels, a missing code, a multiselect column) together with a codebook
that decodes them, so that synthetic data goes through exactly the same
loading path as a real cohort.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

LIKERT = ("Never", "Rarely", "Sometimes", "Often", "Very often")


@dataclass
class SyntheticCohort:
    """Answers, codebook and the truth they were drawn from.

    Attributes
    ----------
    answers : DataFrame
        One row per respondent, answer text as a survey export holds it.
    codebook : str
        The TOML codebook that decodes ``answers``.
    truth : ndarray of int
        Planted archetype of each respondent.
    latent : ndarray of float
        A latent dimension (for structure-free cohorts).
    """

    answers: pd.DataFrame
    codebook: str
    truth: np.ndarray
    latent: np.ndarray

    def write(self, folder, name: str = "cohort") -> tuple:
        """Write ``<name>.csv`` and ``<name>.toml``; return their paths."""
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        csv, toml = folder / f"{name}.csv", folder / f"{name}.toml"
        self.answers.to_csv(csv, index=False)
        toml.write_text(self.codebook, encoding="utf-8")
        return csv, toml


def _codebook(n_features: int, outcomes: list[str], extra: str) -> str:
    blocks = ['[survey]\nname = "synthetic"\ntitle = "Synthetic cohort"\n',
              '[[column]]\ncolumn = "respondent_id"\nname = "respondent_id"\nrole = "id"\n']
    levels = ", ".join(f'"{lv}"' for lv in LIKERT)
    for j in range(n_features):
        blocks.append(f'[[column]]\ncolumn = "Q{j + 1}"\nname = "item_{j + 1}"\nrole = "feature"\n'
                      f'type = "likert"\nlevels = [{levels}]\nmissing = ["Don\'t know"]\n')
    for o in outcomes:
        blocks.append(f'[[column]]\ncolumn = "{o}_score"\nname = "{o}"\nrole = "outcome"\n'
                      f'type = "numeric"\nrange = [0, 21]\n')
    blocks.append('[[column]]\ncolumn = "age"\nname = "age"\nrole = "covariate"\ntype = "numeric"\n'
                  'range = [10, 100]\n')
    blocks.append('[[column]]\ncolumn = "gender"\nname = "gender"\nrole = "covariate"\n'
                  'type = "categorical"\ncategories = ["female", "male", "other"]\n'
                  'aliases = { "F" = "female", "M" = "male" }\n')
    return "\n".join(blocks) + extra


def planted_cohort(n: int = 300, k: int = 3, n_features: int = 8, *, separation: float = 3.0,
                   structure: bool = True, outcome_means: dict | None = None,
                   dont_know_share: float = 0.0, seed: int = 0,
                   extra_columns: dict | None = None, continuous: bool = False) -> SyntheticCohort:
    """A cohort with ``k`` planted archetypes (or none).

    Parameters
    ----------
    n : int
        Respondents.
    k : int
        Archetypes, of equal expected size.
    n_features : int
        Likert items (1–5, answered as "Never" … "Very often").
    separation : float
        How far an archetype stands out on its own items, in units of the
        within-archetype SD (archetype ``a`` is high on items ``a``,
        ``a + k``, ``a + 2k`` ...).
    structure : bool
        When False, answers come from one latent dimension plus noise: a
        continuum with no archetypes.
    outcome_means : dict, optional
        Outcome name -> list of k means (SD 1).  Without structure, outcomes
        rise along the latent dimension instead.
    dont_know_share : float
        Share of answers replaced by "Don't know".
    seed : int
    extra_columns : dict, optional
        Column name -> list of values appended to the answers (e.g. planted
        identifiers); they are not in the codebook.
    continuous : bool
        Write features as numbers with two decimals instead of Likert labels
        (for large benchmark cohorts where Likert ties dominate).
    """
    rng = np.random.default_rng(seed)
    outcome_means = outcome_means or {"anxiety": [7.0] * k, "depression": [7.0] * k}
    truth = rng.integers(0, k, n) if structure else np.zeros(n, int)
    latent = rng.normal(size=n)
    if structure:
        # archetype a is high on every k-th item starting at item a
        centres = np.array([[separation if j % k == a else 0.0 for j in range(n_features)]
                            for a in range(k)])
        raw = centres[truth] + rng.normal(size=(n, n_features))
    else:
        loadings = rng.uniform(0.5, 1.0, n_features)
        raw = latent[:, None] * loadings + rng.normal(scale=0.7, size=(n, n_features))
    frame = pd.DataFrame({"respondent_id": [f"S{i:06d}" for i in range(n)]})
    if continuous:
        values = np.round(raw, 2)
        for j in range(n_features):
            frame[f"Q{j + 1}"] = values[:, j]
    else:
        cuts = np.quantile(raw, [0.2, 0.4, 0.6, 0.8])
        codes = np.digitize(raw, cuts)
        labels = np.asarray(LIKERT, dtype=object)[codes]
        if dont_know_share > 0:
            labels[rng.random(labels.shape) < dont_know_share] = "Don't know"
        for j in range(n_features):
            frame[f"Q{j + 1}"] = labels[:, j]
    for name, means in outcome_means.items():
        mu = np.asarray(means, float)[truth] if structure else 7 + 2 * latent
        frame[f"{name}_score"] = np.clip(np.round(mu + rng.normal(size=n), 2), 0, 21)
    frame["age"] = rng.integers(18, 70, n)
    frame["gender"] = rng.choice(["F", "M", "female", "male", "other"], n, p=[0.3, 0.3, 0.15, 0.2, 0.05])
    for col, values in (extra_columns or {}).items():
        frame[col] = values
    book = _codebook(n_features, list(outcome_means), "")
    if continuous:
        book = book.replace('type = "likert"\nlevels = [' + ", ".join(f'"{lv}"' for lv in LIKERT) + ']',
                            'type = "numeric"')
    return SyntheticCohort(frame, book, truth, latent)


def experiment_toml(csv, codebook, output, *, name: str = "synthetic", seed: int = 1,
                    extra: str = "", null_cohorts: int = 8) -> str:
    """A small experiment file for a synthetic cohort (fast settings).

    ``null_cohorts`` sets ``stability.null_cohorts`` unless ``extra`` does.
    The fast default of 8 builds a null reference but cannot reach a
    Monte-Carlo p-value small enough to call an archetype stable (the
    smallest is 1/9); an experiment that needs stable verdicts asks for
    the shipped 60.
    """
    if "null_cohorts" not in extra:
        setting = f"null_cohorts = {null_cohorts}\n"
        if re.search(r"^\[stability\]\s*$", extra, flags=re.M):
            extra = re.sub(r"^\[stability\]\s*\n", lambda m: m.group(0) + setting, extra, count=1, flags=re.M)
        else:
            extra = f"{extra}\n[stability]\n{setting}"
    return (
        f'[experiment]\nname = "{name}"\nseed = {seed}\ncohort = "{csv}"\ncodebook = "{codebook}"\n'
        f'output = "{output}"\n\n[reduce]\nn_neighbors = 15\nn_components = 3\n\n'
        f'[cluster.hdbscan]\nmin_cluster_size = 0.1\n\n[cluster.gmm]\nk = [1, 5]\n'
        f'covariance_types = ["full"]\nn_init = 1\n\n[cluster.kmeans]\nk = 3\n' + extra
    )

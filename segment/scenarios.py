"""Known-truth survey cohorts that look like real ones, for calibration.

A :class:`Scenario` describes a cohort: planted archetypes of unequal size
whose nearest pair stands a given Mahalanobis distance apart on a latent
scale, items correlated within an archetype, the item types surveys hold
(Likert answers as text and as numbers, an ordinal time range, a
multi-select list of platforms), missing codes, random responders, and
outcomes with planted differences and planted equal pairs.  Three kinds of
structure-free cohort serve as controls:

``"continuum"``
    every item loads on one latent factor; no modes.
``"gaussian"``
    one multivariate Gaussian with the covariance of the clustered cohort
    of the same scenario: the same correlations, no modes.
``"copula"``
    a Gaussian copula of the bundled cohort's answers: every item keeps its
    marginal distribution and the items their rank correlations.

:func:`make_cohort` writes answers as a survey export holds them together
with the codebook that decodes them, so that a synthetic cohort goes
through exactly the path of a real one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .copula import copula_order
from .synthetic import SyntheticCohort

LIKERT_TEXT = ("Never", "Rarely", "Sometimes", "Often", "Very often")
LIKERT_NUMBERS = ("1", "2", "3", "4", "5")
TIME_RANGES = ("Less than an hour", "Between 1 and 2 hours", "Between 2 and 3 hours",
               "Between 3 and 4 hours", "Between 4 and 5 hours", "More than 5 hours")
TIME_HOURS = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
PLATFORMS = ("Facebook", "Instagram", "YouTube", "TikTok", "Snapchat", "Reddit")
OUTCOMES = ("anxiety", "depression", "sleep")
KINDS = ("archetypes", "continuum", "gaussian", "copula")
RANDOM_RESPONDER = -1  # truth label of a planted random responder
SCORE_POINTS_PER_SD = 3.5  # an outcome score (0-21, centred on 7) moves 3.5 points per SD of its outcome


@dataclass(frozen=True)
class Scenario:
    """A known-truth cohort design.

    Parameters
    ----------
    kind : {"archetypes", "continuum", "gaussian", "copula"}
        Planted archetypes, or one of the structure-free controls.
    n : int
        Respondents.
    shares : tuple of float
        Expected share of each planted archetype (normalised to 1).
    separation : float
        Mahalanobis distance, under the within-archetype covariance of the
        latent answers, between the nearest pair of archetype centres.
        Other pairs stand further apart.
    n_likert : int
        Likert items (1–5); the first half are answered with text labels,
        the rest with the numbers 1–5.
    within_correlation : float
        Correlation of any two latent items within an archetype (one
        common factor).
    missing_share : float
        Share of Likert answers given as "Don't know" (and half that share
        of time answers as "Prefer not to say").
    random_share : float
        Share of random responders: every answer drawn uniformly.
    outcome_means : tuple of tuple
        Per outcome (anxiety, depression, sleep), the mean of each archetype
        in within-archetype SD units.  Archetypes beyond the tuple's length
        get 0.
    name : str
        A label for tables.
    """

    kind: str = "archetypes"
    n: int = 600
    shares: tuple = (0.40, 0.25, 0.15, 0.12, 0.08)
    separation: float = 4.0
    n_likert: int = 10
    within_correlation: float = 0.3
    missing_share: float = 0.03
    random_share: float = 0.0
    outcome_means: tuple = ((0.0, 0.8, 0.0, 0.8, 0.4),   # anxiety: 0 = 2, 1 = 3; 0 vs 1 d = 0.8
                            (0.0, 0.0, 0.8, 0.8, 0.0),   # depression
                            (0.0, 0.0, 0.0, 0.0, 0.0))   # sleep: no difference at all
    name: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}.")

    @property
    def k(self) -> int:
        """Planted archetypes (0 for a structure-free control)."""
        return len(self.shares) if self.kind == "archetypes" else 0

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}-n{self.n}"

    def replace(self, **changes) -> Scenario:
        return dataclasses.replace(self, **changes)


@dataclass
class TruthCohort(SyntheticCohort):
    """A synthetic cohort with what was planted.

    Attributes
    ----------
    outcome_means : DataFrame
        Planted mean of every outcome per planted archetype (SD units);
        empty for a structure-free control.
    scenario : Scenario
    expected_outcomes : DataFrame
        Every respondent's expected outcome (SD units) given what was
        planted: the archetype's mean plus the share of the answers' common
        factor; the mean of a group of respondents' expected outcomes is the
        true mean of that group, whatever the group.  Empty for the copula
        control.
    """

    outcome_means: pd.DataFrame = field(default_factory=pd.DataFrame)
    scenario: Scenario | None = None
    expected_outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)


def _within_covariance(q: int, rho: float) -> np.ndarray:
    return (1 - rho) * np.eye(q) + rho * np.ones((q, q))


def _centres(k: int, q: int, separation: float, cov: np.ndarray, rng) -> np.ndarray:
    """Archetype centres, sparse (each differs on about half of the items),
    scaled so that the nearest pair is ``separation`` apart (Mahalanobis)."""
    raw = rng.normal(size=(k, q)) * (rng.random((k, q)) < 0.5)
    raw -= raw.mean(axis=0)
    inv = np.linalg.inv(cov)
    d = [np.sqrt((raw[a] - raw[b]) @ inv @ (raw[a] - raw[b])) for a in range(k) for b in range(a + 1, k)]
    return raw * (separation / min(d))


def _thresholds(q: int, levels: int, rng) -> np.ndarray:
    """Cut points on the standard-normal scale: every item its own skew."""
    base = np.linspace(0, 1, levels + 1)[1:-1]
    out = []
    for _ in range(q):
        shift = rng.uniform(-0.12, 0.12)
        probs = np.clip(base + shift + rng.uniform(-0.04, 0.04, len(base)), 0.02, 0.98)
        out.append(np.sort(probs))
    from scipy.stats import norm
    return norm.ppf(np.array(out))


def _latent(sc: Scenario, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latent answers (n, q) on a unit scale, truth, the latent outcome
    means per respondent (n, 3) and the planted outcome means (k, 3)."""
    q = sc.n_likert + 1 + len(PLATFORMS)
    n = sc.n
    within = _within_covariance(q, sc.within_correlation)
    shares = np.asarray(sc.shares, float) / np.sum(sc.shares)
    k = len(shares)
    centres = _centres(k, q, sc.separation, within, rng)
    planted = np.zeros((k, len(OUTCOMES)))
    for j, means in enumerate(sc.outcome_means[: len(OUTCOMES)]):
        m = np.asarray(means, float)[:k]
        planted[: len(m), j] = m
    if sc.kind == "archetypes":
        truth = rng.choice(k, size=n, p=shares)
        noise = rng.multivariate_normal(np.zeros(q), within, size=n)
        Z = centres[truth] + noise
        # outcomes share the common factor of the answers within an archetype (realistic
        # correlation), which leaves every archetype's planted mean unchanged
        factor = noise.mean(axis=1) / np.sqrt(within.mean())
        mu = planted[truth] + 0.3 * factor[:, None]
    elif sc.kind == "continuum":
        truth = np.zeros(n, int)
        f = rng.normal(size=n)
        loadings = rng.uniform(0.5, 0.85, q)
        Z = f[:, None] * loadings + rng.normal(size=(n, q)) * np.sqrt(1 - loadings**2)
        mu = np.column_stack([0.5 * f, 0.4 * f, 0.2 * f])
    else:  # one Gaussian with the total covariance of the clustered design
        truth = np.zeros(n, int)
        between = (centres - shares @ centres).T @ np.diag(shares) @ (centres - shares @ centres)
        total = within + between
        Z = rng.multivariate_normal(np.zeros(q), total, size=n)
        load = np.linalg.lstsq(total, between @ np.ones(q) / q, rcond=None)[0]
        mu = np.column_stack([Z @ load * s for s in (0.5, 0.4, 0.2)])
    # one unit scale for the cut points: the pooled SD of every latent item
    Z = Z / Z.std(axis=0)
    return Z, truth, mu, planted


def make_cohort(scenario: Scenario, seed: int, *, smmh: Path | None = None) -> TruthCohort:
    """Draw one cohort of a scenario.

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Everything drawn derives from it.
    smmh : Path, optional
        Folder of the bundled cohort (``smmh.csv`` and ``codebook.toml``),
        needed by ``kind = "copula"``.

    Returns
    -------
    TruthCohort
        ``truth`` holds the planted archetype of every respondent
        (-1: a planted random responder; all 0 in a control).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 20261122]))
    if scenario.kind == "copula":
        return _copula_cohort(scenario, rng, smmh)
    sc = scenario
    Z, truth, mu, planted = _latent(sc, rng)
    n, L = sc.n, sc.n_likert
    random_rows = rng.random(n) < sc.random_share
    frame = pd.DataFrame({"respondent_id": [f"R{i:06d}" for i in range(n)]})
    likert_cuts = _thresholds(L, 5, rng)
    for j in range(L):
        labels = LIKERT_TEXT if j < (L + 1) // 2 else LIKERT_NUMBERS
        codes = np.searchsorted(likert_cuts[j], Z[:, j])
        codes[random_rows] = rng.integers(0, 5, random_rows.sum())
        answers = np.asarray(labels, dtype=object)[codes]
        answers[rng.random(n) < sc.missing_share] = "Don't know"
        frame[f"Q{j + 1}"] = answers
    time_cuts = _thresholds(1, len(TIME_RANGES), rng)[0]
    codes = np.searchsorted(time_cuts, Z[:, L])
    codes[random_rows] = rng.integers(0, len(TIME_RANGES), random_rows.sum())
    answers = np.asarray(TIME_RANGES, dtype=object)[codes]
    answers[rng.random(n) < sc.missing_share / 2] = "Prefer not to say"
    frame["daily_time"] = answers
    popularity = rng.uniform(-0.8, 0.8, len(PLATFORMS))
    chosen = Z[:, L + 1:] > popularity
    chosen[random_rows] = rng.random((random_rows.sum(), len(PLATFORMS))) < 0.5
    frame["platforms"] = [", ".join(p for p, c in zip(PLATFORMS, row) if c) or "None" for row in chosen]
    truth = np.where(random_rows, RANDOM_RESPONDER, truth)
    mu = np.where(random_rows[:, None], 0.0, mu)
    for j, name in enumerate(OUTCOMES):
        z = mu[:, j] + rng.normal(size=n)
        frame[f"{name}_score"] = np.clip(np.round(7 + SCORE_POINTS_PER_SD * z), 0, 21).astype(int)
    frame["age"] = rng.integers(16, 70, n)
    frame["gender"] = rng.choice(["Female", "Male", "F", "M", "Non-binary"], n, p=[0.4, 0.35, 0.1, 0.1, 0.05])
    means = pd.DataFrame(planted, columns=list(OUTCOMES)) if sc.kind == "archetypes" else pd.DataFrame()
    expected = pd.DataFrame(mu, columns=list(OUTCOMES))
    return TruthCohort(frame, _codebook(L), truth, np.zeros(n), means, sc, expected)


def _codebook(n_likert: int) -> str:
    text = ", ".join(f'"{v}"' for v in LIKERT_TEXT)
    numbers = ", ".join(f'"{v}"' for v in LIKERT_NUMBERS)
    blocks = ['[survey]\nname = "scenario"\ntitle = "A known-truth synthetic cohort"\n',
              '[missing]\ncodes = ["Don\'t know", "Prefer not to say"]\n',
              '[[column]]\ncolumn = "respondent_id"\nrole = "id"\n']
    for j in range(n_likert):
        levels = text if j < (n_likert + 1) // 2 else numbers
        blocks.append(f'[[column]]\ncolumn = "Q{j + 1}"\nname = "item_{j + 1}"\nrole = "feature"\n'
                      f'type = "likert"\nlevels = [{levels}]\n')
    time_map = ", ".join(f'"{r}" = {h}' for r, h in zip(TIME_RANGES, TIME_HOURS))
    blocks.append(f'[[column]]\ncolumn = "daily_time"\nrole = "feature"\ntype = "ordinal"\n'
                  f'map = {{ {time_map} }}\n')
    options = ", ".join(f'"{p.lower()}"' for p in PLATFORMS)
    blocks.append(f'[[column]]\ncolumn = "platforms"\nrole = "feature"\ntype = "multiselect"\n'
                  f'separator = ","\noptions = [{options}, "none"]\n')
    for name in OUTCOMES:
        blocks.append(f'[[column]]\ncolumn = "{name}_score"\nname = "{name}"\nrole = "outcome"\n'
                      f'type = "numeric"\nrange = [0, 21]\n')
    blocks.append('[[column]]\ncolumn = "age"\nrole = "covariate"\ntype = "numeric"\nrange = [10, 100]\n')
    blocks.append('[[column]]\ncolumn = "gender"\nrole = "covariate"\ntype = "categorical"\n'
                  'categories = ["female", "male", "nonbinary"]\n'
                  'aliases = { "F" = "female", "M" = "male", "Non-binary" = "nonbinary" }\n')
    return "\n".join(blocks)


def _copula_cohort(sc: Scenario, rng, smmh: Path | None) -> TruthCohort:
    """The bundled cohort's answers, re-drawn as a Gaussian copula of ``sc.n`` rows."""
    from .codebook import load_codebook
    from .cohort import load_cohort
    from .readers import read_survey

    if smmh is None:
        smmh = Path(__file__).resolve().parents[1] / "surveys" / "smmh"
    book = load_codebook(smmh / "codebook.toml")
    cohort = load_cohort(smmh / "smmh.csv", book)
    raw = read_survey(smmh / "smmh.csv").reset_index(drop=True)
    decoded = pd.concat([cohort.features, cohort.outcomes], axis=1).reset_index(drop=True)
    numeric = {}
    for item in book.items:
        if item.role not in ("feature", "outcome") or item.name not in decoded:
            continue
        col = decoded[item.name]
        if item.type == "multiselect":
            numeric[item.column] = col.map(lambda v: np.nan if not isinstance(v, tuple) else len(v)).astype(float)
        elif pd.api.types.is_numeric_dtype(col):
            numeric[item.column] = col.astype(float)
    orders = copula_order(pd.DataFrame(numeric), sc.n, rng)
    frame = pd.DataFrame(index=range(sc.n))
    for column in raw.columns:
        if column in orders:
            source = orders[column]
            values = raw[column].to_numpy(dtype=object)[np.maximum(source, 0)]
            values[source < 0] = ""
            frame[column] = values
        else:
            frame[column] = raw[column].to_numpy(dtype=object)[rng.integers(0, len(raw), sc.n)]
    text = (smmh / "codebook.toml").read_text(encoding="utf-8")
    truth = np.zeros(sc.n, int)
    return TruthCohort(frame, text, truth, np.zeros(sc.n), pd.DataFrame(), sc)


__all__ = ["Scenario", "TruthCohort", "make_cohort", "KINDS", "OUTCOMES", "RANDOM_RESPONDER"]

"""segment: archetypes in survey cohorts.

Survey answers are decoded by a codebook, encoded, imputed and scaled,
reduced with UMAP, clustered with HDBSCAN and Gaussian mixtures, validated by
resampling, profiled against outcomes and written up as a report.
"""

from .codebook import Codebook, load_codebook
from .cohort import Cohort, load_cohort
from .config import ExperimentConfig, load_config
from .errors import SegmentError
from .experiment import Run, run_experiment
from .features import FeatureEncoder
from .pipeline import Segmentation, fit_segmentation

__version__ = "0.1.0"

__all__ = [
    "Codebook", "Cohort", "ExperimentConfig", "FeatureEncoder", "Run", "SegmentError",
    "Segmentation", "fit_segmentation", "load_codebook", "load_cohort", "load_config",
    "run_experiment",
]

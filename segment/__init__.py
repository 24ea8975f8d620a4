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

# the stages after the fit, imported when first used (they load numba-compiled code)
_LAZY = {
    "bootstrap_stability": "stability", "StabilityResult": "stability",
    "profile_archetypes": "profile", "ArchetypeProfiles": "profile",
    "Replication": "replicate",  # replicate() itself is segment.replicate.replicate: the name is the module's
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'segment' has no attribute {name!r}")


__all__ = [
    "ArchetypeProfiles", "Codebook", "Cohort", "ExperimentConfig", "FeatureEncoder", "Replication", "Run",
    "SegmentError", "Segmentation", "StabilityResult", "bootstrap_stability", "fit_segmentation",
    "load_codebook", "load_cohort", "load_config", "profile_archetypes", "run_experiment",
]

"""Encoding, imputation and scaling of clustering features as one transformer.

:class:`FeatureEncoder` turns the decoded feature frame of a
:class:`~segment.cohort.Cohort` into the numeric matrix every clusterer sees:

- numeric, likert and ordinal items are scaled (standard or robust);
- categorical items become one-hot columns times ``categorical_weight``;
- multiselect items become one 0/1 indicator per option and a scaled count
  of options chosen; indicators are not z-scored unless
  ``scale_indicators`` (a rare option would otherwise dominate distances);
- missing values are imputed (KNN in the scaled space by default).

A missing categorical or multiselect answer is missing in every one of its
columns, so the imputer fills it from neighbours rather than reading it as
"none of the options".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from .errors import ConfigError
from .vocabulary import IMPUTERS, SCALERS

_SCALER_CLASSES = {"standard": StandardScaler, "robust": RobustScaler}


class CategoryIndicators(TransformerMixin, BaseEstimator):
    """One-hot columns of a categorical answer, missing kept missing.

    Parameters
    ----------
    categories : list of str or None
        The categories in output order; learned from the data when None.
    weight : float
        Each indicator is ``weight`` or 0.
    """

    def __init__(self, categories=None, weight=1.0):
        self.categories = categories
        self.weight = weight

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        self.columns_ = list(X.columns)
        if self.categories is not None:
            self.categories_ = [list(self.categories)] * len(self.columns_)
        else:
            self.categories_ = [sorted(X[c].dropna().unique().tolist()) for c in self.columns_]
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = pd.DataFrame(X)
        blocks = []
        for col, cats in zip(self.columns_, self.categories_):
            values = X[col].to_numpy(object)
            missing = pd.isna(X[col]).to_numpy(bool)
            block = np.stack([(values == c) for c in cats], axis=1).astype(float) * self.weight
            block[missing] = np.nan
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features=None):
        return np.array([f"{col}={c}" for col, cats in zip(self.columns_, self.categories_) for c in cats],
                        dtype=object)


class OptionIndicators(TransformerMixin, BaseEstimator):
    """Indicators of a multiselect answer (a tuple of options) and its count.

    Parameters
    ----------
    options : list of str
        The options in output order.
    scale_indicators : bool
        Standardise the indicator columns too (the count is always
        standardised).
    """

    def __init__(self, options=(), scale_indicators=False):
        self.options = options
        self.scale_indicators = scale_indicators

    def _indicators(self, X):
        col = pd.DataFrame(X).iloc[:, 0]
        missing = col.map(lambda v: not isinstance(v, tuple)).to_numpy(bool)
        ind = np.array(
            [[o in v if isinstance(v, tuple) else False for o in self.options] for v in col],
            dtype=float,
        ).reshape(len(col), len(self.options))
        count = ind.sum(axis=1, keepdims=True)
        out = np.hstack([ind, count])
        out[missing] = np.nan
        return out

    def fit(self, X, y=None):
        self.name_ = str(pd.DataFrame(X).columns[0])
        raw = self._indicators(X)
        self.scaler_ = StandardScaler().fit(raw if self.scale_indicators else raw[:, -1:])
        return self

    def transform(self, X):
        check_is_fitted(self)
        out = self._indicators(X)
        if self.scale_indicators:
            return self.scaler_.transform(out)
        out[:, -1:] = self.scaler_.transform(out[:, -1:])
        return out

    def get_feature_names_out(self, input_features=None):
        return np.array([f"{self.name_}={o}" for o in self.options] + [f"{self.name_}_count"], dtype=object)


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """The cohort's feature frame as a numeric matrix.

    Parameters
    ----------
    numeric : list of str
        Columns of numbers (likert, ordinal, numeric items and scales).
    categorical : dict
        Column -> its categories.
    multiselect : dict
        Column -> its options.
    scaler : {"standard", "robust"}
        Scaling of numeric columns.
    imputer : {"knn", "median", "drop"}
        How missing values are filled; with ``"drop"`` nothing is filled and
        the caller removes incomplete respondents first.
    knn_neighbors : int
        Neighbours of the KNN imputer.
    categorical_weight : float
        Value of a one-hot indicator.
    scale_indicators : bool
        Whether multiselect indicators are standardised.

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted column transformer and imputer.
    feature_names_ : ndarray of str
        Names of the output columns.
    """

    def __init__(self, numeric=(), categorical=None, multiselect=None, scaler="standard",
                 imputer="knn", knn_neighbors=5, categorical_weight=1.0, scale_indicators=False):
        self.numeric = numeric
        self.categorical = categorical
        self.multiselect = multiselect
        self.scaler = scaler
        self.imputer = imputer
        self.knn_neighbors = knn_neighbors
        self.categorical_weight = categorical_weight
        self.scale_indicators = scale_indicators

    def _validate_params(self):
        # the rules of [features] are config.validate's; these messages speak to a direct caller
        if self.scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {', '.join(SCALERS)}; got {self.scaler!r}.")
        if self.imputer not in IMPUTERS:
            raise ValueError(f"imputer must be one of {', '.join(IMPUTERS)}; got {self.imputer!r}.")
        if not (isinstance(self.knn_neighbors, int) and self.knn_neighbors >= 1):
            raise ValueError(f"knn_neighbors must be an int >= 1; got {self.knn_neighbors!r}.")
        if not self.categorical_weight > 0:
            raise ValueError(f"categorical_weight must be > 0; got {self.categorical_weight!r}.")

    def fit(self, X, y=None):
        self._validate_params()
        X = pd.DataFrame(X)
        blocks = []
        if self.numeric:
            blocks.append(("numeric", _SCALER_CLASSES[self.scaler](), list(self.numeric)))
        for col, cats in (self.categorical or {}).items():
            blocks.append((f"categorical:{col}", CategoryIndicators(list(cats), self.categorical_weight), [col]))
        for col, opts in (self.multiselect or {}).items():
            blocks.append((f"multiselect:{col}", OptionIndicators(list(opts), self.scale_indicators), [col]))
        if not blocks:
            raise ConfigError("no clustering features: the codebook gives no column the role 'feature'.")
        steps = [("encode", ColumnTransformer(blocks, remainder="drop", verbose_feature_names_out=False))]
        if self.imputer == "knn":
            steps.append(("impute", KNNImputer(n_neighbors=self.knn_neighbors, keep_empty_features=True)))
        elif self.imputer == "median":
            steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        self.pipeline_ = Pipeline(steps).fit(X)
        self.feature_names_ = np.asarray(self.pipeline_.named_steps["encode"].get_feature_names_out(), dtype=object)
        return self

    def transform(self, X):
        check_is_fitted(self)
        return np.asarray(self.pipeline_.transform(pd.DataFrame(X)), dtype=float)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.feature_names_


def encoder_for(features: pd.DataFrame, codebook, **params) -> FeatureEncoder:
    """A :class:`FeatureEncoder` for the feature columns of a cohort.

    Parameters
    ----------
    features : DataFrame
        ``Cohort.features``.
    codebook : Codebook
        Gives the categories and options of each column.
    **params
        Passed to :class:`FeatureEncoder` (scaler, imputer, ...).
    """
    numeric, categorical, multiselect = [], {}, {}
    known = {it.name: it for it in codebook.items}
    for col in features.columns:
        item = known.get(col)
        if item is not None and item.type == "categorical":
            categorical[col] = list(item.categories)
        elif item is not None and item.type == "multiselect":
            multiselect[col] = list(item.categories)
        elif item is not None and item.type == "text":
            raise ConfigError(f"feature '{col}' is free text and cannot be clustered on; give it another role.")
        else:
            numeric.append(col)
    return FeatureEncoder(numeric=numeric, categorical=categorical, multiselect=multiselect, **params)


def missing_share(features: pd.DataFrame) -> pd.Series:
    """Share of feature items each respondent left unanswered."""
    return features.isna().mean(axis=1)

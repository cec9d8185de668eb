"""The grade model: one sklearn estimator per setup, preprocessing inside, predictive summaries out.

A :class:`GradeModel` holds two gradient-boosted heads on the same one-hot preprocessing:

* the **mean head** (squared error) gives the predicted grade, the one scored by RMSE and explained
  by SHAP in grade points;
* the **median head** (absolute error) gives the most likely grade, hence the 5-level band and the
  pass/fail decision; an isotonic map fitted on its out-of-fold predictions turns it into a
  calibrated P(pass).

Both heads learn the change from the latest known grade (G2 in ``period2``, G1 in ``period1``, the
training mean in ``early``), which is what makes the period setups reliable on 395 students. The
90% interval is split-conformal: quantiles of out-of-fold residuals of the mean head.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from model.ml.treeshap import TableShap
from model.schema.fields import BANDS, CATEGORICAL, FIELDS, PASS_MARK, SETUP_FEATURES, bands
from model.schema.thresholds import DEFAULT_THRESHOLDS, RISK_LEVELS, Thresholds

ANCHOR = {"early": None, "period1": "G1", "period2": "G2"}
ALGORITHM = "lightgbm-two-head"

# Chosen by the repeated 10-fold protocol on the maths data (see README, "Model quality").
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "early": {"min_child_samples": 3, "median_n_estimators": 400, "median_num_leaves": 8},
    "period1": {"band_rule": "round"},
    "period2": {},
}


TABLE_SHAP_MIN_ROWS = 64  # below this the booster's pred_contrib is faster than the table's numpy calls
PARALLEL_ROWS = 2_000  # below this, one thread: thread start-up costs more than it saves


def _threads(n_rows: int) -> int:
    return 1 if n_rows < PARALLEL_ROWS else (os.cpu_count() or 1)


def risk_level(p_pass: np.ndarray, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """'high' below P(pass) ``risk_high_below`` (0.5 by default: predicted to fail), 'medium' below
    ``risk_medium_below`` (0.75), else 'low'."""
    p = np.asarray(p_pass, dtype=float)
    below = [p < thresholds.risk_high_below, p < thresholds.risk_medium_below]
    return np.select(below, list(RISK_LEVELS[:2]), RISK_LEVELS[2]).astype(object)


def _preprocessor(features: tuple[str, ...]) -> ColumnTransformer:
    """One-hot encoding with the schema's categories, so the encoding never depends on the sample."""
    cats = [c for c in features if c in CATEGORICAL]
    nums = [c for c in features if c not in CATEGORICAL]
    categories = [sorted(FIELDS[c].allowed, key=lambda v: (v != "no", v)) for c in cats]
    encoder = OneHotEncoder(categories=categories, drop="if_binary", handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer([("cat", encoder, cats), ("num", "passthrough", nums)], verbose_feature_names_out=False)


def _booster(
    objective: str, n_estimators: int, num_leaves: int, min_child_samples: int, **common: Any
) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(
        objective=objective,
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        min_child_samples=min_child_samples,
        subsample_freq=1,
        verbose=-1,
        n_jobs=1,
        **common,
    )


BAND_STEP = 0.05


def _band_table(residuals: np.ndarray) -> np.ndarray:
    """The most probable band for each most-likely grade on a 0.05 grid over 0-20.

    Out-of-fold residuals of the median head give the spread of real grades around it; the band
    holding most of that mass is chosen (wide bands such as V, 0-9, win when the spread is wide).
    """
    grid = np.arange(0, 20 + BAND_STEP / 2, BAND_STEP)
    grades = np.clip(np.rint(grid[:, None] + residuals[None, :]), 0, 20)
    labels = bands(grades.ravel()).reshape(grades.shape)
    names = np.array(list(BANDS))
    counts = np.stack([(labels == name).sum(axis=1) for name in names], axis=1)
    return names[counts.argmax(axis=1)].astype(object)


Getter = Callable[[str, bool], np.ndarray]


def _getter(X: pd.DataFrame | Mapping[str, Any]) -> Getter:
    """Column access as arrays (float with NaN for numbers, object for categories) for a frame, a mapping
    of columns (1-D arrays, None for unknown) or one record (a mapping of scalars)."""
    if isinstance(X, pd.DataFrame):
        return lambda name, numeric: (
            X[name].to_numpy(dtype=float, na_value=np.nan) if numeric else X[name].to_numpy(dtype=object)
        )

    def column(name: str, numeric: bool) -> np.ndarray:
        value = X.get(name)
        return np.asarray(value if isinstance(value, np.ndarray) else [value], dtype=float if numeric else object)

    return column


@dataclass(frozen=True)
class Explanation:
    """SHAP values of the mean head grouped to original attributes, in grade points.

    ``base_value + contributions.sum(axis=1) == raw_prediction`` row by row; the predicted grade
    shown to users is ``raw_prediction`` clipped to 0-20.
    """

    base_value: float
    contributions: pd.DataFrame
    raw_prediction: np.ndarray


class GradeModel(RegressorMixin, BaseEstimator):
    """Predicts G3 (0-20) with a 90% interval, a calibrated P(G3 >= 10), a band and a risk level.

    ``band_rule`` picks the band from the most likely grade: ``"round"`` takes that grade's band,
    ``"most_probable"`` the band holding most of the out-of-fold spread around it.
    """

    def __init__(
        self,
        setup: str = "early",
        n_estimators: int = 150,
        learning_rate: float = 0.03,
        num_leaves: int = 8,
        min_child_samples: int = 5,
        median_n_estimators: int = 150,
        median_num_leaves: int = 16,
        median_min_child_samples: int = 20,
        colsample_bytree: float = 0.8,
        subsample: float = 0.8,
        coverage: float = 0.9,
        band_rule: str = "most_probable",
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.setup = setup
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.median_n_estimators = median_n_estimators
        self.median_num_leaves = median_num_leaves
        self.median_min_child_samples = median_min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.coverage = coverage
        self.band_rule = band_rule
        self.cv = cv
        self.random_state = random_state

    _CACHES = ("_plan", "_table_shap")  # derived from the fitted heads on first use; never saved

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key not in self._CACHES}

    # ------------------------------------------------------------------ fitting
    def _boosters(self) -> tuple[lgb.LGBMRegressor, lgb.LGBMRegressor]:
        common = {
            "learning_rate": self.learning_rate,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "random_state": self.random_state,
        }
        mean = _booster("l2", self.n_estimators, self.num_leaves, self.min_child_samples, **common)
        median = _booster(
            "l1", self.median_n_estimators, self.median_num_leaves, self.median_min_child_samples, **common
        )
        return mean, median

    def _anchor(self, get: Getter, n: int) -> np.ndarray:
        column = ANCHOR[self.setup]
        return np.full(n, self.anchor_mean_) if column is None else get(column, True)

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> GradeModel:
        """Fit both heads, then the interval and the P(pass) map on out-of-fold predictions."""
        features = list(SETUP_FEATURES[self.setup])
        X = self._inputs(X, features)
        y = np.asarray(y, dtype=float)
        self.features_ = features
        self.anchor_mean_ = float(y.mean())
        anchor = self._anchor(_getter(X), len(X))
        pre = _preprocessor(SETUP_FEATURES[self.setup]).fit(X)
        Z = pre.transform(X)
        oof_mean, oof_median = np.empty(len(y)), np.empty(len(y))
        folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(Z):
            if ANCHOR[self.setup] is None:
                anchor_train = np.full(len(train), y[train].mean())
                anchor_test = np.full(len(test), y[train].mean())
            else:
                anchor_train, anchor_test = anchor[train], anchor[test]
            mean, median = self._boosters()
            mean.fit(Z[train], y[train] - anchor_train)
            median.fit(Z[train], y[train] - anchor_train)
            oof_mean[test] = anchor_test + mean.predict(Z[test])
            oof_median[test] = anchor_test + median.predict(Z[test])
        mean, median = self._boosters()
        self.mean_head_ = Pipeline([("pre", pre), ("gbm", mean.fit(Z, y - anchor))])
        self.median_head_ = Pipeline([("pre", pre), ("gbm", median.fit(Z, y - anchor))])
        residuals = y - np.clip(oof_mean, 0, 20)
        n, alpha = len(y), 1 - self.coverage
        low_q = max(np.floor((n + 1) * alpha / 2) / n, 0.0)
        high_q = min(np.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
        self.residual_bounds_ = (float(np.quantile(residuals, low_q)), float(np.quantile(residuals, high_q)))
        self.pass_map_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self.pass_map_.fit(np.clip(oof_median, 0, 20), (y >= PASS_MARK).astype(float))
        self.band_table_ = _band_table(y - np.clip(oof_median, 0, 20))
        self.n_train_ = n
        self._build_attribute_index()
        return self

    def _build_attribute_index(self) -> None:
        pre: ColumnTransformer = self.mean_head_.named_steps["pre"]
        names = pre.get_feature_names_out()
        index = []
        for name in names:
            owner = name if name in self.features_ else next(f for f in self.features_ if name.startswith(f + "_"))
            index.append(self.features_.index(owner))
        self.attribute_index_ = np.asarray(index)

    @staticmethod
    def _inputs(X: pd.DataFrame, features: list[str]) -> pd.DataFrame:
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise ValueError(f"missing input columns: {', '.join(missing)}")
        frame = X[features].copy()
        for column in frame.columns:
            if column not in CATEGORICAL:
                frame[column] = frame[column].astype(float)
            else:
                frame[column] = frame[column].astype(object)
        return frame

    # ------------------------------------------------------------------ predicting
    def _encode(self, X: pd.DataFrame | Mapping[str, Any]) -> tuple[Getter, np.ndarray]:
        """The one-hot matrix of ``X`` (a frame, a mapping of columns or one record), equal to the saved
        preprocessor's ``transform`` without its per-call pandas overhead."""
        check_is_fitted(self, "mean_head_")
        present = X.columns if isinstance(X, pd.DataFrame) else X.keys()
        missing = [f for f in self.features_ if f not in present]
        if missing:
            raise ValueError(f"missing input columns: {', '.join(missing)}")
        get = _getter(X)
        blocks = []
        for column, categories in self._encoding_plan():
            if categories is None:
                blocks.append(get(column, True)[:, None])
            else:
                blocks.append((get(column, False)[:, None] == categories[None, :]).astype(float))
        return get, np.hstack(blocks)

    def _encoding_plan(self) -> list[tuple[str, np.ndarray | None]]:
        """(column, kept categories or None for numbers) in the preprocessor's output order."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = []
            for name, transformer, columns in self.mean_head_.named_steps["pre"].transformers_:
                if name == "cat":
                    drops = transformer.drop_idx_ if transformer.drop_idx_ is not None else [None] * len(columns)
                    for column, categories, drop in zip(columns, transformer.categories_, drops, strict=True):
                        kept = [c for i, c in enumerate(categories) if drop is None or i != drop]
                        plan.append((column, np.asarray(kept, dtype=object)))
                elif name == "num":
                    plan.extend((column, None) for column in columns)
            self.__dict__["_plan"] = plan
        return plan

    def _head(self, name: str, Z: np.ndarray, **kwargs: Any) -> np.ndarray:
        head: Pipeline = getattr(self, name)
        return head.named_steps["gbm"].booster_.predict(Z, num_threads=_threads(len(Z)), **kwargs)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted G3 (mean head), clipped to 0-20."""
        get, Z = self._encode(X)
        return np.clip(self._anchor(get, len(Z)) + self._head("mean_head_", Z), 0, 20)

    def predict_details(self, X: pd.DataFrame, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> pd.DataFrame:
        """Per row: predicted_g3, lower, upper, likely_g3, p_pass, band, risk (by ``thresholds``; index kept)."""
        return pd.DataFrame(self._details(*self._encode(X), thresholds=thresholds), index=X.index)

    def predict_arrays(
        self, X: pd.DataFrame | Mapping[str, Any], explain: bool = True, thresholds: Thresholds = DEFAULT_THRESHOLDS
    ) -> tuple[dict[str, np.ndarray], tuple[float, np.ndarray] | None]:
        """The ``predict_details`` columns as arrays (risk by ``thresholds``) and, when ``explain``, the SHAP
        base value and the contributions per attribute (rows x ``features_``), in one pass over the encoded
        rows (the mean head's output is the sum of its SHAP values, so it is not evaluated twice). ``X``: a
        frame, a mapping of columns or one record; no pandas work, so one student costs little more than the
        trees."""
        get, Z = self._encode(X)
        if not explain:
            return self._details(get, Z, thresholds=thresholds), None
        base, per_attribute = self._explain(get, Z)
        details = self._details(get, Z, raw_mean=base + per_attribute.sum(axis=1), thresholds=thresholds)
        return details, (base, per_attribute)

    def explain(self, X: pd.DataFrame) -> Explanation:
        """Exact TreeSHAP of the mean head (see ``_contributions``), grouped per attribute."""
        base, per_attribute = self._explain(*self._encode(X))
        frame = pd.DataFrame(per_attribute, columns=self.features_, index=X.index)
        return Explanation(base, frame, base + per_attribute.sum(axis=1))

    def _details(
        self,
        get: Getter,
        Z: np.ndarray,
        raw_mean: np.ndarray | None = None,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
    ) -> dict[str, np.ndarray]:
        anchor = self._anchor(get, len(Z))
        mean = np.clip(anchor + self._head("mean_head_", Z) if raw_mean is None else raw_mean, 0, 20)
        likely = np.clip(anchor + self._head("median_head_", Z), 0, 20)
        p_pass = self.pass_map_.predict(likely)
        low, high = self.residual_bounds_
        return {
            "predicted_g3": mean,
            "lower": np.clip(mean + low, 0, 20),
            "upper": np.clip(mean + high, 0, 20),
            "likely_g3": likely,
            "p_pass": p_pass,
            "band": self._bands(likely),
            "risk": risk_level(p_pass, thresholds),
        }

    def _bands(self, likely: np.ndarray) -> np.ndarray:
        if self.band_rule == "round":
            return bands(likely)
        return self.band_table_[np.rint(likely / BAND_STEP).astype(int)]

    def _contributions(self, Z: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP of the mean head, as LightGBM's ``pred_contrib``: by table look-up for a batch
        (:mod:`model.ml.treeshap`, ~15x faster), by the booster itself for a few rows."""
        if len(Z) >= TABLE_SHAP_MIN_ROWS:
            explainer = self.__dict__.get("_table_shap")
            if explainer is None:
                try:
                    explainer = TableShap(self.mean_head_.named_steps["gbm"].booster_)
                except ValueError:  # trees too large or not numerical: the booster's own path
                    explainer = False
                self.__dict__["_table_shap"] = explainer
            if explainer:
                return explainer.contributions(Z)
        return self._head("mean_head_", Z, pred_contrib=True)

    def _explain(self, get: Getter, Z: np.ndarray) -> tuple[float, np.ndarray]:
        contrib = self._contributions(Z)
        grouping = np.zeros((len(self.attribute_index_), len(self.features_)))
        grouping[np.arange(len(self.attribute_index_)), self.attribute_index_] = 1.0
        per_attribute = contrib[:, :-1] @ grouping
        base = (float(contrib[0, -1]) if len(Z) else 0.0) + self.anchor_mean_
        anchor_column = ANCHOR[self.setup]
        if anchor_column is not None:
            position = self.features_.index(anchor_column)
            per_attribute[:, position] += get(anchor_column, True) - self.anchor_mean_
        return base, per_attribute


# Artifacts pickled before the core moved into wings name this module by its old path.
sys.modules.setdefault("model.pipelines", sys.modules[__name__])

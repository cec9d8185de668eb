"""The grade model (v2): one predictive distribution of G3 per student and setup, every figure derived from it.

A :class:`GradeModel` is a hurdle (two-part) model on one one-hot preprocessing:

* the **no-grade head** (a gradient-boosted classifier, Platt-calibrated on out-of-fold margins) gives
  P(G3 = 0): the student does not sit the final exam (38 of the 395 maths students);
* the **grade head** (a gradient-boosted regressor fitted on the students who sat it) gives the expected
  grade given sitting; its trees add to a line in the latest known grade (``intercept + slope x G2`` in
  ``period2``, ``x G1`` in ``period1``, fitted on the sitters with the slope kept in 0-1; the training mean
  in ``early``); the out-of-fold residuals of the students whose expected grade was near spread it into a
  distribution over 1-20 (a local spread table, made stochastically increasing in the expected grade).

Inside ``fit``, on out-of-fold predictions of an inner 5-fold split (never on the students a protocol scores
it on): the number of trees of each head, the spread's bandwidth, the Platt map and the interval's level.

The mixture, floored by ``floor`` (a 1% uniform share over 0-20, with P(no grade) kept in 0.5-99.5%: no
chance of passing is claimed closer to certain than about 1 in 100, which is what 395 students support),
gives P(no grade), P(pass), the 5 band probabilities, the headline grade (the mixture's median: >= 10
exactly when P(pass) >= 0.5), its band and a 90% prediction interval (quantiles of the hurdle part at the
level whose out-of-fold coverage is closest to 90%, widened to hold the median). Monotone constraints make
the directions safe: the latest period grade can only raise the grade and lower P(no grade); past failures
only lower the grade and raise P(no grade); absences only lower the grade of a student who sits the exam.
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
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from model.ml.treeshap import TableShap
from model.schema.fields import BANDS, CATEGORICAL, FIELDS, PASS_MARK, SETUP_FEATURES, bands
from model.schema.thresholds import DEFAULT_THRESHOLDS, RISK_LEVELS, Thresholds

ANCHOR = {"early": None, "period1": "G1", "period2": "G2"}
ALGORITHM = "lightgbm-hurdle"

# One fixed set of hyper-parameters for every setup (the constructor's defaults, set before the maths file
# was scored and not tuned to it; see README, "Model quality"). Per-setup overrides stay possible.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"early": {}, "period1": {}, "period2": {}}


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
    n_estimators: int, num_leaves: int, min_child_samples: int, monotone: list[int], classifier: bool, **common: Any
) -> lgb.LGBMModel:
    kind = lgb.LGBMClassifier if classifier else lgb.LGBMRegressor
    return kind(
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        min_child_samples=min_child_samples,
        monotone_constraints=monotone,
        monotone_constraints_method="advanced",
        subsample_freq=1,
        verbose=-1,
        n_jobs=1,
        **common,
    )


GRADES = np.arange(21)
P_ZERO_RANGE = (0.005, 0.995)  # with the floor's share, no shown chance reads 0% or 100%
# Monotone directions per input: (grade head, no-grade head). The latest period grade is the anchor.
DIRECTIONS = {"failures": (-1, 1), "absences": (-1, 0)}


def _directions(setup: str) -> dict[str, tuple[int, int]]:
    latest = ANCHOR[setup]
    return {**DIRECTIONS, **({latest: (1, -1)} if latest else {})}


class LegacyArtifactError(ValueError):
    """A model version trained by the first grade model (mean and median heads) cannot give the v2 figures."""


BAND_COLUMNS = tuple(f"p_band_{name}" for name in BANDS)


E_GRID = np.arange(-4.0, 24.01, 0.25)  # expected grades at which a local spread table is kept


def sitter_cdf(expected: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(rows, 21): P(G3 <= k | sits) for k = 0..20. ``spread``: the sorted out-of-fold residuals (one spread
    for every student: the grade ``expected + residual`` rounded and kept in 1-20) or a local table
    (:func:`local_spread`, one row per :data:`E_GRID` point, interpolated linearly between them)."""
    expected = np.asarray(expected, dtype=float)
    if spread.ndim == 2:
        at = np.clip((expected - E_GRID[0]) / (E_GRID[1] - E_GRID[0]), 0, len(E_GRID) - 1.000001)
        low = at.astype(int)
        part = (at - low)[:, None]
        return (1.0 - part) * spread[low] + part * spread[low + 1]
    cuts = GRADES[None, :] + 0.5 - expected[:, None]  # round(e + r) <= k <=> r < k + .5 - e
    cdf = np.searchsorted(spread, cuts.ravel(), side="left").reshape(cuts.shape) / len(spread)
    cdf[:, 0] = 0.0  # a student who sits gets at least 1
    cdf[:, -1] = 1.0
    return cdf


def local_spread(oof_expected: np.ndarray, residuals: np.ndarray, bandwidth: float) -> np.ndarray:
    """The sitters' grade distribution at each :data:`E_GRID` point from the out-of-fold residuals of the
    students whose out-of-fold expected grade was near it (Gaussian weights, ``bandwidth`` grade points):
    students far below the pass mark move more than those near the top. Made stochastically increasing in
    the expected grade (a running minimum of each P(G3 <= k) along the grid), so a higher expected grade
    never lowers any quantile and the direction properties stay exact."""
    weights = np.exp(-0.5 * ((oof_expected[None, :] - E_GRID[:, None]) / bandwidth) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    below = residuals[None, :, None] < GRADES[None, None, :] + 0.5 - E_GRID[:, None, None]
    table = np.einsum("gi,gik->gk", weights, below)
    table[:, 0], table[:, -1] = 0.0, 1.0
    return np.minimum.accumulate(table, axis=0)


def _first_above(cdf: np.ndarray, level: float, strict: bool) -> np.ndarray:
    reached = cdf > level if strict else cdf >= level - 1e-12
    return reached.argmax(axis=1).astype(float)


def distribution_figures(
    expected: np.ndarray,
    margin: np.ndarray,
    residuals: np.ndarray,
    platt: tuple[float, float],
    floor: float,
    coverage: float,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> dict[str, np.ndarray]:
    """Every shown figure from the mixture ``floor`` x uniform(0..20) + (1 - floor) x hurdle, row by row.

    The headline grade is the median (the smallest grade whose cumulative probability exceeds 1/2), so it
    is >= 10 exactly when P(pass) >= 0.5; the interval runs from the (1 - coverage)/2 to the (1 + coverage)/2
    quantile of the hurdle part (the floor bounds claims, it is not spread), widened to hold the median; the
    band is the band of the median, which is the median band of the band probabilities."""
    slope, intercept = platt
    p_zero = np.clip(1.0 / (1.0 + np.exp(-(slope * np.asarray(margin, dtype=float) + intercept))), *P_ZERO_RANGE)
    sitter = sitter_cdf(expected, residuals)
    hurdle = p_zero[:, None] + (1.0 - p_zero[:, None]) * sitter
    cdf = (1.0 - floor) * hurdle + floor * (GRADES[None, :] + 1) / len(GRADES)
    cdf[:, -1] = 1.0
    p_pass = 1.0 - cdf[:, PASS_MARK - 1]
    median = _first_above(cdf, 0.5, strict=True)
    tail = (1.0 - coverage) / 2
    tops = [hi for _, hi in reversed(BANDS.values())]  # V ends at 9, IV at 11, ... I at 20
    below = np.hstack([np.zeros((len(cdf), 1)), cdf[:, tops]])
    band_p = np.diff(below, axis=1)[:, ::-1]  # I ... V
    figures = {
        "predicted_g3": median,
        "lower": np.minimum(_first_above(hurdle, tail, strict=True), median),
        "upper": np.maximum(_first_above(hurdle, 1.0 - tail, strict=False), median),
        "likely_g3": median,
        "p_pass": p_pass,
        "p_no_grade": cdf[:, 0],
        "band": bands(median),
        "risk": risk_level(p_pass, thresholds),
        "expected_g3": np.clip((1.0 - cdf[:, :-1]).sum(axis=1), 0, 20),  # the mixture's mean (scored by RMSE)
        "sitter_g3": _first_above(sitter, 0.5, strict=True),
    }
    figures.update({name: band_p[:, i] for i, name in enumerate(BAND_COLUMNS)})
    return figures


BANDWIDTHS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, None)  # grade points; None: one spread for every student


def choose_bandwidth(oof_expected: np.ndarray, grade: np.ndarray) -> float | None:
    """The spread bandwidth of :data:`BANDWIDTHS` with the lowest ranked probability score (the squared gaps
    between the predicted P(G3 <= k) and the outcome, summed over k) of each sitter's grade, leaving that
    sitter's own residual out of its spread. Chosen inside training on out-of-fold predictions, so the
    protocol's figures carry no selection optimism."""
    residuals = grade - oof_expected
    below = residuals[None, :, None] < GRADES[None, None, :] + 0.5 - oof_expected[:, None, None]  # [i, j, k]
    outcome = grade[:, None] <= GRADES[None, :]
    distance = oof_expected[:, None] - oof_expected[None, :]
    best, best_score = None, np.inf
    for bandwidth in BANDWIDTHS:
        weights = np.ones_like(distance) if bandwidth is None else np.exp(-0.5 * (distance / bandwidth) ** 2)
        np.fill_diagonal(weights, 0.0)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
        cdf = np.einsum("ij,ijk->ik", weights, below)
        score = float(np.mean(np.sum((cdf[:, 1:-1] - outcome[:, 1:-1]) ** 2, axis=1)))
        if score < best_score - 1e-12:
            best, best_score = bandwidth, score
    return best


LEVELS = np.round(np.arange(0.50, 0.995, 0.01), 2)  # the interval levels tried on out-of-fold predictions


def interval_level(
    y: np.ndarray,
    oof_expected: np.ndarray,
    oof_margin: np.ndarray,
    residuals: np.ndarray,
    platt: tuple[float, float],
    floor: float,
    coverage: float,
) -> float:
    """The quantile level whose interval covers ``coverage`` of the training students' true grades best,
    judged on their out-of-fold predictions. Grades are whole numbers, so the 5%-95% quantiles of a
    distribution over 0-20 hold far more than 90% of it; the level is chosen inside training, never on the
    students it is scored on, so the protocol's coverage carries no selection optimism."""
    best, gap = coverage, np.inf
    for level in LEVELS:
        f = distribution_figures(oof_expected, oof_margin, residuals, platt, floor, float(level))
        miss = abs(float(np.mean((f["lower"] <= y) & (y <= f["upper"]))) - coverage)
        if miss < gap - 1e-12:
            best, gap = float(level), miss
    return best


TREE_COUNTS = (25, 50, 75, 100, 150, 200, 300)  # the tree counts tried inside training


def _tree_counts(most: int, select: bool) -> tuple[int, ...]:
    """The tree counts to try: those of :data:`TREE_COUNTS` up to ``most`` (and ``most`` itself), or only it."""
    return tuple(sorted({t for t in TREE_COUNTS if t < most} | {most})) if select else (most,)


def _anchor_line(latest: np.ndarray, grade: np.ndarray) -> tuple[float, float]:
    """Least-squares ``grade ~ intercept + slope x latest`` on students who sat the exam, the slope kept in 0-1.

    Students far from the mean move back towards it (a low G1 rises by a point on average, a high one does
    not): a slope below 1 carries that, so the grade head's trees, constrained never to lower the grade as
    the latest grade rises, need not fight it. A slope >= 0 keeps the direction property exact."""
    spread = float(np.var(latest))
    slope = float(np.clip(np.cov(latest, grade, bias=True)[0, 1] / spread, 0.0, 1.0)) if spread > 0 else 0.0
    return float(np.mean(grade) - slope * np.mean(latest)), slope


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
    """Predicts the distribution of G3 (0-20): P(no final grade), P(pass), band probabilities, the median grade
    (headline), a 90% interval, the band and a risk level (see the module docstring)."""

    def __init__(
        self,
        setup: str = "early",
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 8,
        min_child_samples: int = 5,
        nograde_n_estimators: int = 200,
        nograde_num_leaves: int = 4,
        nograde_min_child_samples: int = 10,
        colsample_bytree: float = 0.8,
        subsample: float = 0.8,
        coverage: float = 0.9,
        floor: float = 0.01,
        spread_bandwidth: float | str | None = "auto",
        select_trees: bool = True,
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.setup = setup
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.nograde_n_estimators = nograde_n_estimators
        self.nograde_num_leaves = nograde_num_leaves
        self.nograde_min_child_samples = nograde_min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.coverage = coverage
        self.floor = floor
        self.spread_bandwidth = spread_bandwidth
        self.select_trees = select_trees
        self.cv = cv
        self.random_state = random_state

    _CACHES = ("_plan", "_table_shap")  # derived from the fitted heads on first use; never saved

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key not in self._CACHES}

    # ------------------------------------------------------------------ fitting
    def _boosters(
        self, pre: ColumnTransformer, grade_trees: int | None = None, nograde_trees: int | None = None
    ) -> tuple[lgb.LGBMRegressor, lgb.LGBMClassifier]:
        common = {
            "learning_rate": self.learning_rate,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "random_state": self.random_state,
        }
        directions = _directions(self.setup)
        names = list(pre.get_feature_names_out())
        grade = [directions.get(n, (0, 0))[0] for n in names]
        nograde = [directions.get(n, (0, 0))[1] for n in names]
        head = _booster(
            grade_trees or self.n_estimators, self.num_leaves, self.min_child_samples, grade, False, **common
        )
        hurdle = _booster(
            nograde_trees or self.nograde_n_estimators,
            self.nograde_num_leaves,
            self.nograde_min_child_samples,
            nograde,
            True,
            **common,
        )
        return head, hurdle

    def _anchor(self, get: Getter, n: int) -> np.ndarray:
        """The base the grade head's trees add to: ``intercept + slope x latest grade`` (the training mean in
        ``early``). Versions trained before the fitted slope used the latest grade itself."""
        column = ANCHOR[self.setup]
        if column is None:
            return np.full(n, self.anchor_mean_)
        intercept, slope = self.__dict__.get("anchor_line_", (0.0, 1.0))
        return intercept + slope * get(column, True)

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> GradeModel:
        """Fit both heads, then the residual spread and the P(no grade) calibration on out-of-fold predictions."""
        features = list(SETUP_FEATURES[self.setup])
        X = self._inputs(X, features)
        y = np.asarray(y, dtype=float)
        sits = y > 0
        if sits.sum() < self.cv or (~sits).sum() < 2:
            raise ValueError("training needs students who sat the final exam and at least 2 who did not (G3 = 0)")
        self.features_ = features
        self.anchor_mean_ = float(y[sits].mean())
        get = _getter(X)
        latest = None if ANCHOR[self.setup] is None else get(ANCHOR[self.setup], True)
        if latest is not None:
            self.anchor_line_ = _anchor_line(latest[sits], y[sits])
        anchor = self._anchor(get, len(X))
        pre = _preprocessor(SETUP_FEATURES[self.setup]).fit(X)
        Z = pre.transform(X)
        grade_trees = _tree_counts(self.n_estimators, self.select_trees)
        nograde_trees = _tree_counts(self.nograde_n_estimators, self.select_trees)
        oof_grades = np.full((len(grade_trees), len(y)), np.nan)
        oof_margins = np.empty((len(nograde_trees), len(y)))
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(Z, sits):
            fit_rows = train[sits[train]]
            if latest is None:
                base = np.full(len(y), y[fit_rows].mean())
            else:
                intercept, slope = _anchor_line(latest[fit_rows], y[fit_rows])
                base = intercept + slope * latest
            head, hurdle = self._boosters(pre)
            head.fit(Z[fit_rows], y[fit_rows] - base[fit_rows])
            hurdle.fit(Z[train], ~sits[train])
            for i, trees in enumerate(grade_trees):
                oof_grades[i, test] = base[test] + head.predict(Z[test], num_iteration=trees)
            for i, trees in enumerate(nograde_trees):
                oof_margins[i, test] = hurdle.predict(Z[test], raw_score=True, num_iteration=trees)
        # The number of trees of each head: the count with the best out-of-fold score (squared error of the
        # sitters' grades; log loss of no grade), chosen inside training.
        best_grade = int(np.argmin(np.mean((oof_grades[:, sits] - y[sits]) ** 2, axis=1)))
        log_loss = np.mean(np.logaddexp(0.0, oof_margins) - oof_margins * ~sits, axis=1)
        best_nograde = int(np.argmin(log_loss))
        oof_grade, oof_margin = oof_grades[best_grade], oof_margins[best_nograde]
        self.trees_ = (grade_trees[best_grade], nograde_trees[best_nograde])
        head, hurdle = self._boosters(pre, *self.trees_)
        head.fit(Z[sits], y[sits] - anchor[sits])
        hurdle.fit(Z, ~sits)
        self.mean_head_ = Pipeline([("pre", pre), ("gbm", head)])
        self.nograde_head_ = Pipeline([("pre", pre), ("gbm", hurdle)])
        self.residuals_ = np.sort(y[sits] - oof_grade[sits])
        bandwidth = (
            choose_bandwidth(oof_grade[sits], y[sits]) if self.spread_bandwidth == "auto" else self.spread_bandwidth
        )
        if bandwidth is not None:
            self.residuals_ = local_spread(oof_grade[sits], y[sits] - oof_grade[sits], bandwidth)
        self.bandwidth_ = bandwidth
        platt = LogisticRegression(C=1e6).fit(oof_margin[:, None], ~sits)
        self.platt_ = (max(float(platt.coef_[0, 0]), 0.0), float(platt.intercept_[0]))  # never reversed
        self.interval_level_ = interval_level(
            y, oof_grade, oof_margin, self.residuals_, self.platt_, self.floor, self.coverage
        )
        self.n_train_ = len(y)
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
        if "nograde_head_" not in self.__dict__:
            raise LegacyArtifactError(
                f"this {self.setup} model version was trained by grade model v1 (mean and median heads) and "
                f"cannot give the v2 figures (risk of no final grade, band probabilities): train a new version "
                f"(python -m model train --setup {self.setup}) and promote it"
            )
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
        """Expected G3 of a student who sits the exam (the grade head, explained by SHAP), clipped to 0-20."""
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
        expected = self._anchor(get, len(Z)) + self._head("mean_head_", Z) if raw_mean is None else raw_mean
        margin = self._head("nograde_head_", Z, raw_score=True)
        level = self.__dict__.get("interval_level_", self.coverage)  # versions before the chosen level: nominal
        return distribution_figures(expected, margin, self.residuals_, self.platt_, self.floor, level, thresholds)

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
            per_attribute[:, position] += self._anchor(get, len(Z)) - self.anchor_mean_
        return base, per_attribute


# Artifacts pickled before the core moved into wings name this module by its old path.
sys.modules.setdefault("model.pipelines", sys.modules[__name__])

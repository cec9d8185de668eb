"""Drift of the inputs: recent traffic against the training reference kept with the active model version.

Per attribute, as in Evidently's drift report: the Population Stability Index over bins taken from the
reference (categories for categorical attributes; reference deciles for numeric ones), judged against
0.1 (watch) and 0.25 (act), plus a statistical test, two-sample Kolmogorov-Smirnov for numeric
attributes and chi-square (2 x k contingency table) for categorical ones. Recent values are counted
by SQL (GROUP BY the value extracted from the JSON ``inputs``) over the window's most recent
``max_rows`` predicted rows, so the cost stays flat however long the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy.stats import chi2_contingency, ks_2samp
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from model.monitoring.queries import LOG, Window
from model.schema.fields import ATTRIBUTES, CATEGORICAL, FIELDS, SETUP_FEATURES
from model.store import crypto, registry
from model.store.db import session_scope

PSI_WATCH, PSI_ACT = 0.1, 0.25
P_VALUE = 0.05
MAX_ROWS = 20_000
NUMERIC_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin so the logarithm stays finite
STATUS_ORDER = {"act": 0, "watch": 1, "ok": 2}


@dataclass(frozen=True)
class AttributeDrift:
    """The drift of one attribute: test, statistic, p-value, PSI, status and both distributions."""

    attribute: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    n_reference: int
    n_recent: int
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    recent_share: tuple[float, ...]

    @property
    def status(self) -> str:
        """'act' at PSI >= 0.25, 'watch' at PSI >= 0.1, else 'ok'."""
        return "act" if self.psi >= PSI_ACT else "watch" if self.psi >= PSI_WATCH else "ok"

    @property
    def label(self) -> str:
        return FIELDS[self.attribute].label

    def distributions(self) -> pd.DataFrame:
        """Reference and recent shares per bin (bins empty in both left out): bin, reference, recent."""
        frame = pd.DataFrame({"bin": self.bins, "reference": self.reference_share, "recent": self.recent_share})
        return frame[(frame["reference"] > 0) | (frame["recent"] > 0)].reset_index(drop=True)


@dataclass(frozen=True)
class DriftReport:
    """Drift of every input of a setup in a window, against one model version's reference."""

    version_id: str
    setup: str | None
    window: Window
    n_recent: int
    attributes: tuple[AttributeDrift, ...]

    @property
    def max_psi(self) -> float:
        return max((a.psi for a in self.attributes), default=0.0)

    def get(self, attribute: str) -> AttributeDrift:
        return next(a for a in self.attributes if a.attribute == attribute)

    def table(self) -> pd.DataFrame:
        """One row per attribute, most drifted first, as a person reads it."""
        rows = [
            {
                "attribute": a.attribute,
                "label": a.label,
                "test": a.test,
                "statistic": a.statistic,
                "p_value": a.p_value,
                "psi": a.psi,
                "threshold": f"PSI {PSI_WATCH} watch / {PSI_ACT} act",
                "status": a.status,
                "test_drift": a.p_value < P_VALUE,
                "n_recent": a.n_recent,
            }
            for a in self.attributes
        ]
        columns = ["attribute", "label", "test", "statistic", "p_value", "psi", "threshold", "status", "test_drift",
                   "n_recent"]  # fmt: skip
        return (
            pd.DataFrame(rows, columns=columns)
            .sort_values("psi", ascending=False, kind="stable")
            .reset_index(drop=True)
        )


# ------------------------------------------------------------------------------------------ statistics
def psi(reference: Sequence[float], recent: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population Stability Index of two count (or share) vectors over the same bins.

    ``sum((recent% - reference%) * ln(recent% / reference%))``; empty bins count as ``floor``.
    """
    expected = np.asarray(reference, dtype=float)
    actual = np.asarray(recent, dtype=float)
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    expected = np.maximum(expected / expected.sum(), floor)
    actual = np.maximum(actual / actual.sum(), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_edges(reference_values: Sequence[int], n_bins: int = NUMERIC_BINS) -> np.ndarray:
    """Upper edges of the PSI bins of a numeric attribute: the reference's distinct decile values."""
    quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.unique(np.quantile(np.asarray(reference_values, dtype=float), quantiles, method="lower"))


def _edge_labels(edges: np.ndarray) -> tuple[str, ...]:
    """Bin k holds values in (edges[k-1], edges[k]]; the last bin everything above the last edge."""
    labels = [f"≤ {edges[0]:g}"]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        labels.append(f"{high:g}" if high - low <= 1 else f"{low + 1:g}–{high:g}")
    labels.append(f"≥ {edges[-1] + 1:g}")
    return tuple(labels)


def _bin_counts(values: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="left"), weights=counts, minlength=len(edges) + 1)


def numeric_drift(name: str, reference_values: Sequence[int], recent: Mapping[int, int]) -> AttributeDrift:
    """PSI over the reference deciles and the two-sample KS test of a numeric attribute."""
    ref = np.asarray(reference_values, dtype=float)
    values = np.asarray(list(recent), dtype=float)
    counts = np.asarray(list(recent.values()), dtype=float)
    edges = numeric_edges(ref)
    ref_bins = _bin_counts(ref, np.ones_like(ref), edges)
    recent_bins = _bin_counts(values, counts, edges)
    if counts.sum() > 0:
        test = ks_2samp(ref, np.repeat(values, counts.astype(int)))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    return AttributeDrift(
        name, "numeric", "KS", statistic, p_value, psi(ref_bins, recent_bins), len(ref), int(counts.sum()),
        _edge_labels(edges), _shares(ref_bins), _shares(recent_bins),
    )  # fmt: skip


def categorical_drift(name: str, reference_counts: Mapping[str, int], recent: Mapping[str, int]) -> AttributeDrift:
    """PSI over the categories and the chi-square test of homogeneity of a categorical attribute."""
    categories = list(dict.fromkeys([*(FIELDS[name].allowed or ()), *reference_counts, *recent]))
    ref = np.asarray([reference_counts.get(c, 0) for c in categories], dtype=float)
    now = np.asarray([recent.get(c, 0) for c in categories], dtype=float)
    seen = (ref + now) > 0
    if now.sum() > 0 and seen.sum() >= 2:
        test = chi2_contingency(np.vstack([ref[seen], now[seen]]))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    return AttributeDrift(
        name, "categorical", "chi-square", statistic, p_value, psi(ref, now), int(ref.sum()), int(now.sum()),
        tuple(categories), _shares(ref), _shares(now),
    )  # fmt: skip


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    return tuple(float(c / total) if total else 0.0 for c in counts)


# ------------------------------------------------------------------------------------------ SQL counts
def _recent_values(engine: Engine, window: Window, names: Sequence[str], setup: str | None, max_rows: int) -> sa.CTE:
    """The attributes of the window's most recent predicted rows, each JSON document parsed once.

    PostgreSQL's ``json`` is re-parsed by every ``->>``, so the documents are cast to ``jsonb`` first;
    SQLite reuses its parse of the same document for consecutive ``json_extract`` calls.
    """
    conditions = [LOG.status == "ok", LOG.inputs.is_not(None)]
    if setup is not None:
        conditions.append(LOG.setup == setup)
    document = sa.cast(LOG.inputs, JSONB) if engine.dialect.name == "postgresql" else LOG.inputs
    rows = (
        sa.select(document.label("doc"))
        .where(window.where(*conditions))
        .order_by(LOG.created_at.desc())
        .limit(max_rows)
        .subquery("rows")
    )
    values = [
        (rows.c.doc[name].as_string() if name in CATEGORICAL else rows.c.doc[name].as_integer()).label(name)
        for name in names
    ]
    return sa.select(*values).cte("recent")


def recent_counts(
    engine: Engine, window: Window, attributes: Sequence[str], setup: str | None = None, max_rows: int = MAX_ROWS
) -> dict[str, dict[Any, int]]:
    """Attribute -> {value: rows} over the window's most recent ``max_rows`` predicted rows, one query.

    When inputs are encrypted at rest SQL cannot read them: the same bounded sample is decrypted and
    counted in the core instead.
    """
    if crypto.keyring().encrypts:
        inputs = crypto.recent_inputs(engine, window.start, max_rows, until=window.end, setup=setup,
                                      include_demo=window.include_demo)  # fmt: skip
        return crypto.value_counts(inputs, attributes)
    recent = _recent_values(engine, window, attributes, setup, max_rows)
    parts = []
    for name in attributes:
        text = recent.c[name] if name in CATEGORICAL else sa.cast(sa.null(), sa.String)
        number = sa.cast(sa.null(), sa.Integer) if name in CATEGORICAL else recent.c[name]
        parts.append(
            sa.select(
                sa.literal(name, sa.String).label("attribute"),
                text.label("text_value"),
                number.label("int_value"),
                sa.func.count().label("n"),
            ).group_by(recent.c[name])
        )
    counts: dict[str, dict[Any, int]] = {name: {} for name in attributes}
    with engine.connect() as connection:
        for attribute, text, number, n in connection.execute(sa.union_all(*parts)):
            if attribute in CATEGORICAL and text is not None:
                counts[attribute][text] = int(n)
            elif attribute not in CATEGORICAL and number is not None:
                counts[attribute][int(number)] = int(n)
    return counts


# ------------------------------------------------------------------------------------------- the report
def reference_of(engine: Engine, setup: str) -> tuple[str, dict[str, Any]] | None:
    """(version id, reference profile) of the active version of ``setup``, or None without one."""
    with session_scope(engine) as session:
        version = registry.active_versions(session).get(setup)
        return None if version is None else (version.id, dict(version.reference))


def attribute_drift(name: str, reference_column: Mapping[str, Any], recent: Mapping[Any, int]) -> AttributeDrift:
    """The drift of one attribute given its reference profile column and its recent value counts."""
    if reference_column["kind"] == "categorical":
        return categorical_drift(name, reference_column["counts"], recent)
    return numeric_drift(name, reference_column["values"], recent)


def drift_report(
    engine: Engine, window: Window, setup: str | None = None, max_rows: int = MAX_ROWS
) -> DriftReport | None:
    """Drift of the inputs in ``window`` against the active version's reference; None without one.

    With a ``setup``, its traffic is compared on all its inputs (grades included) with the reference
    of its active version; without, all traffic is compared on the 30 attributes every request has,
    with the reference of the active ``early`` version.
    """
    found = reference_of(engine, setup or "early")
    if found is None:
        return None
    version_id, reference = found
    columns = reference["columns"]
    names = [n for n in (SETUP_FEATURES[setup] if setup else ATTRIBUTES) if n in columns]
    counts = recent_counts(engine, window, names, setup, max_rows)
    attributes = tuple(attribute_drift(name, columns[name], counts[name]) for name in names)
    n_recent = max((a.n_recent for a in attributes), default=0)
    return DriftReport(version_id, setup, window, n_recent, attributes)

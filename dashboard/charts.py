"""Plotly figures of the pages: one prediction's SHAP waterfall, a version's global importance."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from model.schema.fields import FIELDS

UP, DOWN = "#2e7d32", "#c62828"


def shap_waterfall(base_value: float, contributions: pd.Series, predicted: float, top: int = 8) -> go.Figure:
    """How one prediction is built from the average student: the ``top`` attributes, the rest summed.

    ``contributions`` is one row of ``Explanation.contributions`` (grade points per attribute).
    """
    order = contributions.abs().sort_values(ascending=False, kind="stable").index
    shown, rest = list(order[:top]), float(contributions[order[top:]].sum())
    labels = [FIELDS[name].label for name in shown]
    values = [float(contributions[name]) for name in shown]
    if len(order) > top:
        labels.append(f"{len(order) - top} other factors")
        values.append(rest)
    figure = go.Figure(
        go.Waterfall(
            orientation="h",
            measure=["absolute", *(["relative"] * len(values)), "total"],
            y=["Average student", *labels, "This student"],
            x=[base_value, *values, predicted],
            text=[f"{base_value:.1f}", *(f"{v:+.1f}" for v in values), f"{predicted:.1f}"],
            textposition="outside",
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": "#1f5fa8"}},
            connector={"line": {"color": "#9aa5b1", "width": 1}},
        )
    )
    figure.update_layout(
        title="What moves the grade if the student sits the final exam (points out of 20)",
        yaxis={"autorange": "reversed"},
        xaxis={"title": "grade points", "range": [0, 21]},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=80 + 34 * (len(values) + 2),
        showlegend=False,
    )
    return figure


def importance_bars(importance: pd.Series, title: str, x_max: float, top: int = 12) -> go.Figure:
    """The ``top`` attributes by mean |SHAP| (grade points) of one version, largest at the top.

    ``x_max`` is shared by the figures set side by side, so their bars compare at a glance.
    """
    shown = importance.dropna().head(top)[::-1]
    figure = go.Figure(go.Bar(x=shown.to_numpy(), y=list(shown.index), orientation="h", marker_color="#1f5fa8"))
    figure.update_layout(title=title, xaxis={"title": "mean |SHAP| (grade points)", "range": [0, x_max]},
                         height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return figure

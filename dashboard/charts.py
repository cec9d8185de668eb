"""Plotly figures shared by the pages."""

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
        title="What moves the predicted grade (points out of 20)",
        yaxis={"autorange": "reversed"},
        xaxis={"title": "grade points", "range": [0, 21]},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=80 + 34 * (len(values) + 2),
        showlegend=False,
    )
    return figure

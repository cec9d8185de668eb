"""Plotly figures for a whole class: predicted grades, risk levels, the factors that lower grades."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import signed
from model import i18n
from model.i18n import tr, tr_n
from model.ml.grade_model import Explanation
from model.schema.fields import FIELDS, PASS_MARK
from model.schema.results import RISK_LABELS, RISKS

RISK_COLOURS = {"high": "#c62828", "medium": "#f9a825", "low": "#2e7d32"}
BAR_COLOUR = "#1f5fa8"
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def grade_histogram(results: pd.DataFrame, pass_mark: int = PASS_MARK) -> go.Figure:
    """How many students are predicted each final grade (one bar per grade point), with the pass mark."""
    figure = go.Figure(
        go.Histogram(
            x=results["predicted_g3"].astype(float),
            xbins={"start": -0.5, "end": 20.5, "size": 1},
            marker={"color": BAR_COLOUR},
            hovertemplate=tr("predicted grade %{x}: %{y} students") + "<extra></extra>",
        )
    )
    figure.add_vline(
        x=pass_mark - 0.5,
        line={"color": RISK_COLOURS["high"], "dash": "dash", "width": 2},
        annotation_text=tr("pass mark {mark}", mark=pass_mark),
        annotation_position="top right",  # not shown to users
    )
    figure.update_layout(
        title=tr("Predicted final grades"),
        xaxis={"title": tr("predicted grade (0-20)"), "range": [-0.5, 20.5], "dtick": 2},
        yaxis={"title": tr("students")},
        separators=i18n.chart_separators(),
        bargap=0.05,
        margin=MARGIN,
        height=320,
    )
    return figure


def risk_counts(results: pd.DataFrame) -> pd.Series:
    """Students per risk level, always in the order high, medium, low (zeros included)."""
    return results["risk"].value_counts().reindex(list(RISKS), fill_value=0)


def risk_chart(results: pd.DataFrame) -> go.Figure:
    """One bar per risk level in its fixed colour (high red, medium amber, low green)."""
    counts = risk_counts(results)
    figure = go.Figure(
        go.Bar(
            x=[tr(RISK_LABELS[level]).capitalize() for level in counts.index],
            y=counts.to_numpy(),
            marker={"color": [RISK_COLOURS[level] for level in counts.index]},
            text=counts.to_numpy(),
            textposition="outside",
            hovertemplate=tr("%{x}: %{y} students") + "<extra></extra>",
        )
    )
    figure.update_layout(title=tr("Students per risk level"), yaxis={"title": tr("students")}, margin=MARGIN,
                         height=320, separators=i18n.chart_separators())  # fmt: skip
    return figure


def lowering_factors(explanations: Mapping[str, Explanation], top: int = 3) -> pd.DataFrame:
    """The attributes that most often pull this class's predicted grades down.

    For each student, the ``top`` most negative contributions are taken (negative ones only); per
    attribute the table gives ``students`` (how many students have it among theirs) and
    ``mean_points`` (its mean contribution over those students, in grade points), most frequent first.
    """
    columns = ["attribute", "label", "students", "mean_points"]
    frames = [e.contributions for e in explanations.values() if len(e.contributions)]
    if not frames:
        return pd.DataFrame(columns=columns)
    contributions = pd.concat(frames).fillna(0.0)
    values = contributions.to_numpy(dtype=float)
    order = np.argsort(values, axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(values, order, axis=1)
    negative = picked < 0
    found = pd.DataFrame({"attribute": contributions.columns.to_numpy()[order][negative], "points": picked[negative]})
    table = found.groupby("attribute")["points"].agg(students="size", mean_points="mean").reset_index()
    table.insert(1, "label", table["attribute"].map(lambda name: tr(FIELDS[name].label)))
    return table.sort_values(["students", "mean_points"], ascending=[False, True], kind="stable")[columns].reset_index(
        drop=True
    )


def lowering_factors_chart(table: pd.DataFrame, show: int = 10) -> go.Figure:
    """Horizontal bars: how many students each of the ``show`` most frequent lowering factors affects."""
    shown = table.head(show)
    figure = go.Figure(
        go.Bar(
            orientation="h",
            y=shown["label"],
            x=shown["students"],
            marker={"color": RISK_COLOURS["high"]},
            customdata=shown["mean_points"].round(1),
            text=[tr_n("{count} student, {points} points on average", "{count} students, {points} points on average",
                       int(n), points=signed(p)) for n, p in zip(shown["students"], shown["mean_points"], strict=True)],
            textposition="auto",
            hovertemplate=tr("%{y}: %{x} students, %{customdata:+.1f} points on average") + "<extra></extra>",
        )
    )  # fmt: skip
    figure.update_layout(
        title=tr("What most often lowers predicted grades in this class"),
        yaxis={"autorange": "reversed"},
        xaxis={"title": tr("students with this among their 3 largest negative factors")},
        separators=i18n.chart_separators(),
        margin=MARGIN,
        height=80 + 34 * max(len(shown), 1),
    )
    return figure

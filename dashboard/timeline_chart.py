"""The student timeline chart: P(pass) and the risk of no final grade prediction by prediction,
interventions as spans, the outcome."""

from __future__ import annotations

from datetime import datetime, time

import plotly.graph_objects as go

from model import i18n
from model.i18n import tr
from model.serving.interventions import KIND_LABELS, STATUS_LABELS
from model.serving.timeline import Timeline

PASS_LINE = 0.5


def timeline_figure(timeline: Timeline, high_below: float) -> go.Figure:
    """P(pass) of every prediction over time (setup in the hover), its risk of no final grade (a dashed
    line, from grade model v2 on), the high-risk cut-off, each
    intervention shaded from its start to its review date, and the recorded final grade at the end."""
    predictions = timeline.predictions
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=predictions["created_at"],
            y=predictions["p_pass"],
            mode="lines+markers",  # not shown to users
            name=tr("P(pass)"),
            customdata=predictions[["setup", "predicted_g3"]].to_numpy(),
            hovertemplate=tr(
                "%{x|%Y-%m-%d}: P(pass) %{y:.0%}<br>setup %{customdata[0]}, predicted grade %{customdata[1]:.1f}"
            )
            + "<extra></extra>",
        )
    )
    no_grade = predictions.dropna(subset=["p_no_grade"])  # NULL for predictions made before grade model v2
    if not no_grade.empty:
        figure.add_trace(
            go.Scatter(
                x=no_grade["created_at"], y=no_grade["p_no_grade"],
                mode="lines+markers",  # not shown to users
                name=tr("Risk of no final grade"), line={"dash": "dash", "color": "darkorange"},
                hovertemplate=tr("%{x|%Y-%m-%d}: risk of no final grade %{y:.0%}") + "<extra></extra>",
            )
        )  # fmt: skip
    figure.add_hline(
        y=high_below,
        line_dash="dot",
        line_color="firebrick",
        annotation_text=tr("high risk below"),
        annotation_position="bottom right",  # not shown to users
    )
    for plan in timeline.interventions.itertuples():
        figure.add_vrect(
            x0=datetime.combine(plan.start_date, time.min), x1=datetime.combine(plan.review_date, time.max),
            fillcolor="seagreen", opacity=0.12, line_width=0,
            annotation_text=tr("{kind} ({status})", kind=tr(KIND_LABELS[plan.kind]),
                               status=tr(STATUS_LABELS[plan.status]).lower()),
            annotation_position="top left",  # not shown to users
        )  # fmt: skip
    if timeline.outcome_g3 is not None:
        passed = timeline.outcome_g3 >= 10
        figure.add_trace(
            go.Scatter(
                x=[timeline.outcome_at], y=[1.0 if passed else 0.0], name=tr("Final grade"),
                mode="markers+text",  # not shown to users
                marker={"symbol": "star", "size": 16, "color": "seagreen" if passed else "firebrick"},
                text=[f"G3 = {timeline.outcome_g3}"],
                textposition="bottom left",  # not shown to users
            )
        )  # fmt: skip
    figure.update_layout(yaxis={"title": tr("chance"), "range": [0, 1.05], "tickformat": ".0%"},
                         xaxis={"title": None}, height=360, margin={"t": 30, "b": 10},
                         legend={"orientation": "h"}, separators=i18n.chart_separators())  # fmt: skip
    return figure

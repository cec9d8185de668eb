"""Plotly figures of the pages: one prediction's SHAP waterfall, a version's global importance; and
:func:`show_chart`, which draws any figure with its sentence in words beside it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from model import i18n
from model.i18n import tr, tr_n
from model.schema.fields import FIELDS

UP, DOWN = "#2e7d32", "#c62828"
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def signed(value: float, digits: int = 1) -> str:
    """``+1.5`` or ``-0.3`` (a sign always), with this language's decimal mark."""
    text = i18n.number(value, digits)
    return text if text.startswith("-") else f"+{text}"


def shap_waterfall(base_value: float, contributions: pd.Series, predicted: float, top: int = 8) -> go.Figure:
    """How one prediction is built from the average student: the ``top`` attributes, the rest summed.

    ``contributions`` is one row of ``Explanation.contributions`` (grade points per attribute).
    """
    order = contributions.abs().sort_values(ascending=False, kind="stable").index
    shown, rest = list(order[:top]), float(contributions[order[top:]].sum())
    labels = [tr(FIELDS[name].label) for name in shown]
    values = [float(contributions[name]) for name in shown]
    if len(order) > top:
        labels.append(tr_n("{count} other factor", "{count} other factors", len(order) - top))
        values.append(rest)
    figure = go.Figure(
        go.Waterfall(
            orientation="h",
            measure=["absolute", *(["relative"] * len(values)), "total"],
            y=[tr("Average student"), *labels, tr("This student")],
            x=[base_value, *values, predicted],
            text=[i18n.number(base_value, 1), *(signed(v) for v in values), i18n.number(predicted, 1)],
            textposition="outside",
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": "#1f5fa8"}},
            connector={"line": {"color": "#9aa5b1", "width": 1}},
        )
    )
    figure.update_layout(
        title=tr("What moves the grade if the student sits the final exam (points out of 20)"),
        yaxis={"autorange": "reversed"},
        xaxis={"title": tr("grade points"), "range": [0, 21]},
        separators=i18n.chart_separators(),
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
    figure.update_layout(title=title, xaxis={"title": tr("mean |SHAP| (grade points)"), "range": [0, x_max]},
                         height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         separators=i18n.chart_separators())  # fmt: skip
    return figure


def _number(value: object) -> str:
    """Three significant figures, with this language's decimal and thousands marks."""
    if not isinstance(value, int | float):
        return str(value)
    marks = i18n.chart_separators()
    return f"{float(value):,.3g}".translate(str.maketrans({".": marks[0], ",": marks[1]}))


def _when(value: object) -> str:
    """A point's date (``2026-12-04``; ``04/12/2026`` in Portuguese) or its category."""
    if hasattr(value, "year") and hasattr(value, "month"):
        return i18n.date(value.date() if hasattr(value, "hour") else value)  # type: ignore[union-attr]
    text = str(value)[:10]
    if ISO_DAY.match(text):
        return i18n.date(dt.date.fromisoformat(text))
    return text


def _values(data: object) -> list:
    """A trace's x or y values as a list of Python values (plotly keeps numpy arrays or tuples)."""
    if data is None:
        return []
    return [value.item() if hasattr(value, "item") else value for value in list(data)]  # type: ignore[call-overload]


def _histogram_sentence(name: str, values: list) -> str | None:
    """A histogram in words: how many values, their range and median (it has no y values of its own)."""
    numbers = sorted(float(v) for v in values if isinstance(v, int | float) and v == v)
    if not numbers:
        return None
    middle = len(numbers) // 2
    median = numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2
    said = tr_n("{count} value from {low} to {high}, median {median}",
                "{count} values from {low} to {high}, median {median}", len(numbers),
                low=_number(numbers[0]), high=_number(numbers[-1]), median=_number(median))  # fmt: skip
    return tr("{name}: {values}", name=name, values=said) if name else said


def _trace_sentence(trace: go.BaseTraceType) -> str | None:
    """One trace in words: its largest bars, or its range and latest value; None when it has no data."""
    name = getattr(trace, "name", None) or ""
    xs, ys = _values(getattr(trace, "x", None)), _values(getattr(trace, "y", None))
    if trace.type == "histogram":
        return _histogram_sentence(name, xs or ys)
    if getattr(trace, "orientation", None) == "h":
        xs, ys = ys, xs  # categories on the y axis, values on the x axis
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if isinstance(y, int | float) and y == y]
    if not pairs:
        return None
    if trace.type == "bar" and not any(hasattr(x, "year") or isinstance(x, int | float) for x, _ in pairs):
        largest = sorted(pairs, key=lambda pair: -float(pair[1]))[:3]
        bars = ", ".join(f"{x} ({_number(y)})" for x, y in largest)
        return tr("{name}: largest {bars}", name=name, bars=bars) if name else tr("largest {bars}", bars=bars)
    high, low = max(pairs, key=lambda pair: pair[1]), min(pairs, key=lambda pair: pair[1])
    when = _when if hasattr(pairs[0][0], "year") or isinstance(pairs[0][0], str) else _number
    first, last = pairs[0], pairs[-1]
    values = {"first": when(first[0]), "last": when(last[0]), "high": _number(high[1]), "high_at": when(high[0]),
              "low": _number(low[1]), "low_at": when(low[0]), "latest": _number(last[1])}  # fmt: skip
    points = tr_n("{count} point from {first} to {last}", "{count} points from {first} to {last}", len(pairs),
                  first=values["first"], last=values["last"])  # fmt: skip
    rest = tr("highest {high} at {high_at}, lowest {low} at {low_at}, last {latest}", **values)
    return tr("{name}: {points}; {rest}", name=name, points=points, rest=rest) if name else f"{points}; {rest}"


def figure_sentence(figure: go.Figure) -> str:
    """What a chart shows, in words, from the figure's own data (for anyone who cannot see the chart)."""
    title = figure.layout.title.text or tr("The chart")
    parts = [sentence for trace in figure.data if (sentence := _trace_sentence(trace))]
    said = "; ".join(parts) if parts else tr("no data in this range")
    return f"{title}: {said}."


def show_chart(figure: go.Figure, where: DeltaGenerator | None = None, sentence: str | None = None,
               **options: Any) -> None:  # fmt: skip
    """Draw ``figure`` (in ``where``, default the page) with a caption saying what it shows in words:
    ``sentence``, else one made from the figure's data (:func:`figure_sentence`)."""
    place = where if where is not None else st.container()
    place.plotly_chart(figure, **options)
    place.caption(sentence or figure_sentence(figure))

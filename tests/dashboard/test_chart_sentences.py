"""Every chart has its sentence in words beside it: ``dashboard.charts.show_chart`` (a caption made from the
figure's own data), or a page's own sentence next to the few charts that explain themselves in words."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from dashboard import monitor_charts
from dashboard.charts import figure_sentence, importance_bars

ROOT = Path(__file__).resolve().parents[2]
# Charts drawn directly, each with the page's own sentences right beside it (the words they come with).
OWN_SENTENCES = {
    ("dashboard/widgets.py", "shap_waterfall"): "the factors as sentences with their points, and the chances",
    ("pages/student.py", "timeline_figure"): "the timeline's summary in words (show_summary)",
    ("pages/upload.py", "figure"): "chances_text before it and the caption after it",
}


def test_a_time_series_is_told_by_its_range_highest_lowest_and_last_value() -> None:
    days = pd.to_datetime(["2026-12-01", "2026-12-02", "2026-12-03"])
    frame = pd.DataFrame({"day": days, "ui": [3, 10, 4], "api": [0, 2, 1]})
    sentence = figure_sentence(monitor_charts.stacked_bars(frame, ["ui", "api"], "Volume per day by channel"))
    assert sentence.startswith("Volume per day by channel: ui: 3 points from 2026-12-01 to 2026-12-03")
    assert "highest 10 at 2026-12-02, lowest 3 at 2026-12-01, last 4" in sentence
    assert "api: 3 points" in sentence and "last 1" in sentence


def test_bars_of_categories_are_told_largest_first_and_an_empty_chart_says_so() -> None:
    importance = pd.Series({"Absences": 0.4, "Past failures": 1.3, "Age": 0.1, "Study time": 0.7})
    assert figure_sentence(importance_bars(importance, "A: v1", 2.0)) == (
        "A: v1: largest Past failures (1.3), Study time (0.7), Absences (0.4)."
    )
    assert figure_sentence(go.Figure(layout={"title": "Errors by type"})) == "Errors by type: no data in this range."


def test_pages_draw_charts_with_their_sentences() -> None:
    direct = re.compile(r"\.plotly_chart\((\w+)")
    found = set()
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("dashboard/*.py")]:
        relative = str(path.relative_to(ROOT))
        for match in direct.finditer(path.read_text("utf-8")):
            found.add((relative, match.group(1)))
    assert found - {("dashboard/charts.py", "figure")} == set(OWN_SENTENCES), "draw charts with show_chart"

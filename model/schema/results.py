"""The result vocabulary: every output column's name, label, kind (hence format) and help, and the words
for risk levels, bands and setups.

The API's response model (``api/models.py``), the CSV downloads (``model/serving/downloads.py``), the
dashboard's column configs (``dashboard/columns.py``) and the history tables
(``model/serving/history.py``) are generated from :data:`COLUMNS` and the tables below, so a column
added here appears in all of them. The bands themselves are in :mod:`model.schema.fields`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from model.schema.fields import BANDS, PASS_MARK, SETUPS
from model.schema.thresholds import RISK_LEVELS

Kind = Literal["integer", "text", "category", "grade", "probability", "datetime", "date", "flag"]


@dataclass(frozen=True)
class Format:
    """How a kind of column is shown and rounded: ``display`` for the dashboard (printf-style, ``percent``
    or a date pattern) and the decimals kept in CSV downloads and in the API's JSON."""

    display: str | None = None
    csv_digits: int | None = None
    json_digits: int | None = None


FORMATS: dict[str, Format] = {
    "integer": Format("%d"),
    "text": Format(),
    "category": Format(),
    "grade": Format("%.1f", csv_digits=1, json_digits=2),
    "probability": Format("percent", csv_digits=3, json_digits=4),
    "datetime": Format("YYYY-MM-DD HH:mm"),
    "date": Format("YYYY-MM-DD"),
    "flag": Format(),
}


@dataclass(frozen=True)
class ResultColumn:
    """One output column. ``label`` heads a table; ``title`` names the figure on its own (a metric, a
    comparison); ``values`` are the only values a category takes; ``nullable``: it may be empty."""

    name: str
    label: str
    kind: Kind
    help: str
    title: str = ""
    values: tuple[str, ...] | None = None
    nullable: bool = False

    @property
    def format(self) -> Format:
        return FORMATS[self.kind]

    @property
    def heading(self) -> str:
        """The title, or the label when the column has no title of its own."""
        return self.title or self.label

    def for_download(self, values: Iterable[Any]) -> pd.Series:
        """The values as a CSV download holds them (figures rounded to ``csv_digits``)."""
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        digits = self.format.csv_digits
        return series.astype(float).round(digits) if digits is not None else series

    def for_json(self, values: Iterable[Any]) -> list[Any]:
        """The values as plain JSON: whole numbers as ``int``, figures rounded to ``json_digits``, text as
        ``str`` (``None`` when missing)."""
        digits = self.format.json_digits
        if digits is not None:
            return [round(float(value), digits) for value in values]
        if self.kind == "integer":
            return [int(value) for value in values]
        return [None if pd.isna(value) else str(value) for value in values]


RISKS = RISK_LEVELS  # worst first
RISK_LABELS = {level: f"{level} risk" for level in RISKS}
BAND_WORDS = {"I": "excellent or very good", "II": "good", "III": "satisfactory", "IV": "sufficient (a pass)",
              "V": "fail"}  # fmt: skip
SETUP_NOTES = {
    "period2": "G1 and G2 given: using the period-2 model (the most accurate).",
    "period1": "G1 given: using the period-1 model.",
    "early": "No period grades given: using the early-warning model (the 30 attributes only, least accurate).",
}
INTERVAL = "90% interval"


PROBABILITY_FLOOR = 0.01  # 395 students: no shown chance is closer to certain than 1 in 100


def percent_text(p: float) -> str:
    """A probability as people read it: whole percent, never '0%' or '100%' ('below 1%', 'above 99%')."""
    if p != p:  # NaN
        return ""
    if p < PROBABILITY_FLOOR:
        return "below 1%"
    if p > 1 - PROBABILITY_FLOOR:
        return "above 99%"
    return f"{min(max(round(p * 100), 1), 99)}%"


def risk_text(level: str) -> str:
    """'high risk of failing'."""
    return f"{RISK_LABELS[level]} of failing"


def band_text(band: str) -> str:
    """'16-20: excellent or very good'."""
    low, high = BANDS[band]
    return f"{low}-{high}: {BAND_WORDS[band]}"


FACTOR_COLUMNS = ("factor_1", "factor_2", "factor_3")
_FACTOR_RANKS = (("Main", ""), ("Second", "second "), ("Third", "third "))
_BANDS_HELP = "; ".join(f"{name} {band_text(name)}" for name in BANDS)

_COLUMNS = (
    ResultColumn("row", "Row", "integer", "The student's row: 1 for a single student; in a class file the "
                 "spreadsheet row (the header is row 1), in a JSON list the position (from 1)"),
    ResultColumn("student_id", "Student id", "text", "The id given with the student, echoed back; only a "
                 "keyed hash of it is stored", nullable=True),
    ResultColumn("setup", "Setup", "category", "The model used, by the grades given: early (none), "
                 "period1 (G1), period2 (G1 and G2)", values=SETUPS),
    ResultColumn("model_version", "Model version", "text", "The model version that made the prediction"),
    ResultColumn("predicted_g3", "Predicted G3", "grade", f"The predicted final maths grade, 0-20: the median of "
                 f"the student's predicted distribution, so it is {PASS_MARK} or more exactly when the chance of "
                 f"passing is 50% or more", title="Predicted final grade (G3)"),
    ResultColumn("lower", "From", "grade", f"Lower end of the {INTERVAL} of the final grade (0 when not sitting "
                 "the final exam is likely enough)"),
    ResultColumn("upper", "To", "grade", f"Upper end of the {INTERVAL} of the final grade"),
    ResultColumn("likely_g3", "Most likely", "grade", "The grade that decides band and pass: the median of the "
                 "predicted distribution (the predicted grade; kept as its own field for older clients)",
                 title="Most likely final grade"),
    ResultColumn("p_pass", "P(pass)", "probability", f"Probability of a final grade of {PASS_MARK} or more; "
                 "never shown as 0% or 100% (395 past students cannot support more than 1 in 100)",
                 title=f"Chance of passing (G3 ≥ {PASS_MARK})"),
    ResultColumn("p_no_grade", "No-grade risk", "probability", "Risk of no final grade: the chance the student "
                 "does not sit the final exam (G3 = 0). In the UCI data this is the strongest early warning sign, "
                 "and it is not the same as a low grade", title="Risk of no final grade"),
    *(ResultColumn(f"p_band_{name}", f"P(band {name})", "probability", f"Probability of a final grade in band "
                   f"{name} ({band_text(name)}), from the same distribution as the other figures: the five add up "
                   f"to 1, P(band V) is 1 - P(pass), and the band shown is where they pass one half counting from "
                   f"band V", title=f"Chance of band {name}") for name in BANDS),
    ResultColumn("band", "Band", "category", f"The 5 levels of Cortez & Silva (2008), for the predicted "
                 f"grade: {_BANDS_HELP}", title="Likely band", values=tuple(BANDS)),
    ResultColumn("risk", "Risk", "category", "Risk of failing, from the chance of passing: "
                 + ", ".join(RISKS), title="Risk of failing", values=RISKS),
    *(ResultColumn(name, f"{rank} factor", "text", f"The {nth}attribute that moves this prediction most, in "
                   "grade points") for name, (rank, nth) in zip(FACTOR_COLUMNS, _FACTOR_RANKS, strict=True)),
    ResultColumn("student_key", "Student key", "text", "The student's pseudonym: a keyed hash of the id (the "
                 "id itself is never stored)"),
    ResultColumn("prediction_id", "Prediction", "integer", "The prediction's number in the log"),
    ResultColumn("created_at", "Predicted (UTC)", "datetime", "When the prediction was made"),
    ResultColumn("channel", "Channel", "category", "Where it was made: ui (the dashboard), api or cli"),
    ResultColumn("model_version_id", "Model version", "text", "The model version that made the prediction"),
    ResultColumn("predictions", "Predictions", "integer", "How many predictions you made for the student"),
    ResultColumn("outcome_g3", "Real G3", "integer", "The real final grade, once recorded", nullable=True),
    ResultColumn("outcome_at", "Recorded (UTC)", "date", "When the real final grade was recorded", nullable=True),
    ResultColumn("feedback", "Your feedback", "text", "What you said of the prediction: useful, not useful, "
                 "wrongly flagged, already handled or not applicable", nullable=True),
    ResultColumn("column", "Column", "text", "The column (field) with the problem", nullable=True),
    ResultColumn("value", "Value", "text", "The value given", nullable=True),
    ResultColumn("problem", "Problem", "text", "What is wrong, in words"),
    ResultColumn("allowed", "Allowed", "text", "What the column accepts", nullable=True),
)  # fmt: skip
COLUMNS: dict[str, ResultColumn] = {column.name: column for column in _COLUMNS}

# The tables: which columns each output has, in order.
RESULT_COLUMNS = ("student_id", "setup", "model_version", "predicted_g3", "lower", "upper", "likely_g3", "p_pass",
                  "band", "risk", "p_no_grade")  # fmt: skip  # the prediction service's results (index: row)
BAND_PROBABILITY_COLUMNS = tuple(f"p_band_{name}" for name in BANDS)  # I (best) ... V (fail)
API_COLUMNS = ("row", *RESULT_COLUMNS, *BAND_PROBABILITY_COLUMNS)  # one student's JSON, beside its factors
DOWNLOAD_COLUMNS = ("row", *RESULT_COLUMNS, *FACTOR_COLUMNS)  # the predictions CSV
HISTORY_COLUMNS = ("student_key", "prediction_id", "created_at", "channel", "setup", "model_version_id",
                   "predicted_g3", "lower", "upper", "p_pass", "band", "risk", "predictions", "outcome_g3",
                   "outcome_at")  # fmt: skip
RECENT_COLUMNS = ("prediction_id", "created_at", "channel", "student_key", "setup", "predicted_g3", "p_pass", "risk",
                  "feedback")  # fmt: skip
PROBLEM_COLUMNS = ("row", "column", "value", "problem", "allowed")  # the validation report

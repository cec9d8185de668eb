"""The result vocabulary: every output column's name, label, kind (hence format) and help, and the words
for risk levels, bands and setups.

The API's response model (``api/models.py``), the CSV downloads (``model/serving/downloads.py``), the
dashboard's column configs (``dashboard/columns.py``) and the history tables
(``model/serving/history.py``) are generated from :data:`COLUMNS` and the tables below, so a column
added here appears in all of them. The bands themselves are in :mod:`model.schema.fields`.

Languages: labels, titles, help, :data:`RISK_LABELS`, :data:`BAND_WORDS`, :data:`SETUP_NOTES` and
:data:`INTERVAL` are English constants marked with ``N_``; a front shows ``tr(column.label)``,
``tr(column.heading)``, ``tr(column.help)``, ``tr(RISK_LABELS[level])``... (CSV headers and the API keep
the column names). :func:`percent_text`, :func:`risk_text` and :func:`band_text` already speak the
context's language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from model.i18n import N_, percent, tr
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
RISK_LABELS = {"high": N_("high risk"), "medium": N_("medium risk"), "low": N_("low risk")}
_RISK_TEXTS = {"high": N_("high risk of failing"), "medium": N_("medium risk of failing"),
               "low": N_("low risk of failing")}  # fmt: skip
BAND_WORDS = {"I": N_("excellent or very good"), "II": N_("good"), "III": N_("satisfactory"),
              "IV": N_("sufficient (a pass)"), "V": N_("fail")}  # fmt: skip
SETUP_NOTES = {
    "period2": N_("G1 and G2 given: using the period-2 model (the most accurate)."),
    "period1": N_("G1 given: using the period-1 model."),
    "early": N_("No period grades given: using the early-warning model (the 30 attributes only, least accurate)."),
}
INTERVAL = N_("90% interval")


PROBABILITY_FLOOR = 0.01  # 395 students: no shown chance is closer to certain than 1 in 100


def percent_text(p: float) -> str:
    """A probability as people read it, in this context's language: whole percent, never '0%' or '100%'
    ('below 1%', 'above 99%')."""
    if p != p:  # NaN
        return ""
    if p < PROBABILITY_FLOOR:
        return tr("below {percent}", percent=percent(PROBABILITY_FLOOR))
    if p > 1 - PROBABILITY_FLOOR:
        return tr("above {percent}", percent=percent(1 - PROBABILITY_FLOOR))
    return percent(min(max(round(p * 100), 1), 99) / 100)


def risk_text(level: str) -> str:
    """'high risk of failing' (in this context's language)."""
    return tr(_RISK_TEXTS[level])


def band_text(band: str) -> str:
    """'16-20: excellent or very good' (in this context's language)."""
    low, high = BANDS[band]
    return tr("{low}-{high}: {words}", low=low, high=high, words=tr(BAND_WORDS[band]))


FACTOR_COLUMNS = ("factor_1", "factor_2", "factor_3")
# Every text below is English, marked for the catalog: a front shows ``tr(column.label)``,
# ``tr(column.help)``, ``tr(column.heading)``. The band columns' texts are written out one by one for that.
_BAND_COLUMNS = {
    "I": (
        N_("P(band I)"),
        N_("Chance of band I"),
        N_(
            "Probability of a final grade in band I (16-20: excellent or "
            "very good), from the same distribution as the other figures: the five add up to 1, P(band V) is 1 - "
            "P(pass), and the band shown is where they pass one half counting from band V"
        ),
    ),
    "II": (
        N_("P(band II)"),
        N_("Chance of band II"),
        N_(
            "Probability of a final grade in band II (14-15: good), "
            "from the same distribution as the other figures: the five add up to 1, P(band V) is 1 - P(pass), and "
            "the band shown is where they pass one half counting from band V"
        ),
    ),
    "III": (
        N_("P(band III)"),
        N_("Chance of band III"),
        N_(
            "Probability of a final grade in band III (12-13: "
            "satisfactory), from the same distribution as the other figures: the five add up to 1, P(band V) is 1 - "
            "P(pass), and the band shown is where they pass one half counting from band V"
        ),
    ),
    "IV": (
        N_("P(band IV)"),
        N_("Chance of band IV"),
        N_(
            "Probability of a final grade in band IV (10-11: "
            "sufficient (a pass)), from the same distribution as the other figures: the five add up to 1, P(band V) "
            "is 1 - P(pass), and the band shown is where they pass one half counting from band V"
        ),
    ),
    "V": (
        N_("P(band V)"),
        N_("Chance of band V"),
        N_(
            "Probability of a final grade in band V (0-9: fail), from the "
            "same distribution as the other figures: the five add up to 1, P(band V) is 1 - P(pass), and the band "
            "shown is where they pass one half counting from band V"
        ),
    ),
}
_FACTORS = (
    (N_("Main factor"), N_("The attribute that moves this prediction most, in grade points")),
    (N_("Second factor"), N_("The second attribute that moves this prediction most, in grade points")),
    (N_("Third factor"), N_("The third attribute that moves this prediction most, in grade points")),
)
assert tuple(_BAND_COLUMNS) == tuple(BANDS) and PASS_MARK == 10  # the texts below say 10

_COLUMNS = (
    ResultColumn("row", N_("Row"), "integer", N_("The student's row: 1 for a single student; in a class file the "
                 "spreadsheet row (the header is row 1), in a JSON list the position (from 1)")),
    ResultColumn("student_id", N_("Student id"), "text", N_("The id given with the student, echoed back; only a "
                 "keyed hash of it is stored"), nullable=True),
    ResultColumn("setup", N_("Setup"), "category", N_("The model used, by the grades given: early (none), "
                 "period1 (G1), period2 (G1 and G2)"), values=SETUPS),
    ResultColumn("model_version", N_("Model version"), "text", N_("The model version that made the prediction")),
    ResultColumn("predicted_g3", N_("Predicted G3"), "grade", N_("The predicted final maths grade, 0-20: the median "
                 "of the student's predicted distribution, so it is 10 or more exactly when the chance of passing is "
                 "50% or more"), title=N_("Predicted final grade (G3)")),
    ResultColumn("lower", N_("From"), "grade", N_("Lower end of the 90% interval of the final grade (0 when not "
                 "sitting the final exam is likely enough)")),
    ResultColumn("upper", N_("To"), "grade", N_("Upper end of the 90% interval of the final grade")),
    ResultColumn("likely_g3", N_("Most likely"), "grade", N_("The grade that decides band and pass: the median of "
                 "the predicted distribution (the predicted grade; kept as its own field for older clients)"),
                 title=N_("Most likely final grade")),
    ResultColumn("p_pass", N_("P(pass)"), "probability", N_("Probability of a final grade of 10 or more; never shown "
                 "as 0% or 100% (395 past students cannot support more than 1 in 100)"),
                 title=N_("Chance of passing (G3 ≥ 10)")),
    ResultColumn("p_no_grade", N_("No-grade risk"), "probability", N_("Risk of no final grade: the chance the "
                 "student does not sit the final exam (G3 = 0). In the UCI data this is the strongest early warning "
                 "sign, and it is not the same as a low grade"), title=N_("Risk of no final grade")),
    *(ResultColumn(f"p_band_{name}", label, "probability", help, title=title)
      for name, (label, title, help) in _BAND_COLUMNS.items()),
    ResultColumn("band", N_("Band"), "category", N_("The 5 levels of Cortez & Silva (2008), for the predicted "
                 "grade: I 16-20: excellent or very good; II 14-15: good; III 12-13: satisfactory; IV 10-11: "
                 "sufficient (a pass); V 0-9: fail"), title=N_("Likely band"), values=tuple(BANDS)),
    ResultColumn("risk", N_("Risk"), "category", N_("Risk of failing, from the chance of passing: high, medium, low"),
                 title=N_("Risk of failing"), values=RISKS),
    *(ResultColumn(name, label, "text", help) for name, (label, help) in zip(FACTOR_COLUMNS, _FACTORS, strict=True)),
    ResultColumn("student_key", N_("Student key"), "text", N_("The student's pseudonym: a keyed hash of the id (the "
                 "id itself is never stored)")),
    ResultColumn("prediction_id", N_("Prediction"), "integer", N_("The prediction's number in the log")),
    ResultColumn("created_at", N_("Predicted (UTC)"), "datetime", N_("When the prediction was made")),
    ResultColumn("channel", N_("Channel"), "category", N_("Where it was made: ui (the dashboard), api or cli")),
    ResultColumn("model_version_id", N_("Model version"), "text", N_("The model version that made the prediction")),
    ResultColumn("predictions", N_("Predictions"), "integer", N_("How many predictions you made for the student")),
    ResultColumn("outcome_g3", N_("Real G3"), "integer", N_("The real final grade, once recorded"), nullable=True),
    ResultColumn("outcome_at", N_("Recorded (UTC)"), "date", N_("When the real final grade was recorded"),
                 nullable=True),
    ResultColumn("feedback", N_("Your feedback"), "text", N_("What you said of the prediction: useful, not useful, "
                 "wrongly flagged, already handled or not applicable"), nullable=True),
    ResultColumn("column", N_("Column"), "text", N_("The column (field) with the problem"), nullable=True),
    ResultColumn("value", N_("Value"), "text", N_("The value given"), nullable=True),
    ResultColumn("problem", N_("Problem"), "text", N_("What is wrong, in words")),
    ResultColumn("allowed", N_("Allowed"), "text", N_("What the column accepts"), nullable=True),
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

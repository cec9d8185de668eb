"""Upload a class: validate a CSV, predict every valid row, report the bad ones, explain, chart, download."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.charts import shap_waterfall, show_chart
from dashboard.class_charts import grade_histogram, lowering_factors, lowering_factors_chart, risk_chart
from dashboard.columns import table_columns
from dashboard.context import engine, open_page, store
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.text import count, md
from dashboard.widgets import show_factors, waterfall_note
from model import i18n
from model.errors import BatchRejected
from model.i18n import N_, tr
from model.ml.explain import chances_text
from model.schema.fields import MAX_ROWS
from model.schema.published import template_csv
from model.schema.results import DOWNLOAD_COLUMNS, PROBLEM_COLUMNS, RISK_LABELS
from model.serving.downloads import problems_table, results_table, to_csv_bytes
from model.serving.service import NoActiveModel, Prediction, predict_batch

RESULT_KEY = "upload_result"
ORDERS = {  # the option (English, stable) -> the column and direction; shown through tr()
    N_("Highest risk first"): ("p_pass", True),
    N_("Lowest risk first"): ("p_pass", False),
    N_("Highest risk of no final grade first"): ("p_no_grade", False),
    N_("Spreadsheet row"): ("row", True),
}
MAX_PICK = 2000
SHOWN_FIRST = (
    "row",
    "student_id",
    "risk",
    "p_pass",
    "p_no_grade",
    "predicted_g3",
    "lower",
    "upper",
    "likely_g3",
    "band",
)


def predict_upload(upload: Any, user_id: int) -> dict[str, Any]:
    """Predict an uploaded file once, with a progress bar; the result kept for later reruns."""
    result: dict[str, Any] = {"file_id": upload.file_id, "name": upload.name, "error": None, "prediction": None}
    bar = st.progress(0.0, text=tr("Checking the file…"))

    def advance(done: float) -> None:
        bar.progress(min(done, 1.0), text=tr("Predicting… {share}", share=i18n.percent(done)))

    try:
        prediction = predict_batch(
            store(), engine(), upload.getvalue(), channel="ui", user_id=user_id, progress=advance
        )
    except BatchRejected as error:
        result["error"] = tr("**{file}** was not accepted: {reason}.", file=md(upload.name), reason=md(error))
    except NoActiveModel as error:
        result["error"] = tr("No prediction is possible right now: {reason}.", reason=error)
    else:
        table = results_table(prediction)
        result |= {"prediction": prediction, "table": table, "results_csv": to_csv_bytes(table),
                   "problems_csv": to_csv_bytes(problems_table(prediction.problems))}  # fmt: skip
    bar.empty()
    return result


def show_summary(prediction: Prediction) -> None:
    """Rows in the file, predicted, rejected."""
    rows, predicted, rejected = st.columns(3)
    rows.metric(tr("Rows in the file"), count(prediction.n_rows))
    predicted.metric(tr("Predicted"), count(len(prediction.results)))
    rejected.metric(tr("Rejected"), count(len(prediction.rejected_rows)))


def show_problems(prediction: Prediction, problems_csv: bytes) -> None:
    """The validation report (row, column, value, problem, allowed) and its download."""
    if not prediction.problems:
        st.success(tr("Every row was valid."))
        return
    st.header(tr("Validation report"))
    st.caption(tr("Rows with a problem were not predicted; every other row was. Row numbers are as in a "
                  "spreadsheet (the header is row 1). Fix these cells and upload the file again to predict "
                  "them."))  # fmt: skip
    config, order = table_columns(PROBLEM_COLUMNS)
    show_table(problems_table(prediction.problems), hide_index=True, width="stretch", column_config=config,
                 column_order=order)  # fmt: skip
    download_link(tr("Download the validation report (CSV)"), problems_csv, "mathsight-problems.csv", "text/csv")


def show_results(table: pd.DataFrame, results_csv: bytes) -> pd.DataFrame:
    """The sortable results table; returns it in the chosen order."""
    st.header(tr("Predictions"))
    order = st.radio(tr("Order"), list(ORDERS), horizontal=True, key="upload_order", format_func=tr)
    column, ascending = ORDERS[order]
    ordered = table.sort_values([column, "row"], ascending=[ascending, True], kind="stable")
    config, order = table_columns(DOWNLOAD_COLUMNS, first=SHOWN_FIRST)
    show_table(ordered, hide_index=True, width="stretch", column_config=config, column_order=order)
    download_link(tr("Download the predictions (CSV)"), results_csv, "mathsight-predictions.csv", "text/csv",
                  primary=True)  # fmt: skip
    return ordered


def _student_label(row: pd.Series) -> str:
    who = row["student_id"] if isinstance(row["student_id"], str) else tr("no student id")
    return tr("row {row} · {who} · {risk} · predicted {grade}", row=row["row"], who=who,
              risk=tr(RISK_LABELS[row["risk"]]), grade=i18n.number(float(row["predicted_g3"]), 0))  # fmt: skip


def show_explanation(prediction: Prediction, ordered: pd.DataFrame) -> None:
    """The SHAP waterfall and the plain sentences for one student the teacher picks."""
    st.header(tr("Why? One student's explanation"))
    choices = ordered.head(MAX_PICK).set_index("row", drop=False)
    if len(ordered) > MAX_PICK:
        st.caption(tr("The list holds the first {count} students in the order above; change the order to reach "
                      "others.", count=count(MAX_PICK)))  # fmt: skip
    row = st.selectbox(tr("Student"), list(choices.index), index=None, placeholder=tr("Choose a student to explain"),
                       format_func=lambda r: _student_label(choices.loc[r]),
                       key="upload_student")  # fmt: skip
    if row is None:
        return
    result = prediction.results.loc[row]
    explanation = prediction.explanations[result["setup"]]
    sitting = float(explanation.raw_prediction[explanation.contributions.index.get_loc(row)])
    figure = shap_waterfall(explanation.base_value, explanation.contributions.loc[row], sitting)
    st.markdown(chances_text(float(result["p_pass"]), float(result["p_no_grade"])))
    st.plotly_chart(figure, width="stretch")
    st.caption(waterfall_note(sitting))
    show_factors(prediction.factors[row])


def show_class_charts(prediction: Prediction) -> None:
    """Predicted grades, risk levels and the factors that most often lower grades in this class."""
    st.header(tr("The class at a glance"))
    left, right = st.columns(2)
    show_chart(grade_histogram(prediction.results), left, width="stretch")
    show_chart(risk_chart(prediction.results), right, width="stretch")
    factors = lowering_factors(prediction.explanations)
    if not factors.empty:
        show_chart(lowering_factors_chart(factors), width="stretch")


def choose_file() -> Any:
    """The template download and the uploader; the uploaded file, or None."""
    st.write(tr("Upload a CSV file of your students (one row each, the columns of the template). Every valid row "
                "is predicted; rows with a problem are listed with what to fix."))  # fmt: skip
    download_link(tr("Download the CSV template"), template_csv(), "mathsight-class-template.csv", "text/csv")
    limit_mb = st.get_option("server.maxUploadSize")
    upload = st.file_uploader(tr("Class file (.csv)"), type=["csv"], key="upload_file")
    st.caption(tr("A .csv file of up to {megabytes} MB and {rows} students, ';' or ',' separated. The uploader "
                  "refuses a larger file: split it into smaller ones.", megabytes=limit_mb,
                  rows=count(MAX_ROWS)))  # fmt: skip
    return upload


def main() -> None:
    user = open_page(__file__)
    upload = choose_file()
    last = st.session_state.get(RESULT_KEY)
    if upload is not None and (last is None or last["file_id"] != upload.file_id):
        last = st.session_state[RESULT_KEY] = predict_upload(upload, user.id)
    if last is None:
        st.info(tr("No class uploaded yet."))
        return
    if last["error"] is not None:
        st.error(last["error"])
        return
    st.caption(tr("Results for **{file}**.", file=md(last["name"])))
    show_summary(last["prediction"])
    show_problems(last["prediction"], last["problems_csv"])
    if len(last["table"]):
        ordered = show_results(last["table"], last["results_csv"])
        show_explanation(last["prediction"], ordered)
        show_class_charts(last["prediction"])


main()

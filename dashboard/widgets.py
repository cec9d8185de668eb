"""Streamlit widgets generated from ``model.schema.fields``: the student form, field errors, a prediction panel.

Each field gets a widget that fits its kind: a selectbox for categories and yes/no (codebook values,
readable labels), a slider for 1-5 scales, a selectbox with words for the other coded scales, a
number box for counts and grades. Ranges are not enforced by the widgets: the schema's validator
checks them and its message is shown beside the field, so the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.charts import shap_waterfall
from dashboard.columns import RISK_COLOURS
from model import i18n
from model.errors import Problem
from model.i18n import N_, tr
from model.ml.explain import CAVEAT, Factor, chances_text, grouped, lever_sentence
from model.ml.grade_model import Explanation
from model.schema import results
from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD, FIELDS, GRADES, GROUPS, ID_COLUMN, FieldSpec

COLUMNS = 3
GROUP_TITLES = {  # the explanation's groups (model.ml.explain.group_of) -> their titles
    "levers": N_("Levers"),
    "grades so far": N_("Grades so far"),  # not shown to users (the key)
    "background": N_("Background"),
}


@dataclass
class StudentForm:
    """What the form returned: whether it was submitted, the record it holds, an error slot per field."""

    submitted: bool
    record: dict[str, Any]
    slots: dict[str, DeltaGenerator] = field(default_factory=dict)


def _choice_label(spec: FieldSpec, value: Any) -> str:
    words = tr(spec.value_label(value))
    return words if words == str(value) else f"{words} ({value})"


def field_widget(spec: FieldSpec, default: Any, key: str, container: DeltaGenerator | None = None) -> Any:
    """One input for ``spec``, prefilled with ``default``; returns the value in codebook form."""
    box = container if container is not None else st.container()
    if spec.allowed is not None:
        options = list(spec.allowed)
        index = options.index(default) if default in options else 0
    label, tip = tr(spec.label), tr(spec.help)
    if spec.allowed is not None:
        options = list(spec.allowed)
        index = options.index(default) if default in options else 0
        return box.selectbox(label, options, index=index, format_func=lambda v: _choice_label(spec, v),
                             help=tip, key=key)  # fmt: skip
    if spec.kind == "ordinal" and (spec.min, spec.max) == (1, 5):
        return box.select_slider(label, options=list(range(1, 6)), value=int(default), help=tip,
                                 format_func=lambda v: f"{v} · {tr(spec.value_label(v))}", key=key)  # fmt: skip
    if spec.kind == "ordinal":
        options = list(range(spec.min or 0, (spec.max or 0) + 1))
        index = options.index(int(default)) if int(default) in options else 0
        return box.selectbox(label, options, index=index, format_func=lambda v: f"{v} · {tr(spec.value_label(v))}",
                             help=tip, key=key)  # fmt: skip
    return box.number_input(label, value=int(default), step=1, help=tip, key=key)


def _grade_inputs(name: str, default: Any, key: str, slots: dict[str, DeltaGenerator]) -> int | None:
    spec = FIELDS[name]
    known = st.checkbox(tr("{grade} known", grade=tr(spec.label)), value=default is not None,
                        key=f"{key}:{name}:known",
                        help=tr("Tick when the grade exists; the model that uses it is then chosen."))  # fmt: skip
    value = st.number_input(tr(spec.label), value=int(default) if default is not None else 10, step=1,
                            help=tr(spec.help), key=f"{key}:{name}")  # fmt: skip
    slots[name] = st.empty()
    return int(value) if known else None


def student_form(
    key: str = "student", defaults: Mapping[str, Any] | None = None, submit_label: str = N_("Predict")
) -> StudentForm:
    """The whole student form in ``st.form``, grouped as in the schema; G1/G2 optional.

    ``record`` holds the 30 attributes, each grade ticked as known, and ``student_id`` when given.
    """
    values = {**{k: v for k, v in EXAMPLE_RECORD.items() if k not in GRADES}, **(defaults or {})}
    record: dict[str, Any] = {}
    slots: dict[str, DeltaGenerator] = {}
    with st.form(key):
        student_id = st.text_input(
            tr("Student id (optional)"), value=str(values.get(ID_COLUMN) or ""), key=f"{key}:{ID_COLUMN}",
            help=tr("Your own reference for this student, so the real final grade can be linked later. "
                    "Only a keyed hash of it is stored, never the id itself."),
        )  # fmt: skip
        for group in GROUPS:
            names = [n for n in (*ATTRIBUTES, *GRADES) if FIELDS[n].group == group]
            st.header(tr(group))
            columns = st.columns(COLUMNS)
            for i, name in enumerate(names):
                with columns[i % COLUMNS]:
                    if name in GRADES:
                        record[name] = _grade_inputs(name, values.get(name), key, slots)
                    else:
                        record[name] = field_widget(FIELDS[name], values[name], f"{key}:{name}")
                        slots[name] = st.empty()
        submitted = st.form_submit_button(tr(submit_label), type="primary")
    record = {name: value for name, value in record.items() if value is not None}
    if student_id.strip():
        record[ID_COLUMN] = student_id.strip()
    return StudentForm(submitted, record, slots)


def problem_text(problem: Problem) -> str:
    """A problem in words, naming the field, the value and what is allowed."""
    text = problem.message
    if problem.allowed and problem.allowed not in text:
        text = tr("{problem} (allowed: {allowed})", problem=text, allowed=problem.allowed)
    return text


def show_problems(problems: Iterable[Problem], slots: Mapping[str, DeltaGenerator]) -> None:
    """Each problem in a red box beside its field (or above, when it names no field on the form)."""
    for problem in problems:
        slot = slots.get(problem.column or "")
        (slot if slot is not None else st).error(problem_text(problem), icon=":material/error:")


def setup_note(setup: str) -> str:
    """One line on which model was used and why (G2 without G1 never gets here: validation refuses it)."""
    return tr(results.SETUP_NOTES[setup])


def risk_badge(risk: str) -> None:
    """A coloured badge: high, medium or low risk of failing."""
    st.badge(results.risk_text(risk), color=RISK_COLOURS.get(risk, "gray"), icon=":material/flag:")


def prediction_panel(
    result: pd.Series, factors: list[Factor], explanation: Explanation, row: Any, record: Mapping[str, Any]
) -> None:
    """The result of one student: grade and interval, P(pass) and risk, risk of no final grade, band, model,
    the chances in words, the waterfall and the factors grouped levers first."""
    grade, p_pass, p_zero = float(result["predicted_g3"]), float(result["p_pass"]), float(result["p_no_grade"])
    left, middle, zero, right = st.columns(4)
    figure = {name: results.COLUMNS[name] for name in ("predicted_g3", "p_pass", "p_no_grade", "band")}
    left.metric(tr(figure["predicted_g3"].heading), f"{i18n.number(grade, 0)} / 20",
                help=tr(figure["predicted_g3"].help))  # fmt: skip
    left.caption(
        tr(
            "{interval}: {lower} to {upper}",
            interval=tr(results.INTERVAL),
            lower=i18n.number(float(result["lower"]), 0),
            upper=i18n.number(float(result["upper"]), 0),
        )
    )
    middle.metric(tr(figure["p_pass"].heading), results.percent_text(p_pass), help=tr(figure["p_pass"].help))
    with middle:
        risk_badge(str(result["risk"]))
    zero.metric(tr(figure["p_no_grade"].heading), results.percent_text(p_zero), help=tr(figure["p_no_grade"].help))
    right.metric(tr(figure["band"].heading), str(result["band"]), help=tr(figure["band"].help))
    right.caption(tr("Band {band}: {meaning}", band=result["band"], meaning=results.band_text(str(result["band"]))))
    st.markdown(chances_text(p_pass, p_zero))
    st.caption(tr("Every figure comes from one predicted distribution: the grade is its median (so it is 10 or "
                  "more exactly when the chance of passing is 50% or more), the interval holds 90% of it, and the "
                  "risk of no final grade is its share at 0."))  # fmt: skip
    st.caption(tr("Model version `{version}` · setup **{setup}**. {note}", version=result["model_version"],
                  setup=result["setup"], note=setup_note(str(result["setup"]))))  # fmt: skip
    contributions = explanation.contributions.loc[row]
    sitting = float(explanation.raw_prediction[explanation.contributions.index.get_loc(row)])
    st.plotly_chart(shap_waterfall(explanation.base_value, contributions, sitting), key=f"waterfall:{row}")
    st.caption(waterfall_note(sitting))
    show_factors(factors)


def waterfall_note(sitting: float) -> str:
    """The caption under a waterfall: which grade it explains, and the caveat."""
    return tr("The waterfall explains the expected grade if the student sits the final exam ({grade}); {caveat}",
              grade=i18n.number(sitting, 1), caveat=tr(CAVEAT))  # fmt: skip


def show_factors(factors: list[Factor]) -> None:
    """The factors as sentences, grouped levers first, each group under its title."""
    for group, members in grouped(factors):
        title = tr(GROUP_TITLES[group]) if group in GROUP_TITLES else tr(group).capitalize()
        st.markdown(f"**{title}**")
        st.markdown("\n".join(f"- {lever_sentence(factor)}" for factor in members))

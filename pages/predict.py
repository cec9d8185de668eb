"""Predict one student: the schema form, the result with its explanation, and a what-if on actionable factors."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.charts import signed
from dashboard.context import CurrentUser, engine, open_page, store
from dashboard.text import md
from dashboard.widgets import field_widget, prediction_panel, show_problems, student_form
from model import i18n
from model.errors import InvalidInput
from model.i18n import N_, tr
from model.ml.explain import CAVEAT, REVERSE_ASSOCIATION, REVERSE_NOTE, what_would_help
from model.schema.fields import ACTIONABLE, FIELDS
from model.schema.results import COLUMNS, INTERVAL, RISK_LABELS, percent_text
from model.serving.service import NoActiveModel, Prediction, predict_one

HONEST_NOTE = N_(
    "A decision aid, not a judgment: the prediction says how students like this one fared, not what this "
    "student will do. The 90% interval and the calibration of the chance of passing come from "
    "cross-validation on 395 Portuguese secondary-school students (2005-06); they may fit your students less well."
)
WHATIF_KEY = "whatif"


def _state(user: CurrentUser) -> dict[str, Any]:
    """This user's state of the page (kept in the session)."""
    return st.session_state.setdefault(f"predict:{user.id}", {})


def _predict(record: dict[str, Any], user: CurrentUser, log: bool) -> Prediction:
    return predict_one(store(), engine(), record, channel="ui", user_id=user.id, log=log)


def _submit(user: CurrentUser, state: dict[str, Any]) -> None:
    form = student_form()
    if not form.submitted:
        return
    state.clear()
    try:
        prediction = _predict(form.record, user, log=True)
    except InvalidInput as error:
        show_problems(error.problems, form.slots)
        st.error(tr("Nothing was predicted: please correct the fields marked in red."))
        return
    except NoActiveModel as error:
        st.error(tr("No model is available for this student: {reason}", reason=md(error)))
        return
    state.update(record=form.record, prediction=prediction)
    for name in ACTIONABLE:  # the what-if starts again from this student
        st.session_state.pop(f"{WHATIF_KEY}:{name}", None)


def _show(prediction: Prediction, record: dict[str, Any]) -> None:
    row = prediction.results.index[0]
    result = prediction.results.loc[row]
    st.header(tr("Result"))
    prediction_panel(result, prediction.factors[row], prediction.explanations[str(result["setup"])], row, record)
    _help_most(result, record)


def _help_most(result: pd.Series, record: dict[str, Any]) -> None:
    """What would help most: realistic lever changes, computed with the real model, with the caveat."""
    st.subheader(tr("What would help most"))
    changes, start = what_would_help(store().get(str(result["setup"])).estimator, record)
    if not changes:
        st.markdown(tr("No single realistic change of study time, going out, alcohol, absences, activities or "
                       "internet raises this student's chance of passing in the model."))  # fmt: skip
    else:
        figures = {
            "steps": "; ".join(change.text for change in changes),
            "before": percent_text(start),
            "after": percent_text(changes[-1].p_pass),
            "no_grade": percent_text(changes[-1].p_no_grade),
        }
        if changes[-1].p_pass >= 0.5 > start:
            st.markdown(
                tr(
                    "**{steps}** lifts the chance of passing above 50%: chance of passing {before} → "
                    "{after}, risk of no final grade {no_grade}.",
                    **figures,
                )
            )
        else:
            st.markdown(tr("**{steps}** helps most: chance of passing {before} → {after}, risk of no final grade "
                           "{no_grade}.", **figures))  # fmt: skip
    st.caption(tr("{caveat} Support and paid classes are never suggested: they are {note}.", caveat=tr(CAVEAT),
                  note=tr(REVERSE_NOTE)))  # fmt: skip


def _points(change: float) -> str:
    return tr("{change} points", change=signed(change, 0))


def _percentage_points(change: float) -> str:
    return tr("{change} percentage points", change=signed(change * 100, 0))


def whole(value: float) -> str:
    return i18n.number(float(value), 0)


def _span(result: pd.Series) -> str:
    return f"{whole(result.lower)}-{whole(result.upper)}"


def _compare(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    title = {name: tr(COLUMNS[name].heading) for name in ("predicted_g3", "p_pass", "p_no_grade", "band", "risk")}
    risk_before, risk_after = tr(RISK_LABELS[before.risk]), tr(RISK_LABELS[after.risk])
    rows = {
        title["predicted_g3"]: (whole(before.predicted_g3), whole(after.predicted_g3),
                                _points(after.predicted_g3 - before.predicted_g3)),
        tr(INTERVAL): (_span(before), _span(after), ""),
        title["p_pass"]: (percent_text(before.p_pass), percent_text(after.p_pass),
                          _percentage_points(after.p_pass - before.p_pass)),
        title["p_no_grade"]: (percent_text(before.p_no_grade), percent_text(after.p_no_grade),
                              _percentage_points(after.p_no_grade - before.p_no_grade)),
        title["band"]: (before.band, after.band, "" if before.band == after.band else f"{before.band} → {after.band}"),
        title["risk"]: (risk_before, risk_after, "" if before.risk == after.risk else f"{risk_before} → {risk_after}"),
    }  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index", columns=[tr("As entered"), tr("What if"), tr("Change")])


def _said(name: str, value: Any) -> Any:
    """A value as the what-if names it: yes/no in words of the language, numbers as they are."""
    spec = FIELDS[name]
    return tr(spec.value_label(value)) if spec.kind == "binary" else value


def _what_if(user: CurrentUser, state: dict[str, Any]) -> None:
    st.header(tr("What if…"))
    st.caption(tr("Change the factors a school or family can act on and recompute. Hypothetical: not written to "
                  "the log. {caveat}", caveat=tr(CAVEAT)))  # fmt: skip
    record = state["record"]
    changed = dict(record)
    with st.form(WHATIF_KEY):
        columns = st.columns(3)
        for i, name in enumerate(ACTIONABLE):
            changed[name] = field_widget(FIELDS[name], record[name], f"{WHATIF_KEY}:{name}", columns[i % 3])
        submitted = st.form_submit_button(tr("Recompute"))
    if submitted:
        try:
            state["what_if"] = (changed, _predict(changed, user, log=False))
        except InvalidInput as error:
            show_problems(error.problems, {})
            return
    if "what_if" not in state:
        return
    changed, alternative = state["what_if"]
    differences = [f"{tr(FIELDS[n].label)}: {_said(n, record[n])} → {_said(n, changed[n])}" for n in ACTIONABLE
                   if changed[n] != record[n]]  # fmt: skip
    said = "; ".join(differences) if differences else tr("nothing (same as entered)")
    st.markdown(tr("**Changed:** {changes}", changes=said))
    before = state["prediction"].results.iloc[0]
    st.table(_compare(before, alternative.results.iloc[0]))
    switched_off = [tr(FIELDS[n].label) for n in REVERSE_ASSOCIATION if record[n] == "yes" and changed[n] == "no"]
    if switched_off:
        st.warning(
            tr("{factors}: {note}. A higher figure here is not a reason to stop it.", factors=", ".join(switched_off),
               note=tr(REVERSE_NOTE)),
            icon=":material/warning:",
        )  # fmt: skip


def main() -> None:
    user = open_page(__file__)
    st.info(tr(HONEST_NOTE), icon=":material/info:")
    state = _state(user)
    _submit(user, state)
    if "prediction" in state:
        _show(state["prediction"], state["record"])
        _what_if(user, state)


main()

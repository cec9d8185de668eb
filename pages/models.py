"""Model versions (admin): the registry per setup; train (on the bundled data, a file or the school's own outcomes),
compare, judge on our students, promote through the gate, roll back to any earlier version, the timeline, model
cards, export."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard.charts import importance_bars, show_chart
from dashboard.context import CurrentUser, current_user, open_page, settings, store, transaction
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.text import md
from model.errors import BatchRejected, UserError
from model.ml import gates, jobs
from model.ml.compare import Comparison, compare_versions
from model.ml.dataset import load_raw
from model.ml.export import OnnxUnavailable, export_onnx, export_version
from model.ml.modelcard import METRIC_LABELS, ModelCard, build_model_card
from model.ml.schooldata import MAX_WEIGHT, NotEnoughOutcomes, TrainingChoice, outcome_training_set
from model.ml.versions import setup_overview
from model.schema.fields import SETUPS
from model.schema.thresholds import Thresholds
from model.serving.downloads import problems_table
from model.store import registry
from model.store.registry import ArtifactIntegrityError, RegistryError

SETUP_LABELS = {"early": "early (30 attributes)", "period1": "period1 (+ G1)", "period2": "period2 (+ G1, G2)"}
JOB_KEY, FLASH_KEY, SEEN_KEY = "models_job", "models_flash", "models_job_seen"
BUNDLED = "Bundled UCI maths data (395 students)"
UPLOADED = "Upload a CSV"
OUTCOMES = "Our students' recorded outcomes"
POOLED = "Our outcomes pooled with the bundled data"
SCHOOL_SOURCES = {OUTCOMES: "outcomes", POOLED: "pooled"}
GATE_KEY = "models_gate"


# ------------------------------------------- cached computations (versions are immutable), in the run's transaction


@st.cache_data(show_spinner="Comparing on the 395 reference students…", max_entries=16)
def _comparison(url: str, version_a: str, version_b: str, _session: Session) -> Comparison:
    return compare_versions(_session, version_a, version_b, settings=settings())


@st.cache_data(show_spinner="Building the model card (ten cross-validation fits)…", max_entries=16)
def _card(url: str, version_id: str, active_id: str | None, _session: Session) -> ModelCard:
    return build_model_card(_session, version_id, settings=settings())


@st.cache_data(show_spinner=False, max_entries=8)
def _export_zip(url: str, version_id: str, _session: Session) -> bytes:
    return export_version(_session, version_id, settings=settings()).to_zip()


@st.cache_data(show_spinner="Converting to ONNX…", max_entries=8)
def _onnx(url: str, version_id: str, _session: Session) -> bytes:
    return export_onnx(_session, version_id, settings=settings())


# ---------------------------------------------------------------- sections


def show_flash() -> None:
    """What the last promotion or rollback did (set by its button, shown once)."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash is not None:
        ok, message = flash
        (st.success if ok else st.error)(message)


def show_versions(setup: str, table: pd.DataFrame) -> None:
    if table.empty:
        st.info(f"No version of the {setup} setup yet: train one below.")
        return
    show_table(
        table, hide_index=True, width="stretch",
        column_config={"active": st.column_config.CheckboxColumn("Active"),
                       "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
                       "data": st.column_config.TextColumn("Data SHA-256", help="first 12 hex digits")},
    )  # fmt: skip
    st.caption("Metrics: mean ± std over the protocol runs (10-fold cross-validation each) on the training data.")


def _start_job(session: Session, user: CurrentUser, setup: str, source: str, upload: UploadedFile | None, runs: int,
               weight: int) -> None:  # fmt: skip
    try:
        if source in SCHOOL_SOURCES:
            choice = TrainingChoice(SCHOOL_SOURCES[source], weight)
            job = jobs.start_school_training(session, setup, choice, runs=runs, created_by=user.username,
                                             settings=settings())  # fmt: skip
            st.session_state[JOB_KEY] = job.id
            return
        if source == UPLOADED:
            if upload is None:
                st.error("Choose a CSV file to upload, or train on the bundled data.")
                return
            frame, label = jobs.validate_training_data(upload.getvalue(), setup), f"upload {upload.name}"
            options = {"source": "file"}
        else:
            frame, label, options = load_raw(settings=settings()), "bundled UCI data", {"source": "bundled"}
        job = jobs.start_training(frame, setup, runs=runs, created_by=user.username, source=label,
                                 settings=settings(), options=options)  # fmt: skip
    except BatchRejected as error:
        st.error(f"The file was not accepted: {md(error)}.")
    except jobs.TrainingDataRejected as error:
        st.error(f"{md(error)}. Nothing was trained. Row numbers are as in a spreadsheet (the header is row 1).")
        show_table(problems_table(error.problems), hide_index=True, width="stretch")
    except (jobs.JobError, NotEnoughOutcomes) as error:
        st.warning(str(error))
    else:
        st.session_state[JOB_KEY] = job.id


def _job_status(job: jobs.TrainingJob) -> None:
    if job.status == "done":
        st.success(f"Training finished in {job.seconds:.0f} s: version **{job.version_id}** stored, inactive. "
                   "Compare it with the active one, then promote it.")  # fmt: skip
    elif job.status == "failed":
        st.error(f"Training job {job.id} failed: {job.error}")
    elif job.status == "cancelled":
        st.info(f"Training job {job.id} was cancelled; nothing was stored.")
    else:
        st.progress(job.progress, text=f"Training {job.setup} on {job.n_rows} rows: {job.stage} ({job.progress:.0%})")
        st.caption(f"Started by {job.created_by} from {job.source}.")
        st.button("Cancel training", key="cancel_job", on_click=_cancel, args=(job.id,))


def _cancel(job_id: str) -> None:
    try:
        user = current_user()
        jobs.cancel_job(job_id, user.username if user is not None else "unknown", settings=settings())
    except jobs.JobError as error:
        st.session_state[FLASH_KEY] = (False, str(error))


@st.fragment(run_every=1.0)
def poll_job(job_id: str) -> None:
    """The progress of a running job, polled every second; reruns the page once when it ends."""
    job = jobs.get_job(job_id, settings=settings())
    _job_status(job)
    if job.finished:
        st.session_state[SEEN_KEY] = job.id
        st.rerun()


def school_counts(session: Session, setup: str) -> None:
    """What the school's recorded outcomes give for ``setup``: students, duplicates dropped, the minimum."""
    school = outcome_training_set(session, setup, settings=settings())
    c, needed = school.counts, Thresholds.from_settings(settings()).min_training_outcomes
    st.caption(f"Our students ({setup}): {c['students']} with a recorded final grade and a logged prediction "
               f"({c['students_with_outcome']} outcomes recorded, {c['duplicates_dropped']} repeated predictions "
               f"dropped, {c['incomplete_inputs']} without this setup's inputs); at least {needed} are needed to "
               "train or judge on them.")  # fmt: skip


def show_training(session: Session, user: CurrentUser, setup: str) -> None:
    st.subheader("Train a new version")
    st.caption("Training runs in a separate process, so predictions go on as usual. The new version is stored "
               "inactive: nobody uses it until it is promoted.")  # fmt: skip
    school_counts(session, setup)
    with st.form("train_form"):
        source = st.radio("Training data", [BUNDLED, UPLOADED, OUTCOMES, POOLED], horizontal=True, key="train_source")
        upload = st.file_uploader("CSV with the 30 attributes, G1, G2 and G3 (';' or ',')", type=["csv", "txt"],
                                  key="train_file")  # fmt: skip
        runs = st.number_input("Protocol runs (10-fold cross-validation each)", 1, jobs.MAX_RUNS, 5, key="train_runs")
        weight = st.number_input("Weight of our students when pooled (each counts this many times in the final fit)",
                                 1, MAX_WEIGHT, 1, key="train_weight")  # fmt: skip
        submitted = st.form_submit_button(f"Train a new {setup} version", type="primary")
    if submitted:
        _start_job(session, user, setup, source, upload, int(runs), int(weight))
    job = jobs.running_job(settings=settings())
    job_id = job.id if job is not None else st.session_state.get(JOB_KEY)
    if job_id is None:
        return
    job = jobs.get_job(job_id, settings=settings())
    if job.finished and st.session_state.get(SEEN_KEY) == job.id:
        _job_status(job)
    else:
        poll_job(job_id)


def show_comparison(result: Comparison) -> None:
    agree, diff = st.columns(2)
    where = f"share of the {result.n_reference} reference students on the same side of P(pass) = 0.5"
    agree.metric("Same pass/fail call", f"{result.pass_agreement:.1f}%", help=where)
    diff.metric("Mean |difference| of predicted grades", f"{result.mean_abs_difference:.2f} points")
    table = result.metrics.rename(index=METRIC_LABELS).rename(columns={
        "a_mean": f"A mean ({result.a.id})", "a_std": "A std", "b_mean": f"B mean ({result.b.id})", "b_std": "B std",
        "difference": "B - A", "better": "better"})  # fmt: skip
    show_table(table.round(3), width="stretch")
    x_max = float(result.importance.max().max()) * 1.05
    left, right = st.columns(2)
    show_chart(importance_bars(result.importance["a"], f"A: {result.a.id}", x_max), left, width="stretch")
    show_chart(importance_bars(result.importance["b"], f"B: {result.b.id}", x_max), right, width="stretch")


def compare_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.subheader("Compare two versions")
    if len(ids) < 2:
        st.info("Train a second version to compare.")
        return
    left, right = st.columns(2)
    first = ids.index(active_id) if active_id in ids else 1
    version_a = left.selectbox("Version A", ids, index=first, key="compare_a")
    version_b = right.selectbox("Version B", ids, index=0 if first != 0 else 1, key="compare_b")
    if st.button("Compare", key="compare_button"):
        st.session_state["compare_pair"] = (version_a, version_b)
    if st.session_state.get("compare_pair") == (version_a, version_b):
        try:
            show_comparison(_comparison(settings().database_url, version_a, version_b, session))
        except ArtifactIntegrityError as error:
            refused(error)


def _switch(change: Callable[[Session], str]) -> None:
    """Carry out a promotion or rollback (a button's callback, before the page reruns): one transaction,
    then the store follows at once and the page says what happened."""
    try:
        with transaction() as session:
            message = change(session)
    except (RegistryError, NotEnoughOutcomes) as error:
        st.session_state[FLASH_KEY] = (False, str(error))
        return
    store().refresh(force=True)
    st.session_state[FLASH_KEY] = (True, message)
    for key in ("promote_confirm", "rollback_confirm"):
        st.session_state.pop(key, None)


def _promote(version_id: str, setup: str, by: str) -> None:
    reason = st.session_state.get("promote_reason", "")

    def change(session: Session) -> str:
        gate = gates.promote(session, version_id, by, settings=settings(), reason=reason)
        st.session_state[GATE_KEY] = (version_id, gate)
        passed = "its gate passed" if gate["passed"] else "past its failed gate, with the reason you wrote"
        return f"{version_id} is now the active {setup} model ({passed})."

    try:
        _switch(change)
    except gates.GateFailed as error:
        st.session_state[GATE_KEY] = (version_id, error.gate)
        st.session_state[FLASH_KEY] = (False, f"{error}.")
        st.session_state.pop("promote_confirm", None)  # confirm again, with the reason written


def _rollback(setup: str, by: str) -> None:
    def change(session: Session) -> str:
        return f"{setup} rolled back to {registry.rollback(session, setup, by=by, settings=settings())}."

    _switch(change)


def _rollback_to(setup: str, by: str) -> None:
    target = st.session_state.get("rollback_to_choice")

    def change(session: Session) -> str:
        return f"{setup} rolled back to {registry.rollback_to(session, setup, target, by, settings=settings())}."

    _switch(change)


def show_gate(version_id: str, gate: dict) -> None:
    """The gate table of the last promotion tried on this page."""
    verdict = "passed" if gate["passed"] else "failed"
    st.markdown(f"**Promotion gate of {version_id}: {verdict}**, on {gate['data']}")
    table = pd.DataFrame(gate["rows"])[["verdict", "check", "metric", "candidate", "active", "noise", "against"]]
    show_table(table.round(3), hide_index=True, width="stretch")


def _confirmed_button(label: str, confirm: str, key: str, action: Callable[..., None], *args: str) -> None:
    """A two-step action: the button only works once the confirmation box is ticked."""
    sure = st.checkbox(confirm, key=f"{key}_confirm")
    st.button(label, key=f"{key}_button", disabled=not sure, type="primary", on_click=action, args=args)


def promotion_section(user: CurrentUser, setup: str, ids: list[str], active_id: str | None,
                      previous_id: str | None) -> None:  # fmt: skip
    st.subheader("Promote or roll back")
    st.caption("The switch is one database transaction and is audited; every instance serves the new version "
               f"within {store().refresh_seconds:.0f} seconds.")  # fmt: skip
    candidates = [i for i in ids if i != active_id]
    if candidates:
        chosen = st.selectbox("Version to promote", candidates, key="promote_choice")
        st.caption("The promotion gate compares it with the active version on the evaluation data of record (our "
                   "students once enough outcomes are recorded, else the bundled data): pass/fail accuracy, RMSE and "
                   "calibration beyond their noise, and its fairness gaps against the limits.")  # fmt: skip
        st.text_area("Reason to promote past a failed gate (kept on the timeline and in the audit log)",
                     key="promote_reason", max_chars=gates.MAX_REASON)  # fmt: skip
        confirm = f"I confirm that {chosen} becomes the active {setup} model for every user"
        _confirmed_button(f"Promote {chosen}", confirm, "promote", _promote, chosen, setup, user.username)
        shown = st.session_state.get(GATE_KEY)
        if shown is not None:
            show_gate(*shown)
    if previous_id is not None:
        confirm = f"I confirm the roll back of {setup} from {active_id} to {previous_id}"
        _confirmed_button(f"Roll back to {previous_id}", confirm, "rollback", _rollback, setup, user.username)
    else:
        st.caption("No previous version to roll back to.")
    earlier = _earlier_versions(setup, active_id)
    if earlier:
        st.selectbox("Or any earlier version of the timeline", earlier, key="rollback_to_choice")
        _confirmed_button("Roll back to the chosen version", f"I confirm the roll back of {setup} to the chosen "
                          "version", "rollback_to", _rollback_to, setup, user.username)  # fmt: skip


def _earlier_versions(setup: str, active_id: str | None) -> list[str]:
    with transaction() as session:
        served = [p.version_id for p in registry.timeline(session, setup)]
    return list(dict.fromkeys(v for v in reversed(served) if v != active_id))


def judge_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.subheader("Compare on our students")
    st.caption("The chosen version and the active one scored on our students' recorded outcomes: out-of-fold "
               "(10-fold) for a version that learned from them, plain scoring otherwise; noise is the spread of the "
               "difference over bootstrap resamples of the students.")  # fmt: skip
    candidates = [i for i in ids if i != active_id] or ids
    left, right = st.columns(2)
    chosen = left.selectbox("Version", candidates, key="judge_choice")
    split = right.date_input("Time split (optional): learn from students predicted before", value=None,
                             key="judge_split")  # fmt: skip
    if st.button("Compare on our students", key="judge_button"):
        when = datetime.combine(split, time.min, tzinfo=UTC) if split is not None else None
        try:
            result = gates.judge(session, chosen, settings=settings(), split=when)
        except UserError as error:
            st.warning(str(error))
            return
        st.caption(f"Scored on {result.data}. Candidate {result.candidate_id}: {result.how['candidate']}; "
                   f"active {result.active_id}: {result.how.get('active', '-')}.")  # fmt: skip
        show_table(result.table.rename(index=METRIC_LABELS).round(3), width="stretch")


def timeline_section(session: Session, setup: str) -> None:
    st.subheader("Timeline")
    periods = registry.timeline(session, setup)
    if not periods:
        st.caption("No version has served this setup yet.")
        return
    rows = [{"from": p.started_at, "until": p.ended_at, "version": p.version_id, "how": p.action, "by": p.by,
             "gate": "-" if p.gate is None else ("passed" if p.gate.get("passed") else "failed"),
             "reason": p.reason or ""} for p in reversed(periods)]  # fmt: skip
    show_table(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "from": st.column_config.DatetimeColumn("From (UTC)", format="YYYY-MM-DD HH:mm"),
        "until": st.column_config.DatetimeColumn("Until (UTC)", format="YYYY-MM-DD HH:mm")})  # fmt: skip


def refused(error: ArtifactIntegrityError) -> None:
    """A version whose artifact failed its check: which one, why, and what to do, in a red box."""
    st.error(str(error), icon=":material/gpp_bad:")


def active_integrity(session: Session, active_id: str | None) -> None:
    """A red box when the setup's active version fails its check (the predict pages then say "unavailable")."""
    if active_id is None:
        return
    try:
        registry.verify_artifact(registry.get_version(session, active_id), settings=settings())
    except ArtifactIntegrityError as error:
        st.error(f"The active model is not being served. {error}", icon=":material/gpp_bad:")


def card_and_export_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.subheader("Model card and export")
    version_id = st.selectbox("Version", ids, index=ids.index(active_id) if active_id in ids else 0, key="card_choice")
    try:
        _card_and_export(session, version_id, active_id)
    except ArtifactIntegrityError as error:
        refused(error)


def _card_and_export(session: Session, version_id: str, active_id: str | None) -> None:
    url = settings().database_url
    download, onnx = st.columns(2)
    artifact = _export_zip(url, version_id, session)
    with download:
        download_link("Download the artifact (joblib + JSON sidecar, zip)", artifact, f"{version_id}.zip",
                      "application/zip")  # fmt: skip
    with onnx:
        try:
            download_link("Download the predicted-grade graph (ONNX)", _onnx(url, version_id, session),
                          f"{version_id}.onnx", "application/octet-stream")  # fmt: skip
        except OnnxUnavailable as error:
            st.caption(f"ONNX export unavailable: {error}")
    if st.button("Show the model card", key="card_button"):
        st.session_state["card_version"] = version_id
    if st.session_state.get("card_version") == version_id:
        card = _card(url, version_id, active_id, session)
        markdown = card.to_markdown()
        if card.flagged:
            st.warning(f"{len(card.flagged)} fairness gap(s) flagged; see the Fairness section of the card.")
        download_link("Download the model card (Markdown)", markdown.encode("utf-8"), f"model-card-{version_id}.md",
                      "text/markdown")  # fmt: skip
        with st.container(border=True):
            st.markdown(markdown)


def main() -> None:
    user = open_page(__file__)
    show_flash()
    setup = st.radio("Setup", SETUPS, format_func=SETUP_LABELS.__getitem__, horizontal=True, key="models_setup")
    with transaction() as session:  # one transaction for everything this run shows
        overview = setup_overview(session, setup)
        active_integrity(session, overview.active_id)
        show_versions(setup, overview.versions)
        ids = list(overview.versions["version"]) if not overview.versions.empty else []
        show_training(session, user, setup)
        if not ids:
            return
        compare_section(session, ids, overview.active_id)
        judge_section(session, ids, overview.active_id)
        promotion_section(user, setup, ids, overview.active_id, overview.previous_id)
        card_and_export_section(session, ids, overview.active_id)
        timeline_section(session, setup)


main()

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
from model import i18n
from model.errors import BatchRejected, UserError
from model.i18n import N_, tr, tr_n
from model.ml import gates, jobs
from model.ml.compare import Comparison, compare_versions
from model.ml.dataset import load_raw
from model.ml.export import OnnxUnavailable, export_onnx, export_version
from model.ml.modelcard import METRIC_LABELS, ModelCard, build_model_card
from model.ml.schooldata import MAX_WEIGHT, NotEnoughOutcomes, TrainingChoice, outcome_training_set
from model.ml.versions import setup_overview
from model.schema.fields import FIELDS, SETUPS
from model.schema.thresholds import Thresholds
from model.serving.downloads import problems_table
from model.store import registry
from model.store.registry import ArtifactIntegrityError, RegistryError

SETUP_LABELS = {"early": N_("early (30 attributes)"), "period1": N_("period1 (+ G1)"),
                "period2": N_("period2 (+ G1, G2)")}  # fmt: skip
JOB_KEY, FLASH_KEY, SEEN_KEY = "models_job", "models_flash", "models_job_seen"
# The training sources (the radio's values; shown translated).
BUNDLED = N_("Bundled UCI maths data (395 students)")
UPLOADED = N_("Upload a CSV")
OUTCOMES = N_("Our students' recorded outcomes")
POOLED = N_("Our outcomes pooled with the bundled data")
SCHOOL_SOURCES = {OUTCOMES: "outcomes", POOLED: "pooled"}
GATE_KEY = "models_gate"
DATETIME_FORMAT = "YYYY-MM-DD HH:mm"  # not shown to users (a column format)
ACTIONS = {"promote": N_("promote"), "rollback": N_("rollback")}
VERSION_HEADERS = {"version": N_("version"), "algorithm": N_("algorithm"), "rows": N_("rows"),
                   "created_by": N_("created by"), "runs": N_("runs"), "notes": N_("notes")}  # fmt: skip
GATE_HEADERS = {"verdict": N_("verdict"), "check": N_("check"), "metric": N_("metric"), "candidate": N_("candidate"),
                "active": N_("active"), "noise": N_("noise"), "against": N_("against")}  # fmt: skip
JUDGE_HEADERS = {"candidate": N_("candidate"), "active": N_("active"), "difference": N_("difference"),
                 "noise": N_("noise"), "better": N_("better")}  # fmt: skip
TIMELINE_HEADERS = {"version": N_("version"), "how": N_("how"), "by": N_("by"), "gate": N_("gate"),
                    "reason": N_("reason")}  # fmt: skip
BETTER = {"a": "A", "b": "B", "candidate": N_("candidate"), "active": N_("active")}


def _headers(names: dict[str, str]) -> dict[str, str]:
    """A table's column headers in this language (the data keeps its column names)."""
    return {column: tr(label) for column, label in names.items()}


def _better(value: object) -> str:
    text = str(value) if value is not None else ""
    return tr(BETTER[text]) if text in BETTER else text


# ------------------------------------------- cached computations (versions are immutable), in the run's transaction


@st.cache_data(show_spinner=False, max_entries=16)
def _comparison(url: str, version_a: str, version_b: str, _session: Session) -> Comparison:
    return compare_versions(_session, version_a, version_b, settings=settings())


@st.cache_data(show_spinner=False, max_entries=16)
def _card(url: str, version_id: str, active_id: str | None, _session: Session) -> ModelCard:
    return build_model_card(_session, version_id, settings=settings())


@st.cache_data(show_spinner=False, max_entries=8)
def _export_zip(url: str, version_id: str, _session: Session) -> bytes:
    return export_version(_session, version_id, settings=settings()).to_zip()


@st.cache_data(show_spinner=False, max_entries=8)
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
        st.info(tr("No version of the {setup} setup yet: train one below.", setup=setup))
        return
    show_table(
        table, hide_index=True, width="stretch",
        column_config=_headers(VERSION_HEADERS) | {
            "active": st.column_config.CheckboxColumn(tr("Active")),
            "created_at": st.column_config.DatetimeColumn(tr("Created (UTC)"), format=DATETIME_FORMAT),
            "data": st.column_config.TextColumn(tr("Data SHA-256"), help=tr("first 12 hex digits")),
            "pass/fail accuracy %": tr("pass/fail accuracy %"),
            "5-level accuracy %": tr("5-level accuracy %"),
        },
    )  # fmt: skip
    st.caption(tr("Metrics: mean ± std over the protocol runs (10-fold cross-validation each) on the training data."))


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
                st.error(tr("Choose a CSV file to upload, or train on the bundled data."))
                return
            frame, label = jobs.validate_training_data(upload.getvalue(), setup), f"upload {upload.name}"
            options = {"source": "file"}
        else:
            frame, label, options = load_raw(settings=settings()), jobs.BUNDLED_SOURCE, {"source": "bundled"}
        job = jobs.start_training(frame, setup, runs=runs, created_by=user.username, source=label,
                                 settings=settings(), options=options)  # fmt: skip
    except BatchRejected as error:
        st.error(tr("The file was not accepted: {reason}.", reason=md(error)))
    except jobs.TrainingDataRejected as error:
        st.error(tr("{reason}. Nothing was trained. Row numbers are as in a spreadsheet (the header is row 1).",
                    reason=md(error)))  # fmt: skip
        show_table(problems_table(error.problems), hide_index=True, width="stretch")
    except (jobs.JobError, NotEnoughOutcomes) as error:
        st.warning(str(error))
    else:
        st.session_state[JOB_KEY] = job.id


def _job_status(job: jobs.TrainingJob) -> None:
    if job.status == "done":
        st.success(tr("Training finished in {seconds} s: version **{version}** stored, inactive. Compare it with the "
                      "active one, then promote it.", seconds=i18n.number(job.seconds or 0, 0),
                      version=job.version_id))  # fmt: skip
    elif job.status == "failed":
        st.error(tr("Training job {job} failed: {error}", job=job.id, error=jobs.error_text(job.error)))
    elif job.status == "cancelled":
        st.info(tr("Training job {job} was cancelled; nothing was stored.", job=job.id))
    else:
        text = tr("Training {setup} on {rows} rows: {stage} ({progress})", setup=job.setup, rows=job.n_rows,
                  stage=jobs.stage_text(job.stage, job.runs), progress=i18n.percent(job.progress, 0))  # fmt: skip
        st.progress(job.progress, text=text)
        st.caption(tr("Started by {who} from {source}.", who=job.created_by, source=jobs.source_text(job.source)))
        st.button(tr("Cancel training"), key="cancel_job", on_click=_cancel, args=(job.id,))


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
    st.caption(tr("Our students ({setup}): {students} with a recorded final grade and a logged prediction "
                  "({recorded} outcomes recorded, {dropped} repeated predictions dropped, {incomplete} without this "
                  "setup's inputs); at least {needed} are needed to train or judge on them.", setup=setup,
                  students=c["students"], recorded=c["students_with_outcome"], dropped=c["duplicates_dropped"],
                  incomplete=c["incomplete_inputs"], needed=needed))  # fmt: skip


def show_training(session: Session, user: CurrentUser, setup: str) -> None:
    st.header(tr("Train a new version"))
    st.caption(tr("Training runs in a separate process, so predictions go on as usual. The new version is stored "
                  "inactive: nobody uses it until it is promoted."))  # fmt: skip
    school_counts(session, setup)
    with st.form("train_form"):
        source = st.radio(tr("Training data"), [BUNDLED, UPLOADED, OUTCOMES, POOLED], horizontal=True,
                          key="train_source", format_func=tr)  # fmt: skip
        upload = st.file_uploader(tr("CSV with the 30 attributes, G1, G2 and G3 (';' or ',')"), type=["csv", "txt"],
                                  key="train_file")  # fmt: skip
        runs = st.number_input(tr("Protocol runs (10-fold cross-validation each)"), 1, jobs.MAX_RUNS, 5,
                               key="train_runs")  # fmt: skip
        weight = st.number_input(tr("Weight of our students when pooled (each counts this many times in the final "
                                    "fit)"), 1, MAX_WEIGHT, 1, key="train_weight")  # fmt: skip
        submitted = st.form_submit_button(tr("Train a new {setup} version", setup=setup), type="primary")
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
    where = tr("share of the {count} reference students on the same side of P(pass) = 0.5",
               count=result.n_reference)  # fmt: skip
    agree.metric(tr("Same pass/fail call"), i18n.percent(result.pass_agreement / 100, 1), help=where)
    diff.metric(tr("Mean |difference| of predicted grades"),
                tr("{points} points", points=i18n.number(result.mean_abs_difference, 2)))  # fmt: skip
    table = result.metrics.assign(better=[_better(b) for b in result.metrics["better"]])
    table = table.rename(index=lambda m: tr(METRIC_LABELS[m]) if m in METRIC_LABELS else m).rename(columns={
        "a_mean": tr("A mean ({version})", version=result.a.id), "a_std": tr("A std"),
        "b_mean": tr("B mean ({version})", version=result.b.id), "b_std": tr("B std"), "difference": "B - A",
        "better": tr("better")})  # fmt: skip
    show_table(table.round(3), width="stretch")
    x_max = float(result.importance.max().max()) * 1.05
    left, right = st.columns(2)
    show_chart(importance_bars(_importance(result.importance["a"]), f"A: {result.a.id}", x_max), left,
               width="stretch")  # fmt: skip
    show_chart(importance_bars(_importance(result.importance["b"]), f"B: {result.b.id}", x_max), right,
               width="stretch")  # fmt: skip


def _importance(importance: pd.Series) -> pd.Series:
    """A version's importance with its attributes' labels in this language."""
    return importance.rename(index=lambda name: tr(FIELDS[name].label) if name in FIELDS else tr(str(name)))


def compare_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.header(tr("Compare two versions"))
    if len(ids) < 2:
        st.info(tr("Train a second version to compare."))
        return
    left, right = st.columns(2)
    first = ids.index(active_id) if active_id in ids else 1
    version_a = left.selectbox(tr("Version A"), ids, index=first, key="compare_a")
    version_b = right.selectbox(tr("Version B"), ids, index=0 if first != 0 else 1, key="compare_b")
    if st.button(tr("Compare"), key="compare_button"):
        st.session_state["compare_pair"] = (version_a, version_b)
    if st.session_state.get("compare_pair") == (version_a, version_b):
        try:
            with st.spinner(tr("Comparing on the 395 reference students…")):
                comparison = _comparison(settings().database_url, version_a, version_b, session)
            show_comparison(comparison)
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
        if gate["passed"]:
            return tr("{version} is now the active {setup} model (its gate passed).", version=version_id, setup=setup)
        return tr("{version} is now the active {setup} model (past its failed gate, with the reason you wrote).",
                  version=version_id, setup=setup)  # fmt: skip

    try:
        _switch(change)
    except gates.GateFailed as error:
        st.session_state[GATE_KEY] = (version_id, error.gate)
        st.session_state[FLASH_KEY] = (False, f"{error}.")
        st.session_state.pop("promote_confirm", None)  # confirm again, with the reason written


def _rollback(setup: str, by: str) -> None:
    def change(session: Session) -> str:
        return tr("{setup} rolled back to {version}.", setup=setup,
                  version=registry.rollback(session, setup, by=by, settings=settings()))  # fmt: skip

    _switch(change)


def _rollback_to(setup: str, by: str) -> None:
    target = st.session_state.get("rollback_to_choice")

    def change(session: Session) -> str:
        return tr("{setup} rolled back to {version}.", setup=setup,
                  version=registry.rollback_to(session, setup, target, by, settings=settings()))  # fmt: skip

    _switch(change)


def show_gate(version_id: str, gate: dict) -> None:
    """The gate table of the last promotion tried on this page."""
    if gate["passed"]:
        said = tr("**Promotion gate of {version}: passed**, on {data}", version=version_id, data=gates.gate_data(gate))
    else:
        said = tr("**Promotion gate of {version}: failed**, on {data}", version=version_id, data=gates.gate_data(gate))
    st.markdown(said)
    table = pd.DataFrame(gates.shown_rows(gate))[["verdict", "check", "metric", "candidate", "active", "noise",
                                                  "against"]]  # fmt: skip
    show_table(table.round(3), hide_index=True, width="stretch", column_config=_headers(GATE_HEADERS))


def _confirmed_button(label: str, confirm: str, key: str, action: Callable[..., None], *args: str) -> None:
    """A two-step action: the button only works once the confirmation box is ticked."""
    sure = st.checkbox(confirm, key=f"{key}_confirm")
    st.button(label, key=f"{key}_button", disabled=not sure, type="primary", on_click=action, args=args)


def promotion_section(user: CurrentUser, setup: str, ids: list[str], active_id: str | None,
                      previous_id: str | None) -> None:  # fmt: skip
    st.header(tr("Promote or roll back"))
    st.caption(tr("The switch is one database transaction and is audited; every instance serves the new version "
                  "within {seconds} seconds.", seconds=i18n.number(store().refresh_seconds, 0)))  # fmt: skip
    candidates = [i for i in ids if i != active_id]
    if candidates:
        chosen = st.selectbox(tr("Version to promote"), candidates, key="promote_choice")
        st.caption(tr("The promotion gate compares it with the active version on the evaluation data of record (our "
                      "students once enough outcomes are recorded, else the bundled data): pass/fail accuracy, RMSE "
                      "and calibration beyond their noise, and its fairness gaps against the limits."))  # fmt: skip
        st.text_area(tr("Reason to promote past a failed gate (kept on the timeline and in the audit log)"),
                     key="promote_reason", max_chars=gates.MAX_REASON)  # fmt: skip
        confirm = tr("I confirm that {version} becomes the active {setup} model for every user", version=chosen,
                     setup=setup)  # fmt: skip
        _confirmed_button(tr("Promote {version}", version=chosen), confirm, "promote", _promote, chosen, setup,
                          user.username)  # fmt: skip
        shown = st.session_state.get(GATE_KEY)
        if shown is not None:
            show_gate(*shown)
    if previous_id is not None:
        confirm = tr("I confirm the roll back of {setup} from {active} to {previous}", setup=setup, active=active_id,
                     previous=previous_id)  # fmt: skip
        _confirmed_button(tr("Roll back to {version}", version=previous_id), confirm, "rollback", _rollback, setup,
                          user.username)  # fmt: skip
    else:
        st.caption(tr("No previous version to roll back to."))
    earlier = _earlier_versions(setup, active_id)
    if earlier:
        st.selectbox(tr("Or any earlier version of the timeline"), earlier, key="rollback_to_choice")
        _confirmed_button(tr("Roll back to the chosen version"),
                          tr("I confirm the roll back of {setup} to the chosen version", setup=setup), "rollback_to",
                          _rollback_to, setup, user.username)  # fmt: skip


def _earlier_versions(setup: str, active_id: str | None) -> list[str]:
    with transaction() as session:
        served = [p.version_id for p in registry.timeline(session, setup)]
    return list(dict.fromkeys(v for v in reversed(served) if v != active_id))


def judge_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.header(tr("Compare on our students"))
    st.caption(tr("The chosen version and the active one scored on our students' recorded outcomes: out-of-fold "
                  "(10-fold) for a version that learned from them, plain scoring otherwise; noise is the spread of "
                  "the difference over bootstrap resamples of the students."))  # fmt: skip
    candidates = [i for i in ids if i != active_id] or ids
    left, right = st.columns(2)
    chosen = left.selectbox(tr("Version"), candidates, key="judge_choice")
    split = right.date_input(tr("Time split (optional): learn from students predicted before"), value=None,
                             key="judge_split")  # fmt: skip
    if st.button(tr("Compare on our students"), key="judge_button"):
        when = datetime.combine(split, time.min, tzinfo=UTC) if split is not None else None
        try:
            result = gates.judge(session, chosen, settings=settings(), split=when)
        except UserError as error:
            st.warning(str(error))
            return
        active_how = gates.how_text(result.how["active"]) if "active" in result.how else "-"
        st.caption(tr("Scored on {data}. Candidate {candidate}: {candidate_how}; active {active}: {active_how}.",
                      data=result.data, candidate=result.candidate_id,
                      candidate_how=gates.how_text(result.how["candidate"]), active=result.active_id,
                      active_how=active_how))  # fmt: skip
        table = result.table.assign(better=[_better(b) for b in result.table["better"]])
        table = table.rename(index=lambda m: tr(METRIC_LABELS[m]) if m in METRIC_LABELS else m)
        show_table(table.round(3), width="stretch", column_config=_headers(JUDGE_HEADERS))


def timeline_section(session: Session, setup: str) -> None:
    st.header(tr("Timeline"))
    periods = registry.timeline(session, setup)
    if not periods:
        st.caption(tr("No version has served this setup yet."))
        return
    rows = [{"from": p.started_at, "until": p.ended_at, "version": p.version_id, "how": _action(p.action), "by": p.by,
             "gate": "-" if p.gate is None else (tr("passed") if p.gate.get("passed") else tr("failed")),
             "reason": p.reason or ""} for p in reversed(periods)]  # fmt: skip
    show_table(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=_headers(TIMELINE_HEADERS) | {
        "from": st.column_config.DatetimeColumn(tr("From (UTC)"), format=DATETIME_FORMAT),
        "until": st.column_config.DatetimeColumn(tr("Until (UTC)"), format=DATETIME_FORMAT)})  # fmt: skip


def _action(action: str) -> str:
    """How a version came to serve (promote, rollback...), in this language."""
    return tr(ACTIONS[action]) if action in ACTIONS else action


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
        st.error(tr("The active model is not being served. {reason}", reason=error), icon=":material/gpp_bad:")


def card_and_export_section(session: Session, ids: list[str], active_id: str | None) -> None:
    st.header(tr("Model card and export"))
    first = ids.index(active_id) if active_id in ids else 0
    version_id = st.selectbox(tr("Version"), ids, index=first, key="card_choice")
    try:
        _card_and_export(session, version_id, active_id)
    except ArtifactIntegrityError as error:
        refused(error)


def _card_and_export(session: Session, version_id: str, active_id: str | None) -> None:
    url = settings().database_url
    download, onnx = st.columns(2)
    artifact = _export_zip(url, version_id, session)
    with download:
        download_link(tr("Download the artifact (joblib + JSON sidecar, zip)"), artifact, f"{version_id}.zip",
                      "application/zip")  # fmt: skip
    with onnx:
        try:
            with st.spinner(tr("Converting to ONNX…")):
                graph = _onnx(url, version_id, session)
            download_link(tr("Download the predicted-grade graph (ONNX)"), graph, f"{version_id}.onnx",
                          "application/octet-stream")  # fmt: skip
        except OnnxUnavailable as error:
            st.caption(tr("ONNX export unavailable: {reason}", reason=error))
    if st.button(tr("Show the model card"), key="card_button"):
        st.session_state["card_version"] = version_id
    if st.session_state.get("card_version") == version_id:
        with st.spinner(tr("Building the model card (ten cross-validation fits)…")):
            card = _card(url, version_id, active_id, session)
        markdown = card.to_markdown()
        if card.flagged:
            st.warning(tr_n("{count} fairness gap flagged; see the Fairness section of the card.",
                            "{count} fairness gaps flagged; see the Fairness section of the card.",
                            len(card.flagged)))  # fmt: skip
        name = f"model-card-{version_id}.md"  # not shown to users (the file's name)
        download_link(tr("Download the model card (Markdown)"), markdown.encode("utf-8"), name, "text/markdown")
        with st.container(border=True):
            st.markdown(markdown)


def main() -> None:
    user = open_page(__file__)
    show_flash()
    setup = st.radio(tr("Setup"), SETUPS, format_func=lambda s: tr(SETUP_LABELS[s]), horizontal=True,
                     key="models_setup")  # fmt: skip
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

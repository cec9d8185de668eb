"""Model versions (admin): the registry per setup; train, compare, promote, roll back, model cards, export."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard.charts import importance_bars, show_chart
from dashboard.context import CurrentUser, open_page, settings, store, transaction
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.text import md
from model.errors import BatchRejected
from model.ml import jobs
from model.ml.compare import Comparison, compare_versions
from model.ml.dataset import load_raw
from model.ml.export import OnnxUnavailable, export_onnx, export_version
from model.ml.modelcard import METRIC_LABELS, ModelCard, build_model_card
from model.ml.versions import setup_overview
from model.schema.fields import SETUPS
from model.serving.downloads import problems_table
from model.store import registry
from model.store.registry import ArtifactIntegrityError, RegistryError

SETUP_LABELS = {"early": "early (30 attributes)", "period1": "period1 (+ G1)", "period2": "period2 (+ G1, G2)"}
JOB_KEY, FLASH_KEY, SEEN_KEY = "models_job", "models_flash", "models_job_seen"
BUNDLED = "Bundled UCI maths data (395 students)"
UPLOADED = "Upload a CSV"


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


def _start_job(user: CurrentUser, setup: str, source: str, upload: UploadedFile | None, runs: int) -> None:
    try:
        if source == UPLOADED:
            if upload is None:
                st.error("Choose a CSV file to upload, or train on the bundled data.")
                return
            frame, label = jobs.validate_training_data(upload.getvalue(), setup), f"upload {upload.name}"
        else:
            frame, label = load_raw(settings=settings()), "bundled UCI data"
        job = jobs.start_training(frame, setup, runs=runs, created_by=user.username, source=label,
                                 settings=settings())  # fmt: skip
    except BatchRejected as error:
        st.error(f"The file was not accepted: {md(error)}.")
    except jobs.TrainingDataRejected as error:
        st.error(f"{md(error)}. Nothing was trained. Row numbers are as in a spreadsheet (the header is row 1).")
        show_table(problems_table(error.problems), hide_index=True, width="stretch")
    except jobs.JobError as error:
        st.warning(str(error))
    else:
        st.session_state[JOB_KEY] = job.id


def _job_status(job: jobs.TrainingJob) -> None:
    if job.status == "done":
        st.success(f"Training finished in {job.seconds:.0f} s: version **{job.version_id}** stored, inactive. "
                   "Compare it with the active one, then promote it.")  # fmt: skip
    elif job.status == "failed":
        st.error(f"Training job {job.id} failed: {job.error}")
    else:
        st.progress(job.progress, text=f"Training {job.setup} on {job.n_rows} rows: {job.stage} ({job.progress:.0%})")


@st.fragment(run_every=1.0)
def poll_job(job_id: str) -> None:
    """The progress of a running job, polled every second; reruns the page once when it ends."""
    job = jobs.get_job(job_id, settings=settings())
    _job_status(job)
    if job.finished:
        st.session_state[SEEN_KEY] = job.id
        st.rerun()


def show_training(user: CurrentUser, setup: str) -> None:
    st.subheader("Train a new version")
    st.caption("Training runs in a separate process, so predictions go on as usual. The new version is stored "
               "inactive: nobody uses it until it is promoted.")  # fmt: skip
    with st.form("train_form"):
        source = st.radio("Training data", [BUNDLED, UPLOADED], horizontal=True, key="train_source")
        upload = st.file_uploader("CSV with the 30 attributes, G1, G2 and G3 (';' or ',')", type=["csv", "txt"],
                                  key="train_file")  # fmt: skip
        runs = st.number_input("Protocol runs (10-fold cross-validation each)", 1, jobs.MAX_RUNS, 5, key="train_runs")
        submitted = st.form_submit_button(f"Train a new {setup} version", type="primary")
    if submitted:
        _start_job(user, setup, source, upload, int(runs))
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
    except RegistryError as error:
        st.session_state[FLASH_KEY] = (False, str(error))
        return
    store().refresh(force=True)
    st.session_state[FLASH_KEY] = (True, message)
    for key in ("promote_confirm", "rollback_confirm"):
        st.session_state.pop(key, None)


def _promote(version_id: str, setup: str, by: str) -> None:
    def change(session: Session) -> str:
        registry.promote(session, version_id, by=by, settings=settings())
        return f"{version_id} is now the active {setup} model."

    _switch(change)


def _rollback(setup: str, by: str) -> None:
    def change(session: Session) -> str:
        return f"{setup} rolled back to {registry.rollback(session, setup, by=by, settings=settings())}."

    _switch(change)


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
        confirm = f"I confirm that {chosen} becomes the active {setup} model for every user"
        _confirmed_button(f"Promote {chosen}", confirm, "promote", _promote, chosen, setup, user.username)
    if previous_id is not None:
        confirm = f"I confirm the roll back of {setup} from {active_id} to {previous_id}"
        _confirmed_button(f"Roll back to {previous_id}", confirm, "rollback", _rollback, setup, user.username)
    else:
        st.caption("No previous version to roll back to.")


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
        show_training(user, setup)
        if not ids:
            return
        compare_section(session, ids, overview.active_id)
        promotion_section(user, setup, ids, overview.active_id, overview.previous_id)
        card_and_export_section(session, ids, overview.active_id)


main()

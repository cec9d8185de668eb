"""The "Model versions" page (admin): versions, training in the background, compare, promote, roll back, card."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from model import i18n
from model.i18n import tr
from model.ml import jobs
from model.serving.outcomes import record_outcomes_csv
from model.serving.service import ModelStore, ModelUnavailable, predict_batch
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.registry import active_version_ids, promote
from tests.conftest import register_trained, swap_artifact
from tests.dashboard.conftest import Account, app_test, download_labels, log_in, page_test, texts

TRAINING_DEADLINE = 300.0


def open_page(user: Account) -> AppTest:
    return page_test("models.py", user.user).run()


def versions(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def train_on_the_page(at: AppTest) -> str:
    """Start a one-run training of the bundled data and rerun the page until the job reports."""
    at.number_input(key="train_runs").set_value(1)
    at.button[0].click().run()  # the form's submit button comes first
    deadline = time.monotonic() + TRAINING_DEADLINE
    while "Training finished" not in texts(at) and "failed" not in texts(at):
        assert time.monotonic() < deadline, "the training job did not finish in time"
        time.sleep(0.5)
        at.run()
    assert "Training finished" in texts(at), texts(at)
    return texts(at)


def test_a_teacher_is_refused(teacher_account: Account) -> None:
    at = open_page(teacher_account)
    assert "Access refused" in at.error[0].value
    assert not at.title and not at.dataframe and not at.button


def test_admin_sees_the_versions_of_each_setup(app_db_url: str, admin_account: Account) -> None:
    at = open_page(admin_account)
    assert not at.exception
    table = versions(at)
    with session_scope(get_engine(app_db_url)) as session:
        active = active_version_ids(session)
    assert list(table["version"]) == [active["early"]]
    assert table["active"].tolist() == [True]
    assert {"algorithm", "data", "rows", "created_at", "created_by", "RMSE"} <= set(table.columns)
    at.radio(key="models_setup").set_value("period2").run()
    assert list(versions(at)["version"]) == [active["period2"]]
    assert "Train a second version to compare." in texts(at)


def test_a_bad_training_file_is_reported_and_nothing_starts(
    app_db_url: str, admin_account: Account, student_csv_path: Path
) -> None:
    at = open_page(admin_account)
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame.loc[0, "Mjob"] = "pilot"
    at.radio(key="train_source").set_value("Upload a CSV")
    at.file_uploader(key="train_file").upload("train.csv", frame.to_csv(sep=";", index=False).encode(), "text/csv")
    at.button[0].click().run()
    assert "Nothing was trained" in at.error[0].value
    problems = at.dataframe[1].value
    assert problems[["row", "column", "value"]].values.tolist() == [[2, "Mjob", "pilot"]]
    assert "teacher" in problems["allowed"].item()
    assert (
        not at.get("progress")
        and jobs.running_job(settings=get_settings()) is None
        and not jobs.list_jobs(settings=get_settings())
    )


def test_train_compare_promote_roll_back_and_model_card(app_db_url: str, admin_account: Account) -> None:
    engine = get_engine(app_db_url)
    with session_scope(engine) as session:
        old = active_version_ids(session)["period2"]
    at = open_page(admin_account)
    at.radio(key="models_setup").set_value("period2").run()
    train_on_the_page(at)
    table = versions(at)
    assert len(table) == 2 and table["active"].tolist() == [False, True]
    new = table["version"].iloc[0]
    assert table["created_by"].iloc[0] == "head" and table["runs"].iloc[0] == 1

    at.button(key="compare_button").click().run()
    assert not at.exception
    said = texts(at)
    assert "Same pass/fail call" in said and "Mean |difference| of predicted grades" in said
    assert len(at.get("plotly_chart")) == 2
    metrics = at.dataframe[1].value
    assert "RMSE (grade points)" in metrics.index

    assert at.button(key="promote_button").disabled
    at.checkbox(key="promote_confirm").check().run()
    at.button(key="promote_button").click().run()
    assert f"{new} is now the active period2 model (its gate passed)." in texts(at)
    assert "Promotion gate of" in texts(at) and "passed" in texts(at)
    with session_scope(engine) as session:
        assert active_version_ids(session)["period2"] == new
        assert [(r.actor, r.detail["version_id"]) for r in list_audit(session, "model.promote")][0] == ("head", new)

    assert at.button(key="rollback_button").disabled
    at.checkbox(key="rollback_confirm").check().run()
    at.button(key="rollback_button").click().run()
    assert f"period2 rolled back to {old}." in texts(at)
    with session_scope(engine) as session:
        assert active_version_ids(session)["period2"] == old

    at.button(key="card_button").click().run()
    assert not at.exception
    card = next(m.value for m in at.markdown if m.value.startswith("# Model card"))
    assert "## Fairness" in card and "never an automatic judgment" in card
    labels = download_labels(at)
    assert any("model card" in label for label in labels) and any("ONNX" in label for label in labels)


def test_the_app_routes_an_admin_to_the_page_and_refuses_a_teacher(
    admin_account: Account, teacher_account: Account
) -> None:
    admin = log_in(app_test().run(), admin_account.user.username, admin_account.password)
    admin.switch_page("../pages/models.py").run()
    assert not admin.exception and [t.value for t in admin.title] == ["Model versions"]

    teacher = log_in(app_test().run(), teacher_account.user.username, teacher_account.password)
    teacher.switch_page("../pages/models.py").run()
    assert any("Access refused" in e.value for e in teacher.error)
    assert not [t for t in teacher.title if t.value == "Model versions"]


def test_a_rollback_another_admin_already_did_is_refused_with_a_reason(
    app_db_url: str, admin_account: Account, trained_models: dict
) -> None:
    engine = get_engine(app_db_url)
    new = register_trained(engine, trained_models["early"])
    with session_scope(engine) as session:
        old = active_version_ids(session)["early"]
        promote(session, new, by="pytest", settings=get_settings())
    first, second = open_page(admin_account), open_page(admin_account)  # two admins, the same page
    for at in (first, second):
        at.checkbox(key="rollback_confirm").check().run()
    first.button(key="rollback_button").click().run()
    assert f"early rolled back to {old}." in texts(first)
    second.button(key="rollback_button").click().run()
    assert not second.exception
    assert "setup 'early' has no previous model version to roll back to" in [e.value for e in second.error]
    with session_scope(engine) as session:
        assert active_version_ids(session)["early"] == old


def test_a_swapped_artifact_shows_a_red_box_not_a_traceback(app_db_url: str, admin_account: Account) -> None:
    victim = swap_artifact(app_db_url, into="early", source="period2")
    at = open_page(admin_account)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors[0].startswith(f"The active model is not being served. refusing to load the artifact of model "
                                f"version {victim}: its HMAC signature does not match")  # fmt: skip
    assert "check MATHSIGHT_SECRET_KEY, then train this setup again" in errors[0]
    assert any(e.startswith(f"refusing to load the artifact of model version {victim}") for e in errors[1:])
    assert "Traceback" not in texts(at) and "ArtifactIntegrityError" not in texts(at)
    assert victim in versions(at)["version"].tolist()


def test_a_refused_artifact_reads_in_each_admins_language_and_the_shared_store_keeps_it_in_english(
    app_db_url: str, admin_account: Account
) -> None:
    """The page checks the active version in its reader's language. The model store, shared by every session,
    keeps (and logs) its refusal in English whoever's run loaded the version first."""
    victim = swap_artifact(app_db_url, into="early", source="period2")
    store = ModelStore(get_engine(app_db_url), settings=get_settings())
    with i18n.use_language(i18n.PORTUGUESE):
        frame = tr("The active model is not being served. {reason}", reason="")
        with pytest.raises(ModelUnavailable) as unavailable:
            store.get("early")
        assert "indisponível" in str(unavailable.value)  # what the reader is told: their language
    assert unavailable.value.reason.startswith(f"refusing to load the artifact of model version {victim}: its HMAC")
    portuguese = page_test("models.py", admin_account.user, language="pt_PT").run()
    assert not portuguese.exception
    assert portuguese.error[0].value.startswith(frame + f"o artefacto da versão do modelo {victim} não foi carregado")
    english = open_page(admin_account)
    assert english.error[0].value.startswith(f"The active model is not being served. refusing to load the artifact "
                                             f"of model version {victim}")  # fmt: skip


def test_train_from_our_outcomes_judge_promote_past_a_gate_with_a_reason_and_the_timeline(
    app_db_url: str, admin_account: Account, raw_df: pd.DataFrame, monkeypatch
) -> None:
    """The admin's journey of issue 14 on the page: 60 of our students' outcomes (the minimum set to 20 here)."""
    monkeypatch.setenv("MATHSIGHT_MIN_TRAINING_OUTCOMES", "20")
    get_settings.cache_clear()
    engine = get_engine(app_db_url)
    students = pd.concat([raw_df[raw_df["G3"] == 0].head(8), raw_df[raw_df["G3"] > 0].head(52)]).reset_index(drop=True)
    students.insert(0, "student_id", [f"P{i:02d}" for i in range(60)])
    store = ModelStore(engine, settings=get_settings())
    predict_batch(store, engine, students.drop(columns=["G3"]).to_csv(sep=";", index=False), channel="ui",
                  user_id=admin_account.user.id)  # fmt: skip
    with session_scope(engine) as session:
        record_outcomes_csv(session, get_settings(), students[["student_id", "G3"]].to_csv(index=False),
                            admin_account.user.id)  # fmt: skip
        old = active_version_ids(session)["period2"]
    at = open_page(admin_account)
    at.radio(key="models_setup").set_value("period2").run()
    assert "Our students (period2): 60 with a recorded final grade" in texts(at)
    at.radio(key="train_source").set_value("Our students' recorded outcomes")
    train_on_the_page(at)
    new = versions(at)["version"].iloc[0]
    assert "outcomes" in versions(at)["notes"].iloc[0]

    at.selectbox(key="judge_choice").set_value(new)
    at.button(key="judge_button").click().run()
    assert not at.exception
    assert "Scored on the school's recorded outcomes (60 students)" in texts(at)
    assert "out-of-fold (10-fold)" in texts(at) and "plain scoring" in texts(at)

    at.selectbox(key="promote_choice").set_value(new)
    at.checkbox(key="promote_confirm").check().run()
    at.button(key="promote_button").click().run()
    assert "failed" in texts(at) and "write a reason to promote it anyway" in texts(at), texts(at)
    with session_scope(engine) as session:
        assert active_version_ids(session)["period2"] == old
    at.text_area(key="promote_reason").input("our own students matter more than the 2005 ones")
    at.checkbox(key="promote_confirm").check().run()
    at.button(key="promote_button").click().run()
    assert f"{new} is now the active period2 model (past its failed gate" in texts(at)
    timeline = at.dataframe[-1].value
    assert timeline["version"].tolist()[:2] == [new, old]
    assert timeline["reason"].iloc[0] == "our own students matter more than the 2005 ones"
    assert timeline["gate"].iloc[0] == "failed"
    with session_scope(engine) as session:
        assert list_audit(session, "model.promote")[0].detail["reason"].startswith("our own students")

"""Who gets what: every dashboard page and every API endpoint against every kind of caller, and a
teacher asking for another teacher's students (history, the My students page, "not useful") or
recording their final grades."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.routing import Route

from api.main import create_app
from api.settings import ApiSettings
from dashboard.context import CurrentUser
from dashboard.page_table import PAGES, PageSpec
from model.accounts import oidc, users
from model.accounts.apikeys import create_key, revoke_key
from model.errors import InvalidInput
from model.schema.fields import EXAMPLE_RECORD
from model.serving.history import history_counts, recent_predictions, teacher_history
from model.serving.outcomes import PredictionNotFound, record_feedback, record_outcome, record_outcomes_csv
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import FEEDBACK_CATEGORIES, Feedback, Outcome, PredictionLog
from tests.api.conftest import make_keys
from tests.dashboard.conftest import Account, admin_account, page_test, teacher_account, texts

__all__ = ["admin_account", "teacher_account"]  # fixtures shared with the dashboard tests

ROLES = ("anonymous", "teacher", "other teacher", "school teacher", "school admin", "admin")
LOGIN_REQUIRED = "Please log in to see this page."
REFUSED = "Access refused"


@pytest.fixture
def other_teacher(app_db_url: str, admin_account: Account) -> CurrentUser:
    """A second teacher, "otto"."""
    with session_scope(get_engine(app_db_url)) as session:
        info = users.create_user(session, "otto", "otto-password-1", role="teacher", name="Otto", actor="pytest")
    return CurrentUser(info.id, info.username, info.name, info.role)


def _provider_account(url: str, email: str, role: str) -> CurrentUser:
    """A person who signed in through the school's identity provider, given ``role`` by an admin's rule."""
    with session_scope(get_engine(url)) as session:
        oidc.add_rule(session, email, role, actor="pytest")
        info = oidc.resolve(
            session, issuer="https://idp.school.test", subject=email, email=email, email_verified=True
        ).user
    assert info is not None
    return CurrentUser(info.id, info.username, info.name, info.role)


@pytest.fixture
def people(app_db_url: str, admin_account: Account, teacher_account: Account, other_teacher: CurrentUser) -> dict:
    """Role name -> the CurrentUser the page sees (None for a visitor who has not signed in); the "school"
    ones came through the identity provider."""
    return {"anonymous": None, "teacher": teacher_account.user, "other teacher": other_teacher,
            "school teacher": _provider_account(app_db_url, "tania@school.test", "teacher"),
            "school admin": _provider_account(app_db_url, "adriana@school.test", "admin"),
            "admin": admin_account.user}  # fmt: skip


# --- pages -------------------------------------------------------------------------------------


def _allowed(spec: PageSpec, role: str) -> bool:
    return role != "anonymous" and role.split()[-1] in spec.roles


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("spec", PAGES, ids=[spec.file for spec in PAGES])
def test_page_access(spec: PageSpec, role: str, people: dict) -> None:
    at = page_test(spec.file, people[role]).run()  # a visitor who has not signed in has no user
    assert not at.exception, at.exception
    titles = [title.value for title in at.title]
    errors = [error.value for error in at.error]
    if _allowed(spec, role):
        assert titles == [spec.title] and not errors, (titles, errors)
    elif role == "anonymous":
        assert errors == [LOGIN_REQUIRED] and not titles, (titles, errors)
    else:
        assert len(errors) == 1 and errors[0].startswith(REFUSED) and not titles, (titles, errors)
        assert "for admin accounts; you are signed in as a teacher" in errors[0]


def test_the_matrix_covers_every_page_file() -> None:
    files = {path.name for path in PAGES[0].path.parent.glob("*.py")} - {"__init__.py"}
    assert files == {spec.file for spec in PAGES}
    assert {spec.file for spec in PAGES if spec.roles == ("admin",)} == {
        "monitoring.py", "alerts.py", "models.py", "users.py", "api_keys.py", "school_settings.py",
        "acting.py",
    }  # fmt: skip


# --- API endpoints -----------------------------------------------------------------------------

KEYS = ("no key", "revoked key", "predict key", "admin key")
PUBLIC = {key: 200 for key in KEYS}
NEEDS_PREDICT = {"no key": 401, "revoked key": 401, "predict key": 200, "admin key": 200}
NEEDS_ADMIN = {"no key": 401, "revoked key": 401, "predict key": 403, "admin key": 200}
STUDENT = {"student_id": "S-1", **EXAMPLE_RECORD}
ENDPOINTS = {  # (method, path) -> (JSON body or None, expected status per key)
    ("POST", "/v1/predict"): (STUDENT, NEEDS_PREDICT),
    ("POST", "/v1/predict/batch"): ([STUDENT, {**STUDENT, "student_id": "S-2"}], NEEDS_PREDICT),
    ("GET", "/v1/models"): (None, NEEDS_PREDICT),
    ("GET", "/v1/schema"): (None, NEEDS_PREDICT),
    ("GET", "/metrics"): (None, NEEDS_ADMIN),
    ("GET", "/healthz"): (None, PUBLIC),
    ("GET", "/openapi.json"): (None, PUBLIC),
    ("GET", "/docs"): (None, PUBLIC),
    ("GET", "/docs/oauth2-redirect"): (None, PUBLIC),
    ("GET", "/redoc"): (None, PUBLIC),
}


@pytest.fixture
def api(app_db_url: str) -> Iterator[tuple[TestClient, dict[str, str | None]]]:
    """A client of the real app on the test database, and the key each kind of caller presents."""
    made = make_keys(app_db_url)
    with session_scope(get_engine(app_db_url)) as session:
        revoked, _ = create_key(session, made.teacher_id, "predict", settings=get_settings())
        revoke_key(session, revoked)
    presented = {"no key": None, "revoked key": revoked, "predict key": made.predict, "admin key": made.admin}
    with TestClient(create_app(ApiSettings(database_url=app_db_url, api_rate_limit=1000))) as client:
        yield client, presented


def test_the_matrix_covers_every_route(api: tuple[TestClient, dict]) -> None:
    app = api[0].app
    paths = app.openapi()["paths"]
    documented = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    built_in = {(method, route.path) for route in app.routes if isinstance(route, Route)
                for method in route.methods or () if method != "HEAD"}  # fmt: skip
    assert documented | built_in == set(ENDPOINTS)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_endpoint_access(endpoint: tuple[str, str], key: str, api: tuple[TestClient, dict]) -> None:
    client, presented = api
    (method, path), (body, expected) = endpoint, ENDPOINTS[endpoint]
    headers = {"X-API-Key": presented[key]} if presented[key] else {}
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == expected[key], response.text
    if response.status_code in (401, 403):
        assert response.json()["error"] == {401: "unauthorized", 403: "forbidden"}[response.status_code]


def test_no_refused_call_reaches_the_prediction_log(api: tuple[TestClient, dict], app_db_url: str) -> None:
    client, presented = api
    for key in ("no key", "revoked key"):
        headers = {"X-API-Key": presented[key]} if presented[key] else {}
        assert client.post("/v1/predict", json=STUDENT, headers=headers).status_code == 401
    with get_engine(app_db_url).connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(PredictionLog)) == 0


# --- one teacher's students are not another's --------------------------------------------------


def _predict(url: str, raw_df: pd.DataFrame, user: CurrentUser, ids: list[str], start: int) -> None:
    engine = get_engine(url)
    frame = raw_df.drop(columns=["G3"]).iloc[start : start + len(ids)].copy()
    frame.insert(0, "student_id", ids)
    predict_batch(
        ModelStore(engine, settings=get_settings()),
        engine,
        frame.to_csv(sep=";", index=False),
        channel="ui",
        user_id=user.id,
    )


@pytest.fixture
def two_classes(app_db_url: str, teacher_account: Account, other_teacher: CurrentUser, raw_df: pd.DataFrame) -> dict:
    """Tina predicts S1-S3; Otto predicts X9 (and S1, a student they share, is Tina's only)."""
    _predict(app_db_url, raw_df, teacher_account.user, ["S1", "S2", "S3"], 0)
    _predict(app_db_url, raw_df, other_teacher, ["X9"], 50)
    with get_engine(app_db_url).connect() as connection:
        rows = connection.execute(sa.select(PredictionLog.id, PredictionLog.user_id)).all()
    tina_ids = [row.id for row in rows if row.user_id == teacher_account.user.id]
    return {"tina": teacher_account.user, "otto": other_teacher, "tina_prediction_ids": tina_ids}


def test_history_of_another_teacher_never_holds_the_first_teachers_rows(app_db_url: str, two_classes: dict) -> None:
    tina, otto, settings = two_classes["tina"], two_classes["otto"], get_settings()
    tina_keys = {student_key(s, settings) for s in ("S1", "S2", "S3")}
    with session_scope(get_engine(app_db_url)) as session:
        assert set(teacher_history(session, settings, tina.id)["student_key"]) == tina_keys
        assert set(teacher_history(session, settings, otto.id)["student_key"]) == {student_key("X9", settings)}
        for student in ("S1", "S2", "S3"):  # asking by the other teacher's student id finds nothing
            assert teacher_history(session, settings, otto.id, student_id=student).empty
            assert sum(history_counts(session, settings, otto.id, student_id=student).values()) == 0
        recent = recent_predictions(session, otto.id)
    assert set(recent["prediction_id"]).isdisjoint(two_classes["tina_prediction_ids"])


def test_my_students_page_of_another_teacher_shows_none_of_the_first_teachers(
    app_db_url: str, two_classes: dict
) -> None:
    at = page_test("my_students.py", two_classes["otto"]).run()
    assert not at.exception
    assert at.dataframe[0].value["student_key"].tolist() == [student_key("X9", get_settings())[:10]]
    assert at.metric[0].value == "1"
    at.text_input(key="history_student").input("S1").run()
    assert not at.dataframe and at.info[0].value == "No predictions match."
    assert all(student_key(s, get_settings())[:10] not in texts(at) for s in ("S1", "S2", "S3"))


@pytest.mark.parametrize("category", FEEDBACK_CATEGORIES)
def test_feedback_on_another_teachers_prediction_is_refused(
    app_db_url: str, two_classes: dict, admin_account: Account, category: str
) -> None:
    engine, tina_prediction = get_engine(app_db_url), two_classes["tina_prediction_ids"][0]
    for intruder in (two_classes["otto"], admin_account.user):
        with pytest.raises(PredictionNotFound), session_scope(engine) as session:
            record_feedback(session, tina_prediction, intruder.id, category, "not my student")
    with get_engine(app_db_url).connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
    with session_scope(engine) as session:
        assert record_feedback(session, tina_prediction, two_classes["tina"].id, category) > 0
        assert recent_predictions(session, two_classes["otto"].id)["feedback"].isna().all()


def _outcome_rows(url: str) -> list[tuple[str, int, int | None]]:
    with get_engine(url).connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(Outcome.student_key, Outcome.g3, Outcome.recorded_by))]


@pytest.mark.parametrize("writer", ["otto", "admin"])
def test_recording_a_grade_for_another_teachers_student_is_refused(
    app_db_url: str, two_classes: dict, admin_account: Account, writer: str
) -> None:
    engine, settings = get_engine(app_db_url), get_settings()
    user = two_classes["otto"] if writer == "otto" else admin_account.user
    with pytest.raises(InvalidInput, match='no prediction of yours for student id "S1"'), session_scope(engine) as s:
        record_outcome(s, settings, "S1", 20, user.id)
    with session_scope(engine) as session:
        imported = record_outcomes_csv(session, settings, "student_id,G3\nS2,20\nS3,0\n", user.id)
    assert (imported.stored, imported.rejected_rows) == (0, [2, 3])
    at = page_test("outcomes.py", user).run()
    at.text_input(key="outcome_student").input("S1")
    at.number_input(key="outcome_g3").set_value(20)
    at.button[0].click().run()
    assert not at.exception and not at.success and "no prediction of yours" in at.error[0].value
    assert _outcome_rows(app_db_url) == []
    at = page_test("my_students.py", two_classes["tina"]).run()  # Tina's reads are unaffected
    assert at.dataframe[0].value["outcome_g3"].isna().all() and len(at.dataframe[0].value) == 3


def test_recording_a_grade_for_ones_own_student_works_and_the_teacher_sees_it(
    app_db_url: str, two_classes: dict
) -> None:
    engine, settings, tina = get_engine(app_db_url), get_settings(), two_classes["tina"]
    with session_scope(engine) as session:
        record_outcome(session, settings, "S1", 14, tina.id)
        assert record_outcomes_csv(session, settings, "student_id;G3\nS2;8\n", tina.id).stored == 1
    assert sorted(_outcome_rows(app_db_url)) == sorted(
        [(student_key("S1", settings), 14, tina.id), (student_key("S2", settings), 8, tina.id)]
    )
    table = page_test("my_students.py", tina).run().dataframe[0].value.set_index("student_key")
    assert table.loc[student_key("S1", settings)[:10], "outcome_g3"] == 14
    otto = page_test("my_students.py", two_classes["otto"]).run().dataframe[0].value
    assert otto["outcome_g3"].isna().all() and len(otto) == 1


# --- student ids and interventions (issue 13) ------------------------------------------------------


def test_student_ids_are_read_back_by_the_teacher_who_typed_them_only(app_db_url: str, two_classes: dict) -> None:
    from model.serving.students import ref_counts, student_ids

    tina, otto, settings = two_classes["tina"], two_classes["otto"], get_settings()
    keys = [student_key(s, settings) for s in ("S1", "S2", "S3", "X9")]
    with session_scope(get_engine(app_db_url)) as session:
        assert sorted(student_ids(session, settings, tina.id, keys).values()) == ["S1", "S2", "S3"]
        assert list(student_ids(session, settings, otto.id, keys).values()) == ["X9"]
        assert ref_counts(session) == {tina.id: 3, otto.id: 1}  # what an admin may see: counts


def test_interventions_are_written_and_read_by_their_teacher_only(app_db_url: str, two_classes: dict) -> None:
    from model.serving import interventions as iv
    from model.store.tables import Intervention

    tina, otto, settings, engine = two_classes["tina"], two_classes["otto"], get_settings(), get_engine(app_db_url)
    plan = {"kind": "tutoring", "start_date": "2026-10-01", "review_date": "2026-11-01"}
    with session_scope(engine) as session:
        tinas = iv.record_intervention(session, settings, tina.id, "tina", student_id="S1", **plan)
    refused = pytest.raises(InvalidInput, match='no prediction of yours for student id "S1"')
    with refused, session_scope(engine) as session:  # Otto cannot plan for Tina's student
        iv.record_intervention(session, settings, otto.id, "otto", student_id="S1", **plan)
    with pytest.raises(iv.InterventionNotFound), session_scope(engine) as session:
        iv.update_intervention(session, settings, otto.id, "otto", tinas, status="stopped")
    with session_scope(engine) as session:
        assert iv.list_interventions(session, settings, otto.id).empty
        assert iv.list_interventions(session, settings, tina.id)["intervention_id"].tolist() == [tinas]
        assert "S1" not in iv.interventions_csv(session, settings, otto.id).decode("utf-8-sig")
        assert session.get(Intervention, tinas).status == "planned"


def test_needs_attention_and_the_timeline_show_a_teacher_their_own_students_only(
    app_db_url: str, two_classes: dict
) -> None:
    from dataclasses import replace
    from datetime import date

    from model.schema.thresholds import Thresholds
    from model.serving.attention import needs_attention
    from model.serving.students import NotYourStudent
    from model.serving.timeline import student_timeline

    tina, otto, settings = two_classes["tina"], two_classes["otto"], get_settings()
    everyone = replace(Thresholds.from_settings(settings), risk_high_below=0.999, risk_medium_below=1.0)
    tina_keys = {student_key(s, settings) for s in ("S1", "S2", "S3")}
    with session_scope(get_engine(app_db_url)) as session:
        assert set(needs_attention(session, tina.id, everyone, date.today())["student_key"]) == tina_keys
        assert set(needs_attention(session, otto.id, everyone, date.today())["student_key"]) == {
            student_key("X9", settings)
        }
        assert student_timeline(session, settings, tina.id, student_key("S1", settings)).predictions.shape[0] == 1
        for key in tina_keys:  # the other teacher's student page: not found, as an unknown key would be
            with pytest.raises(NotYourStudent):
                student_timeline(session, settings, otto.id, key)


# --- learning from the school's own students (issue 14): admin only ------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_school_training_judging_gates_and_timeline_are_for_admins_only(role: str, people: dict) -> None:
    """The outcome counts, the training from outcomes, "compare on our students", the gate and the timeline
    are read and written only through the admin's models page."""
    at = page_test("models.py", people[role]).run()
    said = texts(at)
    shown = all(part in said for part in ("Our students (early)", "Compare on our students", "Timeline"))
    assert shown == (role.split()[-1] == "admin"), said
    sources = [r.options for r in at.radio if r.key == "train_source"]
    assert (sources == [["Bundled UCI maths data (395 students)", "Upload a CSV", "Our students' recorded outcomes",
                         "Our outcomes pooled with the bundled data"]]) == (role.split()[-1] == "admin")  # fmt: skip

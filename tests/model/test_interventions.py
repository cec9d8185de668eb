"""Student ids each teacher typed (encrypted at rest) and interventions (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from model.errors import InvalidInput
from model.serving import interventions as iv
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.serving.students import (
    IN_LIST,
    NotYourStudent,
    own_student_key,
    ref_counts,
    remember_students,
    student_ids,
)
from model.serving.timeline import student_timeline
from model.settings import get_settings
from model.store import crypto
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.tables import Intervention, StudentRef
from tests.model.test_history import _class, add_user

KEY = crypto.generate_key()
START, REVIEW = date(2026, 10, 1), date(2026, 11, 1)


@pytest.fixture(params=["clear", "encrypted"])
def school(request: pytest.FixtureRequest, models_db_url: str, raw_df: pd.DataFrame, monkeypatch) -> dict:
    """Ana predicts S1-S3, Ben predicts S9; with or without a data key."""
    if request.param == "encrypted":
        monkeypatch.setenv("MATHSIGHT_DATA_KEY", KEY)
        get_settings.cache_clear()
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings())
    ana, ben = add_user(engine, "ana"), add_user(engine, "ben")
    predict_batch(store, engine, _class(raw_df, ["S1", "S2", "=S3"]), channel="ui", user_id=ana)
    predict_batch(store, engine, _class(raw_df, ["S9"], start=20), channel="ui", user_id=ben)
    return {"engine": engine, "ana": ana, "ben": ben, "encrypted": request.param == "encrypted"}


def test_each_teacher_reads_back_only_the_ids_they_typed(school: dict) -> None:
    engine, ana, ben, settings = school["engine"], school["ana"], school["ben"], get_settings()
    keys = [student_key(sid, settings) for sid in ("S1", "S2", "=S3", "S9")]
    with session_scope(engine) as session:
        assert student_ids(session, settings, ana, keys) == dict(zip(keys[:3], ["S1", "S2", "=S3"], strict=True))
        assert student_ids(session, settings, ben, keys) == {keys[3]: "S9"}
        assert ref_counts(session) == {ana: 3, ben: 1}
        stored = session.execute(sa.select(StudentRef.ref, StudentRef.ref_key_id)).all()
    if school["encrypted"]:
        assert all(row.ref_key_id == crypto.keyring(settings).current.key_id for row in stored)
        assert not {row.ref for row in stored} & {"S1", "S2", "=S3", "S9"}
    else:
        assert {row.ref for row in stored} == {"S1", "S2", "=S3", "S9"} and {row.ref_key_id for row in stored} == {None}


def test_a_stored_id_is_left_as_it_is_and_only_new_ids_are_written(school: dict) -> None:
    engine, ana, settings = school["engine"], school["ana"], get_settings()
    query = sa.select(StudentRef.student_key, StudentRef.ref, StudentRef.updated_at).order_by(StudentRef.student_key)
    with engine.connect() as connection:
        before = connection.execute(query).all()
    ids = ["S1", " S2 ", *(f"N{i}" for i in range(IN_LIST + 5))]  # more new ids than one IN list holds
    keys = [student_key(sid, settings) for sid in ids]
    assert remember_students(engine, settings, ana, ids, keys) == IN_LIST + 5  # S1 and S2 are Ana's already
    assert remember_students(engine, settings, ana, ids, keys) == 0
    with engine.connect() as connection:
        after = connection.execute(query).all()
    assert set(before) <= set(after) and len(after) == len(before) + IN_LIST + 5  # old rows not rewritten
    with session_scope(engine) as session:
        assert student_ids(session, settings, ana, keys[-1:]) == {keys[-1]: f"N{IN_LIST + 4}"}


def test_an_intervention_is_recorded_edited_listed_and_audited(school: dict) -> None:
    engine, ana, ben, settings = school["engine"], school["ana"], school["ben"], get_settings()
    with session_scope(engine) as session:
        new = iv.record_intervention(session, settings, ana, "ana", student_id=" S1 ", kind="tutoring",
                                     start_date=START, review_date="2026-11-01", note="weekly, Tuesdays")  # fmt: skip
    with session_scope(engine) as session:
        iv.update_intervention(session, settings, ana, "ana", new, status="active", note="twice a week")
    with session_scope(engine) as session:
        mine = iv.list_interventions(session, settings, ana)
        theirs = iv.list_interventions(session, settings, ben)
        actions = [row.action for row in list_audit(session)]
        stored_note = session.execute(sa.select(Intervention.note)).scalar_one()
    assert theirs.empty
    assert mine[["intervention_id", "student_id", "kind", "status", "review_date", "note"]].values.tolist() == [
        [new, "S1", "tutoring", "active", REVIEW, "twice a week"]
    ]
    assert actions[:2] == ["intervention_updated", "intervention_created"]
    assert (stored_note == "twice a week") is not school["encrypted"]


def test_bad_input_names_every_field_and_writes_nothing(school: dict) -> None:
    engine, ana, settings = school["engine"], school["ana"], get_settings()
    with session_scope(engine) as session, pytest.raises(InvalidInput) as caught:
        iv.record_intervention(session, settings, ana, "ana", student_id="S9", kind="detention", status="someday",
                               start_date="2026-11-02", review_date=REVIEW, note="x" * 281)  # fmt: skip
    fields = [problem.column for problem in caught.value.problems]
    assert fields == ["student_id", "kind", "status", "review_date", "note"]
    message = str(caught.value)
    assert 'no prediction of yours for student id "S9"' in message  # Ben's student, not Ana's
    assert "2026-11-01 is before the start date 2026-11-02" in message and "281 characters; at most 280" in message
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="field \"start_date\": 'soon'"):
        iv.record_intervention(session, settings, ana, "ana", student_id="S1", kind="other", start_date="soon",
                               review_date=REVIEW)  # fmt: skip
    with session_scope(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Intervention)).scalar_one() == 0
        assert list_audit(session, "intervention_created") == []


def test_another_teachers_intervention_cannot_be_edited(school: dict) -> None:
    engine, ana, ben, settings = school["engine"], school["ana"], school["ben"], get_settings()
    with session_scope(engine) as session:
        new = iv.record_intervention(session, settings, ana, "ana", student_id="S2", kind="study_plan",
                                     start_date=START, review_date=REVIEW)  # fmt: skip
    with session_scope(engine) as session, pytest.raises(iv.InterventionNotFound):
        iv.update_intervention(session, settings, ben, "ben", new, status="stopped")
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="before the start date"):
        iv.update_intervention(session, settings, ana, "ana", new, review_date="2026-09-01")
    with session_scope(engine) as session:
        assert session.get(Intervention, new).status == "planned"
        assert session.get(Intervention, new).review_date == REVIEW
        assert own_student_key(session, settings, ana, "S2") == student_key("S2", settings)


def test_another_teachers_student_is_refused_by_one_check_in_the_same_words(school: dict) -> None:
    engine, ben, settings = school["engine"], school["ben"], get_settings()
    plan = {"kind": "tutoring", "start_date": START, "review_date": REVIEW}
    with session_scope(engine) as session:
        with pytest.raises(InvalidInput) as outcome:
            record_outcome(session, settings, "S1", 12, ben)
        with pytest.raises(InvalidInput) as intervention:
            iv.record_intervention(session, settings, ben, "ben", student_id="S1", **plan)
        refused = [outcome.value.problems, intervention.value.problems]
        with pytest.raises(NotYourStudent, match="^this student is not one of yours"):
            student_timeline(session, settings, ben, student_key("S1", settings))
        with pytest.raises(NotYourStudent, match="^this student is not one of yours"):
            iv.record_intervention(session, settings, ben, "ben", student_key=student_key("S1", settings), **plan)
    expected = NotYourStudent("S1").problem
    assert refused == [[expected], [expected]]
    assert expected.message.startswith('field "student_id": no prediction of yours for student id "S1"')


def test_the_csv_export_is_formula_escaped_and_only_the_teachers_own(school: dict) -> None:
    engine, ana, ben, settings = school["engine"], school["ana"], school["ben"], get_settings()
    with session_scope(engine) as session:
        iv.record_intervention(session, settings, ana, "ana", student_id="=S3", kind="guardian_meeting",
                               start_date=START, review_date=REVIEW, note="@call home")  # fmt: skip
        mine, theirs = iv.interventions_csv(session, settings, ana), iv.interventions_csv(session, settings, ben)
    text = mine.decode("utf-8-sig")
    assert "'=S3" in text and "'@call home" in text and "Parent/guardian meeting" in text
    assert "student_key" not in text
    assert theirs.decode("utf-8-sig").count("\n") == 1  # the header only


def test_rotation_re_encrypts_student_ids_and_notes(school: dict, monkeypatch) -> None:
    from model.store import rotation

    engine, ana = school["engine"], school["ana"]
    with session_scope(engine) as session:
        iv.record_intervention(session, get_settings(), ana, "ana", student_id="S1", kind="other",
                               start_date=START, review_date=REVIEW, note="see the plan")  # fmt: skip
    new_key = crypto.generate_key()
    monkeypatch.setenv("MATHSIGHT_DATA_KEY", new_key)
    monkeypatch.setenv("MATHSIGHT_DATA_KEY_PREVIOUS", KEY)
    get_settings.cache_clear()
    with session_scope(engine) as session:
        assert rotation.rotate_data_key(session, settings=get_settings()).texts == 5  # 4 ids (Ana 3, Ben 1), 1 note
    monkeypatch.delenv("MATHSIGHT_DATA_KEY_PREVIOUS")
    get_settings.cache_clear()
    settings = get_settings()
    with session_scope(engine) as session:
        assert iv.list_interventions(session, settings, ana)[["student_id", "note"]].values.tolist() == [
            ["S1", "see the plan"]
        ]
        assert set(session.scalars(sa.select(StudentRef.ref_key_id))) == {crypto.DataKey.from_text(new_key).key_id}

"""The model registry: versions, signed artifacts, promotion and rollback, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LinearRegression

from model.settings import Settings, get_settings
from model.store import db, registry
from model.store.audit import list_audit
from model.store.tables import ActiveModel, ModelVersion

FEATURES = ["studytime", "failures", "absences", "G1", "G2"]


@pytest.fixture(scope="module")
def students(student_csv_path: Path) -> pd.DataFrame:
    return pd.read_csv(student_csv_path, sep=";").head(60)


@pytest.fixture(scope="module")
def fitted(students: pd.DataFrame) -> LinearRegression:
    return LinearRegression().fit(students[FEATURES], students["G3"])


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    db.dispose_engines()


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    db.migrate(db_url)
    return db.get_engine(db_url)


def _register(engine: sa.Engine, model: object, setup: str = "period2", algorithm: str = "linear") -> str:
    with db.session_scope(engine) as session:
        version = registry.register_version(
            session,
            model,
            setup=setup,
            algorithm=algorithm,
            params={"fit_intercept": True},
            schema_version=1,
            data_sha256="0" * 64,
            n_rows=60,
            metrics={"rmse": np.float64(1.9), "n_folds": np.int64(10)},
            reference={"absences": {"mean": 5.7}},
            created_by="tester",
            settings=get_settings(),
        )
        return version.id


def _signed(blob: bytes) -> registry.Signed:
    return registry.Signed("file", "period2", 1, "linear", {}, "0" * 64, 1, {}, {}, registry.sha256_hex(blob))


class Payload:
    """A foreign pickle: unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_register_stores_a_signed_artifact_that_loads_back(engine: sa.Engine, fitted, students) -> None:
    version_id = _register(engine, fitted)
    assert version_id.startswith("period2-")
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        assert version.artifact_sha256 == hashlib.sha256(version.artifact).hexdigest()
        assert version.metrics == {"rmse": 1.9, "n_folds": 10}
        assert version.created_at.tzinfo is not None
        loaded = registry.load_artifact(version, settings=get_settings())
    np.testing.assert_allclose(loaded.predict(students[FEATURES]), fitted.predict(students[FEATURES]))
    with db.session_scope(engine) as session:
        [row] = list_audit(session, action="model.register")
        assert row.detail["version_id"] == version_id


def test_list_versions_newest_first_and_by_setup(engine: sa.Engine, fitted) -> None:
    first = _register(engine, fitted, "early")
    second = _register(engine, fitted, "period2")
    third = _register(engine, fitted, "early")
    with db.session_scope(engine) as session:
        assert [v.id for v in registry.list_versions(session)] == [third, second, first]
        assert [v.id for v in registry.list_versions(session, "early")] == [third, first]
        assert registry.list_versions(session, "period1") == []


def test_unknown_version_and_setup_are_refused(engine: sa.Engine, fitted) -> None:
    with db.session_scope(engine) as session:
        with pytest.raises(registry.VersionNotFound, match="nope"):
            registry.get_version(session, "nope")
        with pytest.raises(registry.VersionNotFound):
            registry.promote(session, "nope", by="admin", settings=get_settings())
        with pytest.raises(ValueError, match="unknown setup"):
            registry.register_version(
                session,
                fitted,
                setup="late",
                algorithm="linear",
                params={},
                schema_version=1,
                data_sha256="0" * 64,
                n_rows=1,
                metrics={},
                reference={},
                created_by="t",
                settings=get_settings(),
            )


def test_promote_and_rollback(engine: sa.Engine, fitted) -> None:
    v1 = _register(engine, fitted)
    v2 = _register(engine, fitted)
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {}
        with pytest.raises(registry.NothingToRollBack):
            registry.rollback(session, "period2", by="admin", settings=get_settings())
        registry.promote(session, v1, by="admin", settings=get_settings())
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v1}
        registry.promote(session, v2, by="admin", settings=get_settings())
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v2}
        active = registry.active_versions(session)
        assert active["period2"].id == v2
        assert session.get(ActiveModel, "period2").previous_version_id == v1
        assert registry.rollback(session, "period2", by="admin", settings=get_settings()) == v1
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v1}
        with pytest.raises(registry.NothingToRollBack, match="period2"):
            registry.rollback(session, "period2", by="admin", settings=get_settings())
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v1}
        rollbacks = list_audit(session, action="model.rollback")
        assert [r.detail for r in rollbacks] == [{"setup": "period2", "version_id": v1, "previous_version_id": v2}]


def test_promote_is_audited_and_promoting_the_active_version_changes_nothing(engine: sa.Engine, fitted) -> None:
    v1 = _register(engine, fitted)
    v2 = _register(engine, fitted)
    with db.session_scope(engine) as session:
        registry.promote(session, v1, by="alice", settings=get_settings())
        registry.promote(session, v2, by="bob", settings=get_settings())
        registry.promote(session, v2, by="bob", settings=get_settings())
    with db.session_scope(engine) as session:
        promotions = list_audit(session, action="model.promote")
        assert [(r.actor, r.detail) for r in reversed(promotions)] == [
            ("alice", {"setup": "period2", "version_id": v1, "previous_version_id": None}),
            ("bob", {"setup": "period2", "version_id": v2, "previous_version_id": v1}),
        ]
        active = session.get(ActiveModel, "period2")
        assert (active.version_id, active.previous_version_id, active.activated_by) == (v2, v1, "bob")


def test_setups_have_independent_active_versions(engine: sa.Engine, fitted) -> None:
    early = _register(engine, fitted, "early")
    period2 = _register(engine, fitted, "period2")
    with db.session_scope(engine) as session:
        registry.promote(session, early, by="admin", settings=get_settings())
        registry.promote(session, period2, by="admin", settings=get_settings())
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"early": early, "period2": period2}
        assert {s: v.id for s, v in registry.active_versions(session).items()} == {
            "early": early,
            "period2": period2,
        }


def test_a_tampered_artifact_is_refused_and_never_promoted(engine: sa.Engine, fitted) -> None:
    version_id = _register(engine, fitted)
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        tampered = bytearray(version.artifact)
        tampered[len(tampered) // 2] ^= 0xFF
        session.execute(sa.update(ModelVersion).where(ModelVersion.id == version_id).values(artifact=bytes(tampered)))
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        with pytest.raises(registry.ArtifactIntegrityError, match=f"{version_id}.*modified or signed"):
            registry.load_artifact(version, settings=get_settings())
        with pytest.raises(registry.ArtifactIntegrityError):
            registry.promote(session, version_id, by="admin", settings=get_settings())
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {}


def test_an_artifact_signed_with_another_key_is_refused(
    engine: sa.Engine, fitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_id = _register(engine, fitted)
    monkeypatch.setenv("MATHSIGHT_SECRET_KEY", "another-installation-key-000000")
    get_settings.cache_clear()
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        with pytest.raises(registry.ArtifactIntegrityError, match=f"{version_id}.*another key"):
            registry.load_artifact(version, settings=get_settings())


def test_the_signature_is_made_and_checked_under_the_secret_passed_in(engine: sa.Engine, fitted) -> None:
    ours = Settings(secret_key="ours-0123456789abcdef-ours", home=get_settings().home)
    theirs = Settings(secret_key="theirs-0123456789abcdef-theirs", home=get_settings().home)
    blob = registry.serialize(fitted)
    assert registry.sign(blob, settings=ours) == hmac.new(ours.secret_key.encode(), blob, hashlib.sha256).hexdigest()
    assert registry.sign(blob, settings=ours) != registry.sign(blob, settings=theirs)
    with db.session_scope(engine) as session:
        version_id = registry.register_version(
            session, fitted, setup="early", algorithm="linear", params={}, schema_version=1, data_sha256="0" * 64,
            n_rows=60, metrics={}, reference={}, created_by="tester", settings=ours,
        ).id  # fmt: skip
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        assert version.artifact_hmac == registry.sign(registry.Signed.of(version).payload(), settings=ours)
        registry.load_artifact(version, settings=ours)
        for other in (theirs, get_settings()):  # another secret, or the process's own one
            with pytest.raises(registry.ArtifactIntegrityError, match="another key"):
                registry.load_artifact(version, settings=other)
            with pytest.raises(registry.ArtifactIntegrityError):
                registry.promote(session, version_id, by="admin", settings=other)
        registry.promote(session, version_id, by="admin", settings=ours)
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"early": version_id}


def test_a_foreign_pickle_is_never_unpickled(engine: sa.Engine, tmp_path: Path) -> None:
    # The payload is real: loading it unchecked does create its marker.
    proof = tmp_path / "proof"
    joblib.load(_as_file(registry.serialize(Payload(proof)), tmp_path))
    assert proof.exists()

    marker = tmp_path / "pwned"
    blob = registry.serialize(Payload(marker))
    sha = hashlib.sha256(blob).hexdigest()
    foreign_hmac = hmac.new(b"attacker-key", blob, hashlib.sha256).hexdigest()
    with db.session_scope(engine) as session:
        session.add(
            ModelVersion(
                id="period2-foreign",
                setup="period2",
                algorithm="linear",
                params={},
                data_sha256="0" * 64,
                n_rows=1,
                metrics={},
                reference={},
                created_by="mallory",
                artifact=blob,
                artifact_sha256=sha,
                artifact_hmac=foreign_hmac,
            )
        )
    with db.session_scope(engine) as session:
        version = registry.get_version(session, "period2-foreign")
        with pytest.raises(registry.ArtifactIntegrityError, match="period2-foreign"):
            registry.load_artifact(version, settings=get_settings())
        with pytest.raises(registry.ArtifactIntegrityError):
            registry.promote(session, "period2-foreign", by="mallory", settings=get_settings())
    signed = _signed(blob)
    foreign_signature = hmac.new(b"attacker-key", signed.payload(), hashlib.sha256).hexdigest()
    for signature in (foreign_hmac, foreign_signature, "0" * 64):
        with pytest.raises(registry.ArtifactIntegrityError, match="export.joblib"):
            registry.load_artifact_bytes(blob, signed, signature, "export.joblib", settings=get_settings())
    assert not marker.exists()


def test_load_artifact_bytes_accepts_a_genuine_export(fitted, students) -> None:
    blob = registry.serialize(fitted)
    signed = _signed(blob)
    signature = registry.sign_fields(signed, settings=get_settings())
    loaded = registry.load_artifact_bytes(blob, signed, signature, "file", settings=get_settings())
    np.testing.assert_allclose(loaded.predict(students[FEATURES]), fitted.predict(students[FEATURES]))


def test_concurrent_promotions_serialize_and_stay_consistent(engine: sa.Engine, fitted) -> None:
    v1, v2, v3 = (_register(engine, fitted) for _ in range(3))
    with db.session_scope(engine) as session:
        registry.promote(session, v1, by="admin", settings=get_settings())
    first_done = threading.Event()
    errors: list[BaseException] = []

    def slow_promote() -> None:
        try:
            with db.session_scope(engine) as session:
                registry.promote(session, v2, by="a", settings=get_settings())
                first_done.set()
                time.sleep(0.5)  # keep the transaction (and its lock) open
        except BaseException as exc:
            errors.append(exc)
            first_done.set()

    def racing_promote() -> None:
        try:
            first_done.wait(10)
            with db.session_scope(engine) as session:
                registry.promote(session, v3, by="b", settings=get_settings())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=slow_promote), threading.Thread(target=racing_promote)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with db.session_scope(engine) as session:
        active = session.get(ActiveModel, "period2")
        assert (active.version_id, active.previous_version_id) == (v3, v2)
        details = [r.detail for r in reversed(list_audit(session, action="model.promote"))]
        assert [(d["version_id"], d["previous_version_id"]) for d in details] == [
            (v1, None),
            (v2, v1),
            (v3, v2),
        ]


def test_concurrent_rollbacks_undo_exactly_once(engine: sa.Engine, fitted) -> None:
    v1, v2 = _register(engine, fitted), _register(engine, fitted)
    with db.session_scope(engine) as session:
        registry.promote(session, v1, by="admin", settings=get_settings())
        registry.promote(session, v2, by="admin", settings=get_settings())
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def roll_back() -> None:
        barrier.wait(10)
        try:
            with db.session_scope(engine) as session:
                result = registry.rollback(session, "period2", by="admin", settings=get_settings())
        except registry.NothingToRollBack:
            result = "nothing"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=roll_back) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == sorted([v1, "nothing", "nothing", "nothing"])
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v1}
        assert len(list_audit(session, action="model.rollback")) == 1


def _as_file(blob: bytes, directory: Path) -> Path:
    path = directory / "artifact.joblib"
    path.write_bytes(blob)
    return path


def test_an_artifact_copied_under_another_version_is_refused(engine: sa.Engine, fitted, students) -> None:
    early, period2 = _register(engine, fitted, "early"), _register(engine, LinearRegression(), "period2")
    with db.session_scope(engine) as session:
        donor = registry.get_version(session, early)
        stolen = {"artifact": bytes(donor.artifact), "artifact_sha256": donor.artifact_sha256,
                  "artifact_hmac": donor.artifact_hmac}  # fmt: skip
        session.execute(sa.update(ModelVersion).where(ModelVersion.id == period2).values(**stolen))
    with db.session_scope(engine) as session:
        victim = registry.get_version(session, period2)
        with pytest.raises(registry.ArtifactIntegrityError, match=f"version {period2}: its HMAC signature does not"):
            registry.load_artifact(victim, settings=get_settings())
        with pytest.raises(registry.ArtifactIntegrityError):
            registry.promote(session, period2, by="admin", settings=get_settings())
        registry.load_artifact(registry.get_version(session, early), settings=get_settings())  # the donor still loads


@pytest.mark.parametrize(
    "change",
    [
        {"setup": "period1"},
        {"metrics": {"rmse": 0.1, "n_folds": 10}},
        {"data_sha256": "f" * 64},
        {"schema_version": 2},
        {"reference": {}},
        {"n_rows": 6000},
    ],  # fmt: skip
)
def test_editing_what_a_version_claims_breaks_its_signature(engine: sa.Engine, fitted, change: dict) -> None:
    version_id = _register(engine, fitted)
    with db.session_scope(engine) as session:
        session.execute(sa.update(ModelVersion).where(ModelVersion.id == version_id).values(**change))
    with db.session_scope(engine) as session, pytest.raises(registry.ArtifactIntegrityError, match="HMAC signature"):
        registry.load_artifact(registry.get_version(session, version_id), settings=get_settings())


def test_old_scheme_versions_are_refused_until_re_signed_and_only_if_they_pass_the_old_check(
    engine: sa.Engine, fitted, students
) -> None:
    good, bad = _register(engine, fitted), _register(engine, fitted)
    with db.session_scope(engine) as session:  # as rows stored before migration 0006 look
        for version_id, key in ((good, None), (bad, b"another-key")):
            version = registry.get_version(session, version_id)
            old = registry.sign(version.artifact, settings=get_settings()) if key is None else hmac.new(
                key, version.artifact, hashlib.sha256).hexdigest()  # fmt: skip
            version.artifact_hmac, version.signature_scheme = old, 1
    with db.session_scope(engine) as session:
        with pytest.raises(registry.ArtifactIntegrityError, match="old scheme 1.*python -m model migrate"):
            registry.load_artifact(registry.get_version(session, good), settings=get_settings())
        assert registry.resign_legacy_versions(session, settings=get_settings()) == [good]
    with db.session_scope(engine) as session:
        loaded = registry.load_artifact(registry.get_version(session, good), settings=get_settings())
        np.testing.assert_allclose(loaded.predict(students[FEATURES]), fitted.predict(students[FEATURES]))
        with pytest.raises(registry.ArtifactIntegrityError, match="old scheme"):
            registry.load_artifact(registry.get_version(session, bad), settings=get_settings())
        assert registry.resign_legacy_versions(session, settings=get_settings()) == []
        [row] = list_audit(session, action="model.resign")
        assert row.detail["version_id"] == good


def test_the_timeline_says_which_version_served_when_and_any_earlier_one_can_come_back(
    engine: sa.Engine, fitted
) -> None:
    v1, v2, v3, other = (_register(engine, fitted) for _ in range(4))
    gate = {"passed": False, "rows": [{"metric": "rmse", "verdict": "fail"}]}
    with db.session_scope(engine) as session:
        registry.promote(session, v1, by="alice", settings=get_settings())
        registry.promote(session, v2, by="bob", settings=get_settings())
        registry.promote(session, v3, by="carol", settings=get_settings(), gate=gate, reason="fairer on our school")
    with db.session_scope(engine) as session:
        with pytest.raises(registry.RegistryError, match="never served"):
            registry.rollback_to(session, "period2", other, by="dan", settings=get_settings())
        with pytest.raises(registry.RegistryError, match="already the active"):
            registry.rollback_to(session, "period2", v3, by="dan", settings=get_settings())
        assert registry.rollback_to(session, "period2", v1, by="dan", settings=get_settings()) == v1  # two steps back
    with db.session_scope(engine) as session:
        assert registry.active_version_ids(session) == {"period2": v1}
        assert session.get(ActiveModel, "period2").previous_version_id == v3  # a plain rollback undoes this one
        periods = registry.timeline(session, "period2")
        expected = [(v1, "alice", "promote"), (v2, "bob", "promote"), (v3, "carol", "promote"), (v1, "dan", "rollback")]
        assert [(p.version_id, p.by, p.action) for p in periods] == expected
        assert all(p.ended_at == n.started_at for p, n in zip(periods, periods[1:], strict=False))
        assert periods[-1].ended_at is None
        assert periods[2].gate == gate and periods[2].reason == "fairer on our school"
        assert registry.promotion_of(session, v3).reason == "fairer on our school"
        assert registry.promotion_of(session, other) is None
        promoted = list_audit(session, action="model.promote")[0].detail
        assert promoted["reason"] == "fairer on our school" and promoted["gate_passed"] is False
        back = list_audit(session, action="model.rollback")[0].detail
        assert back == {"setup": "period2", "version_id": v1, "previous_version_id": v3}
        assert registry.rollback(session, "period2", by="erin", settings=get_settings()) == v3
    with db.session_scope(engine) as session:
        assert [p.version_id for p in registry.timeline(session, "period2")][-1] == v3


def test_the_registry_refuses_in_the_admins_language(engine: sa.Engine, fitted) -> None:
    """An admin reading Portuguese gets the registry's refusals in Portuguese; without a language, English."""
    from model import i18n
    from tests.translations import english_words

    version_id = _register(engine, fitted)
    with db.session_scope(engine) as session:
        version = registry.get_version(session, version_id)
        tampered = bytearray(version.artifact)
        tampered[len(tampered) // 2] ^= 0xFF
        session.execute(sa.update(ModelVersion).where(ModelVersion.id == version_id).values(artifact=bytes(tampered)))

    def refusals() -> list[str]:
        messages = []
        with db.session_scope(engine) as session:
            for attempt in (
                lambda: registry.get_version(session, "nope"),
                lambda: registry.rollback(session, "early", by="admin", settings=get_settings()),
                lambda: registry.load_artifact(registry.get_version(session, version_id), settings=get_settings()),
            ):
                with pytest.raises(registry.RegistryError) as caught:
                    attempt()
                messages.append(str(caught.value))
        return messages

    assert refusals()[:2] == ["no model version 'nope'", "setup 'early' has no previous model version to roll back to"]
    with i18n.use_language(i18n.PORTUGUESE):
        portuguese = refusals()
    assert portuguese[:2] == ["não existe a versão do modelo 'nope'",
                              "a fase 'early' não tem uma versão anterior do modelo para onde reverter"]  # fmt: skip
    assert portuguese[2].startswith(f"o artefacto da versão do modelo {version_id} não foi carregado: o seu SHA-256")
    assert not english_words(portuguese[2].replace("MATHSIGHT_SECRET_KEY", "")), portuguese[2]

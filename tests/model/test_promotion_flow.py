"""The whole admin flow: train -> compare -> promote -> predictions use it -> roll back; across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from model.ml.compare import compare_versions
from model.ml.training import TrainedVersion, train_setup
from model.serving.service import ModelStore, predict_one
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.registry import active_version_ids, promote, rollback
from tests.conftest import register_trained

ROOT = Path(__file__).resolve().parents[2]
REFRESH_SECONDS = 1.0
# What a second process may take beyond its refresh interval to see a promotion (one query + artifact load).
MARGIN_SECONDS = 3.0


@pytest.fixture(scope="module")
def candidate(raw_df: pd.DataFrame) -> TrainedVersion:
    """A new period2 version scored by one protocol run, different from the active one."""
    return train_setup(raw_df, "period2", runs=1, params={"n_estimators": 100})


def student(raw_df: pd.DataFrame) -> dict:
    return raw_df.drop(columns=["G3"]).iloc[7].to_dict()


def test_train_compare_promote_predict_rollback(
    models_db_url: str, candidate: TrainedVersion, raw_df: pd.DataFrame
) -> None:
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings(), refresh_seconds=0)
    with session_scope(engine) as session:
        old = active_version_ids(session)["period2"]
    assert predict_one(store, engine, student(raw_df), channel="ui").results["model_version"].item() == old

    new = register_trained(engine, candidate, created_by="admin-ana")
    with session_scope(engine) as session:
        comparison = compare_versions(session, old, new, raw_df, settings=get_settings())
    assert comparison.b.id == new and comparison.pass_agreement > 80

    with session_scope(engine) as session:
        promote(session, new, by="admin-ana", settings=get_settings())
    prediction = predict_one(store, engine, student(raw_df), channel="ui")
    assert prediction.results["model_version"].item() == new
    assert prediction.results["setup"].item() == "period2"

    with session_scope(engine) as session:
        assert rollback(session, "period2", by="admin-ana", settings=get_settings()) == old
    assert predict_one(store, engine, student(raw_df), channel="ui").results["model_version"].item() == old

    with session_scope(engine) as session:
        trail = [(row.action, row.actor, row.detail.get("version_id")) for row in list_audit(session)]
    assert ("model.promote", "admin-ana", new) in trail
    assert ("model.rollback", "admin-ana", old) in trail


def test_a_store_follows_a_promotion_within_its_refresh_interval(
    models_db_url: str, candidate: TrainedVersion, raw_df: pd.DataFrame
) -> None:
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings(), refresh_seconds=REFRESH_SECONDS)
    store.refresh(force=True)
    new = register_trained(engine, candidate, created_by="admin-ana")
    with session_scope(engine) as session:
        promote(session, new, by="admin-ana", settings=get_settings())
    promoted_at = time.monotonic()
    deadline = promoted_at + REFRESH_SECONDS + MARGIN_SECONDS
    while store.get("period2").version_id != new:
        assert time.monotonic() < deadline, "the store did not pick up the promotion in time"
        time.sleep(0.05)
    assert time.monotonic() - promoted_at <= REFRESH_SECONDS + MARGIN_SECONDS


WATCHER = textwrap.dedent(
    """
    import sys, time
    from model.store.db import get_engine
    from model.serving.service import ModelStore
    from model.settings import get_settings

    url, expected, refresh, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    store = ModelStore(get_engine(url), settings=get_settings(), refresh_seconds=refresh)
    print("ready", store.get("period2").version_id, flush=True)
    deadline = time.time() + limit
    while time.time() < deadline:
        if store.get("period2").version_id == expected:
            print("seen", repr(time.time()), flush=True)
            sys.exit(0)
        time.sleep(0.05)
    print("timeout", flush=True)
    sys.exit(1)
    """
)


def test_another_process_sees_a_promotion_within_the_stated_delay(
    models_db_url: str, candidate: TrainedVersion
) -> None:
    engine = get_engine(models_db_url)
    with session_scope(engine) as session:
        old = active_version_ids(session)["period2"]
    new = register_trained(engine, candidate, created_by="admin-ana")
    limit = 120.0
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, models_db_url, new, str(REFRESH_SECONDS), str(limit)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = watcher.stdout.readline().split()
        assert ready == ["ready", old], ready if ready else watcher.stderr.read()
        with session_scope(engine) as session:
            promote(session, new, by="admin-ana", settings=get_settings())
        promoted_at = time.time()
        out, err = watcher.communicate(timeout=limit + 30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    word, seen_at = out.split()
    assert word == "seen"
    delay = float(seen_at) - promoted_at
    assert delay <= REFRESH_SECONDS + MARGIN_SECONDS, f"seen after {delay:.2f} s"

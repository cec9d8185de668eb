"""Two dashboard replicas (two Streamlit processes) on one PostgreSQL, driven by real browsers: class
uploads made at the same time on both land in the prediction log exactly once, and a promotion made
anywhere reaches both. (The API's two replicas are in tests/test_replicas.py.)"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from model.settings import get_settings
from model.store import db, registry
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.browser.conftest import TIMEOUT_MS, VIEWPORT, LiveApp, create_users, start_dashboard
from tests.browser.ui import TEACHER, heading, log_in, metric_value, open_page, settle
from tests.conftest import _drop_postgres_schema, _postgres_schema_url, install_models, register_trained
from tests.servers import stop_process

pytestmark = pytest.mark.browser

UPLOADS_PER_REPLICA = 2
CLASS_SIZE = 40
PROMOTION_DEADLINE = 30.0  # seconds; each process re-reads the registry every 3 s


@pytest.fixture(scope="module")
def replicas(chromium: Path, trained_models: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveApp]]:
    url = _postgres_schema_url()
    apps: list[LiveApp] = []
    try:
        install_models(url, trained_models)
        create_users(url, [TEACHER])
        apps = [start_dashboard(url, tmp_path_factory.mktemp(f"replica-{name}")) for name in "ab"]
        yield apps
    finally:
        for app in apps:
            stop_process(app.process, timeout=15)
        db.dispose_engines()
        _drop_postgres_schema(url)


def _page(browser: Browser, app: LiveApp) -> Page:
    context = browser.new_context(base_url=app.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _class_files(student_csv_path: Path, where: Path, n: int) -> list[Path]:
    """``n`` classes of real students (no final grade), each with its own ids and one out-of-range age."""
    raw = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).drop(columns="G3")
    paths = []
    for i in range(n):
        frame = raw.iloc[i * CLASS_SIZE : (i + 1) * CLASS_SIZE].reset_index(drop=True)
        frame.insert(0, "student_id", [f"R{i}-{j:02d}" for j in range(CLASS_SIZE)])
        frame.loc[i, "age"] = "99"
        paths.append(where / f"class-{i}.csv")
        frame.to_csv(paths[-1], sep=";", index=False)
    return paths


def _ui_rows(url: str) -> list[sa.Row]:
    query = sa.select(PredictionLog.request_id, PredictionLog.idempotency_key, PredictionLog.status,
                      PredictionLog.student_key).where(PredictionLog.channel == "ui")  # fmt: skip
    with get_engine(url).connect() as connection:
        return list(connection.execute(query))


def test_uploads_at_once_on_two_replicas_are_logged_exactly_once(
    replicas: list[LiveApp], browser: Browser, student_csv_path: Path, tmp_path: Path
) -> None:
    pages = [_page(browser, app) for app in replicas for _ in range(UPLOADS_PER_REPLICA)]
    files = _class_files(student_csv_path, tmp_path, len(pages))
    for page in pages:
        log_in(page, TEACHER)
        open_page(page, "Upload a class")
    for page, path in zip(pages, files, strict=True):  # all uploads start before the first one finishes
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
    for page in pages:
        expect(heading(page, "Validation report")).to_be_visible()
        assert (metric_value(page, "Rows in the file"), metric_value(page, "Predicted"),
                metric_value(page, "Rejected")) == (str(CLASS_SIZE), str(CLASS_SIZE - 1), "1")  # fmt: skip

    rows = _ui_rows(replicas[0].database_url)
    assert len(rows) == len(pages) * CLASS_SIZE  # every row sent, nothing else
    assert len({row.idempotency_key for row in rows}) == len(rows)  # none twice
    per_request = Counter((row.request_id, row.status) for row in rows)
    assert sorted(per_request.values()) == sorted([CLASS_SIZE - 1, 1] * len(pages))
    assert len({row.request_id for row in rows}) == len(pages)
    assert len({row.student_key for row in rows if row.status == "ok"}) == len(pages) * (CLASS_SIZE - 1)
    for page in pages:
        page.context.close()


def _served_version(page: Page) -> str:
    """Predict the default (early) student and read the model version the result names."""
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(heading(page, "Result")).to_be_visible()
    settle(page)
    caption = page.get_by_text("Model version").first.inner_text()
    return caption.split("`")[1] if "`" in caption else caption.split()[2]


def test_a_promotion_reaches_both_dashboards(replicas: list[LiveApp], browser: Browser, trained_models: dict) -> None:
    engine = get_engine(replicas[0].database_url)
    pages = [_page(browser, app) for app in replicas]
    for page in pages:
        log_in(page, TEACHER)
        open_page(page, "Predict one student")
    old = [_served_version(page) for page in pages]
    new = register_trained(engine, trained_models["early"], created_by="pytest")
    assert old[0] == old[1] != new
    with session_scope(engine) as session:
        registry.promote(session, new, by="pytest", settings=get_settings())
    promoted = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < len(pages) and time.monotonic() - promoted < PROMOTION_DEADLINE:
        for i, page in enumerate(pages):
            if i not in seen and _served_version(page) == new:
                seen[i] = time.monotonic() - promoted
    assert len(seen) == len(pages), f"after {PROMOTION_DEADLINE} s only replicas {sorted(seen)} serve {new}"
    for page in pages:
        page.context.close()

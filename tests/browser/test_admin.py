"""An admin in a real browser: monitoring after demo traffic, and train → compare → promote a model version."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveApp
from tests.browser.ui import ADMIN, TEACHER, heading, log_in, metric_value, open_page, screenshot, settle

pytestmark = pytest.mark.browser

TRAINING_TIMEOUT_MS = 180_000  # one protocol run (10-fold CV) and a final fit, in a separate process
SETUP = "early"  # the predict form's default (no grades ticked) uses this setup


def _active_version(app: LiveApp, setup: str) -> str:
    from model.store import registry
    from model.store.db import get_engine, session_scope

    engine = get_engine(app.database_url)
    with session_scope(engine) as session:
        active = registry.active_version_ids(session)[setup]
    engine.dispose()
    return active


def test_admin_sees_monitoring_charts_and_drift_after_demo_traffic(page: Page, live_app: LiveApp) -> None:
    live_app.run_cli("demo-traffic", "--days", "30")
    log_in(page, ADMIN)
    open_page(page, "Monitoring")

    expect(page.get_by_text("Demo data:")).to_be_visible()
    assert int(metric_value(page, "Rows logged").replace(",", "")) > 1000
    traffic = page.get_by_role("tabpanel").filter(visible=True)
    expect(traffic.locator(".js-plotly-plot").nth(2)).to_be_visible()  # volume per day, latency, error rate
    screenshot(page, "monitoring", top=heading(page, "Monitoring"))

    page.get_by_role("tab", name="Drift").click()
    settle(page)
    drift = page.get_by_role("tabpanel").filter(visible=True)
    expect(drift.get_by_text("against the training reference of")).to_be_visible()
    expect(drift.get_by_test_id("stDataFrame")).to_be_visible()
    expect(drift.locator(".js-plotly-plot").first).to_be_visible()
    expect(drift.get_by_text("attributes drifted")).to_be_visible()  # the dataset line of the one verdict
    screenshot(page, "monitoring-drift", top=drift)

    page.get_by_role("tab", name="Expected performance").click()
    settle(page)
    expected = page.get_by_role("tabpanel").filter(visible=True)
    expect(expected.get_by_text("rely on calibration")).to_be_visible()
    expect(expected.get_by_text("expected accuracy").first).to_be_visible()  # the line in words
    chart = expected.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    expect(chart).to_contain_text("Expected vs realized pass/fail accuracy")
    screenshot(page, "monitoring-expected", top=expected)

    page.get_by_role("tab", name="Fairness").click()
    settle(page)
    fair = page.get_by_role("tabpanel").filter(visible=True)
    expect(fair.get_by_test_id("stDataFrame")).to_be_visible()
    expect(fair.locator(".js-plotly-plot").first).to_contain_text("Fairness over time by sex")
    screenshot(page, "monitoring-fairness", top=fair)


def test_admin_trains_compares_and_promotes_a_version(new_page: Callable[[], Page], live_app: LiveApp) -> None:
    old = _active_version(live_app, SETUP)
    page = new_page()
    log_in(page, ADMIN)
    open_page(page, "Model versions")
    expect(page.get_by_role("radio", name="early (30 attributes)")).to_be_checked()

    page.get_by_role("spinbutton", name="Protocol runs (10-fold cross-validation each)").fill("1")
    page.get_by_role("button", name=f"Train a new {SETUP} version").click()
    finished = page.get_by_text("Training finished in")
    expect(finished).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    new = finished.locator("strong").inner_text()
    assert new.startswith(f"{SETUP}-") and new != old

    expect(page.get_by_role("combobox", name="Version A")).to_have_value(old)  # the active one by default
    expect(page.get_by_role("combobox", name="Version B")).to_have_value(new)
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_text("Same pass/fail call")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"A: {old}")).to_be_visible()  # the importance charts name both versions
    expect(page.get_by_text(f"B: {new}")).to_be_visible()

    expect(page.get_by_role("combobox", name="Version to promote")).to_have_value(new)
    promote = page.get_by_role("button", name=f"Promote {new}")
    expect(promote).to_be_disabled()  # not before the confirmation
    page.get_by_text(f"I confirm that {new} becomes the active {SETUP} model").click()
    expect(promote).to_be_enabled()
    promote.click()
    expect(page.get_by_text(f"{new} is now the active {SETUP} model.")).to_be_visible()
    expect(page.get_by_role("button", name=f"Roll back to {old}")).to_be_visible()
    assert _active_version(live_app, SETUP) == new

    teacher = new_page()
    log_in(teacher, TEACHER)
    open_page(teacher, "Predict one student")
    teacher.get_by_role("button", name="Predict", exact=True).click()
    expect(teacher.get_by_text(f"Model version {new}")).to_be_visible()

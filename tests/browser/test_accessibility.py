"""axe-core (``axe-playwright-python``, its bundled ``axe.min.js``) in the real Chromium on every page, for
a teacher and an admin, and on the sign-in page: no serious or critical violation.

With ``MATHSIGHT_A11Y_REPORT=1`` the violations per page (counted by impact, with the rule ids) are
written to ``docs/accessibility.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from dashboard.page_table import PAGES
from tests.browser.ui import ADMIN, ROOT, TEACHER, Account, heading, log_in, settle

BLOCKING = ("serious", "critical")
REPORT = ROOT / "docs" / "accessibility.json"
# What Streamlit itself draws and a page cannot change: rule id -> (where, why). Only violations whose
# every element is inside ``where`` are excused.
STREAMLIT_DRAWS: dict[str, tuple[str, str]] = {
    "list": ("[data-testid='stSidebarNavItems']", "the sidebar navigation with sections puts each section's "
             "<div> (header and links) directly in its <ul>"),
    "listitem": ("[data-testid='stSidebarNavItems']", "so its <li> links are not children of a list"),
}  # fmt: skip
_results: dict[str, dict] = {}


def _audit(page: Page, name: str) -> list[dict]:
    settle(page)
    results = Axe().run(page)
    violations = results.response["violations"]
    _results[name] = {
        "by_impact": dict(Counter(v["impact"] for v in violations)),
        "rules": sorted({f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements)" for v in violations}),
    }
    return [v for v in violations if v["impact"] in BLOCKING and not _streamlits(page, v)]


def _streamlits(page: Page, violation: dict) -> bool:
    """Whether every element of ``violation`` is in a part Streamlit draws where this rule is excused."""
    where = STREAMLIT_DRAWS.get(violation["id"], ("", ""))[0]
    if not where:
        return False
    inside = "(element, where) => element.closest(where) !== null"
    return all(page.locator(node["target"][0]).first.evaluate(inside, where) for node in violation["nodes"])


def _describe(violations: list[dict]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}: "
                     f"{v['nodes'][0].get('failureSummary', '')}" for v in violations)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _report() -> object:
    yield
    if os.environ.get("MATHSIGHT_A11Y_REPORT") == "1" and _results:
        old = json.loads(REPORT.read_text("utf-8")) if REPORT.exists() else {}
        REPORT.write_text(json.dumps({**old, **_results}, indent=1, sort_keys=True) + "\n", "utf-8")


def test_the_sign_in_page(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    blocking = _audit(page, "sign-in")
    assert not blocking, _describe(blocking)


@pytest.mark.parametrize("account", [TEACHER, ADMIN], ids=["teacher", "admin"])
def test_every_page_of_the_role(new_page: Callable[[], Page], account: Account) -> None:
    page = new_page()
    log_in(page, account)
    role = "admin" if account is ADMIN else "teacher"
    failures = []
    for spec in PAGES:
        if role not in spec.roles:
            continue
        page.goto(f"/{spec.path.stem}")
        expect(heading(page, spec.title)).to_be_visible()
        blocking = _audit(page, f"{role}: {spec.title}")
        if blocking:
            failures.append(f"{spec.title}:\n{_describe(blocking)}")
    assert not failures, "\n".join(failures)

"""axe-core in the real browser (``axe-playwright-python``, its bundled ``axe.min.js``): run it on a page,
record the violations by impact, tell serious and critical ones apart from what Streamlit draws.

With ``MATHSIGHT_A11Y_REPORT=1`` the recorded results are written to ``docs/accessibility.json``
at the end of a test module that uses :func:`report`.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.ui import ROOT, settle

BLOCKING = ("serious", "critical")
REPORT = ROOT / "docs" / "accessibility.json"
# What Streamlit itself draws and a page cannot change: rule id -> (where, why). Only violations whose
# every element is inside ``where`` are excused.
STREAMLIT_DRAWS: dict[str, tuple[str, str]] = {
    "list": ("[data-testid='stSidebarNavItems']", "the sidebar navigation with sections puts each section's "
             "<div> (header and links) directly in its <ul>"),
    "listitem": ("[data-testid='stSidebarNavItems']", "so its <li> links are not children of a list"),
}  # fmt: skip
RESULTS: dict[str, dict] = {}


def audit(page: Page, name: str) -> list[dict]:
    """Run axe on the page as it stands; record its violations by impact; return the blocking ones."""
    violations = _lasting(page)
    excused = [v for v in violations if _streamlits(page, v)]
    own = [v for v in violations if v not in excused]
    RESULTS[name] = {
        "by_impact": dict(Counter(v["impact"] for v in own)),
        "rules": sorted(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements)" for v in own),
        "drawn_by_streamlit": sorted(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements)" for v in excused),
    }
    return [v for v in own if v["impact"] in BLOCKING]


def _lasting(page: Page) -> list[dict]:
    """axe's violations on the settled page; when there are any, the page is settled again and only what a
    second run finds again on the same elements counts. A run the app starts by itself while axe reads the
    page (a component reporting back after the first run) fades every element for a moment: a caption
    read then is 4.37:1 and, a second later, 7.5:1. A real violation is found by both runs."""
    settle(page)
    quiet(page)
    first = Axe().run(page).response["violations"]
    if not first:
        return first
    settle(page)
    quiet(page)
    again = {(v["id"], str(node["target"])) for v in Axe().run(page).response["violations"] for node in v["nodes"]}
    lasting = []
    for violation in first:
        nodes = [node for node in violation["nodes"] if (violation["id"], str(node["target"])) in again]
        if nodes:
            lasting.append({**violation, "nodes": nodes})
    return lasting


def quiet(page: Page) -> None:
    """Wait until no element is stale and every finite animation or transition has finished: an element still
    fading in after a run reads as too faint a colour (a caption at 78% opacity: 4.37:1)."""
    expect(page.locator("[data-stale='true']")).to_have_count(0)
    page.evaluate("""() => Promise.all(document.getAnimations()
        .filter(a => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
        .map(a => a.finished.catch(() => null)))""")


def _streamlits(page: Page, violation: dict) -> bool:
    """Whether every element of ``violation`` is in a part Streamlit draws where this rule is excused."""
    where = STREAMLIT_DRAWS.get(violation["id"], ("", ""))[0]
    if not where:
        return False
    inside = "(element, where) => element.closest(where) !== null"
    return all(page.locator(node["target"][0]).first.evaluate(inside, where) for node in violation["nodes"])


def describe(violations: list[dict]) -> str:
    """The violations in words, for a failing assertion: rule, impact, where, why."""
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}: "
                     f"{v['nodes'][0].get('failureSummary', '')}" for v in violations)  # fmt: skip


def report() -> None:
    """Write what was recorded so far to docs/accessibility.json (when asked to)."""
    if os.environ.get("MATHSIGHT_A11Y_REPORT") == "1" and RESULTS:
        old = json.loads(REPORT.read_text("utf-8")) if REPORT.exists() else {}
        REPORT.write_text(json.dumps({**old, **RESULTS}, indent=1, sort_keys=True) + "\n", "utf-8")

"""Downloads need the session that made them (issue 16, item 9), and tables export no formulas (item 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import downloads, session_cookie
from model.accounts import users
from model.serving.downloads import escape_formulas
from model.settings import get_settings
from model.store.db import get_engine, migrate, session_scope
from tests.dashboard.conftest import ROOT

CSV = b"row,student_id\n2,'=HYPERLINK(x)\n"


@pytest.fixture
def client(app_db_url: str) -> TestClient:
    """The dashboard's own routes over HTTP, on the app database, with two teachers."""
    engine = get_engine(app_db_url)
    migrate(engine)
    with session_scope(engine) as session:
        for name in ("tina", "theo"):
            users.create_user(session, name, f"{name}-download-pass-1", role="teacher", name=name, actor="pytest")
    return TestClient(Starlette(routes=[*session_cookie.routes(), *downloads.routes()]), base_url="http://testserver")


def _session(username: str) -> tuple[str, str]:
    """A sign-in cookie of a fresh session of ``username`` and its token id."""
    token = session_cookie.session_token(username)
    return token, session_cookie.read_token(token, get_settings().local_secret("cookie_key"))["jti"]


def _get(client: TestClient, url: str, cookie: str | None):
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set(get_settings().cookie_name, cookie)
    return client.get(url)


def test_a_download_answers_only_the_session_that_made_it(client: TestClient) -> None:
    cookie, jti = _session("tina")
    url = "/downloads/" + downloads.FILES.add(CSV, "mathsight-predictions.csv", "text/csv", username="tina", jti=jti)
    answer = _get(client, url, cookie)
    assert answer.status_code == 200 and answer.content == CSV
    assert answer.headers["content-disposition"].startswith('attachment; filename="mathsight-predictions.csv"')
    assert answer.headers["cache-control"] == "no-store" and answer.headers["content-type"].startswith("text/csv")
    assert _get(client, url, None).status_code == 401  # no cookie
    assert _get(client, url, "forged.token.value").status_code == 401
    assert _get(client, url, _session("theo")[0]).status_code == 403  # another user's session
    assert _get(client, url, _session("tina")[0]).status_code == 403  # the same user, another session
    assert _get(client, "/downloads/not-an-id", cookie).status_code == 403
    client.cookies.set(get_settings().cookie_name, cookie)
    assert client.get("/auth/signout").status_code == 204  # sign out: the copied cookie no longer fetches it
    assert _get(client, url, cookie).status_code == 401


def test_identical_outputs_get_different_urls() -> None:
    first = downloads.FILES.add(CSV, "a.csv", "text/csv", username="tina", jti="j1")
    second = downloads.FILES.add(CSV, "a.csv", "text/csv", username="tina", jti="j1")
    other = downloads.FILES.add(CSV, "a.csv", "text/csv", username="theo", jti="j2")
    assert len({first, second, other}) == 3 and len(first) >= 32


def test_a_download_expires_and_a_session_keeps_a_bounded_number() -> None:
    now = [1000.0]
    store = downloads.DownloadStore(clock=lambda: now[0])
    kept = store.add(CSV, "a.csv", "text/csv", username="tina", jti="j", seconds=60)
    assert store.get(kept, "tina", "j") is not None
    now[0] += 61
    assert store.get(kept, "tina", "j") is None
    ids = [store.add(CSV, "a.csv", "text/csv", username="tina", jti="j") for _ in range(downloads.MAX_PER_SESSION + 5)]
    assert [store.has(i) for i in ids].count(True) == downloads.MAX_PER_SESSION and store.has(ids[-1])


def test_a_download_started_by_another_site_is_refused(client: TestClient) -> None:
    cookie, jti = _session("tina")
    url = "/downloads/" + downloads.FILES.add(CSV, "a.csv", "text/csv", username="tina", jti=jti)
    client.cookies.set(get_settings().cookie_name, cookie)
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


def test_tables_show_text_cells_escaped_like_the_csv_downloads() -> None:
    frame = pd.DataFrame({"student_id": ["=cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)",
                                         "\tx", "\rx", "S001"], "grade": [1, 2, 3, 4, 5, 6, 7, 8]},
                         index=[f"r{i}" for i in range(8)])  # fmt: skip
    frame["band"] = pd.Categorical(["=I", "II", "II", "II", "II", "II", "II", "II"])
    safe = escape_formulas(frame)  # the one escaping of tables and CSV downloads
    assert list(safe["student_id"]) == ["'=cmd|' /C calc'!A0", "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)",
                                        "'\tx", "'\rx", "S001"]  # fmt: skip
    assert list(safe["grade"]) == list(range(1, 9)) and safe["grade"].dtype == frame["grade"].dtype
    assert list(safe["band"])[:2] == ["'=I", "II"] and list(frame["student_id"])[0].startswith("=")  # a copy


def _calls(path: Path, attribute: str) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    return [node.lineno for node in calls if node.func.attr == attribute]


@pytest.mark.parametrize(("attribute", "allowed"), [("dataframe", "dashboard/tables.py"), ("data_editor", ""),
                                                    ("download_button", "")])  # fmt: skip
def test_no_page_bypasses_the_safe_tables_and_downloads(attribute: str, allowed: str) -> None:
    """Every table with a toolbar goes through dashboard.tables.show_table (escaped cells, so the
    toolbar's CSV is safe; ``st.table`` has no toolbar) and every download through
    dashboard.downloads.download_link (bound to the session): ``st.dataframe``, ``col.dataframe``,
    ``st.data_editor`` and ``*.download_button`` calls anywhere else fail here."""
    files = [*sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "dashboard").glob("*.py"))]
    found = {str(f.relative_to(ROOT)): _calls(f, attribute) for f in files if str(f.relative_to(ROOT)) != allowed}
    assert {name: lines for name, lines in found.items() if lines} == {}

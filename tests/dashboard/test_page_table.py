"""The page table is the one place a page's roles and title are written; every page has the same shape."""

from __future__ import annotations

import ast

import pytest

from dashboard import page_table
from dashboard.page_table import PAGES, PageSpec, page_spec
from tests.dashboard.conftest import Account, page_test

ROLES = {"admin", "teacher"}


def _tree(spec: PageSpec) -> ast.Module:
    return ast.parse(spec.path.read_text("utf-8"), str(spec.path))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name`` or of ``something.name``."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "id", None) == name or getattr(node.func, "attr", None) == name)]  # fmt: skip


@pytest.mark.parametrize("spec", PAGES, ids=[spec.file for spec in PAGES])
def test_every_page_has_the_same_shape(spec: PageSpec) -> None:
    tree = _tree(spec)
    assert ast.get_docstring(tree), "a page starts with its docstring"
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    first = main.body[0].value if isinstance(main.body[0], ast.Assign | ast.Expr) else None
    assert isinstance(first, ast.Call) and getattr(first.func, "id", None) == "open_page", "main() opens with the guard"
    assert [ast.unparse(arg) for arg in first.args] == ["__file__"]
    assert ast.unparse(tree.body[-1]) == "main()", "the page ends by calling main()"
    assert len(_calls(tree, "open_page")) == 1 and not _calls(tree, "title"), "the title comes from the page table"
    roles = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in ROLES]
    assert roles == [], "roles are written in the page table only"


def test_the_guard_reads_the_roles_from_the_table(teacher_account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = page_test("alerts.py", teacher_account.user).run()
    assert refused.error[0].value.startswith("Access refused") and not refused.title
    opened = [PageSpec(**{**vars(s), "roles": ("teacher", "admin")}) if s.file == "alerts.py" else s for s in PAGES]
    monkeypatch.setattr(page_table, "PAGES", tuple(opened))
    allowed = page_test("alerts.py", teacher_account.user).run()
    assert not allowed.exception and [t.value for t in allowed.title] == ["Alerts"]


def test_a_script_missing_from_the_table_is_a_programming_error() -> None:
    assert page_spec("/anywhere/pages/models.py").title == "Model versions"
    with pytest.raises(LookupError, match="not_a_page.py is not in the page table"):
        page_spec("pages/not_a_page.py")

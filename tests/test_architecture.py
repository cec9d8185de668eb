"""The project's own architecture check: no import circle, nothing loaded by a name in a string, a core
with few modules at its top, and a core that neither prints, parses arguments, nor imports a front.

Imports are read with ``ast`` from every module of the project's packages, including imports inside
functions: a circle that only a lazy import dodges is still a circle. Imports under ``if TYPE_CHECKING:``
never run, so they make no circle (a type-only back reference, e.g. ``Thresholds.from_settings(settings:
Settings)`` while ``model.settings`` builds on the threshold table, is allowed); they do count for what
the core may import.

Each rule is also run on a small synthetic tree that breaks it, so the rule is known to be able to fail.
"""

from __future__ import annotations

import ast
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.settings import PROJECT_ROOT

PACKAGES = ("model", "api", "dashboard", "pages", "bench")
CORE = "model"
CORE_FRONTS = ("model.cli", "model.__main__")  # the CLI front lives inside the core package
FRONT_LIBRARIES = frozenset({"streamlit", "fastapi", "starlette", "uvicorn"})
FRONT_PACKAGES = ("api", "dashboard", "pages", "bench", *CORE_FRONTS)
MAX_CORE_TOP_MODULES = 8
# The core's wings, lowest first: a wing imports only wings before it (and the core's top modules).
WINGS = ("schema", "store", "accounts", "ml", "serving", "monitoring", "cli")


@dataclass(frozen=True)
class Module:
    """One parsed Python file of the project."""

    name: str
    path: Path
    tree: ast.Module
    is_package: bool


@dataclass(frozen=True)
class Import:
    """One import statement: the modules it names (dotted, absolute) and where it is."""

    line: int
    targets: tuple[str, ...]


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Module]:
    """Every ``.py`` file under ``root/<package>`` for each package, by dotted module name."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            found[name] = Module(name, path, ast.parse(path.read_text("utf-8"), str(path)), is_package)
    return found


def _base(module: Module, level: int, name: str | None) -> str:
    """The absolute module a relative ``from`` import of ``module`` starts from."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name}" if name else package


def _is_type_checking(node: ast.AST) -> bool:
    """Whether ``node`` is ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    return isinstance(node, ast.If) and (
        getattr(node.test, "id", None) == "TYPE_CHECKING" or getattr(node.test, "attr", None) == "TYPE_CHECKING"
    )


def _nodes(node: ast.AST, typing: bool) -> Iterator[ast.AST]:
    """Every node under ``node``; without the bodies of ``if TYPE_CHECKING:`` unless ``typing``."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not typing and _is_type_checking(child):
            for rest in child.orelse:
                yield rest
                yield from _nodes(rest, typing)
        else:
            yield from _nodes(child, typing)


def imports(module: Module, typing: bool = True) -> Iterator[Import]:
    """Every import of ``module``, anywhere in it (under ``TYPE_CHECKING`` only if ``typing``), with the
    modules it names (``from a import b`` names both ``a`` and ``a.b``: ``b`` may be a module)."""
    for node in _nodes(module.tree, typing):
        if isinstance(node, ast.Import):
            yield Import(node.lineno, tuple(alias.name for alias in node.names))
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node.level, node.module) if node.level else str(node.module)
            yield Import(node.lineno, (base, *(f"{base}.{alias.name}" for alias in node.names)))


def _project_target(name: str, known: dict[str, Module]) -> str | None:
    """The project module an imported name loads: itself, or its longest known parent package."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the project modules it imports when it runs (the package a module belongs to is not an edge)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, module in modules.items():
        for statement in imports(module, typing=False):
            for target in statement.targets:
                found = _project_target(target, modules)
                if found is not None and found != name and not name.startswith(f"{found}."):
                    graph[name].add(found)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _where(module: Module, line: int, root: Path) -> str:
    return f"{module.path.relative_to(root)}:{line}"


def loading_by_string(modules: dict[str, Module], root: Path) -> list[str]:
    """Every use of ``importlib`` or ``__import__`` (modules loaded by a name in a string)."""
    found = []
    for module in modules.values():
        for statement in imports(module):
            if any(target.split(".")[0] == "importlib" for target in statement.targets):
                found.append(f"{_where(module, statement.line, root)}: imports importlib")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Name) and node.id == "__import__":
                found.append(f"{_where(module, node.lineno, root)}: calls __import__")
    return found


def core_modules(modules: dict[str, Module]) -> list[Module]:
    """The modules of the core: ``model/`` without its CLI front."""
    return [m for n, m in modules.items() if n.split(".")[0] == CORE and not _within(n, CORE_FRONTS)]


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def _front_import(statement: Import) -> str | None:
    """What is wrong with a core module's import statement (None when nothing is)."""
    for target in statement.targets:
        top = target.split(".")[0]
        if top == "argparse":
            return "imports argparse"
        if top in FRONT_LIBRARIES:
            return f"imports {top}"
        if _within(target, FRONT_PACKAGES):
            return f"imports the front {target}"
    return None


def front_code_in_core(modules: dict[str, Module], root: Path) -> list[str]:
    """Core modules that print, parse arguments, or import a front library or a front of the project."""
    found = []
    for module in core_modules(modules):
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{_where(module, node.lineno, root)}: calls print")
        for statement in imports(module):
            problem = _front_import(statement)
            if problem is not None:
                found.append(f"{_where(module, statement.line, root)}: {problem}")
    return found


def _wing(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == CORE and len(parts) > 2 and parts[1] in WINGS else None


def uphill_imports(modules: dict[str, Module]) -> list[str]:
    """Imports from a wing of the core into a wing above it (see :data:`WINGS`), as ``a -> b``."""
    graph = import_graph(modules)
    found = []
    for name, targets in sorted(graph.items()):
        here = _wing(name)
        for target in sorted(targets):
            there = _wing(target)
            if here and there and WINGS.index(there) > WINGS.index(here):
                found.append(f"{name} -> {target}")
    return found


def crowded_core(root: Path, limit: int = MAX_CORE_TOP_MODULES) -> list[str]:
    """The modules directly under ``model/`` when there are more than ``limit`` of them."""
    top = sorted(path.name for path in (root / CORE).glob("*.py"))
    return top if len(top) > limit else []


# ------------------------------------------------------------------------------------- the project


@pytest.fixture(scope="module")
def project() -> dict[str, Module]:
    return project_modules(PROJECT_ROOT)


def test_the_check_reads_every_package(project: dict[str, Module]) -> None:
    assert {name.split(".")[0] for name in project} == set(PACKAGES)
    assert {"model.cli.main", "model.serving.service", "pages.models", "dashboard.app", "api.main"} <= set(project)


def test_no_import_circle(project: dict[str, Module]) -> None:
    assert circles(import_graph(project)) == []


def test_no_module_is_loaded_by_a_name_in_a_string(project: dict[str, Module]) -> None:
    assert loading_by_string(project, PROJECT_ROOT) == []


def test_the_core_has_few_modules_at_its_top() -> None:
    assert crowded_core(PROJECT_ROOT) == []


def test_the_wings_import_only_downhill(project: dict[str, Module]) -> None:
    assert uphill_imports(project) == []


def test_the_core_holds_no_front_code(project: dict[str, Module]) -> None:
    assert front_code_in_core(project, PROJECT_ROOT) == []


def test_bench_runs_every_benchmark_module() -> None:
    from bench.__main__ import benchmarks

    files = {m.name for m in pkgutil.iter_modules([str(PROJECT_ROOT / "bench")]) if not m.name.startswith("_")}
    assert set(benchmarks()) == files


# ---------------------------------------------------------------------- each rule can fail


def _tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    """Write ``files`` (path -> source) under ``root`` and parse them as the project's packages."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, "utf-8")
    return project_modules(root, tuple(sorted({name.split("/")[0] for name in files})))


def test_a_circle_dodged_by_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "model/__init__.py": "",
        "model/log.py": "from model import spool\n",
        "model/spool.py": "def replay():\n    from model.log import write\n",
        "model/other.py": "import model.log\n",
    })  # fmt: skip
    assert circles(import_graph(modules)) == [["model.log", "model.spool"]]


TYPE_ONLY = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from model.settings import Settings\n"


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        (TYPE_ONLY, []),
        ("import typing\nif typing.TYPE_CHECKING:\n    import model.settings\n", []),
        (TYPE_ONLY + "else:\n    import model.settings\n", [["model.levels", "model.settings"]]),  # else runs
        (TYPE_ONLY + "def load():\n    import model.settings\n", [["model.levels", "model.settings"]]),
    ],
)
def test_a_type_only_back_reference_makes_no_circle(tmp_path: Path, levels: str, expected: list) -> None:
    modules = _tree(tmp_path, {
        "model/__init__.py": "",
        "model/settings.py": "from model.levels import DEFAULTS\n",
        "model/levels.py": levels,
    })  # fmt: skip
    assert circles(import_graph(modules)) == expected


def test_a_type_only_front_import_in_the_core_counts(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path, {"model/levels.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fastapi\n"}
    )
    assert front_code_in_core(modules, tmp_path) == ["model/levels.py:3: imports fastapi"]


def test_a_circle_through_a_relative_import_and_a_package_is_found(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "api/__init__.py": "",
        "api/routes.py": "from . import deps\n",
        "api/deps.py": "import dashboard.context\n",
        "dashboard/__init__.py": "",
        "dashboard/context.py": "from api.routes import router\n",
    })  # fmt: skip
    assert circles(import_graph(modules)) == [["api.deps", "api.routes", "dashboard.context"]]


def test_importlib_and_dunder_import_are_found(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "bench/__init__.py": "",
        "bench/run.py": "import importlib\nimportlib.import_module('bench.x')\n",
        "bench/other.py": "def f():\n    from importlib import import_module\n    return __import__('os')\n",
    })  # fmt: skip
    assert sorted(loading_by_string(modules, tmp_path)) == [
        "bench/other.py:2: imports importlib", "bench/other.py:3: calls __import__", "bench/run.py:1: imports importlib"
    ]  # fmt: skip


def test_more_than_eight_modules_at_the_top_of_the_core_are_found(tmp_path: Path) -> None:
    _tree(tmp_path, {f"model/m{i}.py": "" for i in range(8)})
    assert crowded_core(tmp_path) == []
    _tree(tmp_path, {"model/__init__.py": ""})
    assert len(crowded_core(tmp_path)) == 9


def test_prints_arguments_and_fronts_in_the_core_are_found(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "model/__init__.py": "",
        "model/__main__.py": "print('the entry may print')\n",
        "model/cli/main.py": "import argparse\nprint('the CLI may')\n",
        "model/report.py": "def show(x):\n    print(x)\n",
        "model/args.py": "from argparse import ArgumentParser\n",
        "model/page.py": "def draw():\n    import streamlit as st\n",
        "model/routes.py": "from fastapi import APIRouter\nimport starlette.responses\nimport uvicorn\n",
        "model/uses_cli.py": "from model.cli.main import main\nimport dashboard.context\n",
    })  # fmt: skip
    assert sorted(front_code_in_core(modules, tmp_path)) == [
        "model/args.py:1: imports argparse",
        "model/page.py:2: imports streamlit",
        "model/report.py:2: calls print",
        "model/routes.py:1: imports fastapi",
        "model/routes.py:2: imports starlette",
        "model/routes.py:3: imports uvicorn",
        "model/uses_cli.py:1: imports the front model.cli.main",
        "model/uses_cli.py:2: imports the front dashboard.context",
    ]


def test_an_uphill_import_between_wings_is_found(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"model/__init__.py": "", "model/store/__init__.py": "", "model/ml/__init__.py": "",
                            "model/store/registry.py": "def load():\n    from model.ml import grade_model\n",
                            "model/ml/grade_model.py": "from model.store import registry\n"})  # fmt: skip
    assert uphill_imports(tree) == ["model.store.registry -> model.ml.grade_model"]

"""The layering holds (docs/architecture.md): the core and the HTTP contract import no framework,
database, network or imaging library; the service is handed its backends rather than importing
them; no module imports back into a module that imports it; the public API is what we say it is.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import authgate

SRC = Path(authgate.__file__).resolve().parent
# What only the adapters, the store and the backends may use.
FORBIDDEN_BELOW_THE_SERVICE = (
    "flask",
    "flask_cors",
    "werkzeug",
    "sqlalchemy",
    "redis",
    "requests",
    "authlib",
    "PIL",
    "psycopg",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules_in(folder: str) -> list[str]:
    return sorted(_module_name(path) for path in (SRC / folder).rglob("*.py"))


def _loaded_after_import(module: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after importing ``module`` in a fresh
    interpreter (nothing else of the test run is loaded there)."""
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.partition(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize(
    "module", [*_modules_in("core"), *_modules_in("http"), "authgate.service", "authgate.errors"]
)
def test_module_loads_no_framework_database_network_or_imaging_library(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert sorted(loaded.intersection(FORBIDDEN_BELOW_THE_SERVICE)) == []


def test_the_walk_covers_every_core_and_http_module() -> None:
    """A new module is checked without editing this file (and the walk is not empty)."""
    assert "authgate.core.passwords" in _modules_in("core")
    assert "authgate.http.schemas" in _modules_in("http")
    assert len(_modules_in("core")) >= 10


def _import_graph() -> dict[str, set[str]]:
    """Module -> the authgate modules it imports: every ``import`` statement, at module level,
    under ``TYPE_CHECKING`` and inside functions alike (a deferred import is still a
    dependency). ``from package import name`` points at ``package.name`` when that is a
    module, at ``package`` otherwise."""
    paths = {_module_name(path): path for path in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in paths else base)
        graph[module] = {target for target in targets if target in paths and target != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_authgate() -> None:
    graph = _import_graph()
    assert "authgate.service.auth_service" in graph["authgate.service"]  # the graph is real
    assert _circles(graph) == []


def test_the_circle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_public_api_is_locked() -> None:
    assert sorted(authgate.__all__) == [
        "AuthGate",
        "ResourceServer",
        "__version__",
        "current_principal",
        "current_tenant",
        "current_user",
        "login_required",
        "token_required",
    ]
    for name in authgate.__all__:
        assert getattr(authgate, name) is not None

"""The rooms' rules (issue 29), read from the source: no flow imports another flow (shared
logic lives in components), no benchmark imports flows, and no import circle anywhere in the
project's packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("components", "flows", "benchmarks")
ENTRY_POINTS = {"flows.cli", "flows.cli_base"}  # the CLI dispatches to every flow


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports, wherever in the file the import stands."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # `from package import submodule` needs the submodule, not what the package holds
            targets = submodules if all(m in MODULES for m in submodules) else [*submodules, base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in `graph` (its modules in order, the first repeated), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                done.add(path.pop())
                stack.pop()
            elif following in path:
                return path[path.index(following) :] + [following]
            elif following not in done:
                path.append(following)
                stack.append(iter(sorted(graph.get(following, ()))))
    return None


def test_circle_finder_finds_a_circle():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_holds_deferred_and_submodule_imports():
    assert "flows.prepare" in GRAPH["flows.cli"]  # imported inside a command
    assert "components.evaluation.report.prose" in GRAPH["components.evaluation.report.markdown"]


def test_the_project_has_no_import_circle():
    assert _circle(GRAPH) is None


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.startswith("flows.") and n not in ENTRY_POINTS)
)
def test_no_flow_imports_another_flow(name):
    flows = {m for m in GRAPH[name] if m.startswith("flows.")}
    assert not flows, f"{name} imports {sorted(flows)}: move what they share into components"


def test_no_benchmark_imports_flows():
    offenders = {
        name: sorted(m for m in imports if m.split(".")[0] == "flows")
        for name, imports in GRAPH.items()
        if name.startswith("benchmarks")
    }
    assert not {name: flows for name, flows in offenders.items() if flows}

"""The import graph of appliance, inference, stores and webui: no cycles, and arrows one way.

Built with ``ast`` from the source, so nothing is imported. Every import counts: at module level,
under ``if TYPE_CHECKING:`` and inside functions, because a lazy or type-only import still ties two
modules together. ``from pkg import name`` points at ``pkg.name`` when that is a module, else at
``pkg``. Rooms and directions follow DESIGN.md and the ``__init__`` docstrings of ``inference``'s
subpackages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "inference", "stores", "webui")
HTTP_LIBRARIES = frozenset({"fastapi", "starlette", "uvicorn", "httpx", "python_multipart", "multipart"})

# What each package may import of the others (DESIGN.md: appliance -> {inference, stores, webui}).
PACKAGE_MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "appliance": frozenset({"inference", "stores", "webui"}),
    "inference": frozenset(),
    "stores": frozenset(),
    "webui": frozenset(),
}

# inference's rooms and what each may import besides itself; "inference" is the shared value types
# at its top (errors, generation, media, capabilities).
INFERENCE_ROOMS = ("catalog", "prompts", "backends", "scheduling", "services")
ROOM_MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "inference": frozenset(),
    "inference.catalog": frozenset({"inference"}),
    "inference.prompts": frozenset({"inference", "inference.catalog"}),
    "inference.backends": frozenset({"inference", "inference.catalog"}),
    "inference.scheduling": frozenset({"inference", "inference.catalog", "inference.backends"}),
    "inference.services": frozenset(
        {"inference", "inference.catalog", "inference.prompts", "inference.backends", "inference.scheduling"}
    ),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # a module of the four packages, or a third-party top-level name
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` of ``packages`` (a package is its ``__init__``)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "static" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """Every import in the file: first-party ones resolved to a module, others as their top-level name."""
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, line: int) -> None:
        while target not in modules and "." in target:
            target = target.rpartition(".")[0]
        if target in modules or target.partition(".")[0] not in PACKAGES:
            found.append(Import(name, target.partition(".")[0] if target not in modules else target, line))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in modules else base, node.lineno)
    return [edge for edge in found if edge.target != name]


def build_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> list[Import]:
    modules = find_modules(root, packages)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, modules)]


def find_cycles(edges: Iterable[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def inference_room(module: str) -> str:
    """``inference.<room>`` for a module in one of inference's subpackages, else ``inference``."""
    parts = module.split(".")
    return f"inference.{parts[1]}" if len(parts) > 1 and parts[1] in INFERENCE_ROOMS else "inference"


def describe(cycles: list[list[str]], edges: list[Import]) -> str:
    lines = []
    for cycle in cycles:
        members = set(cycle)
        lines.append(" <-> ".join(cycle))
        inside = (str(edge) for edge in edges if edge.source in members and edge.target in members)
        lines += [f"    {edge}" for edge in dict.fromkeys(inside)]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return build_graph()


def test_the_graph_sees_the_imports_it_must_judge(edges):
    found = {(edge.source, edge.target) for edge in edges}
    assert ("appliance.app", "inference.scheduling.scheduler") in found  # module level
    assert ("stores.store", "stores.replay") in found  # `from package import module`
    assert ("inference.backends.base", "inference.catalog.config") in found  # under TYPE_CHECKING
    assert ("appliance.storage.access", "stores.registry") in found  # inside a function
    assert ("webui", "starlette") in found  # third party, by its top-level name


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    edges = [Import("a", "b", 1), Import("b", "c", 1), Import("c", "a", 1), Import("c", "d", 1)]
    assert find_cycles(edges) == [["a", "b", "c"]]
    assert find_cycles(edges[1:]) == []


def test_no_module_imports_itself_back(edges):
    cycles = find_cycles([edge for edge in edges if edge.target.partition(".")[0] in PACKAGES])
    assert not cycles, "import cycles (break each by moving the shared type down or inverting it):\n" + describe(
        cycles, edges
    )


def test_packages_import_each_other_one_way_only(edges):
    wrong = [
        str(edge)
        for edge in edges
        if (target := edge.target.partition(".")[0]) in PACKAGES
        and (source := edge.source.partition(".")[0]) != target
        and target not in PACKAGE_MAY_IMPORT[source]
    ]
    assert not wrong, "appliance -> {inference, stores, webui} only; found:\n" + "\n".join(wrong)


def test_inference_and_stores_import_nothing_http(edges):
    wrong = [
        str(edge)
        for edge in edges
        if edge.source.partition(".")[0] in {"inference", "stores"} and edge.target in HTTP_LIBRARIES
    ]
    assert not wrong, "inference and stores are libraries without HTTP; found:\n" + "\n".join(wrong)


def test_inference_rooms_import_downwards_only(edges):
    wrong = []
    for edge in edges:
        if edge.source.partition(".")[0] != "inference" or edge.target.partition(".")[0] != "inference":
            continue
        source, target = inference_room(edge.source), inference_room(edge.target)
        if source != target and target not in ROOM_MAY_IMPORT[source]:
            wrong.append(f"{edge}: {source} may import only {sorted(ROOM_MAY_IMPORT[source]) or 'itself'}")
    assert not wrong, "inference's rooms import one way (see each room's __init__):\n" + "\n".join(wrong)


def test_every_inference_room_is_listed():
    rooms = {path.parent.name for path in (ROOT / "inference").glob("*/__init__.py")}
    assert rooms == set(INFERENCE_ROOMS)

"""The rooms of docs/ARCHITECTURE.md and who may import whom (STYLE.md rules 1 and 17): arrows point inward only,
and no module reaches itself through its imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dobby"

ENGINE_ROOMS = ["kernel", "rules", "model", "audit", "store", "commands"]
"""The engine's rooms, innermost first: each may import only itself and the rooms before it. The engine's face
(`engine/service.py`, `engine/schemas.py`) may import every room."""

OUTER_ROOMS: dict[str, set[str]] = {
    "resources": {"engine"},
    "adapters": {"engine"},
    "client": {"engine"},
    "projections": {"engine", "adapters"},
    "runtime": {"engine", "adapters", "projections"},
    "http": {"engine", "adapters", "projections", "runtime", "resources", "dobby"},
    "bootstrap": {"engine", "adapters", "projections", "runtime", "resources"},
    "asgi": {"bootstrap", "http"},
    "cli": {"engine", "adapters", "projections", "runtime", "http", "bootstrap", "asgi", "resources"},
}
"""Outside the engine: which rooms each may import besides itself (`dobby` alone is the package's version)."""

ALLOWED_THIRD_PARTY_IN_ENGINE = {"eventsourcing", "msgspec", "scipy"}
"""msgspec: the engine's commands, views and payloads are its Structs (DESIGN.md "The typed boundary"); scipy: the
quantiles of the t and normal distributions that the statistics of SPEC §14 stand on (imported lazily)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts == ["dobby"]:
        return "dobby"
    if parts[1] != "engine":
        return parts[1]
    if len(parts) > 2 and parts[2] in ENGINE_ROOMS:
        return f"engine.{parts[2]}"
    return "engine"


def imports(path: Path) -> list[str]:
    """The dobby modules a file imports (`from dobby.x import y` names y when y is a module), relative imports read
    as the absolute ones they are; TYPE_CHECKING and function-level imports count like any other."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node.module, node.level)
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in MODULES]
    return found


def _absolute(path: Path, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def may_import(importer: str, imported: str) -> bool:
    source, target = room_of(importer), room_of(imported)
    if source == target:
        return True
    if source.startswith("engine"):
        if not target.startswith("engine"):
            return False
        if source == "engine":
            return True
        rank = ENGINE_ROOMS.index(source.split(".")[1])
        return target != "engine" and ENGINE_ROOMS.index(target.split(".")[1]) <= rank
    allowed = OUTER_ROOMS[source]
    return target.split(".")[0] in allowed or (target == "dobby" and "dobby" in allowed)


def test_every_module_lives_in_a_known_room() -> None:
    homeless = [
        name
        for name in MODULES
        if room_of(name) not in {"dobby", "engine", *OUTER_ROOMS} | {f"engine.{room}" for room in ENGINE_ROOMS}
    ]
    assert homeless == []


def test_every_import_points_inward() -> None:
    offenders = [
        f"{importer} imports {imported}"
        for importer, path in sorted(MODULES.items())
        for imported in imports(path)
        if imported.startswith("dobby") and not may_import(importer, imported)
    ]
    assert offenders == []


def test_engine_imports_only_stdlib_eventsourcing_msgspec_scipy_and_itself() -> None:
    offenders = []
    for name, path in sorted(MODULES.items()):
        if not name.startswith("dobby.engine"):
            continue
        for imported in imports(path):
            top = imported.split(".")[0]
            outward = top == "dobby" and not imported.startswith("dobby.engine")
            foreign = top not in sys.stdlib_module_names | ALLOWED_THIRD_PARTY_IN_ENGINE | {"dobby"}
            if outward or foreign:
                offenders.append(f"{name}: {imported}")
    assert offenders == []


def test_no_module_reaches_itself_through_its_imports() -> None:
    graph = {
        name: {imported for imported in imports(path) if imported in MODULES and imported != name}
        for name, path in MODULES.items()
    }
    # a package's __init__ importing its own modules (to register or re-export them) is not a circle
    graph = {name: {other for other in targets if not name.startswith(other + ".")} for name, targets in graph.items()}
    circles = sorted({" -> ".join(circle) for circle in _circles(graph)})
    assert circles == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found

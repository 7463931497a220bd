"""The engine depends on nothing outward (STYLE.md rule 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "dobby" / "engine"
# msgspec: the engine's commands, views and payloads are its Structs (DESIGN.md "The typed boundary").
# scipy: the quantiles of the t and normal distributions that the statistics of SPEC §14 stand on (imported lazily).
ALLOWED_THIRD_PARTY = {"eventsourcing", "msgspec", "scipy"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module)
    return roots


def test_engine_imports_only_stdlib_eventsourcing_msgspec_and_itself() -> None:
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        for module in imported_roots(path):
            top = module.split(".")[0]
            outward = module.startswith("dobby.") and not module.startswith("dobby.engine")
            foreign = top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "dobby"
            if outward or foreign:
                offenders.append(f"{path.name}: {module}")
    assert offenders == []

"""What one operation of the route table is: its method, path, role, body, answers and parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: str
    """The name of the endpoint on LearningRoutes or SurfaceRoutes."""
    role: str | None = None
    """None: open to anyone (SPEC §8)."""
    body: Any = None
    answer: Any = None
    created: bool = False
    params: tuple[Param, ...] = ()
    list_item: Any = None
    schema: str | None = None
    """The name of its body's file in `schemas/` (`dobby schemas export`)."""
    accepted: Any = None
    """The answer of a 202 (an activation scheduled for later, SPEC §12)."""
    protocol: str = "dobby"
    """"ofrep": OpenFeature's protocol, with its own error shapes (SPEC §15)."""

    @property
    def route_path(self) -> str:
        """The path as Starlette routes it: a target id may hold slashes (SPEC §4.4), so it takes the rest."""
        return self.path.replace("/{type}/{id}", "/{type}/{id:path}").replace("/{key}", "/{key:path}")

    @property
    def answers(self) -> tuple[Any, ...]:
        """The answer's types: one, or several alternatives."""
        if self.answer is None:
            return ()
        return self.answer if isinstance(self.answer, tuple) else (self.answer,)

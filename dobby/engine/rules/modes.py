"""Service modes, the degrade ladder and Fabric alignment (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from dobby.engine.kernel.ports import GovernanceDocument


class Mode(IntEnum):
    """The ladder, lowest first; comparisons follow it."""

    warmup = 0
    observe_only = 1
    proposal_only = 2
    promotion_enabled = 3

    @classmethod
    def parse(cls, name: str) -> Mode:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown service mode {name!r}; one of {', '.join(m.name for m in cls)}") from None


@dataclass(frozen=True)
class Manifest:
    """What dobby declares of itself in fabric-manifest.json."""

    capability_class: str
    consumes: dict[str, str]
    produces: dict[str, str]

    @property
    def families(self) -> dict[str, str]:
        return {**self.consumes, **self.produces}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Manifest:
        families = document["contract_families"]
        return cls(
            capability_class=str(document["capability_class"]),
            consumes={str(k): str(v) for k, v in families.get("consumes", {}).items()},
            produces={str(k): str(v) for k, v in families.get("produces", {}).items()},
        )


@dataclass(frozen=True)
class Alignment:
    """How Fabric's document compares with the manifest, and the mode cap that follows."""

    aligned: bool
    drift: tuple[str, ...]
    cap: Mode


def align(manifest: Manifest, document: GovernanceDocument | None) -> Alignment:
    """The cap Fabric imposes: unreachable or structurally different → observe_only; versions only → proposal_only."""
    if document is None:
        return Alignment(False, ("fabric unreachable",), Mode.observe_only)
    structural: list[str] = []
    if document.readiness != "green":
        structural.append(f"fabric readiness is {document.readiness}")
    if document.capability_class != manifest.capability_class:
        structural.append(f"capability_class: manifest {manifest.capability_class}, fabric {document.capability_class}")
    versions: list[str] = []
    for family, version in sorted(manifest.families.items()):
        current = document.families.get(family)
        if current is None:
            structural.append(f"family {family} missing from fabric")
        elif current != version:
            versions.append(f"family {family}: manifest {version}, fabric {current}")
    if structural:
        return Alignment(False, tuple(structural + versions), Mode.observe_only)
    if versions:
        return Alignment(False, tuple(versions), Mode.proposal_only)
    return Alignment(True, (), Mode.promotion_enabled)


def effective_mode(requested: Mode, persistence_reachable: bool, alignment: Alignment) -> Mode:
    """The lower of the requested mode and the cap of persistence and Fabric."""
    if not persistence_reachable:
        return Mode.warmup
    return min(requested, alignment.cap)


def required_mode(command: str) -> Mode:
    """The lowest mode a command runs in (SPEC §2)."""
    return _REQUIRED[command]


_REQUIRED = {
    "intake_signal": Mode.observe_only,
    "evaluate_replay": Mode.observe_only,
    "what_if": Mode.observe_only,
    "propose": Mode.proposal_only,
    "approve_check": Mode.proposal_only,
    "activate": Mode.promotion_enabled,
    "rollback": Mode.observe_only,
    "expire": Mode.observe_only,
    "mark_revalidation_required": Mode.observe_only,
    "freeze": Mode.observe_only,  # SPEC §12: safety actions, allowed in every mode but warmup
    "lift_freeze": Mode.observe_only,
    "stop": Mode.observe_only,
    "resume": Mode.observe_only,
    "observe": Mode.observe_only,
}

"""What holds an activation back (SPEC §12): the tenant's stop or a freeze in force over the target, as a value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hold:
    """What holds an activation back now: the stop, or a freeze in force over the target."""

    kind: str  # "stop" | "freeze"
    reason: str
    since: str
    until: str | None
    freeze_id: str | None = None

    def describe(self, tenant_id: str) -> str:
        if self.kind == "stop":
            return f"activations of tenant {tenant_id} are stopped since {self.since}: {self.reason}"
        return f"freeze {self.freeze_id} holds the target from {self.since} until {self.until}: {self.reason}"

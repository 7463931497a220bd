"""What every command family stands on: the unit of work, Fabric and the service modes, limits, clock, observer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from dobby.engine.kernel.clock import Clock, system_clock
from dobby.engine.kernel.errors import ForbiddenError, ModeForbidsError, ServiceUnavailableError, Violation
from dobby.engine.kernel.ports import GovernanceDocument, GovernanceTruth, Observer, UpstreamUnavailableError
from dobby.engine.rules.modes import Alignment, Manifest, Mode, align, effective_mode, required_mode
from dobby.engine.store.unit_of_work import UnitOfWork

PROCESSOR_ACTOR = "expiry-processor"

Scope = frozenset[str] | None
"""The tenants a caller may act for and see (SPEC §8); None: every tenant. Records of the others answer as unknown."""


def may_see(tenants: Scope, tenant_id: str) -> bool:
    """Whether a caller of `tenants` may see and act for `tenant_id` (SPEC §8): the one rule, in one place."""
    return tenants is None or tenant_id in tenants


def require_tenant(tenants: Scope, tenant_id: str) -> None:
    """A command naming a tenant the caller may not act for is refused (403) before anything is read (SPEC §8)."""
    if not may_see(tenants, tenant_id):
        raise ForbiddenError(f"the caller may not act for tenant {tenant_id!r}")


@dataclass(frozen=True)
class Limits:
    neutral_sample_rate: float = 0.25
    replay_budget: int = 20
    replay_budget_window_seconds: float = 3600
    velocity_max: int = 5
    velocity_window_seconds: float = 3600
    proposal_ttl_seconds: int = 604_800
    approval_quorum_high: int = 1
    approval_quorum_critical: int = 2
    clock_skew_seconds: float = 300
    confidence: float = 0.95
    """The default confidence of a contract metric judged from sample summaries (SPEC §14)."""
    require_judged_change: bool = True
    """Propose refuses a replay that judged no change (SPEC §4.4, `change_not_judged`)."""


class NoObserver:
    """Counts nothing: for tools and tests that do not serve metrics."""

    def count(self, metric: str, labels: Mapping[str, str]) -> None:
        pass


@dataclass
class Context:
    uow: UnitOfWork
    governance: GovernanceTruth
    manifest: Manifest
    requested_mode: Mode = Mode.proposal_only
    limits: Limits = field(default_factory=Limits)
    clock: Clock = system_clock
    observer: Observer = field(default_factory=NoObserver)
    persistence_reachable: Callable[[], bool] = lambda: True
    persistence_cause: Callable[[], str | None] = lambda: None  # why persistence caps the mode (§16), if it does
    _aligned: tuple[Manifest, GovernanceDocument | None, Alignment] | None = field(default=None, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def document(self) -> GovernanceDocument | None:
        """Fabric's current document, None when there has never been a good one or Fabric is unreachable."""
        if not self.governance.is_reachable():
            return None
        try:
            return self.governance.current()
        except UpstreamUnavailableError:
            return None

    def alignment(self) -> Alignment:
        """Fabric's alignment, computed again only when the document (or the manifest) is another object: every
        command asks for it, Fabric changes it a few times a day."""
        manifest, document = self.manifest, self.document()
        cached = self._aligned
        if cached is not None and cached[0] is manifest and cached[1] is document:
            return cached[2]
        alignment = align(manifest, document)
        self._aligned = (manifest, document, alignment)
        return alignment

    def mode(self) -> Mode:
        usable = self.persistence_reachable() and self.persistence_cause() is None
        return effective_mode(self.requested_mode, usable, self.alignment())

    def require_mode(self, command: str) -> Mode:
        """The effective mode, when it allows `command` (SPEC §2); 503 in warmup, 422 mode_forbids below it."""
        mode = self.mode()
        needed = required_mode(command)
        if mode == Mode.warmup:
            raise self.warmup_error()
        if mode < needed:
            message = f"effective mode {mode.name} forbids {command}, which needs {needed.name}"
            extra = {"effective_mode": mode.name, "required_mode": needed.name}
            raise ModeForbidsError(message, [Violation("mode_forbids", message, extra=extra)])
        return mode

    def warmup_error(self) -> ServiceUnavailableError:
        """The 503 `service_mode` of a write refused in warmup, its details naming the cause (SPEC §16)."""
        cause = self.persistence_cause() or "persistence unreachable"
        violation = Violation("service_mode", cause, "persistence", extra={"effective_mode": Mode.warmup.name})
        return ServiceUnavailableError(f"the service is in warmup: {cause}", "service_mode", violations=[violation])

    def fabric(self) -> GovernanceDocument:
        try:
            return self.governance.current()
        except UpstreamUnavailableError as error:
            raise ServiceUnavailableError(f"Fabric unavailable: {error}", "fabric_unavailable") from error


class Family(Protocol):
    """A command family: it stands on a context."""

    context: Context


F = TypeVar("F", bound=Family)
P = ParamSpec("P")
T = TypeVar("T")


def transaction(attempt: Callable[Concatenate[F, datetime, P], T]) -> Callable[Concatenate[F, P], T]:
    """A command method that is one attempt of a unit of work, given the moment it runs at: when its one save meets
    a concurrent one it runs again from its top at a new moment, and persistence failures answer 503
    (UnitOfWork.transact). What it checks before it loads anything belongs in the caller, checked once."""

    @functools.wraps(attempt)
    def run(family: F, /, *args: P.args, **kwargs: P.kwargs) -> T:
        context = family.context
        return context.uow.transact(lambda: attempt(family, context.now(), *args, **kwargs))

    return run

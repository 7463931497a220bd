"""The intake family (SPEC §4.2): a trace in, a Run recorded once, every refusal counted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError
from msgspec import Meta

from dobby.engine.commands.boundary import decode
from dobby.engine.commands.context import Context, Scope, require_tenant, transaction
from dobby.engine.kernel.canonical import run_id_for
from dobby.engine.kernel.errors import DobbyError, RuleViolationError, ServiceUnavailableError
from dobby.engine.kernel.ports import EvidenceSource, UpstreamUnavailableError
from dobby.engine.kernel.shapes import Hash, View
from dobby.engine.model.chain import ChainedCreated
from dobby.engine.model.run import Run
from dobby.engine.rules.intake import (
    IntakeSignal,
    check_intake,
    is_kept,
    is_learning_signal,
    run_hash_of,
    run_provenance_hash_of,
)
from dobby.engine.store.group_commit import BackpressureError, GroupCommitter

INTAKE_TOTAL = "dobby_intake_total"


class IntakeAccepted(View, frozen=True, kw_only=True):
    accepted: Annotated[bool, Meta(description="always true here: the run is stored")] = True
    run_id: str
    run_hash: Hash
    provenance_hash: Hash
    sampled: bool
    duplicate: bool
    position: int


class SampledOut(View, frozen=True, kw_only=True):
    accepted: Annotated[bool, Meta(description="always false here: sampled out, nothing stored")] = False
    reason: Literal["sampled_out"] = "sampled_out"
    run_hash: Hash
    position: int


@dataclass(frozen=True)
class PreparedRun:
    """A checked, hashed intake, ready to be recorded as a Run."""

    body: IntakeSignal
    run_id: UUID
    run_hash: str
    provenance_hash: str

    def run(self, evidence_digest: str | None, actor: str, context: Context) -> Run:
        run: Run = Run.from_first(self.recorded(evidence_digest, actor, context))
        return run

    def recorded(self, evidence_digest: str | None, actor: str, context: Context) -> ChainedCreated:
        return Run.recorded(
            self.run_id,
            self.body,
            run_hash=self.run_hash,
            provenance_hash=self.provenance_hash,
            sampled=self.body.outcome == "neutral_success",
            learning_signal=is_learning_signal(self.body),
            evidence_digest=evidence_digest,
            actor=actor,
            at=context.now(),
        )

    def answer(self, duplicate: bool, position: int) -> IntakeAccepted:
        return IntakeAccepted(
            run_id=str(self.run_id),
            run_hash=self.run_hash,
            provenance_hash=self.provenance_hash,
            sampled=self.body.outcome == "neutral_success",
            duplicate=duplicate,
            position=position,
        )


IntakeAnswer = IntakeAccepted | SampledOut


@dataclass
class IntakeCommands:
    context: Context
    evidence: EvidenceSource | None = None

    def prepare(self, raw: bytes, header_tenant: str | None, tenants: Scope = None) -> PreparedRun | str:
        """Decode, check and hash an intake without I/O: the prepared run, or the run_hash of a sampled-out one.
        `tenants` are those the caller may act for (None: any). Every refusal is counted here, whatever refused it."""
        try:
            self.context.require_mode("intake_signal")
            body = decode(raw, IntakeSignal)
            require_tenant(tenants, body.tenant_id)
            violations = check_intake(body, header_tenant)
            if violations:
                raise RuleViolationError(violations)
        except DobbyError as error:
            if not isinstance(error, ServiceUnavailableError):
                self._count("rejected")
            raise
        run_hash = run_hash_of(body)
        if not is_kept(body.outcome, run_hash, self.context.limits.neutral_sample_rate):
            self._count("sampled_out")
            return run_hash
        return PreparedRun(body, run_id_for(run_hash), run_hash, run_provenance_hash_of(body))

    def submit(
        self, raw: bytes, *, header_tenant: str | None = None, tenants: Scope = None, actor: str
    ) -> IntakeAnswer:
        prepared = self.prepare(raw, header_tenant, tenants)
        uow = self.context.uow
        if isinstance(prepared, str):
            return SampledOut(run_hash=prepared, position=uow.position())
        return self._record(prepared, self._evidence_digest(prepared.body.trace_id), actor=actor)

    @transaction
    def _record(self, _: datetime, prepared: PreparedRun, digest: str | None, *, actor: str) -> IntakeAccepted:
        """Insert first: a run's id is its content, so a version conflict means it is already stored."""
        try:
            return prepared.answer(False, self.context.uow.save(prepared.run(digest, actor, self.context)))
        except IntegrityError:
            return self._stored_duplicate(prepared)

    async def submit_async(
        self, raw: bytes, *, header_tenant: str | None = None, tenants: Scope = None, actor: str
    ) -> IntakeAnswer:
        """submit for an event loop: the checks run on the loop and the group commit is awaited, so no thread is
        held per request. Falls back to a worker thread when Shuttle must be asked first."""
        uow = self.context.uow
        if uow.committer is None or self.evidence is not None:
            return await asyncio.to_thread(self.submit, raw, header_tenant=header_tenant, tenants=tenants, actor=actor)
        prepared = self.prepare(raw, header_tenant, tenants)
        if isinstance(prepared, str):
            return SampledOut(run_hash=prepared, position=await self._head(uow.committer, uow.save_timeout))
        events = [prepared.recorded(None, actor, self.context)]
        try:
            answer = uow.committer.submit_async(events)
            async with asyncio.timeout(uow.save_timeout):
                position = await answer
        except BackpressureError as error:
            raise ServiceUnavailableError(str(error), "backpressure") from error
        except TimeoutError as error:
            raise ServiceUnavailableError(
                "the database did not take the write in time", "persistence_unavailable"
            ) from error
        except IntegrityError:
            # a run's only event opens the stream named by its content: the conflict is the run already stored
            self._count("duplicate")
            return prepared.answer(True, await self._head(uow.committer, uow.save_timeout))
        except PersistenceError as error:
            raise ServiceUnavailableError(f"persistence unavailable: {error}", "persistence_unavailable") from error
        return prepared.answer(False, position)

    @staticmethod
    async def _head(committer: GroupCommitter, timeout: float) -> int:
        try:
            async with asyncio.timeout(timeout):
                return await committer.head_async()
        except BackpressureError as error:
            raise ServiceUnavailableError(str(error), "backpressure") from error
        except TimeoutError as error:
            raise ServiceUnavailableError("the database did not answer in time", "persistence_unavailable") from error
        except PersistenceError as error:
            raise ServiceUnavailableError(f"persistence unavailable: {error}", "persistence_unavailable") from error

    def _stored_duplicate(self, prepared: PreparedRun) -> IntakeAccepted:
        uow = self.context.uow
        if uow.get(Run, prepared.run_id) is None:
            raise IntegrityError(f"run {prepared.run_id} conflicted but is not stored")
        self._count("duplicate")
        return prepared.answer(True, uow.position())

    def _evidence_digest(self, trace_id: str) -> str | None:
        if self.evidence is None:
            return None
        try:
            found = self.evidence.evidence_for(trace_id)
        except UpstreamUnavailableError:
            return None
        return None if found is None else found.digest

    def _count(self, result: str) -> None:
        self.context.observer.count(INTAKE_TOTAL, {"result": result})

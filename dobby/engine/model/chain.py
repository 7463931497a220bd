"""Hash-chained events and the aggregate base every dobby stream uses (SPEC §3).

An event is declared once, as its payload Struct (`EventPayload`): its name, its fields, its meaning. The class the
aggregate records and the log stores (a `ChainedEvent`) is derived from it by `chained`, one call per stream, the
way the library's DCB examples declare a decision as a Struct and wrap it in the log's envelope.
"""

from __future__ import annotations

import types
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, AggregateCreated, AggregateEvent
from eventsourcing.utils import get_topic as _topic
from eventsourcing.utils import register_topic

from dobby.engine.kernel.canonical import GENESIS_HASH, content_hash
from dobby.engine.kernel.clock import rfc3339

State = TypeVar("State")


def chain_hash(  # noqa: PLR0917
    stream_id: UUID,
    version: int,
    event_type: str,
    occurred_at: datetime,
    actor: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    """The event_hash of SPEC §3: a hash of the stream id, version, event type, occurred_at (RFC 3339 UTC with
    microseconds, `2026-01-01T12:00:00.000000Z`, as every view shows it), actor, payload and prev_hash."""
    return content_hash(
        {
            "stream_id": str(stream_id),
            "version": version,
            "type": event_type,
            "occurred_at": rfc3339(occurred_at),
            "actor": actor,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )


def legacy_chain_hash(stream_id: UUID, version: int, event_type: str, payload: dict[str, Any], prev_hash: str) -> str:
    """The event_hash of builds before the chain covered who and when (docs/DECISIONS.md, "Chain format")."""
    return content_hash(
        {
            "stream_id": str(stream_id),
            "version": version,
            "type": event_type,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )


class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An event payload or a part of one: every field required (optional ones are stored as null)."""


class EventPayload(Payload, frozen=True):
    """The declaration of one event type: its name, its fields (the payload it stores) and its docstring. `Event` is
    the class its stream records it as, derived by `chained`."""

    if TYPE_CHECKING:  # set by chained (a Struct class attribute, not a field)
        Event: ClassVar[type[ChainedEvent]]


class ChainedEvent(AggregateEvent):
    """A fact in one stream: who caused it, what it says (its payload as stored, the dict its hash covers), and its
    link in the stream's hash chain."""

    if TYPE_CHECKING:  # set by chained: the Struct this event class was derived from
        payload_type: ClassVar[type[EventPayload]]

    actor: str
    payload: dict[str, Any]
    prev_hash: str
    event_hash: str

    def apply(self, aggregate: Any) -> None:
        aggregate.state = aggregate.evolve(aggregate.state if self.originator_version > 1 else None, self)
        aggregate.last_hash = self.event_hash

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def expected_hash(self) -> str:
        """The event_hash this event's content gives (SPEC §3)."""
        return chain_hash(
            self.originator_id,
            self.originator_version,
            self.type_name,
            self.timestamp,
            self.actor,
            self.payload,
            self.prev_hash,
        )

    def legacy_expected_hash(self) -> str:
        event = self
        return legacy_chain_hash(
            event.originator_id, event.originator_version, event.type_name, event.payload, event.prev_hash
        )

    def links_correctly(self, prev_hash: str) -> bool:
        return self.prev_hash == prev_hash and self.event_hash == self.expected_hash()


class ChainedCreated(ChainedEvent, AggregateCreated):
    """The first fact of a stream."""


class ChainedAggregate(Aggregate, Generic[State]):
    """An aggregate whose state is a pure fold of its chained events.

    Subclasses define `evolve(state, event) -> state` as a pure static function; the aggregate only
    holds the result and the last hash of its chain.
    """

    if TYPE_CHECKING:  # declared for the type checker only: class annotations would make this a dataclass
        state: State
        last_hash: str
        events: ClassVar[tuple[type[ChainedEvent], ...]]  # what the stream records, set by chained

    @staticmethod
    def evolve(state: Any, event: ChainedEvent) -> Any:
        raise NotImplementedError

    @classmethod
    def start(cls, payload: EventPayload, *, id: UUID, actor: str, at: datetime) -> Any:
        """A new stream: the aggregate holding its first event, pending until it is saved."""
        return cls.from_first(cls.first_event(payload, id=id, actor=actor, at=at))

    @classmethod
    def first_event(cls, payload: EventPayload, *, id: UUID, actor: str, at: datetime) -> ChainedCreated:
        """The first event of a new stream, without the aggregate: enough for a writer that only saves it."""
        event_class = cls._event_class(payload)
        assert issubclass(event_class, ChainedCreated), f"{event_class.__name__} does not open a stream"
        data = _stored(payload)
        return event_class(  # type: ignore[call-arg]
            originator_topic=_topic(cls),
            originator_id=id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=at,
            actor=actor,
            payload=data,
            prev_hash=GENESIS_HASH,
            event_hash=chain_hash(id, cls.INITIAL_VERSION, event_class.__name__, at, actor, data, GENESIS_HASH),
        )

    @classmethod
    def from_first(cls, event: ChainedCreated) -> Any:
        """The aggregate of a new stream whose first event is `event`, holding it as pending (as the library's
        `_create` does)."""
        aggregate = event.mutate(None)
        assert isinstance(aggregate, cls)
        aggregate.pending_events.append(event)
        return aggregate

    def record(self, payload: EventPayload, *, actor: str, at: datetime) -> None:
        """Record the event `payload` declares, as the next link of this stream's chain."""
        event_class = self._event_class(payload)
        version = self.version + 1
        data = _stored(payload)
        self.trigger_event(
            event_class,
            timestamp=at,
            actor=actor,
            payload=data,
            prev_hash=self.last_hash,
            event_hash=chain_hash(self.id, version, event_class.__name__, at, actor, data, self.last_hash),
        )

    @classmethod
    def _event_class(cls, payload: EventPayload) -> type[ChainedEvent]:
        event_class = type(payload).Event
        assert event_class in cls.events, f"{cls.__name__} does not record {event_class.__name__}"
        return event_class


def _stored(payload: EventPayload) -> dict[str, Any]:
    """The payload as it is stored, and as its hash covers it."""
    data: dict[str, Any] = msgspec.to_builtins(payload)
    return data


def chained(
    aggregate: type[ChainedAggregate[Any]], log_module: str, first: type[EventPayload], *then: type[EventPayload]
) -> tuple[type[ChainedEvent], ...]:
    """The events of `aggregate`'s stream, each derived from its payload type (`first` opens the stream): a
    ChainedCreated or ChainedEvent subclass named and documented like it, set as its `Event`. The aggregate and
    every event keep the name they were first written with from `log_module` (named_in_log)."""
    events = (_derived(first, ChainedCreated), *(_derived(kind, ChainedEvent) for kind in then))
    aggregate.events = events
    named_in_log(log_module, aggregate, *events)
    return events


def _derived(payload: type[EventPayload], base: type[ChainedEvent]) -> type[ChainedEvent]:
    namespace = {
        "__module__": payload.__module__,
        "__qualname__": payload.__qualname__,
        "__doc__": payload.__doc__,
        "payload_type": payload,
    }
    event = types.new_class(payload.__name__, (base,), exec_body=lambda body: body.update(namespace))
    assert issubclass(event, base)
    payload.Event = event
    return event


def named_in_log(module: str, *classes: type) -> None:
    """Name these types in the log as they were named when first written, from `module`: the log is for ever, so
    the stored topic of an event or aggregate never follows the code when it moves (STYLE.md rule 18). The library
    takes a class's `TOPIC` when it writes and resolves the registered name when it reads."""
    for cls in classes:
        topic = f"{module}:{cls.__qualname__}"
        setattr(cls, "TOPIC", topic)  # noqa: B010 (a class attribute the library reads by name)
        register_topic(topic, cls)

"""How dobby's events are stored: one typed envelope per event, written and read by msgspec.

The library's JSON transcoder turns any object of exactly two members named `_type_` and `_data_` back into a
registered type, at any depth. Payloads carry what clients sent (`attributes`, `change` and `baseline` are free
objects), so one intake whose step attributes held `{"_type_": "nope", "_data_": 1}` was stored, acknowledged, and
could never be read again: every projection stopped on it for good. Here the envelope is a Struct and the payload
is plain JSON that nothing interprets; only the timestamp keeps the library's wrapped form, so events read the
same whichever mapper wrote them. Snapshots and any other event go through the library's own mapper.

It is also the fast path: one msgspec encode or decode per event instead of the json module with a hook per object.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

from dobby.engine.kernel.shapes import UNSET, UnsetType
from dobby.engine.model.chain import ChainedEvent


class WrappedTimestamp(msgspec.Struct, frozen=True, rename={"kind": "_type_", "iso": "_data_"}):
    """A datetime as the library's DatetimeAsISO transcoding writes it."""

    kind: Literal["datetime_iso"]
    iso: str


class Envelope(msgspec.Struct, kw_only=True):
    """The stored state of a ChainedEvent: every attribute but its stream id and version (stored beside it)."""

    timestamp: WrappedTimestamp
    originator_topic: str | UnsetType = UNSET
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    event_hash: str


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Envelope)


class EventMapper(Mapper[UUID]):
    """The library's Mapper, with ChainedEvents stored as an Envelope (unless a cipher or compressor is set)."""

    def _plain(self, event_class: type[Any]) -> bool:
        return (
            isinstance(event_class, type)
            and issubclass(event_class, ChainedEvent)
            and getattr(event_class, "class_version", 1) == 1
            and self.cipher is None
            and self.compressor is None
        )

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not self._plain(type(domain_event)):
            return super().to_stored_event(domain_event)
        state = domain_event.__dict__
        envelope = Envelope(
            timestamp=WrappedTimestamp("datetime_iso", state["timestamp"].isoformat()),
            originator_topic=state.get("originator_topic", UNSET),
            actor=state["actor"],
            payload=state["payload"],
            prev_hash=state["prev_hash"],
            event_hash=state["event_hash"],
        )
        return StoredEvent(
            originator_id=state["originator_id"],
            originator_version=state["originator_version"],
            topic=get_topic(type(domain_event)),
            state=_ENCODER.encode(envelope),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event_class = resolve_topic(stored_event.topic)
        if not self._plain(event_class):
            return super().to_domain_event(stored_event)
        try:
            envelope = _DECODER.decode(stored_event.state)
            timestamp = datetime.fromisoformat(envelope.timestamp.iso)
        except (msgspec.DecodeError, ValueError) as error:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version} "
                f"({stored_event.topic}) is not a dobby event envelope: {error}"
            ) from error
        convert = find_id_convertor(event_class, cast(Hashable, type(stored_event.originator_id)))
        state: dict[str, Any] = {
            "originator_id": convert(stored_event.originator_id),
            "originator_version": stored_event.originator_version,
            "timestamp": timestamp,
            "actor": envelope.actor,
            "payload": envelope.payload,
            "prev_hash": envelope.prev_hash,
            "event_hash": envelope.event_hash,
        }
        if envelope.originator_topic is not UNSET:
            state["originator_topic"] = envelope.originator_topic
        event: DomainEventProtocol[UUID] = object.__new__(event_class)
        object.__setattr__(event, "__dict__", state)
        return event

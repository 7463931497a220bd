"""Verifying the log (SPEC §11): every chain of every stream, and every event in exactly one stream position."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dobby.engine.kernel.canonical import GENESIS_HASH
from dobby.engine.model.chain import ChainedEvent

STREAM_KINDS = {
    "Generated": "proposal",
    "RunRecorded": "run",
    "ReplayEvaluated": "replay",
    "TargetOpened": "target",
    "LedgerOpened": "ledger",
    "PolicyOpened": "policy",
    "FreezeFiled": "freeze",
}


@dataclass(frozen=True)
class Entry:
    """One stored event at its log position; `event` is None when the stored row could not be read as one."""

    position: int
    stream_id: str
    version: int
    event: ChainedEvent | None
    problem: str | None = None


@dataclass(frozen=True)
class Seen:
    """Where the read side saw an event: its log position, stream and version (the Merkle projection's leaves)."""

    position: int
    stream_id: str
    version: int


@dataclass
class _Stream:
    kind: str
    version: int = 0
    last_hash: str = GENESIS_HASH
    current_format: bool = False


@dataclass
class LogReport:
    """What a verification found: counts, and one line per thing that broke."""

    events: int = 0
    streams: Counter[str] = field(default_factory=Counter)
    legacy_events: int = 0
    legacy_gaps: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.streams.items())) or "none"
        legacy = ""
        if self.legacy_events or self.legacy_gaps:
            legacy = (
                f"; {self.legacy_events} event(s) in the chain format of earlier builds (actor and occurred_at not "
                f"covered), {self.legacy_gaps} position(s) left empty by earlier builds"
            )
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return f"{self.events} events in {sum(self.streams.values())} streams ({kinds}){legacy}: {verdict}"


@dataclass
class ChainCheck:
    """Every event checked as it goes by, trusting nothing stored: its hash recomputed from its content (the
    current format, or the earlier builds' one at the head of a stream) and its link to the event before it in
    its stream. For readers that walk the log once for another purpose (check-checkpoint)."""

    report: LogReport = field(default_factory=LogReport)
    streams: dict[str, _Stream] = field(default_factory=dict)

    def check(self, entry: Entry) -> list[str]:
        """The problems `entry` adds (each naming its position)."""
        before = len(self.report.problems)
        self.report.events += 1
        _check_entry(entry, self.streams, self.report)
        return self.report.problems[before:]


def check_log(entries: Iterable[Entry], *, positions: bool = False, seen: Iterable[Seen] = ()) -> LogReport:
    """Check `entries` (in log position order): each stream's chain; with `positions`, also that positions run
    1, 2, 3… without a hole and that every event the read side `seen` is still at its position in its stream
    slot. A chain whose leading events carry the earlier builds' hash is legacy, not broken."""
    report = LogReport()
    streams: dict[str, _Stream] = {}
    expected_seen = iter(seen)
    pending = next(expected_seen, None)
    last_position = 0
    current_format_seen = False
    for entry in entries:
        report.events += 1
        if positions and entry.position != last_position + 1:
            hole = _hole(last_position + 1, entry.position - 1)
            if current_format_seen:
                report.problems.append(f"{hole}: no event (deleted?)")
            else:
                report.legacy_gaps += entry.position - last_position - 1
        last_position = entry.position
        while pending is not None and pending.position <= entry.position:
            if pending.position < entry.position:
                report.problems.append(_missing(pending))
            elif (pending.stream_id, pending.version) != (entry.stream_id, entry.version):
                report.problems.append(
                    f"position {entry.position}: holds stream {entry.stream_id} v{entry.version}, where "
                    f"stream {pending.stream_id} v{pending.version} was recorded (moved?)"
                )
            pending = next(expected_seen, None)
        current_format_seen |= _check_entry(entry, streams, report)
    while pending is not None:
        report.problems.append(_missing(pending))
        pending = next(expected_seen, None)
    report.streams.update(stream.kind for stream in streams.values())
    return report


def _check_entry(entry: Entry, streams: dict[str, _Stream], report: LogReport) -> bool:
    """Check one event against its stream so far; whether it carries the current chain format."""
    where = f"position {entry.position} (stream {entry.stream_id} v{entry.version})"
    event = entry.event
    stream = streams.get(entry.stream_id)
    if event is None:
        report.problems.append(f"{where}: cannot be read: {entry.problem}")
        if stream is None:
            streams[entry.stream_id] = _Stream("unknown", entry.version)
        else:
            stream.version = entry.version
        return False
    if stream is None:
        stream = streams[entry.stream_id] = _Stream(STREAM_KINDS.get(event.type_name, "unknown"))
    problems = list(_chain_problems(event, stream))
    if problems:
        report.problems.append(f"{where}, {event.type_name}: " + "; ".join(problems))
    current = False
    if event.event_hash == _expected(event):
        current = stream.current_format = True
    elif not stream.current_format and event.event_hash == _legacy(event):
        report.legacy_events += 1
    else:
        report.problems.append(f"{where}, {event.type_name}: event_hash does not match its content")
    stream.version = event.originator_version
    stream.last_hash = event.event_hash
    return current


def _chain_problems(event: ChainedEvent, stream: _Stream) -> Iterator[str]:
    if event.originator_version != stream.version + 1:
        yield f"version {event.originator_version} follows version {stream.version} of its stream"
    if event.prev_hash != stream.last_hash:
        yield "prev_hash does not link to the event before it"


def _expected(event: ChainedEvent) -> str | None:
    try:
        return event.expected_hash()
    except Exception:  # a stored event altered into something that has no canonical form
        return None


def _legacy(event: ChainedEvent) -> str | None:
    try:
        return event.legacy_expected_hash()
    except Exception:
        return None


def _hole(first: int, last: int) -> str:
    return f"position {first}" if first == last else f"positions {first}–{last}"


def _missing(seen: Seen) -> str:
    return f"position {seen.position}: stream {seen.stream_id} v{seen.version} was recorded there and is gone"


def stream_report(events: Iterable[ChainedEvent]) -> LogReport:
    """One stream's chain checked on its own (positions unknown: each event's version stands for it)."""
    entries = (
        Entry(event.originator_version, str(event.originator_id), event.originator_version, event) for event in events
    )
    return check_log(entries)


def first_broken_version(events: Iterable[ChainedEvent]) -> int | None:
    """The version of the first event of one stream whose hash does not match its content or whose link to the
    event before it is broken; None when the whole chain holds."""
    chains = ChainCheck()
    for event in events:
        version = event.originator_version
        if chains.check(Entry(version, str(event.originator_id), version, event)):
            return version
    return None


def chain_is_valid(events: Iterable[ChainedEvent]) -> bool:
    """Whether each event links to the one before it and its own hash matches its content."""
    return stream_report(events).ok

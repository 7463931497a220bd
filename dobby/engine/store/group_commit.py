"""Group commit: one writer merges the saves of concurrent commands into one transaction.

Each caller hands over the events of one command and waits for its own answer. The writer drains what is
queued (at most `max_batch` saves, waiting at most `max_wait` seconds for company) and records everything in
one `save`: one table lock and one fsync for the whole batch, with the log's gap-free ordering untouched.
When the merged save hits a version conflict, the members are saved again one by one, so only the real loser
gets the IntegrityError and retries its command.

Callers on an event loop get an asyncio future, and every answer of a batch reaches the loop in one
`call_soon_threadsafe`: a wake-up per answer would hand the GIL back and forth with the busy loop once per
request, and under load that hand-off, not the database, set the pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError


class CommitTimeoutError(TimeoutError):
    """A save was withdrawn before it was written because the database did not take it in time."""


class BackpressureError(RuntimeError):
    """Too many saves are already waiting; the caller should come back later."""


@dataclass(slots=True)
class _Save:
    """One caller's events: answered through `answer` (a thread waiting) or `waiter` on `loop` (a coroutine).
    A caller on a loop gets no concurrent Future: its lock and condition were a measurable share of an intake."""

    events: list[Any]
    answer: Future[int] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[int] | None = None

    def start(self) -> bool:
        """Whether the save is still wanted (its caller has not withdrawn it), and is now being written."""
        if self.waiter is not None:
            return not self.waiter.cancelled()
        assert self.answer is not None
        return self.answer.set_running_or_notify_cancel()

    def settle(self, result: int | None, error: BaseException | None, loops: dict[Any, list[Any]]) -> None:
        if self.loop is None:
            assert self.answer is not None
            if error is None:
                self.answer.set_result(result)  # type: ignore[arg-type]
            else:
                self.answer.set_exception(error)
        else:
            loops.setdefault(self.loop, []).append((self.waiter, result, error))


def _settle_on_loop(answers: list[tuple[asyncio.Future[int], int | None, BaseException | None]]) -> None:
    for waiter, result, error in answers:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(result)  # type: ignore[arg-type]
        else:
            waiter.set_exception(error)


class GroupCommitter:
    def __init__(
        self,
        log: Application[Any],
        max_batch: int = 256,
        max_wait: float = 0.0,
        writers: int = 1,
        max_pending: int = 4096,
    ) -> None:
        self._log = log
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.SimpleQueue[_Save | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"dobby-group-commit-{number}", daemon=True)
            for number in range(writers)
        ]
        self._closed = False
        self.batches = 0
        self.saves = 0
        for thread in self._threads:
            thread.start()

    def save(self, events: list[Any], timeout: float | None = None) -> int:
        """Record `events` atomically (with whatever else is being saved now); the position of the last one.

        After `timeout` a save still waiting in the queue is withdrawn (CommitTimeoutError, nothing written); one
        already being written is waited for, since the database's own timeouts bound it."""
        answer = self.submit(events)
        try:
            return answer.result(timeout)
        except TimeoutError:
            if answer.cancel():
                raise CommitTimeoutError("the save waited too long for the database and was withdrawn") from None
            return answer.result()

    def submit(self, events: list[Any]) -> Future[int]:
        """Queue `events` for the next merged save; the future holds the position of the last one."""
        answer: Future[int] = Future()
        self._enqueue(_Save(events, answer))
        return answer

    def submit_async(self, events: list[Any]) -> asyncio.Future[int]:
        """`submit` for a caller on the running event loop: the answer comes back on that loop."""
        loop = asyncio.get_running_loop()
        request = _Save(events, loop=loop, waiter=loop.create_future())
        self._enqueue(request)
        assert request.waiter is not None
        return request.waiter

    def head_async(self) -> asyncio.Future[int]:
        """The log's head, read by the writer after its next batch and answered with it: an answer that writes
        nothing (a sampled-out trace) gets its position without a thread of its own or a round trip alone."""
        return self.submit_async([])

    def _enqueue(self, request: _Save) -> None:
        if self._closed:
            raise RuntimeError("the group committer is closed")
        if self._queue.qsize() >= self._max_pending:
            raise BackpressureError(f"{self._max_pending} saves are already waiting for the database")
        self._queue.put(request)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self._max_wait
            stop = False
            while len(batch) < self._max_batch:
                try:
                    remaining = deadline - time.monotonic()
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, queued: list[_Save]) -> None:
        batch = [request for request in queued if request.start()]
        if not batch:
            return
        self.batches += 1
        self.saves += len(batch)
        loops: dict[Any, list[Any]] = {}
        try:
            self._write(batch, loops)
        finally:
            for loop, answers in loops.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these answers any more
                    loop.call_soon_threadsafe(_settle_on_loop, answers)

    def _write(self, queued: list[_Save], loops: dict[Any, list[Any]]) -> None:
        batch = [request for request in queued if request.events]
        heads = [request for request in queued if not request.events]
        if batch:
            self._write_events(batch, loops)
        if heads:  # read after this batch's writes: at least every position acknowledged before they were asked
            try:
                head = self._log.recorder.max_notification_id() or 0
            except BaseException as error:
                for request in heads:
                    request.settle(None, error, loops)
            else:
                for request in heads:
                    request.settle(head, None, loops)

    def _write_events(self, batch: list[_Save], loops: dict[Any, list[Any]]) -> None:
        if len(batch) == 1:
            self._commit_one(batch[0], loops)
            return
        try:
            recordings = self._log.save(*(event for request in batch for event in request.events))
        except IntegrityError:
            for request in batch:
                self._commit_one(request, loops)
            return
        except BaseException as error:
            for request in batch:
                request.settle(None, error, loops)
            return
        offset = 0
        for request in batch:
            offset += len(request.events)
            request.settle(recordings[offset - 1].notification.id, None, loops)

    def _commit_one(self, request: _Save, loops: dict[Any, list[Any]]) -> None:
        try:
            recordings = self._log.save(*request.events)
        except BaseException as error:
            request.settle(None, error, loops)
        else:
            request.settle(recordings[-1].notification.id, None, loops)

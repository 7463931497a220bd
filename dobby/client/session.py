"""What the sync and async clients share: headers, the last write position carried into reads, and when an answer
is a refusal and a failure is worth sending again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from dobby.client.calls import Call
from dobby.client.errors import refusal

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
MAX_PAUSE_SECONDS = 5.0
Body = Mapping[str, Any]


class Session:
    """What both clients share: headers, the last write position, and the rules for answers and retries."""

    def __init__(self, token: str | None, actor: str | None, retries: int) -> None:
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        if token is not None:
            self.headers["authorization"] = f"Bearer {token}"
        if actor is not None:
            self.headers["x-actor"] = actor
        self.retries = retries
        self.position = 0
        """The log position of this client's last write: every read waits for the projections to reach it."""

    def arguments(self, call: Call[Any]) -> dict[str, Any]:
        params = dict(call.params)
        if call.read and self.position:
            params["min_position"] = str(self.position)
        content = None if call.body is None else msgspec.json.encode(call.body)
        return {"method": call.method, "url": call.path, "params": params, "content": content}

    def outcome(self, call: Call[T], response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise refusal(response)
        value = call.decode(response)
        position = getattr(value, "position", None)
        if not call.read and isinstance(position, int):
            self.position = max(self.position, position)
        return value

    def pause(self, call: Call[Any], attempt: int, failure: Exception | httpx.Response) -> float | None:
        """Seconds to wait before sending `call` again, or None to give up."""
        if not call.idempotent or attempt >= self.retries:
            return None
        backoff: float = min(0.2 * 2**attempt, MAX_PAUSE_SECONDS)
        if isinstance(failure, httpx.Response):
            if failure.status_code != 503:
                return None
            retry_after = refusal(failure).retry_after
            return backoff if retry_after is None else min(retry_after, MAX_PAUSE_SECONDS)
        return backoff

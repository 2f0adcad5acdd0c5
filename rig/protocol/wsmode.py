"""The server's rules of Responses API WebSocket mode, as a state machine with no I/O.

Like the protocol core of ``websockets``, :class:`WSModeRules` does nothing itself: a
server shell feeds it what happened (a client's ``response.create`` arrived, a response
ended, the connection reached its age) and it says what to do (start these responses,
refuse that one with this error, close now). The mock and the gateway share it, so both
answer the same sequence of client events the same way, and it is tested with plain
calls, without an event loop.

The rules (the WebSocket mode guide, developers.openai.com/api/docs/guides/websocket-mode):

* A ``response.create`` without ``stream_id`` runs on the connection's default lane,
  which takes one response at a time: a second one while the first is accepted and not
  finished is refused with :class:`~rig.protocol.errors.BusyError`
  (``conversation_already_has_active_response``).
* A ``stream_id`` names a lane: each lane runs its requests first in, first out, one at a
  time; different lanes run concurrently.
* At most ``max_in_flight`` (16) responses run at once per connection. As the API does,
  further creates are not refused but wait, in arrival order, until one ends.
* A connection takes at most ``max_streams`` (32) distinct named ``stream_id``s over its
  life (the default lane does not count; a lane that went idle still counts, as in the
  API); a create naming one more is refused with
  :class:`~rig.protocol.errors.StreamLimitError` (``websocket_stream_limit_reached``,
  ``param: stream_id``).
* At its maximum age a connection accepts no new responses: a create is refused with
  :class:`~rig.protocol.errors.ConnectionLimitError` (``websocket_connection_limit_reached``);
  the responses already accepted finish, then the shell sends that error as an ``error``
  event and closes with code 1000 and the code as reason (:data:`CLOSE_CODE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rig.protocol.errors import (
    CONNECTION_LIMIT_CODE,
    BusyError,
    ConnectionLimitError,
    StreamLimitError,
)

__all__ = [
    "CLOSE_CODE",
    "CLOSE_REASON",
    "MAX_IN_FLIGHT",
    "MAX_STREAMS",
    "WSModeRules",
    "connection_limit_error",
]

MAX_IN_FLIGHT = 16
"""Responses running at once on one connection (the API's figure)."""

MAX_STREAMS = 32
"""Distinct named ``stream_id``s one connection takes (the API's figure)."""

CLOSE_CODE = 1000
"""WebSocket close code at the maximum age: a normal closure."""

CLOSE_REASON = CONNECTION_LIMIT_CODE
"""WebSocket close reason at the maximum age."""

R = TypeVar("R")


def connection_limit_error(max_age_s: float) -> ConnectionLimitError:
    """The error a connection at its maximum age answers with (and sends before closing)."""
    return ConnectionLimitError(
        f"The WebSocket connection reached its maximum age of {max_age_s:g} seconds; "
        "open a new connection to continue."
    )


@dataclass(slots=True)
class _Lane(Generic[R]):
    """One lane's requests not yet started, and whether one is running."""

    waiting: list[R] = field(default_factory=list)
    """Lists, not deques, here and in :class:`WSModeRules`: they hold a request or two,
    and an empty deque weighs 760 bytes a connection where an empty list weighs 56."""
    running: bool = False
    ready: bool = False  # queued in WSModeRules._ready


class WSModeRules(Generic[R]):
    """One connection's lanes, in-flight count and age, fed events, answering decisions.

    ``R`` is whatever the shell wants handed back when a request may start (the parsed
    event and its size, say). Methods raise an :class:`~rig.protocol.errors.APIError`
    for a refusal; the shell sends it as an ``error`` event echoing the ``stream_id``.
    """

    def __init__(
        self, *, max_in_flight: int = MAX_IN_FLIGHT, max_streams: int = MAX_STREAMS
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_streams = max_streams
        self.in_flight = 0
        """Responses started and not yet ended."""
        self.expired_after: float | None = None
        """The maximum age, once it was reached (then no new responses are accepted)."""
        self._lanes: dict[str | None, _Lane[R]] = {}
        self._named = 0
        self._ready: list[str | None] = []  # lanes whose head waits for a slot
        self._queued = 0

    @property
    def expired(self) -> bool:
        """Whether the connection reached its maximum age."""
        return self.expired_after is not None

    @property
    def idle(self) -> bool:
        """No response running or waiting."""
        return self.in_flight == 0 and self._queued == 0

    @property
    def should_close(self) -> bool:
        """The connection reached its age and every accepted response ended: send
        :meth:`close_error` as an ``error`` event and close with :data:`CLOSE_CODE`."""
        return self.expired_after is not None and self.idle

    def close_error(self) -> ConnectionLimitError:
        """The error to send before closing at the maximum age."""
        return connection_limit_error(self.expired_after or 0.0)

    def create(self, request: R, stream_id: str | None) -> list[R]:
        """A ``response.create`` arrived: the requests to start now (this one, or none
        while it waits for its lane or a slot). Raises the refusal's error."""
        if self.expired_after is not None:
            raise connection_limit_error(self.expired_after)
        lane = self._lanes.get(stream_id)
        if lane is None:
            if stream_id is not None:
                if self._named >= self.max_streams:
                    raise StreamLimitError(
                        f"This connection already has {self.max_streams} streams; reuse a "
                        "stream_id or open another connection.",
                        param="stream_id",
                    )
                self._named += 1
            lane = self._lanes[stream_id] = _Lane()
        elif stream_id is None and (lane.running or lane.waiting):
            raise BusyError(
                "A response is already in progress on this connection; wait for "
                "response.completed or give each concurrent response a stream_id."
            )
        lane.waiting.append(request)
        self._queued += 1
        if not lane.running and not lane.ready:
            lane.ready = True
            self._ready.append(stream_id)
        return self._start()

    def done(self, stream_id: str | None) -> list[R]:
        """A started response of lane ``stream_id`` ended (completed, failed, refused
        after it started): the requests that may start now."""
        lane = self._lanes[stream_id]
        if not lane.running:
            raise ValueError(f"no response is running on lane {stream_id!r}")
        lane.running = False
        self.in_flight -= 1
        if lane.waiting and not lane.ready:
            lane.ready = True
            self._ready.append(stream_id)
        return self._start()

    def expire(self, max_age_s: float) -> bool:
        """The connection reached its maximum age; whether it should close now."""
        self.expired_after = max_age_s
        return self.should_close

    def _start(self) -> list[R]:
        started: list[R] = []
        ready = self._ready
        while ready and self.in_flight < self.max_in_flight:
            lane = self._lanes[ready.pop(0)]
            lane.ready = False
            started.append(lane.waiting.pop(0))
            lane.running = True
            self._queued -= 1
            self.in_flight += 1
        return started

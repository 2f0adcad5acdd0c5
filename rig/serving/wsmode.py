"""The asyncio shell of Responses API WebSocket mode that every server of the rig runs.

:class:`rig.protocol.wsmode.WSModeRules` decides (lanes, in-flight and stream limits, the
age limit); this shell does the I/O around it, the same for the mock and the gateway: the
receive loop, the message-size check, one task per accepted response, starting what the
rules release when a response ends, the age timer, draining, and the documented close
(the ``websocket_connection_limit_reached`` error event, then close code 1000). The age
limit can be jittered per connection (``max_age_jitter_s``: each connection's limit drawn
between ``max_age_s - max_age_jitter_s`` and ``max_age_s``, never beyond the limit). A
connection can also be dropped at once (:meth:`WSModeConnection.drop`: responses in
flight cut off, close code 1012), as a restarting server or a load balancer does. A server
subclasses :class:`WSModeConnection` with what differs: how a message is parsed, how a
response is produced, and what is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Generic, Protocol, TypeVar

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from rig.protocol.errors import APIError, PayloadTooLargeError, ServerError
from rig.protocol.wsmode import CLOSE_CODE, CLOSE_REASON, WSModeRules
from rig.serving.deadlines import Deadline, Deadlines

__all__ = ["DROP_CODE", "DROP_REASON", "Create", "LaneRelease", "WSModeConnection"]

DROP_CODE = 1012
"""WebSocket close code of a dropped connection: service restart (RFC 6455, IANA)."""
DROP_REASON = "connection dropped by the server"

log = logging.getLogger("rig.serving")


def _payload(message: Message) -> bytes | None:
    """A received ASGI message's payload as bytes; ``None`` for a disconnect."""
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    return text.encode() if text is not None else (message.get("bytes") or b"")


class Create(Protocol):
    """What a server makes of an accepted ``response.create``: at least its lane."""

    @property
    def stream_id(self) -> str | None:
        """The lane (``None``: the connection's default lane)."""
        ...


C = TypeVar("C", bound=Create)


class LaneRelease(Generic[C]):
    """A running response's hold on its lane: :meth:`release` frees it once (a response
    frees it after recording and before its terminal event, so a client that continues on
    the same lane as soon as it sees that event is never refused as busy), and remembers
    what the rules let start then, to be started after the terminal event was sent."""

    __slots__ = ("_ready", "_rules", "stream_id")

    def __init__(self, rules: WSModeRules[C], stream_id: str | None):
        self._rules = rules
        self.stream_id = stream_id
        self._ready: list[C] | None = None

    def release(self) -> None:
        """The lane is free (idempotent)."""
        if self._ready is None:
            self._ready = self._rules.done(self.stream_id)

    def ready(self) -> list[C]:
        """Release if not yet; what may start now."""
        self.release()
        assert self._ready is not None
        ready, self._ready = self._ready, []
        return ready


class WSModeConnection(Generic[C]):
    """One client WebSocket in Responses API WebSocket mode.

    Subclasses provide :meth:`parse` (a message as the server's :class:`Create`),
    :meth:`respond` (produce one response, freeing the lane with ``lane.release()`` before
    the terminal event), :meth:`send_error` (an ``error`` event), and may count with
    :meth:`received` and :meth:`crashed`.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_age_s: float,
        max_message_bytes: int,
        max_age_jitter_s: float = 0.0,
        deadlines: Deadlines | None = None,
    ):
        self.websocket = websocket
        self.deadlines = deadlines
        """The server's shared timers for the age limit (``None``: a loop timer)."""
        jitter = min(max(max_age_jitter_s, 0.0), max_age_s)
        self.max_age_s = max_age_s - random.uniform(0.0, jitter) if jitter else max_age_s
        """This connection's age limit (the server's, less its jitter)."""
        self.max_message_bytes = max_message_bytes
        self.rules: WSModeRules[C] = WSModeRules()
        self.tasks: set[asyncio.Task[None]] | None = None
        """The responses running (none yet: no set)."""
        self.closing = False
        """The documented close was sent: what still arrives is read and dropped."""
        self.gone = False
        """The client left: start nothing more."""

    # -- what a server provides -------------------------------------------------------

    def parse(self, raw: bytes) -> C:
        """A client message as a create; raises the API's error."""
        raise NotImplementedError

    async def respond(self, create: C, lane: LaneRelease[C]) -> None:
        """Produce one response (errors it meets are sent by it, or raised as
        :class:`APIError`)."""
        raise NotImplementedError

    async def send_error(self, error: APIError, stream_id: str | None = None) -> None:
        """Send ``error`` as an ``error`` event (echoing ``stream_id``)."""
        raise NotImplementedError

    def received(self, size: int) -> None:
        """A client message of ``size`` bytes arrived."""

    def crashed(self) -> None:
        """A response failed on a bug (logged, answered with a ``server_error``)."""

    # -- the shell --------------------------------------------------------------------

    async def run(self) -> None:
        """Read messages until the client leaves; cancel what still runs then. The
        handshake's headers are let go first (the scope's list emptied, what uvicorn, the
        framework and the server all read): a server takes what it needs of them before
        the connection runs, and an idle connection does not keep 1 KB of them."""
        headers = self.websocket.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()
        # A timer, not a sleeping task: a task and its frame per idle connection weigh
        # kilobytes at 10,000 connections (and a shared one, not a loop timer: 0.5 KB).
        expiry: Deadline | asyncio.TimerHandle
        if self.deadlines is not None:
            expiry = self.deadlines.call_later(self.max_age_s, self._expire)
        else:
            expiry = asyncio.get_running_loop().call_later(self.max_age_s, self._expire)
        try:
            while True:
                raw = _payload(await self.websocket.receive())
                if raw is None:
                    return
                self.received(len(raw))
                if not self.closing:
                    await self.handle(raw)
                # An idle connection keeps no copy of its last message while it waits.
                del raw
        except WebSocketDisconnect:
            return
        finally:
            self.gone = True
            expiry.cancel()
            for task in list(self.tasks or ()):
                task.cancel()

    async def handle(self, raw: bytes) -> None:
        """One client message: refuse it, or hand it to the rules and start what they say."""
        limit = self.max_message_bytes
        stream_id: str | None = None
        try:
            if len(raw) > limit:
                raise PayloadTooLargeError(
                    f"Message of {len(raw)} bytes exceeds the limit of {limit}."
                )
            create = self.parse(raw)
            stream_id = create.stream_id
            ready = self.rules.create(create, stream_id)
        except APIError as error:
            await self.send_error(error, stream_id)
            return
        self._start(ready)

    def _start(self, creates: list[C]) -> None:
        if self.gone:
            return
        for create in creates:
            self._track(asyncio.ensure_future(self._run_one(create)))

    def _track(self, task: asyncio.Task[None]) -> None:
        """Hold ``task`` until it ends (cancelled if the client leaves first)."""
        tasks = self.tasks
        if tasks is None:
            tasks = self.tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_one(self, create: C) -> None:
        lane: LaneRelease[C] = LaneRelease(self.rules, create.stream_id)
        try:
            await self.respond(create, lane)
        except asyncio.CancelledError:
            raise
        except APIError as error:
            await self.send_error(error, lane.stream_id)
        except Exception:  # a bug must not take the connection down silently
            log.exception("response failed")
            self.crashed()
            with contextlib.suppress(Exception):
                failure = ServerError("The server had an error processing your request.")
                await self.send_error(failure, lane.stream_id)
        finally:
            self._start(lane.ready())
            if self.rules.should_close:
                await self._close()

    def _expire(self) -> None:
        if self.gone:
            return
        self._track(asyncio.ensure_future(self.drain(self.max_age_s)))

    async def drain(self, max_age_s: float | None = None) -> None:
        """Accept no new responses; the accepted ones finish, then the documented close.
        At the age limit ``max_age_s`` is the limit; a server shutting down passes none
        (the connection is treated as having reached its age now)."""
        age = self.max_age_s if max_age_s is None else max_age_s
        if self.rules.expire(age):
            await self._close()

    async def drop(self) -> bool:
        """Close now without the documented close: responses in flight are cut off, and
        the close code is :data:`DROP_CODE` (a server restarting, a load balancer dropping
        its connections). Whether the connection was still open."""
        if self.closing or self.gone:
            return False
        self.closing = self.gone = True  # start nothing more
        for task in list(self.tasks or ()):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.websocket.close(code=DROP_CODE, reason=DROP_REASON)
        return True

    async def _close(self) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send_error(self.rules.close_error())
            await self.websocket.close(code=CLOSE_CODE, reason=CLOSE_REASON)

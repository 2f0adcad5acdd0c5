"""``ws_mux``: many agent sessions of one worker on shared WebSocket connections.

Each session gets a lane (a ``stream_id``) on a connection of the run's pool, shared by
up to ``sessions_per_connection`` sessions (the option on its registry entry; the pool
lives on the run's :class:`~rig.loadgen.registry.TransportContext`). The server runs
lanes concurrently, each first in, first out, and echoes the ``stream_id`` in every event;
one greenlet per connection reads and hands each event to its lane's session, which
otherwise sends as the ``ws`` transport does (``store=false``, ``previous_response_id``
and the new items; a closed connection fails every session on it over to a new one, which
resends the full context and records ``reconnected``).

Bytes stay exact on a shared socket. A turn is charged its own frames: what its request
added to the socket (measured around the write) and, per event of its lane, the frame
that carried it (header plus payload; the server does not mask). What belongs to no lane
- the handshake, control frames, events of no waiting lane, extra headers of a fragmented
message - is the connection's remainder, charged to the next turn that ends on it (so the
handshake goes to the first turn); a connection that dies leaves its remainder to the
next turn that ends anywhere. Only whole frames are counted, never a frame still
arriving, so the turns' bytes add up to the sockets' counters exactly (a close after
the last turn is on the counters but in no turn: unlike a ``ws`` session's, the connection
is shared, and it closes with the run's pool, after every session's last turn).

A turn that attaches to a new connection (opening it, or waiting for another session's
handshake) records that time as its ``connect_ms``.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.event
import gevent.lock
from websockets.frames import Frame

from rig.errors import RigError
from rig.loadgen.dial import dial
from rig.loadgen.registry import TransportContext
from rig.loadgen.target import EndpointRotation, Target
from rig.loadgen.transports.base import (
    MAX_RECOVERIES,
    Transport,
    TurnInput,
    TurnOutcome,
    TurnTiming,
)
from rig.loadgen.wire import TcpInfo, WireCounter
from rig.loadgen.ws import WSConnection, WSProtocolError
from rig.protocol.client import TERMINAL, ResponsesStreamReader
from rig.protocol.sniff import stream_id
from rig.protocol.ws import encode_client_event

__all__ = ["MuxConnection", "MuxLane", "MuxPool", "MuxTransport", "server_frame_size"]

SHARED_KEY = "ws_mux"
"""The pool's key in the run's :class:`TransportContext`."""


def server_frame_size(payload: int) -> int:
    """Bytes of an unmasked (server-to-client) frame carrying ``payload`` bytes."""
    return payload + (2 if payload < 126 else 4 if payload < 65536 else 10)


class MuxConnectError(RigError, ConnectionError):
    """The shared connection a session was waiting for could not be opened."""


class _CountingConnection(WSConnection):
    """A WebSocket that also adds up the whole frames it has received (every frame
    through websockets' parser, where it is counted: no frame splitter)."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, split_frames=False, **kw)
        self.frame_bytes = 0

    def _collect(self, events: list[Frame]) -> bool:
        size = 0
        for event in events:
            n = len(event.data)
            size += n + (2 if n < 126 else 4 if n < 65536 else 10)
        self.frame_bytes += size
        return super()._collect(events)


class MuxLane:
    """One session's lane on a shared connection: its ``stream_id`` and the turn in
    flight on it (reader, clock, byte counter, and the event that wakes the session)."""

    __slots__ = ("connection", "counter", "done", "failure", "reader", "stream_id", "timing")

    def __init__(self, connection: MuxConnection, lane_id: str, counter: WireCounter):
        self.connection = connection
        self.stream_id = lane_id
        self.counter = counter
        self.reader: ResponsesStreamReader | None = None
        self.timing: TurnTiming | None = None
        self.done = gevent.event.Event()
        self.failure: BaseException | None = None

    def begin(self, reader: ResponsesStreamReader, timing: TurnTiming) -> None:
        """A request is about to go out on this lane."""
        self.reader, self.timing, self.failure = reader, timing, None
        self.done.clear()

    def deliver(self, message: bytes) -> None:
        """An event of this lane arrived (called by the connection's reader greenlet)."""
        reader, timing = self.reader, self.timing
        if reader is None or timing is None:
            return  # nobody waiting: the connection's remainder
        size = server_frame_size(len(message))
        self.connection.charged_recv += size
        self.counter.received += size
        marks = reader.feed_message(message)
        if marks:
            timing.mark(marks)
        if marks & TERMINAL:
            self.reader = self.timing = None
            self.done.set()

    def fail(self, exc: BaseException) -> None:
        """The connection died under the turn in flight."""
        if self.reader is not None:
            self.failure = exc
            self.reader = self.timing = None
            self.done.set()


class MuxConnection:
    """One shared WebSocket, its lanes, and the greenlet that reads it."""

    def __init__(self, pool: MuxPool, capacity: int):
        self.pool = pool
        self.capacity = capacity
        self.counter = WireCounter()
        self.lanes: dict[str, MuxLane] = {}
        self.sessions = 0
        self.next_lane = 0
        self.ws: _CountingConnection | None = None
        self.ready = gevent.event.Event()
        self.error: BaseException | None = None
        self.dead = False
        self.handshake_recv = 0
        self.charged_sent = 0
        self.charged_recv = 0
        self._send_lock = gevent.lock.Semaphore()
        self._reader: gevent.Greenlet | None = None

    def open(self, target: Target, timeout: float) -> None:
        """Connect (in the greenlet of the session that asked first) to the next of the
        target's URLs, and start reading."""
        pool = self.pool
        try:
            dialled = dial(pool.endpoints, self.counter, timeout=timeout, tls=pool.tls)
            ws = self.ws = _CountingConnection.handshake(
                dialled.wire, dialled.endpoint.ws_url, headers=target.auth_headers()
            )
        except BaseException as exc:
            self.error = exc
            self.fail(exc)
            raise
        finally:
            self.ready.set()
        self.handshake_recv = self.counter.received - ws.frame_bytes
        self._reader = gevent.spawn(self._read)

    def wait_ready(self) -> _CountingConnection:
        """The open WebSocket, once connected; the connect's failure otherwise."""
        self.ready.wait()
        if self.ws is None or self.dead:
            if isinstance(self.error, RigError | OSError):
                raise self.error
            raise MuxConnectError(f"the shared WebSocket could not be opened: {self.error!r}")
        return self.ws

    def attach(self, counter: WireCounter) -> MuxLane:
        """A new lane for a session."""
        self.next_lane += 1
        self.sessions += 1
        lane = MuxLane(self, f"s{self.next_lane}", counter)
        self.lanes[lane.stream_id] = lane
        return lane

    def detach(self, lane: MuxLane) -> None:
        """A session leaves its lane (events still arriving on it are remainder)."""
        if self.lanes.pop(lane.stream_id, None) is lane:
            lane.reader = lane.timing = None
            self.sessions -= 1

    def send(self, lane: MuxLane, payload: bytes) -> None:
        """Write a lane's request; charge the lane what it added to the socket."""
        ws = self.wait_ready()
        with self._send_lock:
            before = self.counter.sent
            try:
                ws.send_text(payload)
            finally:
                written = self.counter.sent - before
                self.charged_sent += written
                lane.counter.sent += written

    def settle(self, counter: WireCounter) -> None:
        """Charge ``counter`` (the turn that just ended here) the connection's remainder
        of whole frames, and what dead connections left."""
        framed_recv = self.handshake_recv + (self.ws.frame_bytes if self.ws else 0)
        sent = self.counter.sent - self.charged_sent
        recv = framed_recv - self.charged_recv
        self.charged_sent += sent
        self.charged_recv += recv
        counter.sent += sent + self.pool.orphan_sent
        counter.received += recv + self.pool.orphan_recv
        self.pool.orphan_sent = self.pool.orphan_recv = 0

    def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        lanes = self.lanes
        try:
            while True:
                for message in ws.receive():
                    lane = lanes.get(stream_id(message) or "")
                    if lane is not None:
                        lane.deliver(message)
        except (RigError, OSError) as exc:  # closed, reset, or an invalid frame
            self.fail(exc)
        except Exception as exc:  # never let the reader die with its lanes waiting
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """Closed (or never opened): fail the turns in flight over, leave the remainder."""
        if self.dead:
            return
        self.dead = True
        self.pool.forget(self)
        ws = self.ws
        if ws is not None:
            ws.abort()
            framed_recv = self.handshake_recv + ws.frame_bytes
        else:
            framed_recv = self.counter.received
        self.pool.orphan_sent += self.counter.sent - self.charged_sent
        self.pool.orphan_recv += framed_recv - self.charged_recv
        self.charged_sent, self.charged_recv = self.counter.sent, framed_recv
        for lane in list(self.lanes.values()):
            lane.fail(exc)

    def close(self) -> None:
        """Close the WebSocket (end of run) and stop reading."""
        self.dead = True
        if self._reader is not None:
            self._reader.kill()  # first: the close reads the server's answer itself
        if self.ws is not None:
            self.ws.close()

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the shared socket."""
        return self.ws.wire.tcp_info() if self.ws is not None and not self.dead else None


class MuxPool:
    """The run's shared connections to one target (one per run, on its context)."""

    def __init__(self, target: Target, timeout: float, endpoints: EndpointRotation):
        self.target = target
        self.timeout = timeout
        self.endpoints = endpoints
        """The run's round robin over the target's URLs (each new connection the next)."""
        self.tls = target.ssl_context()
        self.connections: list[MuxConnection] = []
        self.opened: list[MuxConnection] = []
        """Every connection the pool ever opened (for reconciling bytes)."""
        self.orphan_sent = 0
        self.orphan_recv = 0

    def attach(self, counter: WireCounter, capacity: int) -> MuxLane:
        """A lane on a connection with room, opening one when none has (the caller's
        greenlet connects; others joining it wait for the handshake)."""
        for connection in self.connections:
            if connection.sessions < connection.capacity and not connection.dead:
                lane = connection.attach(counter)
                connection.wait_ready()
                return lane
        connection = MuxConnection(self, capacity)
        self.connections.append(connection)
        self.opened.append(connection)
        lane = connection.attach(counter)
        connection.open(self.target, self.timeout)
        return lane

    def forget(self, connection: MuxConnection) -> None:
        """Take a dead connection out of the choice for new lanes."""
        if connection in self.connections:
            self.connections.remove(connection)

    def close(self) -> None:
        """Close every connection (end of run)."""
        for connection in self.connections:
            connection.close()
        self.connections = []


class MuxTransport(Transport):
    """WebSocket mode on a lane of a shared connection (``store=false``)."""

    name = "ws_mux"
    chained = True

    def __init__(
        self, target: Target, counter: WireCounter, *, sessions_per_connection: int = 8, **kw: Any
    ):
        super().__init__(target, counter, **kw)
        if sessions_per_connection < 1:
            raise ValueError("ws_mux: sessions_per_connection must be at least 1")
        self.sessions_per_connection = sessions_per_connection
        self._private = self.context is None
        context = self.context if self.context is not None else TransportContext()
        self._own_context = context if self._private else None
        self.pool: MuxPool = context.shared(
            SHARED_KEY, lambda: MuxPool(target, self.timeout, self.endpoints)
        )
        self.lane: MuxLane | None = None
        self._last_connection: MuxConnection | None = None

    def _lane(self, outcome: TurnOutcome) -> tuple[MuxLane, bool]:
        """This session's lane, and whether the conversation memory is still there (the
        same connection as the previous turn)."""
        lane = self.lane
        if lane is not None and not lane.connection.dead:
            return lane, True
        if lane is not None:
            lane.connection.detach(lane)
        self.lane = None
        lane = self.pool.attach(self.counter, self.sessions_per_connection)
        self.lane = lane
        same = self._last_connection is None or self._last_connection is lane.connection
        self._last_connection = lane.connection
        return lane, same

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        chained = True
        failure: BaseException | None = None
        for _ in range(MAX_RECOVERIES + 1):
            timing.sent()  # a connect (or waiting for one) counts toward the turn's time
            if self.lane is None or self.lane.connection.dead:
                lane, same = self._set_up(lambda: self._lane(outcome))
            else:
                lane, same = self._lane(outcome)
            if not same:
                outcome.retries += 1  # a new connection: the old one's memory is gone
                chained = False
            payload = encode_client_event(self._body(turn, chained), stream_id=lane.stream_id)
            reader = ResponsesStreamReader()
            lane.begin(reader, timing)
            connection = lane.connection
            began = time.perf_counter()
            try:
                connection.send(lane, payload)
                timing.uploaded(time.perf_counter() - began)
            except ConnectionError as exc:  # WSClosedError, or a reset
                connection.fail(exc)
                failure = exc
                continue
            outcome.body_bytes_sent += len(payload)
            try:
                lane.done.wait()
            finally:
                outcome.body_bytes_recv += reader.body_bytes
                connection.settle(self.counter)
            if isinstance(lane.failure, WSProtocolError):
                raise lane.failure  # the target broke the protocol: a new one would too
            if lane.failure is not None:
                failure = lane.failure
                continue  # the connection died under the turn: over to a new one
            outcome.apply(reader.result())
            if outcome.resend_in_full(chained):  # previous_response_not_found
                chained = False
                continue
            return
        outcome.status = "error"
        outcome.error = outcome.error or f"connection kept closing; gave up (last: {failure})"

    def _drop(self) -> None:
        """After a timeout or failure: leave the lane (its late events are remainder)."""
        if self.lane is not None:
            self.lane.connection.detach(self.lane)
            self.lane = None

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the shared socket (every lane's bytes)."""
        return self.lane.connection.tcp_info() if self.lane is not None else None

    def close(self) -> None:
        """Leave the lane; a private pool (no run context) closes its connection."""
        self._drop()
        if self._own_context is not None:
            self._own_context.close()

"""uvicorn's WebSocket protocol as the rig's servers run it: the API's 413 ``error`` event
before closing on a message beyond what the server reads, and one socket write per burst
of messages.

**Message limit.** A message is read whole before the app sees it, so the server bounds
what it reads (``ws_max_size``, :func:`ws_read_limit`): a frame that declares more is
refused from its header, unread. The app answers messages up to that bound and above its
``max_message_bytes`` with a 413 ``error`` event and keeps the connection; beyond it, the
connection cannot be kept (the rest of the message is unread on the wire), so this
protocol sends the same 413 event and then the close uvicorn sends (1009, message too big).

**Coalesced writes.** uvicorn writes each ``websocket.send`` to the socket at once: one
system call per message. A server relaying a stream sends many small messages in one step
of its task (every event of an upstream read; every event the mock has ready at once), so
this protocol frames each message when it is sent and writes what is framed once per
event-loop iteration (``call_soon``): the messages and their order are unchanged, the
write comes at the end of the step that sent them. Anything else uvicorn writes (a close,
a pong) takes the frames queued before it first, in order (the 413 event of an
unreadable message goes before them: it is written past the queue). Flow control is uvicorn's own:
a send waits while the transport is paused.

**Cheap frames.** A server's frames are unmasked, so a text message without an extension
(no ``permessage-deflate``) is a header of two, four or ten bytes before its UTF-8: this
protocol queues the header and the payload as they are, in the connection's own output
(where websockets' ``send_text`` would build a ``Frame`` and serialise it through a
buffer), and lets websockets frame anything else (extensions, a connection not open).

**Several messages in one send.** The protocol offers the ASGI extension
``rig.websocket.send_many`` (in the scope's ``extensions``): a message
``{"type": "rig.websocket.send_many", "texts": [bytes, ...]}`` sends each element as one
text message, in order, as that many ``websocket.send`` would (each element is the UTF-8
of one message, not checked again: the app vouches for it). A relay with several events
ready sends them in one call instead of one coroutine per event.

**Memory per idle connection.** At 10,000 connections every kilobyte a connection keeps
while it waits is 10 MB. websockets' parser holds its last frame until the next one
arrives, and its handshake request for the connection's life: the frame's payload and the
request's headers are released once handed on. The handshake's response is dropped once
sent. The protocol waits on a list and a future (:class:`_Inbox`, :class:`_Gate`) where
uvicorn builds an ``asyncio.Queue`` and an ``asyncio.Event`` (four empty deques, 3 KB).
uvicorn's timers (the keepalive ping every ``ws_ping_interval``, its pong's deadline, the
close handshake's timeout) are kept on one :class:`rig.serving.deadlines.Deadlines` per
server instead of a loop timer each (about 0.6 KB a connection).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict, cast

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent, WebSocketSendEvent
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN

from rig.protocol.errors import PayloadTooLargeError, ws_error_event
from rig.protocol.ws import encode_server_event
from rig.serving.deadlines import Deadlines, TimedLoop

__all__ = [
    "SEND_MANY",
    "Keepalive",
    "ServerWSProtocol",
    "text_frame_header",
    "ws_keepalive",
    "ws_read_limit",
]

SEND_MANY = "rig.websocket.send_many"
"""The ASGI extension (and message type) of several text messages sent in one call."""

_DEADLINES = "rig_deadlines"
"""The attribute of uvicorn's ``ServerState`` (one a server, shared by its protocols)
holding the :class:`Deadlines` of every connection's timers."""


def _text_frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


_TABLED = 1024
_HEADERS = tuple(_text_frame_header(length) for length in range(_TABLED))
"""The headers of frames shorter than :data:`_TABLED` bytes (most relayed events, a
delta's is 150-300 bytes), looked up rather than built: a relay frames hundreds a turn."""


def text_frame_header(length: int) -> bytes:
    """The header of an unmasked, final, uncompressed text frame of ``length`` bytes."""
    return _HEADERS[length] if length < _TABLED else _text_frame_header(length)


def ws_read_limit(max_message_bytes: int) -> int:
    """The largest WebSocket message the server reads (and answers with a 413 event while
    keeping the connection): twice ``max_message_bytes``, at least 1 MiB."""
    return max(max_message_bytes * 2, 1 << 20)


class Keepalive(TypedDict):
    """uvicorn's keepalive settings (``uvicorn.Config`` keywords)."""

    ws_ping_interval: float | None
    ws_ping_timeout: float | None


def ws_keepalive(interval_s: float, timeout_s: float) -> Keepalive:
    """uvicorn's keepalive settings: a ping every ``interval_s`` (0: no pings), and the
    connection closed with 1011 when its pong is ``timeout_s`` late (0: never; uvicorn
    would read 0 as closing at once)."""
    return Keepalive(
        ws_ping_interval=interval_s if interval_s > 0 else None,
        ws_ping_timeout=timeout_s if timeout_s > 0 else None,
    )


class _Inbox:
    """What uvicorn uses of ``asyncio.Queue`` for the messages a connection received
    (``put_nowait``, ``get``, ``empty``), as a list and the futures of its waiting readers
    (uvicorn reads it from one task)."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        self._wake()

    async def get(self) -> ASGIReceiveEvent:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
                if self._items:  # a reader woken and then cancelled passes it on
                    self._wake()
        return self._items.pop(0)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Gate:
    """What uvicorn uses of ``asyncio.Event`` for its transport's flow control (``set``,
    ``clear``, ``is_set``, ``wait``), without a deque until a sender waits."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> None:
        if self._open:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class ServerWSProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with the 413 ``error`` event before a 1009,
    the messages sent in one step written at once, and less kept per idle connection."""

    _flush_scheduled = False

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = cast(Any, _Inbox())
        self.writable = cast(Any, _Gate())
        # uvicorn's timers (the keepalive ping, its pong's deadline, the close handshake's
        # timeout) on the server's shared deadlines (uvicorn's per-server state).
        deadlines = getattr(server_state, _DEADLINES, None)
        if deadlines is None:
            deadlines = Deadlines()
            setattr(server_state, _DEADLINES, deadlines)
        self.loop = cast(Any, TimedLoop(self.loop, deadlines))

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # set only when the handshake goes on
        if scope is not None:  # the app's task is created, not yet run
            scope["extensions"][SEND_MANY] = {}
        # The scope holds the headers now; websockets' parser keeps the request for the
        # connection's life.
        event.headers.clear()

    def handle_text(self, event: Frame) -> None:
        super().handle_text(event)
        event.data = b""  # handed on (websockets' parser holds the frame until the next)

    def handle_bytes(self, event: Frame) -> None:
        super().handle_bytes(event)
        event.data = b""

    def handle_cont(self, event: Frame) -> None:
        super().handle_cont(event)
        event.data = b""

    async def send(self, message: ASGISendEvent) -> None:
        kind = message["type"]
        if kind != "websocket.send" and kind != SEND_MANY:
            await super().send(message)
            if kind == "websocket.accept" and self.handshake_complete:
                self.__dict__.pop("response", None)  # answered: nothing reads it again
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent or self.initial_response is not None:
            if kind == SEND_MANY:
                for text in message["texts"]:  # type: ignore[typeddict-item]
                    await super().send({"type": "websocket.send", "text": text.decode()})
                return
            await super().send(message)  # uvicorn's own answer to a send out of place
            return
        conn = self.conn
        # Framed here only where websockets would add nothing: no extension, no debug
        # log, the connection open, no fragmented message in progress. Otherwise its
        # send_text frames it (or raises what it raises).
        plain = not (
            conn.extensions
            or conn.debug
            or conn.state is not OPEN
            or conn.expect_continuation_frame
        )
        try:
            if kind == SEND_MANY:
                texts: list[bytes] = message["texts"]  # type: ignore[typeddict-item]
                if plain:
                    append = conn.writes.append
                    headers = _HEADERS
                    for text in texts:
                        length = len(text)
                        append(headers[length] if length < _TABLED else _text_frame_header(length))
                        append(text)
                else:
                    for text in texts:
                        conn.send_text(text)
            else:
                single = cast(WebSocketSendEvent, message)
                data = single.get("bytes")
                if data is not None:
                    conn.send_binary(data)
                else:
                    text = single.get("text")
                    if text is not None:
                        payload = text.encode()
                        if plain:
                            conn.writes.append(text_frame_header(len(payload)))
                            conn.writes.append(payload)
                        else:
                            conn.send_text(payload)
        except InvalidState:
            raise ClientDisconnected() from None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write every frame queued since the last write (none if another write took them)."""
        self._flush_scheduled = False
        output = self.conn.data_to_send()
        if output and not self.transport.is_closing():
            self.transport.write(b"".join(output))

    def handle_parser_exception(self) -> None:
        close = self.conn.close_sent
        if close is not None and close.code == CloseCode.MESSAGE_TOO_BIG:
            limit = self.config.ws_max_size
            error = PayloadTooLargeError(
                f"Message exceeds the largest message this server reads ({limit} bytes); "
                "the connection is closed."
            )
            payload = encode_server_event(ws_error_event(error))
            # Unmasked and uncompressed (valid with permessage-deflate: RSV1 unset).
            self.transport.write(Frame(Opcode.TEXT, payload).serialize(mask=False))
        super().handle_parser_exception()

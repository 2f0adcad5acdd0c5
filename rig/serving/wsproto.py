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
"""

from __future__ import annotations

from typing import TypedDict

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import CloseCode, Frame, Opcode

from rig.protocol.errors import PayloadTooLargeError, ws_error_event
from rig.protocol.ws import encode_server_event

__all__ = ["Keepalive", "ServerWSProtocol", "ws_keepalive", "ws_read_limit"]


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


class ServerWSProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with the 413 ``error`` event before a 1009
    and the messages sent in one step written at once."""

    _flush_scheduled = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] != "websocket.send":
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent or self.initial_response is not None:
            await super().send(message)  # uvicorn's own answer to a send out of place
            return
        try:
            data = message.get("bytes")
            if data is not None:
                self.conn.send_binary(data)
            else:
                text = message.get("text")
                if text is not None:
                    self.conn.send_text(text.encode())
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

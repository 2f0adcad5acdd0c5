"""uvicorn's WebSocket protocol with one change: a message beyond what the server reads gets
the API's 413 ``error`` event before the close.

A message is read whole before the app sees it, so the server bounds what it reads
(``ws_max_size``, :func:`ws_read_limit`): a frame that declares more is refused from its
header, unread. The app answers messages up to that bound and above ``--max-message-bytes``
with a 413 ``error`` event and keeps the connection; beyond it, the connection cannot be
kept (the rest of the message is unread on the wire), so this protocol sends the same 413
event and then the close uvicorn sends (1009, message too big).
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode, Frame, Opcode

from rig.protocol.errors import PayloadTooLargeError, ws_error_event
from rig.protocol.ws import encode_server_event

__all__ = ["MessageLimitProtocol", "ws_read_limit"]


def ws_read_limit(max_message_bytes: int) -> int:
    """The largest WebSocket message the server reads (and answers with a 413 event while
    keeping the connection): twice ``max_message_bytes``, at least 1 MiB."""
    return max(max_message_bytes * 2, 1 << 20)


class MessageLimitProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with the 413 ``error`` event before a 1009."""

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

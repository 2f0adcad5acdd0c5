"""A WebSocket client connection: websockets' sans-I/O protocol over a WireSocket.

The protocol object does the handshake and framing (masking, fragmentation, control
frames); this module moves bytes between it and the counting socket, so handshake bytes
and frame overhead are counted like everything else. Reads wait without a timeout of their
own: the caller bounds the exchange (a transport sets one deadline per turn).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Close, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from rig.loadgen.wire import TLSWireSocket, WireCounter, WireSocket, open_wire

__all__ = ["WSClosedError", "WSConnection", "WSHandshakeError"]


class WSHandshakeError(ConnectionError):
    """The server refused the upgrade; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"WebSocket handshake refused with HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class WSClosedError(ConnectionError):
    """The connection closed; ``code`` and ``reason`` are the close frame's, if any."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"WebSocket closed (code {code}, reason {reason!r})")
        self.code = code
        self.reason = reason


class WSConnection:
    """One open WebSocket: send text messages, receive whole messages."""

    def __init__(self, wire: WireSocket | TLSWireSocket, protocol: ClientProtocol):
        self.wire = wire
        self.protocol = protocol
        self._pending: list[bytes] = []

    @classmethod
    def connect(
        cls,
        url: str,
        counter: WireCounter,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        tls: ssl.SSLContext | None = None,
        max_size: int | None = 64 * 1024 * 1024,
    ) -> WSConnection:
        """Open ``ws://`` or ``wss://`` ``url`` and complete the handshake (``timeout``
        bounds the TCP connect; the caller bounds the rest)."""
        uri = parse_uri(url)
        if uri.secure and tls is None:
            tls = ssl.create_default_context()
        wire = open_wire(
            uri.host, uri.port, counter, timeout=timeout, tls=tls if uri.secure else None
        )
        protocol = ClientProtocol(uri, max_size=max_size)
        request = protocol.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        protocol.send_request(request)
        connection = cls(wire, protocol)
        try:
            connection._flush()
            connection._await_handshake()
        except BaseException:
            wire.close()
            raise
        return connection

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.wire.sendall(data)

    def _read(self) -> bool:
        data = self.wire.recv()
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # pongs, close acknowledgements
        return bool(data)

    def _await_handshake(self) -> None:
        while True:
            done = False
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    error = self.protocol.handshake_exc
                    if isinstance(error, InvalidStatus):
                        response = error.response
                        raise WSHandshakeError(response.status_code, response.body or b"")
                    if error is not None:
                        raise WSHandshakeError(event.status_code, event.body or b"") from error
                    done = True
                elif event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._pending.append(event.data)  # arrived with the handshake response
            if done:
                return
            if not self._read():
                raise InvalidHandshake("connection closed during the WebSocket handshake")

    def send_text(self, payload: bytes) -> None:
        """Send one text message (``payload`` is UTF-8)."""
        self.protocol.send_text(payload)
        self._flush()

    def recv(self) -> bytes:
        """The next whole message's payload; :class:`WSClosedError` once closed."""
        while not self._pending:
            for event in self.protocol.events_received():
                if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._pending.append(event.data)
            if self._pending:
                break
            if self.protocol.state is State.CLOSED:
                raise self._closed()
            if not self._read() and not self._pending:
                self._drain_events()
                if not self._pending:
                    raise self._closed()
        return self._pending.pop(0)

    def _drain_events(self) -> None:
        for event in self.protocol.events_received():
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._pending.append(event.data)

    def _closed(self) -> WSClosedError:
        close: Close | None = self.protocol.close_rcvd
        return WSClosedError(close.code if close else None, close.reason if close else "")

    @property
    def open(self) -> bool:
        """Whether the connection can still carry messages."""
        return self.protocol.state is State.OPEN

    def abort(self) -> None:
        """Drop the socket without a closing handshake (after a failure or a deadline: the
        peer may not be reading, and nothing more is wanted from it)."""
        self.wire.close()

    def close(self) -> None:
        """Start the closing handshake if open, then drop the socket."""
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
                self._flush()
        except OSError:
            pass
        finally:
            self.wire.close()

"""A WebSocket client connection: websockets' sans-I/O protocol over a WireSocket.

The protocol object does the handshake and framing (masking, fragmentation, control
frames); this module moves bytes between it and the counting socket, so handshake bytes
and frame overhead are counted like everything else. Reads wait without a timeout of their
own: the caller bounds the exchange (a transport sets one deadline per turn), and an
:class:`~rig.loadgen.idle.IdleWatch`, when given, hears of every read and write (the
stream idle timeout).

websockets' exceptions stay here: a refused upgrade is :class:`WSHandshakeError` (with the
status), an answer that is not a valid upgrade or a frame that breaks the protocol is
:class:`WSProtocolError` (saying what the target sent), and a connection that is closed or
closing is :class:`WSClosedError`. Closing reads the server's answer to the close frame
(bounded by :data:`CLOSE_WAIT_S`), so the closing handshake is counted both ways.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Self, cast

import gevent
from gevent.event import AsyncResult
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, InvalidStatus
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from rig.errors import RigError
from rig.loadgen.idle import IdleWatch
from rig.loadgen.readloop import ReadLoop
from rig.loadgen.wire import TLSWireSocket, WireCounter, WireSocket, open_wire
from rig.loadgen.wsframes import FrameSplitter

__all__ = ["WSClosedError", "WSConnection", "WSHandshakeError", "WSProtocolError"]

CLOSE_WAIT_S = 5.0
"""How long :meth:`WSConnection.close` waits for the server's answer to its close frame."""

SHOWN_BYTES = 80
"""How many of the target's first handshake bytes a :class:`WSProtocolError` quotes."""


class WSHandshakeError(RigError, ConnectionError):
    """The server refused the upgrade; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"WebSocket handshake refused with HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class WSProtocolError(RigError):
    """The target broke the WebSocket protocol: an invalid answer to the upgrade, or an
    invalid frame. Not a :class:`ConnectionError`: reconnecting to the same target would
    not help, so a transport fails the turn with this cause instead of recovering."""


def _cause(exc: BaseException) -> str:
    """websockets' exception and what caused it, as one phrase."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        text += f" ({cause or type(cause).__name__})"
    return text


class WSClosedError(RigError, ConnectionError):
    """The connection closed; ``code`` and ``reason`` are the close frame's, if any."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"WebSocket closed (code {code}, reason {reason!r})")
        self.code = code
        self.reason = reason


class WSConnection:
    """One open WebSocket: send text messages, receive whole messages."""

    def __init__(
        self,
        wire: WireSocket | TLSWireSocket,
        protocol: ClientProtocol,
        watch: IdleWatch | None = None,
        *,
        split_frames: bool = True,
    ):
        self.wire = wire
        self.protocol = protocol
        self.watch = watch
        """Hears of each read and write (the stream idle timeout), if given."""
        self._pending: list[bytes] = []
        self._fragments: list[bytes] = []
        self._handshake_start = b""
        """The first bytes of the answer to the upgrade (quoted when it is invalid)."""
        self._handshake = bytearray() if split_frames else None
        """Every byte of the answer to the upgrade, until it is complete."""
        self._frames: FrameSplitter | None = None
        """Takes the common frame without websockets' parser once the upgrade is done
        (:mod:`rig.loadgen.wsframes`)."""
        self._control = False
        """A control frame arrived since the caller last looked (:meth:`_collected`)."""

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
        deflate: bool = False,
    ) -> Self:
        """Open ``ws://`` or ``wss://`` ``url`` and complete the handshake (``timeout``
        bounds the TCP connect; the caller bounds the rest; ``deflate``: as
        :meth:`handshake`)."""
        uri = parse_uri(url)
        if uri.secure and tls is None:
            tls = ssl.create_default_context()
        wire = open_wire(
            uri.host, uri.port, counter, timeout=timeout, tls=tls if uri.secure else None
        )
        return cls.handshake(wire, url, headers=headers, max_size=max_size, deflate=deflate)

    @classmethod
    def handshake(
        cls,
        wire: WireSocket | TLSWireSocket,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = 64 * 1024 * 1024,
        watch: IdleWatch | None = None,
        deflate: bool = False,
    ) -> Self:
        """Upgrade ``wire``, a connection already open to ``url``'s host (one a caller
        chose among several, :mod:`rig.loadgen.dial`), to a WebSocket; ``wire`` is
        closed if the handshake fails. ``watch`` hears of each read and write.
        ``deflate``: offer permessage-deflate as Codex CLI does (websockets' client
        settings); a server that accepts it compresses every message, which websockets
        then reads (the frame splitter leaves compressed frames to it)."""
        try:
            extensions = enable_client_permessage_deflate(None) if deflate else None
            protocol = ClientProtocol(parse_uri(url), max_size=max_size, extensions=extensions)
            request = protocol.connect()
            for name, value in (headers or {}).items():
                request.headers[name] = value
            protocol.send_request(request)
            connection = cls(wire, protocol, watch)
            connection._flush()
            connection._await_handshake()
        except BaseException:
            wire.close()
            raise
        return connection

    def _flush(self) -> None:
        watch = self.watch
        for data in self.protocol.data_to_send():
            if data:
                if watch is not None:
                    watch.writing()
                self.wire.sendall(data)
                if watch is not None:
                    watch.heard()

    def _read(self) -> bool:
        """Read once and feed the protocol; whether the peer is still sending.

        :class:`WSProtocolError` when what arrived broke the protocol (after queueing the
        close frame the protocol answers with, which the caller need not send).
        """
        return self._take(self.wire.recv())

    def _take(self, data: bytes) -> bool:
        """Feed what one read returned (``b""``: the end of the stream); as :meth:`_read`."""
        if self.watch is not None:
            self.watch.heard()
        protocol = self.protocol
        frames = self._frames
        delivered = len(self._pending)
        if data:
            if frames is not None:
                frames.feed(data, self._pending, self._forward)
            else:
                if protocol.state is State.CONNECTING:
                    if len(self._handshake_start) < SHOWN_BYTES:
                        self._handshake_start += data[: SHOWN_BYTES - len(self._handshake_start)]
                    if self._handshake is not None:
                        self._handshake += data
                protocol.receive_data(data)
        else:
            if frames is not None:
                frames.eof(self._forward)
            protocol.receive_eof()
        error = protocol.parser_exc
        # An end of stream without a close frame is a closed connection (reported as such
        # by the caller); anything else the target sent broke the protocol.
        if (
            error is not None
            and protocol.state is not State.CONNECTING
            and not isinstance(error, EOFError)
        ):
            # As websockets alone: nothing of the read that broke the protocol is handed
            # over (its parser keeps such frames among the events nobody collects).
            del self._pending[delivered:]
            self._control = False
            raise WSProtocolError(f"the target sent an invalid WebSocket frame: {_cause(error)}")
        return bool(data)

    def _forward(self, data: bytes) -> None:
        """Give websockets' parser what the frame splitter does not take, and collect what
        it makes of it."""
        protocol = self.protocol
        protocol.receive_data(data)
        if self._collect(cast(list[Frame], protocol.events_received())):
            self._control = True

    def _collected(self) -> bool:
        """Collect the protocol's events; whether a control frame came since last asked."""
        control = self._collect(cast(list[Frame], self.protocol.events_received()))
        control, self._control = control or self._control, False
        return control

    def _collect(self, events: list[Frame]) -> bool:
        """Append the whole messages among ``events`` to the pending ones (assembling
        fragmented ones); whether any control frame, which may need an answer, was there."""
        control = False
        pending = self._pending
        for event in events:
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                data = cast(bytes, event.data)  # the protocol's reader makes bytes
                if event.fin:
                    pending.append(data)
                else:
                    self._fragments = [data]
            elif opcode is Opcode.CONT:
                self._fragments.append(cast(bytes, event.data))
                if event.fin:
                    pending.append(b"".join(self._fragments))
                    self._fragments = []
            else:
                control = True
        return control

    def _await_handshake(self) -> None:
        protocol = self.protocol
        while True:
            done = False
            frames: list[Frame] = []
            for event in protocol.events_received():
                if isinstance(event, Response):
                    error = protocol.handshake_exc
                    if isinstance(error, InvalidStatus):
                        response = error.response
                        raise WSHandshakeError(response.status_code, response.body or b"")
                    if error is not None:
                        raise WSProtocolError(
                            f"the target's answer to the WebSocket upgrade (HTTP "
                            f"{event.status_code}) is invalid: {_cause(error)}"
                        )
                    done = True
                elif isinstance(event, Frame):
                    frames.append(event)  # arrived with the handshake response
            self._collect(frames)
            if done:
                self._split_frames()
                self._flush()
                return
            error = protocol.handshake_exc
            if error is not None:  # no response could be parsed
                raise WSProtocolError(
                    "the target's answer to the WebSocket upgrade is not a valid HTTP "
                    f"response ({_cause(error.__cause__ or error)}); it began "
                    f"{self._handshake_start!r}"
                )
            if not self._read():
                raise WSProtocolError(
                    "the target closed the connection during the WebSocket handshake; it "
                    f"sent {self._handshake_start!r}"
                )

    def _split_frames(self) -> None:
        """The upgrade is done: take the common frame from here on, knowing where the
        frames that came with the answer (websockets has them) end."""
        answer, self._handshake = self._handshake, None
        if answer is None or self.protocol.state is not State.OPEN:
            return
        end = answer.find(b"\r\n\r\n")
        if end < 0:
            return  # (websockets parsed an answer: cannot happen; stay with websockets)
        self._frames = FrameSplitter(self.protocol, bytes(answer[end + 4 :]))

    def send_text(self, payload: bytes) -> None:
        """Send one text message (``payload`` is UTF-8); :class:`WSClosedError` when the
        connection is closing or closed."""
        try:
            self.protocol.send_text(payload)
        except InvalidState:
            raise self._closed() from None
        self._flush()

    def receive(self) -> list[bytes]:
        """Every whole message's payload that has arrived, in order, reading until there
        is at least one; :class:`WSClosedError` once closed and nothing is left.

        A streaming server's messages come a few per read: handing them over together
        saves a call per message, and the protocol's answers (pongs, close
        acknowledgements) are written only when a control frame asked for one.
        """
        protocol = self.protocol
        while not self._pending:
            if protocol.state is State.CLOSED:
                raise self._closed()
            more = self._read()
            control = self._collected()  # past the handshake: frames only
            if control or not more or protocol.state is not State.OPEN:
                self._flush()
            if not more and not self._pending:
                raise self._closed()
        messages, self._pending = self._pending, []
        return messages

    def stream(self, handle: Callable[[list[bytes]], bool]) -> None:
        """Hand ``handle`` every whole message as it arrives, a read's worth at a time,
        until it returns true (a response is over); :class:`WSClosedError` as
        :meth:`receive`. Messages past the one that ended it are ``handle``'s (a caller
        puts them back with :meth:`unreceive`).

        Over a plain socket the reads run in the process's
        :class:`~rig.loadgen.readloop.ReadLoop`, which calls ``handle`` from its own
        greenlet as bytes arrive (so ``handle`` must not wait), and the caller's greenlet
        waits once, until ``handle`` is done or something failed; a deadline thrown into
        the caller ends the wait. Over an emulated link or TLS, the caller's greenlet
        reads, as :meth:`receive`.
        """
        if self._pending:
            messages, self._pending = self._pending, []
            if handle(messages):
                return
        wire = self.wire
        if type(wire) is not WireSocket:  # shaped, or TLS: reads that wait
            while not handle(self.receive()):
                pass
            return
        if self.protocol.state is State.CLOSED:
            raise self._closed()
        loop = ReadLoop.current()
        fd = wire.sock.fileno()
        done = AsyncResult()

        def readable() -> None:
            try:
                data = wire.recv_ready()
                if data is None:
                    return
                protocol = self.protocol
                more = self._take(data)
                # The splitter collects what websockets parsed as it forwards it.
                control = self._collected() if self._frames is None else self._control
                self._control = False
                if control or not more or protocol.state is not State.OPEN:
                    self._flush()
                if self._pending:
                    messages, self._pending = self._pending, []
                    if handle(messages):
                        loop.remove(fd)
                        done.set(None)
                        return
                if not more or protocol.state is State.CLOSED:
                    raise self._closed()
            except BaseException as exc:  # to the waiting session, not the loop
                loop.remove(fd)
                done.set_exception(exc)

        loop.add(fd, readable)
        try:
            done.get()
        finally:
            loop.remove(fd)

    def unreceive(self, messages: list[bytes]) -> None:
        """Put back ``messages`` (the end of a :meth:`receive` the caller did not use):
        the next :meth:`receive` returns them first."""
        if messages:
            self._pending[:0] = messages

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

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close: if open, send a close frame (code 1000: 8 bytes with the mask) and read
        the server's answer (its close frame, 4 bytes) up to its end of stream (RFC 6455:
        the server closes the TCP connection first; over TLS its close_notify comes
        before), for at most ``wait_s`` seconds, so that every byte the server sends is
        counted; then drop the socket. Messages still arriving are read and discarded."""
        protocol = self.protocol
        try:
            if protocol.state is State.OPEN:
                protocol.send_close(1000)
                self._flush()
                with gevent.Timeout(wait_s, False):
                    while protocol.state is not State.CLOSED and self._read():
                        protocol.events_received()
        except (OSError, RigError):
            pass  # reset, or an invalid frame: nothing more is wanted from the peer
        finally:
            self.wire.close()

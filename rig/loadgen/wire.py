"""WireSocket: the one place the load generator's bytes are counted.

Every byte a transport writes to or reads from a TCP connection goes through a
:class:`WireSocket`, which adds it to the session's :class:`WireCounter`. Transports take
snapshots of the counter around a turn, so a turn's bytes are exactly what crossed the
socket for it: request line, headers, body, chunk framing, WebSocket frame headers and
masking, and, over TLS, the encrypted records (TLS is run above the counter with
``ssl.SSLObject``, so the counts match what the kernel sends). Link emulation plugs in
here too: with a session's :class:`~rig.loadgen.link.Link`, :func:`open_wire` waits the
TCP handshake and returns a :class:`ShapedWireSocket`, which writes when the link says the
bytes have left and hands over what it read when the link says it arrived (docs/links.md).
Without one, nothing of it runs.

Sockets are gevent sockets, cooperative with or without monkey-patching, so the same
code runs inside Locust and in a plain script. Reads and writes have no timeout of their
own once connected: a socket timeout makes gevent arm a timer for every read that waits,
so the caller bounds a whole exchange with one deadline instead (a transport, one
``gevent.Timeout`` per turn).
"""

from __future__ import annotations

import os
import select
import socket as stdlib_socket
import ssl
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.socket

from rig.loadgen.link import Departures, Link, LinkConnection, LinkReset

__all__ = [
    "ShapedWireSocket",
    "TLSWireSocket",
    "TcpInfo",
    "WireCounter",
    "WireSocket",
    "open_wire",
]

RECV_SIZE = 65536
PIECE_S = 0.25
"""How often, at most, a shaped write hands the kernel what has left (link time)."""


@dataclass(slots=True)
class WireCounter:
    """Bytes written and read by every connection of one session."""

    sent: int = 0
    received: int = 0

    def snapshot(self) -> tuple[int, int]:
        """``(sent, received)`` now; subtract two snapshots to get a turn's bytes."""
        return self.sent, self.received


@dataclass(frozen=True, slots=True)
class TcpInfo:
    """The kernel's own per-socket byte counters (Linux ``TCP_INFO``)."""

    bytes_acked: int
    bytes_received: int

    @property
    def payload_acked(self) -> int:
        """Payload bytes sent and acknowledged: Linux's ``bytes_acked`` also counts the
        acknowledgment of our SYN, which occupies one sequence number (``bytes_received``
        does not count the peer's)."""
        return self.bytes_acked - 1

    @classmethod
    def of(cls, sock: Any) -> TcpInfo:
        """The kernel's counters for ``sock`` (a connected TCP socket; Linux only)."""
        raw = sock.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_INFO, 256)
        fields = _TCP_INFO.unpack_from(raw)
        return cls(bytes_acked=fields[34], bytes_received=fields[35])


# struct tcp_info (linux/tcp.h): 8 u8 fields, 24 u32 fields, then u64 tcpi_pacing_rate,
# tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received, ...
_TCP_INFO = struct.Struct("8B24I4Q")


class WireSocket:
    """A connected TCP socket that counts every byte written and read."""

    __slots__ = ("_drained", "_fd", "_readable", "counter", "sock")

    def __init__(self, sock: gevent.socket.socket, counter: WireCounter):
        self.sock = sock
        self.counter = counter
        self._fd = sock.fileno()
        self._readable = gevent.get_hub().loop.io(self._fd, 1)
        self._drained = False

    def sendall(self, data: bytes | memoryview) -> None:
        """Write all of ``data``, counting each part the kernel takes as it takes it: a
        write cut short (a deadline, a reset) has counted what went on the wire."""
        sock, counter = self.sock, self.counter
        view = memoryview(data)
        while view:
            sent = sock.send(view)  # waits until the socket is writable
            counter.sent += sent
            view = view[sent:]

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """Read up to ``size`` bytes as soon as any arrive; ``b""`` when the peer closed.

        A read that returned less than asked for emptied the kernel's buffer, so the next
        one first waits until the socket is readable: one wake-up per arrival, where
        reading first would fail with ``EAGAIN`` (a raised exception and a wasted system
        call) and then wait. A full read goes straight to the socket, which likely has more.
        """
        if self._drained:
            gevent.socket.wait(self._readable)
        data = self.sock.recv(size)  # waits itself should the wake-up have been spurious
        self._drained = len(data) < size
        self.counter.received += len(data)
        return data

    def recv_ready(self, size: int = RECV_SIZE) -> bytes | None:
        """Read what the kernel holds now, without waiting (for a caller that knows the
        socket is readable: :class:`~rig.loadgen.readloop.ReadLoop`); ``None`` if nothing
        (a spurious wake-up), ``b""`` when the peer closed. Counted like :meth:`recv`."""
        try:
            data = os.read(self._fd, size)
        except BlockingIOError:
            return None
        self._drained = len(data) < size
        self.counter.received += len(data)
        return data

    def dropped(self) -> bool:
        """Whether an idle connection was closed by the peer (readable with nothing to
        read, or reset). Consumes nothing: an idle keep-alive connection has no data."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return False
        try:
            return self.sock.recv(1, stdlib_socket.MSG_PEEK) == b""
        except OSError:
            return True

    def close(self) -> None:
        """Close the connection."""
        self._readable.close()
        self.sock.close()

    def tcp_info(self) -> TcpInfo:
        """The kernel's counters for this socket (Linux only), the ground truth in tests."""
        return TcpInfo.of(self.sock)


class _Due(Exception):
    """The wait for more bytes ended: the oldest bytes held are due."""


def _sleep_until(due: float) -> None:
    wait = due - time.monotonic()
    if wait > 0:
        gevent.sleep(wait)


class ShapedWireSocket(WireSocket):
    """A :class:`WireSocket` over an emulated link (one :class:`LinkConnection`).

    ``sendall`` waits until the link has sent the bytes, then writes them. ``recv`` reads
    from the kernel as bytes come (so each read knows when the server sent it) and holds
    them until the link delivers them; while it holds some it keeps reading, so a stream
    is delayed, not batched. It waits on a timer or the socket, never in a loop. Bytes are
    counted when read from the kernel, as by :class:`WireSocket`.
    """

    __slots__ = ("_eof", "_held", "link")

    def __init__(self, sock: gevent.socket.socket, counter: WireCounter, link: LinkConnection):
        super().__init__(sock, counter)
        self.link = link
        self._held: deque[tuple[float, bytes | LinkReset]] = deque()
        """Bytes read but not yet delivered (or the reset that ends them), oldest first."""
        self._eof = False

    def sendall(self, data: bytes | memoryview) -> None:
        """Write all of ``data`` as the link sends it: each piece once its bytes have left
        (at most every :data:`PIECE_S` of the link's time), so that a write cut short has
        written, and counted, what left before (:class:`LinkReset` at the moment an
        outage resets the connection, after what left before it)."""
        now = time.monotonic()
        try:
            departures = self.link.departures(len(data), now)
        except LinkReset as exc:
            if exc.departures is not None:
                self._write_as_sent(data, exc.departures, now, exc.at)
            _sleep_until(exc.at)
            raise
        self._write_as_sent(data, departures, now, departures.done)

    def _write_as_sent(
        self, data: bytes | memoryview, departures: Departures, at: float, until: float
    ) -> None:
        """Write the bytes of ``data`` that leave from ``at`` to ``until``, each piece
        (of one segment at least) once it has left."""
        view, written, size = memoryview(data), 0, len(data)
        mss = self.link.link.profile.mss
        while written < size:
            at = min(at + PIECE_S, until)
            left = departures.left_by(at)
            last = at >= until
            if left - written >= mss or left == size or (last and left > written):
                _sleep_until(at)
                super().sendall(view[written:left])
                written = left
            if last:
                return

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """The next bytes the link delivers (at most ``size``); ``b""`` when the peer
        closed, delivered in turn."""
        held = self._held
        while True:
            if not held:
                if self._eof:
                    return b""
                self._pull(size)
                continue
            due, data = held[0]
            wait = due - time.monotonic()
            if wait <= 0:
                if isinstance(data, LinkReset):
                    raise data  # and stays held: the connection stays reset
                held.popleft()
                return data
            if self._eof:
                gevent.sleep(wait)
                continue
            try:  # until it is due, or more bytes come to be timed
                gevent.socket.wait(self._readable, timeout=wait, timeout_exc=_Due)
            except _Due:
                continue
            self._pull(size)

    def _pull(self, size: int) -> None:
        """Read what the kernel has now and hold it until the link delivers it."""
        data = self.sock.recv(size)
        now = time.monotonic()
        self.counter.received += len(data)
        try:
            due = self.link.receive(max(1, len(data)), now)  # a FIN travels as a packet
        except LinkReset as exc:
            self._held.append((exc.at, exc))
            return
        if not data:
            self._eof = True
        self._held.append((due, data))

    def dropped(self) -> bool:
        """Whether an idle connection was closed by the peer (bytes held: not idle)."""
        return not self._held and super().dropped()


class TLSWireSocket:
    """TLS over a :class:`WireSocket`: the counter sees the encrypted bytes."""

    __slots__ = ("_incoming", "_outgoing", "_tls", "wire")

    def __init__(self, wire: WireSocket, context: ssl.SSLContext, server_hostname: str):
        self.wire = wire
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._handshake()

    @property
    def counter(self) -> WireCounter:
        """The session's byte counter (of encrypted bytes)."""
        return self.wire.counter

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self.wire.sendall(pending)

    def _fill(self) -> bool:
        data = self.wire.recv()
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionError("connection closed during the TLS handshake") from None

    def sendall(self, data: bytes) -> None:
        """Encrypt and write all of ``data``."""
        view = memoryview(data)
        while view:
            written = self._tls.write(view)
            view = view[written:]
            self._flush()

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """Decrypted bytes, as soon as a record is complete; ``b""`` at end of stream."""
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def dropped(self) -> bool:
        """Whether the idle connection was closed by the peer (a TLS close_notify or
        a TCP close both make the socket readable while idle)."""
        return self.wire.dropped()

    def close(self) -> None:
        """Close the connection (without a TLS close_notify round trip)."""
        self.wire.close()

    def tcp_info(self) -> TcpInfo:
        """The kernel's counters for the underlying socket."""
        return self.wire.tcp_info()


def open_wire(
    host: str,
    port: int,
    counter: WireCounter,
    *,
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    link: Link | None = None,
) -> WireSocket | TLSWireSocket:
    """Connect to ``host:port`` (TLS when ``tls`` is given) with counting from the first byte.

    ``timeout`` bounds the TCP connect only (it raises :class:`TimeoutError`); afterwards
    the socket blocks without a timeout, and the caller sets the deadline. Over a ``link``
    the connect also waits the emulated handshake (within ``timeout``) and every read and
    write is shaped (:class:`ShapedWireSocket`).
    """
    sock = gevent.socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
    if link is None:
        wire = WireSocket(sock, counter)
    else:  # the kernel's handshake took no time: the link's takes a round trip
        began = time.monotonic()
        connection = link.connection()
        ready = connection.handshake(began)
        try:
            if ready - began > timeout:
                _sleep_until(began + timeout)
                raise TimeoutError(f"connecting over the {link.profile.name} link timed out")
            _sleep_until(ready)
        except BaseException:
            sock.close()
            raise
        wire = ShapedWireSocket(sock, counter, connection)
    if tls is None:
        return wire
    try:
        return TLSWireSocket(wire, tls, server_hostname=host)
    except BaseException:
        wire.close()
        raise

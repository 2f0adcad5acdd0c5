"""Misbehaving targets for the load generator's fault tests: real loopback TCP servers.

A :class:`MisbehavingServer` accepts connections on a free port, reads each request's head
(and its ``Content-Length`` body) and answers with whatever its ``answer`` function says:
garbage, a truncated or invalid status line, a bad WebSocket upgrade, nothing at all. It
runs in threads, so it serves a client in this process (gevent sockets) as well as a
``rig`` child process, and it counts the connections and requests it saw.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "NEVER",
    "Answer",
    "MisbehavingServer",
    "Request",
    "websocket_accept",
]

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Request:
    """One request the server read: its head, and which connection (from 0) carried it."""

    head: bytes
    connection: int

    @property
    def is_upgrade(self) -> bool:
        """Whether it asks for a WebSocket."""
        return b"upgrade: websocket" in self.head.lower()

    def header(self, name: str) -> str:
        """A header's value ('' when absent)."""
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return ""


class _Never:
    """Answer nothing, and keep the connection open until the server stops."""


NEVER = _Never()
Answer = Callable[[Request], "bytes | _Never"]
"""What to send for a request (bytes, then the server keeps reading; or :data:`NEVER`)."""


def websocket_accept(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value a correct server sends for ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


@dataclass
class MisbehavingServer:
    """A threaded loopback server answering every request with ``answer(request)``;
    ``close_after`` closes the connection after each answer."""

    answer: Answer
    close_after: bool = False
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _listener: socket.socket | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MisbehavingServer:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        assert self._listener is not None
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    @property
    def url(self) -> str:
        """The ``/v1`` base URL a target flag takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                request = Request(head, index)
                length = int(request.header("content-length") or 0)
                while len(buffer) < length:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                with self._lock:
                    self.requests.append(request)
                reply = self.answer(request)
                if isinstance(reply, _Never):
                    self._stopped.wait()
                    return
                sock.sendall(reply)
                if self.close_after:
                    return
        except OSError:
            return
        finally:
            sock.close()

"""One read loop per process: the streams in flight are read by one greenlet, in passes.

A greenlet that waits for each of its own reads pays, per read, the hub's wake-up, two
greenlet switches and its watcher's start and stop: about 9-10 µs a read on the bench
machine, against about 4 µs when one greenlet finds every ready socket with one
``epoll_wait`` and reads them all in one pass (``bench/readloop.py``). A streaming turn at
one token per delta takes some 200 reads, so that is most of what a `ws` turn costs the
load generator (docs/performance.md, "The read loop").

So a connection streaming a response registers its socket here with a handler
(:meth:`ReadLoop.add`); the loop's greenlet waits on an epoll set of its own (registered
once with gevent's hub, as one more file descriptor), and on each wake-up calls the
handler of every socket with bytes to read. The handler reads without waiting
(:meth:`rig.loadgen.wire.WireSocket.recv_ready`), counts, parses and timestamps what
arrived, and wakes the session's greenlet only when its turn is over (or failed): one
switch a turn instead of two a read. A session's deadlines (``gevent.Timeout``, the
stream idle watch) still go to its own greenlet, which removes its socket on the way out.

Handlers run in the loop's greenlet: they must not raise (a connection delivers its
failure to its session instead) and should not wait (a pong a server's ping asks for is
written from here; should the socket's buffer be full, the loop waits for it, and every
other stream with it). Level-triggered: a socket is reported while it has unread bytes,
so a handler that leaves some is called again on the next pass. The standard library's
``select.epoll`` is taken as it was before gevent's monkey-patching (which removes it,
since its ``poll`` blocks; this loop only polls with a zero timeout).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import gevent
import gevent.monkey
import gevent.socket

__all__ = ["ReadLoop"]

log = logging.getLogger(__name__)

_epoll: Any = gevent.monkey.get_original("select", "epoll")
_EPOLLIN: int = gevent.monkey.get_original("select", "EPOLLIN")
MAX_EVENTS = 8
"""Sockets read per pass at most; the rest are reported on the next pass (epoll puts the
ones it reported behind the others), after the hub has run its timers and the greenlets
due. A pass over every ready socket (1,024 at most) made a loop that kept up at 1,000
sessions block the hub for 30-100 ms at a time (lag p99 75 ms at half a core busy); 32 a
pass, 18 ms; 8, 5.5 ms at the same CPU per turn (docs/performance.md, "The read loop")."""


class ReadLoop:
    """The read loop of one gevent hub (one per thread; :meth:`current`)."""

    __slots__ = ("_epoll", "_greenlet", "_handlers")

    def __init__(self) -> None:
        self._epoll = _epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        self._greenlet: Any = None

    @classmethod
    def current(cls) -> ReadLoop:
        """The calling thread's loop (created on first use)."""
        hub = gevent.get_hub()
        loop: ReadLoop | None = getattr(hub, "rig_read_loop", None)
        if loop is None:
            loop = hub.rig_read_loop = cls()  # goes with the hub, and its thread
        return loop

    def __len__(self) -> int:
        return len(self._handlers)

    def add(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler`` whenever ``fd`` has bytes to read, until :meth:`remove`."""
        self._epoll.register(fd, _EPOLLIN)
        self._handlers[fd] = handler
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def remove(self, fd: int) -> None:
        """Stop reading ``fd`` (idempotent)."""
        if self._handlers.pop(fd, None) is not None:
            # Closed already: the kernel dropped it from the set.
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def _run(self) -> None:
        handlers = self._handlers
        poll = self._epoll.poll
        watcher = gevent.get_hub().loop.io(self._epoll.fileno(), 1)
        try:
            while handlers:
                gevent.socket.wait(watcher)
                for fd, _ in poll(0, MAX_EVENTS):
                    handler = handlers.get(fd)
                    if handler is None:
                        continue
                    try:
                        handler()
                    except Exception:  # a handler's bug: stop reading its socket, go on
                        log.exception("read loop handler failed; socket %d dropped", fd)
                        self.remove(fd)
        finally:
            watcher.close()
            self._greenlet = None

"""The stream idle timeout: an attempt ends when the target sends nothing for a while.

One :class:`IdleWatch` per transport, armed for each attempt: the connection modules tell
it when bytes arrive (:meth:`IdleWatch.heard`) and when the client itself is writing
(:meth:`IdleWatch.writing`: an upload on a slow link is not the target's silence). Reads
cost a clock read, not a timer: the watch arms one timer for the idle period, and when
it fires it looks at the time of the last byte; if bytes came since, it re-arms for what
is left, else it throws :class:`StreamIdleTimeout` into the waiting greenlet. A stream
that keeps talking re-arms the timer about once per idle period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent

from rig.errors import RigError

__all__ = ["IdleWatch", "StreamIdleTimeout"]


class StreamIdleTimeout(RigError, TimeoutError):
    """The target sent nothing for the stream idle timeout (``--stream-idle-timeout``)."""


class IdleWatch:
    """The idle deadline of one session's attempts (``idle_s`` seconds of silence)."""

    __slots__ = ("_busy", "_clock", "_greenlet", "_timer", "idle_s", "last")

    def __init__(self, idle_s: float, clock: Callable[[], float] = time.perf_counter):
        self.idle_s = idle_s
        self._clock = clock
        self.last = clock()
        """When the target was last heard from (or the client last finished writing)."""
        self._busy = False
        self._greenlet: Any = None
        self._timer: Any = None

    def heard(self) -> None:
        """Bytes arrived, or a write ended: the silence starts again now."""
        self.last = self._clock()
        self._busy = False

    def writing(self) -> None:
        """The client is writing: no silence is counted until :meth:`heard`."""
        self._busy = True

    def left(self) -> float:
        """Seconds of silence still allowed now (<= 0: the attempt has timed out)."""
        if self._busy:
            return self.idle_s
        return self.idle_s - (self._clock() - self.last)

    def start(self) -> None:
        """Watch the current greenlet's attempt, starting silent now."""
        self.stop()
        self._greenlet = gevent.getcurrent()
        self.heard()
        self._arm(self.idle_s)

    def stop(self) -> None:
        """The attempt is over."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        self._greenlet = None

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.close()
        self._timer = gevent.get_hub().loop.timer(max(seconds, 0.001))
        self._timer.start(self._expired, update=True)

    def _expired(self) -> None:
        greenlet = self._greenlet
        if greenlet is None:
            return
        left = self.left()
        if left > 0:
            self._arm(left)
            return
        # Re-armed first: should a handler swallow the exception, the watch goes on.
        self._arm(self.idle_s)
        greenlet.throw(
            StreamIdleTimeout(
                f"stream idle: no byte from the target for {self.idle_s:g} s "
                "(--stream-idle-timeout)"
            )
        )

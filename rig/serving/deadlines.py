"""Many one-shot timers on one event-loop timer, for what every idle connection waits on
(its age limit, its keepalive ping, its pong's deadline).

A loop timer (``loop.call_later``) costs about 0.55-0.6 KB a connection with uvloop (its
handle, the libuv timer and their references): at 10,000 idle connections with two timers
each, 12 MB. A :class:`Deadline` here is one small object in a heap; the heap's earliest
deadline is the only loop timer. Cancelled deadlines are dropped from the heap when they
reach its top, or all at once when they outnumber the live ones (so a server whose
connections come and go does not keep an hour of cancelled age limits).

Callbacks run in the order of their deadlines (those due together in the order they were
set), each on its own: one that raises is reported to the loop's exception handler, as a
loop timer's would be, and the others still run.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Any

__all__ = ["Deadline", "Deadlines", "TimedLoop"]

_RESOLUTION_S = 0.001
"""Deadlines due within this of the loop's clock run now (libuv's timers are in ms)."""

_COMPACT_MIN = 64
"""Cancelled deadlines are swept from the heap once there are more than this and more
than the live ones."""


class Deadline:
    """A callback due at a loop time; :meth:`cancel` before then and it never runs."""

    __slots__ = ("_owner", "_sequence", "callback", "when")

    def __init__(
        self, owner: Deadlines, when: float, sequence: int, callback: Callable[[], object]
    ):
        self._owner: Deadlines | None = owner
        self._sequence = sequence
        self.when = when
        self.callback: Callable[[], object] | None = callback

    def __lt__(self, other: Deadline) -> bool:
        if self.when != other.when:
            return self.when < other.when
        return self._sequence < other._sequence

    def cancel(self) -> None:
        """It will not run (nothing if it ran or was cancelled already)."""
        if self.callback is not None:
            self.callback = None
            if self._owner is not None:  # still in the heap
                self._owner._cancelled_one()

    def cancelled(self) -> bool:
        """It will not run: cancelled, or run already."""
        return self.callback is None


class Deadlines:
    """One-shot callbacks at loop times, on one loop timer of the running loop. One loop
    at a time: set from another loop (a server started again in a new one), the deadlines
    of the first are dropped (their loop is gone) and the new loop's are kept."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf
        self._cancelled = 0
        self._sequence = 0

    def __len__(self) -> int:
        """Deadlines held, cancelled ones not yet swept included."""
        return len(self._heap)

    @property
    def pending(self) -> int:
        """Deadlines that will still run."""
        return len(self._heap) - self._cancelled

    def call_at(self, when: float, callback: Callable[[], object]) -> Deadline:
        """Run ``callback`` at loop time ``when`` (at once if past)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._start_on(loop)
        self._sequence += 1
        deadline = Deadline(self, when, self._sequence, callback)
        heapq.heappush(self._heap, deadline)
        if when < self._armed_for:
            self._arm(when)
        return deadline

    def call_later(self, delay: float, callback: Callable[[], object]) -> Deadline:
        """Run ``callback`` ``delay`` seconds from now."""
        return self.call_at(asyncio.get_running_loop().time() + delay, callback)

    def _start_on(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for deadline in self._heap:
            deadline._owner = None
            deadline.callback = None
        self._heap = []
        self._cancelled = 0
        self._armed_for = math.inf
        self._loop = loop

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = math.inf
        loop = self._loop
        assert loop is not None
        heap = self._heap
        due: list[Deadline] = []
        now = loop.time() + _RESOLUTION_S
        while heap and heap[0].when <= now:
            deadline = heapq.heappop(heap)
            deadline._owner = None
            if deadline.callback is None:
                self._cancelled -= 1
            else:
                due.append(deadline)
        for deadline in due:  # those they set are in the heap, for the next timer
            callback = deadline.callback
            if callback is None:  # cancelled by one run before it
                continue
            deadline.callback = None
            try:
                callback()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                context: dict[str, Any] = {
                    "message": f"Exception in deadline callback {callback!r}",
                    "exception": exc,
                }
                loop.call_exception_handler(context)
        if heap and heap[0].when < self._armed_for:
            self._arm(heap[0].when)

    def _cancelled_one(self) -> None:
        self._cancelled += 1
        if self._cancelled > _COMPACT_MIN and 2 * self._cancelled > len(self._heap):
            self._heap = [deadline for deadline in self._heap if deadline.callback is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0


class TimedLoop:
    """An event loop as a protocol sees it, its ``call_later`` timers kept on shared
    :class:`Deadlines`; everything else is the loop's own."""

    __slots__ = ("_deadlines", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadlines: Deadlines):
        self._loop = loop
        self._deadlines = deadlines

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Deadline:
        if args:
            return self._deadlines.call_later(delay, lambda: callback(*args))
        return self._deadlines.call_later(delay, callback)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        return self._loop.call_soon(callback, *args)

    def time(self) -> float:
        return self._loop.time()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

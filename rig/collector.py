"""Python's garbage collector in a load-generator process (settled once the sessions are
spawned) and in the gateway (once it serves), and its pauses counted.

A process carrying a thousand sessions holds millions of tracked objects (transcripts,
records, connection state). CPython's cyclic collector stops every greenlet while it runs;
a full collection over that heap took 62-124 ms at 1,000 sessions (docs/performance.md),
and each one is a scheduling lag the rig would otherwise measure as the target's latency.
Most of the rig's objects are freed by reference counting the moment they are done with, so
a full collection walks a large heap to find little.

:func:`settle` is called when every user has been spawned: one collection, then
``gc.freeze()``, so what the spawn built (sessions, their simulated repositories, the
scenario and tool data) moves to the permanent generation that later collections skip, and
thresholds that make full collections rarer (:data:`THRESHOLDS`). Freezing is what Locust's
own ``--processes`` does before it forks, and what large Python services do after start.
The gateway settles its own the same way when it starts serving: a relayed read allocates
a few tracked objects per event, so CPython's thresholds ran a young collection every few
reads there and a full one over every held conversation every few hundred (5-9% of its CPU
in ``bench/gateway.py``'s CPU cell).

:class:`CollectorPauses` counts collections and their time by generation through
``gc.callbacks``; the benchmarks read it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT", "MODES", "THRESHOLDS", "CollectorPauses", "settle"]

DEFAULT = "default"
FREEZE = "freeze"
TUNED = "tuned"
MODES = (DEFAULT, FREEZE, TUNED)
"""``default``: the interpreter's own; ``freeze``: freeze after the spawn; ``tuned``: freeze
and :data:`THRESHOLDS` (what runs use)."""

THRESHOLDS = (10_000, 20, 100)
"""Generation 0 collected every 10,000 net allocations (CPython's 700 starts one after
every few streamed events), generation 1 after 20 of those, and a full collection after 100
of generation 1's (CPython: 10), still only when the heap has grown by a quarter since the
last one. Measured against the default in ``bench/loadgen_throughput.py --scale-gc``."""


def settle(mode: str = TUNED) -> None:
    """Collect once, then freeze what survived (``freeze``), and set :data:`THRESHOLDS`
    (``tuned``); ``default`` changes nothing."""
    if mode not in MODES:
        raise ValueError(f"unknown collector mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == DEFAULT:
        return
    gc.collect()
    gc.freeze()
    if mode == TUNED:
        gc.set_threshold(*THRESHOLDS)


class CollectorPauses:
    """Collections and their pause times by generation, from :meth:`start` to :meth:`stop`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = self.clock()
            return
        generation = int(info.get("generation", 0))
        pause_ms = (self.clock() - self._began) * 1000
        self.count[generation] += 1
        self.total_ms[generation] += pause_ms
        self.max_ms[generation] = max(self.max_ms[generation], pause_ms)

    def start(self) -> None:
        gc.callbacks.append(self)

    def stop(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def figures(self) -> dict[str, float]:
        """``gen{N}_count``, ``gen{N}_ms_total`` and ``gen{N}_ms_max`` for each generation."""
        out: dict[str, float] = {}
        for generation in range(3):
            out[f"gen{generation}_count"] = self.count[generation]
            out[f"gen{generation}_ms_total"] = round(self.total_ms[generation], 3)
            out[f"gen{generation}_ms_max"] = round(self.max_ms[generation], 3)
        return out

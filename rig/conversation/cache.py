"""A WebSocket connection's memory of its latest responses, one per lane.

WebSocket mode resolves ``previous_response_id`` first here, with ``store=false`` too, as
the API keeps the most recent response of each lane in connection-local memory. A
connection belongs to one caller (authenticated at the handshake), so its cache needs no
owner check.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from rig.conversation.store import StoredResponse

__all__ = ["ConnectionCache"]


@dataclass
class ConnectionCache:
    """A WebSocket connection's memory: the most recent response of each lane (the
    default lane is ``""``), bounded, least recently updated lane out first."""

    max_lanes: int = 64
    lanes: OrderedDict[str, tuple[str, StoredResponse]] = field(default_factory=OrderedDict)

    def get(self, response_id: str) -> StoredResponse | None:
        """The cached response ``response_id``, if it is the latest of some lane."""
        for cached_id, stored in self.lanes.values():
            if cached_id == response_id:
                return stored
        return None

    def put(self, lane: str, response_id: str, stored: StoredResponse) -> None:
        """Make ``response_id`` the latest response of ``lane``."""
        self.lanes[lane] = (response_id, stored)
        self.lanes.move_to_end(lane)
        while len(self.lanes) > self.max_lanes:
            self.lanes.popitem(last=False)

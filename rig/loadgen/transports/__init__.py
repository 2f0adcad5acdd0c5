"""The transports: how one agent turn travels to the target and back.

Each transport is a module of this package with one entry in
:mod:`rig.loadgen.registry` (which names its class as ``"module:Class"``):

| name           | module     | each turn sends                                          |
|----------------|------------|----------------------------------------------------------|
| ``http``         | ``http``     | Responses API over HTTP, the full ``input``, ``store=false`` |
| ``http_chained`` | ``http``     | HTTP, ``previous_response_id`` + new items, ``store=true``   |
| ``ws``           | ``ws``       | WebSocket mode, ``previous_response_id`` + new items         |
| ``ws_stored``    | ``ws``       | WebSocket mode, the same with ``store=true``                 |
| ``chat``         | ``chat``     | Chat Completions, the full ``messages``                      |
| ``ws_mux``       | ``ws_mux``   | WebSocket mode, sessions sharing connections by ``stream_id`` |

:mod:`~rig.loadgen.transports.base` holds what they share (the turn's input, outcome and
clock, the retry loop, :func:`make_transport`); bodies and answers go through
:mod:`rig.protocol.client`.
"""

from rig.loadgen.transports.base import (
    DEFAULT_RETRY,
    MAX_RECOVERIES,
    TRANSPORT_NAMES,
    Rejection,
    Transport,
    TurnInput,
    TurnOutcome,
    TurnTiming,
    make_transport,
)
from rig.loadgen.transports.chat import ChatTransport
from rig.loadgen.transports.http import HTTPTransport
from rig.loadgen.transports.ws import WSTransport

__all__ = [
    "DEFAULT_RETRY",
    "MAX_RECOVERIES",
    "TRANSPORT_NAMES",
    "ChatTransport",
    "HTTPTransport",
    "Rejection",
    "Transport",
    "TurnInput",
    "TurnOutcome",
    "TurnTiming",
    "WSTransport",
    "make_transport",
]

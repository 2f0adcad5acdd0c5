"""For tests that drive the official ``openai`` SDK's WebSocket mode against the mock or
the gateway."""

from __future__ import annotations

from typing import Any

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")
"""The events after which a response sends nothing more."""


def until_done(connection: Any) -> Any:
    """The next terminal event of a ``client.responses.connect()`` connection (the events
    before it are skipped); fails if the connection closes first."""
    for event in connection:
        if event.type in TERMINAL:
            return event
    raise AssertionError("the connection closed before the response ended")

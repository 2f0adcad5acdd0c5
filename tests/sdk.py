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


def check_rate_limit_passes_through(client: Any) -> None:
    """Through a gateway whose upstream allows one request a minute (``--rpm 1``): the
    first call answers; the next is the upstream's 429 with its ``retry-after``, over HTTP
    (the SDK's ``RateLimitError``) and over WebSocket (the ``error`` event, its headers in
    ``error.headers``)."""
    import openai
    import pytest

    client.responses.create(model="mock-agent", input="one")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="mock-agent", input="two")
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("retry-after")
    with client.responses.connect() as connection:
        connection.response.create(model="mock-agent", input="three", store=False)
        event = until_done(connection)
        assert event.type == "error" and event.status == 429
        assert event.error.code == "rate_limit_exceeded"
        assert event.error.headers.get("retry-after")

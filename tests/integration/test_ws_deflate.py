"""permessage-deflate on the mock's and the gateway's WebSockets, with the official openai
SDK: a client that offers it (as Codex CLI does; the SDK when its connection options ask for
``compression="deflate"``) gets it by default, and then the wire carries well under the
messages' bytes (the kernel's counts); ``--ws-deflate off`` refuses it; the SDK's default
(no offer) stays uncompressed. ``/stats`` counts the messages' bytes either way."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from rig.loadgen.wire import TcpInfo
from tests.servers import ManagedProcess, settled_stats, start_gateway, start_mock

TOOLS = [
    {
        "type": "function",
        "name": f"tool_{n}",
        "description": "Read a file of the workspace and return it with line numbers.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "from the root"}},
            "required": ["path"],
        },
    }
    for n in range(8)
]
"""Resent with every turn, as Codex resends its tools: what a compressor with context
takeover removes from the second turn on."""

TURNS = 4


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


def _kernel(connection: Any) -> TcpInfo:
    """The SDK's socket's TCP_INFO (its ``_connection`` is the websockets connection)."""
    sock: socket.socket = connection._connection.socket
    return TcpInfo.of(sock)


def _session(url: str, offer: bool) -> tuple[str | None, TcpInfo, list[str]]:
    """A WebSocket session of :data:`TURNS` turns through the SDK (offering permessage-deflate
    or not): the extension the server accepted, the kernel's counts before closing, each
    turn's final event type."""
    client = openai.OpenAI(base_url=url, api_key="sk-deflate-test-0001", max_retries=0)
    options: Any = {"compression": "deflate"} if offer else {}
    ends: list[str] = []
    try:
        with client.responses.connect(websocket_connection_options=options) as ws:
            accepted = ws._connection.response.headers.get("Sec-WebSocket-Extensions")
            previous = None
            new: Any = "the date helper is off by one month; " * 20
            for _ in range(TURNS):
                ws.response.create(
                    model="mock-agent",
                    previous_response_id=previous,
                    input=new,
                    tools=TOOLS,
                    store=False,
                )
                for event in ws:
                    if event.type in ("response.completed", "response.failed", "error"):
                        ends.append(event.type)
                        break
                if event.type != "response.completed":
                    continue
                previous = event.response.id
                outputs = [
                    {"type": "function_call_output", "call_id": item.call_id, "output": "ok\n" * 50}
                    for item in event.response.output
                    if item.type == "function_call"
                ]
                new = outputs or "go on"
            kernel = _kernel(ws)
    finally:
        client.close()
    return accepted, kernel, ends


def _app_bytes(url: str, before: dict[str, Any], names: tuple[str, str]) -> tuple[int, int]:
    after = settled_stats(url, before["responses_completed"] + TURNS)
    return after[names[0]] - before[names[0]], after[names[1]] - before[names[1]]


def _check(accepted: str | None, kernel: TcpInfo, app: tuple[int, int], deflate: bool) -> None:
    app_in, app_out = app
    sent, received = kernel.payload_acked, kernel.bytes_received
    assert app_in > 0 and app_out > 0
    if deflate:
        assert accepted is not None and accepted.startswith("permessage-deflate")
        # Handshake and frame headers included, the wire carries well under the messages.
        assert sent < app_in / 2, (sent, app_in)
        assert received < app_out / 2, (received, app_out)
    else:
        assert accepted is None
        assert sent > app_in, (sent, app_in)  # the handshake, masks and frame headers
        assert received > app_out, (received, app_out)


CASES = pytest.mark.parametrize(
    ("server", "offer"),
    [(True, True), (False, True), (True, False)],
    ids=["offered-default-on", "offered-off", "sdk-default-not-offered"],
)


@CASES
def test_the_mock_negotiates_deflate_when_offered_unless_told_not_to(
    server: bool, offer: bool
) -> None:
    args = ("--preset", "instant") + (() if server else ("--ws-deflate", "off"))
    process, url = start_mock(*args)
    try:
        before = settled_stats(url, 0)
        accepted, kernel, ends = _session(url, offer)
        assert ends == ["response.completed"] * TURNS
        app = _app_bytes(url, before, ("bytes_in", "bytes_out"))
        _check(accepted, kernel, app, server and offer)
    finally:
        process.stop()


@CASES
def test_the_gateway_negotiates_deflate_when_offered_unless_told_not_to(
    upstream: str, server: bool, offer: bool
) -> None:
    gateway: ManagedProcess
    gateway, url = start_gateway(upstream, *(() if server else ("--ws-deflate", "off")))
    try:
        before = settled_stats(url, 0)
        upstream_before = settled_stats(upstream, 0)
        accepted, kernel, ends = _session(url, offer)
        assert ends == ["response.completed"] * TURNS
        app = _app_bytes(url, before, ("client_bytes_in", "client_bytes_out"))
        _check(accepted, kernel, app, server and offer)
        # Upstream, the gateway still sends the whole context over plain HTTP each turn.
        upstream_after = settled_stats(upstream, upstream_before["responses_completed"] + TURNS)
        assert upstream_after["bytes_in"] - upstream_before["bytes_in"] > app[0]
    finally:
        gateway.stop()

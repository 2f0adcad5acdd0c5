"""Streamed answers of a real mock, read off a raw socket: the SSE events due at once (the
instant preset: all of them) arrive as one chunk of the chunked encoding with the end of
the body, a paced answer arrives as it is paced, and ``/stats`` counts exactly the body
bytes and events the client received."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from rig.protocol.sse import DONE, SSEDecoder
from tests.servers import start_mock


@pytest.fixture
def mock() -> Iterator[str]:
    """A mock of its own: the tests read its ``/stats``."""
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


@pytest.fixture
def paced_mock() -> Iterator[str]:
    """A mock with the ``fast`` preset: the output follows an 80 ms time to first token."""
    process, url = start_mock("--preset", "fast")
    yield url
    process.stop()


def _stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(url.removesuffix("/v1") + "/stats").json()
    return stats


def _post_raw(url: str, path: str, body: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """POST ``body`` over a fresh connection (closed by the request); the response head
    and the body's chunks of the chunked encoding, as sent (the terminator excluded)."""
    parts = urlsplit(url)
    payload = orjson.dumps(body)
    request = (
        f"POST {parts.path}{path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + payload
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return head, chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def test_an_instant_sse_answer_is_one_body_chunk_counted_exactly(mock: str) -> None:
    before = _stats(mock)
    head, chunks = _post_raw(
        mock, "/responses", {"model": "mock-agent", "input": "Say hello.", "stream": True}
    )
    after = _stats(mock)
    assert head.startswith(b"HTTP/1.1 200")
    lowered = head.lower()
    assert b"content-type: text/event-stream; charset=utf-8" in lowered
    assert b"cache-control: no-cache" in lowered
    assert b"transfer-encoding: chunked" in lowered
    assert len(chunks) == 1
    events = SSEDecoder().feed(chunks[0])
    names = [event.event for event in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    assert "response.output_text.delta" in names
    assert after["bytes_out"] - before["bytes_out"] == len(chunks[0])
    assert after["events_sent"] - before["events_sent"] == len(events)
    assert after["responses_completed"] - before["responses_completed"] == 1


def test_an_instant_chat_stream_ends_with_done_in_its_one_chunk(mock: str) -> None:
    before = _stats(mock)
    _, chunks = _post_raw(
        mock,
        "/chat/completions",
        {
            "model": "mock-agent",
            "messages": [{"role": "user", "content": "Say hello."}],
            "stream": True,
        },
    )
    after = _stats(mock)
    assert len(chunks) == 1
    body = chunks[0]
    assert body.endswith(DONE)
    events = SSEDecoder().feed(body)
    assert events[-1].data == b"[DONE]"
    assert orjson.loads(events[0].data)["object"] == "chat.completion.chunk"
    assert after["bytes_out"] - before["bytes_out"] == len(body)
    assert after["events_sent"] - before["events_sent"] == len(events) - 1  # [DONE] is not one


def test_a_paced_sse_answer_is_written_as_it_is_paced(paced_mock: str) -> None:
    before = _stats(paced_mock)
    _, chunks = _post_raw(
        paced_mock, "/responses", {"model": "mock-agent", "input": "Say hello.", "stream": True}
    )
    after = _stats(paced_mock)
    first = [event.event for event in SSEDecoder().feed(chunks[0])]
    assert first == ["response.created", "response.in_progress"]  # then the wait for TTFT
    body = b"".join(chunks)
    events = SSEDecoder().feed(body)
    assert events[-1].event == "response.completed"
    assert after["bytes_out"] - before["bytes_out"] == len(body)
    assert after["events_sent"] - before["events_sent"] == len(events)

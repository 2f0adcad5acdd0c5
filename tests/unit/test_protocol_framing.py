"""SSE and WebSocket framing, the type sniffer, and token pieces."""

from __future__ import annotations

import random
import re

import orjson
import pytest

from rig.protocol.errors import InvalidRequestError
from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.requests import parse_create_request
from rig.protocol.sniff import event_type, is_terminal, is_terminal_event
from rig.protocol.sse import (
    MAX_EVENT_BYTES,
    SSEDecoder,
    SSEEventTooLarge,
    SSEMessage,
    encode_data,
    encode_event,
)
from rig.protocol.tokens import estimate_tokens, split_tokens
from rig.protocol.ws import encode_client_event, parse_client_event


def _stream_events() -> list[dict]:
    stream = ResponseStream(parse_create_request({"model": "m", "input": "hi"}))
    events = [stream.created(), stream.in_progress(), *stream.message(["Hel", "lo", " ✓"])]
    return [*events, stream.completed(usage_object(1, 0, 3))]


def test_sse_round_trip_at_every_chunk_boundary() -> None:
    events = _stream_events()
    wire = b"".join(encode_event(e) for e in events)
    for size in (1, 2, 3, 7, 64, len(wire)):
        decoder = SSEDecoder()
        messages = []
        for start in range(0, len(wire), size):
            messages += decoder.feed(wire[start : start + size])
        assert [m.event for m in messages] == [e["type"] for e in events]
        assert [orjson.loads(m.data) for m in messages] == events
        assert decoder.pending == 0


def test_sse_decoder_follows_the_event_stream_rules() -> None:
    wire = b": keep-alive\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\nid: 5\nretry: 10\ndata:x\n\n\rdata: y\r\r"
    decoder = SSEDecoder()
    messages = []
    for i in range(len(wire)):
        messages += decoder.feed(wire[i : i + 1])
    assert messages == [SSEMessage("a", b"one\ntwo"), SSEMessage("", b"x"), SSEMessage("", b"y")]


def _decode_by_the_rules(stream: bytes) -> list[SSEMessage]:
    """The WHATWG event-stream rules, one line at a time, over a whole stream."""
    messages, event, data = [], "", []
    for line in re.split(rb"\r\n|\r|\n", stream)[:-1]:  # the last piece is unterminated
        if not line:
            if data:
                messages.append(SSEMessage(event, b"\n".join(data)))
            event, data = "", []
        elif not line.startswith(b":"):
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode()
    return messages


def test_sse_decoder_agrees_with_the_rules_on_random_streams_and_chunkings() -> None:
    rng = random.Random(7)
    lines = [
        b"event: response.output_text.delta", b"event:a", b"event: ", b"data: {\"x\":1}",
        b"data:y", b"data: ", b"data", b": comment", b"id: 3", b"retry: 5", b"", b"", b"",
    ]  # fmt: skip
    for _ in range(500):
        stream = b"".join(
            rng.choice(lines) + rng.choice((b"\n", b"\n", b"\r\n", b"\r"))
            for _ in range(rng.randint(0, 12))
        )
        decoder, got, at = SSEDecoder(), [], 0
        while at < len(stream):
            step = rng.choice((1, 2, 5, 17, len(stream)))
            got += decoder.feed(stream[at : at + step])
            at += step
        assert got == _decode_by_the_rules(stream), stream


def test_an_event_without_data_is_not_dispatched() -> None:
    assert SSEDecoder().feed(b"event: lonely\n\n") == []


@pytest.mark.parametrize("chunk_size", [1, 7, 512, 4096])
def test_an_event_split_into_many_chunks_costs_linear_work(chunk_size: int) -> None:
    # One 256 KiB event (then a small one) fed in small chunks: the bytes the decoder
    # copies stay within a small multiple of the input, whatever the chunk size (joining
    # the buffer again on every chunk copies about size^2 / (2 * chunk): 32 GiB at 1 B).
    payload = b"x" * (256 * 1024)
    wire = b"event: big\ndata: " + payload + b"\n\ndata: after\n\n"
    decoder = SSEDecoder()
    messages = []
    for start in range(0, len(wire), chunk_size):
        messages += decoder.feed(wire[start : start + chunk_size])
    assert messages == [SSEMessage("big", payload), SSEMessage("", b"after")]
    assert decoder.copied <= 3 * len(wire)
    assert decoder.pending == 0


def test_an_event_over_the_bound_without_an_end_is_refused_with_a_clear_error() -> None:
    assert MAX_EVENT_BYTES == 16 * 1024 * 1024  # the documented default
    decoder = SSEDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"x" * 494)  # 500 bytes held
    decoder.feed(b"x" * 500)  # 1000: at the bound, still held
    assert decoder.pending == 1000
    with pytest.raises(SSEEventTooLarge, match=r"more than 1,000 bytes \(1,001 so far\)"):
        decoder.feed(b"x")


def test_an_event_over_the_bound_in_one_chunk_is_refused_too() -> None:
    with pytest.raises(SSEEventTooLarge, match="without the blank line"):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 200)
    with pytest.raises(SSEEventTooLarge):  # even when it ends in the same chunk
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 200 + b"\n\n")
    assert SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 94 + b"\n\n")


def test_chat_chunks_are_bare_data_lines() -> None:
    assert encode_data({"a": 1}) == b'data: {"a":1}\n\n'


def test_sniffer_agrees_with_a_full_parse_on_every_event() -> None:
    for event in _stream_events():
        raw = orjson.dumps(event)
        assert event_type(raw) == orjson.loads(raw)["type"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"sequence_number":1,"type":"response.completed"}', "response.completed"),
        (b'{"type": "error", "error": {}}', "error"),
        (
            b'{"item":{"type":"message"},"type":"response.output_item.added"}',
            "response.output_item.added",
        ),
        (b'{"type":"a\\"b"}', 'a"b'),
        (b'{"no_type":1}', None),
        (b'{"type":3}', None),
        (b"not json", None),
        (b"[1,2]", None),
    ],
)
def test_sniffer_falls_back_and_never_guesses(raw: bytes, expected: str | None) -> None:
    assert event_type(raw) == expected


def test_terminal_types() -> None:
    assert (
        is_terminal("response.completed")
        and is_terminal("error")
        and is_terminal("response.failed")
    )
    assert not is_terminal("response.output_text.delta") and not is_terminal(None)


@pytest.mark.parametrize(
    "raw",
    [
        *(orjson.dumps(event) for event in _stream_events()),
        b'{"type":"error","error":{}}',
        b'{"type":"response.failed","response":{}}',
        b'{"type":"response.incomplete"}',
        b'{"type":"response.completed_soon"}',
        b'{"type": "response.completed"}',
        b'{"sequence_number":1,"type":"response.completed"}',
        b'{"type":"response.c\\u006fmpleted"}',
        b'{"type":"err\\"or"}',
        b'{"type":3}',
        b"not json",
    ],
)
def test_the_terminal_prefix_check_agrees_with_the_sniffer(raw: bytes) -> None:
    assert is_terminal_event(raw) == is_terminal(event_type(raw))


def test_client_event_encoding_drops_stream_and_keeps_the_lane() -> None:
    raw = encode_client_event({"model": "m", "stream": True, "input": "x"}, stream_id="s1")
    event = parse_client_event(raw)
    assert orjson.loads(raw)["type"] == "response.create"
    assert "stream" not in orjson.loads(raw)
    assert event.stream_id == "s1" and event.model == "m"


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (b"{oops", None, "invalid_json"),
        (b"[]", None, "invalid_type"),
        (b'{"model": "m"}', "type", "missing_required_parameter"),
        (b'{"type": "response.cancel"}', "type", "invalid_value"),
        (b'{"type": "response.create"}', "model", "missing_required_parameter"),
        (
            b'{"type": "response.create", "model": "m", "background": true}',
            "background",
            "unsupported_parameter",
        ),
        (
            b'{"type": "response.create", "model": "m", "stream_id": ""}',
            "stream_id",
            "invalid_value",
        ),
        (
            b'{"type": "response.create", "model": "m", "input": [{"type": "x"}]}',
            "input[0].type",
            "invalid_value",
        ),
    ],
)
def test_bad_client_events_are_named(raw: bytes, param: str | None, code: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_client_event(raw)
    assert caught.value.param == param
    assert caught.value.code == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain words here",
        "  indented\n\tcode();\r\n",
        "Äpfel über 42 naïve ✓ 日本",
        "x\x0by\x0c",
        "a" * 50,
    ],
)
def test_token_pieces_always_join_back_to_the_text(text: str) -> None:
    assert "".join(split_tokens(text)) == text
    grouped = split_tokens(text, per_piece=3)
    assert "".join(grouped) == text
    assert len(grouped) == -(-len(split_tokens(text)) // 3)


def test_token_estimate_is_four_bytes_per_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("é" * 4) == 2  # 8 UTF-8 bytes

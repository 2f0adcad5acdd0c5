"""The gateway's sans-I/O parts: Chat chunks into Responses events, upstream refusals into
the API's errors, the configuration, a Responses upstream's reads into event batches."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rig.gateway.chatrelay import ChatRelay
from rig.gateway.config import ConfigError, GatewayConfig, UpstreamConfig, parse_model_map
from rig.gateway.upstream import (
    DIALECTS,
    RelayedEvent,
    ResponseTemplates,
    UpstreamCall,
    UpstreamError,
    _patched,
    echoed_settings,
    upstream_refusal,
)
from rig.protocol.errors import RateLimitError
from rig.protocol.requests import parse_create_request


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_chat_chunks_become_the_numbered_responses_sequence() -> None:
    relay = ChatRelay(parse_create_request({"model": "m", "input": "hi"}), obfuscate=False)
    events = relay.start()
    events += relay.feed(_chunk({"role": "assistant", "content": "Hel"}))
    events += relay.feed(_chunk({"content": "lo"}))
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
    events += relay.feed(_chunk({"tool_calls": [call]}))
    events += relay.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}))
    events += relay.feed(_chunk({}, "tool_calls"))
    events += relay.feed({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
    events += relay.finish()
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == [
        "Hel",
        "lo",
    ]
    final = events[-1]
    assert final["type"] == "response.completed"
    message, function_call = final["response"]["output"]
    assert message["content"][0]["text"] == "Hello"
    assert (function_call["call_id"], function_call["arguments"]) == ("call_1", '{"a":1}')
    assert final["response"]["usage"]["input_tokens"] == 5


def test_a_chat_stream_cut_at_its_token_limit_is_incomplete() -> None:
    relay = ChatRelay(parse_create_request({"model": "m", "input": "hi"}))
    relay.start()
    relay.feed(_chunk({"content": "partial"}, "length"))
    assert relay.finish()[-1]["type"] == "response.incomplete"


def test_an_upstream_429_keeps_its_headers_and_kind() -> None:
    raw = b'{"error": {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}}'
    headers = {"retry-after": "2", "x-ratelimit-remaining-tokens": "0", "server": "x"}
    error = upstream_refusal(429, headers, raw)
    assert isinstance(error, RateLimitError)
    assert (error.status, error.type, error.message) == (429, "tokens", "slow down")
    assert error.headers == {"retry-after": "2", "x-ratelimit-remaining-tokens": "0"}


@pytest.mark.parametrize(
    ("status", "expected"), [(400, 400), (404, 404), (401, 502), (500, 502), (503, 502)]
)
def test_upstream_refusals_become_the_apis_error_shapes(status: int, expected: int) -> None:
    error = upstream_refusal(status, {}, b"not json")
    assert error.status == expected
    assert isinstance(error, UpstreamError) == (expected == 502)


def test_configuration_is_checked_and_routes_by_model() -> None:
    assert parse_model_map(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(ConfigError):
        parse_model_map(["nope"])
    with pytest.raises(ConfigError):
        UpstreamConfig("http://x/v1", dialect="grpc")
    default = UpstreamConfig("http://a/v1", model_map={"m": "upstream-m"})
    chat = UpstreamConfig("http://b/v1", dialect="chat", models=("llama",))
    config = GatewayConfig(upstreams=(default, chat))
    assert config.upstream_for("llama") is chat
    assert config.upstream_for("m") is default
    assert default.upstream_model("m") == "upstream-m" and default.upstream_model("x") == "x"


def _responses_stream() -> bytes:
    """A Responses stream as an upstream may write it: named events, one unnamed, a
    comment, CRLF line ends in one event, a reasoning item with encrypted content."""
    response: dict[str, Any] = {"id": "resp_1", "object": "response", "model": "up-model"}
    response |= {"store": False, "previous_response_id": None, "output": []}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**response, "status": "in_progress"}},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
        *({"type": "response.output_text.delta", "delta": f"é{n}"} for n in range(5)),
        {"type": "response.completed", "response": {**response, "output": [reasoning]}},
    ]
    blocks = [b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) for e in events]
    blocks[2] = b"data: " + orjson.dumps(events[2])  # unnamed: its JSON names it
    blocks[3] = blocks[3].replace(b"\n", b"\r\n")
    blocks[4] = b": a comment\n" + blocks[4]
    return b"\n\n".join(blocks) + b"\n\n"


def _read(chunks: list[bytes]) -> tuple[list[bytes], list[bytes], RelayedEvent | None]:
    call = UpstreamCall(
        parse_create_request({"model": "m", "input": "hi", "previous_response_id": "resp_0"}),
        {},
        b"[]",
    )
    reader = DIALECTS["responses"].events(call)
    kinds: list[bytes] = []
    datas: list[bytes] = []
    terminal = None
    for chunk in chunks:
        batch = reader.feed(chunk)
        if terminal is None and batch.terminal is not None:
            terminal = batch.terminal
        kinds += batch.kinds
        datas += batch.datas
    return kinds, datas, terminal


def test_a_responses_stream_read_whole_is_relayed_patched_and_stripped() -> None:
    kinds, datas, terminal = _read([_responses_stream()])
    assert kinds[0] == b"response.created" and kinds[2] == b"response.output_text.delta"
    created = orjson.loads(datas[0])["response"]
    assert (created["previous_response_id"], created["model"]) == ("resp_0", "m")
    assert "encrypted_content" not in orjson.loads(datas[1])["item"]
    assert [orjson.loads(d)["delta"] for d in datas[2:7]] == [f"é{n}" for n in range(5)]
    assert terminal is not None and terminal.type == "response.completed"
    assert terminal.response is not None
    assert terminal.response["output"][0]["encrypted_content"] == "x"  # the recorded copy
    assert "encrypted_content" not in orjson.loads(datas[7])["response"]["output"][0]


_STREAM = _responses_stream()
_BOUNDARIES = [i + 2 for i in range(len(_STREAM)) if _STREAM.startswith(b"\n\n", i)]
"""Where each event of the stream ends: reads cut there hold whole events only."""


@given(
    cuts=st.lists(
        st.one_of(st.sampled_from(_BOUNDARIES), st.integers(min_value=1, max_value=2_000)),
        max_size=12,
    )
)
def test_a_responses_stream_gives_the_same_events_however_it_is_cut(cuts: list[int]) -> None:
    """Reads of whole events take the one-pass split (or, with an event of another shape,
    the split by blocks); the others the decoder: the events, their bytes and the terminal
    one are the same as when every read is one byte (the decoder only)."""
    points = sorted({min(cut, len(_STREAM)) for cut in cuts} | {0, len(_STREAM)})
    chunks = [_STREAM[a:b] for a, b in itertools.pairwise(points) if b > a]
    one_by_one = [_STREAM[i : i + 1] for i in range(len(_STREAM))]
    assert _read(chunks) == _read(one_by_one)


_NAME_LINES = st.sampled_from(
    [
        b"event: response.output_text.delta",
        b"event: response.output_text.delta",
        b"event: response.function_call_arguments.delta",
        b"event:response.output_text.delta",  # no space: the decoder's, not the split's
        b"event: ",
        b"event: caf\xc3\xa9",  # a name beyond ASCII
        b"event: \xff",  # not UTF-8
        b"event: data: x",
        b"data: {}",
        b"data: event: x",  # a data line that is a name line once its prefix is cut
        b"data: ",
        b": a comment",
        b"id: 7",
    ]
)
_DELTA_LINE = b'data: {"type":"response.output_text.delta","delta":"a"}'
_DATA_LINES = st.sampled_from(
    [
        _DELTA_LINE,
        _DELTA_LINE,
        b'data: {"type":"response.output_text.delta","delta":"event: b"}',
        b"data: ",
        b"data: [DONE]",
        b"data:{}",
        b"event: response.output_text.delta",
        b"retry: 10",
        b'{"type":"response.output_text.delta"}',  # no field name
    ]
)
_EXTRA_LINES = st.one_of(
    st.sampled_from([b"", b": a comment", b'data: {"type":"x"}', b"event: x", b"data: "]),
    st.binary(max_size=12).filter(lambda line: b"\n" not in line and b"\r" not in line),
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            _NAME_LINES,
            _DATA_LINES,
            st.one_of(st.just([]), st.lists(_EXTRA_LINES, min_size=1, max_size=2)),
            st.one_of(st.just(True), st.booleans()),
        ),
        min_size=1,
        max_size=6,
    )
)
@example([(b"event: ", _DELTA_LINE, [], True)])  # a name left empty
@example([(b"event: \xff", _DELTA_LINE, [], True)])
@example([(b"event: a", b"data: ", [], True)])  # no data: no event
@example([(b"event: a", _DELTA_LINE, [], True), (b"data: event: b", b"{}", [], True)])
@example([(b"event: a", b"{}", [b"data: "], False), (b"event: b", _DELTA_LINE, [], True)])
@example([(b"event: a", b"data: [DONE]", [], True)])
@example(
    [(b"event: a", _DELTA_LINE, [b": a comment"], False), (b"event: b", _DELTA_LINE, [], True)]
)
def test_a_read_split_whole_is_the_decoder_s_reading_of_the_same_lines(
    events: list[tuple[bytes, bytes, list[bytes], bool]],
) -> None:
    """Reads of events in and out of the usual shape (names and data lines without their
    space, empty, ``[DONE]``, beyond ASCII; comments, fields the API does not send, extra
    lines, events run together with no blank line between them, bytes): split whole in one
    read or fed to the decoder a byte at a time, the same events, or the same failure."""
    read = b"".join(
        b"\n".join([name, data, *extra]) + (b"\n\n" if blank else b"\n")
        for name, data, extra, blank in events
    )
    read += b"" if read.endswith(b"\n\n") else b"\n"
    outcomes = []
    for chunks in ([read], [read[i : i + 1] for i in range(len(read))]):
        try:
            outcomes.append(_read(chunks))
        except Exception as exc:  # the same exception, whichever way it was read
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1]


def test_a_read_of_events_of_the_usual_shape_is_relayed_as_it_came() -> None:
    """A read holding only the last two deltas: their names and JSON are the upstream's
    bytes, unchanged."""
    start, end = _BOUNDARIES[4], _BOUNDARIES[6]
    kinds, datas, terminal = _read([_STREAM[:start], _STREAM[start:end], _STREAM[end:]])
    pairs = zip(kinds[5:7], datas[5:7], strict=True)
    assert (
        b"".join(b"event: " + k + b"\ndata: " + d + b"\n\n" for k, d in pairs)
        == (_STREAM[start:end])
    )
    assert terminal is not None and terminal.type == "response.completed"


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(alphabet=st.sampled_from('ab"\\:,{}[] \u00e9\n'), max_size=8),
    st.sampled_from(["type", "response.created", "sequence_number", "model", "store"]),
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(["type", "sequence_number", "model", "store", "x", 'a"b']),
            children,
            max_size=3,
        ),
    ),
    max_leaves=12,
)


def _response_event(kind: str, number: int, response: dict[str, Any], layout: str) -> bytes:
    """A response-object event as an upstream may write it: the sequence number last (as
    the mock), second (as OpenAI), or with spaces after the separators."""
    if layout == "second":
        return orjson.dumps({"type": kind, "sequence_number": number, "response": response})
    event = {"type": kind, "response": response, "sequence_number": number}
    if layout == "spaced":
        return json.dumps(event, ensure_ascii=False).encode()
    return orjson.dumps(event)


@given(
    response=st.dictionaries(
        st.sampled_from(["id", "model", "store", "previous_response_id", "output", "type"]),
        _JSON_VALUES,
        max_size=5,
    ),
    changed=st.one_of(st.none(), _JSON_VALUES),
    numbers=st.tuples(st.integers(0, 12), st.integers(0, 12)),
    layout=st.sampled_from(["last", "second", "spaced"]),
    strip=st.booleans(),
)
def test_a_repeated_response_object_is_patched_as_a_parse_would_patch_it(
    response: dict[str, Any],
    changed: Any,
    numbers: tuple[int, int],
    layout: str,
    strip: bool,
) -> None:
    """``response.in_progress`` repeating ``response.created``'s object is patched from the
    bytes ``response.created`` became; whatever the objects, layout or numbers, the event
    is the one a parse, patch and re-encode gives."""
    request = {"model": "m", "input": "hi", "previous_response_id": "resp_0", "store": False}
    if not strip:
        request["include"] = ["reasoning.encrypted_content"]
    call = UpstreamCall(parse_create_request(request), {}, b"[]")
    reader = DIALECTS["responses"].events(call)
    following = response if changed is None else {**response, "status": changed}
    created = _response_event("response.created", numbers[0], response, layout)
    in_progress = _response_event("response.in_progress", numbers[1], following, layout)
    for kind, data in (("response.created", created), ("response.in_progress", in_progress)):
        assert reader._event(kind, data) == _patched(data, call, strip)  # type: ignore[attr-defined]


def test_the_mocks_in_progress_event_is_patched_without_a_parse() -> None:
    """The mock's ``response.in_progress`` repeats ``response.created``'s object with the
    sequence number last: it is patched from the created event's bytes."""
    call = UpstreamCall(
        parse_create_request({"model": "m", "input": "hi", "previous_response_id": "resp_0"}),
        {},
        b"[]",
    )
    reader = DIALECTS["responses"].events(call)
    response = {"id": "resp_1", "model": "up", "store": False, "previous_response_id": None}
    created = _response_event("response.created", 0, response, "last")
    in_progress = _response_event("response.in_progress", 1, response, "last")
    reader._event("response.created", created)  # type: ignore[attr-defined]
    echoed = reader.echoed  # type: ignore[attr-defined]
    event = echoed.next("response.in_progress", in_progress)
    assert event is not None and event == _patched(in_progress, call, True)
    assert orjson.loads(event.data)["response"]["previous_response_id"] == "resp_0"


_ID_CHARS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    response=st.dictionaries(
        st.sampled_from(["model", "store", "previous_response_id", "output", "id", "tools"]),
        _JSON_VALUES,
        max_size=5,
    ),
    turns=st.lists(
        st.tuples(
            st.one_of(_ID_CHARS, st.text(max_size=8)),  # ids, some needing escapes
            st.integers(0, 2**62),
            st.integers(0, 10**6),
            st.sampled_from(["resp_a", None, 'resp_\u00e9"b']),
            st.sampled_from([True, False, None]),
            st.sampled_from(["m", "client-model", "\u00e9"]),
        ),
        min_size=1,
        max_size=5,
    ),
    kind=st.sampled_from(["response.created", "response.in_progress", "response.queued"]),
    layout=st.sampled_from(["last", "spaced"]),
    strip=st.booleans(),
)
def test_a_response_event_repeated_across_calls_is_patched_as_a_parse_would_patch_it(
    response: dict[str, Any],
    turns: list[tuple[str, int, int, str | None, bool | None, str]],
    kind: str,
    layout: str,
    strip: bool,
) -> None:
    """An upstream's response-object event that repeats but for its id, creation time and
    sequence number (each turn's ``response.created``) is patched from a template once seen
    twice; whatever the object, values, layout and the calls' own settings, every event's
    type and bytes are the ones a parse, patch and re-encode gives."""
    templates = ResponseTemplates()
    for rid, created_at, number, previous, store, model in turns * 3:
        request: dict[str, Any] = {"model": model, "input": "hi", "previous_response_id": previous}
        if store is not None:
            request["store"] = store
        if not strip:
            request["include"] = ["reasoning.encrypted_content"]
        call = UpstreamCall(parse_create_request(request), {}, b"[]")
        reader = DIALECTS["responses"].events(call, templates)
        body = {"id": rid, "object": "response", "created_at": created_at, "status": "s"}
        body.update(response)
        data = _response_event(kind, number, body, layout)
        expected = _patched(data, call, strip)
        got = reader._event(kind, data)  # type: ignore[attr-defined]
        assert (got.type, got.data) == (expected.type, expected.data)
        assert got.response in (None, expected.response)  # none from a template


def test_the_mocks_created_event_is_patched_from_its_template_from_the_third_turn() -> None:
    """Seen once, remembered; seen twice, learnt; then filled in: as a parse patches it."""
    templates = ResponseTemplates()
    call = UpstreamCall(
        parse_create_request({"model": "m", "input": "hi", "previous_response_id": "resp_0"}),
        {},
        b"[]",
    )
    settings = {"model": "up", "store": False, "previous_response_id": None}
    for turn in range(4):
        body = {"id": f"resp_{turn}", "object": "response", "created_at": 1_700_000_000 + turn}
        data = _response_event("response.created", 0, {**body, **settings}, "last")
        templated = templates.patched(data, call, True, echoed_settings(call))
        assert (templated is not None) == (turn >= 2)
        if templated is not None:
            expected = _patched(data, call, True)
            assert (templated.type, templated.data) == (expected.type, expected.data)

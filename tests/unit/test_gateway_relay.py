"""The gateway's sans-I/O parts: Chat chunks into Responses events, upstream refusals into
the API's errors, the configuration."""

from __future__ import annotations

import pytest

from rig.gateway.chatrelay import ChatRelay
from rig.gateway.config import ConfigError, GatewayConfig, UpstreamConfig, parse_model_map
from rig.gateway.upstream import UpstreamError, upstream_refusal
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

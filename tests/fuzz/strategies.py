"""Hypothesis strategies for hostile Responses API and Chat Completions input: valid bodies
with any field replaced by a wrong type, an extreme, or deep nesting; raw bytes; WebSocket
messages (text and binary frames, lanes, events of every type)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from hypothesis import strategies as st

__all__ = ["create_bodies", "deep_bytes", "encode", "json_values", "raw_bodies", "ws_messages"]

TOOL = {
    "type": "function",
    "name": "read_file",
    "description": "Read a file",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
}
CREATE_FIELDS = (
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "store", "stream", "previous_response_id", "metadata", "max_output_tokens", "include",
    "reasoning", "text", "temperature", "top_p", "stream_options", "truncation", "user",
    "background", "generate", "stream_id", "prompt_cache_key", "service_tier",
)  # fmt: skip
CHAT_FIELDS = (
    "model", "messages", "tools", "tool_choice", "stream", "stream_options", "metadata",
    "max_tokens", "max_completion_tokens", "n", "temperature", "parallel_tool_calls",
)  # fmt: skip
EXTREMES = st.sampled_from(
    [None, True, False, 0, -1, 2**63, -(2**63), 2**64 - 1, 1e308, -1e308, 0.5, "", " ",
     "\x00", "\ud7ff", "x" * 70_000, [], {}, [[]], [{}], {"": None}]
)  # fmt: skip


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value of modest size."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=40)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


_DEEP = re.compile(rb'"@@deep-(\d+)@@"')


def deep_bytes(depth: int) -> bytes:
    """A JSON value nested ``depth`` levels in alternating objects and lists (as bytes: no
    encoder nests that deep)."""
    opening = b"".join(b"[" if level % 2 else b'{"a":' for level in range(depth))
    closing = b"".join(b"]" if level % 2 else b"}" for level in reversed(range(depth)))
    return opening + b"1" + closing


def encode(value: Any) -> bytes:
    """``value`` as JSON, with every deep-nesting marker replaced by the nested value."""
    return _DEEP.sub(lambda m: deep_bytes(int(m.group(1))), orjson.dumps(value))


def _nested() -> st.SearchStrategy[Any]:
    """A marker that :func:`encode` turns into a value nested up to 3,000 levels."""
    return st.integers(min_value=1, max_value=3000).map(lambda d: f"@@deep-{d}@@")


def _tools() -> st.SearchStrategy[Any]:
    mutated_tool = st.builds(
        lambda key, value: {**TOOL, key: value},
        st.sampled_from(["type", "name", "parameters", "description", "strict"]),
        json_values() | EXTREMES | _nested(),
    )
    return st.lists(st.just(TOOL) | mutated_tool, max_size=3)


def _input_items() -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "role": st.sampled_from(["user", "system", "assistant", "developer", "tool", "x"]),
        },
        optional={"content": json_values() | st.text(max_size=100) | _nested()},
    )
    call = st.fixed_dictionaries(
        {"type": st.sampled_from(["function_call", "function_call_output", "reasoning",
                                  "custom_tool_call", "item_reference", "bogus"])},
        optional={
            "call_id": json_values(2),
            "name": json_values(2),
            "arguments": json_values(2),
            "output": json_values() | _nested(),
            "id": json_values(2),
        },
    )  # fmt: skip
    return st.text(max_size=200) | st.lists(message | call | json_values(4), max_size=5)


def create_bodies(chat: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with some fields replaced by anything (wrong types, extremes, nesting)."""
    if chat:
        base: dict[str, Any] = {
            "model": "mock-agent",
            "messages": [{"role": "user", "content": "Fix the failing test"}],
        }
        fields = CHAT_FIELDS
    else:
        base = {"model": "mock-agent", "input": "Fix the failing test", "store": False}
        fields = CREATE_FIELDS
    special: dict[str, st.SearchStrategy[Any]] = {
        "tools": _tools(),
        "input": _input_items(),
        "stream": st.booleans(),
        "store": st.booleans(),
    }
    value = st.one_of(json_values(), EXTREMES, _nested())
    replacements = st.dictionaries(
        st.sampled_from(fields),
        st.deferred(lambda: value),
        max_size=3,
    )
    specials = st.fixed_dictionaries({}, optional=special)
    return st.builds(lambda r, s: {**base, **r, **s}, replacements, specials)


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bytes that are not quite a JSON object: junk, truncations, deep nesting, odd text."""
    good = orjson.dumps({"model": "mock-agent", "input": "hello", "stream": True})
    return st.one_of(
        st.binary(max_size=300),
        st.integers(min_value=0, max_value=len(good)).map(lambda n: good[:n]),
        st.integers(min_value=1, max_value=5000).map(deep_bytes),
        st.integers(min_value=1, max_value=5000).map(
            lambda d: b'{"model":"m","input":' + deep_bytes(d) + b"}"
        ),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.just(b'{"model": "m", "input": "\\ud800"}'),
        st.just(b'{"model": "m", "input": "hi", "max_output_tokens": 1' + b"0" * 400 + b"}"),
        st.just(b"\xef\xbb\xbf" + good),
    )


def ws_messages() -> st.SearchStrategy[str | bytes]:
    """One WebSocket message: a ``response.create`` with anything in it (on the default lane
    or a named one), another event type, junk text, or a binary frame."""
    create = create_bodies().flatmap(
        lambda body: st.builds(
            lambda kind, lane: {**body, "type": kind, **lane},
            st.sampled_from(["response.create"] * 4 + ["response.cancel", "session.update",
                                                        "bogus", ""]),
            st.just({}) | st.fixed_dictionaries({"stream_id": st.text(max_size=20)
                                                 | json_values(2)}),
        )
    )  # fmt: skip
    return st.one_of(
        create.map(lambda event: encode(event).decode()),
        st.text(max_size=200),
        st.binary(max_size=200),
        st.integers(min_value=1, max_value=5000).map(lambda d: "[" * d + "]" * d),
    )

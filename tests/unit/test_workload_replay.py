"""Requests and answers of a traced shape (rig.workload.replay)."""

from __future__ import annotations

import random
import zlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.protocol.events import custom_tool_call_item, function_call_item, message_item
from rig.protocol.ids import new_id
from rig.traces.format import Item
from rig.workload.replay import (
    TRACE_OUTPUT_KEY,
    Filler,
    OutputShape,
    TraceOutputError,
    TurnBuilder,
    decode_output,
    encode_output,
    pad_metadata,
    traced_turn,
)

FILLER = Filler.load()


def _size(value: object) -> int:
    return len(orjson.dumps(value))


@given(
    kind=st.sampled_from(
        ["message", "function_call_output", "custom_tool_call_output", "function_call"]
    ),
    role=st.sampled_from(["user", "developer", "assistant", "system"]),
    size=st.integers(min_value=200, max_value=60_000),
)
def test_an_input_item_has_the_traced_size(kind: str, role: str, size: int) -> None:
    item = Item(kind, size, role=role if kind == "message" else None, name="exec_command")
    made = TurnBuilder(FILLER, seed=size).item(item, call_id="call_abc")
    assert made["type"] == kind
    assert abs(_size(made) - size) <= 0.02 * size


def test_a_tool_output_with_no_call_to_answer_becomes_a_user_message() -> None:
    made = TurnBuilder(FILLER).item(Item("function_call_output", 500), call_id=None)
    assert (made["type"], made["role"], _size(made)) == ("message", "user", 500)


@given(count=st.integers(1, 40), spare=st.integers(0, 40_000))
def test_tools_have_the_traced_count_and_size(count: int, spare: int) -> None:
    size = count * 101 + spare  # an empty schema is 100 bytes and a comma
    tools = TurnBuilder(FILLER).tools(count, size)
    assert len(tools) == count
    assert len({tool["name"] for tool in tools}) == count
    assert _size(tools) == size


def test_instructions_have_the_traced_size() -> None:
    assert len(TurnBuilder(FILLER).instructions(21_609).encode()) == 21_609


def test_filler_compresses_like_text_not_like_repeated_bytes() -> None:
    text = TurnBuilder(FILLER, seed=3).fill(20_000).encode()
    ratio = len(zlib.compress(text)) / len(text)
    assert 0.1 < ratio < 0.6  # source code and prose; "x" * n would be ~0.005


def test_the_same_seed_makes_the_same_bytes() -> None:
    item = Item("message", 5_000, role="developer")
    assert TurnBuilder(FILLER, seed=7).item(item) == TurnBuilder(FILLER, seed=7).item(item)
    assert TurnBuilder(FILLER, seed=7).item(item) != TurnBuilder(FILLER, seed=8).item(item)


def test_output_shapes_round_trip_through_metadata() -> None:
    items = (
        Item("message", 279, role="assistant", tokens=32),
        Item("function_call", 333, name="exec_command", tokens=54),
        Item("custom_tool_call", 309, name="apply_patch"),
    )
    value = encode_output(items)
    assert value == "message:279;function_call:333:exec_command;custom_tool_call:309:apply_patch"
    assert decode_output(value) == (
        OutputShape("message", 279),
        OutputShape("function_call", 333, "exec_command"),
        OutputShape("custom_tool_call", 309, "apply_patch"),
    )
    assert decode_output("") == ()


def test_the_output_value_fits_a_metadata_value() -> None:
    items = tuple(Item("function_call", 1000, name="a_long_tool_name") for _ in range(100))
    assert len(encode_output(items)) <= 512


@pytest.mark.parametrize("bad", ["message", "message:abc", ":12", "message:-1"])
def test_an_unreadable_output_value_is_refused(bad: str) -> None:
    with pytest.raises(TraceOutputError, match="type:bytes"):
        decode_output(bad)


@pytest.mark.parametrize("size", [19, 100, 600, 5_000])
def test_padding_adds_exactly_the_bytes_asked(size: int) -> None:
    metadata = {TRACE_OUTPUT_KEY: "message:300"}
    body = {"model": "m", "metadata": metadata}
    padded = {"model": "m", "metadata": pad_metadata(metadata, size)}
    assert _size(padded) - _size(body) == size
    assert all(len(v) <= 512 for v in padded["metadata"].values())


def test_padding_smaller_than_a_key_adds_nothing() -> None:
    metadata = {TRACE_OUTPUT_KEY: "message:300"}
    assert pad_metadata(metadata, 18) == metadata


def test_the_mock_items_of_a_traced_answer_have_the_traced_sizes() -> None:
    shapes = (
        OutputShape("message", 279),
        OutputShape("function_call", 333, "exec_command"),
        OutputShape("custom_tool_call", 309, "apply_patch"),
    )
    answer = traced_turn(shapes, FILLER, random.Random(0))
    assert answer.text is not None
    function, custom = answer.tool_calls
    made = [
        message_item(new_id("msg"), answer.text),
        function_call_item(new_id("fc"), new_id("call", 12), function.name, function.arguments),
        custom_tool_call_item(new_id("ctc"), new_id("call", 12), custom.name, custom.arguments),
    ]
    assert [_size(item) for item in made] == [279, 333, 309]
    assert orjson.loads(function.arguments)  # valid JSON arguments
    assert custom.kind == "custom"

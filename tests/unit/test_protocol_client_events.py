"""A connection's client frames parsed with the tools they resend remembered (validated and
depth-checked once): the same events and the same errors as parsing each frame on its
own."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rig.protocol.errors import InvalidRequestError
from rig.protocol.requests import parse_json_object
from rig.protocol.ws import ClientEventParser, client_event

_TOOL = {"type": "function", "name": "read_file", "parameters": {"type": "object"}}
_DEEP: Any = "bottom"
for _ in range(70):  # beyond the 64 levels a frame may nest
    _DEEP = [_DEEP]
_TOOLS = st.one_of(
    st.just([_TOOL]),  # most frames resend the same tools
    st.just([_TOOL]),
    st.just([_TOOL]),
    st.just([_TOOL, {**_TOOL, "name": "write_file"}]),
    st.just([{**_TOOL, "strict": True}]),
    st.just([{**_TOOL, "strict": 1}]),  # equal in Python, not in JSON: not valid
    st.just([{**_TOOL, "name": 3}]),
    st.just([{"type": "nope"}]),
    st.just([{**_TOOL, "parameters": {"type": "object", "x": _DEEP}}]),
    st.just([]),
    st.just("read_file"),
)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "input": st.sampled_from(["hi", [{"type": "x"}], [], None, _DEEP]),
    "store": st.sampled_from([False, True, 1, "no"]),
    "stream": st.booleans(),
    "background": st.sampled_from([False, True]),
    "stream_id": st.sampled_from(["s1", "", None]),
}
_FRAMES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["response.create"] * 4 + ["response.cancel"]),
        "model": st.sampled_from(["m"] * 4 + ["", 3]),
        "tools": _TOOLS,
    },
    optional=_FIELDS,
)


def _outcome(parse: Any, raw: bytes) -> tuple[Any, ...]:
    try:
        body, event = parse(raw)
    except InvalidRequestError as error:
        return ("error", error.status, error.message, error.param, error.code)
    return ("event", body, event, event.model_fields_set)


def _on_its_own(raw: bytes) -> tuple[dict[str, Any], Any]:
    body = parse_json_object(raw)
    return body, client_event(body)


@given(frames=st.lists(_FRAMES, min_size=1, max_size=6))
def test_remembered_tools_give_the_same_events_and_errors(frames: list[dict[str, Any]]) -> None:
    parser = ClientEventParser(capacity=2)
    for frame in frames:
        raw = orjson.dumps(frame)
        assert _outcome(parser.parse, raw) == _outcome(_on_its_own, raw)


def test_a_frame_that_resends_its_tools_reuses_their_models() -> None:
    parser = ClientEventParser()
    frame = {"type": "response.create", "model": "m", "input": "hi", "tools": [_TOOL]}
    _, first = parser.parse(orjson.dumps(frame))
    body, second = parser.parse(orjson.dumps({**frame, "input": "again", "stream": True}))
    assert second.tools is first.tools
    assert "stream" not in body and second.input == "again"


def test_a_frame_with_remembered_tools_is_still_refused_when_it_nests_too_deep() -> None:
    parser = ClientEventParser()
    frame = {"type": "response.create", "model": "m", "input": "hi", "tools": [_TOOL]}
    parser.parse(orjson.dumps(frame))
    raw = orjson.dumps({**frame, "input": _DEEP})
    assert _outcome(parser.parse, raw) == _outcome(_on_its_own, raw)
    assert _outcome(parser.parse, raw)[-1] == "json_too_deep"

"""TraceReplay (rig.loadgen.replay), the requests a transport sends for a traced session:
the calls of the target's answer that the traced next turn left unanswered each get an
output of its own traced size, in order."""

from __future__ import annotations

import dataclasses

import orjson

from rig.loadgen.replay import TraceReplay
from rig.loadgen.target import Target
from rig.loadgen.transports.base import make_transport
from rig.loadgen.wire import WireCounter
from rig.traces.format import Item, Session, SessionInfo, ToolCall
from rig.workload.corpus import Corpus
from rig.workload.replay import Filler, TurnBuilder
from tests.unit.test_traces_format import _turn


def test_each_unanswered_call_gets_the_size_traced_for_it() -> None:
    calls = (
        ToolCall("exec_command", "function_call", 40, 1_500),
        ToolCall("exec_command", "function_call", 40, 7_000),
    )
    first = dataclasses.replace(_turn("s", 0), tool_calls=calls)
    # The next turn brings no output items: both calls are left for the replay to answer.
    second = dataclasses.replace(_turn("s", 1), input=(Item("message", 100, role="user"),))
    session = Session(SessionInfo("s", "codex", "gpt-5.5", "sse"), (first, second))
    target = Target.from_url("http://127.0.0.1:9/v1")
    transport = make_transport("http", target, WireCounter(), instructions="", tools=[])
    replay = TraceReplay(session, transport, TurnBuilder(Filler(Corpus.load())))
    assert replay.next_turn() is not None
    answer = [
        {"type": "function_call", "call_id": f"call_{n}", "name": "exec_command",
         "arguments": "{}", "status": "completed"}
        for n in (1, 2)
    ]  # fmt: skip
    replay.answered(answer, "resp_1")
    step = replay.next_turn()
    assert step is not None
    outputs = [item for item in step.input.new_items if item["type"] == "function_call_output"]
    assert [o["call_id"] for o in outputs] == ["call_1", "call_2"]
    sizes = [len(orjson.dumps(o["output"])) - 2 for o in outputs]  # the string, unquoted
    assert sizes == [1_500, 7_000]

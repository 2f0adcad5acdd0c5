"""A single scripted agent session, synchronous, for smoke checks and demos.

One simulated agent runs one scenario's tool loop against a target, either over HTTP with
the full context every turn (``http``) or over a WebSocket with ``previous_response_id``
continuations (``ws``), and reports the size of every request. It counts application
bytes (request bodies, WebSocket message payloads), not wire bytes: the load generator's
``WireSocket`` is where wire bytes are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
from websockets.sync.client import connect

from rig.protocol.sniff import event_type, is_terminal
from rig.protocol.sse import SSEDecoder
from rig.protocol.ws import encode_client_event
from rig.workload.corpus import Corpus
from rig.workload.scenarios import Scenario, make_task
from rig.workload.simulator import ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOLS

__all__ = ["ProbeError", "ProbeResult", "ProbeTurn", "run_probe"]

Mode = Literal["http", "ws"]


class ProbeError(RuntimeError):
    """The target answered a probe turn with an error or an unterminated stream."""


@dataclass(frozen=True)
class ProbeTurn:
    """One turn of a probe session."""

    turn: int
    request_bytes: int
    response_bytes: int
    tool_calls: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int


@dataclass
class ProbeResult:
    """A finished probe session."""

    scenario: str
    mode: Mode
    turns: list[ProbeTurn] = field(default_factory=list)
    final_text: str = ""

    @property
    def request_bytes(self) -> int:
        """Request bytes over the whole task."""
        return sum(t.request_bytes for t in self.turns)

    @property
    def tool_calls(self) -> int:
        """Tool calls over the whole task."""
        return sum(t.tool_calls for t in self.turns)


def _completed(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event["type"] == "response.completed":
            return event["response"]
        if event["type"] in ("error", "response.failed"):
            raise ProbeError(f"target answered with {event['type']}: {orjson.dumps(event)[:300]!r}")
    raise ProbeError("stream ended without response.completed")


def run_probe(
    base_url: str,
    scenario: Scenario,
    mode: Mode,
    *,
    session_index: int = 0,
    seed: int = 0,
    model: str = "mock-agent",
    api_key: str | None = None,
    max_turns: int = 60,
) -> ProbeResult:
    """Run one task of ``scenario`` against ``base_url`` (``http://host:port/v1``)."""
    task = make_task(scenario, session_index, seed)
    simulator = ToolSimulator(Corpus.load(), seed=seed + session_index)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    result = ProbeResult(scenario.name, mode)
    transcript: list[dict[str, Any]] = [{"role": "user", "content": task.prompt}]
    new_items = list(transcript)
    previous_id: str | None = None
    base = {
        "model": model,
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "store": False,
        "metadata": {"scenario": scenario.name},
    }
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
        ws = None
        if mode == "ws":
            ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://")
            ws = connect(ws_url + "/responses", additional_headers=headers, max_size=None)
        try:
            for turn in range(max_turns):
                if mode == "http":
                    body = dict(base, input=transcript, stream=True)
                    payload = orjson.dumps(body)
                    events, received = _http_turn(http, payload)
                else:
                    body = dict(base, input=new_items, previous_response_id=previous_id)
                    payload = encode_client_event(body)
                    events, received = _ws_turn(ws, payload)
                response = _completed(events)
                previous_id = response["id"]
                calls = [item for item in response["output"] if item["type"] == "function_call"]
                usage = response["usage"]
                result.turns.append(
                    ProbeTurn(
                        turn=turn,
                        request_bytes=len(payload),
                        response_bytes=received,
                        tool_calls=len(calls),
                        input_tokens=usage["input_tokens"],
                        cached_tokens=usage["input_tokens_details"]["cached_tokens"],
                        output_tokens=usage["output_tokens"],
                    )
                )
                transcript.extend(response["output"])
                if not calls:
                    texts = [
                        part["text"]
                        for item in response["output"]
                        if item["type"] == "message"
                        for part in item["content"]
                    ]
                    result.final_text = "".join(texts)
                    return result
                new_items = []
                for call in calls:
                    output = simulator.run(call["name"], call["arguments"]).output
                    item = {
                        "type": "function_call_output",
                        "call_id": call["call_id"],
                        "output": output,
                    }
                    new_items.append(item)
                transcript.extend(new_items)
        finally:
            if ws is not None:
                ws.close()
    raise ProbeError(f"no final answer after {max_turns} turns")


def _http_turn(http: httpx.Client, payload: bytes) -> tuple[list[dict[str, Any]], int]:
    decoder = SSEDecoder()
    events: list[dict[str, Any]] = []
    received = 0
    headers = {"Content-Type": "application/json"}
    with http.stream("POST", "/responses", content=payload, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            raise ProbeError(f"HTTP {response.status_code}: {response.text[:300]}")
        for chunk in response.iter_raw():
            received += len(chunk)
            for message in decoder.feed(chunk):
                events.append(orjson.loads(message.data))
    return events, received


def _ws_turn(ws: Any, payload: bytes) -> tuple[list[dict[str, Any]], int]:
    ws.send(payload.decode())
    events: list[dict[str, Any]] = []
    received = 0
    while True:
        frame = ws.recv()
        raw = frame.encode() if isinstance(frame, str) else frame
        received += len(raw)
        kind = event_type(raw)
        events.append(orjson.loads(raw))
        if is_terminal(kind):
            return events, received

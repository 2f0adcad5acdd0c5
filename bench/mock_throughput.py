"""Mock provider throughput: HTTP vs WebSocket continuations, beside a bare-uvicorn floor.

With the ``instant`` preset (the server never waits), S scripted coding-agent sessions per
transport advance in lock-step rounds: round k sends every session's turn k at once and
waits for all of them. Per round the bench reads the wall time, the server process's CPU
clock, its own CPU and the whole machine's. It reports, per server and transport:

* turns/s and streamed events/s (wall clock: client and server share a 2-core machine,
  so these are bounded by whichever side saturates first);
* server CPU per turn and per event, and events per server-CPU-second (CPU-derived: what
  one saturated server core would stream);
* with two ``--delta-tokens`` values, server CPU split into a cost per event and a fixed
  cost per turn (same requests and text, different event counts);
* server CPU per turn early (turns 1-3) and late (the last three) in the conversation, and
  its slope over the second half of the rounds, where every session repeats its final
  answer, so only the history grows: a stateless HTTP turn re-sends (and the server
  re-parses) the whole transcript; a WebSocket continuation sends only new items;
* request bytes, events, payload and wire bytes received, and socket reads per turn.

Every figure is printed beside a REFERENCE measured in the same run: a bare ASGI app on
the same uvicorn stack (uvloop, httptools, websockets-sansio) that receives the very same
request bytes (replayed from the mock run) and answers each with the same number of events
and the same total bytes, built once per turn, with no validation, engine or scripted
model: the stack's floor, so the mock's own overhead is visible.

The load runs in this process, separate from the servers: asyncio on uvloop over raw
protocols (httptools for HTTP with keep-alive; websockets' sans-I/O client for WebSocket),
counting events without parsing them and parsing only the terminal ``response.completed``.

Usage (from the repository root)::

    python bench/mock_throughput.py                    # 50 sessions, 31 turns, deltas 1 and 8
    python bench/mock_throughput.py --delta-tokens 1 --transports ws --json figures.json
    python bench/mock_throughput.py --serve-reference --port 8100   # the reference alone

Figures and method: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import httptools
import orjson
import psutil
import uvloop
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    int_list,
    machine_cpu_seconds,
    noisy_warning,
    positive_int,
    table,
)

from rig.protocol.ws import encode_client_event  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from rig.workload.corpus import Corpus  # noqa: E402
from rig.workload.scenarios import Scenario, builtin_scenarios, make_task  # noqa: E402
from rig.workload.simulator import ToolSimulator  # noqa: E402
from rig.workload.tools import INSTRUCTIONS, TOOLS  # noqa: E402

Transport = Literal["http", "ws"]
TRANSPORTS: tuple[Transport, ...] = ("http", "ws")

HOST = "127.0.0.1"
PATH = "/v1/responses"
MODEL = "mock-agent"
WINDOW = 3
"""Turns averaged at each end of the conversation: turns 1..3 and the last three."""
MOCK_READY = "rig mock listening on"
"""What ``rig mock`` prints once its socket listens."""
REFERENCE_READY = "Uvicorn running on"
"""What ``uvicorn.run`` prints once its server listens."""
ROUND_TIMEOUT_S = 300.0

_COMPLETED = b'{"type":"response.completed"'
_FAILED = (b'{"type":"error"', b'{"type":"response.failed"', b'{"type":"response.incomplete"')
_SSE_COMPLETED = b"event: response.completed\n"
_SSE_DATA = b"\ndata: "


class BenchError(RuntimeError):
    """The benchmark could not run or a server answered wrongly; the message says which."""


# -- turn shapes and the reference server ---------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnShape:
    """What one streamed answer looked like: event count, payload bytes, terminal event size.

    Payload bytes are the SSE body (HTTP) or the sum of text-frame payloads (WebSocket);
    the terminal event's bytes are included in them.
    """

    events: int
    payload_bytes: int
    terminal_bytes: int

    def encode(self) -> bytes:
        """The shape as the reference reads it: ``events,payload_bytes,terminal_bytes``."""
        return b"%d,%d,%d" % (self.events, self.payload_bytes, self.terminal_bytes)

    @classmethod
    def decode(cls, raw: bytes) -> TurnShape:
        """Inverse of :meth:`encode`; raises ``ValueError`` on anything else."""
        events, payload, terminal = (int(part) for part in raw.split(b","))
        return cls(events, payload, terminal)


def _padded_event(kind: bytes, pad_field: bytes, size: int, sse: bool) -> bytes:
    """An event of type ``kind`` padded through ``pad_field`` to ``size`` bytes (or its minimum)."""

    def frame(pad: int) -> bytes:
        payload = b'{"type":"%s","%s":"%s"}' % (kind, pad_field, b"x" * pad)
        return b"event: " + kind + _SSE_DATA + payload + b"\n\n" if sse else payload

    return frame(max(0, size - len(frame(0))))


def reference_events(shape: TurnShape, *, sse: bool) -> list[bytes]:
    """Pre-encoded events reproducing ``shape``: fillers of even size, then the terminal."""
    terminal = _padded_event(b"response.completed", b"response", shape.terminal_bytes, sse)
    fillers = max(0, shape.events - 1)
    if fillers == 0:
        return [terminal]
    each, extra = divmod(max(0, shape.payload_bytes - len(terminal)), fillers)
    filler = _padded_event(b"response.output_text.delta", b"delta", each, sse)
    first = _padded_event(b"response.output_text.delta", b"delta", each + extra, sse)
    return [first, *([filler] * (fillers - 1)), terminal]


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-request-id", b"resp_reference000000000000000000"),
]


async def reference_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: reads each request whole, answers with the events its shape asks for.

    HTTP: ``POST`` with ``?shape=...``, answered with SSE. WebSocket: each text message's
    first line is the shape, answered with text frames. Nothing is parsed or validated.
    """
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        try:
            shape = TurnShape.decode(scope["query_string"].partition(b"=")[2])
        except ValueError:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"expected ?shape=n,bytes,last"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for chunk in reference_events(shape, sse=True):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text") or message.get("bytes", b"").decode()
            shape = TurnShape.decode(text.partition("\n")[0].encode())
            decoded: dict[bytes, str] = {}  # the filler repeats: decode each distinct event once
            for payload in reference_events(shape, sse=False):
                text_payload = decoded.get(payload)
                if text_payload is None:
                    text_payload = decoded[payload] = payload.decode()
                await send({"type": "websocket.send", "text": text_payload})


def serve_reference(port: int) -> None:
    """Run the reference app on the mock's uvicorn stack until interrupted."""
    import uvicorn

    uvicorn.run(
        reference_app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=16 * 1024 * 1024,
        lifespan="off",
        access_log=False,
        log_level="info",
    )


# -- server processes -----------------------------------------------------------------


class ServerProcess:
    """A server child process, ready when it prints ``ready_marker``; its CPU clock readable."""

    def __init__(self, name: str, argv: Sequence[str], port: int, ready_marker: str):
        self.name = name
        self.port = port
        self.ready_marker = ready_marker
        self.output: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._exited = threading.Event()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        # The CPU clock of another process (clock_getcpuclockid): nanoseconds, unlike the
        # 10 ms ticks of /proc/<pid>/stat; psutil is the fallback where it is refused.
        self._clock = (~self.process.pid << 3) | 2
        self._psutil = psutil.Process(self.process.pid)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_marker in line:
                self._ready.set()
        self._exited.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the ready marker; raise with the output if the process dies first."""
        if not self._ready.wait(timeout_s) or self._exited.is_set():
            self.stop()
            tail = "".join(self.output)[-3000:]
            raise BenchError(f"{self.name} server did not start:\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far."""
        try:
            return time.clock_gettime_ns(self._clock) / 1e9
        except OSError:
            times = self._psutil.cpu_times()
            return times.user + times.system

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL if it has not exited after 15 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(name: str, argv: Sequence[str], port: int, ready_marker: str) -> ServerProcess:
    """Start a server process and wait until it accepts connections."""
    server = ServerProcess(name, argv, port, ready_marker)
    server.wait_ready()
    return server


# -- the load: raw client protocols ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """One answer as the client saw it."""

    shape: TurnShape
    wire_bytes: int
    """Bytes read from the socket: status line, headers and chunk framing, or frame headers."""
    wire_reads: int
    """Socket reads it took: how much the kernel batched the events on their way."""
    terminal: bytes
    """The terminal event's JSON, the only event parsed."""


class Wire(Protocol):
    """One client connection that carries one turn at a time."""

    async def exchange(self, body: bytes, tag: bytes) -> TurnOutcome:
        """Send a request (``tag``: the reference's turn shape, else ``b""``); await its end."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class HttpWire(asyncio.Protocol):
    """``POST /v1/responses`` with ``stream: true`` over a keep-alive connection.

    The body is collected as httptools de-chunks it; at the end of the message events are
    counted by their ``\\n\\n`` separators (JSON never holds a raw newline) and only the last
    one is kept.
    """

    def __init__(self, port: int):
        self._port = port
        self._host = b"%s:%d" % (HOST.encode(), port)
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._wire_bytes = self._wire_reads = 0
        self._done: asyncio.Future[TurnOutcome] | None = None

    async def connect(self) -> HttpWire:
        """Open (or reopen, after the server's keep-alive timeout) the connection."""
        self._parser = httptools.HttpResponseParser(self)
        await asyncio.get_running_loop().create_connection(lambda: self, HOST, self._port)
        return self

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._wire_bytes += len(data)
        self._wire_reads += 1
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(f"connection lost mid-response: {exc}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._chunks)
        self._chunks = []
        assert self._done is not None
        status = self._parser.get_status_code()
        if status != 200:
            self._done.set_exception(BenchError(f"HTTP {status}: {body[:500]!r}"))
            return
        # The last event runs from the previous separator to the final b"\n\n".
        previous = body.rfind(b"\n\n", 0, len(body) - 2)
        last = body[previous + 2 :] if previous >= 0 else body
        if not last.startswith(_SSE_COMPLETED):
            self._done.set_exception(BenchError(f"stream did not complete: {last[:500]!r}"))
            return
        shape = TurnShape(body.count(b"\n\n"), len(body), len(last))
        terminal = last[last.index(_SSE_DATA) + len(_SSE_DATA) : -2]
        self._done.set_result(TurnOutcome(shape, self._wire_bytes, self._wire_reads, terminal))

    async def exchange(self, body: bytes, tag: bytes) -> TurnOutcome:
        if self._transport is None or self._transport.is_closing():
            await self.connect()
        assert self._transport is not None
        target = PATH.encode() + (b"?shape=" + tag if tag else b"")
        head = (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (target, self._host, len(body))
        )
        self._wire_bytes = self._wire_reads = 0
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(head + body)
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class WsWire(asyncio.Protocol):
    """Responses API WebSocket mode through websockets' sans-I/O client protocol.

    Each text frame is one event; a frame starting with ``{"type":"response.completed"``
    ends the turn (servers put ``type`` first); ``error``, ``response.failed`` and
    ``response.incomplete`` fail it.
    """

    def __init__(self, port: int):
        self._ws = ClientProtocol(parse_uri(f"ws://{HOST}:{port}{PATH}"), max_size=None)
        self._port = port
        self._transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] | None = None
        self._done: asyncio.Future[TurnOutcome] | None = None
        self._events = 0
        self._payload_bytes = 0
        self._wire_bytes = self._wire_reads = 0

    async def connect(self) -> WsWire:
        """Open the connection and complete the WebSocket handshake."""
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        await loop.create_connection(lambda: self, HOST, self._port)
        await self._opened
        return self

    def _flush(self) -> None:
        assert self._transport is not None
        for data in self._ws.data_to_send():
            if data:
                self._transport.write(data)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._wire_bytes += len(data)
        self._wire_reads += 1
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self._on_text(bytes(event.data))  # already bytes: no copy
            else:  # the handshake response
                self._on_handshake()
        self._flush()  # pongs and close frames the protocol queued, if any

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"WebSocket connection lost: {exc}")
        for future in (self._opened, self._done):
            if future is not None and not future.done():
                future.set_exception(error)

    def _on_handshake(self) -> None:
        assert self._opened is not None
        if self._ws.handshake_exc is not None:
            self._opened.set_exception(BenchError(f"handshake failed: {self._ws.handshake_exc}"))
        else:
            self._opened.set_result(None)

    def _on_text(self, data: bytes) -> None:
        self._events += 1
        self._payload_bytes += len(data)
        if data.startswith(_COMPLETED):
            assert self._done is not None
            shape = TurnShape(self._events, self._payload_bytes, len(data))
            self._done.set_result(TurnOutcome(shape, self._wire_bytes, self._wire_reads, data))
        elif data.startswith(_FAILED):
            assert self._done is not None
            self._done.set_exception(BenchError(f"server answered {data[:500]!r}"))

    async def exchange(self, body: bytes, tag: bytes) -> TurnOutcome:
        self._events = self._payload_bytes = self._wire_bytes = self._wire_reads = 0
        self._done = asyncio.get_running_loop().create_future()
        self._ws.send_text(tag + b"\n" + body if tag else body)
        self._flush()
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._ws.send_close()
            self._flush()
            self._transport.close()


async def open_wire(transport: Transport, port: int) -> Wire:
    """A connected client of ``transport``."""
    if transport == "http":
        return await HttpWire(port).connect()
    return await WsWire(port).connect()


# -- the conversations ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """A turn of a mock run, replayed to the reference: request body, answer shape, tokens."""

    body: bytes
    shape: TurnShape
    output_tokens: int


class Script(Protocol):
    """One session's side of the conversation."""

    def request(self) -> tuple[bytes, bytes]:
        """The next request body and the reference's shape tag (``b""`` for the mock)."""
        ...

    def absorb(self, outcome: TurnOutcome) -> int:
        """Take the answer to the last request; return its output tokens."""
        ...


def follow_up_message(corpus: Corpus) -> str:
    """A ~2 KB user message pasting CI logs, so a conversation goes on after an answer."""
    simulator = ToolSimulator(corpus, seed=0)
    logs = [
        simulator.run("run_command", {"command": command}).output
        for command in ("npm test", "npm run build")
    ]
    return (
        "CI on the branch is still not green. Here is the log of the last pipeline run; "
        "please read it and tell me what else has to change.\n\n" + "\n".join(logs)
    )


class AgentScript:
    """A scripted coding agent: task prompt, tool outputs, then pasted CI logs.

    HTTP sends the whole transcript every turn (``stream: true``, ``store: false``);
    WebSocket sends ``response.create`` with ``previous_response_id`` and only the new
    items, as :class:`rig.loadgen.session.AgentSession` does. Every turn is recorded for
    the reference.
    """

    def __init__(
        self,
        transport: Transport,
        scenario: Scenario,
        index: int,
        *,
        seed: int,
        corpus: Corpus,
        follow_up: str,
    ):
        self.transport = transport
        self.recording: list[RecordedTurn] = []
        self._simulator = ToolSimulator(corpus, seed=seed + index)
        self._follow_up = follow_up
        self._base: dict[str, Any] = {
            "model": MODEL,
            "instructions": INSTRUCTIONS,
            "tools": TOOLS,
            "store": False,
            "metadata": {"scenario": scenario.name},
        }
        first = {"role": "user", "content": make_task(scenario, index, seed).prompt}
        self._transcript: list[dict[str, Any]] = [first]
        self._new_items: list[dict[str, Any]] = [first]
        self._previous_id: str | None = None
        self._body = b""

    def request(self) -> tuple[bytes, bytes]:
        if self.transport == "http":
            body = orjson.dumps({**self._base, "input": self._transcript, "stream": True})
        else:
            event = {**self._base, "input": self._new_items}
            body = encode_client_event(dict(event, previous_response_id=self._previous_id))
        self._body = body
        return body, b""

    def absorb(self, outcome: TurnOutcome) -> int:
        response = orjson.loads(outcome.terminal)["response"]
        output = response["output"]
        calls = [item for item in output if item["type"] == "function_call"]
        new_items: list[dict[str, Any]] = [
            {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": self._simulator.run(call["name"], call["arguments"]).output,
            }
            for call in calls
        ] or [{"role": "user", "content": self._follow_up}]
        self._transcript += output
        self._transcript += new_items
        self._new_items = new_items
        self._previous_id = response["id"]
        tokens: int = response["usage"]["output_tokens"]
        self.recording.append(RecordedTurn(self._body, outcome.shape, tokens))
        return tokens


class ReplayScript:
    """Replays a mock session's requests to the reference, tagged with each answer's shape."""

    def __init__(self, recording: Sequence[RecordedTurn]):
        self._turns = iter(recording)
        self._current: RecordedTurn | None = None

    def request(self) -> tuple[bytes, bytes]:
        self._current = next(self._turns)
        return self._current.body, self._current.shape.encode()

    def absorb(self, outcome: TurnOutcome) -> int:
        assert self._current is not None
        if outcome.shape != self._current.shape:  # same events, same bytes, or no floor
            raise BenchError(f"reference sent {outcome.shape}, expected {self._current.shape}")
        return self._current.output_tokens


# -- measurement ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundFigures:
    """One lock-step round: every session's turn ``turn``, sent at once."""

    turn: int
    turns: int
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float
    machine_cpu_s: float
    """Busy CPU of the whole machine (all cores), to tell whether anything else ran."""
    events: int
    payload_bytes: int
    wire_bytes_received: int
    wire_reads: int
    request_bytes: int
    output_tokens: int


async def run_rounds(
    server: ServerProcess, transport: Transport, scripts: Sequence[Script], turns: int
) -> list[RoundFigures]:
    """Open one connection per session, then play ``turns`` lock-step rounds."""
    wires = await asyncio.gather(*(open_wire(transport, server.port) for _ in scripts))
    rounds = []
    try:
        for turn in range(turns):
            requests = [script.request() for script in scripts]
            cpu_before, client_before = server.cpu_seconds(), time.process_time()
            machine_before = machine_cpu_seconds()
            started = time.perf_counter()
            exchanges = (wire.exchange(b, t) for wire, (b, t) in zip(wires, requests, strict=True))
            outcomes = await asyncio.wait_for(asyncio.gather(*exchanges), ROUND_TIMEOUT_S)
            wall = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            server_cpu = server.cpu_seconds() - cpu_before
            machine_cpu = machine_cpu_seconds() - machine_before
            tokens = sum(s.absorb(o) for s, o in zip(scripts, outcomes, strict=True))
            rounds.append(
                RoundFigures(
                    turn=turn,
                    turns=len(outcomes),
                    wall_s=wall,
                    server_cpu_s=server_cpu,
                    client_cpu_s=client_cpu,
                    machine_cpu_s=machine_cpu,
                    events=sum(o.shape.events for o in outcomes),
                    payload_bytes=sum(o.shape.payload_bytes for o in outcomes),
                    wire_bytes_received=sum(o.wire_bytes for o in outcomes),
                    wire_reads=sum(o.wire_reads for o in outcomes),
                    request_bytes=sum(len(body) for body, _ in requests),
                    output_tokens=tokens,
                )
            )
    finally:
        for wire in wires:
            wire.close()
    return rounds


@dataclass(frozen=True)
class Window:
    """Per-turn means over a few consecutive rounds."""

    request_bytes: float
    events: float
    server_cpu_us: float

    @classmethod
    def of(cls, rounds: Sequence[RoundFigures]) -> Window:
        """The window of ``rounds``."""
        return cls(
            request_bytes=_per_turn(rounds, "request_bytes"),
            events=_per_turn(rounds, "events"),
            server_cpu_us=_per_turn(rounds, "server_cpu_s", 1e6),
        )


@dataclass(frozen=True)
class CellSummary:
    """Figures of one (delta tokens, transport, server) cell over all its rounds."""

    server: str
    transport: Transport
    delta_tokens: int
    sessions: int
    rounds: int
    turns_per_s: float
    """Wall clock."""
    events_per_s: float
    """Wall clock."""
    server_cpu_us_per_turn: float
    server_cpu_us_per_event: float
    events_per_server_cpu_s: float
    """CPU-derived: events one saturated server core would stream."""
    server_busy: float
    """Server CPU / wall time (1.0 = one core saturated)."""
    client_busy: float
    """Client (this process) CPU / wall time."""
    other_busy: float
    """CPU of everything else on the machine / wall time: should be near 0."""
    request_bytes_per_turn: float
    output_tokens_per_turn: float
    events_per_turn: float
    payload_bytes_per_turn: float
    wire_bytes_received_per_turn: float
    wire_reads_per_turn: float
    early: Window
    """Turns 1..WINDOW."""
    late: Window
    """The last WINDOW turns."""
    history_slope_us: float
    """Server CPU per turn gained per turn of history: the Theil-Sen slope (median of the
    pairwise slopes, robust to a stray slow round) over the second half of the rounds, where
    every session is past its plan and repeats its answer, so the output (events, bytes) is
    the same each turn and only the history grows."""
    history_events_spread: float
    """(max - min) / mean of the events per turn over those rounds: 0 when the output was
    indeed the same each turn, so the slope measures the history alone."""
    per_round: list[dict[str, float]] = field(repr=False)

    @property
    def history_share(self) -> float:
        """Share of a last turn's server CPU that the history since turn 1 adds (slope-based)."""
        return self.history_slope_us * (self.rounds - 2) / self.late.server_cpu_us


@dataclass(frozen=True)
class Comparison:
    """A mock cell beside the reference cell that replayed its traffic."""

    mock: CellSummary
    reference: CellSummary

    @property
    def cpu_ratio(self) -> float:
        """Mock server CPU per turn over the reference's."""
        return self.mock.server_cpu_us_per_turn / self.reference.server_cpu_us_per_turn

    @property
    def cpu_excess_us(self) -> float:
        """Server CPU per turn the mock spends beyond the stack's floor."""
        return self.mock.server_cpu_us_per_turn - self.reference.server_cpu_us_per_turn


@dataclass(frozen=True)
class CostSplit:
    """Server CPU per turn split into a fixed part and a part per streamed event.

    The same conversations run at two ``--delta-tokens`` values send the same requests and
    the same text, only in more or fewer events; so the CPU difference over the event
    difference is what one more event costs, and the rest is what a turn costs anyway
    (reading and validating the request, the engine, the scripted model).
    """

    transport: Transport
    server: str
    per_event_us: float
    per_turn_us: float

    @classmethod
    def between(cls, fine: CellSummary, coarse: CellSummary) -> CostSplit:
        """The split from a cell with many events per turn and one with few."""
        per_event = (fine.server_cpu_us_per_turn - coarse.server_cpu_us_per_turn) / (
            fine.events_per_turn - coarse.events_per_turn
        )
        per_turn = coarse.server_cpu_us_per_turn - per_event * coarse.events_per_turn
        return cls(fine.transport, fine.server, per_event, per_turn)


def cost_splits(cells: Sequence[CellSummary]) -> list[CostSplit]:
    """A split per transport and server, between the smallest and largest delta run."""
    splits = []
    for transport in TRANSPORTS:
        for server in ("mock", "reference"):
            same = [c for c in cells if c.transport == transport and c.server == server]
            fine = min(same, key=lambda c: c.delta_tokens, default=None)
            coarse = max(same, key=lambda c: c.delta_tokens, default=None)
            if fine is not None and coarse is not None and fine is not coarse:
                splits.append(CostSplit.between(fine, coarse))
    return splits


def _per_turn(rounds: Iterable[RoundFigures], attribute: str, scale: float = 1.0) -> float:
    """Mean per turn of a per-round total, times ``scale``."""
    selected = list(rounds)
    return scale * sum(getattr(r, attribute) for r in selected) / sum(r.turns for r in selected)


def _history_slope(rounds: Sequence[RoundFigures]) -> float:
    """Theil-Sen slope of server CPU per turn (µs) against the turn index."""
    points = [(r.turn, 1e6 * r.server_cpu_s / r.turns) for r in rounds]
    return statistics.median(
        (y2 - y1) / (t2 - t1) for i, (t1, y1) in enumerate(points) for t2, y2 in points[i + 1 :]
    )


def _spread(values: Sequence[float]) -> float:
    """(max - min) / mean."""
    return (max(values) - min(values)) / statistics.fmean(values)


def summarise(
    server: str, transport: Transport, delta_tokens: int, rounds: Sequence[RoundFigures]
) -> CellSummary:
    """Aggregate a cell's rounds."""
    wall = sum(r.wall_s for r in rounds)
    cpu = sum(r.server_cpu_s for r in rounds)
    turns = sum(r.turns for r in rounds)
    events = sum(r.events for r in rounds)
    second_half = rounds[len(rounds) // 2 :]
    return CellSummary(
        server=server,
        transport=transport,
        delta_tokens=delta_tokens,
        sessions=rounds[0].turns,
        rounds=len(rounds),
        turns_per_s=turns / wall,
        events_per_s=events / wall,
        server_cpu_us_per_turn=1e6 * cpu / turns,
        server_cpu_us_per_event=1e6 * cpu / events,
        events_per_server_cpu_s=events / cpu,
        server_busy=cpu / wall,
        client_busy=sum(r.client_cpu_s for r in rounds) / wall,
        other_busy=sum(r.machine_cpu_s - r.server_cpu_s - r.client_cpu_s for r in rounds) / wall,
        request_bytes_per_turn=_per_turn(rounds, "request_bytes"),
        output_tokens_per_turn=_per_turn(rounds, "output_tokens"),
        events_per_turn=events / turns,
        payload_bytes_per_turn=_per_turn(rounds, "payload_bytes"),
        wire_bytes_received_per_turn=_per_turn(rounds, "wire_bytes_received"),
        wire_reads_per_turn=_per_turn(rounds, "wire_reads"),
        early=Window.of(rounds[1 : 1 + WINDOW]),
        late=Window.of(rounds[-WINDOW:]),
        history_slope_us=_history_slope(second_half),
        history_events_spread=_spread([r.events / r.turns for r in second_half]),
        per_round=[asdict(r) for r in rounds],
    )


# -- orchestration --------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What to run."""

    sessions: int
    turns: int
    delta_tokens: tuple[int, ...]
    transports: tuple[Transport, ...]
    seed: int
    json_path: Path | None


def _mock_argv(port: int, delta_tokens: int, seed: int) -> list[str]:
    options = f"--preset instant --port {port} --seed {seed} --delta-tokens {delta_tokens}"
    return [sys.executable, "-m", "rig", "mock", *options.split(), "--log-level", "info"]


def _reference_argv(port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve-reference", "--port", str(port)]


async def run_benchmark(config: BenchConfig) -> list[CellSummary]:
    """Every cell: for each delta size and transport, the mock, then the reference replay."""
    corpus = Corpus.load()
    follow_up = follow_up_message(corpus)
    scenarios = builtin_scenarios()
    names = sorted(scenarios)
    port = free_port()
    reference = start_server("reference", _reference_argv(port), port, REFERENCE_READY)
    cells = []
    try:
        for delta in config.delta_tokens:
            port = free_port()
            mock = start_server("mock", _mock_argv(port, delta, config.seed), port, MOCK_READY)
            try:
                for transport in config.transports:
                    agents = [
                        AgentScript(
                            transport,
                            scenarios[names[i % len(names)]],
                            i,
                            seed=config.seed,
                            corpus=corpus,
                            follow_up=follow_up,
                        )
                        for i in range(config.sessions)
                    ]
                    rounds = await run_rounds(mock, transport, agents, config.turns)
                    cells.append(summarise("mock", transport, delta, rounds))
                    replays = [ReplayScript(agent.recording) for agent in agents]
                    rounds = await run_rounds(reference, transport, replays, config.turns)
                    cells.append(summarise("reference", transport, delta, rounds))
                    _progress(cells[-2:])
            finally:
                mock.stop()
    finally:
        reference.stop()
    return cells


def _progress(cells: Sequence[CellSummary]) -> None:
    for cell in cells:
        print(
            f"  done: delta {cell.delta_tokens} {cell.transport:<4} {cell.server:<9} "
            f"{cell.turns_per_s:,.0f} turns/s",
            file=sys.stderr,
        )


# -- report ---------------------------------------------------------------------------


_KEY: list[Column[CellSummary]] = [
    ("delta", lambda c: str(c.delta_tokens)),
    ("transport", lambda c: c.transport),
    ("server", lambda c: c.server),
]

THROUGHPUT: list[Column[CellSummary]] = [
    *_KEY,
    ("turns/s", lambda c: f"{c.turns_per_s:,.0f}"),
    ("events/s", lambda c: f"{c.events_per_s:,.0f}"),
    ("srv CPU us/turn", lambda c: f"{c.server_cpu_us_per_turn:,.0f}"),
    ("us/event", lambda c: f"{c.server_cpu_us_per_event:.1f}"),
    ("events/CPU-s", lambda c: f"{c.events_per_server_cpu_s:,.0f}"),
    ("srv busy", lambda c: f"{c.server_busy:.2f}"),
    ("cli busy", lambda c: f"{c.client_busy:.2f}"),
    ("other busy", lambda c: f"{c.other_busy:.2f}"),
]

OVERHEAD: list[Column[Comparison]] = [
    ("delta", lambda p: str(p.mock.delta_tokens)),
    ("transport", lambda p: p.mock.transport),
    ("mock us/turn", lambda p: f"{p.mock.server_cpu_us_per_turn:,.0f}"),
    ("ref us/turn", lambda p: f"{p.reference.server_cpu_us_per_turn:,.0f}"),
    ("mock/ref", lambda p: f"{p.cpu_ratio:.1f}x"),
    ("mock-ref us/turn", lambda p: f"{p.cpu_excess_us:,.0f}"),
    ("mock us/event", lambda p: f"{p.mock.server_cpu_us_per_event:.1f}"),
    ("ref us/event", lambda p: f"{p.reference.server_cpu_us_per_event:.1f}"),
]

GROWTH: list[Column[CellSummary]] = [
    *_KEY,
    ("req B early", lambda c: f"{c.early.request_bytes:,.0f}"),
    ("req B late", lambda c: f"{c.late.request_bytes:,.0f}"),
    ("events early", lambda c: f"{c.early.events:.0f}"),
    ("events late", lambda c: f"{c.late.events:.0f}"),
    ("us/turn early", lambda c: f"{c.early.server_cpu_us:,.0f}"),
    ("us/turn late", lambda c: f"{c.late.server_cpu_us:,.0f}"),
    ("late/early", lambda c: f"{c.late.server_cpu_us / c.early.server_cpu_us:.2f}"),
    ("events spread", lambda c: f"{c.history_events_spread:.0%}"),
    ("slope us/turn", lambda c: f"{c.history_slope_us:+.1f}"),
    ("history share", lambda c: f"{c.history_share:+.0%}"),
]

COSTS: list[Column[CostSplit]] = [
    ("transport", lambda s: s.transport),
    ("server", lambda s: s.server),
    ("us per event", lambda s: f"{s.per_event_us:.1f}"),
    ("us per turn (0 events)", lambda s: f"{s.per_turn_us:,.0f}"),
]

TRAFFIC: list[Column[CellSummary]] = [
    *_KEY,
    ("request B", lambda c: f"{c.request_bytes_per_turn:,.0f}"),
    ("out tokens", lambda c: f"{c.output_tokens_per_turn:.0f}"),
    ("events", lambda c: f"{c.events_per_turn:.0f}"),
    ("payload B", lambda c: f"{c.payload_bytes_per_turn:,.0f}"),
    ("wire B recv", lambda c: f"{c.wire_bytes_received_per_turn:,.0f}"),
    ("recv B/token", lambda c: f"{c.wire_bytes_received_per_turn / c.output_tokens_per_turn:.0f}"),
    ("socket reads", lambda c: f"{c.wire_reads_per_turn:.0f}"),
]


def compare(cells: Sequence[CellSummary]) -> list[Comparison]:
    """Each mock cell with its reference, in run order."""
    mocks = [c for c in cells if c.server == "mock"]
    references = [c for c in cells if c.server == "reference"]
    return [Comparison(m, r) for m, r in zip(mocks, references, strict=True)]


def report(cells: Sequence[CellSummary], config: BenchConfig) -> str:
    """The printed figures: throughput, CPU cost, growth with conversation length, bytes."""
    turns = config.turns
    sections = [
        f"mock_throughput: preset instant, {config.sessions} sessions x {turns} turns per "
        f"transport in lock-step rounds; {os.cpu_count()} CPUs; client = this process",
        "Throughput. turns/s, events/s: wall clock. events/CPU-s: CPU-derived, what one "
        "saturated server core would stream. busy = CPU time / wall time.",
        table(THROUGHPUT, cells),
        "Mock vs REFERENCE (bare uvicorn, same request bytes, same event count and bytes): "
        "server CPU",
        table(OVERHEAD, compare(cells)),
    ]
    splits = cost_splits(cells)
    if splits:
        sections += [
            f"Server CPU per turn split into per-event and fixed parts (delta "
            f"{min(config.delta_tokens)} vs {max(config.delta_tokens)}: same requests and "
            "text, different event counts)",
            table(COSTS, splits),
        ]
    sections += [
        f"Server CPU per turn early (turns 1-{WINDOW}) vs late (turns {turns - WINDOW}-"
        f"{turns - 1}). slope: Theil-Sen slope of server CPU per turn vs turn index over turns "
        f"{turns // 2}-{turns - 1}, where sessions past their plan repeat their answer (events "
        "spread 0% = same output every turn there, so the slope is the cost of history); "
        f"history share: slope x {turns - 2} turns as a share of a late turn.",
        table(GROWTH, cells),
        "Traffic per turn: request body bytes, output tokens, events, payload and wire bytes "
        "received, socket reads it took",
        table(TRAFFIC, cells),
    ]
    warning = noisy_warning([c.other_busy for c in cells])
    if warning:
        sections.append(warning)
    return "\n\n".join(sections)


def _transport_list(text: str) -> tuple[Transport, ...]:
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in TRANSPORTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown transport {unknown[0]!r}; use http, ws")
    return tuple(t for t in TRANSPORTS if t in names)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Mock provider throughput, HTTP vs WebSocket, beside a bare-uvicorn "
        "reference (see docs/performance.md)."
    )
    parser.add_argument("--sessions", type=positive_int, default=50, help="per transport")
    parser.add_argument(
        "--turns",
        type=positive_int,
        default=31,
        help=f"lock-step rounds, turn 0..N-1 (default 31; at least {2 * WINDOW + 1})",
    )
    parser.add_argument(
        "--delta-tokens",
        type=int_list,
        default=(1, 8),
        help="mock --delta-tokens values to run, comma-separated (default: 1,8)",
    )
    parser.add_argument(
        "--transports", type=_transport_list, default=TRANSPORTS, help="default: http,ws"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument(
        "--serve-reference", action="store_true", help="run only the reference server"
    )
    parser.add_argument("--port", type=int, default=8100, help="port of --serve-reference")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--serve-reference``, the reference server)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve_reference:
        serve_reference(args.port)
        return 0
    if args.turns < 2 * WINDOW + 1:
        parser.error(f"--turns must be at least {2 * WINDOW + 1} (two {WINDOW}-turn windows)")
    config = BenchConfig(
        sessions=args.sessions,
        turns=args.turns,
        delta_tokens=args.delta_tokens,
        transports=args.transports,
        seed=args.seed,
        json_path=args.json,
    )
    try:
        cells = uvloop.run(run_benchmark(config))
    except (BenchError, OSError) as exc:  # OSError: refused or lost connections, timeouts
        print(f"mock_throughput: {exc}", file=sys.stderr)
        return 1
    print(report(cells, config))
    if config.json_path is not None:
        payload = {
            "config": asdict(config),
            "cells": [asdict(c) for c in cells],
            "cost_splits": [asdict(s) for s in cost_splits(cells)],
        }
        config.json_path.write_bytes(orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

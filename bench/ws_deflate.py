"""permessage-deflate on the Responses WebSocket: wire bytes, server memory and CPU.

Codex CLI (OpenAI's tungstenite fork) offers permessage-deflate, and so does the ``openai``
SDK's ``client.responses.connect()`` when asked (``websocket_connection_options=
{"compression": "deflate"}``: with its default ``max_size=None`` it passes
``compression=None`` to ``websockets``); uvicorn, which serves ``rig mock`` and ``rig
gateway``, accepts it (12-bit windows, memLevel 5). The rig's own load generator offers it
only with ``--ws-deflate yes``. This bench runs the ``websockets`` asyncio client the SDK uses, with
``compression=None`` and ``compression="deflate"`` side by side in one run, against (a)
``rig mock --preset instant`` direct and (b) ``rig gateway`` in front of such a mock (child
processes on free loopback ports):

1. **Wire bytes per turn** of a multi-turn agent session (default 8 turns: ``response.create``
   with the instructions, eight function tools, ``store: false``, ``previous_response_id``
   after the first turn and only the new items: the tool outputs of the previous answer's
   calls, or a short user message). Counted by the kernel (Linux ``TCP_INFO``
   ``bytes_acked`` and ``bytes_received`` of the client's socket, read after the handshake
   and before the close: TCP payload, WebSocket framing included), beside the server's own
   ``/stats`` application bytes over the same sessions (uncompressed: the same both ways)
   and, through the gateway, the bytes it sends upstream. Both modes alternate in batches
   against the same servers.
2. **Memory per idle connection**: N connections opened (handshake only, or ``--memory-turn``
   one finished turn each) and held idle; the server process's RSS growth / N, each
   measurement on a fresh server process, modes alternating (none, deflate, none, ...).
3. **Server CPU per turn**: the server process's CPU clock (user + system) over bursts
   of concurrent sessions at the ``instant`` preset, modes alternating (ABBA...) after a warm-up
   burst of each; through the gateway, the mock behind it too (its HTTP upstream call does
   not depend on the client's compression).

Usage (from the repository root)::

    python bench/ws_deflate.py --json ws_deflate.json   # about 1.5 minutes
    python bench/ws_deflate.py --quick                  # a smoke run, about 20 seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    machine_cpu_seconds,
    noisy_warning,
    positive_int,
    table,
)
from mock_throughput import BenchError, ServerProcess  # noqa: E402 - the server processes

from rig.fdlimit import raise_open_files_limit  # noqa: E402
from rig.loadgen.wire import TcpInfo  # noqa: E402
from rig.protocol.client import responses_body  # noqa: E402
from rig.protocol.ws import encode_client_event  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from rig.workload.corpus import Corpus  # noqa: E402
from rig.workload.scenarios import builtin_scenarios, make_task  # noqa: E402
from rig.workload.simulator import ToolSimulator  # noqa: E402
from rig.workload.tools import INSTRUCTIONS, TOOLS  # noqa: E402

T = TypeVar("T")

HOST = "127.0.0.1"
MODEL = "gpt-5"
API_KEY = "sk-bench-ws-deflate"
TURN_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
HANDSHAKES_IN_FLIGHT = 100
"""Connections the memory cell opens (or closes) at once; the rest wait their turn."""
FOLLOW_UP = "CI is still red on this branch. Please look at the failing job again and fix it."
"""The user's message after an answer without tool calls."""

UPDATE_PLAN: dict[str, Any] = {
    "type": "function",
    "name": "update_plan",
    "description": (
        "Updates the task plan.\nProvide an optional explanation and a list of plan items, "
        "each with a step and status.\nAt most one step can be in_progress at a time.\n"
    ),
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {
            "explanation": {"type": "string"},
            "plan": {
                "type": "array",
                "description": "The list of steps",
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "string"},
                        "status": {
                            "type": "string",
                            "description": "One of: pending, in_progress, completed",
                        },
                    },
                    "required": ["step", "status"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["plan"],
        "additionalProperties": False,
    },
}
"""Codex CLI's plan tool, beside the rig's seven coding tools (which the mock's scripted
model needs all of to play its plans)."""
BENCH_TOOLS: list[dict[str, Any]] = [*TOOLS, UPDATE_PLAN]

_COMPLETED = b'{"type":"response.completed"'
_FAILED = (b'{"type":"error"', b'{"type":"response.failed"', b'{"type":"response.incomplete"')


# -- registries ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientMode:
    """How the client connects: the ``compression`` argument of ``websockets``' ``connect``."""

    name: str
    compression: str | None


MODES = (ClientMode("none", None), ClientMode("deflate", "deflate"))


@dataclass(frozen=True, slots=True)
class Target:
    """A server the client talks to, and its ``/stats`` counters of client-facing
    application bytes (WebSocket message payloads, uncompressed)."""

    name: str
    app_in: str
    app_out: str
    upstream_out: str | None
    """Bytes it sends to its own upstream (the gateway's full-context calls), if any."""


TARGETS = (
    Target("mock", "bytes_in", "bytes_out", None),
    Target("gateway", "client_bytes_in", "client_bytes_out", "upstream_bytes_out"),
)


@dataclass(frozen=True)
class BenchConfig:
    """What to run."""

    turns: int
    wire_sessions: int
    wire_concurrency: int
    cpu_sessions: int
    cpu_rounds: int
    connections: int
    memory_rounds: int
    memory_turn: bool
    delta_tokens: int
    seed: int
    json_path: Path | None


# -- servers ---------------------------------------------------------------------------


class Server(ServerProcess):
    """A ``python -m rig ...`` server (``bench/mock_throughput.py``'s process: its own
    process group, its CPU clock) with the figures this bench reads."""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/responses"

    async def stats(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """``GET /stats``."""
        answer = await http.get(f"{self.base_url}/stats", timeout=30.0)
        answer.raise_for_status()
        figures: dict[str, Any] = answer.json()
        return figures

    def rss_bytes(self) -> int:
        """Resident set size now."""
        return int(self._psutil.memory_info().rss)


@dataclass
class Rig:
    """Where a run's servers come from: their settings, their log directory, and the stack
    that stops every one of them when the run ends (also on Ctrl-C or an error)."""

    delta_tokens: int
    seed: int
    http: httpx.AsyncClient
    stack: contextlib.ExitStack

    async def start(self, name: str, args: Sequence[str]) -> Server:
        """``python -m rig <args>`` on a free port, once it says it listens."""
        port = free_port()
        argv = [sys.executable, "-m", "rig", *args, "--port", str(port)]
        server = Server(name, argv, port, f"rig {name} listening on")
        self.stack.callback(server.stop)
        await asyncio.to_thread(server.wait_ready, READY_TIMEOUT_S)
        return server

    async def mock(self) -> Server:
        """``rig mock --preset instant``."""
        args = ["mock", "--preset", "instant", "--delta-tokens", str(self.delta_tokens)]
        return await self.start("mock", [*args, "--seed", str(self.seed), "--log-level", "info"])

    async def gateway(self, upstream: Server) -> Server:
        """``rig gateway`` in front of ``upstream``."""
        url = f"http://{HOST}:{upstream.port}/v1"
        return await self.start("gateway", ["gateway", "--upstream", url, "--log-level", "warning"])


@dataclass(frozen=True, slots=True)
class TargetServers:
    """The processes of one target: the one facing the client, and the mock behind it."""

    front: Server
    upstream: Server | None

    def stop(self) -> None:
        self.front.stop()
        if self.upstream is not None:
            self.upstream.stop()


async def start_target(rig: Rig, target: Target, upstream: Server | None = None) -> TargetServers:
    """A fresh front server of ``target`` (a gateway fronts ``upstream``, or a new mock)."""
    if target.name == "mock":
        return TargetServers(await rig.mock(), None)
    mock = upstream or await rig.mock()
    return TargetServers(await rig.gateway(mock), mock)


# -- the client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelBytes:
    """The kernel's byte counters of one TCP socket (payload: WebSocket frames and the
    handshake; no TCP/IP headers)."""

    sent: int
    """``tcpi_bytes_acked`` less the SYN's sequence number: sent and acknowledged."""
    received: int

    def __add__(self, other: KernelBytes) -> KernelBytes:
        return KernelBytes(self.sent + other.sent, self.received + other.received)

    def __sub__(self, other: KernelBytes) -> KernelBytes:
        return KernelBytes(self.sent - other.sent, self.received - other.received)


def kernel_bytes(ws: ClientConnection) -> KernelBytes:
    """``TCP_INFO`` of the connection's socket."""
    info = TcpInfo.of(ws.transport.get_extra_info("socket"))
    return KernelBytes(sent=info.payload_acked, received=info.bytes_received)


def negotiated(ws: ClientConnection) -> str:
    """The extensions the server accepted (its ``Sec-WebSocket-Extensions``)."""
    return ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""


async def open_connection(server: Server, mode: ClientMode) -> ClientConnection:
    """A WebSocket to ``/v1/responses`` as the openai SDK opens one (the key in the headers,
    no size limit), with ``mode``'s compression; no keep-alive pings (they would be counted),
    no proxy (loopback)."""
    ws = await connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {API_KEY}"},
        compression=mode.compression,
        max_size=None,
        ping_interval=None,
        proxy=None,
        open_timeout=60,
        close_timeout=5,
    )
    extension = negotiated(ws)
    if mode.compression is not None and "permessage-deflate" not in extension:
        await ws.close()
        raise BenchError(
            f"{server.name} did not accept permessage-deflate (was it started with "
            "--ws-deflate off?)"
        )
    return ws


class Conversation:
    """One agent session's side of a conversation: the task first, then the outputs of the
    previous answer's tool calls (or a short user message), only the new items each turn,
    with the instructions and tools every turn as Codex sends them. Session ``index``
    plays the same task in every mode."""

    def __init__(self, index: int, corpus: Corpus, seed: int):
        scenarios = builtin_scenarios()
        scenario = scenarios[sorted(scenarios)[index % len(scenarios)]]
        self._corpus = corpus
        self._seed = seed + index
        self._simulator: ToolSimulator | None = None  # made at the first tool call
        self._metadata = {"scenario": scenario.name}
        self._new_items: list[dict[str, Any]] = [
            {"role": "user", "content": make_task(scenario, index, seed).prompt}
        ]
        self._previous_id: str | None = None

    def request(self) -> bytes:
        """The next ``response.create`` event."""
        body = responses_body(
            model=MODEL,
            instructions=INSTRUCTIONS,
            tools=BENCH_TOOLS,
            store=False,
            input=self._new_items,
            previous_response_id=self._previous_id,
            metadata=self._metadata,
        )
        return encode_client_event(body)

    def absorb(self, terminal: bytes) -> None:
        """Take the answer (its ``response.completed`` event)."""
        response = orjson.loads(terminal)["response"]
        self._new_items = [
            {
                "type": "function_call_output",
                "call_id": item["call_id"],
                "output": self._tool_output(item["name"], item["arguments"]),
            }
            for item in response["output"]
            if item["type"] == "function_call"
        ] or [{"role": "user", "content": FOLLOW_UP}]
        self._previous_id = response["id"]

    def _tool_output(self, name: str, arguments: str) -> str:
        """What the tool call returns from the session's own copy of the repository."""
        if self._simulator is None:
            self._simulator = ToolSimulator(self._corpus, seed=self._seed)
        output: str = self._simulator.run(name, arguments).output
        return output


@dataclass(slots=True)
class SessionFigures:
    """What the client counted over sessions (summed)."""

    sessions: int = 0
    turns: int = 0
    messages: int = 0
    """Messages received (server events)."""
    handshake: KernelBytes = KernelBytes(0, 0)
    wire: KernelBytes = KernelBytes(0, 0)
    """Kernel bytes after the handshake, up to (before) the close."""
    app_sent: int = 0
    app_received: int = 0
    errors: list[str] = field(default_factory=list)
    extension: str = ""

    def add(self, other: SessionFigures) -> None:
        """Count ``other``'s sessions too."""
        self.sessions += other.sessions
        self.turns += other.turns
        self.messages += other.messages
        self.handshake += other.handshake
        self.wire += other.wire
        self.app_sent += other.app_sent
        self.app_received += other.app_received
        self.errors += other.errors
        self.extension = self.extension or other.extension


async def turn(ws: ClientConnection, conversation: Conversation, into: SessionFigures) -> bool:
    """One turn: send the request, read events until the terminal one; False (and an error
    counted) when the server answered ``error``, ``response.failed`` or ``incomplete``."""
    body = conversation.request()
    await ws.send(body, text=True)
    into.app_sent += len(body)
    async with asyncio.timeout(TURN_TIMEOUT_S):
        while True:
            data = await ws.recv(decode=False)
            into.messages += 1
            into.app_received += len(data)
            if data.startswith(_COMPLETED):
                conversation.absorb(data)
                into.turns += 1
                return True
            if data.startswith(_FAILED):
                into.errors.append(data[:300].decode(errors="replace"))
                return False


async def play_session(
    server: Server, mode: ClientMode, conversation: Conversation, turns: int
) -> SessionFigures:
    """One session on its own connection: ``turns`` turns, kernel bytes read after the
    handshake and before the close."""
    figures = SessionFigures(sessions=1)
    ws = await open_connection(server, mode)
    figures.extension = negotiated(ws)
    start = figures.handshake = kernel_bytes(ws)
    try:
        for _ in range(turns):
            if not await turn(ws, conversation, figures):
                break
    except (OSError, TimeoutError, WebSocketException) as exc:
        figures.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(OSError, AttributeError):  # a socket already gone
            figures.wire = kernel_bytes(ws) - start
        await ws.close()
    return figures


async def close_all(connections: Sequence[ClientConnection]) -> None:
    """Close every connection, at most ``HANDSHAKES_IN_FLIGHT`` at once (quietly: the bench
    is done with them)."""

    async def close(k: int) -> None:
        with contextlib.suppress(Exception):
            await connections[k].close()

    await gather_limited(len(connections), HANDSHAKES_IN_FLIGHT, close)


async def gather_limited(count: int, limit: int, make: Callable[[int], Awaitable[T]]) -> list[T]:
    """``make(0..count-1)``, at most ``limit`` at once."""
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> T:
        async with gate:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


# -- 1. wire bytes ---------------------------------------------------------------------


def _delta(after: dict[str, Any], before: dict[str, Any], key: str | None) -> int:
    return int(after[key] - before[key]) if key is not None else 0


async def wire_cell(
    config: BenchConfig, target: Target, servers: TargetServers, rig: Rig, corpus: Corpus
) -> dict[str, Any]:
    """Sessions in batches of ``wire_concurrency``, each batch played by both modes in turn
    (the order alternating), each mode's ``/stats`` counted around its batch."""
    client = {mode.name: SessionFigures() for mode in MODES}
    server = {mode.name: {"app_in": 0, "app_out": 0, "upstream_out": 0} for mode in MODES}
    batch_size = config.wire_concurrency
    for batch in range(math.ceil(config.wire_sessions / batch_size)):
        first = batch * batch_size
        indices = range(first, min(config.wire_sessions, first + batch_size))
        for mode in MODES if batch % 2 == 0 else MODES[::-1]:
            before = await servers.front.stats(rig.http)
            results = await asyncio.gather(
                *(
                    play_session(
                        servers.front, mode, Conversation(i, corpus, config.seed), config.turns
                    )
                    for i in indices
                )
            )
            after = await servers.front.stats(rig.http)
            for result in results:
                client[mode.name].add(result)
            counted = server[mode.name]
            counted["app_in"] += _delta(after, before, target.app_in)
            counted["app_out"] += _delta(after, before, target.app_out)
            counted["upstream_out"] += _delta(after, before, target.upstream_out)
    figures: dict[str, Any] = {}
    for mode in MODES:
        seen, counted = client[mode.name], server[mode.name]
        turns = max(1, seen.turns)
        sessions = max(1, seen.sessions)
        figures[mode.name] = {
            "sessions": seen.sessions,
            "turns": seen.turns,
            "errors": len(seen.errors),
            "error_examples": seen.errors[:3],
            "extension": seen.extension,
            "messages_per_turn": seen.messages / turns,
            "up_per_turn": seen.wire.sent / turns,
            "down_per_turn": seen.wire.received / turns,
            "handshake_up": seen.handshake.sent / sessions,
            "handshake_down": seen.handshake.received / sessions,
            "client_app_up_per_turn": seen.app_sent / turns,
            "client_app_down_per_turn": seen.app_received / turns,
            "server_app_up_per_turn": counted["app_in"] / turns,
            "server_app_down_per_turn": counted["app_out"] / turns,
            "upstream_out_per_turn": (
                counted["upstream_out"] / turns if target.upstream_out else None
            ),
        }
    none, deflate = figures["none"], figures["deflate"]
    figures["ratio"] = {
        key: _ratio(deflate[key], none[key])
        for key in (
            "up_per_turn",
            "down_per_turn",
            "server_app_up_per_turn",
            "server_app_down_per_turn",
        )
    }
    return figures


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else math.nan


# -- 2. memory per idle connection -----------------------------------------------------


async def settled_rss(server: Server) -> int:
    """The server's RSS once it stops moving: three readings 0.3 s apart within 64 KB (at
    most 10 s)."""
    readings = [server.rss_bytes()]
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        readings.append(server.rss_bytes())
        last = readings[-3:]
        if len(last) == 3 and max(last) - min(last) <= 64 * 1024:
            break
    return readings[-1]


async def memory_measurement(
    config: BenchConfig,
    target: Target,
    mode: ClientMode,
    rig: Rig,
    corpus: Corpus,
    upstream: Server | None,
) -> dict[str, Any]:
    """A fresh front server; ``connections`` connections of ``mode`` opened (and one turn
    each with ``memory_turn``) and held idle; its RSS growth / connections."""
    servers = await start_target(rig, target, upstream)
    server = servers.front
    opened: list[ClientConnection] = []
    seen = SessionFigures()
    try:
        warm = [await open_connection(server, mode) for _ in range(2)]  # first-use imports
        for k, ws in enumerate(warm):
            if config.memory_turn:
                await turn(ws, Conversation(10_000_000 + k, corpus, config.seed), SessionFigures())
            await ws.close()
        rss_before = await settled_rss(server)
        cpu_before = server.cpu_seconds()

        async def one(k: int) -> None:
            ws = await open_connection(server, mode)
            opened.append(ws)
            if config.memory_turn:
                await turn(ws, Conversation(k, corpus, config.seed), seen)

        started = time.perf_counter()
        await gather_limited(config.connections, HANDSHAKES_IN_FLIGHT, one)
        open_s = time.perf_counter() - started
        open_cpu = server.cpu_seconds() - cpu_before
        rss_after = await settled_rss(server)
        held = (await server.stats(rig.http))["connections_open"]
    finally:
        await close_all(opened)
        server.stop()
    growth = rss_after - rss_before
    return {
        "mode": mode.name,
        "connections": config.connections,
        "held": held,
        "turns": seen.turns,
        "errors": len(seen.errors),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_per_connection": growth / config.connections,
        "open_us_per_connection": 1e6 * open_cpu / config.connections,
        "open_s": open_s,
    }


async def memory_cell(
    config: BenchConfig, target: Target, rig: Rig, corpus: Corpus
) -> dict[str, Any]:
    """``memory_rounds`` rounds of (none, deflate), each on a fresh front server (a
    gateway's mock is shared: only the gateway's memory is read)."""
    upstream = await rig.mock() if target.name == "gateway" else None
    try:
        measurements = [
            await memory_measurement(config, target, mode, rig, corpus, upstream)
            for _ in range(config.memory_rounds)
            for mode in MODES
        ]
    finally:
        if upstream is not None:
            upstream.stop()
    figures: dict[str, Any] = {"measurements": measurements}
    for mode in MODES:
        own = [m for m in measurements if m["mode"] == mode.name]
        figures[mode.name] = {
            "rss_per_connection": statistics.fmean(m["rss_per_connection"] for m in own),
            "open_us_per_connection": statistics.fmean(m["open_us_per_connection"] for m in own),
        }
    figures["deflate_minus_none"] = (
        figures["deflate"]["rss_per_connection"] - figures["none"]["rss_per_connection"]
    )
    return figures


# -- 3. CPU per turn -------------------------------------------------------------------


@dataclass(slots=True)
class Burst:
    """One burst of one mode: its turns and the CPU clocks over it."""

    mode: str
    turns: int
    messages: int
    errors: list[str]
    front_cpu_s: float
    upstream_cpu_s: float
    client_cpu_s: float
    wall_s: float
    other_busy: float


async def burst(
    config: BenchConfig, mode: ClientMode, servers: TargetServers, corpus: Corpus
) -> Burst:
    """``cpu_sessions`` sessions of ``turns`` turns at once on connections opened first;
    CPU counted over the turns only. Session k plays the same conversation every burst."""
    conversations = [Conversation(i, corpus, config.seed) for i in range(config.cpu_sessions)]
    connections = await gather_limited(
        config.cpu_sessions, HANDSHAKES_IN_FLIGHT, lambda _: open_connection(servers.front, mode)
    )
    seen = [SessionFigures() for _ in connections]

    async def drive(k: int) -> None:
        try:
            for _ in range(config.turns):
                if not await turn(connections[k], conversations[k], seen[k]):
                    return
        except (OSError, TimeoutError, WebSocketException) as exc:
            seen[k].errors.append(f"{type(exc).__name__}: {exc}")

    upstream = servers.upstream
    try:
        front0 = servers.front.cpu_seconds()
        upstream0 = upstream.cpu_seconds() if upstream else 0.0
        client0, machine0, wall0 = time.process_time(), machine_cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(drive(k) for k in range(len(connections))))
        wall = time.perf_counter() - wall0
        machine = machine_cpu_seconds() - machine0
        client = time.process_time() - client0
        front = servers.front.cpu_seconds() - front0
        upstream_cpu = (upstream.cpu_seconds() - upstream0) if upstream else 0.0
    finally:
        await close_all(connections)
    return Burst(
        mode=mode.name,
        turns=sum(s.turns for s in seen),
        messages=sum(s.messages for s in seen),
        errors=[e for s in seen for e in s.errors],
        front_cpu_s=front,
        upstream_cpu_s=upstream_cpu,
        client_cpu_s=client,
        wall_s=wall,
        other_busy=max(0.0, (machine - front - upstream_cpu - client) / wall),
    )


async def cpu_cell(
    config: BenchConfig, target: Target, servers: TargetServers, corpus: Corpus
) -> dict[str, Any]:
    """A warm-up burst of each mode, then ``cpu_rounds`` bursts of each, ABBA..."""
    for mode in MODES:
        await burst(config, mode, servers, corpus)
    bursts: list[Burst] = []
    for round_ in range(config.cpu_rounds):
        for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
            bursts.append(await burst(config, mode, servers, corpus))
    figures: dict[str, Any] = {"bursts": [asdict(b) for b in bursts]}
    for mode in MODES:
        own = [b for b in bursts if b.mode == mode.name]
        turns = max(1, sum(b.turns for b in own))
        wall = sum(b.wall_s for b in own)
        figures[mode.name] = {
            "turns": sum(b.turns for b in own),
            "messages_per_turn": sum(b.messages for b in own) / turns,
            "errors": sum(len(b.errors) for b in own),
            "error_examples": [e for b in own for e in b.errors][:3],
            "front_us_per_turn": 1e6 * sum(b.front_cpu_s for b in own) / turns,
            "upstream_us_per_turn": (
                1e6 * sum(b.upstream_cpu_s for b in own) / turns if servers.upstream else None
            ),
            "client_us_per_turn": 1e6 * sum(b.client_cpu_s for b in own) / turns,
            "turns_per_s": turns / wall if wall else math.nan,
            "other_busy": max(b.other_busy for b in own),
        }
    none, deflate = figures["none"], figures["deflate"]
    added = deflate["front_us_per_turn"] - none["front_us_per_turn"]
    figures["ratio"] = {
        "front": _ratio(deflate["front_us_per_turn"], none["front_us_per_turn"]),
        "client": _ratio(deflate["client_us_per_turn"], none["client_us_per_turn"]),
        "front_added_us_per_turn": added,
        "front_added_us_per_event": added / max(1.0, deflate["messages_per_turn"]),
    }
    return figures


# -- the run ---------------------------------------------------------------------------


async def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Wire bytes and CPU per target on one set of servers, then memory on fresh ones."""
    figures: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "cpus": os.cpu_count(),
        "tools": len(BENCH_TOOLS),
        "tools_bytes": len(orjson.dumps(BENCH_TOOLS)),
        "instructions_bytes": len(INSTRUCTIONS.encode()),
        "wire": {},
        "cpu": {},
        "memory": {},
    }
    corpus = Corpus.load()

    def progress(text: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        async with httpx.AsyncClient(trust_env=False) as http:
            rig = Rig(config.delta_tokens, config.seed, http, stack)
            for target in TARGETS:
                servers = await start_target(rig, target)
                try:
                    wire = await wire_cell(config, target, servers, rig, corpus)
                    figures["wire"][target.name] = wire
                    progress(f"{target.name} wire: down x{wire['ratio']['down_per_turn']:.3f}")
                    cpu = await cpu_cell(config, target, servers, corpus)
                    figures["cpu"][target.name] = cpu
                    progress(f"{target.name} cpu: x{cpu['ratio']['front']:.2f}")
                finally:
                    servers.stop()
            for target in TARGETS:
                memory = await memory_cell(config, target, rig, corpus)
                figures["memory"][target.name] = memory
                progress(f"{target.name} memory: {memory['deflate_minus_none'] / 1e3:+.1f} KB")
    return figures


# -- report ----------------------------------------------------------------------------


def _b(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _x(value: float) -> str:
    return f"{value:.3f}x"


WireRow = tuple[str, str, dict[str, Any]]
WIRE: list[Column[WireRow]] = [
    ("target", lambda r: r[0]),
    ("mode", lambda r: r[1]),
    ("sessions", lambda r: str(r[2]["sessions"])),
    ("turns", lambda r: str(r[2]["turns"])),
    ("errors", lambda r: str(r[2]["errors"])),
    ("events/turn", lambda r: f"{r[2]['messages_per_turn']:,.0f}"),
    ("up B/turn", lambda r: _b(r[2]["up_per_turn"])),
    ("down B/turn", lambda r: _b(r[2]["down_per_turn"])),
    ("app up B/turn", lambda r: _b(r[2]["server_app_up_per_turn"])),
    ("app down B/turn", lambda r: _b(r[2]["server_app_down_per_turn"])),
    ("client app up", lambda r: _b(r[2]["client_app_up_per_turn"])),
    ("client app down", lambda r: _b(r[2]["client_app_down_per_turn"])),
    ("upstream B/turn", lambda r: _b(r[2]["upstream_out_per_turn"])),
    ("handshake up/down B", lambda r: f"{r[2]['handshake_up']:,.0f}/{r[2]['handshake_down']:,.0f}"),
]

WIRE_RATIO: list[Column[tuple[str, dict[str, Any]]]] = [
    ("target", lambda r: r[0]),
    ("up deflate/none", lambda r: _x(r[1]["up_per_turn"])),
    ("down deflate/none", lambda r: _x(r[1]["down_per_turn"])),
    ("app up deflate/none", lambda r: _x(r[1]["server_app_up_per_turn"])),
    ("app down deflate/none", lambda r: _x(r[1]["server_app_down_per_turn"])),
]

CpuRow = tuple[str, str, dict[str, Any]]
CPU: list[Column[CpuRow]] = [
    ("target", lambda r: r[0]),
    ("mode", lambda r: r[1]),
    ("turns", lambda r: f"{r[2]['turns']:,}"),
    ("errors", lambda r: str(r[2]["errors"])),
    ("server us/turn", lambda r: f"{r[2]['front_us_per_turn']:,.0f}"),
    ("mock behind us/turn", lambda r: _b(r[2]["upstream_us_per_turn"])),
    ("client us/turn", lambda r: f"{r[2]['client_us_per_turn']:,.0f}"),
    ("turns/s", lambda r: f"{r[2]['turns_per_s']:,.0f}"),
    ("other busy", lambda r: f"{r[2]['other_busy']:.2f}"),
]

CPU_RATIO: list[Column[tuple[str, dict[str, Any]]]] = [
    ("target", lambda r: r[0]),
    ("server deflate/none", lambda r: f"{r[1]['front']:.2f}x"),
    ("server added us/turn", lambda r: f"{r[1]['front_added_us_per_turn']:+,.0f}"),
    ("us/event", lambda r: f"{r[1]['front_added_us_per_event']:+.1f}"),
    ("client deflate/none", lambda r: f"{r[1]['client']:.2f}x"),
]

MemoryRow = tuple[str, int, dict[str, Any]]
MEMORY: list[Column[MemoryRow]] = [
    ("target", lambda r: r[0]),
    ("#", lambda r: str(r[1] + 1)),
    ("mode", lambda r: r[2]["mode"]),
    ("connections", lambda r: f"{r[2]['connections']:,}"),
    ("held", lambda r: f"{r[2]['held']:,}"),
    ("turns", lambda r: f"{r[2]['turns']:,}"),
    ("errors", lambda r: str(r[2]["errors"])),
    ("RSS before MB", lambda r: f"{r[2]['rss_before_bytes'] / 1e6:,.1f}"),
    ("after MB", lambda r: f"{r[2]['rss_after_bytes'] / 1e6:,.1f}"),
    ("KB/conn", lambda r: f"{r[2]['rss_per_connection'] / 1e3:,.1f}"),
    ("open us/conn", lambda r: f"{r[2]['open_us_per_connection']:,.0f}"),
]

MEMORY_SUMMARY: list[Column[tuple[str, dict[str, Any]]]] = [
    ("target", lambda r: r[0]),
    ("none KB/conn", lambda r: f"{r[1]['none']['rss_per_connection'] / 1e3:,.1f}"),
    ("deflate KB/conn", lambda r: f"{r[1]['deflate']['rss_per_connection'] / 1e3:,.1f}"),
    ("deflate - none KB", lambda r: f"{r[1]['deflate_minus_none'] / 1e3:+,.1f}"),
    ("none open us", lambda r: f"{r[1]['none']['open_us_per_connection']:,.0f}"),
    ("deflate open us", lambda r: f"{r[1]['deflate']['open_us_per_connection']:,.0f}"),
]


def report(figures: dict[str, Any], config: BenchConfig) -> str:
    """The printed figures."""
    wire, cpu, memory = figures["wire"], figures["cpu"], figures["memory"]
    extension = next((w["deflate"]["extension"] for w in wire.values()), "")
    sections = [
        f"ws_deflate bench: {figures['cpus']} CPUs; mock --preset instant --delta-tokens "
        f"{config.delta_tokens}; {config.turns} turns a session; {figures['tools']} tools "
        f"({figures['tools_bytes']:,} B JSON) and instructions ({figures['instructions_bytes']} B) "
        f"every turn; deflate negotiated: {extension or '-'}",
        f"1. Wire bytes per turn, {config.wire_sessions} sessions a mode "
        f"({config.wire_concurrency} at once), modes alternating; up/down: the client "
        "socket's TCP_INFO after the handshake (TCP payload); app: the server's /stats "
        "(message payloads, uncompressed); client app: the same as the client counted it; "
        "upstream: what the gateway sent the mock",
        table(WIRE, [(t, m.name, wire[t][m.name]) for t in wire for m in MODES]),
        table(WIRE_RATIO, [(t, wire[t]["ratio"]) for t in wire]),
        f"2. Memory per idle connection: {config.connections:,} connections "
        f"({'one finished turn each' if config.memory_turn else 'handshake only'}), a fresh "
        "server process per row; RSS growth / connections; open us: the server's CPU per "
        f"connection opened{' and its turn' if config.memory_turn else ''}",
        table(MEMORY, [(t, i, m) for t in memory for i, m in enumerate(memory[t]["measurements"])]),
        table(MEMORY_SUMMARY, [(t, memory[t]) for t in memory]),
        f"3. Server CPU per turn, `instant`: {config.cpu_sessions} sessions x {config.turns} "
        f"turns at once, {config.cpu_rounds} burst(s) a mode (ABBA...) after a warm-up of each; "
        "server: the process facing the client; client: this process",
        table(CPU, [(t, m.name, cpu[t][m.name]) for t in cpu for m in MODES]),
        table(CPU_RATIO, [(t, cpu[t]["ratio"]) for t in cpu]),
    ]
    errors = [
        f"   {section} {target} {mode.name}: {cell[mode.name]['error_examples'][0]}"
        for section, cells in (("wire", wire), ("cpu", cpu))
        for target, cell in cells.items()
        for mode in MODES
        if cell[mode.name]["error_examples"]
    ]
    if errors:
        sections.append("Errors (first of each):\n" + "\n".join(errors))
    warning = noisy_warning([b["other_busy"] for c in cpu.values() for b in c["bursts"]])
    if warning:
        sections.append(warning)
    return "\n\n".join(sections)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="permessage-deflate on the Responses WebSocket: wire bytes per turn, "
        "server memory per idle connection and server CPU per turn, compression=None beside "
        "compression='deflate', against rig mock and rig gateway."
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run, about 20 seconds")
    parser.add_argument("--turns", type=positive_int, default=8, help="turns a session (8)")
    parser.add_argument("--sessions", type=positive_int, help="wire sessions a mode (20)")
    parser.add_argument("--concurrency", type=positive_int, help="wire sessions at once (4)")
    parser.add_argument("--cpu-sessions", type=positive_int, help="sessions a CPU burst (50)")
    parser.add_argument("--cpu-rounds", type=positive_int, help="CPU bursts a mode (6)")
    parser.add_argument("--connections", type=positive_int, help="idle connections (1000)")
    parser.add_argument("--memory-rounds", type=positive_int, help="measurements a mode (2)")
    parser.add_argument(
        "--memory-turn",
        action="store_true",
        help="one finished turn on each idle connection (default: handshake only)",
    )
    parser.add_argument(
        "--delta-tokens", type=positive_int, default=1, help="mock --delta-tokens (1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = build_parser().parse_args(argv)

    def pick(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if args.quick else full)

    config = BenchConfig(
        turns=args.turns,
        wire_sessions=pick(args.sessions, 20, 4),
        wire_concurrency=pick(args.concurrency, 4, 2),
        cpu_sessions=pick(args.cpu_sessions, 50, 10),
        cpu_rounds=pick(args.cpu_rounds, 6, 1),
        connections=pick(args.connections, 1_000, 100),
        memory_rounds=pick(args.memory_rounds, 2, 1),
        memory_turn=args.memory_turn,
        delta_tokens=args.delta_tokens,
        seed=args.seed,
        json_path=args.json,
    )
    limit = raise_open_files_limit()
    if 0 < limit < config.connections + 200:
        print(
            f"ws_deflate bench: the open-files limit is {limit}, below the {config.connections:,} "
            "connections asked for; lower --connections or raise the hard limit (ulimit -Hn)",
            file=sys.stderr,
        )
        return 1
    try:
        figures = uvloop.run(run_benchmark(config))
    except (BenchError, OSError, httpx.HTTPError) as exc:
        print(f"ws_deflate bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the servers are stopped by then
        print("ws_deflate bench: interrupted", file=sys.stderr)
        return 130
    print(report(figures, config))
    if config.json_path is not None:
        config.json_path.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

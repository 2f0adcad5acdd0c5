"""The stateful gateway's cost: added latency, CPU, memory, sessions held, checkpoints.

``rig gateway --upstream http://127.0.0.1:PORT/v1`` runs in front of ``rig mock`` (both
child processes on free loopback ports); the load is WebSocket-mode sessions (the
``websockets`` library's asyncio client, one connection per session, multi-turn with
``previous_response_id`` and only the new items, the scripted coding agent of
``bench/mock_throughput.py`` with its tool outputs) run by client processes of this
script. Every figure is printed beside a reference measured in the same run:

1. **Added TTFT**: sessions through the gateway and sessions straight to the same mock,
   interleaved in the same client processes (so both see the same load), at 50 and 500
   sessions with the ``fast`` preset and a think time between turns; TTFT (first delta
   event), time to the first event and turn time, p50 and p90, gateway minus direct.
2. **CPU per turn**: the gateway's CPU clock against the mock's over the same turns
   (``instant`` preset, sessions through the gateway only).
3. **Memory per idle session**: N sessions of several turns each, left open and idle;
   the gateway's RSS growth / N against the conversation's size (client-side JSON bytes,
   and the gateway's own ``session_bytes / sessions``), with ``--store memory`` and
   ``--store redis://``; then again once the gateway packed the idle conversations
   (``--compact-after``: ``compaction_backlog`` 0 on ``/stats``).
4. **Sessions one gateway process holds**: 10,000 idle WebSockets (each with one finished
   response; a sample answers a turn at the end) and 1,000 active at the ``fast`` pacing.
5. **Checkpoints** with ``--store redis://`` (a real redis-server on a free port): Redis
   commands and reads per turn from ``INFO``, bytes and microseconds per write from
   ``/stats``, and the turn time with Redis against the memory store, in the same run.

Usage (from the repository root)::

    python bench/gateway.py --json gateway.json     # the full run, about 8 minutes
    python bench/gateway.py --quick                 # scaled down, about 2 minutes

Figures and method: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import multiprocessing.connection
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    machine_cpu_seconds,
    noisy_warning,
    percentile,
    positive_float,
    positive_int,
    table,
)
from mock_throughput import (  # noqa: E402 - the scripted agent and server processes
    MOCK_READY,
    AgentScript,
    BenchError,
    ServerProcess,
    TurnOutcome,
    TurnShape,
    follow_up_message,
    start_server,
)

from rig.fdlimit import raise_open_files_limit  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from rig.workload.corpus import Corpus  # noqa: E402
from rig.workload.scenarios import builtin_scenarios  # noqa: E402

HOST = "127.0.0.1"
GATEWAY_READY = "rig gateway listening on"
REDIS_READY = "Ready to accept connections"
TURN_TIMEOUT_S = 120.0
MEMORY_CONCURRENCY = 20
"""Turns in flight at once in the memory cells (as in their warm-up): the gateway's
upstream connection pool, which does not grow with idle sessions, stays the size it was."""
IDLE_CONCURRENCY = 100
"""Turns in flight at once while the idle cell gives every session its first response and
at its final check: about 1,000 concurrent upstream calls make httpcore's connection pool
scan every waiting request against every connection on each event (quadratic; the gateway
then answers nothing, ``/stats`` included, for minutes), which is what the active cell
measures, not what holding idle sessions costs."""
HANDSHAKES_IN_FLIGHT = 200
"""Connections a client process opens at once (the rest wait their turn)."""

FLAT_PRESET = """\
# The `fast` preset's pacing without its context-size terms and jitter: the mock's
# simulated latency is the same whether the context came whole (through the gateway,
# over HTTP) or as a continuation (direct, over WebSocket).
name: fast-flat
description: fast, with parse, rehydrate and prefill terms and jitter zeroed.
base_ms: 80
parse_ms_per_kb: 0
rehydrate_ms_per_kb: 0
prefill_ms_per_1k_tokens: 0
tokens_per_s: 1000
jitter: 0
prompt_cache_hit_rate: 0.5
reasoning_tokens: 120
"""

_COMPLETED = b'{"type":"response.completed"'
_SSE_COMPLETED = b'data: {"type":"response.completed"'
_SSE_DELTA = b".delta\ndata: "
HTTP_LABELS = frozenset({"direct-http"})
DIRECT = frozenset({"direct", "direct-http"})
"""Labels of sessions that go to the mock itself: ``direct`` continues over WebSocket
(a provider that keeps state), ``direct-http`` sends the whole conversation over HTTP (the
stateless provider the gateway fronts: what a client without the gateway does)."""
"""Labels whose sessions are stateless: the whole conversation over HTTP every turn."""
_FAILED = (b'{"type":"error"', b'{"type":"response.failed"', b'{"type":"response.incomplete"')


# -- the client processes -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """One session: its index, its label, where it goes, and its task (which picks the
    scenario and the prompt: session k of each label plays the same task)."""

    index: int
    label: str
    port: int
    task: int


@dataclass(slots=True)
class Samples:
    """What the turns of one label looked like (milliseconds, bytes)."""

    ttft_ms: list[float] = field(default_factory=list)
    first_event_ms: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    conversation_bytes: list[int] = field(default_factory=list)
    """The client's JSON size of the whole conversation after each turn."""
    new_bytes: list[int] = field(default_factory=list)
    """The request's size plus the answer's output items, each turn."""
    final_conversation_bytes: list[int] = field(default_factory=list)
    """Each session's conversation at the end of a ``run``."""
    errors: list[str] = field(default_factory=list)

    def extend(self, other: Samples) -> None:
        """Add another process's samples."""
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))


class MeasuredScript(AgentScript):
    """The scripted agent, measuring its conversation as JSON bytes."""

    def conversation_bytes(self) -> int:
        """The whole conversation so far (every input item and every output item)."""
        return len(orjson.dumps(self._transcript))


class Session:
    """One WebSocket-mode session: one connection, the agent's turns on it."""

    def __init__(self, spec: SessionSpec, corpus: Corpus, follow_up: str, seed: int):
        self.spec = spec
        self.corpus = corpus
        self.follow_up = follow_up
        self.seed = seed
        self.ws: ClientConnection | None = None
        self.http: aiohttp.ClientSession | None = None
        self.turns = 0
        self.conversations = 0
        self.script = self._new_script()

    def _new_script(self) -> MeasuredScript:
        scenarios = builtin_scenarios()
        names = sorted(scenarios)
        index = self.spec.task + 1_000_000 * self.conversations
        self.conversations += 1
        return MeasuredScript(
            "http" if self.over_http else "ws",
            scenarios[names[self.spec.task % len(names)]],
            index,
            seed=self.seed,
            corpus=self.corpus,
            follow_up=self.follow_up,
        )

    @property
    def over_http(self) -> bool:
        """A stateless session: the whole conversation in every ``POST /v1/responses``."""
        return self.spec.label in HTTP_LABELS

    async def open(self) -> None:
        """Connect (no keep-alive pings, no compression, as the rig's ``ws`` transport);
        over HTTP, a client of its own whose one keep-alive connection the turns reuse."""
        if self.over_http:
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1, force_close=False),
                timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_S),
                auto_decompress=False,
            )
            async with self.http.get(f"http://{HOST}:{self.spec.port}/health") as answer:
                await answer.read()  # the connection is open before the first turn, as a ws's
            return
        self.ws = await connect(
            f"ws://{HOST}:{self.spec.port}/v1/responses",
            ping_interval=None,
            compression=None,
            max_size=None,
            open_timeout=60,
            close_timeout=5,
        )

    async def turn(self, samples: Samples, max_turns: int) -> None:
        """One turn: send the next request, read its events until the terminal one."""
        if self.turns >= max_turns:  # start a new conversation on the same connection
            self.script, self.turns = self._new_script(), 0
        body, _ = self.script.request()
        started = time.perf_counter()
        if self.http is not None:
            events, payload, now, first_event, ttft, data = await self._post(body, started)
        else:
            events, payload, now, first_event, ttft, data = await self._exchange(body)
        samples.first_event_ms.append(1e3 * (first_event - started))
        samples.ttft_ms.append(1e3 * ((ttft or now) - started))
        samples.turn_ms.append(1e3 * (now - started))
        output = orjson.loads(data)["response"]["output"]
        self.script.absorb(TurnOutcome(TurnShape(events, payload, len(data)), 0, 0, data))
        samples.new_bytes.append(len(body) + len(orjson.dumps(output)))
        samples.conversation_bytes.append(self.script.conversation_bytes())
        self.turns += 1

    async def _exchange(self, body: bytes) -> tuple[int, int, float, float, float, bytes]:
        """Send ``response.create``; read the events as they come, timing the first one,
        the first delta and the terminal one."""
        assert self.ws is not None
        first_event = ttft = 0.0
        events = payload = 0
        await self.ws.send(body, text=True)
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                data = await self.ws.recv(decode=False)
                now = time.perf_counter()
                events += 1
                payload += len(data)
                if not first_event:
                    first_event = now
                if not ttft and b'.delta"' in data[:64]:
                    ttft = now
                if data.startswith(_COMPLETED):
                    break
                if data.startswith(_FAILED):
                    raise BenchError(f"server answered {data[:300]!r}")
        return events, payload, now, first_event, ttft, data

    async def _post(
        self, body: bytes, started: float
    ) -> tuple[int, int, float, float, float, bytes]:
        """``POST /v1/responses`` with the whole conversation; read the event stream as
        it arrives, timing the first chunk (it holds ``response.created``), the first
        chunk with a delta event and the end."""
        assert self.http is not None
        first_event = ttft = 0.0
        received = bytearray()
        url = f"http://{HOST}:{self.spec.port}/v1/responses"
        headers = {"content-type": "application/json"}
        async with self.http.post(url, data=body, headers=headers) as answer:
            if answer.status != 200:
                raise BenchError(
                    f"server answered {answer.status}: {(await answer.read())[:300]!r}"
                )
            async for chunk in answer.content.iter_any():
                now = time.perf_counter()
                if not first_event:
                    first_event = now
                if not ttft and _SSE_DELTA in received[-64:] + chunk:
                    ttft = now
                received += chunk
        now = time.perf_counter()
        events = received.count(b"\n\n")
        start = received.rfind(_SSE_COMPLETED)
        if start < 0:
            raise BenchError(f"the stream ended without response.completed: {received[-300:]!r}")
        data = bytes(received[start + len(b"data: ") : received.index(b"\n", start)])
        return events, len(received), now, first_event, ttft or now, data

    async def close(self) -> None:
        """Close the connection (quietly: the bench is done with it)."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.http is not None:
            with contextlib.suppress(Exception):
                await self.http.close()


@dataclass(slots=True)
class WorkerReply:
    """A client process's answer to one command."""

    samples: dict[str, Samples]
    cpu_s: float
    wall_s: float
    opened: int = 0
    open_errors: list[str] = field(default_factory=list)


class ClientWorker:
    """The sessions of one client process, driven by commands from the bench."""

    def __init__(self, specs: Sequence[SessionSpec], seed: int):
        corpus = Corpus.load()
        follow_up = follow_up_message(corpus)
        self.sessions = [Session(spec, corpus, follow_up, seed) for spec in specs]
        self.open_sessions: list[Session] = []

    async def open(self) -> WorkerReply:
        gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
        errors: list[str] = []

        async def one(session: Session) -> None:
            async with gate:
                try:
                    await session.open()
                    self.open_sessions.append(session)
                except Exception as exc:  # a refused or failed handshake is a figure
                    errors.append(f"{type(exc).__name__}: {exc}")

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(s) for s in self.sessions))
        return WorkerReply(
            {},
            time.process_time() - cpu,
            time.perf_counter() - wall,
            len(self.open_sessions),
            errors[:20],
        )

    async def run(
        self,
        *,
        turns: int | None,
        duration_s: float | None,
        think_s: float,
        warmup_s: float,
        max_turns: int,
        sample: int | None,
        concurrency: int | None,
    ) -> WorkerReply:
        """Turns on every open session (or ``sample`` of them): ``turns`` each, or as many
        as fit in ``duration_s``, ``think_s`` apart (the first at a random offset within
        one think time); turns started before ``warmup_s`` are not sampled."""
        sessions = self.open_sessions
        if sample is not None:
            sessions = random.Random(0).sample(sessions, min(sample, len(sessions)))
        samples: dict[str, Samples] = {}
        warm = Samples()  # discarded
        gate = asyncio.Semaphore(concurrency) if concurrency else None
        start = time.perf_counter()
        deadline = None if duration_s is None else start + duration_s

        async def drive(session: Session) -> None:
            own = samples.setdefault(session.spec.label, Samples())
            if think_s:
                await asyncio.sleep(random.random() * think_s)
            done = 0
            while (turns is None or done < turns) and (
                deadline is None or time.perf_counter() < deadline
            ):
                target = own if time.perf_counter() - start >= warmup_s else warm
                try:
                    if gate is None:
                        await session.turn(target, max_turns)
                    else:
                        async with gate:
                            await session.turn(target, max_turns)
                except Exception as exc:  # counted, and the session stops
                    own.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    return
                done += 1
                if think_s:
                    await asyncio.sleep(think_s)
            own.final_conversation_bytes.append(session.script.conversation_bytes())

        cpu = time.process_time()
        await asyncio.gather(*(drive(s) for s in sessions))
        return WorkerReply(samples, time.process_time() - cpu, time.perf_counter() - start)

    async def close(self) -> WorkerReply:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(s.close() for s in self.open_sessions))
        self.open_sessions = []
        return WorkerReply({}, time.process_time() - cpu, time.perf_counter() - wall)


def _worker_main(
    specs: Sequence[SessionSpec], seed: int, pipe: multiprocessing.connection.Connection
) -> None:
    """A client process: obey ``(command, options)`` messages until ``stop``."""
    raise_open_files_limit()

    async def serve() -> None:
        worker = ClientWorker(specs, seed)
        loop = asyncio.get_running_loop()
        pipe.send("ready")
        while True:
            command, options = await loop.run_in_executor(None, pipe.recv)
            if command == "stop":
                return
            try:
                reply = await getattr(worker, command)(**options)
            except Exception as exc:
                pipe.send(f"{type(exc).__name__}: {exc}")
                continue
            pipe.send(reply)

    uvloop.run(serve())


class Clients:
    """The client processes of a cell, each holding its share of the sessions."""

    def __init__(self, specs: Sequence[SessionSpec], processes: int, seed: int):
        context = multiprocessing.get_context("spawn")
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.processes = []
        for k in range(processes):
            ours, theirs = context.Pipe()
            share = list(specs[k::processes])
            process = context.Process(target=_worker_main, args=(share, seed, theirs))
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise BenchError("a client process did not start")

    @property
    def pids(self) -> list[int]:
        """The client processes' ids."""
        return [p.pid for p in self.processes if p.pid is not None]

    def command(self, name: str, **options: Any) -> WorkerReply:
        """Send a command to every process; merge their replies (CPU summed, wall max)."""
        for pipe in self.pipes:
            pipe.send((name, options))
        merged = WorkerReply({}, 0.0, 0.0)
        for pipe in self.pipes:
            reply = pipe.recv()
            if isinstance(reply, str):
                raise BenchError(f"client process failed: {reply}")
            for label, samples in reply.samples.items():
                merged.samples.setdefault(label, Samples()).extend(samples)
            merged.cpu_s += reply.cpu_s
            merged.wall_s = max(merged.wall_s, reply.wall_s)
            merged.opened += reply.opened
            merged.open_errors += reply.open_errors
        return merged

    def stop(self) -> None:
        """Stop every process."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", {}))
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


# -- servers --------------------------------------------------------------------------


def start_mock(preset: str, delta_tokens: int, seed: int) -> ServerProcess:
    """``rig mock`` on a free port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "rig",
        "mock",
        "--preset",
        preset,
        "--port",
        str(port),
        "--seed",
        str(seed),
        "--delta-tokens",
        str(delta_tokens),
        "--log-level",
        "info",
    ]
    return start_server(f"mock ({preset})", argv, port, MOCK_READY)


def start_gateway(mock: ServerProcess, store: str = "memory") -> ServerProcess:
    """``rig gateway`` in front of ``mock`` on a free port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "rig",
        "gateway",
        "--port",
        str(port),
        "--upstream",
        f"http://{HOST}:{mock.port}/v1",
        "--store",
        store,
        "--log-level",
        "warning",
    ]
    return start_server(f"gateway ({store.partition(':')[0]})", argv, port, GATEWAY_READY)


def start_redis(directory: str) -> ServerProcess:
    """A real redis-server on a free port, no persistence, data in ``directory``."""
    port = free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        directory,
    ]
    return start_server("redis", argv, port, REDIS_READY)


def stats(server: ServerProcess) -> dict[str, Any]:
    """The gateway's ``GET /stats``."""
    with urllib.request.urlopen(f"http://{HOST}:{server.port}/stats", timeout=30) as answer:
        figures: dict[str, Any] = orjson.loads(answer.read())
        return figures


def redis_info(server: ServerProcess) -> dict[str, int]:
    """Commands and reads the server processed: ``INFO stats`` and ``INFO commandstats``."""
    import redis

    client = redis.Redis(host=HOST, port=server.port)
    try:
        info = client.info("stats")
        commands = client.info("commandstats")
    finally:
        client.close()
    figures = {
        "total_commands_processed": int(info["total_commands_processed"]),
        "total_reads_processed": int(info.get("total_reads_processed", 0)),
    }
    for name, values in commands.items():
        figures[name.removeprefix("cmdstat_")] = int(values["calls"])
    return figures


# -- measurement ----------------------------------------------------------------------


@dataclass
class Meter:
    """CPU clocks of the servers and clients and the machine over one interval."""

    servers: dict[str, ServerProcess]
    client_pids: list[int]
    _start: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        values = {name: server.cpu_seconds() for name, server in self.servers.items()}
        values["machine"] = machine_cpu_seconds()
        values["wall"] = time.perf_counter()
        values["bench"] = time.process_time()
        return values

    def __enter__(self) -> Meter:
        self._start = self._read()
        return self

    def stop(self, client_cpu_s: float) -> dict[str, float]:
        """Busy cores of each process (CPU seconds / wall), the client's, and others'."""
        end = self._read()
        delta = {name: end[name] - self._start[name] for name in end}
        wall = delta.pop("wall")
        machine = delta.pop("machine")
        ours = sum(delta.values()) + client_cpu_s
        figures = {f"{name}_cpu_s": value for name, value in delta.items()}
        figures |= {f"{name}_busy": value / wall for name, value in delta.items()}
        figures |= {
            "client_cpu_s": client_cpu_s,
            "client_busy": client_cpu_s / wall,
            "other_busy": max(0.0, (machine - ours) / wall),
            "wall_s": wall,
        }
        return figures

    def __exit__(self, *exc: object) -> None:
        pass


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and the count."""
    if not values:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan}
    ordered = sorted(values)
    return {"n": len(ordered), **{f"p{q}": percentile(ordered, q) for q in (50, 90, 99)}}


def latency(samples: Samples) -> dict[str, Any]:
    """The latency figures of one label."""
    return {
        "turns": len(samples.turn_ms),
        "errors": len(samples.errors),
        "error_examples": samples.errors[:3],
        "ttft_ms": percentiles(samples.ttft_ms),
        "first_event_ms": percentiles(samples.first_event_ms),
        "turn_ms": percentiles(samples.turn_ms),
        "conversation_bytes_mean": statistics.fmean(samples.conversation_bytes or [0]),
        "new_bytes_mean": statistics.fmean(samples.new_bytes or [0]),
    }


def _interleave(count: int, labels: Sequence[tuple[str, int]]) -> list[SessionSpec]:
    """Sessions 0..count-1 assigned to the labels in turn (session i: label i mod n, task
    i div n), so each label plays the same tasks."""
    n = len(labels)
    return [SessionSpec(i, *labels[i % n], task=i // n) for i in range(count)]


def _client_processes(sessions: int, per_process: int) -> int:
    return max(1, math.ceil(sessions / per_process))


# -- the cells ------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What to run."""

    latency_sessions: tuple[int, ...]
    latency_seconds: float
    think_s: float
    max_turns: int
    delta_tokens: int
    cpu_sessions: int
    cpu_turns: int
    cpu_deltas: tuple[int, ...]
    memory_sessions: int
    memory_turns: int
    idle_sessions: int
    idle_check: int
    active_sessions: int
    active_seconds: float
    checkpoint_sessions: int
    sessions_per_client: int
    seed: int
    json_path: Path | None
    cells: tuple[str, ...] = ("cpu", "memory", "latency", "sessions")


def latency_cell(
    config: BenchConfig, sessions: int, mock: ServerProcess, targets: dict[str, ServerProcess]
) -> dict[str, Any]:
    """Sessions interleaved over ``targets`` (label -> server) for ``latency_seconds``."""
    labels = [(label, server.port) for label, server in targets.items()]
    specs = _interleave(sessions, labels)
    processes = _client_processes(sessions, config.sessions_per_client)
    clients = Clients(specs, processes, config.seed)
    servers = {"mock": mock, **{k: v for k, v in targets.items() if k not in DIRECT}}
    try:
        opened = clients.command("open")
        if opened.opened != sessions:
            raise BenchError(f"{opened.opened} of {sessions} opened: {opened.open_errors[:3]}")
        gateways = {k: v for k, v in targets.items() if k not in DIRECT}
        before = {label: stats(server) for label, server in gateways.items()}
        with Meter(servers, clients.pids) as meter:
            reply = clients.command(
                "run",
                turns=None,
                duration_s=config.latency_seconds,
                think_s=config.think_s,
                warmup_s=min(5.0, config.latency_seconds / 4),
                max_turns=config.max_turns,
                sample=None,
                concurrency=None,
            )
            busy = meter.stop(reply.cpu_s)
        after = {label: stats(server) for label, server in gateways.items()}
        clients.command("close")
    finally:
        clients.stop()
    figures = {label: latency(reply.samples.get(label, Samples())) for label, _ in labels}
    for label in gateways:
        figures[label]["gateway"] = gateway_counters(before[label], after[label])
    turns = sum(f["turns"] for f in figures.values())
    return {
        "sessions": sessions,
        "client_processes": processes,
        "labels": figures,
        "turns_per_s": turns / reply.wall_s,
        **busy,
    }


def gateway_counters(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """What the gateway counted over a cell: per write and per upstream call."""
    delta = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    writes = max(1, delta["checkpoint_writes"])
    calls = max(1, delta["upstream_requests"])
    return {
        "responses_completed": delta["responses_completed"],
        "upstream_requests": delta["upstream_requests"],
        "checkpoint_writes": delta["checkpoint_writes"],
        "checkpoint_failures": delta["checkpoint_failures"],
        "checkpoint_us_per_write": delta["checkpoint_us"] / writes,
        "checkpoint_bytes_per_write": delta["checkpoint_bytes"] / writes,
        "upstream_ttfb_us_per_call": delta["upstream_ttfb_us"] / calls,
        # The gateway's own time to a streamed response's first event (older gateways: 0).
        "relay_us_per_response": delta.get("relay_us", 0) / max(1, delta.get("relayed_first", 0)),
        "upstream_bytes_out_per_call": delta["upstream_bytes_out"] / calls,
        "client_bytes_in_per_call": delta["client_bytes_in"] / calls,
        "hits_connection": delta["hits_connection"],
        "misses_not_found": delta["misses_not_found"],
    }


CPU_CONVERSATION_TURNS = 22
"""The CPU cell's conversations: 2 warm-up turns and 20 measured; with ``--cpu-turns``
above 20 a session starts a new conversation after 22 turns (the same mix of turns)."""


def cpu_cell(config: BenchConfig, delta: int) -> dict[str, Any]:
    """Gateway CPU against the mock's over the same turns (``instant``, gateway only)."""
    mock = start_mock("instant", delta, config.seed)
    gateway = start_gateway(mock)
    try:
        specs = _interleave(config.cpu_sessions, [("gateway", gateway.port)])
        clients = Clients(specs, 1, config.seed)
        try:
            clients.command("open")
            clients.command(  # warm-up: imports, caches, the upstream pool
                "run",
                turns=2,
                duration_s=None,
                think_s=0.0,
                warmup_s=0.0,
                max_turns=CPU_CONVERSATION_TURNS,
                sample=None,
                concurrency=None,
            )
            before = stats(gateway)
            with Meter({"gateway": gateway, "mock": mock}, clients.pids) as meter:
                reply = clients.command(
                    "run",
                    turns=config.cpu_turns,
                    duration_s=None,
                    think_s=0.0,
                    warmup_s=0.0,
                    max_turns=CPU_CONVERSATION_TURNS,
                    sample=None,
                    concurrency=None,
                )
                busy = meter.stop(reply.cpu_s)
            after = stats(gateway)
            clients.command("close")
        finally:
            clients.stop()
    finally:
        gateway.stop()
        mock.stop()
    samples = reply.samples["gateway"]
    turns = len(samples.turn_ms)
    completed = after["responses_completed"] - before["responses_completed"]
    if completed != turns or samples.errors:
        raise BenchError(
            f"cpu cell: {turns} turns, gateway completed {completed}: {samples.errors[:3]}"
        )
    gateway_us = 1e6 * busy["gateway_cpu_s"] / turns
    mock_us = 1e6 * busy["mock_cpu_s"] / turns
    return {
        "delta_tokens": delta,
        "sessions": config.cpu_sessions,
        "turns": turns,
        "gateway_cpu_us_per_turn": gateway_us,
        "mock_cpu_us_per_turn": mock_us,
        "ratio": gateway_us / mock_us,
        "client_cpu_us_per_turn": 1e6 * reply.cpu_s / turns,
        "upstream_bytes_out_per_turn": (after["upstream_bytes_out"] - before["upstream_bytes_out"])
        / turns,
        "client_bytes_in_per_turn": (after["client_bytes_in"] - before["client_bytes_in"]) / turns,
        "turns_per_s": turns / reply.wall_s,
        **busy,
    }


def memory_cell(
    config: BenchConfig, mock: ServerProcess, store: str, redis: ServerProcess | None
) -> dict[str, Any]:
    """N sessions of ``memory_turns`` turns each, then idle: RSS growth per session."""
    gateway = start_gateway(mock, store)
    try:
        warm = Clients(_interleave(20, [("gateway", gateway.port)]), 1, config.seed + 1)
        try:  # the code paths and pools warmed, then closed: the baseline
            warm.command("open")
            warm.command(
                "run",
                turns=2,
                duration_s=None,
                think_s=0.0,
                warmup_s=0.0,
                max_turns=10,
                sample=None,
                concurrency=None,
            )
            warm.command("close")
        finally:
            warm.stop()
        baseline = _settled_stats(gateway)
        redis_before = redis_info(redis) if redis else None
        sessions = config.memory_sessions
        specs = _interleave(sessions, [("gateway", gateway.port)])
        processes = _client_processes(sessions, config.sessions_per_client)
        clients = Clients(specs, processes, config.seed)
        try:
            opened = clients.command("open")
            if opened.opened != sessions:
                raise BenchError(f"{opened.opened} of {sessions} opened: {opened.open_errors[:3]}")
            connected = _settled_stats(gateway)
            with Meter({"gateway": gateway, "mock": mock}, clients.pids) as meter:
                reply = clients.command(
                    "run",
                    turns=config.memory_turns,
                    duration_s=None,
                    think_s=0.0,
                    warmup_s=0.0,
                    max_turns=config.memory_turns + 1,
                    sample=None,
                    concurrency=max(1, MEMORY_CONCURRENCY // processes),
                )
                busy = meter.stop(reply.cpu_s)
            redis_after = redis_info(redis) if redis else None
            idle = _settled_stats(gateway)
            packed = _packed_stats(gateway)
            clients.command("close")
        finally:
            clients.stop()
    finally:
        gateway.stop()
    samples = reply.samples["gateway"]
    turns = len(samples.turn_ms)
    rss_growth = idle["memory_rss_bytes"] - baseline["memory_rss_bytes"]
    rss_connections = connected["memory_rss_bytes"] - baseline["memory_rss_bytes"]
    rss_conversations = idle["memory_rss_bytes"] - connected["memory_rss_bytes"]
    held = idle["sessions"] - baseline["sessions"]
    session_bytes = idle["session_bytes"] - baseline["session_bytes"]
    client_conversation = statistics.fmean(samples.final_conversation_bytes or [0])
    result: dict[str, Any] = {
        "store": store.partition(":")[0],
        "sessions": sessions,
        "turns_per_session": config.memory_turns,
        "turns": turns,
        "errors": len(samples.errors),
        "sessions_held": held,
        "rss_growth_bytes": rss_growth,
        "rss_per_session": rss_growth / sessions,
        "gateway_session_bytes_per_session": session_bytes / max(1, held),
        "client_conversation_bytes": client_conversation,
        "ratio_to_client_size": rss_growth / sessions / client_conversation,
        "ratio_to_gateway_size": rss_growth / sessions / (session_bytes / max(1, held)),
        "rss_connection_per_session": rss_connections / sessions,
        "rss_conversation_per_session": rss_conversations / sessions,
        "conversation_ratio_to_client_size": rss_conversations / sessions / client_conversation,
        "baseline_rss_bytes": baseline["memory_rss_bytes"],
        "idle_rss_bytes": idle["memory_rss_bytes"],
        **busy,
    }
    if packed is not None:  # the same sessions once the gateway packed them (idle longer)
        rss_packed = packed["memory_rss_bytes"] - baseline["memory_rss_bytes"]
        result["packed_rss_bytes"] = packed["memory_rss_bytes"]
        result["packed_rss_per_session"] = rss_packed / sessions
        result["packed_ratio_to_client_size"] = rss_packed / sessions / client_conversation
        result["packed_seconds"] = packed["waited_s"]
        for name in ("compacted_bytes", "compacted_to_bytes", "compactions", "compaction_us"):
            result[name] = packed[name] - baseline[name]
    if redis_before is not None and redis_after is not None:
        result["checkpoint"] = checkpoint_figures(
            baseline, idle, redis_before, redis_after, turns, samples
        )
    return result


def _settled_stats(gateway: ServerProcess) -> dict[str, Any]:
    """``/stats`` once the RSS stops moving (three readings 0.5 s apart within 1%)."""
    readings = [stats(gateway)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        readings.append(stats(gateway))
        last = [r["memory_rss_bytes"] for r in readings[-3:]]
        if len(last) == 3 and max(last) - min(last) <= 0.01 * max(last):
            break
    return readings[-1]


def _packed_stats(gateway: ServerProcess, timeout_s: float = 60.0) -> dict[str, Any] | None:
    """``/stats`` once the gateway packed every idle conversation (``compaction_backlog``
    0, then the RSS settled), with ``waited_s``; ``None`` for a gateway that does not pack
    (its ``/stats`` has no ``compaction_backlog``)."""
    started = time.monotonic()
    while True:
        figures = stats(gateway)
        if figures.get("compaction_backlog") is None:
            return None
        if figures["compaction_backlog"] == 0:
            break
        if time.monotonic() - started > timeout_s:
            raise BenchError(f"{figures['compaction_backlog']} conversations still unpacked")
        time.sleep(0.5)
    settled = _settled_stats(gateway)
    settled["waited_s"] = time.monotonic() - started
    return settled


def checkpoint_figures(
    before: dict[str, Any],
    after: dict[str, Any],
    redis_before: dict[str, int],
    redis_after: dict[str, int],
    turns: int,
    samples: Samples,
) -> dict[str, Any]:
    """Checkpoint cost per turn from the gateway's counters and Redis's own."""
    writes = after["checkpoint_writes"] - before["checkpoint_writes"]
    written = after["checkpoint_bytes"] - before["checkpoint_bytes"]
    micros = after["checkpoint_us"] - before["checkpoint_us"]
    commands = {
        name: redis_after.get(name, 0) - redis_before.get(name, 0)
        for name in redis_after
        if redis_after.get(name, 0) != redis_before.get(name, 0)
    }
    own = sum(v for k, v in commands.items() if k in ("info", "hello") or k.startswith("client"))
    commands["gateway_commands"] = commands.get("total_commands_processed", 0) - own
    commands["gateway_reads"] = commands.get("total_reads_processed", 0) - own
    return {
        "turns": turns,
        "writes": writes,
        "failures": after["checkpoint_failures"] - before["checkpoint_failures"],
        "writes_per_turn": writes / turns,
        "bytes_per_write": written / max(1, writes),
        "us_per_write": micros / max(1, writes),
        "redis_commands": commands,
        "redis_commands_per_turn": commands["gateway_commands"] / turns,
        "redis_reads_per_turn": commands["gateway_reads"] / turns,
        "conversation_bytes_mean": statistics.fmean(samples.conversation_bytes or [0]),
        "new_bytes_mean": statistics.fmean(samples.new_bytes or [0]),
    }


def idle_cell(config: BenchConfig, mock: ServerProcess) -> dict[str, Any]:
    """``idle_sessions`` WebSockets with one finished response each, held idle; a sample
    answers a turn at the end."""
    gateway = start_gateway(mock)
    sessions = config.idle_sessions
    try:
        specs = _interleave(sessions, [("gateway", gateway.port)])
        processes = _client_processes(sessions, 2_500)
        clients = Clients(specs, processes, config.seed)
        try:
            baseline = stats(gateway)
            opened = clients.command("open")
            first = clients.command(
                "run",
                turns=1,
                duration_s=None,
                think_s=0.0,
                warmup_s=0.0,
                max_turns=10,
                sample=None,
                concurrency=IDLE_CONCURRENCY // processes,
            )
            idle = _settled_stats(gateway)
            with Meter({"gateway": gateway}, clients.pids) as meter:
                time.sleep(5.0)  # idle: what the gateway spends holding them
                idle_busy = meter.stop(0.0)
            check = clients.command(
                "run",
                turns=1,
                duration_s=None,
                think_s=0.0,
                warmup_s=0.0,
                max_turns=10,
                sample=config.idle_check // processes,
                concurrency=IDLE_CONCURRENCY // processes,
            )
            after = stats(gateway)
            clients.command("close")
        finally:
            clients.stop()
    finally:
        gateway.stop()
    first_samples = first.samples.get("gateway", Samples())
    check_samples = check.samples.get("gateway", Samples())
    return {
        "sessions": sessions,
        "client_processes": processes,
        "opened": opened.opened,
        "open_errors": opened.open_errors[:5],
        "first_turns": len(first_samples.turn_ms),
        "first_errors": len(first_samples.errors),
        "first_error_examples": first_samples.errors[:3],
        "connections_open": idle["connections_open"],
        "sessions_held": idle["sessions"],
        "rss_baseline_bytes": baseline["memory_rss_bytes"],
        "rss_idle_bytes": idle["memory_rss_bytes"],
        "rss_per_session": (idle["memory_rss_bytes"] - baseline["memory_rss_bytes"]) / sessions,
        "idle_gateway_busy": idle_busy["gateway_busy"],
        "checked": len(check_samples.turn_ms) + len(check_samples.errors),
        "check_answered": len(check_samples.turn_ms),
        "check_errors": len(check_samples.errors),
        "check_error_examples": check_samples.errors[:3],
        "check_turn_ms": percentiles(check_samples.turn_ms),
        "connections_open_after": after["connections_open"],
        "misses_after": after["misses_not_found"],
    }


def active_cell(config: BenchConfig, mock: ServerProcess) -> dict[str, Any]:
    """``active_sessions`` all running turns at the ``fast`` pacing with the think time."""
    gateway = start_gateway(mock)
    try:
        result = latency_cell(
            config_with(config, config.active_seconds),
            config.active_sessions,
            mock,
            {"gateway": gateway},
        )
        result["gateway_stats"] = stats(gateway)
    finally:
        gateway.stop()
    return result


def config_with(config: BenchConfig, seconds: float) -> BenchConfig:
    """``config`` with another latency duration."""
    return BenchConfig(**{**asdict(config), "latency_seconds": seconds})


class _Skip(Exception):
    """A cell not asked for (``--cells``)."""


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Every cell, in order; servers started fresh where a cell needs a clean process."""
    figures: dict[str, Any] = {"config": asdict(config), "cpus": os.cpu_count()}

    def progress(text: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)
        if config.json_path is not None:  # what is done so far survives a later failure
            config.json_path.write_bytes(orjson.dumps(figures, default=str))

    # 2. CPU per turn (instant), first: the quietest cells.
    figures["cpu"] = []
    for delta in config.cpu_deltas if "cpu" in config.cells else ():
        figures["cpu"].append(cpu_cell(config, delta))
        progress(f"cpu delta {delta}: ratio {figures['cpu'][-1]['ratio']:.2f}")

    with tempfile.TemporaryDirectory(prefix="rig-bench-redis-") as directory:
        redis = start_redis(directory)
        try:
            # 3 and 5. Memory per idle session and checkpoints (instant mock).
            mock = start_mock("instant", config.delta_tokens, config.seed)
            try:
                figures["memory"] = []
                stores = ("memory", f"redis://{HOST}:{redis.port}/0")
                for store in stores if "memory" in config.cells else ():
                    cell = memory_cell(config, mock, store, redis if "redis" in store else None)
                    figures["memory"].append(cell)
                    packed = _packed(cell, "packed_ratio_to_client_size", 1, "{:.2f}x")
                    progress(
                        f"memory {cell['store']}: {cell['ratio_to_client_size']:.2f}x, "
                        f"packed {packed}"
                    )
            finally:
                mock.stop()
            # 1 and 5. Latency through the gateway vs direct; Redis vs memory store. The
            # `fast` pacing with its context-size terms zeroed (FLAT_PRESET), so the mock's
            # simulated latency does not depend on how the context reached it.
            flat = Path(directory) / "fast-flat.yaml"
            flat.write_text(FLAT_PRESET)
            mock = start_mock(str(flat), config.delta_tokens, config.seed)
            figures["latency"] = []
            try:
                gateway = start_gateway(mock)
                try:
                    for sessions in config.latency_sessions if "latency" in config.cells else ():
                        cell = latency_cell(
                            config,
                            sessions,
                            mock,
                            {"gateway": gateway, "direct": mock, "direct-http": mock},
                        )
                        cell["preset"] = "fast-flat"
                        figures["latency"].append(cell)
                        progress(f"latency {sessions}: {_added(cell, 'ttft_ms', 'p50'):+.2f} ms")
                    with_redis = start_gateway(mock, f"redis://{HOST}:{redis.port}/0")
                    try:
                        if "latency" not in config.cells:
                            raise _Skip
                        figures["checkpoint_latency"] = latency_cell(
                            config,
                            config.checkpoint_sessions,
                            mock,
                            {"gateway": gateway, "gateway-redis": with_redis, "direct": mock},
                        )
                        figures["checkpoint_latency"]["preset"] = "fast-flat"
                        progress("checkpoint latency done")
                    except _Skip:
                        pass
                    finally:
                        with_redis.stop()
                finally:
                    gateway.stop()
            finally:
                mock.stop()
            # 1 (stock `fast`: with the modelled cost of a full context) and 4.
            mock = start_mock("fast", config.delta_tokens, config.seed)
            try:
                gateway = start_gateway(mock)
                try:
                    if "latency" in config.cells:
                        sessions = config.latency_sessions[0]
                        targets = {"gateway": gateway, "direct": mock, "direct-http": mock}
                        cell = latency_cell(config, sessions, mock, targets)
                        cell["preset"] = "fast"
                        figures["latency"].append(cell)
                        added = _added(cell, "ttft_ms", "p50")
                        progress(f"latency fast {sessions}: {added:+.2f} ms")
                finally:
                    gateway.stop()
                if "sessions" in config.cells:
                    figures["active"] = active_cell(config, mock)
                    progress(f"active {config.active_sessions}: done")
                    figures["idle"] = idle_cell(config, mock)
                    idle = figures["idle"]
                    progress(f"idle {config.idle_sessions}: {idle['check_answered']} answered")
            finally:
                mock.stop()
        finally:
            redis.stop()
    return figures


# -- report ---------------------------------------------------------------------------


def _added(
    cell: dict[str, Any], metric: str, q: str, label: str = "gateway", base: str = "direct"
) -> float:
    """``label``'s figure less ``base``'s (NaN where the cell has no ``base``)."""
    if base not in cell["labels"]:
        return math.nan
    return float(cell["labels"][label][metric][q] - cell["labels"][base][metric][q])


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _latency_rows(cell: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    return [(cell, label, figures) for label, figures in cell["labels"].items()]


LatencyRow = tuple[dict[str, Any], str, dict[str, Any]]
LATENCY: list[Column[LatencyRow]] = [
    ("preset", lambda r: r[0].get("preset", "fast")),
    ("sessions", lambda r: str(r[0]["sessions"])),
    ("target", lambda r: r[1]),
    ("turns", lambda r: f"{r[2]['turns']:,}"),
    ("errors", lambda r: str(r[2]["errors"])),
    ("TTFT p50", lambda r: _ms(r[2]["ttft_ms"]["p50"])),
    ("p90", lambda r: _ms(r[2]["ttft_ms"]["p90"])),
    ("1st event p50", lambda r: _ms(r[2]["first_event_ms"]["p50"])),
    ("p90", lambda r: _ms(r[2]["first_event_ms"]["p90"])),
    ("turn p50", lambda r: _ms(r[2]["turn_ms"]["p50"])),
    ("p90", lambda r: _ms(r[2]["turn_ms"]["p90"])),
    ("conv KB", lambda r: f"{r[2]['conversation_bytes_mean'] / 1e3:.1f}"),
]

ADDED: list[Column[tuple[dict[str, Any], str]]] = [
    ("preset", lambda r: r[0].get("preset", "fast")),
    ("sessions", lambda r: str(r[0]["sessions"])),
    ("target", lambda r: r[1]),
    ("added TTFT p50 ms", lambda r: f"{_added(r[0], 'ttft_ms', 'p50', r[1]):+.2f}"),
    ("p90", lambda r: f"{_added(r[0], 'ttft_ms', 'p90', r[1]):+.2f}"),
    ("1st event p50", lambda r: f"{_added(r[0], 'first_event_ms', 'p50', r[1]):+.2f}"),
    ("turn p50", lambda r: f"{_added(r[0], 'turn_ms', 'p50', r[1]):+.2f}"),
    ("turn p90", lambda r: f"{_added(r[0], 'turn_ms', 'p90', r[1]):+.2f}"),
    (
        "vs HTTP: TTFT p50",
        lambda r: f"{_added(r[0], 'ttft_ms', 'p50', r[1], 'direct-http'):+.2f}",
    ),
    ("p90", lambda r: f"{_added(r[0], 'ttft_ms', 'p90', r[1], 'direct-http'):+.2f}"),
    ("turns/s", lambda r: f"{r[0]['turns_per_s']:,.0f}"),
    ("clients", lambda r: str(r[0]["client_processes"])),
    ("client busy", lambda r: f"{r[0]['client_busy']:.2f}"),
    ("gw busy", lambda r: f"{r[0].get('gateway_busy', math.nan):.2f}"),
    ("mock busy", lambda r: f"{r[0]['mock_busy']:.2f}"),
    ("other", lambda r: f"{r[0]['other_busy']:.2f}"),
]

CPU: list[Column[dict[str, Any]]] = [
    ("delta", lambda c: str(c["delta_tokens"])),
    ("turns", lambda c: f"{c['turns']:,}"),
    ("gateway us/turn", lambda c: f"{c['gateway_cpu_us_per_turn']:,.0f}"),
    ("mock us/turn", lambda c: f"{c['mock_cpu_us_per_turn']:,.0f}"),
    ("gateway/mock", lambda c: f"{c['ratio']:.2f}x"),
    ("client us/turn", lambda c: f"{c['client_cpu_us_per_turn']:,.0f}"),
    ("upstream B/turn", lambda c: f"{c['upstream_bytes_out_per_turn']:,.0f}"),
    ("client B/turn", lambda c: f"{c['client_bytes_in_per_turn']:,.0f}"),
    ("turns/s", lambda c: f"{c['turns_per_s']:,.0f}"),
    ("other", lambda c: f"{c['other_busy']:.2f}"),
]

MEMORY: list[Column[dict[str, Any]]] = [
    ("store", lambda c: c["store"]),
    ("sessions", lambda c: f"{c['sessions']:,}"),
    ("held", lambda c: f"{c['sessions_held']:,}"),
    ("turns each", lambda c: str(c["turns_per_session"])),
    ("RSS growth MB", lambda c: f"{c['rss_growth_bytes'] / 1e6:,.1f}"),
    ("RSS/session KB", lambda c: f"{c['rss_per_session'] / 1e3:,.1f}"),
    ("client conv KB", lambda c: f"{c['client_conversation_bytes'] / 1e3:,.1f}"),
    ("gateway conv KB", lambda c: f"{c['gateway_session_bytes_per_session'] / 1e3:,.1f}"),
    ("of which socket KB", lambda c: f"{c['rss_connection_per_session'] / 1e3:,.1f}"),
    ("conversation KB", lambda c: f"{c['rss_conversation_per_session'] / 1e3:,.1f}"),
    ("RSS/client size", lambda c: f"{c['ratio_to_client_size']:.2f}x"),
    ("conv RSS/client size", lambda c: f"{c['conversation_ratio_to_client_size']:.2f}x"),
    ("RSS/gateway size", lambda c: f"{c['ratio_to_gateway_size']:.2f}x"),
    ("packed RSS/session KB", lambda c: _packed(c, "packed_rss_per_session", 1e-3, "{:,.1f}")),
    ("packed RSS/client size", lambda c: _packed(c, "packed_ratio_to_client_size", 1, "{:.2f}x")),
    ("errors", lambda c: str(c["errors"])),
]


def _packed(cell: dict[str, Any], key: str, scale: float, form: str) -> str:
    """A figure of the sessions once packed, or ``-`` (a gateway that does not pack)."""
    return form.format(cell[key] * scale) if key in cell else "-"


CounterRow = tuple[dict[str, Any], str]
COUNTERS: list[Column[CounterRow]] = [
    ("sessions", lambda r: str(r[0]["sessions"])),
    ("target", lambda r: r[1]),
    ("responses", lambda r: f"{r[0]['labels'][r[1]]['gateway']['responses_completed']:,}"),
    (
        "upstream TTFB us",
        lambda r: f"{r[0]['labels'][r[1]]['gateway']['upstream_ttfb_us_per_call']:,.0f}",
    ),
    (
        "gateway own us",
        lambda r: f"{r[0]['labels'][r[1]]['gateway']['relay_us_per_response']:,.0f}",
    ),
    ("checkpoint writes", lambda r: f"{r[0]['labels'][r[1]]['gateway']['checkpoint_writes']:,}"),
    ("us/write", lambda r: f"{r[0]['labels'][r[1]]['gateway']['checkpoint_us_per_write']:,.0f}"),
    ("B/write", lambda r: f"{r[0]['labels'][r[1]]['gateway']['checkpoint_bytes_per_write']:,.0f}"),
    (
        "upstream B/call",
        lambda r: f"{r[0]['labels'][r[1]]['gateway']['upstream_bytes_out_per_call']:,.0f}",
    ),
    (
        "client B/call",
        lambda r: f"{r[0]['labels'][r[1]]['gateway']['client_bytes_in_per_call']:,.0f}",
    ),
    ("misses", lambda r: str(r[0]["labels"][r[1]]["gateway"]["misses_not_found"])),
]


def report(figures: dict[str, Any], config: BenchConfig) -> str:
    """The printed figures."""
    sections = [
        f"gateway bench: {figures['cpus']} CPUs; mock delta-tokens {config.delta_tokens} "
        f"unless said; think time {config.think_s} s; clients: up to "
        f"{config.sessions_per_client} sessions per client process"
    ]
    other: list[float] = []
    cells = figures["latency"]
    rows = [row for cell in cells for row in _latency_rows(cell)]
    sections += (
        []
        if not cells
        else [
            "1. Added latency, sessions interleaved gateway/direct/direct-http (ms; added: "
            "against the WebSocket continuation direct, then against the whole "
            "conversation over HTTP direct; conv KB: mean conversation size after a turn; "
            "fast-flat: `fast` without context-size terms)",
            table(LATENCY, rows),
            table(ADDED, [(cell, "gateway") for cell in cells]),
            "   The gateway's own counters over these cells (per upstream call / per write):",
            table(COUNTERS, [(cell, "gateway") for cell in cells]),
        ]
    )
    other += [c["other_busy"] for c in cells]
    sections += (
        []
        if not figures["cpu"]
        else [
            "2. CPU per turn, `instant` preset, through the gateway only: gateway vs mock, "
            "same turns",
            table(CPU, figures["cpu"]),
        ]
    )
    other += [c["other_busy"] for c in figures["cpu"]]
    sections += (
        []
        if not figures["memory"]
        else [
            f"3. Memory per idle session (RSS growth / sessions, after {config.memory_turns} turns "
            "each, `instant` preset)",
            table(MEMORY, figures["memory"]),
        ]
    )
    other += [c["other_busy"] for c in figures["memory"]]
    if "active" in figures:
        sections += sessions_report(figures["active"], figures["idle"], config)
        other.append(figures["active"]["other_busy"])
    if figures["memory"]:
        sections += checkpoint_report(figures)
    if "checkpoint_latency" in figures:
        lat = figures["checkpoint_latency"]
        sections += [
            "   Latency with the Redis store vs the memory store vs direct, same run:",
            table(LATENCY, _latency_rows(lat)),
            table(ADDED, [(lat, "gateway"), (lat, "gateway-redis")]),
            table(COUNTERS, [(lat, "gateway"), (lat, "gateway-redis")]),
        ]
        other.append(lat["other_busy"])
    warning = noisy_warning(other)
    if warning:
        sections.append(warning)
    return "\n\n".join(sections)


def sessions_report(active: dict[str, Any], idle: dict[str, Any], config: BenchConfig) -> list[str]:
    """Section 4."""
    return [
        f"4. Sessions held by one gateway process. Active: {active['sessions']:,} sessions "
        f"at `fast` with {config.think_s} s think",
        table(LATENCY, _latency_rows(active)),
        f"   turns/s {active['turns_per_s']:,.0f}; busy: gateway {active['gateway_busy']:.2f}, "
        f"mock {active['mock_busy']:.2f}, clients {active['client_busy']:.2f} "
        f"({active['client_processes']} processes), other {active['other_busy']:.2f}",
        f"   Idle: {idle['opened']:,} of {idle['sessions']:,} opened, first turn answered "
        f"{idle['first_turns']:,} ({idle['first_errors']} errors); gateway held "
        f"{idle['connections_open']:,} connections and {idle['sessions_held']:,} sessions, RSS "
        f"{idle['rss_idle_bytes'] / 1e6:,.0f} MB ({idle['rss_per_session'] / 1e3:,.1f} KB a "
        f"session), busy {idle['idle_gateway_busy']:.3f} while idle; at the end "
        f"{idle['check_answered']:,} of {idle['checked']:,} sampled sessions answered a turn "
        f"({idle['check_errors']} errors, turn p50 {idle['check_turn_ms']['p50']:.0f} ms)",
    ]


def checkpoint_report(figures: dict[str, Any]) -> list[str]:
    """Section 5's counts."""
    redis_cell = next(c for c in figures["memory"] if c["store"] == "redis")
    checkpoint = redis_cell["checkpoint"]
    commands = ", ".join(f"{k} {v:,}" for k, v in sorted(checkpoint["redis_commands"].items()))
    return [
        f"5. Checkpoints with --store redis ({checkpoint['turns']:,} turns): "
        f"{checkpoint['writes_per_turn']:.2f} writes/turn, "
        f"{checkpoint['redis_commands_per_turn']:.2f} Redis commands/turn, "
        f"{checkpoint['redis_reads_per_turn']:.2f} Redis reads (round trips)/turn; "
        f"{checkpoint['bytes_per_write']:,.0f} B/write against a conversation of "
        f"{checkpoint['conversation_bytes_mean']:,.0f} B (new bytes a turn "
        f"{checkpoint['new_bytes_mean']:,.0f}); {checkpoint['us_per_write']:,.0f} us/write; "
        f"failures {checkpoint['failures']}\n   Redis: {commands}",
    ]


CELLS = ("cpu", "memory", "latency", "sessions")


def _cell_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in CELLS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown cell {unknown[0]!r}; use {', '.join(CELLS)}")
    return names


def _int_tuple(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="The gateway's added latency, CPU, memory, sessions held and checkpoint "
        "cost, each beside a reference in the same run (see docs/performance.md)."
    )
    parser.add_argument("--quick", action="store_true", help="scaled down, about 2 minutes")
    parser.add_argument("--latency-sessions", type=_int_tuple, help="default 50,500")
    parser.add_argument("--latency-seconds", type=positive_float, help="default 40")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between turns (1.0)")
    parser.add_argument(
        "--max-turns",
        type=positive_int,
        default=16,
        help="turns before a session starts a new conversation (16)",
    )
    parser.add_argument(
        "--delta-tokens",
        type=positive_int,
        default=8,
        help="mock --delta-tokens of the latency, memory and session cells (8)",
    )
    parser.add_argument("--cpu-deltas", type=_int_tuple, default=(1, 8))
    parser.add_argument(
        "--cpu-turns",
        type=positive_int,
        help="turns each of the CPU cell's 50 sessions measures (20; more for a profile: "
        "conversations still end after 22 turns)",
    )
    parser.add_argument("--memory-sessions", type=positive_int, help="default 1000")
    parser.add_argument("--memory-turns", type=positive_int, default=6)
    parser.add_argument("--idle-sessions", type=positive_int, help="default 10000")
    parser.add_argument("--idle-check", type=positive_int, help="default 1000")
    parser.add_argument("--active-sessions", type=positive_int, help="default 1000")
    parser.add_argument(
        "--sessions-per-client",
        type=positive_int,
        default=250,
        help="sessions per client process (250)",
    )
    parser.add_argument(
        "--cells",
        type=_cell_list,
        default=CELLS,
        help="which parts to run: cpu, memory (with the checkpoint counts), latency (with "
        "the Redis vs memory store latency), sessions (1,000 active, 10,000 idle); default all",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = build_parser().parse_args(argv)
    quick = args.quick

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if quick else full)

    config = BenchConfig(
        latency_sessions=pick(args.latency_sessions, (50, 500), (50, 200)),
        latency_seconds=pick(args.latency_seconds, 40.0, 12.0),
        think_s=args.think,
        max_turns=args.max_turns,
        delta_tokens=args.delta_tokens,
        cpu_sessions=50,
        cpu_turns=pick(args.cpu_turns, 20, 10),
        cpu_deltas=args.cpu_deltas,
        memory_sessions=pick(args.memory_sessions, 1_000, 200),
        memory_turns=args.memory_turns,
        idle_sessions=pick(args.idle_sessions, 10_000, 1_000),
        idle_check=pick(args.idle_check, 1_000, 200),
        active_sessions=pick(args.active_sessions, 1_000, 200),
        active_seconds=12.0 if quick else 40.0,
        checkpoint_sessions=60 if not quick else 30,
        sessions_per_client=args.sessions_per_client,
        seed=args.seed,
        json_path=args.json,
        cells=args.cells,
    )
    limit = raise_open_files_limit()
    if limit < 2 * config.idle_sessions // 1 + 1000 and limit < config.idle_sessions + 500:
        print(f"gateway bench: open-files limit {limit} is too low", file=sys.stderr)
        return 1
    try:
        figures = run_benchmark(config)
    except (BenchError, OSError) as exc:
        print(f"gateway bench: {exc}", file=sys.stderr)
        return 1
    print(report(figures, config))
    if config.json_path is not None:
        config.json_path.write_bytes(
            orjson.dumps(
                figures, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load generator throughput: what a simulated agent turn costs the client, beside Locust.

S sessions per cell turn with no think time against the mock for a measured window; each
cell runs in its own client process, so that process's CPU is the cell's and nothing
else's:

* ``http``: :class:`rig.loadgen.session.AgentSession` over the ``http`` transport (the
  whole transcript every turn), with its SSE parsing, tool simulator and turn records;
* ``ws``: the same over the ``ws`` transport (``previous_response_id`` + new items);
* ``reference``: Locust's FastHttpUser engine (``locust.contrib.fasthttp.FastHttpSession``
  over geventhttpclient) posting the very request bodies the ``http`` transport sends
  (recorded from the same sessions first) to the same server, reading each streamed body
  whole and parsing none of it: the client a plain Locust test would be.

The three run once per mock latency preset (``--presets``, default ``instant,fast``):
``instant`` streams every answer as fast as the server can, so the rate is what the two
processes sustain flat out; ``fast`` paces each stream like a model (80 ms to the first
token, then 1,000 tokens/s), so every client faces the same arrival of events and the same
turn rate, and CPU per turn compares the clients' own work.

Per cell: turns (requests) per second, client CPU per turn, the server's CPU per turn and
how busy each side was (so the reader sees which one bounded the rate), request and
response body bytes per turn, and the client's scheduling lag from
:class:`rig.loadgen.health.HealthMonitor`.

The ``scale`` cell is the other target: one client process driving 1,000 concurrent ``ws``
sessions against ``--preset fast`` with real-time tool waits (``time_scale`` 1, what
``rig compare`` does by default), reporting scheduling lag p99 and max, turns/s, errors
and client CPU. ``--scale-links direct,fiber,lte`` runs each scale cell once per link
profile, one after the other against a fresh mock each (``direct``: no shaping), and
compares each shaped cell with the unshaped one: what the link emulation costs the client
per turn and whether it keeps the scheduling lag (p50 and p99 over the window).
``--scale-gc default,tuned`` runs each scale cell once per garbage-collector mode of
:mod:`rig.collector` (settled after the last spawn, as a run does), with the
collections and their pauses counted over the window.

Usage (from the repository root)::

    python bench/loadgen_throughput.py                     # every cell, about 3 minutes
    python bench/loadgen_throughput.py --cells reference,http --presets fast --seconds 30
    python bench/loadgen_throughput.py --cells scale --scale-sessions 250,500,1000
    python bench/loadgen_throughput.py --cells scale --pin --scale-links direct,fiber,lte
    python bench/loadgen_throughput.py --cells scale --pin --scale-gc default,tuned

Figures and method: docs/performance.md. A client child is started as
``python bench/loadgen_throughput.py --client http|ws|reference ...`` and prints one JSON
line; it monkey-patches with gevent before anything else is imported.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--client" in sys.argv[1:]:
    from gevent import monkey

    monkey.patch_all()  # a client child: before anything else touches sockets or threads

import argparse
import contextlib
import itertools
import os
import resource
import signal
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent
import orjson
import psutil

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    int_list,
    machine_cpu_seconds,
    noisy_warning,
    positive_float,
    positive_int,
    table,
)

from rig.collector import MODES, CollectorPauses, settle  # noqa: E402
from rig.loadgen.health import LAG_LIMIT_MS, HealthMonitor  # noqa: E402
from rig.loadgen.link import LinkError, load_link  # noqa: E402
from rig.loadgen.session import AgentSession, SessionConfig  # noqa: E402
from rig.loadgen.target import Target  # noqa: E402
from rig.metrics.records import HealthRecord, RecordTags, TaskRecord, TurnRecord  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from rig.workload.corpus import Corpus  # noqa: E402
from rig.workload.scenarios import Scenario, builtin_scenarios  # noqa: E402
from rig.workload.simulator import ToolSimulator  # noqa: E402

HOST = "127.0.0.1"
PATH = "/v1/responses"
MOCK_READY = "rig mock listening on"
"""What ``rig mock`` prints on stderr once its socket listens."""
RESULT_PREFIX = "RESULT "
"""Marks the client child's one line of JSON on stdout."""
CLIENTS = ("reference", "http", "ws")
CELLS = (*CLIENTS, "scale")
HTTP_CPU_TARGET = 1.5
"""The ``http`` transport may cost at most this many times the reference's CPU per request."""
SCALE_SESSIONS_TARGET = 1000
FD_HEADROOM = 256
_FAILED = frozenset({"error", "timeout", "rate_limited"})
_COMPLETED_MARK = b"event: response.completed\n"
_TAIL = 256 * 1024
"""How far from the end of a streamed body the reference looks for the terminal event."""

_PROCESS = psutil.Process()


class BenchError(RuntimeError):
    """The benchmark could not run or a cell went wrong; the message says which."""


# -- processes and clocks -----------------------------------------------------------


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft limit on open files to ``needed`` (capped by the hard
    limit) and return the new soft limit: a socket per session, plus headroom."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    return soft


def pin(cpus: frozenset[int] | None) -> None:
    """Restrict this process (and the children it starts) to ``cpus``; None leaves it."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


MOCK_CPUS = frozenset({0})
CLIENT_CPUS = frozenset({1})
"""With ``--pin``: the mock (all its workers) on the first core, the client on the second."""


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far.

    Read from its CPU clock (``clock_getcpuclockid``: nanoseconds, unlike the 10 ms ticks
    of ``/proc/<pid>/stat``), with psutil as the fallback where the clock is refused.
    """
    try:
        return time.clock_gettime_ns((~pid << 3) | 2) / 1e9
    except OSError:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system


def tree_cpu_seconds(root: int) -> float:
    """CPU time of process ``root`` and its live descendants (``rig mock --workers N``)."""
    pids = [root]
    try:
        pids += [child.pid for child in psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, psutil.NoSuchProcess):  # exited since the listing
            total += process_cpu_seconds(pid)
    return total


class MockServer:
    """``rig mock`` as a child process on a free port: ready when it says it listens."""

    def __init__(
        self, options: Sequence[str], *, open_files: int, cpus: frozenset[int] | None = None
    ):
        self.port = free_port()
        self.output: deque[str] = deque(maxlen=100)
        self._ready = threading.Event()
        self._exited = False
        argv = [sys.executable, "-m", "rig", "mock", "--port", str(self.port), *options]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group: SIGTERM reaches every worker
            preexec_fn=lambda: (raise_fd_limit(open_files), pin(cpus)),
        )
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def pid(self) -> int:
        """The server's process id (the supervisor, with ``--workers N``)."""
        return self.process.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://{HOST}:{self.port}/v1"

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            if MOCK_READY in line:
                self._ready.set()
        self._exited = True
        self._ready.set()

    def wait_ready(self, timeout_s: float = 60.0) -> MockServer:
        """Block until the listening line; raise with its output if it dies first."""
        if not self._ready.wait(timeout_s) or self._exited:
            self.stop()
            raise BenchError("rig mock did not start:\n" + "".join(self.output)[-3000:])
        return self

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL if it has not exited after 15 s."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# -- the client child: what is counted ----------------------------------------------


@dataclass
class Tally:
    """Turns (or requests) a client process completed, and what they carried."""

    turns: int = 0
    failed: int = 0
    tasks: int = 0
    body_bytes_sent: int = 0
    body_bytes_recv: int = 0
    wire_bytes_sent: int = 0
    wire_bytes_recv: int = 0
    tool_cpu_s: float = 0.0
    """CPU spent in the tool simulator (the workload, not the transport)."""
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    ttft_ms: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    window_open: bool = False
    """Latencies are kept only inside the measured window."""
    gc_pauses: dict[str, float] = field(default_factory=dict)
    """The collector's figures over the window (:class:`CollectorPauses`)."""

    def add(self, ok: bool, sent: int, received: int, error: str = "") -> None:
        """Count one request of the reference (body bytes only: it sees no wire)."""
        self.turns += 1
        self.body_bytes_sent += sent
        self.body_bytes_recv += received
        if not ok:
            self.failed += 1
            self.errors[error[:120]] += 1

    def __call__(self, record: Any) -> None:
        """The sink of every rig session: turn and task records."""
        if isinstance(record, TurnRecord):
            self.turns += 1
            self.body_bytes_sent += record.body_bytes_sent
            self.body_bytes_recv += record.body_bytes_recv
            self.wire_bytes_sent += record.bytes_sent
            self.wire_bytes_recv += record.bytes_recv
            if self.window_open:
                self.statuses[record.status] += 1
                self.ttft_ms.append(record.ttft_ms)
                self.turn_ms.append(record.turn_ms)
            if record.status in _FAILED:
                self.failed += 1
                self.errors[record.error[:120]] += 1
        elif isinstance(record, TaskRecord):
            self.tasks += 1


@dataclass(frozen=True)
class Snapshot:
    """Clocks and counters at one instant of the client child."""

    wall: float
    client_cpu: float
    server_cpu: float
    machine_cpu: float
    turns: int
    failed: int
    tasks: int
    body_bytes_sent: int
    body_bytes_recv: int
    wire_bytes_sent: int
    wire_bytes_recv: int
    tool_cpu: float
    preempted: int
    """The client's involuntary context switches so far (another process took its CPU)."""

    @classmethod
    def take(cls, tally: Tally, server_pid: int) -> Snapshot:
        """Now."""
        return cls(
            wall=time.perf_counter(),
            client_cpu=time.process_time(),
            server_cpu=tree_cpu_seconds(server_pid),
            machine_cpu=machine_cpu_seconds(),
            turns=tally.turns,
            failed=tally.failed,
            tasks=tally.tasks,
            body_bytes_sent=tally.body_bytes_sent,
            body_bytes_recv=tally.body_bytes_recv,
            wire_bytes_sent=tally.wire_bytes_sent,
            wire_bytes_recv=tally.wire_bytes_recv,
            tool_cpu=tally.tool_cpu_s,
            preempted=_PROCESS.num_ctx_switches().involuntary,
        )


@dataclass
class CellResult:
    """One cell's figures over its measured window."""

    cell: str
    client: str
    sessions: int
    seconds: float
    turns: int
    failed: int
    tasks: int
    turns_per_s: float
    client_cpu_us_per_turn: float
    client_busy: float
    """Client CPU / wall time (1.0 = one core saturated)."""
    tool_cpu_us_per_turn: float
    """Of the client's CPU per turn, what the tool simulator took (0 for the reference)."""
    server_cpu_us_per_turn: float
    server_busy: float
    other_busy: float
    """CPU of everything else on the machine / wall time: should be near 0."""
    body_bytes_sent_per_turn: float
    body_bytes_recv_per_turn: float
    wire_bytes_sent_per_turn: float
    wire_bytes_recv_per_turn: float
    lag_p99_ms: float
    """Scheduling lag p99 over the whole window (HealthMonitor samples every 10 ms)."""
    lag_p99_ms_worst_window: float
    """The highest of the HealthMonitor's 2 s window p99s (what it flags saturation on);
    about 200 samples a window, so a window's p99 is its second-highest lag."""
    lag_max_ms: float
    """The longest lag either monitor saw (they sample independently)."""
    saturated_windows: int
    windows: int
    connects: int
    open_connections: int
    rss_mb: float
    preempted_per_s: float = 0.0
    """How often the client was preempted (involuntary context switches per second): a
    scheduling lag with the client below a full core but preempted often is other
    processes' doing, above all with ``--pin``, where the client cannot move."""
    lag_p50_ms: float = 0.0
    """Scheduling lag p50 over the whole window (the same samples as ``lag_p99_ms``)."""
    link: str = "direct"
    """The link profile every session of the cell went through (``direct``: none)."""
    gc: str = "default"
    """The garbage collector's mode after the spawn (:mod:`rig.collector`)."""
    gc_pauses: dict[str, float] = field(default_factory=dict)
    """Collections over the window by generation: count, total and longest pause (ms)."""
    ttft_ms_p50: float = 0.0
    ttft_ms_p99: float = 0.0
    turn_ms_p50: float = 0.0
    turn_ms_p99: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(
    cell: str,
    client: str,
    sessions: int,
    first: Snapshot,
    last: Snapshot,
    tally: Tally,
    health: Health,
    connects: int,
    open_connections: int,
    settings: dict[str, Any],
) -> CellResult:
    """The window between two snapshots as figures."""
    wall = last.wall - first.wall
    turns = last.turns - first.turns
    per_turn = max(turns, 1)
    client_cpu = last.client_cpu - first.client_cpu
    server_cpu = last.server_cpu - first.server_cpu
    machine_cpu = last.machine_cpu - first.machine_cpu
    lag_p99s = [record.lag_ms_p99 for record in health.windows]
    return CellResult(
        cell=cell,
        client=client,
        sessions=sessions,
        seconds=round(wall, 3),
        turns=turns,
        failed=last.failed - first.failed,
        tasks=last.tasks - first.tasks,
        turns_per_s=turns / wall,
        client_cpu_us_per_turn=1e6 * client_cpu / per_turn,
        client_busy=client_cpu / wall,
        tool_cpu_us_per_turn=1e6 * (last.tool_cpu - first.tool_cpu) / per_turn,
        server_cpu_us_per_turn=1e6 * server_cpu / per_turn,
        server_busy=server_cpu / wall,
        other_busy=(machine_cpu - client_cpu - server_cpu) / wall,
        body_bytes_sent_per_turn=(last.body_bytes_sent - first.body_bytes_sent) / per_turn,
        body_bytes_recv_per_turn=(last.body_bytes_recv - first.body_bytes_recv) / per_turn,
        wire_bytes_sent_per_turn=(last.wire_bytes_sent - first.wire_bytes_sent) / per_turn,
        wire_bytes_recv_per_turn=(last.wire_bytes_recv - first.wire_bytes_recv) / per_turn,
        lag_p99_ms=health.whole.lag_ms_p99 if health.whole else 0.0,
        lag_p50_ms=_quantile(health.lags_ms, 0.5),
        lag_p99_ms_worst_window=max(lag_p99s, default=0.0),
        lag_max_ms=max(
            [record.lag_ms_max for record in health.windows]
            + ([health.whole.lag_ms_max] if health.whole else []),
            default=0.0,
        ),
        saturated_windows=sum(record.saturated for record in health.windows),
        windows=len(health.windows),
        connects=connects,
        open_connections=open_connections,
        rss_mb=_PROCESS.memory_info().rss / 2**20,
        preempted_per_s=(last.preempted - first.preempted) / wall,
        ttft_ms_p50=_quantile(tally.ttft_ms, 0.5),
        ttft_ms_p99=_quantile(tally.ttft_ms, 0.99),
        turn_ms_p50=_quantile(tally.turn_ms, 0.5),
        turn_ms_p99=_quantile(tally.turn_ms, 0.99),
        statuses=dict(tally.statuses),
        errors=dict(tally.errors.most_common(5)),
        settings=settings,
        link=str(settings.get("link", "direct")),
        gc=str(settings.get("gc", "default")),
        gc_pauses=dict(tally.gc_pauses),
    )


# -- the client child: the three clients --------------------------------------------


@dataclass(frozen=True)
class ClientOptions:
    """What one client child runs (its command line)."""

    client: str
    cell: str
    base_url: str
    server_pid: int
    sessions: int
    seconds: float
    warmup_s: float
    ramp_s: float
    time_scale: float
    seed: int
    record_tasks: int
    link: str = "direct"
    """The link profile every session goes through (``direct``: no shaping)."""
    gc: str = "default"
    """The garbage collector's mode once the sessions are spawned."""


def _scenarios() -> list[Scenario]:
    """The built-in scenarios, in the order the Locust plugin cycles through them."""
    scenarios = builtin_scenarios()
    return [scenarios[name] for name in sorted(scenarios)]


def make_sessions(
    transport: str, options: ClientOptions, sink: Callable[[Any], None]
) -> list[AgentSession]:
    """``options.sessions`` agents, scenarios round-robin, as the Locust plugin makes them."""
    target = Target.from_url(options.base_url)
    link = load_link(options.link)
    scenarios = _scenarios()
    corpus = Corpus.load()
    sessions = []
    for index in range(options.sessions):
        scenario = scenarios[index % len(scenarios)]
        tags = RecordTags(
            run="bench",
            scenario=scenario.name,
            transport=transport,
            target="mock",
            link=link.name,
        )
        config = SessionConfig(
            transport=transport,
            scenario=scenario,
            target=target,
            tags=tags,
            seed=options.seed,
            time_scale=options.time_scale,
            link=link,
        )
        sessions.append(AgentSession(config, sink, session_index=index, corpus=corpus))
    return sessions


def _run_tasks(session: AgentSession, delay_s: float) -> None:
    """One session's greenlet: start after ``delay_s`` (the ramp), then tasks forever."""
    if delay_s > 0:
        gevent.sleep(delay_s)
    while True:
        session.run_task()


@dataclass(frozen=True)
class Health:
    """What two HealthMonitors reported over the measured window."""

    windows: list[HealthRecord]
    """One every 2 s, as in a Locust run."""
    whole: HealthRecord | None
    """One for the whole window: its lag p99 is over every sample."""
    lags_ms: list[float] = field(default_factory=list)
    """Every lag sample of the whole-window monitor (for the p50)."""


class _SampleKeepingMonitor(HealthMonitor):
    """A HealthMonitor that also keeps the lag samples of its reports."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lags_ms: list[float] = []

    def _report(self, lags: list[float], turns: int, elapsed: float) -> None:
        self.lags_ms.extend(lags)
        super()._report(lags, turns, elapsed)


def measure(
    options: ClientOptions,
    tally: Tally,
    workers: Callable[[float], list[gevent.Greenlet]],
) -> tuple[Snapshot, Snapshot, Health]:
    """Start the load, let it settle, measure ``options.seconds``, stop it.

    ``workers(ramp_s)`` spawns the load's greenlets. The health monitors run only during
    the measured window, so each of their reports lies inside it.
    """
    greenlets = workers(options.ramp_s)
    gevent.sleep(options.ramp_s)
    settle(options.gc)  # after the last spawn, as a run does
    gevent.sleep(options.warmup_s)
    pauses = CollectorPauses()
    windows: list[HealthRecord] = []
    whole: list[HealthRecord] = []
    tags = RecordTags(run="bench", scenario="mixed", transport=options.client, target="mock")
    monitors = [
        _SampleKeepingMonitor(
            tags, sink, users=lambda: options.sessions, turns=lambda: tally.turns, **kw
        )
        for sink, kw in (
            (windows.append, {}),  # the rig's own 2 s windows
            (whole.append, {"report_s": options.seconds + 60}),  # one report at stop
        )
    ]
    first = Snapshot.take(tally, options.server_pid)
    tally.window_open = True
    pauses.start()
    for monitor in monitors:
        monitor.start()
    gevent.sleep(options.seconds)
    for monitor in monitors:
        monitor.stop()
    pauses.stop()
    tally.gc_pauses = pauses.figures()
    tally.window_open = False
    last = Snapshot.take(tally, options.server_pid)
    gevent.killall(greenlets, timeout=10)
    return first, last, Health(windows, whole[-1] if whole else None, monitors[1].lags_ms)


def time_tool_simulator(tally: Tally) -> None:
    """Add the CPU of every tool call to ``tally.tool_cpu_s`` (this process only).

    The simulator is pure computation (it never yields to the hub), so the process CPU
    clock around a call is that call's cost; the two clock reads add about 1 µs.
    """
    run = ToolSimulator.run

    def timed_run(self: ToolSimulator, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return run(self, *args, **kwargs)
        finally:
            tally.tool_cpu_s += time.process_time() - started

    ToolSimulator.run = timed_run  # type: ignore[method-assign]


def run_rig_client(options: ClientOptions) -> CellResult:
    """``http`` or ``ws``: AgentSessions looping tasks, each in its own greenlet."""
    tally = Tally()
    time_tool_simulator(tally)
    sessions = make_sessions(options.client, options, tally)

    def workers(ramp_s: float) -> list[gevent.Greenlet]:
        step = ramp_s / len(sessions)
        return [gevent.spawn(_run_tasks, s, i * step) for i, s in enumerate(sessions)]

    first, last, health = measure(options, tally, workers)
    connects = open_connections = 0
    for session in sessions:
        transport: Any = session.transport
        if options.client == "ws":
            connects += transport.connects
            open_connections += transport.connection is not None and transport.connection.open
        else:
            connects += transport.connection.connects
            open_connections += transport.connection._wire is not None
        session.close()
    return summarise(
        options.cell,
        options.client,
        options.sessions,
        first,
        last,
        tally,
        health,
        connects,
        open_connections,
        _settings(options),
    )


def record_http_bodies(options: ClientOptions) -> list[list[bytes]]:
    """Each session's request bodies as the ``http`` transport builds them.

    The same sessions as the ``http`` cell (same indices, scenarios and seed) run their
    first ``options.record_tasks`` tasks against the same kind of server; every body the
    transport hands to its connection is kept. The mock answers the same body the same
    way, so replaying them reproduces the ``http`` cell's traffic in both directions.
    """
    recorded: list[list[bytes]] = [[] for _ in range(options.sessions)]
    sessions = make_sessions("http", options, lambda record: None)
    for session, bodies in zip(sessions, recorded, strict=True):
        connection = session.transport.connection  # type: ignore[attr-defined]
        send = connection.request

        def request(
            method: str,
            path: str,
            body: bytes,
            *rest: Any,
            _send: Any = send,
            _bodies: list[bytes] = bodies,
            **kw: Any,
        ) -> Any:
            _bodies.append(body)
            return _send(method, path, body, *rest, **kw)

        connection.request = request

    def record(session: AgentSession) -> None:
        for _ in range(options.record_tasks):
            if not session.run_task().ok:
                raise BenchError(f"recording: session {session.session_index} failed a task")

    gevent.joinall([gevent.spawn(record, s) for s in sessions], raise_error=True)
    for session in sessions:
        session.close()
    return recorded


def run_reference_client(options: ClientOptions) -> CellResult:
    """Locust's FastHttpUser engine posting the ``http`` cell's bodies, reading whole bodies."""
    # Imported here: importing locust monkey-patches, which only a client child may do.
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import EventHook

    recorded = record_http_bodies(options)
    tally = Tally()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    root = options.base_url.removesuffix("/v1")
    clients = [
        FastHttpSession(root, request_event=EventHook(), user=None, network_timeout=120.0)
        for _ in range(options.sessions)
    ]

    def post_loop(client: FastHttpSession, bodies: list[bytes], delay_s: float) -> None:
        if delay_s > 0:
            gevent.sleep(delay_s)
        while True:
            for body in bodies:
                response = client.post(PATH, data=body, headers=headers)
                try:
                    content = response.content or b""
                except Exception as exc:  # FastHttpSession raises its own failures here
                    tally.add(False, len(body), 0, f"{type(exc).__name__}: {exc}")
                    continue
                start = max(0, len(content) - _TAIL)
                ok = response.status_code == 200 and content.find(_COMPLETED_MARK, start) >= 0
                error = "" if ok else f"HTTP {response.status_code}: {content[:100]!r}"
                tally.add(ok, len(body), len(content), error)

    def workers(ramp_s: float) -> list[gevent.Greenlet]:
        step = ramp_s / len(clients)
        return [
            gevent.spawn(post_loop, client, bodies, i * step)
            for i, (client, bodies) in enumerate(zip(clients, recorded, strict=True))
        ]

    first, last, health = measure(options, tally, workers)
    result = summarise(
        options.cell,
        options.client,
        options.sessions,
        first,
        last,
        tally,
        health,
        0,
        0,
        _settings(options) | {"recorded_bodies": sum(len(b) for b in recorded)},
    )
    result.statuses = {"ok": result.turns - result.failed, "error": result.failed}
    return result


def _settings(options: ClientOptions) -> dict[str, Any]:
    return {
        "warmup_s": options.warmup_s,
        "ramp_s": options.ramp_s,
        "time_scale": options.time_scale,
        "seed": options.seed,
        "link": options.link,
        "gc": options.gc,
    }


def client_main(args: argparse.Namespace) -> int:
    """A client child: run one client, print its figures as one JSON line."""
    options = ClientOptions(
        client=args.client,
        cell=args.cell or args.client,
        base_url=args.base_url,
        server_pid=args.server_pid,
        sessions=args.sessions,
        seconds=args.seconds,
        warmup_s=args.warmup,
        ramp_s=args.ramp,
        time_scale=args.time_scale,
        seed=args.seed,
        record_tasks=args.record_tasks,
        link=args.link,
        gc=args.gc,
    )
    raise_fd_limit(2 * options.sessions + FD_HEADROOM)
    if options.client == "reference":
        result = run_reference_client(options)
    else:
        result = run_rig_client(options)
    sys.stdout.write(RESULT_PREFIX + orjson.dumps(asdict(result)).decode() + "\n")
    sys.stdout.flush()
    return 0


# -- the parent: cells ----------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What to run."""

    cells: tuple[str, ...]
    sessions: int
    seconds: float
    warmup_s: float
    presets: tuple[str, ...]
    delta_tokens: int
    record_tasks: int
    scale_sessions: tuple[int, ...]
    scale_seconds: float
    scale_spawn_rate: float
    scale_warmup_s: float
    scale_time_scale: float
    scale_workers: int
    scale_delta_tokens: int
    seed: int
    json_path: Path | None
    pin: bool = False
    scale_links: tuple[str, ...] = ("direct",)
    scale_gc: tuple[str, ...] = ("default",)
    """Garbage-collector modes of the scale cells: each session count runs once per mode."""
    client_log: Path | None = None
    """Where each client child's stderr is appended (e.g. gevent's monitor thread's
    reports of a blocked hub, with ``GEVENT_MONITOR_THREAD_ENABLE=true``)."""
    """Link profiles of the scale cells: each session count runs once per link."""
    """Mock on CPU 0, client on CPU 1 (each process keeps its own core)."""


def run_client(mock: MockServer, cell: CellPlan, config: BenchConfig) -> CellResult:
    """Run a client child against ``mock`` and return its figures."""
    argv = [
        sys.executable, str(Path(__file__).resolve()),
        "--client", cell.client,
        "--cell", cell.cell,
        "--base-url", mock.base_url,
        "--server-pid", str(mock.pid),
        "--sessions", str(cell.sessions),
        "--seconds", str(cell.seconds),
        "--warmup", str(cell.warmup_s),
        "--ramp", str(cell.ramp_s),
        "--time-scale", str(cell.time_scale),
        "--seed", str(config.seed),
        "--record-tasks", str(config.record_tasks),
        "--link", cell.link,
        "--gc", cell.gc,
    ]  # fmt: skip
    budget = 120 + 3 * (cell.ramp_s + cell.warmup_s + cell.seconds)
    try:
        done = subprocess.run(
            argv,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=budget,
            preexec_fn=lambda: pin(CLIENT_CPUS if config.pin else None),
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{cell.cell}: the client did not finish within {budget:.0f} s") from exc
    if config.client_log is not None:
        with config.client_log.open("a") as log:
            log.write(f"=== {cell.cell} {cell.client} {cell.sessions} sessions\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise BenchError(
            f"{cell.cell}: the client exited with {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return CellResult(**orjson.loads(lines[-1][len(RESULT_PREFIX) :]))


def _mock_options(preset: str, delta_tokens: int, workers: int, seed: int) -> list[str]:
    return [
        "--preset", preset,
        "--delta-tokens", str(delta_tokens),
        "--workers", str(workers),
        "--seed", str(seed),
        "--log-level", "warning",
    ]  # fmt: skip


@dataclass(frozen=True)
class CellPlan:
    """One cell to run: the mock's options and the client child's."""

    cell: str
    client: str
    mock_options: list[str]
    sessions: int
    seconds: float
    warmup_s: float
    ramp_s: float
    time_scale: float
    link: str = "direct"
    gc: str = "default"


def plan(config: BenchConfig) -> list[CellPlan]:
    """The cells in run order: for each preset the throughput cells, then one scale cell
    per session count."""
    plans = [
        CellPlan(
            cell=cell,
            client=cell,
            mock_options=_mock_options(preset, config.delta_tokens, 1, config.seed),
            sessions=config.sessions,
            seconds=config.seconds,
            warmup_s=config.warmup_s,
            ramp_s=0.0,
            time_scale=0.0,
        )
        for preset in config.presets
        for cell in config.cells
        if cell != "scale"
    ]
    for cell in config.cells:
        if cell != "scale":
            continue
        options = _mock_options(
            "fast", config.scale_delta_tokens, config.scale_workers, config.seed
        )
        for sessions in config.scale_sessions:
            for link, gc_mode in itertools.product(config.scale_links, config.scale_gc):
                plans.append(
                    CellPlan(
                        cell="scale",
                        client="ws",
                        mock_options=options,
                        sessions=sessions,
                        seconds=config.scale_seconds,
                        warmup_s=config.scale_warmup_s,
                        ramp_s=sessions / config.scale_spawn_rate,
                        time_scale=config.scale_time_scale,
                        link=link,
                        gc=gc_mode,
                    )
                )
    return plans


def run_benchmark(config: BenchConfig) -> list[CellResult]:
    """Every planned cell, each against a fresh mock."""
    results = []
    for cell in plan(config):
        open_files = 2 * cell.sessions + FD_HEADROOM
        mock = MockServer(
            cell.mock_options, open_files=open_files, cpus=MOCK_CPUS if config.pin else None
        ).wait_ready()
        try:
            result = run_client(mock, cell, config)
        finally:
            mock.stop()
        result.settings["mock"] = " ".join(cell.mock_options)
        result.settings["pinned"] = config.pin
        results.append(result)
        print(
            f"  done: {cell.cell:<9} {_preset(result):>7} {result.sessions:>5} sessions  "
            f"link {result.link}  "
            f"{result.turns_per_s:,.0f} turns/s  client {result.client_cpu_us_per_turn:,.0f} "
            f"us/turn  lag p99 {result.lag_p99_ms:.1f} ms",
            file=sys.stderr,
        )
    return results


# -- the parent: report ---------------------------------------------------------------


def _preset(result: CellResult) -> str:
    """The mock's latency preset in a cell."""
    options = str(result.settings.get("mock", "")).split()
    return options[options.index("--preset") + 1] if "--preset" in options else ""


THROUGHPUT: list[Column[CellResult]] = [
    ("cell", lambda r: r.cell),
    ("preset", _preset),
    ("sessions", lambda r: str(r.sessions)),
    ("turns/s", lambda r: f"{r.turns_per_s:,.0f}"),
    ("client CPU us/turn", lambda r: f"{r.client_cpu_us_per_turn:,.0f}"),
    ("of which tools", lambda r: f"{r.tool_cpu_us_per_turn:,.0f}"),
    ("client busy", lambda r: f"{r.client_busy:.2f}"),
    ("server CPU us/turn", lambda r: f"{r.server_cpu_us_per_turn:,.0f}"),
    ("server busy", lambda r: f"{r.server_busy:.2f}"),
    ("other busy", lambda r: f"{r.other_busy:.2f}"),
    ("req body B", lambda r: f"{r.body_bytes_sent_per_turn:,.0f}"),
    ("resp body B", lambda r: f"{r.body_bytes_recv_per_turn:,.0f}"),
    ("lag p99 ms", lambda r: f"{r.lag_p99_ms:.1f}"),
    ("lag max ms", lambda r: f"{r.lag_max_ms:.1f}"),
    ("failed", lambda r: str(r.failed)),
]

SCALE: list[Column[CellResult]] = [
    ("sessions", lambda r: f"{r.sessions:,}"),
    ("link", lambda r: r.link),
    ("gc", lambda r: r.gc),
    ("open WS", lambda r: f"{r.open_connections:,}"),
    ("connects", lambda r: f"{r.connects:,}"),
    ("turns/s", lambda r: f"{r.turns_per_s:,.0f}"),
    ("tasks", lambda r: f"{r.tasks:,}"),
    ("failed", lambda r: str(r.failed)),
    ("client busy", lambda r: f"{r.client_busy:.2f}"),
    ("client us/turn", lambda r: f"{r.client_cpu_us_per_turn:,.0f}"),
    ("of which tools", lambda r: f"{r.tool_cpu_us_per_turn:,.0f}"),
    ("server busy", lambda r: f"{r.server_busy:.2f}"),
    ("lag p50 ms", lambda r: f"{r.lag_p50_ms:.2f}"),
    ("lag p99 ms", lambda r: f"{r.lag_p99_ms:.1f}"),
    ("worst 2 s p99", lambda r: f"{r.lag_p99_ms_worst_window:.1f}"),
    ("lag max ms", lambda r: f"{r.lag_max_ms:.1f}"),
    ("full GCs", lambda r: f"{r.gc_pauses.get('gen2_count', 0):.0f}"),
    ("full GC max ms", lambda r: f"{r.gc_pauses.get('gen2_ms_max', 0):.0f}"),
    ("GC ms/s", lambda r: f"{_gc_ms_per_s(r):.1f}"),
    ("TTFT p50/p99 ms", lambda r: f"{r.ttft_ms_p50:.0f}/{r.ttft_ms_p99:.0f}"),
    ("turn p50/p99 ms", lambda r: f"{r.turn_ms_p50:.0f}/{r.turn_ms_p99:.0f}"),
    ("RSS MB", lambda r: f"{r.rss_mb:.0f}"),
    ("preempted /s", lambda r: f"{r.preempted_per_s:.0f}"),
]


def _gc_ms_per_s(result: CellResult) -> float:
    """The collector's pauses, every generation, per second of the window."""
    total = sum(result.gc_pauses.get(f"gen{g}_ms_total", 0.0) for g in range(3))
    return total / result.seconds if result.seconds else 0.0


@dataclass(frozen=True)
class Ratio:
    """A rig cell's client CPU per turn over the reference's per request.

    The session's CPU includes the tool simulator (the workload, which the reference does
    not run); without it, what is left is the transport and the session loop, which is
    what the target compares.
    """

    cell: str
    preset: str
    session_us: float
    tools_us: float
    reference_us: float
    target: float | None

    @property
    def transport_us(self) -> float:
        """Client CPU per turn without the tool simulator."""
        return self.session_us - self.tools_us

    @property
    def ratio(self) -> float:
        """Transport (session without tools) over reference."""
        return self.transport_us / self.reference_us

    @property
    def session_ratio(self) -> float:
        """Whole session (tools included) over reference."""
        return self.session_us / self.reference_us


RATIOS: list[Column[Ratio]] = [
    ("cell", lambda r: r.cell),
    ("preset", lambda r: r.preset),
    ("session us/turn", lambda r: f"{r.session_us:,.0f}"),
    ("without tools", lambda r: f"{r.transport_us:,.0f}"),
    ("reference us/request", lambda r: f"{r.reference_us:,.0f}"),
    ("ratio without tools", lambda r: f"{r.ratio:.2f}x"),
    ("ratio with tools", lambda r: f"{r.session_ratio:.2f}x"),
    ("target", lambda r: f"<= {r.target:g}x" if r.target else "(information)"),
    ("met", lambda r: ("yes" if r.ratio <= r.target else "NO") if r.target else ""),
]


def ratios(results: Sequence[CellResult]) -> list[Ratio]:
    """Each rig throughput cell against the reference cell of the same run and preset."""
    by_cell = {(r.cell, _preset(r)): r for r in results if r.cell in CLIENTS}
    compared = []
    for (cell, preset), result in by_cell.items():
        reference = by_cell.get(("reference", preset))
        if cell == "reference" or reference is None:
            continue
        compared.append(
            Ratio(
                cell,
                preset,
                result.client_cpu_us_per_turn,
                result.tool_cpu_us_per_turn,
                reference.client_cpu_us_per_turn,
                HTTP_CPU_TARGET if cell == "http" else None,
            )
        )
    return compared


@dataclass(frozen=True)
class ShapingCost:
    """A shaped scale cell against the unshaped (``direct``) cell of the same size."""

    link: str
    sessions: int
    shaped: CellResult
    direct: CellResult

    @property
    def added_us_per_turn(self) -> float:
        """Client CPU per turn the link emulation added (the shaper's cost per turn)."""
        return self.shaped.client_cpu_us_per_turn - self.direct.client_cpu_us_per_turn

    @property
    def lag_within(self) -> bool:
        """Whether the shaped cell kept the lag p99 under the load generator's bound."""
        return self.shaped.lag_p99_ms < LAG_LIMIT_MS


SHAPING: list[Column[ShapingCost]] = [
    ("sessions", lambda c: f"{c.sessions:,}"),
    ("link", lambda c: c.link),
    ("turns/s", lambda c: f"{c.shaped.turns_per_s:,.0f} vs {c.direct.turns_per_s:,.0f}"),
    (
        "client us/turn",
        lambda c: (
            f"{c.shaped.client_cpu_us_per_turn:,.0f} vs {c.direct.client_cpu_us_per_turn:,.0f}"
        ),
    ),
    ("added us/turn", lambda c: f"{c.added_us_per_turn:+,.0f}"),
    ("lag p50 ms", lambda c: f"{c.shaped.lag_p50_ms:.2f} vs {c.direct.lag_p50_ms:.2f}"),
    ("lag p99 ms", lambda c: f"{c.shaped.lag_p99_ms:.1f} vs {c.direct.lag_p99_ms:.1f}"),
    ("lag p99 < limit", lambda c: "yes" if c.lag_within else "NO"),
]


def shaping_costs(results: Sequence[CellResult]) -> list[ShapingCost]:
    """Each shaped scale cell against the ``direct`` cell of the same session count."""
    direct = {r.sessions: r for r in results if r.cell == "scale" and r.link == "direct"}
    return [
        ShapingCost(r.link, r.sessions, r, direct[r.sessions])
        for r in results
        if r.cell == "scale" and r.link != "direct" and r.sessions in direct
    ]


def scale_problems(result: CellResult) -> list[str]:
    """Why a scale cell falls short of its target (empty when it meets it)."""
    problems = []
    if result.sessions < SCALE_SESSIONS_TARGET:
        problems.append(f"{result.sessions:,} sessions < {SCALE_SESSIONS_TARGET:,}")
    if result.open_connections < result.sessions:
        problems.append(
            f"{result.open_connections:,} of {result.sessions:,} WebSockets open at the end"
        )
    if result.failed:
        problems.append(f"{result.failed} failed turns")
    if result.lag_p99_ms >= LAG_LIMIT_MS:
        problems.append(f"lag p99 {result.lag_p99_ms:.1f} ms >= {LAG_LIMIT_MS:g}")
    return problems


def report(results: Sequence[CellResult], config: BenchConfig) -> str:
    """The printed figures."""
    pinned = "; mock pinned to CPU 0, client to CPU 1" if config.pin else ""
    sections = [
        f"loadgen_throughput: {os.cpu_count()} CPUs; one client process per cell, a fresh "
        f"mock per cell{pinned}; figures over each cell's measured window"
    ]
    throughput = [r for r in results if r.cell in CLIENTS]
    if throughput:
        sections += [
            f"Throughput, no think time: mock --delta-tokens {config.delta_tokens} with each "
            f"preset, {config.sessions} sessions, {config.seconds:g} s after "
            f"{config.warmup_s:g} s warm-up. reference = Locust FastHttpSession posting the "
            "http cell's bodies (reads each body whole, parses nothing). busy = CPU time / "
            "wall time; lag = HealthMonitor's scheduling lag over the window.",
            table(THROUGHPUT, throughput),
        ]
        compared = ratios(results)
        if compared:
            sections += [
                "Client CPU per turn vs the reference. without tools: the session's CPU "
                "minus its tool simulator's (the workload, which the reference does not run): "
                "the transport and the session loop, what the target compares.",
                table(RATIOS, compared),
            ]
    scale = [r for r in results if r.cell == "scale"]
    if scale:
        sections += [
            f"Scale: ws sessions in one process against mock {scale[0].settings['mock']}; "
            f"tool time x{config.scale_time_scale:g}; spawned at "
            f"{config.scale_spawn_rate:g}/s, measured {config.scale_seconds:g} s from "
            f"{config.scale_warmup_s:g} s after the last spawn. worst 2 s p99: the highest of "
            "HealthMonitor's 2 s windows (what it flags saturation on).",
            table(SCALE, scale),
        ]
        for result in scale:
            problems = scale_problems(result)
            verdict = "NOT met: " + "; ".join(problems) if problems else "met"
            sections.append(
                f"target ({SCALE_SESSIONS_TARGET:,} sessions, lag p99 < {LAG_LIMIT_MS:g} ms) "
                f"at {result.sessions:,} sessions, link {result.link}: {verdict}"
            )
        costs = shaping_costs(results)
        if costs:
            sections += [
                "Link shaping: each shaped cell against the direct cell of the same size "
                "(shaped vs direct). added us/turn: the client CPU per turn the emulation "
                "added; a link's turns are slower, so compare per turn, not per second.",
                table(SHAPING, costs),
            ]
    failures = [r for r in results if r.failed]
    for result in failures:
        sections.append(f"{result.cell}: {result.failed} failed turns, e.g. {result.errors}")
    warning = noisy_warning([r.other_busy for r in results])
    if warning:
        sections.append(warning)
    return "\n\n".join(sections)


# -- command line ---------------------------------------------------------------------


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected names like instant,fast")
    return names


def _gc_list(text: str) -> tuple[str, ...]:
    modes = _name_list(text)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown gc mode {unknown[0]!r}; choose from {MODES}")
    return modes


def _link_list(text: str) -> tuple[str, ...]:
    names = _name_list(text)
    for name in names:
        try:
            load_link(name)
        except LinkError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def _cell_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in CELLS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(unknown) or '(none)'}; choose from {', '.join(CELLS)}"
        )
    return tuple(cell for cell in CELLS if cell in names)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Load generator throughput: client CPU per turn of the rig's http and ws "
        "sessions beside Locust's FastHttpUser engine, and 1,000 ws sessions in one process "
        "(see docs/performance.md)."
    )
    parser.add_argument(
        "--cells",
        type=_cell_list,
        default=CELLS,
        help=f"comma-separated, of {', '.join(CELLS)} (default: all)",
    )
    parser.add_argument(
        "--sessions", type=positive_int, default=50, help="per throughput cell (default 50)"
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=12.0,
        help="measured window of each throughput cell (default 12)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--presets",
        type=_name_list,
        default=("instant", "fast"),
        help="mock latency presets of the throughput cells, each cell run once per preset "
        "(default: instant,fast)",
    )
    parser.add_argument(
        "--delta-tokens",
        type=positive_int,
        default=1,
        help="mock --delta-tokens for the throughput cells (default 1, as the real API)",
    )
    parser.add_argument(
        "--record-tasks",
        type=positive_int,
        default=2,
        help="tasks per session recorded for the reference to replay (default 2)",
    )
    parser.add_argument(
        "--scale-sessions",
        type=int_list,
        default=(SCALE_SESSIONS_TARGET,),
        help=f"ws sessions of the scale cell; a list runs one cell each (default "
        f"{SCALE_SESSIONS_TARGET})",
    )
    parser.add_argument("--scale-seconds", type=positive_float, default=30.0)
    parser.add_argument(
        "--scale-spawn-rate",
        type=positive_float,
        default=100.0,
        help="scale sessions started per second (default 100)",
    )
    parser.add_argument(
        "--scale-warmup", type=float, default=5.0, help="seconds after the last spawn"
    )
    parser.add_argument(
        "--scale-time-scale",
        type=float,
        default=1.0,
        help="multiplies simulated tool time in the scale cell (default 1, real time)",
    )
    parser.add_argument("--scale-workers", type=positive_int, default=1, help="mock workers")
    parser.add_argument(
        "--scale-delta-tokens", type=positive_int, default=1, help="mock --delta-tokens"
    )
    parser.add_argument(
        "--scale-links",
        type=_link_list,
        default=("direct",),
        help="link profiles of the scale cells, e.g. direct,fiber,lte: each session count "
        "runs once per link, and shaped cells are compared with the direct one (default: "
        "direct, no shaping)",
    )
    parser.add_argument(
        "--scale-gc",
        type=_gc_list,
        default=("default",),
        help="garbage-collector modes of the scale cells, of " + ", ".join(MODES) + ": each "
        "session count runs once per mode (default: default, the interpreter's own)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the mock on CPU 0 and the client on CPU 1 (needs 2 CPUs): each process "
        "keeps a core of its own, so neither steals the other's",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument(
        "--client-log",
        type=Path,
        help="append each client child's stderr here (with GEVENT_MONITOR_THREAD_ENABLE=true "
        "and GEVENT_MAX_BLOCKING_TIME=0.03 in the environment: what blocked the hub)",
    )
    child = parser.add_argument_group("client child (started by the bench itself)")
    child.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    child.add_argument("--cell", default="", help=argparse.SUPPRESS)
    child.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    child.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    child.add_argument("--ramp", type=float, default=0.0, help=argparse.SUPPRESS)
    child.add_argument("--time-scale", type=float, default=0.0, help=argparse.SUPPRESS)
    child.add_argument("--link", default="direct", help=argparse.SUPPRESS)
    child.add_argument("--gc", default="default", choices=MODES, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--client``, one client child)."""
    args = build_parser().parse_args(argv)
    if args.client:
        return client_main(args)
    config = BenchConfig(
        cells=args.cells,
        sessions=args.sessions,
        seconds=args.seconds,
        warmup_s=args.warmup,
        presets=args.presets,
        delta_tokens=args.delta_tokens,
        record_tasks=args.record_tasks,
        scale_sessions=args.scale_sessions,
        scale_seconds=args.scale_seconds,
        scale_spawn_rate=args.scale_spawn_rate,
        scale_warmup_s=args.scale_warmup,
        scale_time_scale=args.scale_time_scale,
        scale_workers=args.scale_workers,
        scale_delta_tokens=args.scale_delta_tokens,
        seed=args.seed,
        json_path=args.json,
        pin=args.pin,
        client_log=args.client_log,
        scale_links=args.scale_links,
        scale_gc=args.scale_gc,
    )
    if config.pin and len(os.sched_getaffinity(0)) < 2:
        print("loadgen_throughput: --pin needs 2 CPUs", file=sys.stderr)
        return 2
    try:
        results = run_benchmark(config)
    except (BenchError, OSError) as exc:
        print(f"loadgen_throughput: {exc}", file=sys.stderr)
        return 1
    print(report(results, config))
    if config.json_path is not None:
        payload = {"config": asdict(config), "cells": [asdict(r) for r in results]}
        config.json_path.write_bytes(orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

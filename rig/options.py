"""The rig's command-line options, each defined once.

An option is a field of a typed options dataclass (:class:`RunOptions` for ``rig compare``,
``rig capacity`` and the Locust integration; :class:`MockOptions` for ``rig mock``;
:class:`Quota` shared by both) whose metadata is an :class:`Option`: its flag, type,
help, choices and the commands it belongs to. From those definitions come the ``rig``
subcommands' argparse parsers (:func:`add_arguments`), Locust's parser (the same, with
``locust=True``: secrets stay out of the web UI), the typed object
(:meth:`RunOptions.from_namespace`) and the arguments of a child process
(:func:`to_argv`). Each transport's own settings (:class:`~rig.loadgen.registry.TransportOption`)
become ``--<transport>-<name>`` flags on every run command, read from the registry.

Importing this module imports neither Locust nor gevent: ``rig``'s parser is built
before gevent patches the standard library.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rig.collector import MODES, TUNED
from rig.loadgen import registry
from rig.loadgen.link import load_link, parse_links
from rig.loadgen.options import ARRIVALS, SPAWN, parse_workload
from rig.report.capacity import DEFAULT_MAX_RATE_LIMITED, DEFAULT_TTFT_SLO_MS

__all__ = [
    "GATEWAY",
    "MOCK",
    "RUN_COMMANDS",
    "GatewayOptions",
    "MockOptions",
    "Option",
    "Quota",
    "RunOptions",
    "add_arguments",
    "parse_duration",
    "to_argv",
]

MOCK = "mock"
GATEWAY = "gateway"
COMPARE = "compare"
CAPACITY = "capacity"
LOCUST = "locust"
RUN_COMMANDS = frozenset({COMPARE, CAPACITY, LOCUST})
"""The commands that run sessions (and so take every transport's own options)."""
EMBEDDED = frozenset({COMPARE, CAPACITY})
"""The commands that start the embedded mock unless given ``--target-url``."""

_OPTION = "rig.option"
_NESTED = "rig.nested"


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def limit(text: str) -> int:
    """A rate limit: an integer >= 0, where 0 means unlimited."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = unlimited), got {value}")
    return value


def count(text: str) -> int:
    """A count: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def seconds_or_off(text: str) -> float:
    """A number of seconds >= 0, where 0 turns the thing off."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = off), got {text}")
    return value


def on_off(text: str) -> bool:
    """``on`` or ``off`` (the words of :func:`rig.loadgen.registry.parse_flag`)."""
    try:
        return registry.parse_flag(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be on or off, got {text}") from None


WS_DEFLATE_HELP = (
    "permessage-deflate (RFC 7692) for WebSocket clients that offer it (Codex CLI does; the "
    "openai SDK when its connection options ask): on (default, uvicorn's: 12-bit windows, "
    "about 46 KB of zlib state a connection) or off (messages uncompressed)"
)
"""``--ws-deflate`` of ``rig mock`` and ``rig gateway``."""


def fraction(text: str) -> float:
    """A positive number (the bucket size as a fraction of a minute's limit)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


AUTO = "auto"


def processes(text: str) -> str:
    """``--processes``: a count >= 1, or ``auto``."""
    if text != AUTO:
        positive_int(text)
    return text


def parse_duration(text: str) -> float:
    """Seconds, written ``90``, ``90s``, ``5m`` or ``1h``."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90, 90s, 5m)") from None


def _checked(parse: Callable[[str], object], what: str) -> Callable[[str], str]:
    """An argparse type for ``what``: the text as given, once ``parse`` accepts it (checked
    when the command line is read; empty: not set); its error (a ``ValueError``, as
    :class:`~rig.loadgen.link.LinkError` and :class:`~rig.traces.TraceError` are) as argparse's."""

    def check(text: str) -> str:
        if text:
            try:
                parse(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__doc__ = what
    return check


link_option = _checked(load_link, "``--link``: a shipped link profile's name or a profile file.")
links_option = _checked(parse_links, "``--links``: a mix of links with weights.")
workload_option = _checked(parse_workload, "``--workload``: ``scenarios`` or a readable trace.")


@dataclass(frozen=True)
class Option:
    """How one field of an options dataclass appears on a command line."""

    help: str
    commands: frozenset[str]
    """The commands whose parser offers it (``mock``, ``compare``, ``capacity``, ``locust``)."""
    flag: str = ""
    """The flag; empty: ``--`` and the field name with dashes."""
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None
    """``append`` (repeatable) or ``store_true`` (a switch); else a value."""
    metavar: str | None = None
    web_ui: bool = True
    """Shown in Locust's web UI form (never for a variable naming a secret)."""
    group: str = ""
    """Its help section (``quota``: titled per command); none: the parser's own."""
    per_command: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """What differs on a command: ``default``, ``help``, ``choices``."""

    def flag_for(self, dest: str) -> str:
        return self.flag or "--" + dest.replace("_", "-")


def option(
    help: str,
    commands: frozenset[str] | set[str],
    default: Any = None,
    **spec: Any,
) -> Any:
    """A dataclass field that is a command-line option (``spec``: the rest of :class:`Option`)."""
    meta = {_OPTION: Option(help=help, commands=frozenset(commands), **spec)}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    return field(default=default, metadata=meta)


def nested(cls: type) -> Any:
    """A field holding another options dataclass, whose options are flattened in."""
    return field(default_factory=cls, metadata={_NESTED: cls})


def iter_options(cls: type) -> Iterator[tuple[str, Option, Any]]:
    """Every option of ``cls`` (nested ones flattened): field name, definition, default."""
    for f in dataclasses.fields(cls):
        if _NESTED in f.metadata:
            yield from iter_options(f.metadata[_NESTED])
        elif _OPTION in f.metadata:
            default = [] if f.default_factory is list else f.default
            yield f.name, f.metadata[_OPTION], default


_T = TypeVar("_T")


def _build(cls: type[_T], namespace: Any) -> _T:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if _NESTED in f.metadata:
            values[f.name] = _build(f.metadata[_NESTED], namespace)
        elif _OPTION in f.metadata and hasattr(namespace, f.name):
            value = getattr(namespace, f.name)
            values[f.name] = list(value) if isinstance(value, list) else value
    return cls(**values)


@dataclass(frozen=True)
class Quota:
    """The mock's rate limits: ``rig mock``'s own, or the embedded mock's on the run
    commands. ``None`` is "not given": the mock's own default (unlimited, burst 1.0)."""

    rpm: int | None = option("requests per minute", {MOCK, *EMBEDDED}, type=limit, group="quota")
    tpm: int | None = option(
        "tokens per minute (input + output)", {MOCK, *EMBEDDED}, type=limit, group="quota"
    )
    max_connections: int | None = option(
        "concurrent WebSocket connections", {MOCK, *EMBEDDED}, type=limit, group="quota"
    )
    max_inflight: int | None = option(
        "concurrent responses", {MOCK, *EMBEDDED}, type=limit, group="quota"
    )
    burst: float | None = option(
        "bucket size as a fraction of a minute's limit (default 1.0: a minute's worth)",
        {MOCK, *EMBEDDED},
        type=fraction,
        group="quota",
    )
    limits: str | None = option(
        "YAML: per-key and per-organization limits",
        {MOCK, *EMBEDDED},
        metavar="FILE",
        group="quota",
    )

    def given(self) -> dict[str, Any]:
        """The limits that were set, by field name."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def mock_argv(self) -> list[str]:
        """The limits that were set, as ``rig mock`` arguments (for the embedded mock)."""
        return to_argv(self, MOCK)


_QUOTA_GROUPS = {
    MOCK: "rate limits (per API key; 0 = unlimited)",
    COMPARE: "the embedded mock's quota (per API key; see rig mock --help)",
    CAPACITY: "the embedded mock's quota (per API key; see rig mock --help)",
}

_RUN = RUN_COMMANDS
_INFLUX = "InfluxDB sink"
_CHECK_EXAMPLE = {
    COMPARE: "ws_vs_http.bytes_sent_reduction>=0.8",
    CAPACITY: "capacity.ws.max_sessions>=50",
    LOCUST: "ws_vs_http.bytes_sent_reduction>=0.8",
}


@dataclass(frozen=True)
class RunOptions:
    """What a run of sessions was asked to do: ``rig compare``, ``rig capacity``, or Locust
    with the rig's locustfile (each option says which of them offers it)."""

    # What runs, against what.
    target_url: str | None = option(
        "a Responses API base URL, or a comma-separated list of replicas' base URLs (each "
        "new connection goes to the next; a refused connect moves on to the next); "
        "default: embedded mock",
        _RUN,
        per_command={
            LOCUST: {
                "default": "http://127.0.0.1:8000/v1",
                "help": "base URL of the Responses API under test, or a comma-separated list "
                "of replicas' base URLs, connections spread over them in turn (default: the "
                "mock on :8000)",
            }
        },
    )
    target: str = option(
        "what is measured: the mock (default), or a gateway: the embedded mock as the "
        "stateless upstream and rig gateway in front of it, both child processes (rig "
        "capacity: fresh ones for each phase); with --target-url, a deployed gateway, whose "
        "/stats the report reads",
        {COMPARE, CAPACITY},
        default=MOCK,
        choices=(MOCK, GATEWAY),
    )
    gateway_stats: str = option(
        "a gateway's base URL (or a comma-separated list) whose /stats are read at the "
        "start, every 5 s and at the end of the run into summary.json's gateway section "
        "(for --check on its figures; rig capacity: into each transport's capacity "
        "section); a host name that resolves to several addresses (a headless Service) is "
        "read at each replica",
        {LOCUST, CAPACITY},
        default="",
    )
    direct_url: str = option(
        "also run a twin of each transport of --direct-transports straight to this base URL "
        "(the upstream behind a gateway), in the same run and under the same load: the "
        "gateway's added latency (compare --target gateway sets it to its embedded mock)",
        {COMPARE, LOCUST},
        default="",
    )
    direct_transports: str = option(
        "the transports that get a direct twin with --direct-url (default: every one run)",
        {COMPARE, LOCUST},
        default="",
    )
    transports: str = option(
        "comma-separated transports to run side by side, of " + ", ".join(registry.names()),
        _RUN,
        default="http,ws",
    )
    scenario: str = option(
        "scenario name or YAML file; 'mixed' cycles through the built-in ones",
        _RUN,
        default="mixed",
    )
    workload: str = option(
        "what the agents do: 'scenarios' (the --scenario tasks) or 'trace:NAME|PATH', "
        "replaying traced sessions (a shipped set such as trace:codex, a trace file or a "
        "recording directory) over every transport, the traced gaps scaled by --time-scale "
        "(docs/traces.md)",
        _RUN,
        default="scenarios",
        type=workload_option,
        metavar="scenarios|trace:NAME",
    )
    arrivals: str = option(
        "when each session starts its first task: 'spawn' (default: as soon as the run "
        "spawns it) or 'recorded' (with --workload trace:..., its traced session's start_s "
        "times --time-scale after the run started, as the sessions arrived in the "
        "recording; a session without start_s starts at once; docs/traces.md)",
        _RUN,
        default=SPAWN,
        choices=ARRIVALS,
    )
    seed: int = option("seed for tasks and tool timings", _RUN, default=0, type=int)
    link: str = option(
        "emulate this network link for every session: fiber, cable, dsl, lte, 3g, leo, geo, "
        "airplane, direct (no shaping, default) or a YAML profile file (docs/links.md)",
        _RUN,
        default="",
        type=link_option,
        metavar="NAME|FILE",
    )
    links: str = option(
        "a mix of links by weight, each session getting one, e.g. cable=70,lte=20,airplane=10 "
        "(instead of --link)",
        _RUN,
        default="",
        type=links_option,
        metavar="MIX",
    )
    time_scale: float = option(
        "multiplies simulated tool time (0 = instant tools; default 1 = real time)",
        _RUN,
        default=1.0,
        type=float,
    )
    api_key_env: str = option(
        "environment variable holding the target's API key (never logged)",
        _RUN,
        default="",
        web_ui=False,
    )
    model: str = option("model name sent to the target", _RUN, default="mock-agent")
    target_name: str = option("label for the target in records", {LOCUST}, default="")
    request_timeout: float = option(
        "the most one turn may take, waits for rate limits and recoveries included, before "
        "it is recorded as a timeout and its connection dropped, e.g. 30, 30s, 2m (120s)",
        _RUN,
        default=120.0,
        type=parse_duration,
    )
    stream_idle_timeout: float = option(
        "seconds without a byte from the target mid-turn (while the agent is not writing) "
        "that end an attempt as a timeout, to be retried; 0 = none, e.g. 60, 5m (300s, "
        "Codex's stream_idle_timeout_ms)",
        _RUN,
        default=300.0,
        type=parse_duration,
    )
    stream_retries: int = option(
        "attempts repeated after a connection broke (reset, closed, refused, idle) before "
        "the turn gives up, 0.2 s doubling apart (5, Codex's stream_max_retries)",
        _RUN,
        default=5,
        type=count,
    )
    ws_fallback: int = option(
        "failed WebSocket attempts in a row after which a ws/ws_stored session continues over "
        "HTTP with the full context, as Codex does (Codex: 6, its retries and one); counted "
        "as fallback sessions (0 = never, default)",
        _RUN,
        default=0,
        type=count,
    )
    preset: str = option(
        "latency preset of the embedded mock: instant, fast, gpt-5.4 or a YAML file (fast)",
        EMBEDDED,
        default="fast",
    )
    quota: Quota = nested(Quota)
    # How many sessions, how long.
    users: int = option("users per transport (10)", {COMPARE}, default=10, type=positive_int)
    duration: float = option("e.g. 90, 90s, 5m (60s)", {COMPARE}, default=60.0, type=parse_duration)
    step_users: int = option(
        "sessions added per step (10)", {CAPACITY}, default=10, type=positive_int
    )
    step_time: float = option(
        "each step's length (30s)", {CAPACITY}, default=30.0, type=parse_duration
    )
    max_users: int = option("the last step (100)", {CAPACITY}, default=100, type=positive_int)
    processes: str = option(
        "load-generator processes: N Locust workers under a master in this process (1: "
        "one process, no master); auto: one per usable core, less one for each embedded "
        "server (1)",
        EMBEDDED,
        default="1",
        type=processes,
        metavar="N|auto",
    )
    stop_timeout: float = option(
        "at the end, wait this long for tasks in flight (300s)",
        EMBEDDED,
        default=300.0,
        type=parse_duration,
        per_command={CAPACITY: {"default": 60.0, "help": "end of each phase (60s)"}},
    )
    users_per_transport: int = option(
        "exact users per transport (overrides -u's weighting when > 0)",
        {LOCUST},
        default=0,
        type=int,
    )
    transport_weights: str = option(
        "relative user weights, e.g. http=3,ws=1 (default: equal)", {LOCUST}, default=""
    )
    shape: str = option(
        "load shape instead of -u/-r/-t: steps:users=10,every=30s,max=100 | "
        "ramp:max=200,over=5m,hold=5m | spike:base=20,max=200,at=2m,for=1m,duration=6m | "
        "soak:users=100,duration=2h",
        {LOCUST},
        default="",
    )
    gc: str = option(
        "the garbage collector once the users are spawned: tuned (default: collect, freeze "
        "what the spawn built, rarer full collections; rig.collector), freeze, or "
        "default (the interpreter's own)",
        _RUN,
        default=TUNED,
        choices=MODES,
    )
    retry_policy: str = option(
        "on a rate limit: backoff[:base=0.5,cap=30,attempts=8] (honours retry-after, "
        "jittered; default) | fail-fast | fixed:attempts=3,wait=1",
        _RUN,
        default="backoff",
    )
    task_backoff: str = option(
        "after a failed task, wait before the next: base seconds doubling per failed task "
        "up to cap, jittered, reset by a success: base=1,cap=30 (default) | off",
        _RUN,
        default="base=1,cap=30",
    )
    # Where records go, and the verdict.
    out: str = option("parent of run directories (default: runs)", _RUN, default="runs")
    run_id: str = option("run id (default: generated)", {LOCUST}, default="")
    json_path: str | None = option("also copy summary.json here", EMBEDDED, flag="--json")
    check: list[str] = option(
        "threshold on summary.json (repeatable); a failed check makes the exit code 1",
        _RUN,
        default=[],
        action="append",
        per_command={
            command: {
                "help": f'threshold on summary.json, e.g. "{example}" (repeatable); a failed '
                "check makes the exit code 1"
            }
            for command, example in _CHECK_EXAMPLE.items()
        },
    )
    max_rate_limited: float = option(
        f"knee criterion: at most this share of attempts rejected ({DEFAULT_MAX_RATE_LIMITED})",
        {CAPACITY, LOCUST},
        default=DEFAULT_MAX_RATE_LIMITED,
        type=float,
    )
    ttft_slo_ms: float = option(
        f"knee criterion: TTFT p95 within this ({DEFAULT_TTFT_SLO_MS:g} ms)",
        {CAPACITY, LOCUST},
        default=DEFAULT_TTFT_SLO_MS,
        type=float,
    )
    summary_stdout: bool = option(
        "at the end, print summary.json as one line to stdout (e.g. a Kubernetes job log)",
        {LOCUST},
        default=False,
        action="store_true",
    )
    sink: str = option(
        "where records go: the run directory (dir, default); also InfluxDB 2.x/3.x "
        "(influx) or 1.x (influx-v1), written by every worker; or nowhere (none)",
        _RUN,
        default="dir",
        choices=("dir", "influx", "influx-v1", "none"),
        per_command={
            # compare and capacity render the run directory: they always write one.
            command: {
                "choices": ("dir", "influx", "influx-v1"),
                "help": "the run directory (dir, default), and also InfluxDB 2.x/3.x "
                "(influx) or 1.x (influx-v1) while the run goes on",
            }
            for command in EMBEDDED
        },
    )
    influx_url: str = option("InfluxDB base URL, e.g. http://influxdb:8086", _RUN, default="")
    influx_org: str = option("InfluxDB 2.x/3.x organisation (--sink influx)", _RUN, default="")
    influx_bucket: str = option("InfluxDB 2.x/3.x bucket (--sink influx)", _RUN, default="")
    influx_token_env: str = option(
        "environment variable holding the InfluxDB token (--sink influx)",
        _RUN,
        default="",
        web_ui=False,
    )
    influx_database: str = option("InfluxDB 1.x database (--sink influx-v1)", _RUN, default="")
    influx_rp: str = option(
        "InfluxDB 1.x retention policy (default: the database's)", _RUN, default=""
    )
    influx_user_env: str = option(
        "variable holding the InfluxDB 1.x user", _RUN, default="", web_ui=False
    )
    influx_password_env: str = option(
        "variable holding the InfluxDB 1.x password", _RUN, default="", web_ui=False
    )
    influx_buffer: int = option(
        "points held while InfluxDB is slow or down; beyond it points are counted dropped",
        _RUN,
        default=200_000,
        type=int,
    )
    influx_batch_size: int = option("points per write", _RUN, default=5_000, type=int)
    influx_flush_interval: float = option("seconds between writes", _RUN, default=1.0, type=float)
    influx_final_flush: float = option(
        "at the end, the most the sink waits, in all, to send what is queued; what is not "
        "sent by then is counted dropped (30s)",
        _RUN,
        default=30.0,
        type=parse_duration,
    )
    transport_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each transport's own settings given (``--ws-mux-sessions-per-connection``), by
    transport and option name; see :class:`~rig.loadgen.registry.TransportContext`."""

    @classmethod
    def from_namespace(cls, namespace: Any) -> RunOptions:
        """From a parsed namespace (argparse's or Locust's); options a command does not
        offer keep their defaults."""
        built = _build(cls, namespace)
        given: dict[str, dict[str, Any]] = {}
        for spec in registry.REGISTRY.values():
            for setting in spec.options:
                value = getattr(namespace, setting.dest(spec.name), None)
                if value is not None:
                    given.setdefault(spec.name, {})[setting.name] = value
        return dataclasses.replace(built, transport_options=given)

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class MockOptions:
    """What ``rig mock`` was told (``rig.mock.server.MockConfig`` is built from it)."""

    host: str = option("address to bind (default: 127.0.0.1)", {MOCK}, default="127.0.0.1")
    port: int = option("port to bind (default: 8000)", {MOCK}, default=8000, type=int)
    workers: int = option("worker processes (default: 1)", {MOCK}, default=1, type=positive_int)
    preset: str = option(
        "latency preset: instant, fast, gpt-5.4, or a YAML file (default: instant)",
        {MOCK},
        default="instant",
    )
    seed: int = option("seed for plans and jitter (default: 0)", {MOCK}, default=0, type=int)
    scenario: str = option(
        "scenario when a request names none in metadata.scenario (default: mixed)",
        {MOCK},
        default="mixed",
    )
    store: str | None = option(
        "where stored responses live: memory (default) or redis://HOST:PORT/DB", {MOCK}
    )
    store_ttl: int = option(
        "seconds a stored response is kept in Redis", {MOCK}, default=3600, type=positive_int
    )
    store_max_bytes: int = option(
        "bytes of conversation the in-process store keeps; least recently used responses "
        "beyond it are evicted, counted in /stats (default: 256 MiB)",
        {MOCK},
        default=256 * 1024 * 1024,
        type=positive_int,
    )
    api_key: list[str] = option(
        "accept only this key (repeatable); also read from RIG_MOCK_API_KEYS (comma list)",
        {MOCK},
        default=[],
        action="append",
    )
    max_body_bytes: int = option(
        "largest HTTP request body", {MOCK}, default=8 * 1024 * 1024, type=positive_int
    )
    max_message_bytes: int = option(
        "largest WebSocket message", {MOCK}, default=8 * 1024 * 1024, type=positive_int
    )
    ws_max_age: float = option(
        "seconds before a WebSocket is closed with websocket_connection_limit_reached",
        {MOCK},
        default=3600.0,
        type=float,
    )
    ws_max_age_jitter: float = option(
        "draw each WebSocket's age limit up to this many seconds below --ws-max-age, so "
        "connections opened together do not close together (default: 0, a fixed limit as "
        "OpenAI documents: 60 minutes)",
        {MOCK},
        default=0.0,
        type=float,
    )
    ws_ping_interval: float = option(
        "seconds between the server's WebSocket keepalive pings (default: 20, uvicorn's; "
        "0: no pings)",
        {MOCK},
        default=20.0,
        type=seconds_or_off,
    )
    ws_ping_timeout: float = option(
        "seconds the server waits for a ping's pong before it closes the WebSocket with "
        "1011 (default: 20, uvicorn's; 0: it never closes for that)",
        {MOCK},
        default=20.0,
        type=seconds_or_off,
    )
    ws_deflate: bool = option(
        WS_DEFLATE_HELP,
        {MOCK},
        default=True,
        type=on_off,
        metavar="on|off",
    )
    admin: bool = option(
        "serve POST /admin/drop-websockets (drops every WebSocket at once; the API keys "
        "apply); off by default. SIGUSR1 does the same without it",
        {MOCK},
        default=False,
        action="store_true",
    )
    delta_tokens: int = option(
        "tokens per streamed delta; >1 coalesces deltas for very large runs (default: 1)",
        {MOCK},
        default=1,
        type=positive_int,
    )
    log_level: str = option(
        "log level", {MOCK}, default="warning", choices=("debug", "info", "warning", "error")
    )
    keep_alive: int = option(
        "seconds an idle HTTP keep-alive connection stays open (default: 120)",
        {MOCK},
        default=120,
        type=positive_int,
    )
    header_timeout: float = option(
        "seconds a connection may take to send a request's headers, from when it opens or "
        "the request begins; then it is closed with 408 (default: 10)",
        {MOCK},
        default=10.0,
        type=float,
    )
    body_timeout: float = option(
        "seconds a request body may stall between two reads; then 408 and the connection "
        "is closed (default: 30)",
        {MOCK},
        default=30.0,
        type=float,
    )
    tls_cert: str | None = option("serve HTTPS/WSS with this certificate (PEM)", {MOCK})
    tls_key: str | None = option("the certificate's private key (PEM)", {MOCK})
    record: str | None = option(
        "write a trace of every session served into this directory, one file per worker "
        "(shapes and sizes, no content, never keys; docs/traces.md)",
        {MOCK},
        metavar="DIR",
    )
    keep_content: bool = option(
        "with --record: keep the instructions, tools and items in the trace",
        {MOCK},
        default=False,
        action="store_true",
    )
    quota: Quota = nested(Quota)
    limits_store: str | None = option(
        "where limit state lives: memory (default, per process) or redis://HOST:PORT/DB",
        {MOCK},
        group="quota",
    )

    @classmethod
    def from_namespace(cls, namespace: Any) -> MockOptions:
        """From ``rig mock``'s parsed arguments."""
        return _build(cls, namespace)


@dataclass(frozen=True)
class GatewayOptions:
    """What ``rig gateway`` was told (``rig.gateway.config.GatewayConfig`` is built from it,
    over what a ``--config`` file says: an option given on the command line wins)."""

    config: str | None = option(
        "YAML file: several upstreams (routed by model), client keys and organisations, "
        "any other setting (examples/gateway.yaml); options given here override it",
        {GATEWAY},
        metavar="FILE",
    )
    host: str = option("address to bind (default: 127.0.0.1)", {GATEWAY}, default="127.0.0.1")
    port: int = option("port to bind (default: 8100)", {GATEWAY}, default=8100, type=int)
    upstream: str = option(
        "the stateless provider's API base URL, e.g. https://api.openai.com/v1 or the "
        "mock's http://127.0.0.1:8000/v1 (replaces the upstreams of --config)",
        {GATEWAY},
        default="",
        metavar="URL",
    )
    dialect: str = option(
        "how the upstream is called: responses (full input, store=false) or chat "
        "(Chat Completions) (default: responses)",
        {GATEWAY},
        default="responses",
        choices=("responses", "chat"),
    )
    upstream_key_env: str = option(
        "environment variable holding the upstream's API key (never logged)",
        {GATEWAY},
        default="",
        metavar="VAR",
    )
    model_map: list[str] = option(
        "client model name = upstream model name (repeatable), e.g. gpt-5=gpt-5-2025-08-07",
        {GATEWAY},
        default=[],
        action="append",
        metavar="CLIENT=UPSTREAM",
    )
    upstream_timeout: float = option(
        "seconds to wait for the upstream's next bytes (default: 120)",
        {GATEWAY},
        default=120.0,
        type=float,
    )
    no_encrypted_reasoning: bool = option(
        "do not add include reasoning.encrypted_content to responses-dialect calls (for "
        "models that refuse it; a reasoning model's items are then not reusable)",
        {GATEWAY},
        default=False,
        action="store_true",
    )
    upstream_http2: bool = option(
        "call the upstream with HTTP/2: over https where it offers it (ALPN), else HTTP/1.1; "
        "over http with prior knowledge (it must speak HTTP/2). Default: the gateway's own "
        "HTTP/1.1 client, which costs less CPU per call",
        {GATEWAY},
        default=False,
        action="store_true",
    )
    client_keys: str = option(
        "check: accept the --api-key keys (any caller when none) and call upstreams with "
        "their own keys; pass-through: send each client's key to the upstream, whose "
        "401/403 reaches the client (default: check)",
        {GATEWAY},
        default="check",
        choices=("check", "pass-through"),
    )
    store: str | None = option(
        "where checkpoints and store=true responses live: memory (default, this process "
        "only) or redis://HOST:PORT/DB (shared by replicas)",
        {GATEWAY},
    )
    store_ttl: int = option(
        "seconds a checkpoint or stored response is kept (default: 3600)",
        {GATEWAY},
        default=3600,
        type=positive_int,
    )
    store_max_bytes: int = option(
        "bytes of checkpoints the in-process store keeps (default: 256 MiB)",
        {GATEWAY},
        default=256 * 1024 * 1024,
        type=positive_int,
    )
    api_key: list[str] = option(
        "accept only this client key (repeatable; added to the clients of --config); also "
        "read from RIG_GATEWAY_API_KEYS (comma list); default: any caller",
        {GATEWAY},
        default=[],
        action="append",
    )
    record: str | None = option(
        "write a trace of every session served into this directory (shapes and sizes, no "
        "content, never keys; the mock's recorder; docs/traces.md)",
        {GATEWAY},
        metavar="DIR",
    )
    keep_content: bool = option(
        "with --record: keep the instructions, tools and items in the trace",
        {GATEWAY},
        default=False,
        action="store_true",
    )
    max_body_bytes: int = option(
        "largest HTTP request body (default: 8 MiB)",
        {GATEWAY},
        default=8 * 1024 * 1024,
        type=positive_int,
    )
    max_message_bytes: int = option(
        "largest WebSocket message (default: 8 MiB)",
        {GATEWAY},
        default=8 * 1024 * 1024,
        type=positive_int,
    )
    header_timeout: float = option(
        "seconds a connection may take to send a request's headers, from when it opens or "
        "the request begins; then it is closed with 408 (default: 10)",
        {GATEWAY},
        default=10.0,
        type=float,
    )
    body_timeout: float = option(
        "seconds a request body may stall between two reads; then 408 and the connection "
        "is closed (default: 30)",
        {GATEWAY},
        default=30.0,
        type=float,
    )
    ws_max_age: float = option(
        "seconds before a WebSocket is closed with websocket_connection_limit_reached "
        "(default: 3600)",
        {GATEWAY},
        default=3600.0,
        type=float,
    )
    ws_ping_interval: float = option(
        "seconds between the server's WebSocket keepalive pings (default: 20, uvicorn's; "
        "0: no pings)",
        {GATEWAY},
        default=20.0,
        type=seconds_or_off,
    )
    ws_ping_timeout: float = option(
        "seconds the server waits for a ping's pong before it closes the WebSocket with "
        "1011 (default: 20, uvicorn's; 0: it never closes for that)",
        {GATEWAY},
        default=20.0,
        type=seconds_or_off,
    )
    ws_deflate: bool = option(
        WS_DEFLATE_HELP,
        {GATEWAY},
        default=True,
        type=on_off,
        metavar="on|off",
    )
    memory_max_bytes: int = option(
        "bytes of conversation all WebSockets of the process hold in memory; beyond it the "
        "least recently used are evicted (they stay in the checkpoints) (default: 1 GiB)",
        {GATEWAY},
        default=1024 * 1024 * 1024,
        type=positive_int,
    )
    compact_after: float = option(
        "seconds a conversation held in memory waits unchanged before it is packed (zlib; "
        "the next turn unpacks it once) (default: 10; 0: never)",
        {GATEWAY},
        default=10.0,
        type=seconds_or_off,
    )
    checkpoint_timeout: float = option(
        "seconds a checkpoint read or write may take before the store counts as down "
        "(default: 0.5)",
        {GATEWAY},
        default=0.5,
        type=float,
    )
    drain_timeout: float = option(
        "seconds SIGTERM waits for in-flight responses before closing (default: 30)",
        {GATEWAY},
        default=30.0,
        type=float,
    )
    log_level: str = option(
        "log level", {GATEWAY}, default="warning", choices=("debug", "info", "warning", "error")
    )

    @staticmethod
    def unset_defaults() -> dict[str, None]:
        """Parser defaults that tell an option given from one left out (``None``), so a
        ``--config`` file's value is overridden only by an option actually given."""
        return {name: None for name, _, _ in iter_options(GatewayOptions)}

    @classmethod
    def from_namespace(cls, namespace: Any) -> GatewayOptions:
        """From ``rig gateway``'s parsed arguments (an option left out: its default)."""
        values = {
            name: default if getattr(namespace, name, None) is None else getattr(namespace, name)
            for name, _, default in iter_options(cls)
        }
        return _build(cls, argparse.Namespace(**values))

    @staticmethod
    def given(namespace: Any) -> frozenset[str]:
        """The options given on the command line (with :meth:`unset_defaults`)."""
        return frozenset(
            name
            for name, _, _ in iter_options(GatewayOptions)
            if getattr(namespace, name, None) is not None
        )


def add_arguments(parser: Any, command: str, *, locust: bool = False) -> None:
    """Every option of ``command`` on ``parser``: an argparse parser, or Locust's
    (``locust``: straight on the parser, which is where Locust's web UI looks, with
    ``include_in_web_ui`` from each definition)."""
    cls: type = {MOCK: MockOptions, GATEWAY: GatewayOptions}.get(command, RunOptions)
    groups: dict[str, Any] = {}
    for dest, spec, default in iter_options(cls):
        if command not in spec.commands:
            continue
        kwargs: dict[str, Any] = {"dest": dest, "default": default, "help": spec.help}
        if spec.action is not None:
            kwargs["action"] = spec.action
        if spec.type is not None:
            kwargs["type"] = spec.type
        if spec.choices is not None:
            kwargs["choices"] = spec.choices
        if spec.metavar is not None:
            kwargs["metavar"] = spec.metavar
        kwargs.update(spec.per_command.get(command, {}))
        if isinstance(kwargs["default"], list):
            kwargs["default"] = list(kwargs["default"])
        if locust and not spec.web_ui:
            kwargs["include_in_web_ui"] = False
        target = parser
        title = _QUOTA_GROUPS.get(command) if spec.group == "quota" else None
        if title and not locust:
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            target = groups[title]
        target.add_argument(spec.flag_for(dest), **kwargs)
    if command in RUN_COMMANDS:
        for transport in registry.REGISTRY.values():
            for setting in transport.options:
                parser.add_argument(
                    setting.flag(transport.name),
                    dest=setting.dest(transport.name),
                    type=setting.type,
                    default=None,
                    help=f"{transport.name}: {setting.help} (default: {setting.default})",
                )


def to_argv(options: Any, command: str) -> list[str]:
    """The options of ``command`` in ``options`` (a dataclass above) that differ from the
    command's defaults, as its arguments: for a child process (the embedded mock, a
    ``rig locust`` phase)."""
    argv: list[str] = []
    cls = type(options)
    values = _flatten(options)
    for dest, spec, default in iter_options(cls):
        if command not in spec.commands or dest not in values:
            continue
        default = spec.per_command.get(command, {}).get("default", default)
        value = values[dest]
        if value is None or value == default:
            continue
        flag = spec.flag_for(dest)
        if spec.action == "store_true":
            argv.append(flag)
        elif spec.action == "append":
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    if isinstance(options, RunOptions) and command in RUN_COMMANDS:
        for transport, settings in options.transport_options.items():
            for setting in registry.spec(transport).options:
                if setting.name in settings:
                    argv += [setting.flag(transport), str(settings[setting.name])]
    return argv


def _flatten(options: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if _NESTED in f.metadata:
            values.update(_flatten(value))
        else:
            values[f.name] = value
    return values

"""The ``rig`` command: ``rig mock`` serves the mock provider, ``rig compare`` runs the
transports side by side and reports, ``rig report`` re-renders a run (from its directory or
InfluxDB), ``rig locust`` runs Locust with the packaged locustfile, ``rig dashboards``
generates or pushes the Grafana dashboards."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from rig.dashboards import cli as dashboards_cli
from rig.report.capacity import DEFAULT_MAX_RATE_LIMITED, DEFAULT_TTFT_SLO_MS

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_mock(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mock",
        help="serve the mock LLM provider (Responses API over HTTP and WebSocket, Chat)",
        description="Serve a mock OpenAI-compatible provider playing a coding agent's model.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    p.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default: 1)")
    p.add_argument(
        "--preset",
        default="instant",
        help="latency preset: instant, fast, gpt-5.4, or a YAML file (default: instant)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for plans and jitter (default: 0)")
    p.add_argument(
        "--scenario",
        default="mixed",
        help="scenario when a request names none in metadata.scenario (default: mixed)",
    )
    p.add_argument(
        "--store",
        default=None,
        help="where stored responses live: memory (default) or redis://HOST:PORT/DB",
    )
    p.add_argument(
        "--store-ttl",
        type=_positive_int,
        default=3600,
        help="seconds a stored response is kept in Redis",
    )
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="accept only this key (repeatable); also read from RIG_MOCK_API_KEYS (comma list)",
    )
    p.add_argument("--max-body-bytes", type=_positive_int, default=8 * 1024 * 1024)
    p.add_argument("--max-message-bytes", type=_positive_int, default=8 * 1024 * 1024)
    p.add_argument(
        "--ws-max-age",
        type=float,
        default=3600.0,
        help="seconds before a WebSocket is closed with websocket_connection_limit_reached",
    )
    p.add_argument(
        "--delta-tokens",
        type=_positive_int,
        default=1,
        help="tokens per streamed delta; >1 coalesces deltas for very large runs (default: 1)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--keep-alive",
        type=_positive_int,
        default=120,
        help="seconds an idle HTTP keep-alive connection stays open (default: 120)",
    )
    p.add_argument("--tls-cert", default=None, help="serve HTTPS/WSS with this certificate (PEM)")
    p.add_argument("--tls-key", default=None, help="the certificate's private key (PEM)")

    g = _add_quota(p, "rate limits (per API key; 0 = unlimited)", passthrough=False)
    g.add_argument(
        "--limits-store",
        default=None,
        help="where limit state lives: memory (default, per process) or redis://HOST:PORT/DB",
    )


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="run the transports side by side against a target and report the comparison",
        description="Simulated coding agents over each transport, side by side, in one "
        "Locust run; prints the comparison table and writes runs/<run-id>/.",
    )
    p.add_argument("--users", type=_positive_int, default=10, help="users per transport (10)")
    p.add_argument("--duration", type=_duration, default=60.0, help="e.g. 90, 90s, 5m (60s)")
    _add_run(p, check_example="ws_vs_http.bytes_sent_reduction>=0.8")
    p.add_argument(
        "--stop-timeout",
        type=_duration,
        default=300.0,
        help="at the end, wait this long for tasks in flight (300s)",
    )


def _add_run(p: argparse.ArgumentParser, *, check_example: str) -> None:
    """What ``rig compare`` and ``rig capacity`` share: transports, target or embedded mock
    (with its quota), workload, output, checks, sink and retry policy."""
    p.add_argument("--transports", default="http,ws", help="of http,http_chained,ws,ws_stored,chat")
    p.add_argument("--scenario", default="mixed", help="scenario name or YAML file (mixed)")
    p.add_argument(
        "--target-url", default=None, help="a Responses API base URL; default: embedded mock"
    )
    p.add_argument(
        "--api-key-env", default="", help="environment variable holding the target's key"
    )
    p.add_argument("--model", default="mock-agent", help="model name sent to the target")
    p.add_argument("--preset", default="fast", help="latency preset of the embedded mock (fast)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-scale", type=float, default=1.0, help="tool time multiplier (1.0)")
    p.add_argument("--out", default="runs", help="parent of the run directory (runs)")
    p.add_argument("--json", dest="json_path", default=None, help="also copy summary.json here")
    p.add_argument(
        "--check",
        action="append",
        default=[],
        help=f'threshold, e.g. "{check_example}" (repeatable)',
    )
    _add_mock_limits(p)
    _add_sink(p)


def _add_sink(p: argparse.ArgumentParser) -> None:
    from rig.metrics.influx_config import add_influx_arguments

    p.add_argument(
        "--retry-policy",
        default="backoff",
        help="on a rate limit: backoff[:base=0.5,cap=30,attempts=8] (default) | fail-fast | "
        "fixed:attempts=3,wait=1",
    )
    p.add_argument(
        "--sink",
        default="dir",
        choices=["dir", "influx", "influx-v1"],
        help="the run directory (dir, default), and also InfluxDB 2.x/3.x (influx) or 1.x "
        "(influx-v1) while the run goes on",
    )
    add_influx_arguments(p, web_ui=False)


def _sink_args(args: argparse.Namespace) -> list[str]:
    """The sink and retry options as Locust arguments (only those given)."""
    from rig.metrics.influx_config import influx_arguments

    return ["--sink", args.sink, "--retry-policy", args.retry_policy, *influx_arguments(args)]


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="re-render summary.json and report.html of a run (from its directory or InfluxDB)",
        description="Re-render a run's summary.json and report.html from its run directory, "
        "or rebuild the run directory from InfluxDB first (--influx-url ... --run ID).",
    )
    p.add_argument(
        "run_dir", nargs="?", default=None, help="a run directory, e.g. runs/20261121-101500-3fa2"
    )
    p.add_argument("--run", default=None, help="with --influx-url: the run id to read back")
    p.add_argument("--out", default="runs", help="with --influx-url: parent of the rebuilt run")
    p.add_argument("--influx-url", default="", help="read the run from this InfluxDB")
    p.add_argument(
        "--influx-database",
        default="",
        help="InfluxDB 1.x database, or the 2.x/3.x bucket (InfluxQL through its DBRP mapping)",
    )
    p.add_argument("--influx-bucket", default="", help="same as --influx-database, for 2.x/3.x")
    p.add_argument("--influx-token-env", default="", help="variable holding an InfluxDB token")
    p.add_argument("--influx-user-env", default="", help="variable holding an InfluxDB 1.x user")
    p.add_argument(
        "--influx-password-env", default="", help="variable holding the InfluxDB 1.x password"
    )


def _add_capacity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capacity",
        help="step load per transport under one quota: the sessions each sustains (the knee)",
        description="For each transport in turn, add sessions step by step against the same "
        "quota (a fresh embedded mock with --rpm/--tpm/... limits, or --target-url); report "
        "the largest session count that keeps rejections and TTFT p95 within bounds.",
    )
    p.add_argument("--step-users", type=_positive_int, default=10, help="sessions added per step")
    p.add_argument("--step-time", type=_duration, default=30.0, help="each step's length (30s)")
    p.add_argument("--max-users", type=_positive_int, default=100, help="the last step (100)")
    _add_run(p, check_example="capacity.ws.max_sessions>=50")
    p.add_argument(
        "--max-rate-limited",
        type=float,
        default=DEFAULT_MAX_RATE_LIMITED,
        help="knee criterion: at most this fraction of attempts rejected "
        f"({DEFAULT_MAX_RATE_LIMITED})",
    )
    p.add_argument(
        "--ttft-slo-ms",
        type=float,
        default=DEFAULT_TTFT_SLO_MS,
        help=f"knee criterion: TTFT p95 ({DEFAULT_TTFT_SLO_MS:g})",
    )
    p.add_argument("--stop-timeout", type=_duration, default=60.0, help="end of each phase (60s)")


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = unlimited), got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_quota(p: argparse.ArgumentParser, title: str, *, passthrough: bool) -> Any:
    """The quota flags: ``rig mock``'s own, or (``passthrough``: no defaults, so only
    those given are passed on) ``rig compare``'s and ``rig capacity``'s for their mock."""

    def default(value: Any) -> Any:
        return None if passthrough else value

    g = p.add_argument_group(title)
    g.add_argument("--rpm", type=_limit, default=default(0), help="requests per minute")
    g.add_argument(
        "--tpm", type=_limit, default=default(0), help="tokens per minute (input + output)"
    )
    g.add_argument(
        "--max-connections",
        type=_limit,
        default=default(0),
        help="concurrent WebSocket connections",
    )
    g.add_argument("--max-inflight", type=_limit, default=default(0), help="concurrent responses")
    g.add_argument(
        "--burst",
        type=_fraction,
        default=default(1.0),
        help="bucket size as a fraction of a minute's limit (default 1.0: a minute's worth)",
    )
    g.add_argument(
        "--limits", default=None, metavar="FILE", help="YAML: per-key and per-organization limits"
    )
    return g


def _add_mock_limits(p: argparse.ArgumentParser) -> None:
    _add_quota(p, "the embedded mock's quota (per API key; see rig mock --help)", passthrough=True)


def _mock_limits(args: argparse.Namespace) -> list[str]:
    """The given quota flags, as ``rig mock`` arguments."""
    flags: list[str] = []
    for name in ("rpm", "tpm", "max_connections", "max_inflight", "burst", "limits"):
        value = getattr(args, name)
        if value is not None:
            flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def _run_capacity(args: argparse.Namespace) -> int:
    from rig.run.capacity import CapacityOptions, run_capacity

    mock_limits = _mock_limits(args)
    options = CapacityOptions(
        transports=args.transports,
        step_users=args.step_users,
        step_s=args.step_time,
        max_users=args.max_users,
        target_url=args.target_url,
        api_key_env=args.api_key_env,
        model=args.model,
        preset=args.preset,
        mock_limits=mock_limits,
        scenario=args.scenario,
        seed=args.seed,
        time_scale=args.time_scale,
        max_rate_limited=args.max_rate_limited,
        ttft_slo_ms=args.ttft_slo_ms,
        stop_timeout_s=args.stop_timeout,
        out=args.out,
        json_path=args.json_path,
        checks=args.check,
        sink_args=_sink_args(args),
    )
    return run_capacity(options)


def _add_locust(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "locust",
        add_help=False,
        help="run Locust with the rig's bundled locustfile (every Locust and rig option)",
        description="locust -f <the rig's locustfile> ARGS: master, worker, headless or web UI.",
    )
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help="passed to Locust as given")


def _run_locust(locust_args: Sequence[str]) -> int:
    from pathlib import Path

    import rig.locust

    locustfile = Path(rig.locust.__file__).with_name("locustfile.py")
    sys.argv = ["locust", "-f", str(locustfile), *locust_args]
    from locust.main import main as locust_main  # patches the standard library with gevent

    if {"-h", "--help"} & set(locust_args):
        # Locust prints its help before it loads a locustfile, so it never lists the
        # options a locustfile adds: print the rig's first.
        from locust.argument_parser import get_empty_argument_parser

        from rig.locust.plugin import add_arguments

        parser = get_empty_argument_parser(add_help=False)
        parser.prog = "rig locust"
        parser.usage = "rig locust [locust options] [rig options]"
        parser.description = "The rig's options (also in Locust's web UI); Locust's follow."
        add_arguments(parser)
        parser.print_help()
        print()

    locust_main()  # exits the process with Locust's own exit code
    return 0


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90, 90s, 5m)") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rig``."""
    parser = argparse.ArgumentParser(
        prog="rig", description="Load-testing rig for agentic LLM traffic (HTTP vs WebSocket)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_mock(sub)
    _add_compare(sub)
    _add_report(sub)
    _add_capacity(sub)
    _add_locust(sub)
    dashboards_cli.add_parser(sub)
    return parser


def _run_mock(args: argparse.Namespace) -> int:
    from rig.mock.latency import PresetError
    from rig.mock.server import MockConfig, StoreUnavailableError, serve

    keys = list(args.api_key)
    keys += [k.strip() for k in os.environ.get("RIG_MOCK_API_KEYS", "").split(",") if k.strip()]
    config = MockConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        preset=args.preset,
        seed=args.seed,
        scenario=args.scenario,
        store=args.store,
        store_ttl_s=args.store_ttl,
        api_keys=tuple(keys),
        max_body_bytes=args.max_body_bytes,
        max_message_bytes=args.max_message_bytes,
        ws_max_age_s=args.ws_max_age,
        delta_tokens=args.delta_tokens,
        log_level=args.log_level,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        keep_alive_s=args.keep_alive,
        rpm=args.rpm,
        tpm=args.tpm,
        max_connections=args.max_connections,
        max_inflight=args.max_inflight,
        burst=args.burst,
        limits_file=args.limits,
        limits_store=args.limits_store,
    )
    try:
        serve(config)
    except (PresetError, StoreUnavailableError, ValueError) as exc:
        print(f"rig mock: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from gevent import monkey

    monkey.patch_all()  # before ssl, sockets and threads are imported: Locust runs on gevent

    from rig.metrics.influx_config import InfluxConfig
    from rig.run.compare import CompareOptions, run_compare

    options = CompareOptions(
        users=args.users,
        duration_s=args.duration,
        transports=args.transports,
        scenario=args.scenario,
        target_url=args.target_url,
        preset=args.preset,
        seed=args.seed,
        time_scale=args.time_scale,
        out=args.out,
        json_path=args.json_path,
        checks=args.check,
        api_key_env=args.api_key_env,
        model=args.model,
        stop_timeout_s=args.stop_timeout,
        sink_args=_sink_args(args),
        influx=InfluxConfig.from_options(args),
        mock_limits=_mock_limits(args),
    )
    return run_compare(options)


def _run_report(args: argparse.Namespace) -> int:
    from rig.report import ReportError, render_run, render_table

    try:
        run_dir = args.run_dir
        if args.influx_url:
            run_dir = _run_dir_from_influx(args)
        elif run_dir is None:
            raise ReportError("give a run directory, or --influx-url ... --run ID")
        rendered = render_run(run_dir)
    except ReportError as exc:
        print(f"rig report: {exc}", file=sys.stderr)
        return 2
    print(render_table(rendered.summary))
    print(f"\nsummary: {rendered.summary_path}\nreport: {rendered.report_path}")
    return 0


def _run_dir_from_influx(args: argparse.Namespace) -> str:
    from rig.metrics.influxql import InfluxQLClient, InfluxQLError, write_run_directory
    from rig.metrics.rundir import RunDirectoryError
    from rig.report import ReportError

    database = args.influx_database or args.influx_bucket
    if not args.run or not database:
        raise ReportError("--influx-url needs --run ID and --influx-database (or --influx-bucket)")
    secrets = {}
    for option in ("influx_token_env", "influx_user_env", "influx_password_env"):
        name = getattr(args, option)
        if name:
            if not os.environ.get(name):
                raise ReportError(f"--{option.replace('_', '-')}: {name} is not set")
            secrets[option.removesuffix("_env").removeprefix("influx_")] = os.environ[name]
    client = InfluxQLClient(args.influx_url, database, **secrets)
    try:
        directory = write_run_directory(client, args.run, args.out)
    except (InfluxQLError, FileExistsError, RunDirectoryError) as exc:
        raise ReportError(str(exc)) from exc
    finally:
        client.close()
    return str(directory.path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rig`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["locust"]:  # everything after it is Locust's, --help included
        return _run_locust(argv[1:])
    args = build_parser().parse_args(argv)
    commands = {
        "mock": _run_mock,
        "compare": _run_compare,
        "report": _run_report,
        "capacity": _run_capacity,
        "dashboards": dashboards_cli.run,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

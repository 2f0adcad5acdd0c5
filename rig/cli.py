"""The ``rig`` command: ``rig mock`` serves the mock provider, ``rig compare`` runs the
transports side by side and reports, ``rig report`` re-renders a run directory."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="run the transports side by side against a target and report the comparison",
        description="Simulated coding agents over each transport, side by side, in one "
        "Locust run; prints the comparison table and writes runs/<run-id>/.",
    )
    p.add_argument("--users", type=_positive_int, default=10, help="users per transport (10)")
    p.add_argument("--duration", type=_duration, default=60.0, help="e.g. 90, 90s, 5m (60s)")
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
        help='threshold, e.g. "ws_vs_http.bytes_sent_reduction>=0.8" (repeatable)',
    )
    p.add_argument(
        "--stop-timeout",
        type=_duration,
        default=300.0,
        help="at the end, wait this long for tasks in flight (300s)",
    )


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="re-render summary.json and report.html of a run")
    p.add_argument("run_dir", help="a run directory, e.g. runs/20261121-101500-3fa2")


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

    from rig.loadgen.compare import CompareOptions, run_compare

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
    )
    return run_compare(options)


def _run_report(args: argparse.Namespace) -> int:
    from rig.report import ReportError, render_run, render_table

    try:
        rendered = render_run(args.run_dir)
    except ReportError as exc:
        print(f"rig report: {exc}", file=sys.stderr)
        return 2
    print(render_table(rendered.summary))
    print(f"\nsummary: {rendered.summary_path}\nreport: {rendered.report_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rig`` console script."""
    args = build_parser().parse_args(argv)
    commands = {
        "mock": _run_mock,
        "compare": _run_compare,
        "report": _run_report,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

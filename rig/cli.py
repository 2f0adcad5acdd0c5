"""The ``rig`` command: ``rig mock`` serves the mock provider, ``rig gateway`` the stateful
gateway in front of stateless providers, ``rig compare`` runs the
transports side by side and reports, ``rig report`` re-renders a run (from its directory or
InfluxDB), ``rig locust`` runs Locust with the packaged locustfile, ``rig dashboards``
generates or pushes the Grafana dashboards, ``rig trace`` imports Codex CLI sessions as
traces and exports the built-in scenarios as traces."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rig import options
from rig.dashboards import cli as dashboards_cli

__all__ = ["build_parser", "gateway_config", "main"]


def _add_mock(sub: Any) -> None:
    p = sub.add_parser(
        "mock",
        help="serve the mock LLM provider (Responses API over HTTP and WebSocket, Chat)",
        description="Serve a mock OpenAI-compatible provider playing a coding agent's model.",
    )
    options.add_arguments(p, options.MOCK)


def _add_gateway(sub: Any) -> None:
    p = sub.add_parser(
        "gateway",
        help="serve the stateful gateway (Responses API and WebSocket mode in front of "
        "stateless providers)",
        description="Serve the Responses API (HTTP, SSE, WebSocket mode with "
        "previous_response_id) to clients; keep each conversation and call a stateless "
        "upstream with the full context. Settings come from the options below, over a "
        "--config YAML file's.",
    )
    options.add_arguments(p, options.GATEWAY)
    p.set_defaults(**options.GatewayOptions.unset_defaults())


def _config_field(option: str, config_fields: set[str]) -> str | None:
    """The ``GatewayConfig`` field (and config file key) a ``rig gateway`` option sets: the
    same name, or with its unit (``--store-ttl`` -> ``store_ttl_s``); none for the options
    that describe ``--upstream`` or add client keys."""
    return next((f for f in (option, option + "_s") if f in config_fields), None)


_UPSTREAM_OPTIONS = (
    "dialect",
    "upstream_key_env",
    "model_map",
    "upstream_timeout",
    "no_encrypted_reasoning",
    "upstream_http2",
)
"""Options describing the one ``--upstream``."""


def gateway_config(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The gateway's ``GatewayConfig``: option defaults, then the ``--config`` file's
    settings, then the options given; client keys from all of them and
    ``RIG_GATEWAY_API_KEYS``. Raises ``ConfigError`` (the message says what to write)."""
    from rig.gateway.config import (
        ConfigError,
        GatewayConfig,
        UpstreamConfig,
        load_config_file,
        parse_model_map,
    )

    given = options.GatewayOptions.from_namespace(args)
    explicit = options.GatewayOptions.given(args)
    settings = load_config_file(given.config, environ) if given.config else {}
    config_fields = {f.name for f in dataclasses.fields(GatewayConfig)}
    for name, _, _ in options.iter_options(options.GatewayOptions):
        config_field = _config_field(name, config_fields)
        if config_field is not None and (name in explicit or config_field not in settings):
            settings[config_field] = getattr(given, name)
    keys = list(settings.get("api_keys", ()))
    keys += given.api_key
    keys += [k.strip() for k in environ.get("RIG_GATEWAY_API_KEYS", "").split(",") if k.strip()]
    settings["api_keys"] = tuple(dict.fromkeys(keys))
    if given.upstream:
        upstream = UpstreamConfig(
            base_url=given.upstream,
            dialect=given.dialect,
            key_env=given.upstream_key_env,
            model_map=parse_model_map(given.model_map),
            timeout_s=given.upstream_timeout,
            encrypted_reasoning=not given.no_encrypted_reasoning,
            http2=given.upstream_http2,
        )
        if upstream.key_env and not environ.get(upstream.key_env):
            raise ConfigError(f"--upstream-key-env: {upstream.key_env} is not set")
        settings["upstreams"] = (upstream,)
    elif "upstreams" in settings:
        for name in _UPSTREAM_OPTIONS:
            if name in explicit:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} describes --upstream; for the upstreams of {given.config}, "
                    "set it on each upstream there"
                )
    else:
        raise ConfigError(
            "give the upstream's base URL: --upstream URL, or upstreams: in a --config file"
        )
    return GatewayConfig(**settings)


def _run_gateway(args: argparse.Namespace) -> int:
    from rig.gateway.config import ConfigError
    from rig.gateway.server import serve

    try:
        config = gateway_config(args, os.environ)
        serve(config)
    except (ConfigError, ValueError) as exc:
        print(f"rig gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_compare(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="run the transports side by side against a target and report the comparison",
        description="Simulated coding agents over each transport, side by side, in one "
        "Locust run; prints the comparison table and writes runs/<run-id>/.",
    )
    options.add_arguments(p, "compare")


def _add_report(sub: Any) -> None:
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


def _add_capacity(sub: Any) -> None:
    p = sub.add_parser(
        "capacity",
        help="step load per transport under one quota: the sessions each sustains (the knee)",
        description="For each transport in turn, add sessions step by step against the same "
        "quota (a fresh embedded mock with --rpm/--tpm/... limits, or --target-url); report "
        "the largest session count that keeps rejections and TTFT p95 within bounds.",
    )
    options.add_arguments(p, "capacity")


def _run_capacity(args: argparse.Namespace) -> int:
    from rig.run.capacity import run_capacity

    return run_capacity(options.RunOptions.from_namespace(args))


def _add_locust(sub: Any) -> None:
    p = sub.add_parser(
        "locust",
        add_help=False,
        help="run Locust with the rig's bundled locustfile (every Locust and rig option)",
        description="locust -f <the rig's locustfile> ARGS: master, worker, headless or web UI.",
    )
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help="passed to Locust as given")


def _run_locust(locust_args: Sequence[str]) -> int:
    from pathlib import Path

    import rig.run

    locustfile = Path(rig.run.__file__).with_name("locustfile.py")
    sys.argv = ["locust", "-f", str(locustfile), *locust_args]
    from locust.main import main as locust_main  # patches the standard library with gevent

    if {"-h", "--help"} & set(locust_args):
        # Locust prints its help before it loads a locustfile, so it never lists the
        # options a locustfile adds: print the rig's first.
        from locust.argument_parser import get_empty_argument_parser

        parser = get_empty_argument_parser(add_help=False)
        parser.prog = "rig locust"
        parser.usage = "rig locust [locust options] [rig options]"
        parser.description = "The rig's options (also in Locust's web UI); Locust's follow."
        options.add_arguments(parser, "locust", locust=True)
        parser.print_help()
        print()

    locust_main()  # exits the process with Locust's own exit code
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rig``."""
    parser = argparse.ArgumentParser(
        prog="rig", description="Load-testing rig for agentic LLM traffic (HTTP vs WebSocket)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_mock(sub)
    _add_gateway(sub)
    _add_compare(sub)
    _add_report(sub)
    _add_capacity(sub)
    _add_locust(sub)
    dashboards_cli.add_parser(sub)
    _add_trace(sub)
    return parser


def _add_trace(sub: Any) -> None:
    from rig.run import traces

    traces.add_parser(sub)


def _run_trace(args: argparse.Namespace) -> int:
    if args.trace_command == "export-scenarios":
        from gevent import monkey

        monkey.patch_all()  # the rig's agent runs on gevent, as under Locust

    from rig.run import traces

    return traces.run(args)


def _run_mock(args: argparse.Namespace) -> int:
    from rig.mock.latency import PresetError
    from rig.mock.server import MockConfig, StoreUnavailableError, serve

    given = options.MockOptions.from_namespace(args)
    keys = list(given.api_key)
    keys += [k.strip() for k in os.environ.get("RIG_MOCK_API_KEYS", "").split(",") if k.strip()]
    quota = given.quota.given()
    if "limits" in quota:
        quota["limits_file"] = quota.pop("limits")
    config = MockConfig(
        host=given.host,
        port=given.port,
        workers=given.workers,
        preset=given.preset,
        seed=given.seed,
        scenario=given.scenario,
        store=given.store,
        store_ttl_s=given.store_ttl,
        store_max_bytes=given.store_max_bytes,
        api_keys=tuple(keys),
        max_body_bytes=given.max_body_bytes,
        max_message_bytes=given.max_message_bytes,
        ws_max_age_s=given.ws_max_age,
        ws_max_age_jitter_s=given.ws_max_age_jitter,
        ws_ping_interval_s=given.ws_ping_interval,
        ws_ping_timeout_s=given.ws_ping_timeout,
        ws_deflate=given.ws_deflate,
        admin=given.admin,
        delta_tokens=given.delta_tokens,
        log_level=given.log_level,
        tls_cert=given.tls_cert,
        tls_key=given.tls_key,
        keep_alive_s=given.keep_alive,
        header_timeout_s=given.header_timeout,
        body_timeout_s=given.body_timeout,
        limits_store=given.limits_store,
        record_dir=given.record,
        keep_content=given.keep_content,
        **quota,
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

    from rig.run.compare import run_compare

    return run_compare(options.RunOptions.from_namespace(args))


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
    secrets: dict[str, str] = {}
    for option in ("influx_token_env", "influx_user_env", "influx_password_env"):
        name = getattr(args, option)
        if name:
            if not os.environ.get(name):
                raise ReportError(f"--{option.replace('_', '-')}: {name} is not set")
            secrets[option] = os.environ[name]
    client = InfluxQLClient(
        args.influx_url,
        database,
        token=secrets.get("influx_token_env", ""),
        user=secrets.get("influx_user_env", ""),
        password=secrets.get("influx_password_env", ""),
    )
    try:
        directory = write_run_directory(client, args.run, args.out)
    except (InfluxQLError, FileExistsError, RunDirectoryError) as exc:
        raise ReportError(str(exc)) from exc
    finally:
        client.close()
    return str(directory.path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rig`` console script."""
    from rig.redact import install_redaction

    install_redaction()  # no key in any log, whatever the command (rig.redact)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["locust"]:  # everything after it is Locust's, --help included
        return _run_locust(argv[1:])
    args = build_parser().parse_args(argv)
    commands = {
        "mock": _run_mock,
        "gateway": _run_gateway,
        "compare": _run_compare,
        "report": _run_report,
        "capacity": _run_capacity,
        "dashboards": dashboards_cli.run,
        "trace": _run_trace,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

"""The InfluxDB sink's options and configuration, without importing the sink.

Kept apart from :mod:`rig.metrics.influx` so ``rig``'s argument parser can offer the
options before gevent patches the standard library (the sink imports urllib3 and gevent).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from rig.errors import RigError

__all__ = ["InfluxConfig", "InfluxConfigError", "add_influx_arguments", "influx_arguments"]


class InfluxConfigError(RigError, ValueError):
    """The sink cannot start: a missing option, variable, or a server that says no."""


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    """Where points go. ``kind`` is ``influx`` (v2 API) or ``influx-v1``."""

    kind: str
    url: str
    org: str = ""
    bucket: str = ""
    token_env: str = ""
    database: str = ""
    retention_policy: str = ""
    user_env: str = ""
    password_env: str = ""
    batch_size: int = 5_000
    flush_interval_s: float = 1.0
    buffer_points: int = 200_000
    timeout_s: float = 10.0

    @classmethod
    def from_options(cls, options: Any) -> InfluxConfig | None:
        """From parsed ``--sink``/``--influx-*`` options; ``None`` when the sink is not InfluxDB."""
        kind = getattr(options, "sink", "dir")
        if kind not in ("influx", "influx-v1"):
            return None
        return cls(
            kind=kind,
            url=options.influx_url or "",
            org=options.influx_org or "",
            bucket=options.influx_bucket or "",
            token_env=options.influx_token_env or "",
            database=options.influx_database or "",
            retention_policy=options.influx_rp or "",
            user_env=options.influx_user_env or "",
            password_env=options.influx_password_env or "",
            batch_size=options.influx_batch_size,
            flush_interval_s=options.influx_flush_interval,
            buffer_points=options.influx_buffer,
        )


def influx_arguments(options: Any) -> list[str]:
    """The ``--influx-*`` options set in ``options`` (a parsed namespace), as arguments to
    pass on to another command line that takes them (``rig locust``)."""
    probe = argparse.ArgumentParser(add_help=False)
    add_influx_arguments(probe, web_ui=False)
    argv: list[str] = []
    for action in probe._actions:
        value = getattr(options, action.dest, None)
        if value not in ("", None):
            argv += [action.option_strings[0], str(value)]
    return argv


def add_influx_arguments(parser: Any, *, web_ui: bool = True) -> None:
    """The ``--influx-*`` options, on Locust's parser (``web_ui``) or an argparse parser."""
    extra: dict[str, Any] = {} if not web_ui else {"include_in_web_ui": False}
    parser.add_argument(
        "--influx-url", default="", help="InfluxDB base URL, e.g. http://influxdb:8086"
    )
    parser.add_argument(
        "--influx-org", default="", help="InfluxDB 2.x/3.x organisation (--sink influx)"
    )
    parser.add_argument(
        "--influx-bucket", default="", help="InfluxDB 2.x/3.x bucket (--sink influx)"
    )
    parser.add_argument(
        "--influx-token-env",
        default="",
        help="environment variable holding the InfluxDB token (--sink influx)",
        **extra,
    )
    parser.add_argument(
        "--influx-database", default="", help="InfluxDB 1.x database (--sink influx-v1)"
    )
    parser.add_argument(
        "--influx-rp", default="", help="InfluxDB 1.x retention policy (default: the database's)"
    )
    parser.add_argument(
        "--influx-user-env", default="", help="variable holding the InfluxDB 1.x user", **extra
    )
    parser.add_argument(
        "--influx-password-env",
        default="",
        help="variable holding the InfluxDB 1.x password",
        **extra,
    )
    parser.add_argument(
        "--influx-buffer",
        type=int,
        default=200_000,
        help="points held while InfluxDB is slow or down; beyond it points are counted dropped",
    )
    parser.add_argument("--influx-batch-size", type=int, default=5_000, help="points per write")
    parser.add_argument(
        "--influx-flush-interval", type=float, default=1.0, help="seconds between writes"
    )

"""The InfluxDB sink's configuration, without importing the sink.

Kept apart from :mod:`rig.metrics.influx` so the run commands can check it before gevent
patches the standard library (the sink imports urllib3 and gevent). The ``--influx-*``
options themselves are defined with the others, in :mod:`rig.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rig.errors import RigError

__all__ = ["InfluxConfig", "InfluxConfigError"]


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

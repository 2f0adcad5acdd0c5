"""Running the mock provider: configuration, the per-process app factory, uvicorn.

With ``workers > 1`` uvicorn starts that many processes sharing the port; each builds its
own app from the configuration passed in the environment. Stored responses are shared
only through Redis (``store="redis://..."``); counters are shared through a directory of
per-process files, so ``/stats`` always reports the whole mock.

``SIGUSR1`` drops every WebSocket of the process that gets it (a reconnect storm); with
``workers > 1`` the supervisor ignores it, so ``kill -USR1 -- -PGID`` (the process group)
reaches every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from rig.conversation.store import RedisStore, open_store
from rig.errors import RigError
from rig.fdlimit import raise_open_files_limit
from rig.limits import (
    LimitPolicy,
    Limits,
    MemoryLimitStore,
    RateLimiter,
    RedisLimitStore,
    load_limits_file,
    open_limit_store,
)
from rig.mock.app import MockSettings, StreamingFront, build_app
from rig.mock.engine import PromptCache, TurnEngine
from rig.mock.latency import load_preset
from rig.mock.stats import Stats
from rig.redact import install_redaction
from rig.serving.body import DEFAULT_BODY_TIMEOUT_S
from rig.serving.httpproto import DEFAULT_HEADER_TIMEOUT_S, TimedHttpProtocol, TimedServerConfig
from rig.serving.wsproto import ServerWSProtocol, ws_keepalive, ws_read_limit
from rig.traces.recorder import TraceRecorder
from rig.workload.policy import ModelPolicy
from rig.workload.scenarios import builtin_scenarios

__all__ = [
    "CONFIG_ENV",
    "MockConfig",
    "StoreUnavailableError",
    "app_from_env",
    "check_store",
    "create_app",
    "serve",
]

CONFIG_ENV = "RIG_MOCK_CONFIG"
"""Environment variable carrying the configuration to worker processes."""

log = logging.getLogger("rig.mock")


@dataclass(frozen=True)
class MockConfig:
    """Everything ``rig mock`` can be told."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    preset: str = "instant"
    seed: int = 0
    scenario: str = "mixed"
    store: str | None = None
    store_ttl_s: int = 3600
    store_max_bytes: int = 256 * 1024 * 1024
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 8 * 1024 * 1024
    ws_max_age_s: float = 3600.0
    ws_max_age_jitter_s: float = 0.0
    ws_ping_interval_s: float = 20.0
    """Seconds between keepalive pings (0: none); uvicorn's default."""
    ws_ping_timeout_s: float = 20.0
    """Seconds a pong may take before the WebSocket is closed with 1011 (0: never)."""
    ws_deflate: bool = True
    """permessage-deflate for clients that offer it (uvicorn's default and settings)."""
    admin: bool = False
    delta_tokens: int = 1
    stats_dir: str | None = None
    log_level: str = "warning"
    tls_cert: str | None = None
    tls_key: str | None = None
    keep_alive_s: int = 120
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    rpm: int = 0
    tpm: int = 0
    max_connections: int = 0
    max_inflight: int = 0
    burst: float = 1.0
    limits_file: str | None = None
    limits_store: str | None = None
    record_dir: str | None = None
    """Write a trace of every session served into this directory (one file per worker)."""
    keep_content: bool = False
    """With ``record_dir``: keep instructions, tools and items in the trace."""

    @property
    def default_limits(self) -> Limits:
        """The per-key limits the flags set."""
        return Limits(self.rpm, self.tpm, self.max_connections, self.max_inflight, self.burst)

    def limit_policy(self) -> LimitPolicy:
        """The limits the flags and the limits file describe (reads and checks the file)."""
        return load_limits_file(
            self.limits_file, self.default_limits, authenticated=bool(self.api_keys)
        )

    def rate_limiter(self, policy: LimitPolicy | None = None) -> RateLimiter | None:
        """The limiter for ``policy`` (default: :meth:`limit_policy`); ``None`` when nothing
        is limited (then the request path does no limit work at all)."""
        if policy is None:
            policy = self.limit_policy()
        if not policy.active:
            return None
        return RateLimiter(policy, open_limit_store(self.limits_store))

    def to_env(self) -> str:
        """The configuration as JSON for :data:`CONFIG_ENV`."""
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_env(cls, value: str) -> MockConfig:
        """Inverse of :meth:`to_env`."""
        data = orjson.loads(value)
        data["api_keys"] = tuple(data.get("api_keys") or ())
        return cls(**data)


def _key_organizations(policy: LimitPolicy) -> dict[str, str]:
    """API key -> organisation id, for keys the limits file puts in an organisation.

    Read from the scopes the policy keeps, so an organisation without limits of its own
    is not seen (rig.limits keeps only limiting scopes).
    """
    return {
        key: scope.label
        for key, scopes in policy.keys.items()
        for scope in scopes
        if scope.kind == "org"
    }


def log_config(config: MockConfig) -> dict[str, Any]:
    """uvicorn's logging configuration (applied in every worker process), with the
    :mod:`rig.redact` filter on every handler and the mock's own loggers at
    ``--log-level``: no key reaches a log at any level."""
    redacting = {"()": "rig.redact.RedactingFilter", "secrets": list(config.api_keys)}
    base = uvicorn.config.LOGGING_CONFIG
    handlers = {
        name: {**handler, "filters": ["redact"]} for name, handler in base["handlers"].items()
    }
    level = config.log_level.upper()
    return {
        **base,
        "filters": {"redact": redacting},
        "handlers": handlers,
        "loggers": {
            **base["loggers"],
            "rig": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def create_app(config: MockConfig) -> StreamingFront:
    """Build one process's app: policy, store, engine, counters."""
    install_redaction(config.api_keys)  # in each worker too: its own logging
    latency = load_preset(config.preset)
    stats = Stats(config.stats_dir or tempfile.mkdtemp(prefix="rig-mock-stats-"))
    store = open_store(
        config.store,
        ttl_s=config.store_ttl_s,
        max_bytes=config.store_max_bytes,
        on_evict=lambda n: stats.add("store_evictions", n),
    )
    policy = ModelPolicy(
        builtin_scenarios(),
        default_scenario=config.scenario,
        seed=config.seed,
        on_evict=lambda n: stats.add("plan_cache_evictions", n),
    )
    prompt_cache = PromptCache(on_evict=lambda n: stats.add("prompt_cache_evictions", n))
    engine = TurnEngine(
        policy,
        latency,
        store,
        seed=config.seed,
        delta_tokens=config.delta_tokens,
        prompt_cache=prompt_cache,
    )
    limit_policy = config.limit_policy()
    limiter = config.rate_limiter(limit_policy)
    settings = MockSettings(
        api_keys=config.api_keys,
        max_body_bytes=config.max_body_bytes,
        max_message_bytes=config.max_message_bytes,
        ws_max_age_s=config.ws_max_age_s,
        ws_max_age_jitter_s=config.ws_max_age_jitter_s,
        admin=config.admin,
        body_timeout_s=config.body_timeout_s,
        preset=latency,
        limiter=limiter,
        key_organizations=_key_organizations(limit_policy),
    )
    recorder = None
    if config.record_dir:
        recorder = TraceRecorder(config.record_dir, keep_content=config.keep_content)
    app = build_app(engine, stats, settings, recorder)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if isinstance(store, RedisStore):
            await store.ping()  # fail at start, not on the first continuation
        if limiter is not None and isinstance(limiter.store, RedisLimitStore):
            await limiter.store.ping()
        loop = asyncio.get_running_loop()
        drops: set[asyncio.Task[int]] = set()

        def drop_websockets() -> None:
            task = asyncio.ensure_future(app.mock.drop_websockets())
            drops.add(task)
            task.add_done_callback(drops.discard)

        loop.add_signal_handler(signal.SIGUSR1, drop_websockets)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        await store.close()
        if limiter is not None:
            await limiter.store.close()
        stats.close()
        if recorder is not None:
            recorder.close()  # every session's last turn, then the file

    app.router.lifespan_context = lifespan
    return app


def app_from_env() -> StreamingFront:
    """uvicorn factory for worker processes."""
    return create_app(MockConfig.from_env(os.environ[CONFIG_ENV]))


class StoreUnavailableError(RigError, RuntimeError):
    """The configured response store cannot be reached."""


def check_store(url: str | None, what: str = "store") -> None:
    """Fail at start, with the reason, when a Redis store is configured but unreachable."""
    if url is None or not url.startswith(("redis://", "rediss://", "unix://")):
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailableError(f"cannot reach the {what} {url}: {exc}") from None
    finally:
        client.close()


def serve(config: MockConfig) -> None:
    """Run the mock until interrupted."""
    install_redaction(config.api_keys)
    raise_open_files_limit()  # one socket per client connection
    if config.stats_dir is None:
        config = dataclasses.replace(config, stats_dir=tempfile.mkdtemp(prefix="rig-mock-stats-"))
    if config.workers > 1 and config.store in (None, "", "memory"):
        log.warning(
            "%d workers with the in-process store: a previous_response_id continuation "
            "that reaches another worker gets previous_response_not_found; pass "
            "--store redis://HOST:6379/0 to share stored responses",
            config.workers,
        )
    load_preset(config.preset)  # fail before forking on a bad preset
    check_store(config.store)
    limiter = config.rate_limiter()  # fail before forking on a bad limits file
    if limiter is not None:
        check_store(config.limits_store, "limits store")
        if config.workers > 1 and isinstance(limiter.store, MemoryLimitStore):
            log.warning(
                "%d workers with in-process rate limits: each worker limits on its own, so "
                "the mock admits up to %d times the limits; pass --limits-store "
                "redis://HOST:6379/0 to share them",
                config.workers,
                config.workers,
            )
    common: dict[str, Any] = dict(
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=TimedHttpProtocol,
        header_timeout_s=config.header_timeout_s,
        ws=ServerWSProtocol,
        ws_max_size=ws_read_limit(config.max_message_bytes),
        **ws_keepalive(config.ws_ping_interval_s, config.ws_ping_timeout_s),
        ws_per_message_deflate=config.ws_deflate,
        log_level=config.log_level,
        log_config=log_config(config),
        access_log=False,
        lifespan="on",
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
        # Agents pause for tool calls of several seconds; uvicorn's 5 s default would
        # close their keep-alive connections between turns, which real APIs do not.
        timeout_keep_alive=config.keep_alive_s,
    )
    if config.workers > 1:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the workers drop, not the supervisor
        os.environ[CONFIG_ENV] = config.to_env()
        uv_config = TimedServerConfig(
            "rig.mock.server:app_from_env", factory=True, workers=config.workers, **common
        )
    else:
        uv_config = TimedServerConfig(create_app(config), **common)
    # Listen before any worker starts: connections queue in the backlog until a worker
    # accepts, so the line below is a true readiness signal for scripts and tests.
    sock = uv_config.bind_socket()
    sock.listen(uv_config.backlog)
    scheme = "https" if config.tls_cert else "http"
    print(
        f"rig mock listening on {scheme}://{config.host}:{sock.getsockname()[1]} "
        f"(preset {config.preset}, {config.workers} worker(s))",
        file=sys.stderr,
        flush=True,
    )
    try:
        if config.workers > 1:
            Multiprocess(uv_config, sockets=[sock]).run()
        else:
            uvicorn.Server(uv_config).run(sockets=[sock])
    finally:
        sock.close()

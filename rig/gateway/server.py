"""Running the gateway: the app with its state and upstreams, on uvicorn.

One process per replica; replicas share checkpoints through Redis (``--store
redis://...``). SIGTERM drains (:meth:`Gateway.drain`: ``/health`` turns 503, every
WebSocket finishes its accepted responses and gets the documented close) before uvicorn
stops; a second SIGTERM or SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from rig.collector import settle
from rig.fdlimit import raise_open_files_limit
from rig.gateway.app import Gateway, GatewayFront, build_app
from rig.gateway.checkpoints import open_checkpoints
from rig.gateway.config import GatewayConfig
from rig.gateway.state import GatewayState, IdleCompaction, SessionMemory
from rig.gateway.stats import GatewayStats
from rig.gateway.upstream import Upstream
from rig.redact import install_redaction
from rig.serving.httpproto import TimedHttpProtocol, TimedServerConfig
from rig.serving.wsproto import ServerWSProtocol, ws_keepalive, ws_read_limit
from rig.traces.recorder import TraceRecorder

__all__ = ["create_app", "log_config", "serve"]

log = logging.getLogger("rig.gateway")


def _secrets(config: GatewayConfig) -> list[str]:
    """Every key the process knows: the clients' and the upstreams' (never logged)."""
    secrets = list(config.api_keys)
    for upstream in config.upstreams:
        key = upstream.key()
        if key:
            secrets.append(key)
    return secrets


def log_config(config: GatewayConfig) -> dict[str, Any]:
    """uvicorn's logging configuration with the :mod:`rig.redact` filter on every handler
    and the gateway's loggers at ``--log-level``."""
    redacting = {"()": "rig.redact.RedactingFilter", "secrets": _secrets(config)}
    base = uvicorn.config.LOGGING_CONFIG
    handlers = {
        name: {**handler, "filters": ["redact"]} for name, handler in base["handlers"].items()
    }
    return {
        **base,
        "filters": {"redact": redacting},
        "handlers": handlers,
        "loggers": {
            **base["loggers"],
            "rig": {"handlers": ["default"], "level": config.log_level.upper(), "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def create_app(config: GatewayConfig) -> GatewayFront:
    """The gateway's app: counters, memory, checkpoints, one pooled client per upstream
    (opened at startup, closed at shutdown)."""
    install_redaction(_secrets(config))
    stats = GatewayStats()
    evicted = functools.partial(stats.add, "evictions")
    packing = config.compact_after_s > 0
    compact_after_s = config.compact_after_s if packing else float("inf")
    checkpoints = open_checkpoints(
        config.store,
        config.store_ttl_s,
        max_bytes=config.store_max_bytes,
        timeout_s=config.checkpoint_timeout_s,
        on_evict=evicted,
        compact_after_s=compact_after_s,
    )
    memory = SessionMemory(
        config.memory_max_bytes,
        config.store_ttl_s,
        on_evict=evicted,
        compact_after_s=compact_after_s,
    )
    state = GatewayState(memory, checkpoints, stats)
    compaction = IdleCompaction(memory, checkpoints, stats) if packing else None
    upstreams = {upstream: Upstream(upstream, stats) for upstream in config.upstreams}
    recorder = (
        TraceRecorder(config.record, keep_content=config.keep_content) if config.record else None
    )
    gateway = Gateway(config, state, stats, upstreams, recorder, compaction)
    app = build_app(gateway)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not await state.probe():  # say so at start; serve on connection memory
            log.warning("checkpoint store %s does not answer", _where(config.store))
        if compaction is not None:
            compaction.start()
        yield
        if compaction is not None:
            compaction.stop()
        for upstream in upstreams.values():
            await upstream.close()
        await checkpoints.close()
        if recorder is not None:
            recorder.close()  # every session's last turn, then the file

    app.router.lifespan_context = lifespan
    return app


def _where(store: str | None) -> str:
    """A store URL without credentials, for a log line."""
    if not store or "@" not in store:
        return store or "memory"
    scheme, _, rest = store.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class _DrainingServer(uvicorn.Server):
    """uvicorn, draining the gateway on the first SIGTERM/SIGINT before it stops."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway, timeout_s: float):
        super().__init__(config)
        self.gateway = gateway
        self.timeout_s = timeout_s
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is not None or self.should_exit:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        # A signal handler runs between the loop's steps: wake the loop to start the drain.
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self._start_drain, sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain(sig, frame))

    async def _drain(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self.gateway.drain(self.timeout_s)
        finally:
            super().handle_exit(sig, frame)


def serve(config: GatewayConfig) -> None:
    """Run the gateway until interrupted."""
    install_redaction(_secrets(config))
    raise_open_files_limit()
    uv_config = TimedServerConfig(
        create_app(config),
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
        timeout_keep_alive=120,
    )
    sock = uv_config.bind_socket()
    sock.listen(uv_config.backlog)
    upstreams = ", ".join(f"{u.dialect} {u.base_url}" for u in config.upstreams)
    print(
        f"rig gateway listening on http://{config.host}:{sock.getsockname()[1]} "
        f"(upstream {upstreams})",
        file=sys.stderr,
        flush=True,
    )
    app = uv_config.app
    assert isinstance(app, GatewayFront)
    server = _DrainingServer(uv_config, app.gateway, config.drain_timeout_s)
    settle()  # the cyclic collector: one collection, frozen, rarer collections
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
